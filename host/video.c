/*
 * host/video: a picture source -> libavcodec (mpeg1video, or H.264 through libx264) -> chunks
 * in memory: MPEG-TS or fragmented MP4 through libavformat, or raw Annex-B straight from the
 * encoder. A muxer writes through a custom AVIOContext into one growing buffer per frame, which
 * is emitted once the frame is flushed, so each frame leaves as exactly one chunk. Sources:
 * the test pattern drawn here, or libavdevice (v4l2, lavfi) decoded and scaled with swscale.
 * ffmpeg 5.1 APIs (send/receive, write_packet with a non-const buffer).
 */
#define LOG_MODULE "video"
#include "host/video.h"
#include "pkg/buf/buf.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavcodec/avcodec.h>
#include <libavdevice/version.h>
#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#define IO_BUF  (64 * 1024)       /* the AVIOContext's buffer; flushed into @out */
#define OUT_MAX (8 * 1024 * 1024) /* no one frame's bytes come near this */

enum video_fmt { FMT_TS, FMT_ANNEXB, FMT_FMP4 };

struct host_video_enc {
	AVCodecContext *cc;
	AVFormatContext *oc; /* NULL for Annex-B: packets leave as they are */
	AVStream *st;
	AVFrame *frame;
	AVPacket *pkt;
	uint8_t *io_buf;
	enum video_fmt fmt;
	int64_t pts;    /* frames sent to the encoder */
	struct buf out; /* the chunk being written by the muxer: at most OUT_MAX */
	bool out_full;  /* OUT_MAX reached: the chunk is dropped */
	uint8_t *init;  /* fmp4: ftyp+moov, put before every keyframe's fragment */
	size_t init_len;
	host_video_emit_fn emit;
	void *arg;
};

/* ---- encoding ---- */

static int append(struct host_video_enc *e, const uint8_t *p, size_t n)
{
	if (buf_add(&e->out, p, n)) {
		e->out_full = true;
		return -ENOMEM;
	}
	return 0;
}

static int write_packet(void *opaque, uint8_t *buf, int size)
{
	struct host_video_enc *e = opaque;

	return append(e, buf, (size_t)size) ? AVERROR(ENOMEM) : size;
}

static int parse_kind(const struct host_video_opts *o, bool *h264, enum video_fmt *fmt,
                      char why[160])
{
	const char *c = o->codec && *o->codec ? o->codec : "mpeg1";
	const char *f = o->format && *o->format ? o->format : NULL;

	if (strcmp(c, "mpeg1") != 0 && strcmp(c, "h264") != 0) {
		snprintf(why, 160, "unknown video codec '%s' (mpeg1 or h264)", c);
		return -EINVAL;
	}
	*h264 = strcmp(c, "h264") == 0;
	if (!f)
		f = *h264 ? "annexb" : "ts";
	if (strcmp(f, "ts") == 0)
		*fmt = FMT_TS;
	else if (strcmp(f, "annexb") == 0)
		*fmt = FMT_ANNEXB;
	else if (strcmp(f, "fmp4") == 0)
		*fmt = FMT_FMP4;
	else {
		snprintf(why, 160, "unknown video format '%s' (ts, annexb or fmp4)", f);
		return -EINVAL;
	}
	if (!*h264 && *fmt != FMT_TS) {
		snprintf(why, 160, "video format '%s' needs codec h264: mpeg1 is sent only as ts",
		         f);
		return -EINVAL;
	}
	return 0;
}

static void set_common(AVCodecContext *cc, const struct host_video_opts *o)
{
	cc->width = o->width;
	cc->height = o->height;
	cc->time_base = (AVRational){1, o->fps};
	cc->framerate = (AVRational){o->fps, 1};
	cc->pix_fmt = AV_PIX_FMT_YUV420P;
	cc->bit_rate = o->bitrate;
	cc->gop_size = o->gop;
	cc->max_b_frames = 0; /* no reordering */
}

static int open_mpeg1(struct host_video_enc *e, const struct host_video_opts *o, char why[160])
{
	const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_MPEG1VIDEO);

	if (!codec || !(e->cc = avcodec_alloc_context3(codec))) {
		snprintf(why, 160, "no mpeg1video encoder in this libavcodec");
		return -ENOSYS;
	}
	set_common(e->cc, o);
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

