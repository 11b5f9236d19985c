/*
 * wsclient/bridge: a websocket joined to a local byte stream (see bridge.h). A bridge lives until
 * it has ended and every handle and request pointing at it is done (refs).
 */
#include "pkg/wsclient/bridge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define READ_SIZE 65536 /* bytes taken from the local stream at once: one frame */

/* One write to the local stream with its bytes (what uv_try_write() did not take). */
struct lwrite {
	uv_write_t req;
	struct wsc_bridge *b;
	size_t len;
	uint8_t data[];
};

struct wsc_bridge {
	uv_loop_t *loop;
	struct wsc_uv *c; /* NULL once closed or gone */
	bool ws_open, ws_paused;
	uv_stream_t *in, *out; /* the local stream; out is NULL once closed (stdout at EOF) */
	bool reading;          /* uv_read_start() is on */
	bool in_eof;           /* the local input ended: the empty frame is sent */
	bool peer_eof;         /* the peer's empty frame came: shut the output once written */
	bool shutting, out_shut;
	bool ended;
	bool linger;       /* ended cleanly: the local output is closed once written */
	size_t out_queued; /* bytes in the local stream's write queue */
	int refs;          /* 1 until ended, + handles, writes and the shutdown under way */
	uint64_t to_ws, from_ws;
	wsc_bridge_end_fn fn;
	void *arg;
	uv_shutdown_t shut;
	uint8_t rbuf[READ_SIZE];
};

static void stop_reading(struct wsc_bridge *b);

static void unref(struct wsc_bridge *b)
{
	if (--b->refs == 0)
		free(b);
}

static void handle_closed(uv_handle_t *h)
{
	struct wsc_bridge *b = h->data;

	free(h);
	unref(b);
}

static void close_stream(uv_stream_t *s)
{
	if (s && !uv_is_closing((uv_handle_t *)s))
		uv_close((uv_handle_t *)s, handle_closed);
}

/* A close frame: the code, then the reason cut to what a control frame holds (125 bytes). */
static void send_close(struct wsc_uv *c, int code, const char *why)
{
	uint8_t p[125];
	size_t n = strlen(why);

	n = n > sizeof(p) - 2 ? sizeof(p) - 2 : n;
	p[0] = (uint8_t)(code >> 8);
	p[1] = (uint8_t)(code & 0xff);
	memcpy(p + 2, why, n);
	wsc_uv_send(c, WS_CLOSE, p, n + 2);
}

/* The end, once: the websocket (a close frame with @code unless @quiet), the local stream, and
 * the owner's callback. */
static void end(struct wsc_bridge *b, int code, const char *why, bool quiet)
{
	if (b->ended)
		return;
	b->ended = true;
	if (b->c) {
		if (!quiet && b->ws_open)
			send_close(b->c, code, "");
		wsc_uv_close(b->c); /* what is queued still goes out */
		b->c = NULL;
	}
	/* a clean end lets the local output take what it was sent first (closing a stream cancels
	 * its writes); on_local_written() closes it then */
	stop_reading(b);
	b->linger = code == 1000 && b->out_queued && b->out;
	if (!b->linger || b->in != b->out)
		close_stream(b->in);
	if (!b->linger && b->out != b->in)
		close_stream(b->out);
	b->fn(b, code, why, b->arg);
	unref(b);
}

static void fail(struct wsc_bridge *b, const char *what, int err)
{
	char why[BRIDGE_WHY];

	snprintf(why, sizeof(why), "%s: %s", what, uv_strerror(err));
	end(b, 1011, why, false);
}

/* Both directions have ended: close with 1000. */
static void check_done(struct wsc_bridge *b)
{
	if (b->in_eof && b->out_shut && !b->ended)
		end(b, 1000, "both directions ended", false);
}

/* ---- local -> websocket ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct wsc_bridge *b = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)b->rbuf, sizeof(b->rbuf));
}

static void stop_reading(struct wsc_bridge *b)
{
	if (b->reading)
		uv_read_stop(b->in);
	b->reading = false;
}

static void on_local_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct wsc_bridge *b = s->data;
	int r;

	if (b->ended || nread == 0)
		return;
	if (nread == UV_EOF) {
		stop_reading(b);
		b->in_eof = true;
		r = wsc_uv_send(b->c, WS_BINARY, NULL, 0); /* the empty frame: our end of data */
		if (r)
			fail(b, "cannot send to the relay", r == -ENOBUFS ? UV_ENOBUFS : r);
		else
			check_done(b);
		return;
	}
	if (nread < 0) {
		fail(b, "cannot read the local connection", (int)nread);
		return;
	}
	r = wsc_uv_send(b->c, WS_BINARY, buf->base, (size_t)nread);
	if (r) {
		/* room for HIGH plus a read is always there: this is out of memory or the end */
		fail(b, "cannot send to the relay", r);
		return;
	}
	b->to_ws += (uint64_t)nread;
	if (wsc_uv_queued(b->c) >= BRIDGE_HIGH)
		stop_reading(b); /* until on_ws_drained() */
}

