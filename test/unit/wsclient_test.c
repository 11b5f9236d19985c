/*
 * wsclient_test: pkg/wsclient without a server (minting moved to jwt_test). Frames over a
 * socketpair(): wsc_read_frames() hands over data,
 * fragmented, control and close frames in order, waits for a frame cut anywhere, keeps what
 * follows when the callback stops, refuses bad headers (-EPROTO), reports the end of the stream
 * (-ECONNRESET) and a frame larger than its buffer (-ENOBUFS) instead of growing. The
 * The uv client against a scripted server thread: the access POST (answer with a length or
 * chunked), the upgrade with a frame in the same packet, frames both ways (masked, a fresh key
 * per frame), the open websocket handed over (wsc_uv_detach()); a refusal with its
 * status and message, an unanswered step past its deadline, a closed port, a full output
 * queue. The websocket accept key matches RFC 6455 section 1.3's example; tokens with control characters
 * are refused before anything is sent.
 */
#include "pkg/wsclient/uv.h"
#include "pkg/wsclient/wsclient.h"
#include "test/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- frames over a socketpair ---- */

/* @c on one end (plain socket, no TLS), the raw other end in *peer. */
static void pair(struct wsc *c, int *peer, bool nonblock)
{
	int sv[2];

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	*peer = -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		CHECK(false);
		return;
	}
	c->fd = sv[0];
	*peer = sv[1];
	if (nonblock)
		CHECK_EQ(fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK), 0);
}

static void put(int fd, const void *p, size_t n)
{
	CHECK_EQ(write(fd, p, n), (ssize_t)n);
}

/* An unmasked server frame into @out; its length. */
static size_t frame(uint8_t *out, uint8_t opcode, bool fin, const char *payload)
{
	size_t n = strlen(payload), h = wsframe_header(out, opcode, fin, n, NULL);

	memcpy(out + h, payload, n);
	return h + n;
}

struct seen {
	int n, stop_after;
	uint8_t op[16];
	bool fin[16];
	char data[16][64];
};

static bool collect(void *arg, const struct ws_frame *f, const uint8_t *payload)
{
	struct seen *s = arg;

	if (s->n < 16) {
		s->op[s->n] = f->opcode;
		s->fin[s->n] = f->fin;
		snprintf(s->data[s->n], sizeof(s->data[0]), "%.*s", (int)f->payload_len,
		         (const char *)payload);
	}
	s->n++;
	return s->n != s->stop_after;
}

