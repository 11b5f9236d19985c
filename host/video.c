/*
 * host/video: test pattern -> libavcodec mpeg1video -> libavformat mpegts into memory. The muxer
 * writes through a custom AVIOContext whose buffer is flushed after every frame, so each frame
 * leaves as one chunk of whole TS packets. ffmpeg 5.1 APIs (send/receive, write_packet with a
 * non-const buffer).
 */
#include "host/video.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>

#define IO_BUF (256 * 1024) /* larger than any one frame's TS bytes at our bit rates */

struct video_enc {
	AVCodecContext *cc;
	AVFormatContext *oc;
	AVStream *st;
	AVFrame *frame;
	AVPacket *pkt;
	uint8_t *io_buf;
	video_emit_fn emit;
	void *arg;
	bool key; /* the chunk being written starts with a keyframe */
};

/* ---- the test pattern ---- */

enum { BLACK = 16, WHITE = 235 };

static void fill(uint8_t *y, int stride, int x0, int y0, int w, int h, uint8_t v)
{
	for (int r = y0; r < y0 + h; r++)
		memset(y + (size_t)r * (size_t)stride + x0, v, (size_t)w);
}

static void draw_bits(uint8_t *y, int stride, int row, uint64_t value, int bits)
{
	for (int i = 0; i < bits; i++) {
		bool one = (value >> (bits - 1 - i)) & 1;

		fill(y, stride, i * VIDEO_BLOCK, row * VIDEO_BLOCK, VIDEO_BLOCK, VIDEO_BLOCK,
		     one ? WHITE : BLACK);
	}
}

void video_draw_test_pattern(uint8_t *y, int stride, int width, int height, int64_t n,
                             int64_t time_ms)
{
	int bar = width / 8, x = (int)((n * 8) % (width - bar));

	/* vertical grey ramp, and a white bar sweeping across so motion is visible */
	for (int r = 0; r < height; r++)
		for (int c = 0; c < width; c++)
			y[(size_t)r * (size_t)stride + c] =
			        (uint8_t)(BLACK + (WHITE - BLACK) * c / width / 2);
	fill(y, stride, x, 3 * VIDEO_BLOCK, bar, height - 3 * VIDEO_BLOCK, WHITE);
	draw_bits(y, stride, 0, (uint64_t)n & 0xffffffffu, VIDEO_FRAME_BITS);
	draw_bits(y, stride, 1, (uint64_t)time_ms & 0xffffffffffffULL, VIDEO_TIME_BITS);
}

static uint64_t read_bits(const uint8_t *y, int stride, int row, int bits)
{
	uint64_t v = 0;

	for (int i = 0; i < bits; i++) {
		int cx = i * VIDEO_BLOCK + VIDEO_BLOCK / 2,
		    cy = row * VIDEO_BLOCK + VIDEO_BLOCK / 2;

		v = v << 1 | (y[(size_t)cy * (size_t)stride + cx] > (BLACK + WHITE) / 2);
	}
	return v;
}

void video_read_stamp(const uint8_t *y, int stride, uint32_t *n, uint64_t *time_ms)
{
	*n = (uint32_t)read_bits(y, stride, 0, VIDEO_FRAME_BITS);
	*time_ms = read_bits(y, stride, 1, VIDEO_TIME_BITS);
}

/* ---- encoding ---- */

static int write_packet(void *opaque, uint8_t *buf, int size)
{
	struct video_enc *e = opaque;

	e->emit(e->arg, buf, (size_t)size, e->key);
	e->key = false;
	return size;
}

static int open_codec(struct video_enc *e, const struct video_opts *o, char why[160])
{
	const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MPEG1VIDEO);

	if (!codec || !(e->cc = avcodec_alloc_context3(codec))) {
		snprintf(why, 160, "no mpeg1video encoder in this libavcodec");
		return -ENOSYS;
	}
	e->cc->width = o->width;
	e->cc->height = o->height;
	e->cc->time_base = (AVRational){1, o->fps};
	e->cc->framerate = (AVRational){o->fps, 1};
	e->cc->pix_fmt = AV_PIX_FMT_YUV420P;
	e->cc->bit_rate = o->bitrate;
	e->cc->gop_size = o->gop;
	e->cc->max_b_frames = 0; /* no reordering */
	/* Without LOW_DELAY mpeg1video holds every frame back by one (40 ms at 25 fps); MPEG-1
	 * allows the flag only as "unofficial", which also allows 10 and 15 fps. */
	e->cc->flags |= AV_CODEC_FLAG_LOW_DELAY;
	e->cc->strict_std_compliance = FF_COMPLIANCE_UNOFFICIAL;
	if (avcodec_open2(e->cc, codec, NULL) < 0) {
		snprintf(why, 160, "cannot open mpeg1video for %dx%d at %d fps", o->width,
		         o->height, o->fps);
		return -EINVAL;
	}
	return 0;
}

