/*
 * relay/access: who may do what. The access call (POST /session/{topic}: token -> grant ->
 * one-time code), the redemption of a code at the websocket upgrade (relay_redeem), token
 * verification for the other endpoints, the per-address rate limiter and the client's address.
 * Answers are written by http.c; the functions here decide.
 */
#define LOG_MODULE "access"
#include "relay/internal.h"
#include "relay/cluster.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define AUTH_MAX (RJWT_MAX_TOKEN + 64)
#define URI_MAX  512

/* ---- the client's address ---- */

/*
 * The address a trusted proxy appended to X-Forwarded-For: the last entry (entries before it are
 * the client's own claims and could be forged). False when it is missing or not an IP literal.
 */
bool relay_forwarded_addr(const char *xff, char *out, size_t len)
{
	const char *last = strrchr(xff, ',');
	size_t n;

	last = last ? last + 1 : xff;
	last += strspn(last, " \t");
	n = strcspn(last, " \t");
	if (!n || n >= len || last[n + strspn(last + n, " \t")] != '\0' ||
	    strspn(last, "0123456789abcdefABCDEF.:") < n)
		return false;
	memcpy(out, last, n);
	out[n] = '\0';
	return true;
}

/* The peer's address, or behind a trusted proxy (--trust-forwarded-for) the one it appended. */
void relay_client_addr(struct lws *wsi, char *out, size_t len)
{
	char xff[4096]; /* a longer list falls back to the peer: the proxy itself */

	if (relay_srv.o->trust_forwarded_for &&
	    lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) > 0 &&
	    relay_forwarded_addr(xff, out, len))
		return;
	if (!lws_get_peer_simple(wsi, out, len))
		snprintf(out, len, "?");
}

/* ---- the per-address rate limiter ---- */

