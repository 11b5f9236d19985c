/*
 * host/ingest: the local server (see ingest.h), on the main thread's uv loop: a uv_poll_t for
 * the listener and one per connection, a uv_timer_t for the deadlines (each second), and a
 * uv_async_t for what the streams' threads hand over through a mutex-guarded queue. Every
 * connection has a bounded input buffer (a request head up to 16 KiB, then body pieces) and a
 * bounded output buffer (4 MiB: a local websocket that stops reading loses messages, counted,
 * rather than growing the host). A closed connection's socket is closed at once and its memory
 * freed by the close callback of its handle, once libuv has let go of it.
 *
 * Connection states:
 *   HEAD --POST /ts/N--> BODY (streamed into the feed) --end--> answer 204, close
 *        --GET /ws/N upgrade--> WS (frames both ways) --close--> gone
 *        --/api/...--> API_BODY (collected, at most 64 KiB) --complete--> answer, close
 *        --anything else--> answer 4xx, close
 */
#define LOG_MODULE "ingest"
#include "host/ingest.h"
#include "pkg/buf/buf.h"
#include "pkg/clock/clock.h"
#include "pkg/http1/http1.h"
#include "pkg/log/log.h"
#include "pkg/wsframe/wsframe.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#define NS_PER_MS    1000000
#define API_BODY_MAX (64 * 1024) /* a REST body */
#define REQUEST_MS   10000       /* for a request head or an API body: then 408 */
#define ANSWER_MS    20000       /* for the client to read an answer: then closed */
#define IN_MAX       (64 * 1024)
#define HEAD_MAX     (16 * 1024)
#define OUT_MAX      (4 << 20)
#define MESSAGE_MAX  (4 << 20)
#define CONNS_MAX    64
#define FEED_MAX     64
#define OUTBOX_MAX   256
#define OUTBOX_BYTES (8 << 20)

enum conn_state { C_HEAD, C_BODY, C_API_BODY, C_WS, C_DONE };

struct conn {
	uv_poll_t poll; /* data: the conn */
	struct host_ingest *g;
	int fd;
	enum conn_state state;
	struct buf in;        /* at most IN_MAX: a request head, body pieces or frames */
	struct http1_req req; /* views into in: valid in C_HEAD only */
	char feed[FEED_MAX];
	char method[8], path[256];
	int64_t body_left; /* bytes, or -1: chunked, -2: until the peer closes */
	struct http1_chunked ch;
	struct buf msg;        /* the API body: at most API_BODY_MAX, and its NUL */
	struct ws_message wsm; /* a local websocket's message being reassembled */
	struct buf out;        /* at most OUT_MAX */
	size_t out_off;        /* unsent bytes: out.p[out_off .. out.len) */
	bool want_out;         /* UV_WRITABLE asked for */
	int64_t since_ms;  /* when it connected: a request head or API body must come within 10 s */
	const char *allow; /* an Allow header for a 405 */
	bool unclaimed;    /* told once that nothing forwards this feed */
	uint64_t dropped;
	bool closed; /* closed; freed by its handle's close callback */
	struct conn *next;
};

/* Messages from the streams' threads. Every field guarded by @lock. */
struct outbox {
	pthread_mutex_t lock;
	struct omsg {
		char feed[FEED_MAX];
		uint8_t opcode;
		uint8_t *p;
		size_t n;
	} m[OUTBOX_MAX];
	size_t head, n, bytes;
	uint64_t dropped;
};

struct host_ingest {
	struct host_ingest_hooks hooks;
	int lfd, port;
	uv_poll_t listener;
	uv_timer_t tick;
	uv_async_t wake; /* the outbox has messages; sent from the streams' threads */
	int handles;     /* of the three above, not yet closed: the last close frees @g */
	bool paused;     /* out of file descriptors: the listener rests until the next tick */
	struct conn *conns;
	size_t n_conns;
	struct outbox box;
};

/* ---- output ---- */

static void conn_close(struct host_ingest *g, struct conn *c);

