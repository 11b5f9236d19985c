/*
 * relay/http: the access API, compatible with practable/relay.
 *
 *   POST    /session/{topic}          Authorization: <jwt>  -> 200 {"uri": "<url>/session/{topic}?code=..."}
 *   POST    /bids/deny?bid=&exp=      relay:admin           -> 204   (also /bids/allow)
 *   GET     /bids/deny, /bids/allow   relay:admin           -> 200 {"booking_ids": [...]}
 *   OPTIONS *                         CORS preflight        -> 204
 *
 * and the refusal of bad websocket upgrades with an HTTP status (relay_confirm_upgrade).
 * Errors are JSON {"code": "...", "message": "..."}. Responses are written from HTTP_WRITEABLE.
 */
#define LOG_MODULE "http"
#include "relay/internal.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define MAX_BODY 1024 /* access and bids calls carry no body; a little is tolerated */
#define AUTH_MAX (RJWT_MAX_TOKEN + 64)
#define URI_MAX  512

enum method { M_OTHER, M_GET, M_POST, M_OPTIONS };

static enum method method_of(struct lws *wsi)
{
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI))
		return M_GET;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI))
		return M_POST;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI))
		return M_OPTIONS;
	return M_OTHER;
}

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "ok";
	case 204:
		return "no content";
	case 400:
		return "bad_request";
	case 401:
		return "unauthorized";
	case 403:
		return "forbidden";
	case 404:
		return "not_found";
	case 405:
		return "method_not_allowed";
	case 411:
		return "length_required";
	case 413:
		return "too_large";
	case 426:
		return "upgrade_required";
	case 429:
		return "too_many_requests";
	case 431:
		return "headers_too_large";
	case 503:
		return "unavailable";
	default:
		return "error";
	}
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
	                                   (const unsigned char *)value, (int)strlen(value), p,
	                                   end);
}

/* Status line and headers, CORS included; the body follows from HTTP_WRITEABLE. */
static int write_headers(struct lws *wsi, int status, const char *type, size_t body_len)
{
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
	                                   *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, (unsigned int)status, type, body_len, &p, end) ||
	    add_header(wsi, "access-control-allow-origin:", relay_srv.o->cors_origin, &p, end) ||
	    add_header(wsi, "cache-control:", "no-store", &p, end) ||
	    (status == 204 && lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) &&
	     (add_header(wsi, "access-control-allow-methods:", "GET, POST, OPTIONS", &p, end) ||
	      add_header(wsi, "access-control-allow-headers:", "Authorization, Content-Type", &p,
	                 end) ||
	      add_header(wsi, "access-control-max-age:", "600", &p, end))) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