static int open_h264(struct host_video_enc *e, const struct host_video_opts *o, char why[160])
{
	const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
	AVDictionary *opts = NULL;
	int ret;

	if (!codec || !(e->cc = avcodec_alloc_context3(codec))) {
		snprintf(why, 160, "no libx264 encoder in this libavcodec");
		return -ENOSYS;
	}
	set_common(e->cc, o);
	e->cc->keyint_min = o->gop;
	e->cc->rc_max_rate = o->bitrate;
	e->cc->rc_buffer_size = (int)(o->bitrate > INT32_MAX ? INT32_MAX : o->bitrate);
	/* MP4 keeps SPS/PPS in the moov (avcC), so the encoder must hand them over at open;
	 * otherwise libx264 repeats them before every IDR, in-band, which Annex-B and TS need. */
	if (e->fmt == FMT_FMP4)
		e->cc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	av_dict_set(&opts, "preset", "veryfast", 0);
	av_dict_set(&opts, "tune", "zerolatency", 0);
	av_dict_set(&opts, "profile", "baseline", 0);
	av_dict_set(&opts, "x264-params", "scenecut=0", 0); /* keyframes only every @gop */
	ret = avcodec_open2(e->cc, codec, &opts);
	av_dict_free(&opts);
	if (ret < 0) {
		snprintf(why, 160, "cannot open libx264 for %dx%d at %d fps", o->width, o->height,
		         o->fps);
		return -EINVAL;
	}
	return 0;
}

static int open_muxer(struct host_video_enc *e, char why[160])
{
	const char *name = e->fmt == FMT_TS ? "mpegts" : "mp4";
	AVDictionary *opts = NULL;
	int ret;

	if (avformat_alloc_output_context2(&e->oc, NULL, name, NULL) < 0 ||
	    !(e->st = avformat_new_stream(e->oc, NULL)) || !(e->io_buf = av_malloc(IO_BUF)) ||
	    !(e->oc->pb = avio_alloc_context(e->io_buf, IO_BUF, 1, e, NULL, write_packet, NULL))) {
		snprintf(why, 160, "cannot set up the %s muxer", name);
		return -ENOMEM;
	}
	e->io_buf = NULL; /* owned by the AVIOContext now */
	e->oc->flags |= AVFMT_FLAG_FLUSH_PACKETS;
	avcodec_parameters_from_context(e->st->codecpar, e->cc);
	e->st->time_base = e->cc->time_base;
	/* one fragment per frame, written when we flush it; the moov (no samples) up front */
	if (e->fmt == FMT_FMP4)
		av_dict_set(&opts, "movflags", "frag_custom+empty_moov+default_base_moof", 0);
	ret = avformat_write_header(e->oc, &opts);
	av_dict_free(&opts);
	if (ret < 0) {
		snprintf(why, 160, "cannot write the %s header", name);
		return -EIO;
	}
	avio_flush(e->oc->pb);
	if (e->fmt == FMT_FMP4) {
		/* ftyp+moov: kept for the key chunks, not emitted by itself */
		e->init = e->out.p; /* taken over: freed with free() */
		e->init_len = e->out.len;
		buf_init(&e->out, OUT_MAX);
	}
	/* TS: whatever the header wrote stays in @out and goes out with the first frame */
	return 0;
}

int host_video_enc_new(const struct host_video_opts *o, host_video_emit_fn emit, void *arg,
                       struct host_video_enc **out, char why[160])
{
	struct host_video_enc *e = av_mallocz(sizeof(*e));
	bool h264 = false;
	int ret;