static void on_conn_io(uv_poll_t *h, int status, int events);

static void arm_out(struct conn *c, bool on)
{
	if (c->want_out != on &&
	    !uv_poll_start(&c->poll, UV_READABLE | (on ? UV_WRITABLE : 0), on_conn_io))
		c->want_out = on;
}

/* Write what is buffered; false when the connection failed. */
static bool flush_out(struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t w = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off,
		                 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0)
			return false;
		c->out_off += (size_t)w;
	}
	if (c->out_off == c->out.len)
		c->out_off = c->out.len = 0;
	arm_out(c, c->out.len > 0);
	return true;
}

/* Room for @n more bytes in the output buffer (bounded by OUT_MAX); false when there is none. */
static bool reserve_out(struct conn *c, size_t n)
{
	if (c->out_off && n > buf_room(&c->out)) {
		/* move the unsent bytes to the front once, rather than after every send */
		buf_consume(&c->out, c->out_off);
		c->out_off = 0;
	}
	return buf_reserve(&c->out, n) == 0;
}

/* Append to the output buffer, whole or not at all. */
static bool put_out(struct conn *c, const void *p, size_t n)
{
	return reserve_out(c, n) && buf_add(&c->out, p, n) == 0;
}

/* An unmasked frame (server to client), queued whole or not at all. */
static bool put_frame(struct conn *c, uint8_t opcode, const uint8_t *p, size_t n)
{
	uint8_t h[WSFRAME_MAX_HEADER];
	size_t hl = wsframe_header(h, opcode, true, n, NULL);

	return reserve_out(c, hl + n) && put_out(c, h, hl) && put_out(c, p, n);
}

static const char *reason_of(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Content Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	default:
		return "Error";
	}
}

/* Queue an answer; the connection closes once it is written (by conn_input()). @body: JSON text
 * or NULL. */
static void answer(struct conn *c, int status, const char *body)
{
	char head[256];
	size_t blen = body ? strlen(body) : 0;
	int n;

	if (status == 204) /* no content, so no content headers (RFC 9110 section 8.6) */
		n = snprintf(head, sizeof(head),
		             "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
	else
		n = snprintf(head, sizeof(head),
		             "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
		             "Content-Length: %zu\r\n%s%s%sConnection: close\r\n\r\n",
		             status, reason_of(status), blen, c->allow ? "Allow: " : "",
		             c->allow ? c->allow : "", c->allow ? "\r\n" : "");

	put_out(c, head, (size_t)n);
	if (blen)
		put_out(c, body, blen);
	c->state = C_DONE;
}

static void answer_error(struct conn *c, int status, const char *code, const char *message)
{
	json_t *o = json_pack("{s:s, s:s}", "code", code, "message", message);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	answer(c, status, s);
	free(s);
	json_decref(o);
}

/* ---- feeds and websockets ---- */

static void to_feed(struct host_ingest *g, struct conn *c, uint8_t opcode, const uint8_t *p,
                    size_t n)
{
	if (!g->hooks.feed(g->hooks.arg, c->feed, opcode, p, n) && !c->unclaimed) {
		log_warn("no stream or rule forwards feed '%s': its data is discarded", c->feed);
		c->unclaimed = true;
	}
}

bool host_ingest_feed_name_ok(const char *p, size_t n)
{
	if (n == 0 || n >= FEED_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '_' || p[i] == '.'))
			return false;
	return true;
}

static bool ws_frame(struct host_ingest *g, struct conn *c, const struct ws_frame *f,
                     const uint8_t *p);

/* Read websocket frames from c->in; false when the connection is to go. */
static bool ws_input(struct host_ingest *g, struct conn *c)
{
	size_t off = 0;
	struct ws_frame f;
	const uint8_t *payload;
	int r, h;

	while ((r = wsframe_next(c->in.p, c->in.len, &off, &f, &payload)) > 0) {
		uint8_t *p = c->in.p + (payload - c->in.p); /* the payload, writable */

		if (!f.masked)
			return false; /* RFC 6455 section 5.1: clients mask every frame */
		wsframe_mask(p, (size_t)f.payload_len, f.mask, 0);
		if (!ws_frame(g, c, &f, p) || c->state != C_WS)
			return false;
	}
	if (r < 0)
		return false;
	h = wsframe_parse(c->in.p + off, c->in.len - off, &f);
	if (h > 0 && (size_t)h + f.payload_len > IN_MAX)
		return false; /* a frame larger than the buffer: use fragments */
	buf_consume(&c->in, off);
	return true;
}