/* Answer with @status and @body (taken over, may be NULL for no body). */
static int respond_type(struct lws *wsi, struct conn *c, int status, const char *type, char *body)
{
	c->responded = true;
	c->body = body;
	c->body_len = body ? strlen(body) : 0;
	if (c->is_access && status >= 100 && status < 600)
		relay_srv.m.access[status]++;
	if (write_headers(wsi, status, type, c->body_len))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

static int respond(struct lws *wsi, struct conn *c, int status, char *body)
{
	return respond_type(wsi, c, status, "application/json", body);
}

static char *error_json(int status, const char *message)
{
	json_t *o = json_pack("{s:s, s:s}", "code", status_text(status), "message", message);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

static int respond_error(struct lws *wsi, struct conn *c, int status, const char *message)
{
	return respond(wsi, c, status, error_json(status, message));
}

/* ---- helpers on the request ---- */

/*
 * The client's address: the peer's, or behind a trusted proxy (--trust-forwarded-for) the last
 * X-Forwarded-For entry, the one the proxy itself appended (entries before it are the client's
 * own claims and could be forged).
 */
void relay_client_addr(struct lws *wsi, char *out, size_t len)
{
	char xff[256];
	const char *last;
	size_t n;

	if (relay_srv.o->trust_forwarded_for &&
	    lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) > 0) {
		last = strrchr(xff, ',');
		last = last ? last + 1 : xff;
		last += strspn(last, " ");
		n = strcspn(last, " ");
		if (n && n < len && strspn(last, "0123456789abcdefABCDEF.:") >= n) {
			memcpy(out, last, n);
			out[n] = '\0';
			return;
		}
	}
	if (!lws_get_peer_simple(wsi, out, len))
		snprintf(out, len, "?");
}

/*
 * The bytes of the headers lws parsed into its table (names excepted). Headers lws has no
 * name for (X-Anything) are not counted: 4.1 offers no way to list them; they still count
 * against the table's LWS_HEADER_SPACE, past which lws closes the connection unanswered.
 */
bool relay_headers_too_large(struct lws *wsi)
{
	int64_t total = 0;

	for (int h = 0; h < WSI_TOKEN_COUNT; h++) {
		int n = lws_hdr_total_length(wsi, (enum lws_token_indexes)h);

		if (n > 0)
			total += n;
	}
	return total > relay_srv.o->max_header;
}

/* Token bucket per client address. True when this call may proceed. */
static bool rate_allows(struct lws *wsi)
{
	struct server *s = &relay_srv;
	char addr[48];
	unsigned h = 2166136261u;
	struct rate_slot *r;
	int64_t now = relay_now_ms();

	if (s->o->access_rate <= 0)
		return true;
	relay_client_addr(wsi, addr, sizeof(addr));
	for (const char *p = addr; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	r = &s->rate[h % RATE_SLOTS];
	if (strcmp(r->addr, addr) != 0) {
		snprintf(r->addr, sizeof(r->addr), "%s", addr);
		r->tokens = (double)s->o->access_burst;
		r->last_ms = now;
	}
	r->tokens += (double)(now - r->last_ms) * (double)s->o->access_rate / 1000.0;
	if (r->tokens > (double)s->o->access_burst)
		r->tokens = (double)s->o->access_burst;
	r->last_ms = now;
	if (r->tokens < 1.0)
		return false;
	r->tokens -= 1.0;
	return true;
}

/* Topics are URL-safe: RFC 3986 unreserved characters, 1..GRANT_TOPIC-1 bytes. */
static bool valid_topic(const char *t)
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

/* Verify the request's token; on failure answer it and return false. */
static bool authorize(struct lws *wsi, struct conn *c, struct rjwt_claims *claims, int *ret)
{
	char buf[AUTH_MAX];
	bool too_long;
	const char *tok = bearer(wsi, buf, sizeof(buf), &too_long);
	enum rjwt_status st;
	char addr[48];

	if (!tok) {
		*ret = respond_error(wsi, c, 401,
		                     too_long ? "token too large" : "missing Authorization header");
		return false;
	}
	st = rjwt_verify(&relay_srv.verifier, tok, strlen(tok), relay_now_ms() / 1000, claims);
	OPENSSL_cleanse(buf, sizeof(buf));
	if (st != RJWT_OK) {
		relay_client_addr(wsi, addr, sizeof(addr));
		log_info("refused token from %s: %s", addr, rjwt_reason(st));
		*ret = respond_error(wsi, c, 401, rjwt_reason(st));
		return false;
	}
	return true;
}

/* ---- POST /session/{topic} ---- */

static void join_scopes(const struct rjwt_claims *cl, char *out, size_t len)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < cl->n_scopes && n < len; i++)
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? "," : "", cl->scopes[i]);
}

static bool has_stats_scope(const struct rjwt_claims *cl)
{
	return rjwt_has_scope(cl, "relay:stats") || rjwt_has_scope(cl, "relay:admin");
}