	*out = NULL;
	av_log_set_level(AV_LOG_ERROR); /* libav's warnings are not ours to print per frame */
	if (!e)
		return -ENOMEM;
	e->emit = emit;
	e->arg = arg;
	buf_init(&e->out, OUT_MAX);
	if (o->width % 2 || o->height % 2 || o->width < VIDEO_TIME_BITS * VIDEO_BLOCK ||
	    o->height < 64 || o->fps < 1 || o->fps > 60) {
		snprintf(why, 160, "video size must be even and at least %dx64, fps 1 to 60",
		         VIDEO_TIME_BITS * VIDEO_BLOCK);
		host_video_enc_free(e);
		return -EINVAL;
	}
	ret = parse_kind(o, &h264, &e->fmt, why);
	if (!ret)
		ret = h264 ? open_h264(e, o, why) : open_mpeg1(e, o, why);
	if (!ret && e->fmt != FMT_ANNEXB)
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
		host_video_enc_free(e);
		return ret;
	}
	*out = e;
	return 0;
}

/* Mux one packet and flush it (TS packets; an MP4 fragment), then emit the chunk. */
static int mux(struct host_video_enc *e, bool key)
{
	int ret;

	if (key && e->fmt == FMT_FMP4)
		append(e, e->init, e->init_len);
	av_packet_rescale_ts(e->pkt, e->cc->time_base, e->st->time_base);
	e->pkt->stream_index = e->st->index;
	ret = av_write_frame(e->oc, e->pkt);
	if (ret >= 0 && e->fmt == FMT_FMP4)
		ret = av_write_frame(e->oc, NULL); /* frag_custom: close the fragment now */
	avio_flush(e->oc->pb);
	if (ret >= 0 && !e->out_full && e->out.len)
		e->emit(e->arg, e->out.p, e->out.len, key);
	e->out.len = 0;
	e->out_full = false;
	return ret < 0 ? -EIO : 0;
}

/* Drain encoded packets, one chunk each. */
static int drain(struct host_video_enc *e)
{
	int ret;

	while ((ret = avcodec_receive_packet(e->cc, e->pkt)) == 0) {
		bool key = e->pkt->flags & AV_PKT_FLAG_KEY;

		e->pkt->duration = 1; /* one frame, in 1/fps: MP4 needs each sample's duration */
		if (e->fmt == FMT_ANNEXB)
			e->emit(e->arg, e->pkt->data, (size_t)e->pkt->size, key);
		else
			ret = mux(e, key);
		av_packet_unref(e->pkt);
		if (ret < 0)
			return ret;
	}
	return ret == AVERROR(EAGAIN) || ret == AVERROR_EOF ? 0 : -EIO;
}

/* Encode the picture in e->frame. */
static int encode(struct host_video_enc *e)
{
	e->frame->pts = e->pts++;
	if (avcodec_send_frame(e->cc, e->frame) < 0)
		return -EIO;
	return drain(e);
}

int host_video_enc_test_frame(struct host_video_enc *e, int64_t n, int64_t time_ms)
{
	AVFrame *f = e->frame;

	if (av_frame_make_writable(f) < 0)
		return -ENOMEM;
	host_video_draw_test_pattern(f->data[0], f->linesize[0], f->width, f->height, n, time_ms);
	for (int r = 0; r < f->height / 2; r++) {
		memset(f->data[1] + (size_t)r * (size_t)f->linesize[1], 128, (size_t)f->width / 2);
		memset(f->data[2] + (size_t)r * (size_t)f->linesize[2], 128, (size_t)f->width / 2);
	}
	return encode(e);
}

void host_video_enc_free(struct host_video_enc *e)
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
	buf_release(&e->out);
	free(e->init);
	avcodec_free_context(&e->cc);
	av_frame_free(&e->frame);
	av_packet_free(&e->pkt);
	av_free(e);
}

/* ---- picture sources ---- */

#define CAMERA_POLL_MS 5 /* how often a camera opened non-blocking is asked for a frame */

struct host_video_src {
	bool test;
	const atomic_bool *stop;
	char spec[64]; /* for messages (shortened) */
	AVFormatContext *ic;
	AVCodecContext *dc;
	struct SwsContext *sws;
	AVPacket *pkt;
	AVFrame *pic;
	int stream;
};

static pthread_once_t devices_once = PTHREAD_ONCE_INIT;

#define STR_(x) #x
#define STR(x)  STR_(x)

/*
 * libavdevice is loaded when a capture source is first opened, not linked: it pulls in SDL,
 * PulseAudio, X11, JACK and more, which added about 38 MiB to the resident size of every relay
 * process (relay serve included) at start. Its input formats register into libavformat.
 */
