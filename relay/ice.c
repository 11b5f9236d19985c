/*
 * relay/ice: POST /ice, the WebRTC configuration for a token (issue 12): the STUN/TURN URLs of
 * the listeners that are on, and a TURN REST credential (pkg/turncred) whose user part is the
 * token's booking_id (or sub) and whose expiry is the token's exp, never later. Also the same
 * iceServers array for the welcome messages of signaling and meetings (relay_ice_servers).
 * It serves no STUN/TURN itself (turn*.c do) and keeps no state.
 */
#define LOG_MODULE "ice"
#include "relay/internal.h"
#include "relay/turn.h"
#include "pkg/log/log.h"
#include "pkg/turncred/turncred.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#define HOST_MAX 256
#define URL_MAX  (HOST_MAX + 48)

/* The TURN listeners that are on and the ports they bound (0: off). */
struct ice_ports {
	int udp, tcp, tls;
};

/* Ports of the listeners that are on; false when TURN is off (no listener at all). */
static bool ice_ports(struct ice_ports *p)
{
	memset(p, 0, sizeof(*p));
	if (!relay_turn_on())
		return false;
	p->udp = p->tcp = relay_turn_port(); /* --turn-listen: UDP and TCP on one port */
	p->tls = relay_turns_port();
	return p->udp || p->tls;
}

/* --turn-external-ip, or NULL. */
static const char *external_ip(const struct server *s)
{
	return s->o->turn_external_ip;
}

/* The host of the URL @url ("https://[::1]:8443/x" -> "::1") into @out; false if it has none. */
static bool url_host(const char *url, char *out, size_t len)
{
	const char *h = strstr(url, "://");
	size_t n;

	h = h ? h + 3 : url;
	n = strcspn(h, "@/?#");
	if (h[n] == '@') /* userinfo */
		h += n + 1;
	if (*h == '[') {
		n = strcspn(++h, "]");
		if (h[n] != ']')
			return false;
	} else {
		n = strcspn(h, ":/?#");
	}
	if (!n || n >= len)
		return false;
	memcpy(out, h, n);
	out[n] = '\0';
	return true;
}

/* The host clients reach the TURN server at: --turn-external-ip, else the audience's host. */
static bool ice_host(const struct server *s, char *out, size_t len)
{
	const char *ext = external_ip(s);

	if (ext && *ext) {
		snprintf(out, len, "%s", ext);
		return strlen(ext) < len;
	}
	return s->verifier.audience && url_host(s->verifier.audience, out, len);
}

/* Append "SCHEME:HOST:PORT[?transport=T]" to @urls, bracketing an IPv6 literal (RFC 7064/7065). */
static int add_url(json_t *urls, const char *scheme, const char *host, int port,
                   const char *transport)
{
	char url[URL_MAX];
	bool v6 = strchr(host, ':') != NULL;

	snprintf(url, sizeof(url), "%s:%s%s%s:%d%s%s", scheme, v6 ? "[" : "", host, v6 ? "]" : "",
	         port, transport ? "?transport=" : "", transport ? transport : "");
	return json_array_append_new(urls, json_string(url));
}

/* The "urls" of the listeners that are on (new reference), or NULL when TURN is off. */
static json_t *ice_urls(const struct server *s)
{
	struct ice_ports p;
	char host[HOST_MAX];
	json_t *urls;

	if (!ice_ports(&p) || !ice_host(s, host, sizeof(host)))
		return NULL;
	urls = json_array();
	if (!urls)
		return NULL;
	if (p.udp)
		add_url(urls, "stun", host, p.udp, NULL);
	if (p.udp)
		add_url(urls, "turn", host, p.udp, "udp");
	if (p.tcp)
		add_url(urls, "turn", host, p.tcp, "tcp");
	if (p.tls)
		add_url(urls, "turns", host, p.tls, "tcp");
	return urls;
}

/*
 * The iceServers array for @user until @expiry (new reference): one entry with every URL and
 * the REST credential. NULL when TURN is off, *why then says so; NULL with *why NULL on OOM.
 */