/* Fill @g from checked claims; NULL when allowed, else the reason for a 403. */
static const char *grant_from(const struct rjwt_claims *cl, const char *topic, struct grant *g)
{
	const struct relay_opts *o = relay_srv.o;

	if (!cl->topic || strcmp(cl->topic, topic) != 0)
		return "topic not in token";
	if (!cl->prefix || strcmp(cl->prefix, "session") != 0)
		return "connection type (prefix) must be session";
	g->can_read = rjwt_has_scope(cl, "read");
	g->can_write = rjwt_has_scope(cl, "write");
	if (strcmp(topic, STATS_TOPIC) == 0) {
		/* The reserved stats stream: read-only, for relay:stats or relay:admin tokens. */
		if (!g->can_read || !has_stats_scope(cl))
			return "the stats topic needs read and relay:stats scopes";
		g->can_write = false;
	}
	if (!g->can_read && !g->can_write)
		return "token has neither read nor write scope";
	if ((!cl->booking_id || !*cl->booking_id) && !o->allow_no_booking_id)
		return "token has no booking_id";
	if (cl->booking_id && strlen(cl->booking_id) > STORE_BID_MAX)
		return "booking_id too long";
	if (cl->booking_id &&
	    store_is_denied(relay_srv.store, cl->booking_id, relay_now_ms() / 1000))
		return "booking denied";
	snprintf(g->topic, sizeof(g->topic), "%s", topic);
	snprintf(g->prefix, sizeof(g->prefix), "%s", cl->prefix);
	snprintf(g->booking_id, sizeof(g->booking_id), "%s", cl->booking_id ? cl->booking_id : "");
	snprintf(g->who, sizeof(g->who), "%.60s%s%.60s", cl->sub ? cl->sub : "",
	         cl->sub && cl->jti ? "/" : "", cl->jti ? cl->jti : "");
	join_scopes(cl, g->scopes, sizeof(g->scopes));
	g->exp = cl->exp;
	return NULL;
}

static int access_session(struct lws *wsi, struct conn *c, const char *topic)
{
	struct rjwt_claims cl;
	struct grant g = {0};
	char code[CODE_LEN + 1], uri[URI_MAX + 160];
	const char *why;
	json_t *o;
	char *body;
	int ret = 0, err;

	if (!valid_topic(topic))
		return respond_error(wsi, c, 400,
		                     "topic must be 1-127 characters of A-Z a-z 0-9 - . _ ~");
	if (!authorize(wsi, c, &cl, &ret))
		return ret;
	why = grant_from(&cl, topic, &g);
	rjwt_claims_release(&cl);
	if (why) {
		log_info("access to '%s' refused: %s", topic, why);
		return respond_error(wsi, c, 403, why);
	}
	err = codes_issue(relay_srv.codes, &g, relay_now_ms(), code);
	if (err) {
		log_warn("cannot issue code for '%s': %s", topic,
		         err == -ENOSPC ? "too many pending codes" : strerror(-err));
		return respond_error(wsi, c, 503, "too many pending access codes, try again");
	}
	if (g.booking_id[0])
		store_seen(relay_srv.store, g.booking_id, g.exp);
	snprintf(uri, sizeof(uri), "%s/session/%s?code=%s", relay_srv.public_url, topic, code);
	OPENSSL_cleanse(code, sizeof(code));
	o = json_pack("{s:s}", "uri", uri);
	OPENSSL_cleanse(uri, sizeof(uri));
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return respond_error(wsi, c, 503, "out of memory");
	log_debug("access granted to '%s' for %s (%s%s)", topic, g.who[0] ? g.who : "anonymous",
	          g.can_read ? "r" : "", g.can_write ? "w" : "");
	return respond(wsi, c, 200, body);
}

/* ---- /bids/deny and /bids/allow ---- */

static void add_bid(const char *bid, int64_t exp, void *arg)
{
	(void)exp;
	json_array_append_new(arg, json_string(bid));
}

static int bids_list(struct lws *wsi, struct conn *c, enum store_list which)
{
	json_t *ids = json_array(), *o;
	char *body;

	store_list(relay_srv.store, which, relay_now_ms() / 1000, add_bid, ids);
	o = json_pack("{s:o}", "booking_ids", ids);
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return body ? respond(wsi, c, 200, body) : respond_error(wsi, c, 503, "out of memory");
}