static void register_devices(void)
{
	void *lib =
	        dlopen("libavdevice.so." STR(LIBAVDEVICE_VERSION_MAJOR), RTLD_NOW | RTLD_GLOBAL);
	void (*register_all)(void) =
	        lib ? (void (*)(void))dlsym(lib, "avdevice_register_all") : NULL;

	if (register_all)
		register_all(); /* the library stays loaded for the process's life */
}

static int interrupted(void *opaque)
{
	const atomic_bool *stop = opaque;

	return atomic_load(stop);
}

/* A libav error as a negative errno (its own codes, like AVERROR_EOF, become -EIO). */
static int av_errno(int err)
{
	return err < 0 && err > -4096 ? err : -EIO;
}

static int open_input(struct host_video_src *s, const char *fmt, const char *url,
                      const struct host_video_opts *o, const char *what, char why[160])
{
	const AVInputFormat *ifmt = av_find_input_format(fmt);
	AVDictionary *opts = NULL;
	char size[32], rate[16], err[AV_ERROR_MAX_STRING_SIZE];
	int ret;

	if (!ifmt || !(s->ic = avformat_alloc_context())) {
		snprintf(why, 160, "no %s input (libavdevice.so.%d not installed?)", fmt,
		         LIBAVDEVICE_VERSION_MAJOR);
		return -ENOSYS;
	}
	s->ic->interrupt_callback = (AVIOInterruptCB){interrupted, (void *)s->stop};
	if (strcmp(fmt, "v4l2") == 0) {
		snprintf(size, sizeof(size), "%dx%d", o->width, o->height);
		snprintf(rate, sizeof(rate), "%d", o->fps);
		av_dict_set(&opts, "video_size", size, 0);
		av_dict_set(&opts, "framerate", rate, 0);
		/* DQBUF would block with no way to interrupt it: poll instead */
		s->ic->flags |= AVFMT_FLAG_NONBLOCK;
	}
	ret = avformat_open_input(&s->ic, url, ifmt, &opts); /* frees s->ic on failure */
	av_dict_free(&opts);
	if (ret < 0) {
		av_strerror(ret, err, sizeof(err));
		snprintf(why, 160, "cannot open %s '%s': %s", what, url, err);
		return av_errno(ret);
	}
	return 0;
}