/* Close a local websocket with @code (RFC 6455 section 7.4.1). */
static bool ws_fail(struct conn *c, uint16_t code)
{
	uint8_t body[2] = {(uint8_t)(code >> 8), (uint8_t)code};

	put_frame(c, WS_CLOSE, body, 2);
	c->state = C_DONE;
	return false;
}

/* One frame from a local websocket; false when the connection is to go. */
static bool ws_frame(struct host_ingest *g, struct conn *c, const struct ws_frame *f,
                     const uint8_t *p)
{
	size_t n = (size_t)f->payload_len;
	int r;

	if (f->opcode == WS_PING)
		return put_frame(c, WS_PONG, p, n);
	if (f->opcode == WS_CLOSE) {
		put_frame(c, WS_CLOSE, p, n < 2 ? 0 : 2);
		c->state = C_DONE;
		return false;
	}
	if (f->opcode == WS_PONG)
		return true;
	/* the relay would close the host's link for a bad message: stop it here */
	r = wsframe_message_add(&c->wsm, f, p, MESSAGE_MAX);
	if (r == -EILSEQ)
		return ws_fail(c, 1007);
	if (r == -EMSGSIZE)
		return ws_fail(c, 1009);
	if (r < 0)
		return ws_fail(c, 1002);
	if (r == 1)
		to_feed(g, c, c->wsm.opcode, c->wsm.p, c->wsm.len);
	return true;
}

