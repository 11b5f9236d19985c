/*
 * relay/http: routing and responses of the HTTP API, compatible with practable/relay.
 *
 *   POST    /session/{topic}          Authorization: <jwt>  -> 200 {"uri": "<url>/session/{topic}?code=..."}   access.c
 *   POST    /bids/deny?bid=&exp=      relay:admin           -> 204   (also /bids/allow)                         admin.c
 *   GET     /bids/deny, /bids/allow   relay:admin           -> 200 {"booking_ids": [...]}                      admin.c
 *   GET     /status                   relay:stats           -> 200 [{...one per connection}]                   admin.c
 *   GET     /metrics, /healthz                              -> 200 (Prometheus text, {"status": "ok"})         admin.c
 *   GET     /dashboard/..., /demo/...                       -> 200 static pages                                static.c
 *   POST    /connect/{host}           prefix connect        -> 200 {"uri": ...} host control or client channel channel_access.c
 *   POST    /signal/{realm}           prefix signal, sub    -> 200 {"uri": ...} signaling peer                 signal.c
 *   POST    /meet/{sha256 hex}        prefix meet           -> 200 {"uri": ...} rendezvous participant         meet.c
 *   POST    /ice                      any relay token       -> 200 {"iceServers": [...], "expires": T}         ice.c
 *   POST /group, GET /groups, GET|PATCH|DELETE /groups/{id}  -> Disco's group API (body read)    discovery.c
 *   OPTIONS *                         CORS preflight        -> 204
 *
 * and the refusal of bad websocket upgrades with an HTTP status (relay_confirm_upgrade).
 * Errors are JSON {"code": "...", "message": "..."}. Responses are written from HTTP_WRITEABLE.
 * One request per HTTP/1 connection, and its body framed by one Content-Length or refused (RFC
 * 9112 section 6): see transaction_done() for why.
 */
#define LOG_MODULE "http"
#include "relay/internal.h"
#include "relay/cluster.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#define MAX_BODY 1024 /* access and bids calls carry no body; a little is tolerated */

enum relay_method relay_method_of(struct lws *wsi)
{
	static const struct {
		enum lws_token_indexes token;
		enum relay_method m;
	} methods[] = {
	        {WSI_TOKEN_GET_URI, M_GET},         {WSI_TOKEN_POST_URI, M_POST},
	        {WSI_TOKEN_OPTIONS_URI, M_OPTIONS}, {WSI_TOKEN_PATCH_URI, M_PATCH},
	        {WSI_TOKEN_DELETE_URI, M_DELETE},   {WSI_TOKEN_PUT_URI, M_PUT},
	};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (lws_hdr_total_length(wsi, methods[i].token))
			return methods[i].m;
	return M_OTHER;
}

static const char *status_text(int status)
{
	switch (status) {
	case 200:
		return "ok";
	case 201:
		return "created";
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
	case 409:
		return "conflict";
	case 501:
		return "not_implemented";
	case 507:
		return "insufficient_storage";
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

/* True for a request on an HTTP/1 connection (not a stream inside HTTP/2). */
static bool is_h1(struct lws *wsi)
{
	return lws_get_network_wsi(wsi) == wsi;
}

int relay_add_connection_close(struct lws *wsi, unsigned char **p, unsigned char *end)
{
	if (!is_h1(wsi))
		return 0; /* HTTP/2 has no Connection header */
	return lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
	                                    (const unsigned char *)"close", 5, p, end);
}

/*
 * What a 426 names: the protocol to upgrade to (RFC 9110 section 15.5.22; HTTP/1 only) and the
 * websocket version served (RFC 6455 section 4.4).
 */
static int upgrade_headers(struct lws *wsi, unsigned char **p, unsigned char *end)
{
	if (is_h1(wsi) && add_header(wsi, "upgrade:", "websocket", p, end))
		return -1;
	return add_header(wsi, "sec-websocket-version:", "13", p, end);
}

/* Status line and headers, CORS included, and @location unless NULL; the body follows. */
static int write_headers(struct lws *wsi, int status, const char *type, size_t body_len,
                         const char *location)
{
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
	                                   *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, (unsigned int)status, type, body_len, &p, end) ||
	    relay_add_connection_close(wsi, &p, end) ||
	    add_header(wsi, "access-control-allow-origin:", relay_srv.o->cors_origin, &p, end) ||
	    add_header(wsi, "cache-control:", "no-store", &p, end) ||
	    (status == 426 && upgrade_headers(wsi, &p, end)) ||
	    (location && add_header(wsi, "location:", location, &p, end)) ||
	    (status == 204 && lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) &&
	     (add_header(wsi, "access-control-allow-methods:", "GET, POST, PATCH, DELETE, OPTIONS",
	                 &p, end) ||
	      add_header(wsi, "access-control-allow-headers:", "Authorization, Content-Type", &p,
	                 end) ||
	      add_header(wsi, "access-control-max-age:", "600", &p, end))) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