/* Parse ?bid=B&exp=T; on failure answer 400 and return false. */
static bool bid_args(struct lws *wsi, struct conn *c, char *bid, size_t len, int64_t *exp, int *ret)
{
	char ebuf[64];
	const char *b = lws_get_urlarg_by_name(wsi, "bid=", bid, (int)len);
	const char *e = lws_get_urlarg_by_name(wsi, "exp=", ebuf, sizeof(ebuf));
	char *end;

	if (!b || !*b || strlen(b) > STORE_BID_MAX) {
		*ret = respond_error(wsi, c, 400,
		                     "bid (booking id) missing or longer than 127 bytes");
		return false;
	}
	memmove(bid, b, strlen(b) + 1);
	*exp = e ? strtoll(e, &end, 10) : 0;
	if (!e || !*e || *end || *exp <= relay_now_ms() / 1000) {
		*ret = respond_error(wsi, c, 400,
		                     "exp (booking expiry, unix seconds) missing or in the past");
		return false;
	}
	return true;
}

static int bids_change(struct lws *wsi, struct conn *c, bool deny)
{
	char bid[STORE_BID_MAX + 8];
	int64_t exp;
	int ret = 0, err;
	size_t closed = 0;

	if (!bid_args(wsi, c, bid, sizeof(bid), &exp, &ret))
		return ret;
	err = deny ? store_deny(relay_srv.store, bid, exp) : store_allow(relay_srv.store, bid, exp);
	if (err) {
		log_err("cannot %s booking '%s': state write failed", deny ? "deny" : "allow", bid);
		return respond_error(wsi, c, 503, "cannot write state");
	}
	if (deny) {
		relay_srv.m.bookings_denied++;
		codes_drop_booking(relay_srv.codes, bid);
		closed = relay_close_booking(bid);
	}
	log_notice("booking '%s' %s until %lld%s%zu connection(s) closed", bid,
	           deny ? "denied" : "allowed", (long long)exp, deny ? ", " : "", closed);
	return respond(wsi, c, 204, NULL);
}

static int bids(struct lws *wsi, struct conn *c, enum method m, bool deny)
{
	struct rjwt_claims cl;
	int ret = 0;
	bool admin;

	if (!authorize(wsi, c, &cl, &ret))
		return ret;
	admin = rjwt_has_scope(&cl, "relay:admin");
	rjwt_claims_release(&cl);
	if (!admin)
		return respond_error(wsi, c, 401, "token missing relay:admin scope");
	if (m == M_GET)
		return bids_list(wsi, c, deny ? STORE_DENIED : STORE_ALLOWED);
	return bids_change(wsi, c, deny);
}

/* ---- routing ---- */

/* ---- operations: /status, /metrics, /healthz ---- */

static int status(struct lws *wsi, struct conn *c)
{
	struct rjwt_claims cl;
	json_t *a;
	char *body;
	int ret = 0;
	bool allowed;

	if (!authorize(wsi, c, &cl, &ret))
		return ret;
	allowed = has_stats_scope(&cl);
	rjwt_claims_release(&cl);
	if (!allowed)
		return respond_error(wsi, c, 401, "token missing relay:stats scope");
	a = relay_status_json();
	body = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return body ? respond(wsi, c, 200, body) : respond_error(wsi, c, 503, "out of memory");
}

static int metrics(struct lws *wsi, struct conn *c)
{
	char *text = relay_metrics_text();

	if (!text)
		return respond_error(wsi, c, 503, "out of memory");
	return respond_type(wsi, c, 200, "text/plain; version=0.0.4", text);
}

static int healthz(struct lws *wsi, struct conn *c)
{
	bool ok = !relay_srv.stopping && store_is_healthy(relay_srv.store);
	json_t *o = json_pack("{s:s}", "status",
	                      ok                   ? "ok"
	                      : relay_srv.stopping ? "stopping"
	                                           : "state not writable");
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return respond(wsi, c, ok ? 200 : 503, body);
}

/* The metrics listener (--metrics-listen) answers only /metrics and /healthz. */
static int route_metrics_vhost(struct lws *wsi, struct conn *c, const char *path, enum method m)
{
	if (m != M_GET)
		return respond_error(wsi, c, 405, "use GET");
	if (strcmp(path, "/metrics") == 0)
		return metrics(wsi, c);
	if (strcmp(path, "/healthz") == 0)
		return healthz(wsi, c);
	return respond_error(wsi, c, 404, "no such endpoint");
}