static int open_muxer(struct video_enc *e, char why[160])
{
	if (avformat_alloc_output_context2(&e->oc, NULL, "mpegts", NULL) < 0 ||
	    !(e->st = avformat_new_stream(e->oc, NULL)) || !(e->io_buf = av_malloc(IO_BUF)) ||
	    !(e->oc->pb = avio_alloc_context(e->io_buf, IO_BUF, 1, e, NULL, write_packet, NULL))) {
		snprintf(why, 160, "cannot set up the MPEG-TS muxer");
		return -ENOMEM;
	}
	e->io_buf = NULL; /* owned by the AVIOContext now */
	e->oc->flags |= AVFMT_FLAG_FLUSH_PACKETS;
	avcodec_parameters_from_context(e->st->codecpar, e->cc);
	e->st->time_base = e->cc->time_base;
	if (avformat_write_header(e->oc, NULL) < 0) {
		snprintf(why, 160, "cannot write the MPEG-TS header");
		return -EIO;
	}
	avio_flush(e->oc->pb);
	return 0;
}

int video_enc_new(const struct video_opts *o, video_emit_fn emit, void *arg, struct video_enc **out,
                  char why[160])
{
	struct video_enc *e = av_mallocz(sizeof(*e));
	int ret;

	*out = NULL;
	if (!e)
		return -ENOMEM;
	e->emit = emit;
	e->arg = arg;
	if (o->width % 2 || o->height % 2 || o->width < VIDEO_TIME_BITS * VIDEO_BLOCK ||
	    o->height < 64 || o->fps < 1 || o->fps > 60) {
		snprintf(why, 160, "video size must be even and at least %dx64, fps 1 to 60",
		         VIDEO_TIME_BITS * VIDEO_BLOCK);
		video_enc_free(e);
		return -EINVAL;
	}
	ret = open_codec(e, o, why);
	if (!ret)
		ret = open_muxer(e, why);
	if (!ret && (!(e->frame = av_frame_alloc()) || !(e->pkt = av_packet_alloc()))) {
		snprintf(why, 160, "out of memory");
		ret = -ENOMEM;
	}
	if (!ret) {
		e->frame->format = AV_PIX_FMT_YUV420P;
		e->frame->width = o->width;
		e->frame->height = o->height;
		if (av_frame_get_buffer(e->frame, 0) < 0) {
			snprintf(why, 160, "out of memory");
			ret = -ENOMEM;
		}
	}
	if (ret) {
		video_enc_free(e);
		return ret;
	}
	*out = e;
	return 0;
}

/* Drain encoded packets into the muxer, one flushed chunk each. */
static int drain(struct video_enc *e)
{
	int ret;

	while ((ret = avcodec_receive_packet(e->cc, e->pkt)) == 0) {
		e->key = e->pkt->flags & AV_PKT_FLAG_KEY;
		av_packet_rescale_ts(e->pkt, e->cc->time_base, e->st->time_base);
		e->pkt->stream_index = e->st->index;
		ret = av_write_frame(e->oc, e->pkt);
		av_packet_unref(e->pkt);
		if (ret < 0)
			return -EIO;
		avio_flush(e->oc->pb);
	}
	return ret == AVERROR(EAGAIN) || ret == AVERROR_EOF ? 0 : -EIO;
}

int video_enc_test_frame(struct video_enc *e, int64_t n, int64_t time_ms)
{
	AVFrame *f = e->frame;

	if (av_frame_make_writable(f) < 0)
		return -ENOMEM;
	video_draw_test_pattern(f->data[0], f->linesize[0], f->width, f->height, n, time_ms);
	for (int r = 0; r < f->height / 2; r++) {
		memset(f->data[1] + (size_t)r * (size_t)f->linesize[1], 128, (size_t)f->width / 2);
		memset(f->data[2] + (size_t)r * (size_t)f->linesize[2], 128, (size_t)f->width / 2);
	}
	f->pts = n;
	if (avcodec_send_frame(e->cc, f) < 0)
		return -EIO;
	return drain(e);
}

void video_enc_free(struct video_enc *e)
{
	if (!e)
		return;
	if (e->oc) {
		if (e->oc->pb) {
			av_freep(&e->oc->pb->buffer);
			avio_context_free(&e->oc->pb);
		}
		avformat_free_context(e->oc);
	}
	av_free(e->io_buf);
	avcodec_free_context(&e->cc);
	av_frame_free(&e->frame);
	av_packet_free(&e->pkt);
	av_free(e);
}