static int respond(struct lws *wsi, struct conn *c, int status, const char *type, char *body,
                   const char *location)
{
	c->responded = true;
	c->body = body;
	c->body_len = body ? strlen(body) : 0;
	if (c->is_access && status >= 100 && status < 600)
		relay_srv.m.access[status]++;
	if (write_headers(wsi, status, type, c->body_len, location))
		return -1;
	lws_callback_on_writable(wsi);
	return 0;
}

/* Answer with @status and @body (taken over, may be NULL for no body). */
int relay_respond_type(struct lws *wsi, struct conn *c, int status, const char *type, char *body)
{
	return respond(wsi, c, status, type, body, NULL);
}

int relay_respond_created(struct lws *wsi, struct conn *c, const char *location, char *body)
{
	return respond(wsi, c, 201, "application/json", body, location);
}

int relay_respond(struct lws *wsi, struct conn *c, int status, char *body)
{
	return relay_respond_type(wsi, c, status, "application/json", body);
}

/* The JSON "code" of an error: the status's name, or the case's for the RELAY_WHY_* reasons. */
static const char *error_code(int status, const char *message)
{
	if (strcmp(message, RELAY_WHY_PEER_CONNECTED) == 0)
		return "peer-connected";
	if (strcmp(message, RELAY_WHY_MEETING_FULL) == 0)
		return "meeting-full";
	return status_text(status);
}