static int route_operations(struct lws *wsi, struct conn *c, const char *path, enum method m)
{
	if (m != M_GET)
		return respond_error(wsi, c, 405, "use GET");
	if (strcmp(path, "/status") == 0)
		return status(wsi, c);
	if (strcmp(path, "/healthz") == 0)
		return healthz(wsi, c);
	if (relay_srv.metrics_vhost)
		return respond_error(wsi, c, 404, "metrics are served on the metrics listener");
	return metrics(wsi, c);
}

static int route(struct lws *wsi, struct conn *c, const char *path)
{
	enum method m = method_of(wsi);

	if (m == M_OPTIONS)
		return respond(wsi, c, 204, NULL);
	if (relay_srv.metrics_vhost && lws_get_vhost(wsi) == relay_srv.metrics_vhost)
		return route_metrics_vhost(wsi, c, path, m);
	if (strcmp(path, "/status") == 0 || strcmp(path, "/metrics") == 0 ||
	    strcmp(path, "/healthz") == 0)
		return route_operations(wsi, c, path, m);
	if (strcmp(path, "/favicon.ico") == 0)
		return respond(wsi, c, 204, NULL);
	if (relay_is_static(path)) {
		int ret = m == M_GET ? relay_static_start(wsi, c, path) : -ENOENT;

		if (ret == 0)
			c->is_file = true;
		if (ret != -ENOENT)
			return ret;
		return respond_error(wsi, c, 404, "no such page (check web_dir)");
	}
	if (strncmp(path, "/session/", 9) == 0) {
		if (m == M_GET)
			return respond_error(wsi, c, 426,
			                     "websocket upgrade required: POST here for access");
		if (m != M_POST)
			return respond_error(wsi, c, 405, "use POST");
		return access_session(wsi, c, path + 9); /* c->is_access was set in on_http() */
	}
	if (strcmp(path, "/bids/deny") == 0 || strcmp(path, "/bids/allow") == 0) {
		if (m != M_GET && m != M_POST)
			return respond_error(wsi, c, 405, "use GET or POST");
		return bids(wsi, c, m, strcmp(path, "/bids/deny") == 0);
	}
	return respond_error(wsi, c, 404, "no such endpoint");
}

/* Body rules: POST needs Content-Length (411) of at most MAX_BODY (413). */
static int check_length(struct lws *wsi, struct conn *c, bool *wait_body)
{
	char buf[32];
	char *end;

	*wait_body = false;
	c->content_length = 0;
	if (method_of(wsi) != M_POST)
		return 0;
	if (lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
		return respond_error(wsi, c, 411, "Content-Length required (send an empty body)");
	c->content_length = strtoll(buf, &end, 10);
	if (*end || c->content_length < 0)
		return respond_error(wsi, c, 400, "bad Content-Length");
	if (c->content_length > MAX_BODY)
		return respond_error(wsi, c, 413, "request body too large");
	*wait_body = c->content_length > 0;
	return 0;
}

static int on_http(struct lws *wsi, struct conn *c, const char *path)
{
	bool wait_body;
	int ret;

	memset(c, 0, sizeof(*c));
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
	                (int)(relay_srv.o->http_timeout / 1000 + 1));
	if (relay_srv.stopping)
		return respond_error(wsi, c, 503, "server shutting down");
	c->is_access = method_of(wsi) == M_POST && strncmp(path, "/session/", 9) == 0;
	if (relay_headers_too_large(wsi))
		return respond_error(wsi, c, 431, "request headers too large (see --max-header)");
	if (c->is_access && !rate_allows(wsi))
		return respond_error(wsi, c, 429, "too many access calls, slow down");
	ret = check_length(wsi, c, &wait_body);
	if (ret || c->responded || wait_body)
		return ret;
	return route(wsi, c, path);
}

static int on_body_done(struct lws *wsi, struct conn *c)
{
	char path[256];

	if (c->responded)
		return 0;
	if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_POST_URI) <= 0)
		return respond_error(wsi, c, 400, "bad request");
	return route(wsi, c, path);
}