/* Read the local stream when both ends are up, it has not ended and the relay takes bytes. */
static void maybe_read(struct wsc_bridge *b)
{
	int r;

	if (b->ended || b->reading || !b->ws_open || !b->in || b->in_eof ||
	    wsc_uv_queued(b->c) > BRIDGE_LOW)
		return;
	r = uv_read_start(b->in, on_alloc, on_local_read);
	if (r)
		fail(b, "cannot read the local connection", r);
	else
		b->reading = true;
}

static void on_ws_drained(struct wsc_uv *c, void *arg)
{
	(void)c;
	maybe_read(arg);
}

/* ---- websocket -> local ---- */

static void on_shut(uv_shutdown_t *req, int status)
{
	struct wsc_bridge *b = req->data;

	b->shutting = false;
	b->out_shut = true;
	if (status < 0 && status != UV_ECANCELED && !b->ended)
		fail(b, "cannot end the local connection", status);
	else
		check_done(b);
	unref(b);
}

/* The peer's data has ended and all of it is written: shut the local output. */
static void maybe_shut(struct wsc_bridge *b)
{
	int r;

	if (!b->peer_eof || b->out_shut || b->shutting || b->out_queued || b->ended || !b->out)
		return;
	if (b->out != b->in) {
		/* stdout: closing it is its end of file */
		close_stream(b->out);
		b->out = NULL;
		b->out_shut = true;
		check_done(b);
		return;
	}
	b->shut.data = b;
	r = uv_shutdown(&b->shut, b->out, on_shut);
	if (r) {
		fail(b, "cannot end the local connection", r);
		return;
	}
	b->refs++;
	b->shutting = true;
}

static void on_local_written(uv_write_t *req, int status)
{
	struct lwrite *w = req->data;
	struct wsc_bridge *b = w->b;

	b->out_queued -= w->len;
	free(w);
	if (b->linger && (!b->out_queued || status < 0)) {
		b->linger = false;
		close_stream(b->out);
	}
	if (status < 0) {
		if (!b->ended)
			fail(b, "cannot write to the local connection", status);
	} else if (!b->ended) {
		if (b->ws_paused && b->out_queued <= BRIDGE_LOW && b->c) {
			b->ws_paused = false;
			wsc_uv_pause(b->c, false); /* may hand over frames (and end) right here */
		}
		maybe_shut(b);
	}
	unref(b);
}

static void write_local(struct wsc_bridge *b, const uint8_t *p, size_t n)
{
	uv_buf_t buf = uv_buf_init((char *)p, (unsigned)n);
	struct lwrite *w;
	size_t off = 0;
	int r;

	if (!b->out || b->out_shut || b->shutting)
		return; /* after the peer's end of data: nothing more is expected */
	b->from_ws += n;
	if (!b->out_queued) {
		r = uv_try_write(b->out, &buf, 1);
		if (r < 0 && r != UV_EAGAIN) {
			fail(b, "cannot write to the local connection", r);
			return;
		}
		off = r > 0 ? (size_t)r : 0;
	}
	if (off == n)
		return;
	w = malloc(sizeof(*w) + n - off);
	if (!w) {
		end(b, 1011, "out of memory", false);
		return;
	}
	w->b = b;
	w->len = n - off;
	w->req.data = w;
	memcpy(w->data, p + off, n - off);
	buf = uv_buf_init((char *)w->data, (unsigned)w->len);
	r = uv_write(&w->req, b->out, &buf, 1, on_local_written);
	if (r) {
		free(w);
		fail(b, "cannot write to the local connection", r);
		return;
	}
	b->refs++;
	b->out_queued += w->len;
	if (b->out_queued >= BRIDGE_HIGH && !b->ws_paused) {
		b->ws_paused = true;
		wsc_uv_pause(b->c, true); /* until on_local_written() */
	}
}

/* ---- the websocket's callbacks ---- */

static void on_ws_open(struct wsc_uv *c, void *arg)
{
	struct wsc_bridge *b = arg;

	b->ws_open = true;
	wsc_uv_on_drained(c, on_ws_drained);
	if (!b->out) {
		/* nothing is taken before the local end is there: wsc_bridge_set_local() resumes */
		b->ws_paused = true;
		wsc_uv_pause(c, true);
	}
	maybe_read(b);
}