static char *error_json(int status, const char *message)
{
	json_t *o =
	        json_pack("{s:s, s:s}", "code", error_code(status, message), "message", message);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

int relay_respond_error(struct lws *wsi, struct conn *c, int status, const char *message)
{
	return relay_respond(wsi, c, status, error_json(status, message));
}

/* ---- request checks ---- */

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

/* ---- routing ---- */

/* The metrics listener (--metrics-listen) answers only /metrics and /healthz. */
static int route_metrics_vhost(struct lws *wsi, struct conn *c, const char *path,
                               enum relay_method m)
{
	if (m != M_GET)
		return relay_respond_error(wsi, c, 405, "use GET");
	if (strcmp(path, "/metrics") == 0)
		return relay_get_metrics(wsi, c);
	if (strcmp(path, "/healthz") == 0)
		return relay_get_healthz(&relay_srv, wsi, c);
	return relay_respond_error(wsi, c, 404, "no such endpoint");
}

static int route_operations(struct lws *wsi, struct conn *c, const char *path, enum relay_method m)
{
	if (m != M_GET)
		return relay_respond_error(wsi, c, 405, "use GET");
	if (strcmp(path, "/status") == 0)
		return relay_get_status(&relay_srv, wsi, c);
	if (strcmp(path, "/healthz") == 0)
		return relay_get_healthz(&relay_srv, wsi, c);
	if (relay_srv.metrics_vhost)
		return relay_respond_error(wsi, c, 404,
		                           "metrics are served on the metrics listener");
	return relay_get_metrics(wsi, c);
}

static int route(struct lws *wsi, struct conn *c, const char *path)
{
	enum relay_method m = relay_method_of(wsi);

	if (m == M_OPTIONS)
		return relay_respond(wsi, c, 204, NULL);
	if (relay_srv.metrics_vhost && lws_get_vhost(wsi) == relay_srv.metrics_vhost)
		return route_metrics_vhost(wsi, c, path, m);
	if (strcmp(path, "/status") == 0 || strcmp(path, "/metrics") == 0 ||
	    strcmp(path, "/healthz") == 0)
		return route_operations(wsi, c, path, m);
	if (strcmp(path, "/favicon.ico") == 0)
		return relay_respond(wsi, c, 204, NULL);
	if (relay_is_static(path)) {
		int ret = m == M_GET ? relay_static_start(wsi, c, path) : -ENOENT;

		if (ret == 0)
			c->is_file = true;
		if (ret != -ENOENT)
			return ret;
		return relay_respond_error(wsi, c, 404, "no such page (check web_dir)");
	}
	if (strncmp(path, "/session/", 9) == 0) {
		if (m == M_GET)
			return relay_respond_error(
			        wsi, c, 426, "websocket upgrade required: POST here for access");
		if (m != M_POST)
			return relay_respond_error(wsi, c, 405, "use POST");
		return relay_access_session(&relay_srv, wsi, c,
		                            path + 9); /* c->is_access was set in on_http() */
	}
	if (strncmp(path, "/connect/", 9) == 0)
		return relay_channel_access(&relay_srv, wsi, c, m, path + 9);
	if (strncmp(path, "/signal/", 8) == 0)
		return relay_signal_access(&relay_srv, wsi, c, m, path + 8);
	if (strncmp(path, "/meet/", 6) == 0)
		return relay_meet_access(&relay_srv, wsi, c, m, path + 6);
	if (strcmp(path, "/ice") == 0)
		return relay_ice_access(&relay_srv, wsi, c, m);
	if (strcmp(path, "/group") == 0 || strcmp(path, "/groups") == 0 ||
	    strncmp(path, "/groups/", 8) == 0)
		return relay_discovery(&relay_srv, wsi, c, m, path);
	if (strcmp(path, "/bids/deny") == 0 || strcmp(path, "/bids/allow") == 0) {
		if (m != M_GET && m != M_POST)
			return relay_respond_error(wsi, c, 405, "use GET or POST");
		return relay_bids(&relay_srv, wsi, c, m == M_GET, strcmp(path, "/bids/deny") == 0);
	}
	return relay_respond_error(wsi, c, 404, "no such endpoint");
}

/* ---- request framing (RFC 9112 section 6) ---- */

/* A Content-Length value: decimal digits, trailing blanks allowed (lws drops leading ones). */
static int parse_length(const char *s, int64_t *len)
{
	size_t n = strspn(s, "0123456789");

	if (n == 0 || n > 18 || s[n + strspn(s + n, " \t")] != '\0')
		return -EINVAL;
	*len = strtoll(s, NULL, 10);
	return 0;
}

/*
 * How the request's body is framed: NULL when relay and any proxy before it must agree, else the
 * reason to refuse, with the status in *status. @te: a Transfer-Encoding header came; @cl: the
 * Content-Length as lws joins repeated ones ("4, 5"), "" when absent, NULL when too long to
 * copy. Bodies are read only by Content-Length, of at most @max bytes.
 */
static const char *framing_error(bool te, const char *cl, bool post, int64_t max, int64_t *len,
                                 int *status)
{
	*len = 0;
	*status = 400;
	if (te && (!cl || *cl))
		return "Transfer-Encoding and Content-Length together";
	if (te && post) {
		*status = 411;
		return "Content-Length required (Transfer-Encoding is not supported)";
	}
	if (te)
		return "Transfer-Encoding is not supported";
	if (cl && !*cl && post) {
		*status = 411;
		return "Content-Length required (send an empty body)";
	}
	if (cl && !*cl)
		return NULL;
	if (!cl || parse_length(cl, len))
		return "bad Content-Length: one, in decimal digits";
	if (*len > max) {
		*status = 413;
		return "request body too large";
	}
	return NULL;
}

/* Routes that read their body (into c->req), of at most DISCOVERY_MAX_BODY bytes. */
static bool reads_body(const char *path)
{
	return strcmp(path, "/group") == 0 || strcmp(path, "/groups") == 0 ||
	       strncmp(path, "/groups/", 8) == 0;
}

/* framing_error() on the request's headers; sets c->content_length. */
static const char *check_framing(struct lws *wsi, struct conn *c, const char *path, int *status)
{
	char cl[32];
	bool te = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
	int n = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);

	return framing_error(te, n < 0 ? NULL : cl, relay_method_of(wsi) == M_POST,
	                     reads_body(path) ? DISCOVERY_MAX_BODY : MAX_BODY, &c->content_length,
	                     status);
}