/* RFC 6455 section 4.2.1: the key is 16 random bytes in base64, so 24 characters ending "==". */
static bool ws_key_ok(struct http1_view k)
{
	static const char b64[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (k.len != 24 || k.p[22] != '=' || k.p[23] != '=')
		return false;
	for (size_t i = 0; i < 22; i++)
		if (!memchr(b64, k.p[i], sizeof(b64) - 1))
			return false;
	return true;
}

static void start_ws(struct conn *c, size_t head_len)
{
	char accept[WSFRAME_ACCEPT_LEN], head[256];
	int n;

	if (!ws_key_ok(c->req.ws_key) || !http1_view_is(c->req.ws_version, "13")) {
		answer_error(c, 400, "bad-request",
		             "a websocket upgrade needs a key and version 13");
		return;
	}
	wsframe_accept_key(c->req.ws_key.p, c->req.ws_key.len, accept);
	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	             "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	             accept);
	put_out(c, head, (size_t)n);
	buf_consume(&c->in, head_len);
	c->state = C_WS;
	log_notice("local websocket on feed '%s'", c->feed);
}

/* ---- bodies ---- */

/* Take body bytes from c->in: feed them (C_BODY) or collect them (C_API_BODY). Returns 1 when
 * the body is complete, 0 for more, -1 on malformed framing, -2 when an API body passes
 * API_BODY_MAX (or no memory is left for it). */
static int take_body(struct host_ingest *g, struct conn *c)
{
	size_t n = c->in.len, used = n;
	bool done = false;
	ssize_t data;

	if (c->body_left == -1) {
		data = http1_dechunk(&c->ch, c->in.p, n, &used, &done);
		if (data < 0)
			return -1;
	} else if (c->body_left >= 0) {
		used = (size_t)c->body_left < n ? (size_t)c->body_left : n;
		data = (ssize_t)used;
		c->body_left -= (int64_t)used;
		done = c->body_left == 0;
	} else {
		data = (ssize_t)n; /* until the peer closes */
	}
	if (data > 0 && c->state == C_BODY) {
		to_feed(g, c, WS_BINARY, c->in.p, (size_t)data);
	} else if (data > 0) {
		/* msg's max leaves a byte for call_api()'s NUL */
		if ((size_t)data > API_BODY_MAX - c->msg.len ||
		    buf_add(&c->msg, c->in.p, (size_t)data))
			return -2;
	}
	buf_consume(&c->in, used);
	return done;
}

static void call_api(struct host_ingest *g, struct conn *c)
{
	json_t *out = NULL;
	char *body = NULL;
	int status;

	if (buf_add(&c->msg, "", 1)) {
		answer_error(c, 503, "no-memory", "out of memory");
		return;
	}
	status = g->hooks.api(g->hooks.arg, c->method, c->path, (const char *)c->msg.p, &out);
	OPENSSL_cleanse(c->msg.p, c->msg.len); /* a rule's body holds its token */
	if (out)
		body = json_dumps(out, JSON_COMPACT);
	answer(c, status, body);
	free(body);
	json_decref(out);
}

static void body_input(struct host_ingest *g, struct conn *c)
{
	int r = take_body(g, c);

	if (r == -2) {
		answer_error(c, 413, "too-large", "API bodies are limited to 64 KiB");
	} else if (r < 0) {
		answer_error(c, 400, "bad-request", "malformed chunked body");
	} else if (r == 1 && c->state == C_API_BODY) {
		call_api(g, c);
	} else if (r == 1) {
		log_notice("POST to feed '%s' ended", c->feed);
		answer(c, 204, NULL);
	}
}

/* ---- request heads ---- */

static void route(struct host_ingest *g, struct conn *c, size_t head_len)
{
	struct http1_req *r = &c->req;
	bool ts = r->path.len > 4 && memcmp(r->path.p, "/ts/", 4) == 0;
	bool ws = r->path.len > 4 && memcmp(r->path.p, "/ws/", 4) == 0;
	bool api = r->path.len >= 4 && memcmp(r->path.p, "/api", 4) == 0;
	bool post = http1_view_is(r->method, "POST"), put = http1_view_is(r->method, "PUT");
	bool sized = r->chunked || r->content_length >= 0;

	snprintf(c->method, sizeof(c->method), "%.*s", (int)r->method.len, r->method.p);
	snprintf(c->path, sizeof(c->path), "%.*s", (int)r->path.len, r->path.p);
	c->body_left = r->chunked ? -1 : r->content_length >= 0 ? r->content_length : 0;
	if (ts || ws) {
		if (!host_ingest_feed_name_ok(r->path.p + 4, r->path.len - 4)) {
			answer_error(c, 400, "bad-feed",
			             "feed names are 1 to 63 of A-Z a-z 0-9 . _ -");
			return;
		}
		snprintf(c->feed, sizeof(c->feed), "%.*s", (int)r->path.len - 4, r->path.p + 4);
	}
	if (ws) {
		if (!r->websocket || !http1_view_is(r->method, "GET"))
			answer_error(c, 400, "bad-request", "/ws/NAME takes a websocket upgrade");
		else
			start_ws(c, head_len);
		if (c->state == C_WS && c->in.len && !ws_input(g, c))
			c->state = C_DONE; /* frames that came right behind the upgrade */
		return;
	}
	/* the views in c->req point into c->in: done with them from here */
	buf_consume(&c->in, head_len);
	if (ts) {
		if (!post && !put) {
			c->allow = "POST, PUT";
			answer_error(c, 405, "bad-method", "/ts/NAME takes a POST body");
			return;
		}
		if (!sized)
			c->body_left = -2; /* HTTP/1.0 style: until the peer closes */
		c->state = C_BODY;
		log_notice("POST to feed '%s'", c->feed);
	} else if (api) {
		if (!sized && post) {
			answer_error(c, 411, "length-required", "POST needs a length or chunks");
			return;
		}
		c->state = C_API_BODY;
	} else {
		answer_error(c, 404, "not-found", "no such path (try /ts/NAME, /ws/NAME, /api/)");
		return;
	}
	body_input(g, c);
}

static void head_input(struct host_ingest *g, struct conn *c)
{
	int r = http1_parse_request(c->in.p, c->in.len, &c->req);

	if ((r == 0 && c->in.len >= HEAD_MAX) || r > HEAD_MAX)
		answer_error(c, 431, "too-large", "request head over 16 KiB");
	else if (r == -ENOTSUP)
		answer_error(c, 501, "not-implemented",
		             "only HTTP/1.x, bodies chunked or with a length");
	else if (r < 0)
		answer_error(c, 400, "bad-request", "malformed HTTP request");
	else if (r > 0)
		route(g, c, (size_t)r);
}

/* ---- connections ---- */

static void on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;

	buf_release(&c->in);
	buf_release(&c->msg);
	wsframe_message_release(&c->wsm);
	buf_release(&c->out);
	free(c);
}

