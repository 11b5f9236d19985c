/*
 * wsclient on libuv (see uv.h): the access POST and the RFC 6455 opening handshake (section 4.1)
 * as asynchronous steps, TLS through memory BIOs so that libuv owns the socket, and frames out
 * through libuv's write queue with a bound.
 */
#include "pkg/wsclient/uv.h"
#include "pkg/buf/buf.h"
#include "pkg/dial/dial.h"
#include "pkg/http1/http1.h"
#include "pkg/url/url.h"
#include "pkg/wsclient/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#define HEAD_MAX 16384 /* an answer's head */
#define BODY_MAX 4096  /* an access answer's body: {"uri": ...} or an error */
#define READ_MAX 65536 /* bytes taken from the socket at once */

enum ustate { U_CONNECT, U_TLS, U_HEAD, U_BODY, U_OPEN, U_DONE };

/* The connected socket (pkg/dial connects it; libuv then reads and writes it): a handle per
 * phase, as the websocket phase may go to another host. */
struct sock {
	uv_tcp_t tcp;
	struct wsc_uv *c;
};

/* One write in libuv's queue, with its bytes. */
struct wreq {
	uv_write_t req;
	struct wsc_uv *c;
	size_t len;
	uint8_t data[];
};

struct wsc_uv {
	uv_loop_t *loop;
	enum ustate state;
	int phase;    /* 0: the access POST, 1: the websocket */
	bool silent;  /* wsc_uv_close() was called: no more callbacks */
	bool closing; /* waiting for the write queue to drain */
	bool broken;  /* a TLS write failed: the stream may hold part of a frame, send no more */
	bool paused;  /* wsc_uv_pause(): the socket is not read, frames wait in @in */
	void (*on_drained)(struct wsc_uv *c, void *arg); /* wsc_uv_on_drained(), or NULL */
	int refs; /* handles and requests pointing here; freed at 0 once DONE */
	uv_timer_t timer;
	struct dial *dial; /* resolving and connecting (pkg/dial), or NULL */
	struct sock *sock;
	SSL_CTX *tls;
	SSL *ssl; /* rbio: what arrived, for OpenSSL to read; wbio: what it wrote, to send */
	BIO *rbio, *wbio;
	struct url u;
	char *token;
	char key[32];
	struct buf in;
	size_t in_max, out_max, queued;
	int timeout_ms;
	struct http1_resp resp;
	size_t head_len;
	struct http1_chunked chunked;
	size_t body_len; /* decoded bytes of a chunked body after the head */
	int status;
	char why[WSC_WHY];
	const struct wsc_uv_cbs *cbs;
	void *arg;
	uint8_t rbuf[READ_MAX];
};

static void start_phase(struct wsc_uv *c, const char *url);
static void process(struct wsc_uv *c);
static void read_frames(struct wsc_uv *c);

/* ---- lifetime ---- */

static void free_conn(struct wsc_uv *c)
{
	buf_release(&c->in);
	if (c->token) {
		OPENSSL_cleanse(c->token, strlen(c->token));
		free(c->token);
	}
	free(c);
}

static void release(struct wsc_uv *c)
{
	if (--c->refs == 0 && c->state == U_DONE)
		free_conn(c);
}

static void timer_closed(uv_handle_t *h)
{
	release(h->data);
}

static void sock_closed(uv_handle_t *h)
{
	struct sock *s = h->data;
	struct wsc_uv *c = s->c;

	free(s);
	release(c);
}

/* Abandon the current connection (its TLS state with it). */
static void drop_sock(struct wsc_uv *c)
{
	if (c->ssl) {
		SSL_free(c->ssl); /* frees both BIOs */
		c->ssl = NULL;
		c->rbio = c->wbio = NULL;
	}
	if (c->sock) {
		uv_close((uv_handle_t *)&c->sock->tcp, sock_closed);
		c->sock = NULL;
	}
}

