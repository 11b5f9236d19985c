/*
 * relay/channel_access: POST /connect/{host} (token -> role -> grant -> one-time code) and the
 * checks at the websocket upgrade of a /connect code (chan_admit): a second control connection
 * (409), a client whose host is offline (503), a channel's host end opened late or twice (410).
 * The pairing itself is channel.c's.
 */
#define LOG_MODULE "chan"
#include "relay/channel.h"
#include "relay/cluster.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

enum chan_role chan_role_of(const struct grant *g, uint64_t *id)
{
	char *end;

	if (strcmp(g->scopes, "host") == 0)
		return CHAN_HOST;
	if (strcmp(g->scopes, "client") == 0)
		return CHAN_CLIENT;
	if (strncmp(g->scopes, "channel:", 8) == 0) {
		*id = strtoull(g->scopes + 8, &end, 10);
		return *end ? CHAN_NONE : CHAN_END;
	}
	return CHAN_NONE;
}

/* ---- the access call: POST /connect/{host} ---- */

/* Host ids are topics: RFC 3986 unreserved characters, 1..GRANT_TOPIC-1 bytes. */
static bool valid_host_id(const char *t)
{
	size_t n = strlen(t);

	return n > 0 && n < GRANT_TOPIC &&
	       strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == n;
}

/* The role asked for: the token's scope, narrowed by ?role=host|client; NULL, or why not. */
static const char *pick_role(struct lws *wsi, const struct rjwt_claims *cl, enum chan_role *role)
{
	bool host = rjwt_has_scope(cl, "host"), client = rjwt_has_scope(cl, "client");
	char buf[16];
	const char *want = lws_get_urlarg_by_name(wsi, "role=", buf, sizeof(buf));

	if (want && strcmp(want, "host") != 0 && strcmp(want, "client") != 0)
		return "role must be host or client";
	if (want && strcmp(want, "host") == 0)
		client = false;
	if (want && strcmp(want, "client") == 0)
		host = false;
	if (host && client)
		return "token has both host and client scopes: add ?role=host or ?role=client";
	if (!host && !client)
		return want ? "token lacks the scope of that role"
		            : "token has neither host nor "
		              "client scope";
	*role = host ? CHAN_HOST : CHAN_CLIENT;
	return NULL;
}

/* Fill @g from checked claims for @host_id; NULL when allowed, else the reason for a 403. */
static const char *grant_from(struct server *s, const struct rjwt_claims *cl, const char *host_id,
                              enum chan_role role, struct grant *g)
{
	const char *why;

	if (!cl->topic || strcmp(cl->topic, host_id) != 0)
		return "host (topic) not in token";
	if (!cl->prefix || strcmp(cl->prefix, "connect") != 0)
		return "connection type (prefix) must be connect";
	if ((why = relay_booking_refusal(s, cl)))
		return why;
	snprintf(g->topic, sizeof(g->topic), "%s", host_id);
	snprintf(g->prefix, sizeof(g->prefix), "connect");
	snprintf(g->booking_id, sizeof(g->booking_id), "%s", cl->booking_id ? cl->booking_id : "");
	snprintf(g->who, sizeof(g->who), "%.120s", cl->sub ? cl->sub : "");
	snprintf(g->scopes, sizeof(g->scopes), "%s", role == CHAN_HOST ? "host" : "client");
	g->can_read = g->can_write = true;
	g->exp = cl->exp;
	return NULL;
}

/* {"code": @code, "message": @message} with @status. */
static int respond_code(struct lws *wsi, struct conn *c, int status, const char *code,
                        const char *message)
{
	json_t *o = json_pack("{s:s, s:s}", "code", code, "message", message);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (!body)
		return relay_respond_error(wsi, c, 503, "out of memory");
	return relay_respond(wsi, c, status, body);
}

/* "<public url>/connect/<host>?code=<code>" into @uri, wiping @code. */
void chan_uri(struct server *s, const char *host_id, char code[CODE_LEN + 1], char *uri, size_t len)
{
	snprintf(uri, len, "%s/connect/%s?code=%s", s->public_url, host_id, code);
	OPENSSL_cleanse(code, CODE_LEN + 1);
}

int relay_channel_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                         const char *rest)
{
	struct rjwt_claims cl;
	struct grant g = {0};
	enum chan_role role = CHAN_NONE;
	const char *why, *there = NULL;
	int ret;

	if (relay_access_not_post(wsi, c, m, &ret))
		return ret;
	if (!valid_host_id(rest))
		return relay_respond_error(
		        wsi, c, 400, "host id must be 1-127 characters of A-Z a-z 0-9 - . _ ~");
	why = relay_verify(s, wsi, &cl);
	if (why)
		return relay_respond_error(wsi, c, 401, why);
	why = pick_role(wsi, &cl, &role);
	if (!why)
		why = grant_from(s, &cl, rest, role, &g);
	rjwt_claims_release(&cl);
	if (why) {
		log_info("channel access to '%s' refused: %s", rest, why);
		return relay_respond_error(wsi, c, 403, why);
	}
	if (role == CHAN_HOST && (chan_host_online(rest) || relay_cluster_host_url(rest)))
		return respond_code(wsi, c, 409, "host-connected",
		                    "this host already has a control connection");
	if (role == CHAN_CLIENT && !chan_host_online(rest) &&
	    !(there = relay_cluster_host_url(rest)))
		return respond_code(wsi, c, 503, "host-offline", "the host is not connected");
	/* With @there (the public URL of the instance holding the host's control connection) the
	 * code is kept in Redis and the uri points there: the pairing happens at that instance. */
	return relay_answer_code(s, wsi, c, &g, there ? ISSUE_REDIS : ISSUE_LOCAL, there);
}

/* At the upgrade (HTTP/1.1: refused with the status; inside HTTP/2: with a close frame). */
int chan_admit(const struct grant *g, const char **why)
{
	uint64_t id = 0;

	switch (chan_role_of(g, &id)) {
	case CHAN_HOST:
		*why = "this host already has a control connection";
		return chan_host_online(g->topic) || relay_cluster_host_url(g->topic) ? 409 : 0;
	case CHAN_CLIENT:
		*why = "the host is not connected";
		return chan_host_online(g->topic) ? 0 : 503;
	case CHAN_END:
		*why = "channel closed or already opened";
		return chan_waits_for_end(g->topic, id) ? 0 : 410;
	default:
		*why = "not a channel grant";
		return 403;
	}
}
