/*
 * video_test: host/video. The burned-in stamp reads back exactly from a raw picture; a run of
 * test-pattern frames comes out as one chunk of whole 188-byte TS packets per frame with
 * keyframes where the GOP says; and decoding that stream with libavformat/libavcodec gives back
 * every frame, in order, with its frame number and time readable from the picture.
 */
#include "host/video.h"
#include "test/harness.h"

#include <stdlib.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#define FRAMES 50

struct capture {
	uint8_t *ts;
	size_t len, cap;
	int chunks, key_chunks, bad_chunks;
};

static void collect(void *arg, const uint8_t *p, size_t n, bool key)
{
	struct capture *c = arg;

	if (n == 0)
		return;
	c->chunks++;
	c->key_chunks += key;
	if (n % 188)
		c->bad_chunks++;
	for (size_t i = 0; i < n; i += 188)
		if (p[i] != 0x47)
			c->bad_chunks++;
	if (c->len + n > c->cap) {
		c->cap = (c->len + n) * 2;
		c->ts = realloc(c->ts, c->cap);
	}
	memcpy(c->ts + c->len, p, n);
	c->len += n;
}

static void test_stamp_roundtrip(void)
{
	enum { W = 640, H = 96 };
	static uint8_t y[W * H];
	uint32_t n;
	uint64_t t;

	video_draw_test_pattern(y, W, W, H, 123456789, 0xABCDEF012345LL);
	video_read_stamp(y, W, &n, &t);
	CHECK_EQ(n, 123456789);
	CHECK_EQ(t, 0xABCDEF012345LL);
	video_draw_test_pattern(y, W, W, H, 0, 0);
	video_read_stamp(y, W, &n, &t);
	CHECK_EQ(n, 0);
	CHECK_EQ(t, 0);
}

static void test_bad_options(void)
{
	struct video_opts o = {641, 480, 25, 1000000, 25};
	struct video_enc *e = (struct video_enc *)1;
	char why[160] = "";

	CHECK_EQ(video_enc_new(&o, collect, NULL, &e, why), -EINVAL);
	CHECK(e == NULL);
	CHECK(strstr(why, "even") != NULL);
	o.width = 640;
	o.fps = 0;
	CHECK_EQ(video_enc_new(&o, collect, NULL, &e, why), -EINVAL);
}

struct reader {
	const uint8_t *p;
	size_t len, off;
};

static int read_mem(void *opaque, uint8_t *buf, int size)
{
	struct reader *r = opaque;
	size_t n = r->len - r->off < (size_t)size ? r->len - r->off : (size_t)size;

	if (n == 0)
		return AVERROR_EOF;
	memcpy(buf, r->p + r->off, n);
	r->off += n;
	return (int)n;
}

/* Decode @ts and check each picture's stamp: frame i carries number i and time 1000 + 40 i. */
static int decode_and_check(const uint8_t *ts, size_t len)
{
	struct reader rd = {ts, len, 0};
	AVFormatContext *ic = avformat_alloc_context();
	uint8_t *buf = av_malloc(65536);
	AVIOContext *io = avio_alloc_context(buf, 65536, 0, &rd, read_mem, NULL, NULL);
	const AVCodec *dec = avcodec_find_decoder(AV_CODEC_ID_MPEG1VIDEO);
	AVCodecContext *dc = avcodec_alloc_context3(dec);
	AVPacket *pkt = av_packet_alloc();
	AVFrame *f = av_frame_alloc();
	int decoded = 0, in_order = 1;

	ic->pb = io;
	CHECK(avformat_open_input(&ic, NULL, av_find_input_format("mpegts"), NULL) == 0);
	CHECK(avcodec_open2(dc, dec, NULL) == 0);
	while (av_read_frame(ic, pkt) == 0) {
		avcodec_send_packet(dc, pkt);
		av_packet_unref(pkt);
		while (avcodec_receive_frame(dc, f) == 0) {
			uint32_t n;
			uint64_t t;

			video_read_stamp(f->data[0], f->linesize[0], &n, &t);
			if (n != (uint32_t)decoded || t != 1000 + 40 * (uint64_t)decoded)
				in_order = 0;
			decoded++;
		}
	}
	avcodec_send_packet(dc, NULL);
	while (avcodec_receive_frame(dc, f) == 0)
		decoded++;
	CHECK(in_order);
	av_frame_free(&f);
	av_packet_free(&pkt);
	avcodec_free_context(&dc);
	avformat_close_input(&ic);
	av_freep(&io->buffer);
	avio_context_free(&io);
	return decoded;
}

static void test_encode_stream(void)
{
	struct video_opts o = {640, 480, 25, 1500000, 25};
	struct capture c = {0};
	struct video_enc *e;
	char why[160];
	int ok = 1;

	CHECK_EQ(video_enc_new(&o, collect, &c, &e, why), 0);
	if (!e)
		return;
	for (int i = 0; i < FRAMES; i++)
		ok &= video_enc_test_frame(e, i, 1000 + 40 * i) == 0;
	CHECK(ok);
	video_enc_free(e);
	CHECK_EQ(c.chunks, FRAMES);
	CHECK_EQ(c.key_chunks, FRAMES / o.gop);
	CHECK_EQ(c.bad_chunks, 0);
	CHECK_EQ(decode_and_check(c.ts, c.len), FRAMES);
	free(c.ts);
}

int main(void)
{
	av_log_set_level(AV_LOG_ERROR);
	test_stamp_roundtrip();
	test_bad_options();
	test_encode_stream();
	return harness_done();
}
