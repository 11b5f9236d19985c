/*
 * host_outbuf_test: the bounded output buffer (host/outbuf.h) over a socketpair: frames are
 * masked client frames that parse back to their payload, the bound refuses what does not fit
 * (nothing partial appended), a full socket keeps the rest for later, and a closed peer is an
 * error.
 */
#include "host/outbuf.c"
#include "test/harness.h"

#ifndef RUN /* a harness that does not count test cases yet */
#define RUN(call) call
#endif

#include <fcntl.h>
#include <signal.h>

static void test_frame_round_trip(void)
{
	struct host_outbuf b = {.buf = {.max = 1024}};
	struct ws_frame f;
	uint8_t payload[200];
	int h;

	CHECK_EQ(host_outbuf_put_frame(&b, WS_TEXT, "hello", 5, 1), 0);
	h = wsframe_parse(b.buf.p, host_outbuf_pending(&b), &f);
	CHECK(h > 0);
	CHECK(f.masked);
	CHECK_EQ(f.opcode, WS_TEXT);
	CHECK_EQ(f.payload_len, 5);
	memcpy(payload, b.buf.p + h, 5);
	wsframe_mask(payload, 5, f.mask, 0);
	CHECK_MEM(payload, "hello", 5);
	CHECK_EQ(b.progress_ns, 1);
	host_outbuf_release(&b);
}

static void test_bound(void)
{
	struct host_outbuf b = {.buf = {.max = 100}};
	uint8_t big[100] = {0};

	CHECK_EQ(host_outbuf_put(&b, big, 60, 0), 0);
	CHECK_EQ(host_outbuf_put(&b, big, 41, 0), -ENOBUFS);
	CHECK_EQ(host_outbuf_pending(&b), 60); /* nothing partial */
	CHECK_EQ(host_outbuf_put(&b, big, 40, 0), 0);
	CHECK_EQ(host_outbuf_put_frame(&b, WS_BINARY, NULL, 0, 0), -ENOBUFS);
	host_outbuf_clear(&b);
	CHECK_EQ(host_outbuf_pending(&b), 0);
	/* a frame needs room for the longest header (14 bytes), whatever its own is */
	CHECK_EQ(host_outbuf_put_frame(&b, WS_BINARY, big, 87, 0), -ENOBUFS);
	CHECK_EQ(host_outbuf_put_frame(&b, WS_BINARY, big, 86, 0), 0);
	CHECK_EQ(host_outbuf_pending(&b), 86 + 6); /* 2 bytes of header, 4 of mask */
	host_outbuf_release(&b);
}

static void test_flush_partial_then_rest(void)
{
	struct host_outbuf b = {.buf = {.max = 8 << 20}};
	static uint8_t data[4 << 20], got[4 << 20];
	size_t have = 0;
	int sv[2];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7);
	CHECK_EQ(host_outbuf_put(&b, data, sizeof(data), 5), 0);
	CHECK_EQ(host_outbuf_flush(&b, NULL, sv[0], 6), 0); /* the socket takes part */
	CHECK(host_outbuf_pending(&b) > 0);
	CHECK(host_outbuf_pending(&b) < sizeof(data));
	CHECK_EQ(b.progress_ns, 6);
	/* the buffer takes more while it waits, and moves its unsent bytes when it needs room */
	while (have < sizeof(data)) {
		ssize_t r = read(sv[1], got + have, sizeof(got) - have);

		if (r <= 0)
			break;
		have += (size_t)r;
		CHECK_EQ(host_outbuf_flush(&b, NULL, sv[0], 7), 0);
	}
	CHECK_EQ(have, sizeof(data));
	CHECK_MEM(got, data, sizeof(data));
	CHECK_EQ(host_outbuf_pending(&b), 0);
	close(sv[1]);
	CHECK_EQ(host_outbuf_put(&b, "x", 1, 8), 0);
	CHECK(host_outbuf_flush(&b, NULL, sv[0], 9) < 0); /* EPIPE */
	close(sv[0]);
	host_outbuf_release(&b);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_frame_round_trip());
	RUN(test_bound());
	RUN(test_flush_partial_then_rest());
	return harness_done();
}