/* Close @c now (its watch, socket and place in the list); its handle's close callback frees it,
 * so a caller walking the list, or an event of the same batch, may still look at it. */
static void conn_close(struct host_ingest *g, struct conn *c)
{
	struct conn **pp = &g->conns;

	if (c->closed)
		return;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	if (c->state == C_WS)
		log_notice("local websocket on feed '%s' gone", c->feed);
	if (c->dropped)
		log_warn("%llu messages for a slow local websocket on '%s' were dropped",
		         (unsigned long long)c->dropped, c->feed);
	uv_close((uv_handle_t *)&c->poll, on_conn_closed); /* stops watching: the fd may go */
	close(c->fd);
	c->fd = -1;
	c->closed = true;
	g->n_conns--;
}

static void conn_input(struct host_ingest *g, struct conn *c)
{
	ssize_t n;

	/* all of IN_MAX at the first read, as the former array: a POST body's reads, and so its
	 * pieces fed to the streams, stay as large as they were */
	if (buf_reserve(&c->in, buf_left(&c->in))) {
		conn_close(g, c); /* out of memory */
		return;
	}
	n = recv(c->fd, c->in.p + c->in.len, buf_room(&c->in), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return;
	if (n <= 0) {
		if (c->state == C_BODY && c->body_left == -2)
			log_notice("POST to feed '%s' ended", c->feed);
		conn_close(g, c);
		return;
	}
	c->in.len += (size_t)n;
	if (c->state == C_HEAD)
		head_input(g, c);
	else if (c->state == C_BODY || c->state == C_API_BODY)
		body_input(g, c);
	else if (c->state == C_WS && !ws_input(g, c))
		c->state = C_DONE;
	else if (c->state == C_DONE)
		c->in.len = 0; /* C_DONE: ignore the rest */
	if (!flush_out(c) || (c->state == C_DONE && !c->out.len))
		conn_close(g, c);
}

/* A connection's socket is ready: room for what waits, input, or its end (an error). */
static void on_conn_io(uv_poll_t *h, int status, int events)
{
	struct conn *c = h->data;
	struct host_ingest *g = c->g;

	if (status < 0)
		events = UV_READABLE; /* libuv stopped the handle: the read reports the error */
	if (events & UV_WRITABLE) {
		if (!flush_out(c) || (c->state == C_DONE && !c->out.len)) {
			conn_close(g, c);
			return;
		}
	}
	if (events & (UV_READABLE | UV_DISCONNECT))
		conn_input(g, c);
}

static void accept_conns(struct host_ingest *g)
{
	for (;;) {
		int fd = accept4(g->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			/* the listener would stay readable and spin the loop: rest it a second */
			log_warn("out of file descriptors: not accepting for a second");
			uv_poll_stop(&g->listener);
			g->paused = true;
		}
		if (fd < 0)
			return;
		if (g->n_conns >= CONNS_MAX || !(c = calloc(1, sizeof(*c)))) {
			log_warn("too many local connections (%d): refusing one", CONNS_MAX);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->g = g;
		buf_init(&c->in, IN_MAX);
		buf_init(&c->msg, API_BODY_MAX + 1);
		buf_init(&c->out, OUT_MAX);
		c->since_ms = clock_mono_ns() / NS_PER_MS;
		if (uv_poll_init(g->listener.loop, &c->poll, fd)) {
			close(fd);
			free(c);
			continue;
		}
		c->poll.data = c;
		uv_poll_start(&c->poll, UV_READABLE, on_conn_io);
		c->next = g->conns;
		g->conns = c;
		g->n_conns++;
	}
}

/* ---- from the relay ---- */

void host_ingest_from_relay(struct host_ingest *g, const char *feed, uint8_t opcode,
                            const uint8_t *p, size_t n)
{
	struct outbox *b = &g->box;
	uint8_t *copy = malloc(n ? n : 1);
	bool ok;

	if (copy && n)
		memcpy(copy, p, n);
	pthread_mutex_lock(&b->lock);
	ok = copy && b->n < OUTBOX_MAX && b->bytes + n <= OUTBOX_BYTES;
	if (ok) {
		struct omsg *m = &b->m[(b->head + b->n) % OUTBOX_MAX];

		snprintf(m->feed, sizeof(m->feed), "%s", feed);
		m->opcode = opcode;
		m->p = copy;
		m->n = n;
		b->n++;
		b->bytes += n;
	} else {
		b->dropped++;
	}
	pthread_mutex_unlock(&b->lock);
	if (!ok)
		free(copy);
	else
		uv_async_send(&g->wake);
}

static void deliver(struct host_ingest *g, const struct omsg *m)
{
	for (struct conn *c = g->conns, *next; c; c = next) {
		next = c->next;
		if (c->state != C_WS || strcmp(c->feed, m->feed) != 0)
			continue;
		if (!put_frame(c, m->opcode, m->p, m->n))
			c->dropped++;
		else if (!flush_out(c))
			conn_close(g, c);
	}
}

static void drain_outbox(uv_async_t *h)
{
	struct host_ingest *g = h->data;
	struct outbox *b = &g->box;

	for (;;) {
		struct omsg m;

		pthread_mutex_lock(&b->lock);
		if (!b->n) {
			pthread_mutex_unlock(&b->lock);
			return;
		}
		m = b->m[b->head];
		b->head = (b->head + 1) % OUTBOX_MAX;
		b->n--;
		b->bytes -= m.n;
		pthread_mutex_unlock(&b->lock);
		deliver(g, &m);
		free(m.p);
	}
}

/* ---- the server ---- */

static void on_listener(uv_poll_t *h, int status, int events)
{
	(void)status; /* an error on the listener: accept4() reports it */
	(void)events;
	accept_conns(h->data);
}

/* Each second: requests that do not complete within 10 s get 408 and are closed; a listener
 * rested for want of file descriptors is watched again. */
static void on_tick(uv_timer_t *h)
{
	struct host_ingest *g = h->data;
	int64_t now = clock_mono_ns() / NS_PER_MS;

	if (g->paused && !uv_poll_start(&g->listener, UV_READABLE, on_listener))
		g->paused = false;
	for (struct conn *c = g->conns, *next; c; c = next) {
		next = c->next;
		if ((c->state == C_HEAD || c->state == C_API_BODY) &&
		    now - c->since_ms > REQUEST_MS) {
			c->allow = NULL;
			answer_error(c, 408, "timeout", "no complete request within 10 s");
			if (!flush_out(c) || !c->out.len)
				conn_close(g, c);
		} else if (c->state == C_DONE && now - c->since_ms > ANSWER_MS) {
			conn_close(g, c); /* an answer nobody reads */
		}
	}
}

/* "IP:PORT" as a numeric address. 0 or -EINVAL with @why; free *@res with freeaddrinfo(). */
static int resolve_listen(const char *listen_addr, struct addrinfo **res, char why[160])
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE};
	const char *colon = strrchr(listen_addr, ':');
	char host[128];

	*res = NULL;
	if (colon && colon > listen_addr && (size_t)(colon - listen_addr) < sizeof(host)) {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - listen_addr), listen_addr);
		if (host[0] == '[' && host[strlen(host) - 1] == ']') {
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		if (!getaddrinfo(host, colon + 1, &hints, res))
			return 0;
	}
	snprintf(why, 160, "invalid listen address '%.64s': expected IP:PORT", listen_addr);
	return -EINVAL;
}