static unsigned addr_hash(const char *addr)
{
	unsigned h = 2166136261u; /* FNV-1a */

	for (const char *p = addr; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

/* Tokens in @r at @now_ms: refilled at @rate per second since its last use, at most @burst. */
static double refilled(const struct rate_slot *r, int64_t now_ms, int64_t rate, int64_t burst)
{
	int64_t dt = now_ms > r->last_ms ? now_ms - r->last_ms : 0;
	double t = r->tokens + (double)dt * (double)rate / 1000.0;

	return t > (double)burst ? (double)burst : t;
}

/*
 * The slot of @addr among the RATE_PROBE slots from its hash: its own, else an empty one (a
 * full bucket: a newcomer), else the least recently used, whose bucket the newcomer inherits as
 * it stands. Inheriting, not resetting, is what keeps a collision from being a fresh burst:
 * addresses that keep evicting each other share one bucket's refill, no more.
 */
static struct rate_slot *rate_slot(struct rate_slot *tab, size_t n, const char *addr,
                                   int64_t now_ms, int64_t burst)
{
	size_t h = addr_hash(addr), probes = n < RATE_PROBE ? n : RATE_PROBE;
	struct rate_slot *empty = NULL, *stalest = NULL;

	for (size_t i = 0; i < probes; i++) {
		struct rate_slot *r = &tab[(h + i) % n];

		if (strcmp(r->addr, addr) == 0)
			return r;
		if (!r->addr[0] && !empty)
			empty = r;
		if (r->addr[0] && (!stalest || r->last_ms < stalest->last_ms))
			stalest = r;
	}
	if (empty) {
		empty->tokens = (double)burst;
		empty->last_ms = now_ms;
	} else {
		empty = stalest; /* tokens and last_ms stay: the bucket is inherited */
	}
	snprintf(empty->addr, sizeof(empty->addr), "%s", addr);
	return empty;
}

bool relay_rate_allows(struct rate_slot *tab, size_t n, const char *addr, int64_t now_ms,
                       int64_t rate, int64_t burst)
{
	struct rate_slot *r;

	if (rate <= 0)
		return true;
	r = rate_slot(tab, n, addr, now_ms, burst);
	r->tokens = refilled(r, now_ms, rate, burst);
	if (now_ms > r->last_ms)
		r->last_ms = now_ms;
	if (r->tokens < 1.0)
		return false;
	r->tokens -= 1.0;
	return true;
}

bool relay_rate_check(struct server *s, struct lws *wsi)
{
	char addr[RATE_ADDR];

	if (s->o->access_rate <= 0)
		return true;
	relay_client_addr(wsi, addr, sizeof(addr));
	return relay_rate_allows(s->rate, RATE_SLOTS, addr, relay_mono_ms(), s->o->access_rate,
	                         s->o->access_burst);
}

/* ---- tokens ---- */

bool relay_valid_topic(const char *t)
{
	size_t n = strlen(t);

	if (n == 0 || n >= GRANT_TOPIC)
		return false;
	return strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") == n;
}

/* The token from "Authorization: <jwt>" or "Authorization: Bearer <jwt>"; NULL when absent. */
static const char *bearer(struct lws *wsi, char *buf, size_t len, bool *too_long)
{
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	char *p = buf;

	*too_long = n >= (int)len;
	if (n <= 0 || *too_long ||
	    lws_hdr_copy(wsi, buf, (int)len, WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
		return NULL;
	while (*p == ' ')
		p++;
	if (strncasecmp(p, "bearer ", 7) == 0)
		p += 7;
	while (*p == ' ')
		p++;
	return *p ? p : NULL;
}

const char *relay_verify(struct server *s, struct lws *wsi, struct rjwt_claims *claims)
{
	char buf[AUTH_MAX];
	bool too_long;
	const char *tok = bearer(wsi, buf, sizeof(buf), &too_long);
	enum rjwt_status st;
	char addr[48];

	if (!tok)
		return too_long ? "token too large" : "missing Authorization header";
	st = rjwt_verify(&s->verifier, tok, strlen(tok), relay_now_ms() / 1000, claims);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (st == RJWT_OK)
		return NULL;
	relay_client_addr(wsi, addr, sizeof(addr));
	log_info("refused token from %s: %s", addr, rjwt_reason(st));
	return rjwt_reason(st);
}

bool relay_has_stats_scope(const struct rjwt_claims *cl)
{
	return rjwt_has_scope(cl, "relay:stats") || rjwt_has_scope(cl, "relay:admin");
}

/* ---- grants for the access calls ---- */

static void join_scopes(const struct rjwt_claims *cl, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < cl->n_scopes && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? "," : "", cl->scopes[i]);
}

const char *relay_booking_refusal(struct server *s, const struct rjwt_claims *cl)
{
	if ((!cl->booking_id || !*cl->booking_id) && !s->o->allow_no_booking_id)
		return "token has no booking_id";
	if (cl->booking_id && strlen(cl->booking_id) > STORE_BID_MAX)
		return "booking_id too long";
	if (cl->booking_id && store_is_denied(s->store, cl->booking_id, relay_now_ms() / 1000))
		return "booking denied";
	return NULL;
}

const char *relay_grant_from(struct server *s, const struct rjwt_claims *cl, const char *topic,
                             const char *prefix, struct grant *g)
{
	const char *why;

	if (!cl->topic || strcmp(cl->topic, topic) != 0)
		return "topic not in token";
	if (!cl->prefix || strcmp(cl->prefix, prefix) != 0)
		return strcmp(prefix, "session") == 0
		               ? "connection type (prefix) must be session"
		               : "connection type (prefix) does not name this endpoint";
	g->can_read = rjwt_has_scope(cl, "read");
	g->can_write = rjwt_has_scope(cl, "write");
	if (strcmp(prefix, "session") == 0 && strcmp(topic, STATS_TOPIC) == 0) {
		/* The reserved stats stream: read-only, for relay:stats or relay:admin tokens. */
		if (!g->can_read || !relay_has_stats_scope(cl))
			return "the stats topic needs read and relay:stats scopes";
		g->can_write = false;
	}
	if (!g->can_read && !g->can_write)
		return "token has neither read nor write scope";
	if ((why = relay_booking_refusal(s, cl)))
		return why;
	snprintf(g->topic, sizeof(g->topic), "%s", topic);
	snprintf(g->prefix, sizeof(g->prefix), "%s", cl->prefix);
	snprintf(g->booking_id, sizeof(g->booking_id), "%s", cl->booking_id ? cl->booking_id : "");
	snprintf(g->who, sizeof(g->who), "%.60s%s%.60s", cl->sub ? cl->sub : "",
	         cl->sub && cl->jti ? "/" : "", cl->jti ? cl->jti : "");
	join_scopes(cl, g->scopes, sizeof(g->scopes));
	g->exp = cl->exp;
	return NULL;
}

/* {"uri": "<@base>/<kind>/<topic>?code=<code>"} (new string, NULL on OOM), wiping @code. */
static char *uri_body_at(const char *base, const char *kind, const char *topic,
                         char code[CODE_LEN + 1])
{
	char uri[URI_MAX + 160];
	json_t *o;
	char *body;

	snprintf(uri, sizeof(uri), "%s/%s/%s?code=%s", base, kind, topic, code);
	OPENSSL_cleanse(code, CODE_LEN + 1);
	o = json_pack("{s:s}", "uri", uri);
	OPENSSL_cleanse(uri, sizeof(uri));
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return body;
}

char *relay_uri_body(struct server *s, const char *kind, const char *topic, char code[CODE_LEN + 1])
{
	return uri_body_at(s->public_url, kind, topic, code);
}

/* ---- the steps every access call shares ---- */

bool relay_access_not_post(struct lws *wsi, struct conn *c, enum relay_method m, int *ret)
{
	if (m == M_POST)
		return false;
	if (m == M_GET)
		*ret = relay_respond_error(wsi, c, 426,
		                           "websocket upgrade required: POST here for access");
	else
		*ret = relay_respond_error(wsi, c, 405, "use POST");
	return true;
}

bool relay_access_grant(struct server *s, struct lws *wsi, struct conn *c, const char *topic,
                        const char *prefix, bool show_topic, struct rjwt_claims *cl,
                        struct grant *g, int *ret)
{
	const char *why = relay_verify(s, wsi, cl);

	if (why) {
		*ret = relay_respond_error(wsi, c, 401, why);
		return false;
	}
	why = relay_grant_from(s, cl, topic, prefix, g);
	if (!why)
		return true;
	rjwt_claims_release(cl);
	log_info("%s access%s%s%s refused: %s", prefix, show_topic ? " to '" : "",
	         show_topic ? topic : "", show_topic ? "'" : "", why);
	*ret = relay_respond_error(wsi, c, 403, why);
	return false;
}

int relay_issue_code(struct server *s, const struct grant *g, enum relay_issue via,
                     char code[CODE_LEN + 1])
{
	int err = -ENOTCONN;

	if (via != ISSUE_LOCAL)
		err = relay_cluster_issue(g, code);
	if (err == -ENOTCONN && via != ISSUE_REDIS)
		err = codes_issue(s->codes, g, relay_mono_ms(), code);
	if (err)
		log_warn("cannot issue %s code for '%s': %s", g->prefix, g->topic,
		         err == -ENOSPC ? "too many pending codes" : strerror(-err));
	return err;
}

int relay_answer_issued(struct server *s, struct lws *wsi, struct conn *c, struct grant *g,
                        const char *base, char code[CODE_LEN + 1])
{
	char *body;

	if (g->booking_id[0])
		store_seen(s->store, g->booking_id, g->exp);
	body = uri_body_at(base ? base : s->public_url, g->prefix, g->topic, code);
	log_debug("%s access granted to '%s' for %s (%s%s)", g->prefix, g->topic,
	          g->who[0] ? g->who : "anonymous", g->can_read ? "r" : "",
	          g->can_write ? "w" : "");
	OPENSSL_cleanse(g, sizeof(*g));
	if (!body)
		return relay_respond_error(wsi, c, 503, "out of memory");
	return relay_respond(wsi, c, 200, body);
}

int relay_answer_code(struct server *s, struct lws *wsi, struct conn *c, struct grant *g,
                      enum relay_issue via, const char *base)
{
	char code[CODE_LEN + 1];

	if (relay_issue_code(s, g, via, code)) {
		OPENSSL_cleanse(g, sizeof(*g));
		return relay_respond_error(wsi, c, 503, RELAY_WHY_NO_CODE);
	}
	return relay_answer_issued(s, wsi, c, g, base, code);
}

/* ---- POST /session/{topic} ---- */

int relay_access_session(struct server *s, struct lws *wsi, struct conn *c, const char *topic)
{
	struct rjwt_claims cl;
	struct grant g = {0};
	int ret;

	if (!relay_valid_topic(topic))
		return relay_respond_error(wsi, c, 400,
		                           "topic must be 1-127 characters of A-Z a-z 0-9 - . _ ~");
	if (!relay_access_grant(s, wsi, c, topic, "session", true, &cl, &g, &ret))
		return ret;
	rjwt_claims_release(&cl);
	return relay_answer_code(s, wsi, c, &g, ISSUE_CLUSTER, NULL); /* redeemable anywhere */
}

/* ---- redeeming a code at the websocket upgrade ---- */

/* The request path: :path inside HTTP/2, the GET URI otherwise. */
static int request_path(struct lws *wsi, char *out, int len)
{
	int n = lws_hdr_copy(wsi, out, len, WSI_TOKEN_GET_URI);

	if (n <= 0)
		n = lws_hdr_copy(wsi, out, len, WSI_TOKEN_HTTP_COLON_PATH);
	if (n > 0)
		out[strcspn(out, "?")] = '\0'; /* :path carries the query */
	return n;
}

/* RFC 6455 section 4.1: a client sends the one version it speaks; 13 is the only one. */
static bool ws_version_ok(const char *v)
{
	return strcmp(v, "13") == 0;
}

/* The request's Sec-WebSocket-Version is 13 (lws 4.1 upgrades any other as if it were). */
static bool has_ws_version_13(struct lws *wsi)
{
	char v[16];

	return lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_VERSION) > 0 && ws_version_ok(v);
}

/*
 * The topic part of a websocket path "/{kind}/{topic}" and its kind into *kind (NULL for
 * /session/); NULL when no websocket is served at @path.
 */
static const char *endpoint_topic(const char *path, const struct relay_kind **kind)
{
	const char *slash;

	*kind = NULL;
	if (strncmp(path, "/session/", 9) == 0)
		return path + 9;
	if (path[0] != '/' || !(slash = strchr(path + 1, '/')))
		return NULL;
	*kind = relay_kind_of(path + 1, (size_t)(slash - path - 1));
	return *kind ? slash + 1 : NULL;
}

static int refusal(const char **why, const char *reason, int status)
{
	*why = reason;
	return status;
}

/*
 * Redeem the access code of a websocket request into @g. Returns 0, or the HTTP status of the
 * refusal with a static reason in *why. Counted in /metrics.
 */
int relay_redeem(struct lws *wsi, struct grant *g, const char **why)
{
	struct server *s = &relay_srv;
	char path[256], cbuf[CODE_LEN + 16];
	const struct relay_kind *kind;
	const char *code, *topic;
	int err;

	if (s->stopping)
		return refusal(why, "server shutting down", 503);
	/* First, so that the code is not used up: a retry with version 13 can take it. Inside
	 * HTTP/2 this 426 becomes a close frame: a refusal in FILTER_PROTOCOL_CONNECTION, the
	 * last moment for a status there, leaks lws 4.1's websocket state (224 bytes a stream). */
	if (!has_ws_version_13(wsi))
		return refusal(why, "Sec-WebSocket-Version must be 13", 426);
	if (s->metrics_vhost && lws_get_vhost(wsi) == s->metrics_vhost)
		return refusal(why, "no websocket endpoint here", 404);
	if (request_path(wsi, path, sizeof(path)) <= 0 || !(topic = endpoint_topic(path, &kind)))
		return refusal(why, "no websocket endpoint here", 404);
	code = lws_get_urlarg_by_name(wsi, "code=", cbuf, sizeof(cbuf));
	if (!code || !*code)
		return refusal(why, "missing code: POST to the access URL first", 401);
	if (s->nconns >= (size_t)s->o->max_connections) {
		s->m.redeem[REDEEM_FULL]++;
		return refusal(why, "too many connections", 503);
	}
	err = codes_redeem(s->codes, code, strlen(code), topic, relay_mono_ms(), g);
	/* /session and /connect codes go through Redis (a /connect client sent to the instance of
	 * its host: its admit() is checked at the claim); the other kinds issue local codes. */
	if (err == -ENOENT && (!kind || kind == &relay_kind_channel) &&
	    !relay_cluster_defer(wsi, code, strlen(code), topic, kind ? kind->name : "session")) {
		OPENSSL_cleanse(cbuf, sizeof(cbuf));
		memset(g, 0, sizeof(*g));
		return 0; /* issued through Redis, maybe: claimed at ESTABLISHED */
	}
	OPENSSL_cleanse(cbuf, sizeof(cbuf));
	if (!err && strcmp(g->prefix, kind ? kind->name : "session") != 0) {
		OPENSSL_cleanse(g, sizeof(*g)); /* a /connect code at /session/, say */
		err = -EXDEV;
	}
	if (err == -EXDEV) {
		s->m.redeem[REDEEM_OTHER_TOPIC]++;
		return refusal(why, "code was issued for another topic", 403);
	}
	if (err) {
		s->m.redeem[REDEEM_UNKNOWN]++;
		return refusal(why, "code unknown, used or expired", 401);
	}
	if (g->exp < relay_now_ms() / 1000) { /* the code outlived its token */
		OPENSSL_cleanse(g, sizeof(*g));
		s->m.redeem[REDEEM_UNKNOWN]++;
		return refusal(why, "token expired", 401);
	}
	if (g->booking_id[0] && store_is_denied(s->store, g->booking_id, relay_now_ms() / 1000)) {
		OPENSSL_cleanse(g, sizeof(*g));
		s->m.redeem[REDEEM_DENIED]++;
		return refusal(why, "booking denied", 403);
	}
	if (kind && kind->admit && (err = kind->admit(g, why))) {
		OPENSSL_cleanse(g, sizeof(*g)); /* a second host, a channel already gone */
		return err;
	}
	s->m.redeem[REDEEM_OK]++;
	return 0;
}