static json_t *servers_for(const struct server *s, const char *user, int64_t expiry,
                           const char **why)
{
	size_t slen = 0;
	const char *secret = relay_turn_secret(&slen); /* the one the TURN server checks with */
	char name[TURNCRED_USER_MAX + 32], cred[TURNCRED_PASSWORD + 1];
	json_t *urls = ice_urls(s), *out = NULL;

	*why = NULL;
	if (!urls || !secret) {
		*why = "TURN is off on this relay (no --turn-listen or --turns-listen)";
		goto out;
	}
	if (turncred_username(expiry, user, name, sizeof(name))) {
		*why = "user cannot be a TURN user name (1-127 printable characters, no ':')";
		goto out;
	}
	if (turncred_password(secret, slen, name, strlen(name), cred))
		goto out;
	out = json_pack("[{s:O,s:s,s:s}]", "urls", urls, "username", name, "credential", cred);
	OPENSSL_cleanse(cred, sizeof(cred));
out:
	json_decref(urls);
	return out;
}

/* The user part for a token: its booking_id, else its sub; NULL when it has neither. */
static const char *user_of(const char *booking_id, const char *sub)
{
	if (booking_id && *booking_id)
		return booking_id;
	if (sub && *sub)
		return sub;
	return NULL;
}

/* Whether a token with @cl may have credentials: NULL, or the reason for a 403. */
static const char *refusal(struct server *s, const struct rjwt_claims *cl)
{
	if (!user_of(cl->booking_id, cl->sub))
		return "token has neither booking_id nor sub (the TURN user name)";
	if (cl->booking_id && store_is_denied(s->store, cl->booking_id, relay_now_ms() / 1000))
		return "booking denied";
	return NULL;
}

/* {"iceServers": @servers, "expires": @exp} as a new string; takes @servers. */
static char *answer(json_t *servers, int64_t exp)
{
	json_t *o = json_pack("{s:o,s:I}", "iceServers", servers, "expires", (json_int_t)exp);
	char *body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	json_decref(o);
	return body;
}

int relay_ice_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m)
{
	struct rjwt_claims cl;
	json_t *servers;
	const char *why;
	char *body;
	int64_t exp;

	if (m != M_POST)
		return relay_respond_error(wsi, c, 405, "use POST");
	if (!ice_ports(&(struct ice_ports){0}))
		return relay_respond_error(wsi, c, 404,
		                           "TURN is off on this relay (no --turn-listen)");
	why = relay_verify(s, wsi, &cl);
	if (why)
		return relay_respond_error(wsi, c, 401, why);
	exp = cl.exp;
	why = exp <= relay_now_ms() / 1000 ? "token expired" : NULL;
	if (why) {
		rjwt_claims_release(&cl);
		return relay_respond_error(wsi, c, 401, why);
	}
	why = refusal(s, &cl);
	servers = why ? NULL : servers_for(s, user_of(cl.booking_id, cl.sub), exp, &why);
	rjwt_claims_release(&cl);
	if (why) {
		log_info("ice refused: %s", why);
		return relay_respond_error(wsi, c, 403, why);
	}
	body = servers ? answer(servers, exp) : NULL;
	if (!body)
		return relay_respond_error(wsi, c, 503, "out of memory");
	log_debug("ice credentials until %lld", (long long)exp);
	return relay_respond(wsi, c, 200, body);
}

json_t *relay_ice_servers(struct server *s, const struct grant *g)
{
	char sub[GRANT_FIELD];
	const char *why;
	json_t *servers;

	/* grant.who is "sub/jti", or either alone: the part before '/' is the sub, or the jti of
	 * a token without one (a grant keeps no more; tokens without booking_id are rare) */
	snprintf(sub, sizeof(sub), "%s", g->who);
	sub[strcspn(sub, "/")] = '\0';
	if (!user_of(g->booking_id, sub) || g->exp <= relay_now_ms() / 1000)
		return json_array();
	servers = servers_for(s, user_of(g->booking_id, sub), g->exp, &why);
	return servers ? servers : json_array();
}