static int open_decoder(struct host_video_src *s, char why[160])
{
	const AVCodec *dec;
	AVCodecParameters *par;

	s->stream = av_find_best_stream(s->ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
	if (s->stream < 0) {
		snprintf(why, 160, "video source '%s' has no video stream", s->spec);
		return -EINVAL;
	}
	par = s->ic->streams[s->stream]->codecpar;
	dec = avcodec_find_decoder(par->codec_id);
	if (!dec || !(s->dc = avcodec_alloc_context3(dec)) ||
	    avcodec_parameters_to_context(s->dc, par) < 0 || avcodec_open2(s->dc, dec, NULL) < 0) {
		snprintf(why, 160, "cannot decode video source '%s' (%s)", s->spec,
		         avcodec_get_name(par->codec_id));
		return -ENOSYS;
	}
	if (!(s->pkt = av_packet_alloc()) || !(s->pic = av_frame_alloc())) {
		snprintf(why, 160, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

int host_video_src_open(const char *spec, const struct host_video_opts *o, const atomic_bool *stop,
                        struct host_video_src **out, char why[160])
{
	struct host_video_src *s = av_mallocz(sizeof(*s));
	int ret;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->stop = stop;
	snprintf(s->spec, sizeof(s->spec), "%s", spec);
	pthread_once(&devices_once, register_devices);
	if (strcmp(spec, "test") == 0) {
		s->test = true;
		*out = s;
		return 0;
	}
	if (strncmp(spec, "/dev/", 5) == 0)
		ret = open_input(s, "v4l2", spec, o, "camera", why);
	else if (strncmp(spec, "v4l2:", 5) == 0)
		ret = open_input(s, "v4l2", spec + 5, o, "camera", why);
	else if (strncmp(spec, "lavfi:", 6) == 0 && spec[6])
		ret = open_input(s, "lavfi", spec + 6, o, "lavfi graph", why);
	else {
		snprintf(why, 160,
		         "unknown video source '%s' (test, /dev/videoN, v4l2:/dev/videoN or "
		         "lavfi:GRAPH)",
		         spec);
		ret = -EINVAL;
	}
	if (!ret)
		ret = open_decoder(s, why);
	if (ret) {
		host_video_src_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

bool host_video_src_is_paced(const struct host_video_src *s)
{
	/* lavfi makes a picture whenever asked; only a camera has a clock of its own */
	return s->test || strcmp(s->ic->iformat->name, "lavfi") == 0;
}

/* The next packet of the video stream into s->pkt: 0, -EINTR, or -errno with @why. */
static int read_packet(struct host_video_src *s, char why[160])
{
	const struct timespec poll_wait = {0, CAMERA_POLL_MS * 1000000L};
	char err[AV_ERROR_MAX_STRING_SIZE];
	int ret;

	for (;;) {
		if (atomic_load(s->stop))
			return -EINTR;
		ret = av_read_frame(s->ic, s->pkt);
		if (ret == AVERROR(EAGAIN)) {
			nanosleep(&poll_wait, NULL); /* a non-blocking camera with no frame yet */
			continue;
		}
		if (ret == AVERROR_EXIT)
			return -EINTR;
		if (ret == AVERROR_EOF) {
			snprintf(why, 160, "video source '%s' ended", s->spec);
			return -ENODATA;
		}
		if (ret < 0) {
			av_strerror(ret, err, sizeof(err));
			snprintf(why, 160, "video source '%s' failed: %s", s->spec, err);
			return av_errno(ret);
		}
		if (s->pkt->stream_index == s->stream)
			return 0;
		av_packet_unref(s->pkt);
	}
}

/* Scale the decoded picture into the encoder's frame and encode it. */
static int encode_picture(struct host_video_src *s, struct host_video_enc *e, char why[160])
{
	AVFrame *f = e->frame, *p = s->pic;

	s->sws = sws_getCachedContext(s->sws, p->width, p->height, p->format, f->width, f->height,
	                              AV_PIX_FMT_YUV420P, SWS_BILINEAR, NULL, NULL, NULL);
	if (!s->sws) {
		snprintf(why, 160, "cannot scale %dx%d %s pictures", p->width, p->height,
		         av_get_pix_fmt_name(p->format));
		return -ENOSYS;
	}
	if (av_frame_make_writable(f) < 0)
		return -ENOMEM;
	sws_scale(s->sws, (const uint8_t *const *)p->data, p->linesize, 0, p->height, f->data,
	          f->linesize);
	av_frame_unref(p);
	if (encode(e)) {
		snprintf(why, 160, "cannot encode a picture from '%s'", s->spec);
		return -EIO;
	}
	return 0;
}

int host_video_src_encode_next(struct host_video_src *s, struct host_video_enc *e, int64_t n,
                               int64_t time_ms, char why[160])
{
	int ret;

	if (s->test)
		return host_video_enc_test_frame(e, n, time_ms);
	/* a decoder may hold a picture back; take that first */
	ret = avcodec_receive_frame(s->dc, s->pic);
	if (ret == 0)
		return encode_picture(s, e, why);
	ret = read_packet(s, why);
	if (ret)
		return ret;
	ret = avcodec_send_packet(s->dc, s->pkt);
	av_packet_unref(s->pkt);
	if (ret == 0)
		ret = avcodec_receive_frame(s->dc, s->pic);
	if (ret == 0)
		return encode_picture(s, e, why);
	/* no picture from this packet, or a corrupt one: skip it */
	if (ret == AVERROR(EAGAIN) || ret == AVERROR_INVALIDDATA)
		return -EAGAIN;
	snprintf(why, 160, "cannot decode pictures from '%s'", s->spec);
	return av_errno(ret);
}

void host_video_src_free(struct host_video_src *s)
{
	if (!s)
		return;
	avformat_close_input(&s->ic);
	avcodec_free_context(&s->dc);
	sws_freeContext(s->sws);
	av_packet_free(&s->pkt);
	av_frame_free(&s->pic);
	av_free(s);
}