static void on_close_frame(struct wsc_bridge *b, const uint8_t *p, size_t n)
{
	char why[BRIDGE_WHY];
	int code = n >= 2 ? (p[0] << 8) | p[1] : 1005;
	size_t rlen = n > 2 ? n - 2 : 0;

	snprintf(why, sizeof(why), "closed by the relay: %d %.*s", code, (int)rlen,
	         (const char *)p + 2);
	if (b->c)
		send_close(b->c, code == 1005 ? 1000 : code, ""); /* the answer, same code */
	end(b, code == 1005 ? 1000 : code, why, true);
}

static bool on_ws_frame(struct wsc_uv *c, const struct ws_frame *f, const uint8_t *p, void *arg)
{
	struct wsc_bridge *b = arg;
	size_t n = (size_t)f->payload_len;

	switch (f->opcode) {
	case WS_PING:
		wsc_uv_send(c, WS_PONG, p, n);
		return true;
	case WS_PONG:
		return true;
	case WS_CLOSE:
		on_close_frame(b, p, n);
		return false;
	default:
		break;
	}
	if (!n && f->opcode == WS_BINARY && f->fin) {
		b->peer_eof = true; /* the other end's end of data */
		maybe_shut(b);
	} else if (n) {
		write_local(b, p, n);
	}
	return !b->ended;
}

static void on_ws_close(struct wsc_uv *c, int err, int status, const char *why, void *arg)
{
	struct wsc_bridge *b = arg;

	(void)c, (void)err, (void)status;
	b->c = NULL; /* freed by the library */
	end(b, 1006, why, true);
}

const struct wsc_uv_cbs wsc_bridge_cbs = {on_ws_open, on_ws_frame, on_ws_close};

/* ---- setting up ---- */

struct wsc_bridge *wsc_bridge_new(uv_loop_t *loop, wsc_bridge_end_fn fn, void *arg)
{
	struct wsc_bridge *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->loop = loop;
	b->fn = fn;
	b->arg = arg;
	b->refs = 1;
	return b;
}

void wsc_bridge_set_ws(struct wsc_bridge *b, struct wsc_uv *c)
{
	b->c = c;
}

void wsc_bridge_set_local(struct wsc_bridge *b, uv_stream_t *in, uv_stream_t *out)
{
	in->data = out->data = b;
	b->refs += in == out ? 1 : 2;
	b->in = in;
	b->out = out;
	if (b->ended) {
		close_stream(in);
		if (out != in)
			close_stream(out);
		return;
	}
	maybe_read(b);
	if (b->ws_paused && b->c && !b->ended) {
		b->ws_paused = false;
		wsc_uv_pause(b->c, false); /* frames that came first */
	}
}

void wsc_bridge_close(struct wsc_bridge *b, int code, const char *why)
{
	end(b, code, why, false);
}

void wsc_bridge_counts(const struct wsc_bridge *b, uint64_t *to_ws, uint64_t *from_ws)
{
	*to_ws = b->to_ws;
	*from_ws = b->from_ws;
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

uv_stream_t *wsc_bridge_stream_of_fd(uv_loop_t *loop, int fd, bool readable, char why[BRIDGE_WHY])
{
	uv_handle_type t = uv_guess_handle(fd);
	uv_stream_t *s;
	int r;

	if (t != UV_TCP && t != UV_NAMED_PIPE && t != UV_TTY) {
		snprintf(why, BRIDGE_WHY, "fd %d must be a pipe, a socket or a terminal", fd);
		return NULL;
	}
	s = malloc(t == UV_TCP   ? sizeof(uv_tcp_t)
	           : t == UV_TTY ? sizeof(uv_tty_t)
	                         : sizeof(uv_pipe_t));
	if (!s) {
		snprintf(why, BRIDGE_WHY, "out of memory");
		return NULL;
	}
	if (t == UV_TTY) {
		r = uv_tty_init(loop, (uv_tty_t *)s, fd, readable);
		if (r) {
			free(s);
			snprintf(why, BRIDGE_WHY, "cannot use fd %d: %s", fd, uv_strerror(r));
			return NULL;
		}
		return s;
	}
	if (t == UV_TCP) {
		uv_tcp_init(loop, (uv_tcp_t *)s); /* cannot fail without a flag */
		r = uv_tcp_open((uv_tcp_t *)s, fd);
		if (!r)
			uv_tcp_nodelay((uv_tcp_t *)s, 1);
	} else {
		uv_pipe_init(loop, (uv_pipe_t *)s, 0);
		r = uv_pipe_open((uv_pipe_t *)s, fd);
	}
	if (r) {
		snprintf(why, BRIDGE_WHY, "cannot use fd %d: %s", fd, uv_strerror(r));
		uv_close((uv_handle_t *)s, free_handle);
		return NULL;
	}
	return s;
}