static int on_writeable(struct lws *wsi, struct conn *c)
{
	unsigned char *buf;
	int n;

	if (!c->responded)
		return 0;
	if (c->is_file) {
		n = relay_static_write(wsi, c);
		if (n)
			return n > 0 ? 0 : -1;
		c->is_file = false;
		c->responded = false;
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	buf = malloc(LWS_PRE + c->body_len + 1);
	if (!buf)
		return -1;
	if (c->body_len)
		memcpy(buf + LWS_PRE, c->body, c->body_len);
	n = lws_write(wsi, buf + LWS_PRE, c->body_len, LWS_WRITE_HTTP_FINAL);
	OPENSSL_cleanse(buf, LWS_PRE + c->body_len + 1);
	free(buf);
	if (c->body)
		OPENSSL_cleanse(c->body, c->body_len); /* it may hold an access code */
	free(c->body);
	c->body = NULL;
	c->responded = false;
	if (n < (int)c->body_len)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int relay_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
	struct conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, c, in ? (const char *)in : "/");
	case LWS_CALLBACK_HTTP_BODY:
		return 0; /* small bodies are read and ignored */
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return on_body_done(wsi, c);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return on_writeable(wsi, c);
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
	case LWS_CALLBACK_CLOSED_HTTP:
		if (c && c->body) {
			OPENSSL_cleanse(c->body, c->body_len); /* it may hold an access code */
			free(c->body);
			c->body = NULL;
		}
		if (c && c->is_file)
			relay_static_close(c);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- refusing websocket upgrades with a status ---- */

/* Write a complete error response now; the caller returns 1 so lws ends the transaction. */
static int refuse_upgrade(struct lws *wsi, int status, const char *message)
{
	char *body = error_json(status, message);
	size_t n = body ? strlen(body) : 0;
	unsigned char *buf = malloc(LWS_PRE + n + 1);
	int ret = -1;

	log_info("websocket upgrade refused (%d): %s", status, message);
	if (buf && !write_headers(wsi, status, "application/json", n)) {
		if (n)
			memcpy(buf + LWS_PRE, body, n);
		if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) == (int)n)
			ret = 1;
	}
	free(buf);
	free(body);
	return ret;
}

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
	const char *code;
	int err;

	if (s->stopping)
		return refusal(why, "server shutting down", 503);
	if (s->metrics_vhost && lws_get_vhost(wsi) == s->metrics_vhost)
		return refusal(why, "no websocket endpoint here", 404);
	if (request_path(wsi, path, sizeof(path)) <= 0 || strncmp(path, "/session/", 9) != 0)
		return refusal(why, "no websocket endpoint here", 404);
	code = lws_get_urlarg_by_name(wsi, "code=", cbuf, sizeof(cbuf));
	if (!code || !*code)
		return refusal(why, "missing code: POST to the access URL first", 401);
	if (s->nconns >= (size_t)s->o->max_connections) {
		s->m.redeem[REDEEM_FULL]++;
		return refusal(why, "too many connections", 503);
	}
	err = codes_redeem(s->codes, code, strlen(code), path + 9, relay_now_ms(), g);
	OPENSSL_cleanse(cbuf, sizeof(cbuf));
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
	s->m.redeem[REDEEM_OK]++;
	return 0;
}

/*
 * HTTP/1.1 upgrades come here first, so a refusal is an HTTP status. The grant is handed to
 * ESTABLISHED, which follows at once for the same connection. (A websocket inside HTTP/2,
 * RFC 8441, skips this callback: relay_ws_cb redeems its code at ESTABLISHED.)
 */
int relay_confirm_upgrade(struct lws *wsi, struct conn *c, const char *protocol)
{
	struct server *s = &relay_srv;
	const char *why;
	int status;

	(void)c;
	OPENSSL_cleanse(&s->handoff, sizeof(s->handoff));
	if (!protocol || strcmp(protocol, "websocket") != 0)
		return refuse_upgrade(wsi, 400, "only websocket upgrades are served");
	if (relay_headers_too_large(wsi))
		return refuse_upgrade(wsi, 431, "request headers too large (see --max-header)");
	status = relay_redeem(wsi, &s->handoff.grant, &why);
	if (status)
		return refuse_upgrade(wsi, status, why);
	s->handoff.wsi = wsi;
	return 0;
}