/* The end: everything is closed, and on_close is called unless the owner left. */
static void finish(struct wsc_uv *c, int err)
{
	if (c->state == U_DONE)
		return;
	c->state = U_DONE;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, timer_closed);
	dial_cancel(c->dial);
	c->dial = NULL;
	drop_sock(c);
	if (!c->silent && c->cbs->on_close)
		c->cbs->on_close(c, err, c->status, c->why, c->arg);
}

static void fail(struct wsc_uv *c, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void fail(struct wsc_uv *c, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	finish(c, err);
}

static const char *step_name(const struct wsc_uv *c)
{
	switch (c->state) {
	case U_CONNECT:
		return "connecting"; /* resolving too */
	case U_TLS:
		return "the TLS handshake";
	default:
		return c->phase ? "the websocket handshake" : "the access answer";
	}
}

static void on_deadline(uv_timer_t *t)
{
	struct wsc_uv *c = t->data;

	fail(c, -ETIMEDOUT, "%s with %.100s:%d timed out", step_name(c), c->u.host, c->u.port);
}

/* ---- writing ---- */

static struct wreq *new_wreq(struct wsc_uv *c, size_t len)
{
	struct wreq *w = malloc(sizeof(*w) + len);

	if (w) {
		w->c = c;
		w->len = len;
		w->req.data = w;
	}
	return w;
}

static void on_written(uv_write_t *req, int status)
{
	struct wreq *w = req->data;
	struct wsc_uv *c = w->c;

	c->queued -= w->len;
	free(w);
	if (status < 0 && c->state != U_DONE)
		fail(c, -ECONNRESET, "cannot send to %.100s:%d: %s", c->u.host, c->u.port,
		     uv_strerror(status));
	else if (c->closing && !c->queued)
		finish(c, 0);
	else if (c->state == U_OPEN && !c->silent && c->on_drained)
		c->on_drained(c, c->arg);
	release(c);
}

/*
 * Send @w (taking it); 0 or a negative errno. What the socket takes now is not queued: a
 * uv_write() that completes at once still costs a pass of the loop and an epoll_ctl() (libuv
 * drops POLLOUT from its completion), on each message of a round trip (bench/connect.sh).
 * uv_try_write() refuses while older writes wait, so the order holds. While closing, every
 * write goes through the queue: its completion ends the connection (on_written()).
 */
static int write_req(struct wsc_uv *c, struct wreq *w)
{
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
	int r = c->closing ? UV_EAGAIN : uv_try_write((uv_stream_t *)&c->sock->tcp, &b, 1);

	if (r >= 0 && (size_t)r == w->len) {
		free(w);
		return 0;
	}
	if (r > 0) {
		b = uv_buf_init((char *)w->data + r, (unsigned)(w->len - (size_t)r));
		w->len -= (size_t)r; /* what on_written() counts off */
	}
	/* an error (a reset) comes again from uv_write(), to on_written() as before */
	r = uv_write(&w->req, (uv_stream_t *)&c->sock->tcp, &b, 1, on_written);
	if (r < 0) {
		free(w);
		return r;
	}
	c->refs++;
	c->queued += w->len;
	return 0;
}

/* Queue what OpenSSL wrote into the memory BIO. */
static int flush_tls(struct wsc_uv *c)
{
	size_t n;

	while ((n = BIO_ctrl_pending(c->wbio)) > 0) {
		struct wreq *w = new_wreq(c, n);
		int r;

		if (!w)
			return -ENOMEM;
		if (BIO_read(c->wbio, w->data, (int)n) != (int)n) {
			free(w);
			return -EPROTO;
		}
		r = write_req(c, w);
		if (r)
			return r;
	}
	return 0;
}

/* Send @w's bytes: as they are, or through TLS (then @w is freed here). SSL_write is called
 * until it has taken every byte. Without SSL_MODE_ENABLE_PARTIAL_WRITE (not set here) one call
 * takes all or fails, as the memory BIO never refuses bytes; with it a call may take part, and
 * the rest must not be lost. A failure (an error, a retry OpenSSL would want with the very same
 * buffer, or records made but not queued) may leave part of a frame, or a gap in the record
 * sequence, on the wire: the connection is then marked broken. */
static int send_wreq(struct wsc_uv *c, struct wreq *w)
{
	size_t off = 0;
	int r = 0;

	if (!c->ssl)
		return write_req(c, w);
	if (!w->len)
		r = flush_tls(c);
	while (off < w->len && !r) {
		size_t left = w->len - off;
		int k = SSL_write(c->ssl, w->data + off, left > INT_MAX ? INT_MAX : (int)left);

		if (k <= 0) {
			const char *why = ERR_reason_error_string(ERR_peek_last_error());

			snprintf(c->why, sizeof(c->why),
			         "cannot send to %.100s:%d: TLS write failed (%d): %s", c->u.host,
			         c->u.port, SSL_get_error(c->ssl, k), why ? why : "no reason");
			ERR_clear_error();
			r = -EPROTO;
			break;
		}
		off += (size_t)k;
		r = flush_tls(c); /* the records so far, before the next call */
	}
	free(w);
	if (r)
		c->broken = true;
	return r;
}

/* After a failed TLS write on an open connection: the end, from the loop, not inside the
 * owner's call to wsc_uv_send. c->why already says why. */
static void on_send_failed(uv_timer_t *t)
{
	struct wsc_uv *c = t->data;

	finish(c, -EPROTO);
}

static int send_text(struct wsc_uv *c, const char *p, size_t n)
{
	struct wreq *w = new_wreq(c, n);

	if (!w)
		return -ENOMEM;
	memcpy(w->data, p, n);
	return send_wreq(c, w);
}

int wsc_uv_send(struct wsc_uv *c, uint8_t opcode, const void *p, size_t n)
{
	struct wreq *w;
	uint8_t mask[4];
	size_t h;
	int r;

	if (c->state != U_OPEN || c->silent || c->broken)
		return -ENOTCONN;
	if (n > c->out_max || c->queued > c->out_max - n)
		return -ENOBUFS;
	w = new_wreq(c, WSFRAME_MAX_HEADER + n);
	if (!w)
		return -ENOMEM;
	RAND_bytes(mask, sizeof(mask));
	h = wsframe_header(w->data, opcode, true, n, mask);
	if (n)
		memcpy(w->data + h, p, n);
	wsframe_mask(w->data + h, n, mask, 0);
	w->len = h + n;
	r = send_wreq(c, w);
	if (r && c->broken)
		uv_timer_start(&c->timer, on_send_failed, 0, 0); /* unused while open */
	return r;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);

int wsc_uv_pause(struct wsc_uv *c, bool pause)
{
	int r;

	if (c->state != U_OPEN || c->silent || !c->sock)
		return -ENOTCONN;
	if (pause == c->paused)
		return 0;
	c->paused = pause;
	if (pause)
		return uv_read_stop((uv_stream_t *)&c->sock->tcp);
	r = uv_read_start((uv_stream_t *)&c->sock->tcp, on_alloc, on_read);
	if (r)
		return r;
	read_frames(c); /* what arrived before the pause */
	return 0;
}

void wsc_uv_on_drained(struct wsc_uv *c, void (*fn)(struct wsc_uv *c, void *arg))
{
	c->on_drained = fn;
}

size_t wsc_uv_queued(const struct wsc_uv *c)
{
	return c->queued;
}

/* ---- the HTTP steps ---- */

static void send_request(struct wsc_uv *c)
{
	char *req = NULL;
	int n, r;

	if (c->phase == 0) {
		n = wsc__post_request(&req, &c->u, c->token);
	} else {
		wsc__ws_key(c->key);
		n = wsc__upgrade_request(&req, &c->u, c->key);
	}
	r = n < 0 ? -ENOMEM : send_text(c, req, (size_t)n);
	if (n > 0)
		OPENSSL_cleanse(req, (size_t)n); /* the POST holds the token */
	free(req);
	if (r) {
		fail(c, r, "cannot send to %.100s:%d: %s", c->u.host, c->u.port, strerror(-r));
		return;
	}
	c->state = U_HEAD;
	process(c); /* bytes may have come with the handshake's last flight */
}

/* The access answer is complete: @body (NUL-terminated) with c->resp's status. */
static void access_answer(struct wsc_uv *c, const char *body)
{
	char uri[2048], msg[160];

	c->status = c->resp.status;
	if (c->status != 200) {
		wsc__error_message(body, msg, sizeof(msg));
		fail(c, -EACCES, "access refused: HTTP %d: %s", c->status, msg);
		return;
	}
	if (wsc__uri_of(body, uri, sizeof(uri))) {
		fail(c, -EPROTO, "access answer has no uri");
		return;
	}
	drop_sock(c);
	c->in.len = 0;
	c->phase = 1;
	start_phase(c, uri);
}

/* Decode more of a chunked body in place, after the head; true when it ended. */
static bool dechunk_more(struct wsc_uv *c, int *err)
{
	uint8_t *p = c->in.p + c->head_len + c->body_len;
	size_t n = c->in.len - c->head_len - c->body_len, used = 0;
	bool done = false;
	ssize_t k = n ? http1_dechunk(&c->chunked, p, n, &used, &done) : 0;

	if (k < 0) {
		*err = -EPROTO;
		return false;
	}
	memmove(p + k, p + used, n - used);
	c->in.len -= used - (size_t)k;
	c->body_len += (size_t)k;
	return done || c->body_len >= BODY_MAX;
}

/* Take the body that has arrived; @eof: the peer has closed. */
static void take_body(struct wsc_uv *c, bool eof)
{
	size_t have = c->in.len - c->head_len, want = BODY_MAX;
	char body[BODY_MAX + 1];
	int err = 0;

	if (c->resp.content_length >= 0 && (uint64_t)c->resp.content_length < want)
		want = (size_t)c->resp.content_length;
	if (c->resp.chunked) {
		if (!dechunk_more(c, &err) && !err && !eof)
			return;
		if (err) {
			fail(c, err, "malformed HTTP body from %.100s:%d", c->u.host, c->u.port);
			return;
		}
		have = c->body_len;
	} else if (have < want && !eof) {
		return;
	}
	have = have < want ? have : want;
	if (have)
		memcpy(body, c->in.p + c->head_len, have);
	body[have] = '\0';
	access_answer(c, body);
}

static void upgrade_answer(struct wsc_uv *c)
{
	c->status = c->resp.status;
	if (c->status != 101 || !c->resp.websocket ||
	    !wsc__accept_matches(c->key, c->resp.ws_accept)) {
		fail(c, -ECONNREFUSED, "websocket refused: HTTP %d", c->status);
		return;
	}
	buf_consume(&c->in, c->head_len);
	c->state = U_OPEN;
	uv_timer_stop(&c->timer);
	if (!c->silent && c->cbs->on_open)
		c->cbs->on_open(c, c->arg);
}

static void read_head(struct wsc_uv *c)
{
	int n = http1_parse_response(c->in.p, c->in.len, &c->resp);

	if (n == 0 && c->in.len >= HEAD_MAX)
		fail(c, -E2BIG, "the answer from %.100s:%d has a head over %d bytes", c->u.host,
		     c->u.port, HEAD_MAX);
	else if (n < 0)
		fail(c, -EPROTO, "malformed HTTP answer from %.100s:%d", c->u.host, c->u.port);
	if (n <= 0)
		return;
	c->head_len = (size_t)n;
	if (c->phase == 1) {
		upgrade_answer(c);
		return;
	}
	c->state = U_BODY;
	memset(&c->chunked, 0, sizeof(c->chunked));
	c->body_len = 0;
	take_body(c, false);
}

static void read_frames(struct wsc_uv *c)
{
	const uint8_t *payload;
	struct ws_frame f;
	size_t off = 0;
	int k = 0;

	while (c->state == U_OPEN && !c->silent && !c->paused &&
	       (k = wsframe_next(c->in.p, c->in.len, &off, &f, &payload)) > 0) {
		if (f.payload_len > c->in_max) {
			fail(c, -EMSGSIZE, "a message from %.100s:%d is over %zu bytes", c->u.host,
			     c->u.port, c->in_max);
			return;
		}
		if (!c->cbs->on_frame(c, &f, payload, c->arg))
			break;
	}
	if (c->state != U_OPEN)
		return;
	if (k < 0) {
		fail(c, -EPROTO, "malformed frame from %.100s:%d", c->u.host, c->u.port);
		return;
	}
	buf_consume(&c->in, off);
}

/* Act on the bytes received so far. */
static void process(struct wsc_uv *c)
{
	if (c->state == U_HEAD)
		read_head(c);
	else if (c->state == U_BODY)
		take_body(c, false);
	if (c->state == U_OPEN)
		read_frames(c);
}

/* ---- reading ---- */

static void on_eof(struct wsc_uv *c, ssize_t nread)
{
	const char *what = nread == UV_EOF ? "connection closed" : uv_strerror((int)nread);

	if (c->state == U_BODY && c->resp.content_length < 0)
		take_body(c, true); /* a body that ends with the connection */
	else if (c->state == U_TLS)
		fail(c, -EPROTO, "TLS handshake with %.100s:%d failed: %s", c->u.host, c->u.port,
		     what);
	else if (c->state == U_OPEN)
		fail(c, -ECONNRESET, "%s", what);
	else
		fail(c, -ECONNRESET, "no HTTP answer from %.100s:%d: %s", c->u.host, c->u.port,
		     what);
}

static void tls_handshake(struct wsc_uv *c)
{
	int r = SSL_do_handshake(c->ssl), e = SSL_get_error(c->ssl, r);

	if (flush_tls(c)) {
		fail(c, -EPROTO, "cannot send to %.100s:%d", c->u.host, c->u.port);
		return;
	}
	if (r == 1) {
		send_request(c);
		return;
	}
	if (e == SSL_ERROR_WANT_READ)
		return;
	wsc__tls_failure(c->ssl, &c->u, c->why);
	finish(c, -EPROTO);
}

/* Decrypt what the BIO holds into c->in. */
static int tls_read(struct wsc_uv *c)
{
	for (;;) {
		size_t want = buf_left(&c->in) < 16384 ? buf_left(&c->in) : 16384;
		int r, e;

		if (!want || buf_reserve(&c->in, want))
			return -ENOBUFS;
		r = SSL_read(c->ssl, c->in.p + c->in.len, (int)buf_room(&c->in));
		if (r > 0) {
			c->in.len += (size_t)r;
			continue;
		}
		e = SSL_get_error(c->ssl, r);
		ERR_clear_error();
		if (e == SSL_ERROR_WANT_READ)
			return flush_tls(c);
		return e == SSL_ERROR_ZERO_RETURN ? -ECONNRESET : -EPROTO;
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct sock *s = h->data;

	(void)suggested;
	*b = uv_buf_init((char *)s->c->rbuf, sizeof(s->c->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
	struct sock *s = stream->data;
	struct wsc_uv *c = s->c;
	int r;

	if (c->state == U_DONE || c->sock != s || nread == 0)
		return;
	if (nread < 0) {
		on_eof(c, nread);
		return;
	}
	if (c->ssl) {
		BIO_write(c->rbio, b->base, (int)nread);
		if (c->state == U_TLS) {
			tls_handshake(c);
			if (c->state == U_TLS || c->state == U_DONE)
				return;
		}
		r = tls_read(c);
	} else {
		r = buf_add(&c->in, b->base, (size_t)nread);
	}
	if (r == -ENOBUFS) {
		fail(c, -EMSGSIZE, "a message from %.100s:%d is over %zu bytes", c->u.host,
		     c->u.port, c->in_max);
		return;
	}
	if (r && r != -ECONNRESET) {
		fail(c, r, "TLS error from %.100s:%d", c->u.host, c->u.port);
		return;
	}
	process(c);
	if (r == -ECONNRESET && c->state != U_DONE && c->sock == s)
		on_eof(c, UV_EOF); /* TLS close_notify: the end, after what came before it */
}

/* ---- resolving and connecting ---- */

static void start_tls(struct wsc_uv *c)
{
	c->ssl = SSL_new(c->tls);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (!c->ssl || !c->rbio || !c->wbio) {
		BIO_free(c->rbio);
		BIO_free(c->wbio);
		c->rbio = c->wbio = NULL;
		fail(c, -ENOMEM, "out of memory");
		return;
	}
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	wsc__tls_names(c->ssl, c->tls, c->u.host);
	SSL_set_connect_state(c->ssl);
	c->state = U_TLS;
	tls_handshake(c);
}

/* The socket is connected (or not): libuv reads and writes it from here on. */
static void on_dialled(int fd, int err, const char *why, void *arg)
{
	struct wsc_uv *c = arg;
	struct sock *s;
	int r;

	c->dial = NULL; /* freed by pkg/dial once this returns */
	if (fd < 0) {
		/* the codes wsc_uv's users know: the name, the deadline, or else refused */
		if (err != -EHOSTUNREACH && err != -ETIMEDOUT)
			err = -ECONNREFUSED;
		fail(c, err, "%s", why);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s || uv_tcp_init(c->loop, &s->tcp)) {
		free(s);
		close(fd);
		fail(c, -ENOMEM, "out of memory");
		return;
	}
	s->c = c;
	s->tcp.data = s;
	c->refs++;
	c->sock = s;
	r = uv_tcp_open(&s->tcp, fd);
	if (r) {
		close(fd); /* not the handle's: uv_tcp_open() failed */
		fail(c, r, "cannot use the socket to %.100s:%d: %s", c->u.host, c->u.port,
		     uv_strerror(r));
		return;
	}
	uv_tcp_nodelay(&s->tcp, 1);
	r = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
	if (r) {
		fail(c, r, "cannot read from %.100s:%d: %s", c->u.host, c->u.port, uv_strerror(r));
		return;
	}
	if (c->u.tls)
		start_tls(c);
	else
		send_request(c);
}

/* Resolve and connect to @url (the access URL, then the websocket uri). */
static void start_phase(struct wsc_uv *c, const char *url)
{
	char why[DIAL_WHY];

	dial_cancel(c->dial);
	c->dial = NULL;
	if (url_parse(url, &c->u)) {
		/* up to its query: a websocket uri's query holds a one-time code (a secret) */
		fail(c, -EPROTO, "invalid %s '%.*s'", c->phase ? "websocket uri" : "access URL",
		     (int)strcspn(url, "?#") < 200 ? (int)strcspn(url, "?#") : 200, url);
		return;
	}
	c->state = U_CONNECT;
	uv_timer_start(&c->timer, on_deadline, (uint64_t)c->timeout_ms, 0);
	c->dial = dial_start(c->loop, c->u.host, c->u.port, SOCK_STREAM, c->timeout_ms, on_dialled,
	                     c, why);
	if (!c->dial)
		fail(c, -EHOSTUNREACH, "%s", why);
}

/* A new connection that starts with @url in @phase; NULL with @why when it fails at once. */
static struct wsc_uv *start(uv_loop_t *loop, int phase, const char *url, const char *token,
                            SSL_CTX *tls, int timeout_ms, size_t in_max, size_t out_max,
                            const struct wsc_uv_cbs *cbs, void *arg, char why[WSC_WHY])
{
	struct wsc_uv *c = calloc(1, sizeof(*c));

	if (!c || (token && !(c->token = strdup(token)))) {
		free(c);
		snprintf(why, WSC_WHY, "out of memory");
		return NULL;
	}
	c->loop = loop;
	c->phase = phase;
	c->tls = tls;
	c->timeout_ms = timeout_ms;
	c->in_max = in_max;
	c->out_max = out_max;
	c->cbs = cbs;
	c->arg = arg;
	/* room for frames that come in the same read as the 101 (a relay's early data): the head
	 * and body have their own limits (read_head, take_body) */
	buf_init(&c->in, HEAD_MAX + BODY_MAX + in_max + WSFRAME_MAX_HEADER);
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->refs = 1;      /* the timer */
	c->silent = true; /* a failure at once is told here, not through on_close */
	start_phase(c, url);
	if (c->state == U_DONE) {
		snprintf(why, WSC_WHY, "%s", c->why);
		return NULL; /* the handles close and free @c on the loop */
	}
	c->silent = false;
	return c;
}

struct wsc_uv *wsc_uv_join(uv_loop_t *loop, const char *access_url, const char *token, SSL_CTX *tls,
                           int timeout_ms, size_t in_max, size_t out_max,
                           const struct wsc_uv_cbs *cbs, void *arg, char why[WSC_WHY])
{
	struct url u;

	if (url_parse(access_url, &u)) {
		snprintf(why, WSC_WHY, "invalid access URL '%.200s'", access_url);
		return NULL;
	}
	if (!wsc__token_ok(token)) {
		snprintf(why, WSC_WHY, "the token holds control characters");
		return NULL;
	}
	return start(loop, 0, access_url, token, tls, timeout_ms, in_max, out_max, cbs, arg, why);
}

struct wsc_uv *wsc_uv_open(uv_loop_t *loop, const char *ws_url, SSL_CTX *tls, int timeout_ms,
                           size_t in_max, size_t out_max, const struct wsc_uv_cbs *cbs, void *arg,
                           char why[WSC_WHY])
{
	return start(loop, 1, ws_url, NULL, tls, timeout_ms, in_max, out_max, cbs, arg, why);
}

int wsc_uv_detach(struct wsc_uv *c, struct wsc *out)
{
	uv_os_fd_t ufd;
	BIO *b = NULL;
	int fd;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (c->state != U_OPEN || c->silent)
		return -ENOTCONN;
	if (uv_fileno((uv_handle_t *)&c->sock->tcp, &ufd))
		return -EBADF;
	/* a copy of the fd: libuv closes its own with the handle */
	fd = fcntl(ufd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	buf_init(&out->in, c->in_max + WSFRAME_MAX_HEADER);
	if ((c->in.len && buf_add(&out->in, c->in.p, c->in.len)) ||
	    (c->ssl && !(b = BIO_new_socket(fd, BIO_NOCLOSE)))) {
		buf_release(&out->in);
		close(fd);
		return -ENOMEM;
	}
	if (c->ssl) {
		/* the memory BIOs are empty (tls_read() takes all that came, flush_tls() sends
		 * all OpenSSL wrote): the session goes on over the socket */
		SSL_set_bio(c->ssl, b, b);
		out->ssl = c->ssl;
		c->ssl = NULL;
		c->rbio = c->wbio = NULL;
	}
	out->fd = fd;
	c->silent = true;
	finish(c, 0);
	return 0;
}

void wsc_uv_close(struct wsc_uv *c)
{
	if (!c || c->silent)
		return;
	c->silent = true;
	if (c->state == U_OPEN && c->queued) {
		/* what is queued still goes out (a close frame), within the deadline */
		c->closing = true;
		uv_timer_start(&c->timer, on_deadline, (uint64_t)c->timeout_ms, 0);
		return;
	}
	finish(c, 0);
}