int host_ingest_check_listen(const char *listen_addr, char why[160])
{
	struct addrinfo *res;
	int ret = resolve_listen(listen_addr, &res, why);

	freeaddrinfo(res);
	return ret;
}

static int open_listener(struct host_ingest *g, const char *listen_addr, char why[160])
{
	struct addrinfo *res;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int one = 1, ret = resolve_listen(listen_addr, &res, why);

	if (ret)
		return ret;
	g->lfd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g->lfd < 0 || setsockopt(g->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(g->lfd, res->ai_addr, res->ai_addrlen) || listen(g->lfd, 64) ||
	    getsockname(g->lfd, (struct sockaddr *)&ss, &len)) {
		snprintf(why, 160, "cannot listen on '%.64s': %s", listen_addr, strerror(errno));
		freeaddrinfo(res);
		return -EADDRINUSE;
	}
	freeaddrinfo(res);
	g->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                         : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

/* The listener, the timer and the wake-up on @loop; each counted in g->handles. */
static int start_handles(struct host_ingest *g, uv_loop_t *loop)
{
	if (uv_poll_init(loop, &g->listener, g->lfd))
		return -EIO;
	g->handles++;
	if (uv_timer_init(loop, &g->tick))
		return -EIO;
	g->handles++;
	if (uv_async_init(loop, &g->wake, drain_outbox))
		return -EIO;
	g->handles++;
	g->listener.data = g->tick.data = g->wake.data = g;
	if (uv_poll_start(&g->listener, UV_READABLE, on_listener) ||
	    uv_timer_start(&g->tick, on_tick, 1000, 1000))
		return -EIO;
	return 0;
}

int host_ingest_new(uv_loop_t *loop, const char *listen_addr, const struct host_ingest_hooks *hooks,
                    struct host_ingest **out, char why[160])
{
	struct host_ingest *g = calloc(1, sizeof(*g));
	int ret;

	*out = NULL;
	if (!g) {
		snprintf(why, 160, "out of memory");
		return -ENOMEM;
	}
	g->hooks = *hooks;
	g->lfd = -1;
	pthread_mutex_init(&g->box.lock, NULL);
	ret = open_listener(g, listen_addr, why);
	if (!ret && start_handles(g, loop)) {
		snprintf(why, 160, "cannot set up the ingest server");
		ret = -EIO;
	}
	if (ret) {
		host_ingest_free(g);
		return ret;
	}
	*out = g;
	return 0;
}

int host_ingest_port(const struct host_ingest *g)
{
	return g->port;
}

static void free_ingest(struct host_ingest *g)
{
	for (size_t i = 0; i < g->box.n; i++)
		free(g->box.m[(g->box.head + i) % OUTBOX_MAX].p);
	pthread_mutex_destroy(&g->box.lock);
	free(g);
}

static void on_closed(uv_handle_t *h)
{
	struct host_ingest *g = h->data;

	if (--g->handles == 0)
		free_ingest(g);
}

static void close_handle(struct host_ingest *g, uv_handle_t *h)
{
	if (h->loop) { /* initialised */
		h->data = g;
		uv_close(h, on_closed);
	}
}

void host_ingest_free(struct host_ingest *g)
{
	if (!g)
		return;
	bool watched = g->handles > 0;

	while (g->conns)
		conn_close(g, g->conns);
	close_handle(g, (uv_handle_t *)&g->listener); /* stops watching at once: the fd may go */
	close_handle(g, (uv_handle_t *)&g->tick);
	close_handle(g, (uv_handle_t *)&g->wake);
	if (g->lfd >= 0)
		close(g->lfd);
	if (!watched)
		free_ingest(g); /* otherwise the last close callback does */
}