/* Read one frame the client wrote and unmask it; the payload length, or -1. */
static long read_client_frame(int fd, struct ws_frame *f, uint8_t *payload, size_t cap)
{
	uint8_t buf[1 << 16];
	size_t len = 0;
	int h = 0;

	while ((h = wsframe_parse(buf, len, f)) == 0 && len < sizeof(buf)) {
		ssize_t r = read(fd, buf + len, 1);

		if (r <= 0)
			return -1;
		len += (size_t)r;
	}
	if (h < 0 || f->payload_len > cap)
		return -1;
	for (size_t got = 0; got < f->payload_len;) {
		ssize_t r = read(fd, payload + got, (size_t)f->payload_len - got);

		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	wsframe_mask(payload, (size_t)f->payload_len, f->mask, 0);
	return (long)f->payload_len;
}

static void test_read_frames(void)
{
	uint8_t buf[512];
	struct seen s = {0};
	struct wsc c;
	size_t n = 0;
	int peer;

	pair(&c, &peer, true);
	n += frame(buf + n, WS_TEXT, true, "one");
	n += frame(buf + n, WS_TEXT, false, "fr"); /* a fragmented message... */
	n += frame(buf + n, WS_PING, true, "p");   /* ...with a control frame inside it */
	n += frame(buf + n, WS_CONT, true, "agment");
	n += frame(buf + n, WS_BINARY, true, "");
	n += frame(buf + n, WS_CLOSE, true,
	           "\x03\xe8"
	           "bye");
	put(peer, buf, n);
	CHECK_EQ(wsc_read_frames(&c, 1 << 16, collect, &s), 0); /* would block */
	CHECK_EQ(s.n, 6);
	CHECK(s.op[0] == WS_TEXT && s.fin[0] && strcmp(s.data[0], "one") == 0);
	CHECK(s.op[1] == WS_TEXT && !s.fin[1] && strcmp(s.data[1], "fr") == 0);
	CHECK(s.op[2] == WS_PING && strcmp(s.data[2], "p") == 0);
	CHECK(s.op[3] == WS_CONT && s.fin[3] && strcmp(s.data[3], "agment") == 0);
	CHECK(s.op[4] == WS_BINARY && s.data[4][0] == '\0');
	CHECK(s.op[5] == WS_CLOSE && strcmp(s.data[5] + 2, "bye") == 0);
	CHECK_EQ(wsc_buffered(&c), 0);
	wsc_close(&c);
	close(peer);
}

/* A frame cut at every point: nothing is handed over until its last byte arrives. */
static void test_read_cut_frames(void)
{
	uint8_t buf[300];
	size_t n = wsframe_header(buf, WS_BINARY, true, 200, NULL);

	memset(buf + n, 'q', 200);
	n += 200;
	for (size_t cut = 1; cut < n; cut += 7) {
		struct seen s = {0};
		struct wsc c;
		int peer;

		pair(&c, &peer, true);
		put(peer, buf, cut);
		CHECK_EQ(wsc_read_frames(&c, 1 << 16, collect, &s), 0);
		CHECK_EQ(s.n, 0);
		CHECK_EQ(wsc_buffered(&c), cut);
		put(peer, buf + cut, n - cut);
		CHECK_EQ(wsc_read_frames(&c, 1 << 16, collect, &s), 0);
		CHECK_EQ(s.n, 1);
		CHECK_EQ(wsc_buffered(&c), 0);
		wsc_close(&c);
		close(peer);
	}
}

/* The callback stops after the first frame: the second stays buffered for the next call. */
static void test_read_stop(void)
{
	uint8_t buf[64];
	struct seen s = {.stop_after = 1};
	struct wsc c;
	size_t n = 0;
	int peer;

	pair(&c, &peer, true);
	n += frame(buf + n, WS_TEXT, true, "a");
	n += frame(buf + n, WS_TEXT, true, "b");
	put(peer, buf, n);
	CHECK_EQ(wsc_read_frames(&c, 1 << 16, collect, &s), 1);
	CHECK_EQ(s.n, 1);
	CHECK(wsc_buffered(&c) > 0);
	CHECK_EQ(wsc_read_frames(&c, 1 << 16, collect, &s), 0);
	CHECK_EQ(s.n, 2);
	CHECK_STR(s.data[1], "b");
	wsc_close(&c);
	close(peer);
}

static void check_read_error(const uint8_t *bytes, size_t n, size_t max, int want)
{
	struct seen s = {0};
	struct wsc c;
	int peer;

	pair(&c, &peer, true);
	put(peer, bytes, n);
	CHECK_EQ(wsc_read_frames(&c, max, collect, &s), want);
	CHECK_EQ(s.n, 0);
	wsc_close(&c);
	close(peer);
}

static void test_read_errors(void)
{
	static const uint8_t rsv[] = {0xc1, 0x01, 'x'};            /* RSV1 without an extension */
	static const uint8_t long_ping[] = {0x89, 126, 0x00, 200}; /* control frame over 125 */
	static const uint8_t top_bit[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t opcode3[] = {0x83, 0x00};
	uint8_t *big = malloc(70000);
	size_t h = wsframe_header(big, WS_BINARY, true, 70000 - 10, NULL);
	struct seen s = {0};
	struct wsc c;
	int peer;

	check_read_error(rsv, sizeof(rsv), 1 << 16, -EPROTO);
	check_read_error(long_ping, sizeof(long_ping), 1 << 16, -EPROTO);
	check_read_error(top_bit, sizeof(top_bit), 1 << 16, -EPROTO);
	check_read_error(opcode3, sizeof(opcode3), 1 << 16, -EPROTO);
	/* a frame larger than the buffer may grow: an error, not a realloc past the cap */
	memset(big + h, 'b', 70000 - h);
	check_read_error(big, 70000, 65536, -ENOBUFS);
	/* the same frame fits a larger cap */
	pair(&c, &peer, true);
	put(peer, big, 70000 - 10 + h);
	CHECK_EQ(wsc_read_frames(&c, 1 << 17, collect, &s), 0);
	CHECK_EQ(s.n, 1);
	wsc_close(&c);
	close(peer);
	/* the peer goes away */
	pair(&c, &peer, true);
	close(peer);
	CHECK_EQ(wsc_read_frames(&c, 1 << 16, collect, &s), -ECONNRESET);
	wsc_close(&c);
	free(big);
}

/* ---- the uv client against a scripted server ---- */

enum script { S_OK, S_OK_CHUNKED, S_REFUSE, S_SILENT, S_EARLY };

#define EARLY_FRAME 10240

struct server {
	int lfd, port;
	enum script script;
	char got[256]; /* the payload of the client's first frame */
	bool saw_token, fresh_mask;
};

static int listen_any(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		return -1;
	*port = ntohs(a.sin_port);
	return fd;
}

/* Read a request head from @fd into @buf (NUL-terminated); its length or -1. */
static long read_request(int fd, char *buf, size_t cap)
{
	size_t len = 0;

	while (len < cap - 1) {
		ssize_t r = read(fd, buf + len, 1);

		if (r <= 0)
			return -1;
		len += (size_t)r;
		buf[len] = '\0';
		if (len >= 4 && memcmp(buf + len - 4, "\r\n\r\n", 4) == 0)
			return (long)len;
	}
	return -1;
}

static void answer_access(struct server *sv, int fd)
{
	char req[2048], body[128], out[512];
	int n;

	if (read_request(fd, req, sizeof(req)) < 0)
		return;
	sv->saw_token = strstr(req, "\r\nAuthorization: tok-123\r\n") != NULL;
	if (sv->script == S_REFUSE) {
		snprintf(body, sizeof(body), "{\"message\": \"nope\"}");
		n = snprintf(out, sizeof(out),
		             "HTTP/1.1 403 Forbidden\r\nContent-Length: %zu\r\n\r\n%s",
		             strlen(body), body);
	} else {
		snprintf(body, sizeof(body), "{\"uri\": \"ws://127.0.0.1:%d/ws\"}", sv->port);
		if (sv->script == S_OK_CHUNKED)
			n = snprintf(
			        out, sizeof(out),
			        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n%.5s\r\n%zx\r\n%s\r\n0\r\n\r\n",
			        body, strlen(body) - 5, body + 5);
		else
			n = snprintf(out, sizeof(out),
			             "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
			             strlen(body), body);
	}
	put(fd, out, (size_t)n);
}

static void answer_upgrade(struct server *sv, int fd)
{
	char req[2048], accept[WSFRAME_ACCEPT_LEN], out[512], *key;
	uint8_t payload[256];
	struct ws_frame f, g;
	long len;
	int n;

	if (read_request(fd, req, sizeof(req)) < 0 || !(key = strstr(req, "Sec-WebSocket-Key: ")))
		return;
	key += strlen("Sec-WebSocket-Key: ");
	wsframe_accept_key(key, strcspn(key, "\r"), accept);
	n = snprintf(out, sizeof(out),
	             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
	             "Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
	             accept);
	n += (int)frame((uint8_t *)out + n, WS_TEXT, true, "hi"); /* with the head */
	if (sv->script == S_EARLY) {
		/* a relay's early data: 30 KiB of frames in the same write as the 101, more than
		 * the head's own limit */
		uint8_t *early = malloc((size_t)n + 3 * (EARLY_FRAME + WSFRAME_MAX_HEADER));
		size_t at = (size_t)n;

		CHECK(early != NULL);
		memcpy(early, out, (size_t)n);
		for (int i = 0; i < 3; i++) {
			at += wsframe_header(early + at, WS_BINARY, true, EARLY_FRAME, NULL);
			memset(early + at, 'a' + i, EARLY_FRAME);
			at += EARLY_FRAME;
		}
		put(fd, early, at);
		free(early);
	} else {
		put(fd, out, (size_t)n);
	}
	len = read_client_frame(fd, &f, payload, sizeof(payload) - 1);
	if (len >= 0 && f.masked) {
		payload[len] = '\0';
		snprintf(sv->got, sizeof(sv->got), "%s", (char *)payload);
	}
	/* RFC 6455 section 5.3: a fresh key per frame (equal by chance: 1 in 2^32) */
	if (read_client_frame(fd, &g, payload, sizeof(payload) - 1) == 0 && g.masked)
		sv->fresh_mask = memcmp(f.mask, g.mask, 4) != 0;
	n = (int)frame((uint8_t *)out, WS_CLOSE, true, "\x03\xe8");
	put(fd, out, (size_t)n);
	while (read(fd, out, sizeof(out)) > 0) /* until the client closes */
		;
}

static void *serve(void *arg)
{
	struct server *sv = arg;
	int fd = accept(sv->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	if (sv->script == S_SILENT) {
		char b[256];

		while (read(fd, b, sizeof(b)) > 0) /* never answers; the client gives up */
			;
		close(fd);
		return NULL;
	}
	answer_access(sv, fd);
	close(fd);
	if (sv->script == S_REFUSE)
		return NULL;
	fd = accept(sv->lfd, NULL, NULL);
	if (fd >= 0) {
		answer_upgrade(sv, fd);
		close(fd);
	}
	return NULL;
}

struct outcome {
	bool opened, ended;
	int err, status, frames;
	char why[WSC_WHY], first[64];
	size_t out_max;
	bool detach;  /* hand the websocket over from on_open */
	struct wsc w; /* the handed-over websocket */
};

/* A masked client frame into @out with a random key; its length. */
static size_t client_frame(uint8_t *out, uint8_t opcode, const char *payload)
{
	uint8_t key[4];
	size_t n = strlen(payload), h;

	for (int i = 0; i < 4; i++)
		key[i] = (uint8_t)rand();
	h = wsframe_header(out, opcode, true, n, key);
	memcpy(out + h, payload, n);
	wsframe_mask(out + h, n, key, 0);
	return h + n;
}

/* From on_open: take the socket over and write the two frames the server expects ourselves. */
static void t_detach(struct wsc_uv *c, struct outcome *o)
{
	uint8_t buf[64];
	size_t n;

	CHECK_EQ(wsc_uv_detach(c, &o->w), 0);
	CHECK(o->w.fd >= 0);
	n = client_frame(buf, WS_TEXT, "hello");
	n += client_frame(buf + n, WS_PING, "");
	CHECK_EQ(wsc_send(&o->w, buf, n), (ssize_t)n);
}

static void t_open(struct wsc_uv *c, void *arg)
{
	struct outcome *o = arg;

	o->opened = true;
	if (o->detach) {
		t_detach(c, o);
		return;
	}
	CHECK_EQ(wsc_uv_send(c, WS_TEXT, "hello", 5), 0);
	CHECK_EQ(wsc_uv_send(c, WS_PING, NULL, 0), 0);
	CHECK_EQ(wsc_uv_send(c, WS_TEXT, "too much", o->out_max + 1), -ENOBUFS);
}

static bool t_frame(struct wsc_uv *c, const struct ws_frame *f, const uint8_t *p, void *arg)
{
	struct outcome *o = arg;

	if (o->frames++ == 0)
		snprintf(o->first, sizeof(o->first), "%.*s", (int)f->payload_len, (const char *)p);
	if (f->opcode == WS_CLOSE) {
		wsc_uv_send(c, WS_CLOSE, p, 2);
		wsc_uv_close(c);
		o->ended = true;
		return false;
	}
	return true;
}

static void t_close(struct wsc_uv *c, int err, int status, const char *why, void *arg)
{
	struct outcome *o = arg;

	(void)c;
	o->ended = true;
	o->err = err;
	o->status = status;
	snprintf(o->why, sizeof(o->why), "%s", why);
}

static const struct wsc_uv_cbs t_cbs = {t_open, t_frame, t_close};

/* After a hand-over: read the handed-over socket until the server's close frame. */
static void read_detached(struct outcome *o)
{
	struct seen s = {0};

	for (int i = 0; i < 200 && !(s.n && s.op[s.n - 1] == WS_CLOSE); i++) {
		struct pollfd pfd = {.fd = o->w.fd, .events = POLLIN};

		if (wsc_read_frames(&o->w, 1 << 16, collect, &s) < 0)
			break;
		poll(&pfd, 1, 10);
	}
	o->frames = s.n;
	snprintf(o->first, sizeof(o->first), "%s", s.data[0]);
	CHECK(s.n >= 2 && s.op[s.n - 1] == WS_CLOSE);
	wsc_close(&o->w);
}

/*
 * Join a server running @script; the outcome once the loop has nothing left to do (and, with
 * @detach, once the handed-over socket has read the server's close frame).
 */
static void run_uv_with(enum script script, bool listening, bool detach, struct outcome *o,
                        struct server *sv)
{
	char url[128], why[WSC_WHY] = "";
	uv_loop_t loop;
	pthread_t t;
	struct wsc_uv *c;

	memset(sv, 0, sizeof(*sv));
	memset(o, 0, sizeof(*o));
	o->out_max = 1 << 16;
	o->detach = detach;
	o->w.fd = -1;
	sv->script = script;
	sv->lfd = listen_any(&sv->port);
	CHECK(sv->lfd >= 0);
	if (!listening)
		close(sv->lfd); /* the port is free again: nothing listens there */
	else
		CHECK_EQ(pthread_create(&t, NULL, serve, sv), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/session/t", sv->port);
	uv_loop_init(&loop);
	c = wsc_uv_join(&loop, url, "tok-123", NULL, 300, 1 << 16, o->out_max, &t_cbs, o, why);
	CHECK(c != NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ(uv_loop_close(&loop), 0); /* every handle closed, nothing leaked on the loop */
	if (detach && o->w.fd >= 0)
		read_detached(o);
	if (listening) {
		shutdown(sv->lfd, SHUT_RDWR); /* a server still waiting in accept() gives up */
		pthread_join(t, NULL);
		close(sv->lfd);
	}
}

static void run_uv(enum script script, bool listening, struct outcome *o, struct server *sv)
{
	run_uv_with(script, listening, false, o, sv);
}

static void test_uv_join(void)
{
	struct outcome o;
	struct server sv;

	run_uv(S_OK, true, &o, &sv);
	CHECK(o.opened && o.ended);
	CHECK(sv.saw_token);
	CHECK_STR(o.first, "hi"); /* the frame that came with the 101 */
	CHECK_EQ(o.frames, 2);    /* "hi", then the close */
	CHECK_STR(sv.got, "hello");
	CHECK(sv.fresh_mask);
	run_uv(S_OK_CHUNKED, true, &o, &sv);
	CHECK(o.opened);
	CHECK_STR(sv.got, "hello");
}

/* The open websocket handed over (wsc_uv_detach()): its own fd, what came with the 101 kept. */
static void test_uv_detach(void)
{
	struct outcome o;
	struct server sv;

	run_uv_with(S_OK, true, true, &o, &sv);
	CHECK(o.opened);
	CHECK_STR(o.first, "hi"); /* the frame that came with the 101, handed over in w.in */
	CHECK_EQ(o.frames, 2);    /* "hi", then the close */
	CHECK_STR(sv.got, "hello");
	CHECK(sv.fresh_mask);
}

/* Frames that come in the same read as the 101 are not limited by the head's size (they were,
 * and a relay's early data ended the connection with "a message ... is over"). */
static void test_uv_early_frames(void)
{
	struct outcome o;
	struct server sv;

	run_uv(S_EARLY, true, &o, &sv);
	CHECK(o.opened && o.ended);
	CHECK_EQ(o.err, 0);
	CHECK_STR(o.why, "");
	CHECK_EQ(o.frames, 5); /* "hi", three of 10 KiB, then the close */
	CHECK_STR(sv.got, "hello");
}

static void test_uv_failures(void)
{
	struct outcome o;
	struct server sv;

	run_uv(S_REFUSE, true, &o, &sv);
	CHECK(!o.opened && o.ended);
	CHECK_EQ(o.err, -EACCES);
	CHECK_EQ(o.status, 403);
	CHECK(strstr(o.why, "HTTP 403: nope") != NULL);
	run_uv(S_SILENT, true, &o, &sv);
	CHECK_EQ(o.err, -ETIMEDOUT);
	CHECK(strstr(o.why, "timed out") != NULL);
	run_uv(S_OK, false, &o, &sv);
	CHECK_EQ(o.err, -ECONNREFUSED);
	CHECK(strstr(o.why, "cannot connect") != NULL);
}

static void test_uv_refused_at_once(void)
{
	char why[WSC_WHY] = "";
	uv_loop_t loop;

	uv_loop_init(&loop);
	CHECK(wsc_uv_join(&loop, "ftp://x/session/t", "t", NULL, 100, 1, 1, &t_cbs, NULL, why) ==
	      NULL);
	CHECK(strstr(why, "invalid access URL") != NULL);
	CHECK(wsc_uv_join(&loop, "http://x/session/t", "a\r\nb", NULL, 100, 1, 1, &t_cbs, NULL,
	                  why) == NULL);
	CHECK(strstr(why, "control characters") != NULL);
	/* an invalid websocket uri is named without its query: the code there is a secret */
	CHECK(wsc_uv_open(&loop, "ftp://x/session/t?code=SECRETCODE", NULL, 100, 1, 1, &t_cbs, NULL,
	                  why) == NULL);
	CHECK(strstr(why, "invalid websocket uri 'ftp://x/session/t'") != NULL);
	CHECK(strstr(why, "SECRETCODE") == NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ(uv_loop_close(&loop), 0);
}

int main(void)
{
	RUN(test_uv_join());
	RUN(test_uv_detach());
	RUN(test_uv_early_frames());
	RUN(test_uv_failures());
	RUN(test_uv_refused_at_once());
	RUN(test_read_frames());
	RUN(test_read_cut_frames());
	RUN(test_read_stop());
	RUN(test_read_errors());
	return harness_done();
}