/* POSTs that hand out access (codes, TURN credentials): counted and rate limited per address. */
static bool is_access_path(const char *path)
{
	return strncmp(path, "/session/", 9) == 0 || strncmp(path, "/connect/", 9) == 0 ||
	       strncmp(path, "/signal/", 8) == 0 || strncmp(path, "/meet/", 6) == 0 ||
	       strcmp(path, "/ice") == 0;
}

/* Why an instance that never loaded the cluster's deny list refuses an access call (503). */
static const char *unloaded_why(void)
{
	static char why[256];
	const char *trouble = relay_cluster_trouble();

	snprintf(why, sizeof(why), "loading the deny list from redis%s%s",
	         trouble && strncmp(trouble, "loading", 7) != 0 ? ": " : "",
	         trouble && strncmp(trouble, "loading", 7) != 0 ? trouble : "");
	return why;
}

static int on_http(struct lws *wsi, struct conn *c, const char *path)
{
	const char *why;
	int status;

	buf_release(&c->req);
	memset(c, 0, sizeof(*c));
	lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT,
	                (int)(relay_srv.o->http_timeout / 1000 + 1));
	if (relay_srv.stopping)
		return relay_respond_error(wsi, c, 503, "server shutting down");
	c->is_access = relay_method_of(wsi) == M_POST && is_access_path(path);
	why = check_framing(wsi, c, path, &status);
	if (why) {
		log_info("request refused (%d): %s", status, why);
		return relay_respond_error(wsi, c, status, why);
	}
	if (relay_headers_too_large(wsi))
		return relay_respond_error(wsi, c, 431,
		                           "request headers too large (see --max-header)");
	if (c->is_access && !relay_rate_check(&relay_srv, wsi))
		return relay_respond_error(wsi, c, 429, "too many access calls, slow down");
	if (c->is_access && relay_cluster_unloaded()) /* it would not know the cluster's denies */
		return relay_respond_error(wsi, c, 503, unloaded_why());
	/* A discovery change is a synchronous SQLite write (fsync) on the loop: per address, it
	 * takes a token from the access calls' bucket, or one caller could stall every socket. */
	if (reads_body(path) && relay_method_of(wsi) != M_GET && !relay_rate_check(&relay_srv, wsi))
		return relay_respond_error(wsi, c, 429, "too many changes, slow down");
	if (reads_body(path)) {
		/* Refused before its body is held: a caller without a valid token cannot make
		 * the relay keep DISCOVERY_MAX_BODY bytes per connection for --http-timeout. */
		why = relay_discovery_refusal(&relay_srv, wsi, relay_method_of(wsi), path, &status);
		if (why)
			return relay_respond_error(wsi, c, status, why);
		buf_init(&c->req, DISCOVERY_MAX_BODY);
	}
	if ((relay_method_of(wsi) == M_POST || reads_body(path)) && c->content_length > 0)
		return 0; /* routed at HTTP_BODY_COMPLETION */
	return route(wsi, c, path);
}

