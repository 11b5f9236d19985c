/*
 * wsclient_test: pkg/wsclient without a server (minting moved to jwt_test). Frames over a
 * socketpair(): wsc_send_frame() masks each frame with a fresh key and finishes a frame larger
 * than the socket buffer (or times out when nobody reads); wsc_read_frames() hands over data,
 * fragmented, control and close frames in order, waits for a frame cut anywhere, keeps what
 * follows when the callback stops, refuses bad headers (-EPROTO), reports the end of the stream
 * (-ECONNRESET) and a frame larger than its buffer (-ENOBUFS) instead of growing. The
 * websocket accept key matches RFC 6455 section 1.3's example; tokens with control characters
 * are refused before anything is sent.
 */
#include "pkg/wsclient/wsclient.h"
#include "test/harness.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_accept_key(void)
{
	char out[WSC_ACCEPT_LEN];

	wsc_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
	CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_token_control_characters(void)
{
	char body[64], why[WSC_WHY] = "";

	CHECK_EQ(wsc_post("http://127.0.0.1:9/session/x", "a\r\nX-Injected: yes", NULL, 100, body,
	                  sizeof(body), why),
	         -EINVAL);
	CHECK(strstr(why, "control characters") != NULL);
}

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
		CHECK_EQ(wsc_nonblock(c), 0);
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

static void test_send_frame(void)
{
	struct ws_frame f, g;
	uint8_t payload[256];
	struct wsc c;
	int peer;

	pair(&c, &peer, false);
	CHECK_EQ(wsc_send_frame(&c, WS_TEXT, "hello", 5, 1000), 0);
	CHECK_EQ(wsc_send_frame(&c, WS_CLOSE, "\x03\xe8", 2, 1000), 0);
	CHECK_EQ(wsc_send_frame(&c, WS_PING, NULL, 0, 1000), 0);
	CHECK_EQ(read_client_frame(peer, &f, payload, sizeof(payload)), 5);
	CHECK(f.fin && f.masked && f.opcode == WS_TEXT); /* RFC 6455 section 5.3: clients mask */
	CHECK_MEM(payload, "hello", 5);
	CHECK_EQ(read_client_frame(peer, &g, payload, sizeof(payload)), 2);
	CHECK(g.masked && g.opcode == WS_CLOSE);
	CHECK_MEM(payload, "\x03\xe8", 2);
	CHECK(memcmp(f.mask, g.mask, 4) != 0); /* a fresh key per frame (equal: 1 in 2^32) */
	CHECK_EQ(read_client_frame(peer, &f, payload, sizeof(payload)), 0);
	CHECK(f.opcode == WS_PING && f.masked);
	wsc_close(&c);
	close(peer);
}

struct drain {
	int fd;
	size_t got;
	uint8_t first[16];
};

static void *drain_peer(void *arg)
{
	struct drain *d = arg;
	uint8_t buf[65536];
	ssize_t r;

	while ((r = read(d->fd, buf, sizeof(buf))) > 0) {
		if (d->got < sizeof(d->first))
			memcpy(d->first + d->got, buf,
			       (size_t)r < sizeof(d->first) - d->got ? (size_t)r
			                                             : sizeof(d->first) - d->got);
		d->got += (size_t)r;
	}
	return NULL;
}

/* A frame far larger than the socket buffer: partial sends resume until all of it is out. */
static void test_send_large_frame(void)
{
	size_t n = 4 << 20;
	uint8_t *big = malloc(n);
	struct drain d = {0};
	pthread_t t;
	struct wsc c;
	int peer;

	pair(&c, &peer, true);
	memset(big, 'z', n);
	d.fd = peer;
	CHECK_EQ(pthread_create(&t, NULL, drain_peer, &d), 0);
	CHECK_EQ(wsc_send_frame(&c, WS_BINARY, big, n, 5000), 0);
	shutdown(c.fd, SHUT_WR);
	pthread_join(t, NULL);
	CHECK_EQ(d.got, n + 14); /* 2 + 8 length bytes + 4 mask bytes */
	CHECK_EQ(d.first[1], 0x80 | 127);
	wsc_close(&c);
	close(peer);
	free(big);
}

/* Nobody reads: a frame that does not fit times out rather than blocking forever. */
static void test_send_times_out(void)
{
	size_t n = 4 << 20;
	uint8_t *big = calloc(1, n);
	struct wsc c;
	int peer;

	pair(&c, &peer, true);
	CHECK_EQ(wsc_send_frame(&c, WS_BINARY, big, n, 50), -ETIMEDOUT);
	wsc_close(&c);
	CHECK_EQ(wsc_send_frame(&(struct wsc){.fd = peer}, WS_TEXT, "x", 1, 50), -EPIPE);
	close(peer);
	free(big);
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

int main(void)
{
	test_send_frame();
	test_send_large_frame();
	test_send_times_out();
	test_read_frames();
	test_read_cut_frames();
	test_read_stop();
	test_read_errors();
	test_accept_key();
	test_token_control_characters();
	return harness_done();
}