/* A piece of the body: kept for the routes that read it (bounded), else dropped. */
static int on_body(struct lws *wsi, struct conn *c, const void *in, size_t len)
{
	int err;

	if (c->responded || !c->req.max || !len)
		return 0;
	err = buf_add(&c->req, in, len);
	if (!err)
		return 0;
	buf_release(&c->req);
	if (err == -ENOMEM)
		return relay_respond_error(wsi, c, 503, "out of memory");
	/* More than Content-Length announced (only an HTTP/2 peer can): refused. */
	return relay_respond_error(wsi, c, 413, "request body too large");
}

/* The request's path, whatever its method: its length, or -1. */
static int request_path(struct lws *wsi, char *out, int len)
{
	static const enum lws_token_indexes uris[] = {
	        WSI_TOKEN_POST_URI, WSI_TOKEN_PATCH_URI, WSI_TOKEN_DELETE_URI,
	        WSI_TOKEN_PUT_URI,  WSI_TOKEN_GET_URI,   WSI_TOKEN_OPTIONS_URI,
	};

	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++)
		if (lws_hdr_total_length(wsi, uris[i]))
			return lws_hdr_copy(wsi, out, len, uris[i]);
	return -1;
}

static int on_body_done(struct lws *wsi, struct conn *c)
{
	char path[256];

	if (c->responded)
		return 0;
	if (request_path(wsi, path, sizeof(path)) <= 0)
		return relay_respond_error(wsi, c, 400, "bad request");
	return route(wsi, c, path);
}

/*
 * Read and drop what the client has already sent past its request, so that the close does not
 * find unread bytes: with them the kernel answers with a reset instead of a FIN, and a reset can
 * destroy the answer still in flight. Bounded: what comes later is the client's problem.
 */
static void drain_input(struct lws *wsi)
{
	char buf[4096];
	int fd = lws_get_socket_fd(wsi);

	for (int i = 0; fd >= 0 && i < 64; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			break;
}

/*
 * The answer is out. An HTTP/2 stream ends; an HTTP/1 connection closes (after lws has flushed
 * what it holds), whatever the outcome: lws 4.1's header parser can disagree with a proxy about
 * where a request ends (an unknown header whose name is the start of a known one, "X-A:", or an
 * obsolete folded line, hides the header line after it, Content-Length included), and the
 * callback cannot see it happen. Reading nothing after the first request on a connection leaves
 * nothing to smuggle (RFC 9112 section 9.6: "Connection: close" was sent).
 */
static int transaction_done(struct lws *wsi)
{
	if (!is_h1(wsi))
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	drain_input(wsi);
	return -1;
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
		return transaction_done(wsi);
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
	return transaction_done(wsi);
}

/* ---- refusing websocket upgrades with a status ---- */

/*
 * Write a complete error response now and return -1: lws closes the connection once it is
 * flushed, as after every HTTP/1 answer (transaction_done()).
 */
static int refuse_upgrade(struct lws *wsi, int status, const char *message)
{
	char *body = error_json(status, message);
	size_t n = body ? strlen(body) : 0;
	unsigned char *buf = malloc(LWS_PRE + n + 1);

	log_info("websocket upgrade refused (%d): %s", status, message);
	if (buf && !write_headers(wsi, status, "application/json", n, NULL)) {
		if (n)
			memcpy(buf + LWS_PRE, body, n);
		if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) == (int)n)
			drain_input(wsi);
	}
	free(buf);
	free(body);
	return -1;
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

int relay_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
	struct conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return on_http(wsi, c, in ? (const char *)in : "/");
	case LWS_CALLBACK_HTTP_BODY:
		return on_body(wsi, c, in, len);
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
		if (c)
			buf_release(&c->req);
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}
