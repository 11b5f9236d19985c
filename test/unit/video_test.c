/*
 * video_test: host/video. The burned-in stamp reads back exactly from a raw picture; each codec
 * and format comes out as one chunk per frame with keyframes where the GOP says, in the shape
 * host/video.h promises (whole TS packets; Annex-B access units whose keyframes carry SPS, PPS
 * and IDR; fMP4 fragments whose key chunks start with the init segment); decoding the stream
 * back with libavformat/libavcodec gives every frame, in order, with its stamp readable, also
 * when a viewer starts at a later key chunk. Sources: lavfi pictures are scaled and encoded, a
 * missing camera is refused with its reason, and the stop flag ends a blocking read.
 */
#include "host/video.h"
#include "test/harness.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#define FRAMES     50
#define GOP        25
#define MAX_CHUNKS 64

struct capture {
	uint8_t *buf;
	size_t len, cap;
	int chunks, key_chunks;
	size_t off[MAX_CHUNKS], size[MAX_CHUNKS];
	bool key[MAX_CHUNKS];
	/* for the stop test: chunks counted under a lock, a waiter told of each */
	pthread_mutex_t lock;
	pthread_cond_t more;
};

static void collect(void *arg, const uint8_t *p, size_t n, bool key)
{
	struct capture *c = arg;

	if (c->len + n > c->cap) {
		c->cap = (c->len + n) * 2;
		c->buf = realloc(c->buf, c->cap);
	}
	memcpy(c->buf + c->len, p, n);
	pthread_mutex_lock(&c->lock);
	if (c->chunks < MAX_CHUNKS) {
		c->off[c->chunks] = c->len;
		c->size[c->chunks] = n;
		c->key[c->chunks] = key;
	}
	c->len += n;
	c->chunks++;
	c->key_chunks += key;
	pthread_cond_signal(&c->more);
	pthread_mutex_unlock(&c->lock);
}

static void capture_init(struct capture *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->more, NULL);
}

static void capture_release(struct capture *c)
{
	free(c->buf);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->more);
}

/* Encode FRAMES test-pattern frames: frame i carries number i and time 1000 + 40 i. */
static int encode_pattern(const char *codec, const char *format, struct capture *c)
{
	struct host_video_opts o = {640, 480, 25, 1500000, GOP, codec, format};
	struct host_video_enc *e;
	char why[160] = "";
	int ok = 1, ret;

	capture_init(c);
	ret = host_video_enc_new(&o, collect, c, &e, why);
	if (ret) {
		fprintf(stderr, "host_video_enc_new(%s, %s): %s\n", codec, format, why);
		return ret;
	}
	for (int i = 0; i < FRAMES; i++)
		ok &= host_video_enc_test_frame(e, i, 1000 + 40 * i) == 0;
	host_video_enc_free(e);
	return ok ? 0 : -EIO;
}

static void test_stamp_roundtrip(void)
{
	enum { W = 640, H = 96 };
	static uint8_t y[W * H];
	uint32_t n;
	uint64_t t;

	host_video_draw_test_pattern(y, W, W, H, 123456789, 0xABCDEF012345LL);
	host_video_read_stamp(y, W, &n, &t);
	CHECK_EQ(n, 123456789);
	CHECK_EQ(t, 0xABCDEF012345LL);
	host_video_draw_test_pattern(y, W, W, H, 0, 0);
	host_video_read_stamp(y, W, &n, &t);
	CHECK_EQ(n, 0);
	CHECK_EQ(t, 0);
}

static void test_bad_options(void)
{
	struct host_video_opts o = {641, 480, 25, 1000000, 25, NULL, NULL};
	struct host_video_enc *e = (struct host_video_enc *)1;
	char why[160] = "";

	CHECK_EQ(host_video_enc_new(&o, collect, NULL, &e, why), -EINVAL);
	CHECK(e == NULL);
	CHECK(strstr(why, "even") != NULL);
	o.width = 640;
	o.fps = 0;
	CHECK_EQ(host_video_enc_new(&o, collect, NULL, &e, why), -EINVAL);
	o.fps = 25;
	o.format = "fmp4"; /* mpeg1 by default */
	CHECK_EQ(host_video_enc_new(&o, collect, NULL, &e, why), -EINVAL);
	CHECK_STR(why, "video format 'fmp4' needs codec h264: mpeg1 is sent only as ts");
	o.codec = "mpeg1";
	o.format = "annexb";
	CHECK_EQ(host_video_enc_new(&o, collect, NULL, &e, why), -EINVAL);
	CHECK(strstr(why, "needs codec h264") != NULL);
	o.codec = "vp8";
	o.format = NULL;
	CHECK_EQ(host_video_enc_new(&o, collect, NULL, &e, why), -EINVAL);
	CHECK_STR(why, "unknown video codec 'vp8' (mpeg1 or h264)");
	o.codec = "h264";
	o.format = "webm";
	CHECK_EQ(host_video_enc_new(&o, collect, NULL, &e, why), -EINVAL);
	CHECK_STR(why, "unknown video format 'webm' (ts, annexb or fmp4)");
	CHECK(e == NULL);
}

/* ---- decoding back ---- */

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

struct decoded {
	int frames;
	bool in_order; /* frame i of the run carries number @first + i and its time */
	int width, height;
};

static void check_frame(struct decoded *d, const AVFrame *f, int first)
{
	uint32_t n;
	uint64_t t;

	host_video_read_stamp(f->data[0], f->linesize[0], &n, &t);
	if (n != (uint32_t)(first + d->frames) || t != 1000 + 40 * (uint64_t)(first + d->frames))
		d->in_order = false;
	d->width = f->width;
	d->height = f->height;
	d->frames++;
}

/* A decoder for @id, given the stream's extradata if @par has any (MP4: the avcC). */
static AVCodecContext *open_decoder(enum AVCodecID id, const AVCodecParameters *par)
{
	const AVCodec *dec = avcodec_find_decoder(id);
	AVCodecContext *dc = avcodec_alloc_context3(dec);

	if (par && par->extradata_size > 0) {
		dc->extradata =
		        av_mallocz((size_t)par->extradata_size + AV_INPUT_BUFFER_PADDING_SIZE);
		memcpy(dc->extradata, par->extradata, (size_t)par->extradata_size);
		dc->extradata_size = par->extradata_size;
	}
	dc->thread_count = 1; /* a picture out for each packet in, no frame threads' delay */
	CHECK(avcodec_open2(dc, dec, NULL) == 0);
	return dc;
}

/* Demux @len bytes with @demuxer (libavformat reading from memory) and decode them. */
static struct decoded demux_and_decode(const uint8_t *p, size_t len, const char *demuxer,
                                       enum AVCodecID id, int first)
{
	struct reader rd = {p, len, 0};
	struct decoded d = {0, true, 0, 0};
	AVFormatContext *ic = avformat_alloc_context();
	uint8_t *buf = av_malloc(65536);
	AVIOContext *io = avio_alloc_context(buf, 65536, 0, &rd, read_mem, NULL, NULL);
	AVCodecContext *dc = NULL;
	AVPacket *pkt = av_packet_alloc();
	AVFrame *f = av_frame_alloc();
	int ret;

	ic->pb = io;
	ret = avformat_open_input(&ic, NULL, av_find_input_format(demuxer), NULL);
	CHECK_EQ(ret, 0);
	if (ret == 0) /* (the TS demuxer calls any MPEG video stream MPEG-2 until it decodes) */
		CHECK_EQ(ic->nb_streams, 1);
	dc = open_decoder(id, ret == 0 ? ic->streams[0]->codecpar : NULL);
	while (ret == 0 && av_read_frame(ic, pkt) == 0) {
		avcodec_send_packet(dc, pkt);
		av_packet_unref(pkt);
		while (avcodec_receive_frame(dc, f) == 0)
			check_frame(&d, f, first);
	}
	avcodec_send_packet(dc, NULL);
	while (avcodec_receive_frame(dc, f) == 0)
		check_frame(&d, f, first);
	av_frame_free(&f);
	av_packet_free(&pkt);
	avcodec_free_context(&dc);
	avformat_close_input(&ic);
	av_freep(&io->buffer);
	avio_context_free(&io);
	return d;
}

/* Decode Annex-B chunks @from.. one packet each: each must give its picture at once. */
static struct decoded decode_annexb_chunks(const struct capture *c, int from, int first)
{
	struct decoded d = {0, true, 0, 0};
	AVCodecContext *dc = open_decoder(AV_CODEC_ID_H264, NULL);
	AVPacket *pkt = av_packet_alloc();
	AVFrame *f = av_frame_alloc();

	for (int i = from; i < c->chunks && i < MAX_CHUNKS; i++) {
		int before = d.frames;

		pkt->data = c->buf + c->off[i];
		pkt->size = (int)c->size[i];
		CHECK_EQ(avcodec_send_packet(dc, pkt), 0);
		while (avcodec_receive_frame(dc, f) == 0)
			check_frame(&d, f, first);
		if (d.frames != before + 1)
			d.in_order = false; /* not exactly one access unit in this chunk */
	}
	av_frame_free(&f);
	av_packet_free(&pkt);
	avcodec_free_context(&dc);
	return d;
}

/* The whole capture decodes to every frame in order, and so does what a viewer joining at
 * the second keyframe gets. */
static void check_decodes(const struct capture *c, const char *demuxer, enum AVCodecID id)
{
	struct decoded d = demux_and_decode(c->buf, c->len, demuxer, id, 0);

	CHECK_EQ(d.frames, FRAMES);
	CHECK(d.in_order);
	d = demux_and_decode(c->buf + c->off[GOP], c->len - c->off[GOP], demuxer, id, GOP);
	CHECK_EQ(d.frames, FRAMES - GOP);
	CHECK(d.in_order);
}

/* ---- mpeg1 and h264 in MPEG-TS ---- */

static bool whole_ts_packets(const struct capture *c)
{
	for (int i = 0; i < c->chunks; i++) {
		if (c->size[i] == 0 || c->size[i] % 188)
			return false;
		for (size_t j = 0; j < c->size[i]; j += 188)
			if (c->buf[c->off[i] + j] != 0x47)
				return false;
	}
	return true;
}

static void test_ts(const char *codec, enum AVCodecID id)
{
	struct capture c;

	CHECK_EQ(encode_pattern(codec, "ts", &c), 0);
	CHECK_EQ(c.chunks, FRAMES);
	CHECK_EQ(c.key_chunks, FRAMES / GOP);
	CHECK(c.key[0] && c.key[GOP]);
	CHECK(whole_ts_packets(&c));
	check_decodes(&c, "mpegts", id);
	capture_release(&c);
}

static void test_mpeg1_ts(void)
{
	test_ts("mpeg1", AV_CODEC_ID_MPEG1VIDEO);
	test_ts(NULL, AV_CODEC_ID_MPEG1VIDEO); /* the default */
}

static void test_h264_ts(void)
{
	test_ts("h264", AV_CODEC_ID_H264);
}

/* ---- h264 Annex-B ---- */

/* Bit (1 << type) for each NAL unit type in one chunk; -1 if it does not start with a start
 * code. */
static int nal_types(const uint8_t *p, size_t n)
{
	int types = 0;

	if (n < 4 || !(p[0] == 0 && p[1] == 0 && (p[2] == 1 || (p[2] == 0 && p[3] == 1))))
		return -1;
	for (size_t i = 0; i + 3 < n; i++)
		if (p[i] == 0 && p[i + 1] == 0 && p[i + 2] == 1) {
			types |= 1 << (p[i + 3] & 0x1f);
			i += 2;
		}
	return types;
}

static void test_h264_annexb(void)
{
	const int sps = 1 << 7, pps = 1 << 8, idr = 1 << 5, slice = 1 << 1;
	struct capture c;
	struct decoded d;
	int bad_starts = 0, bad_keys = 0, bad_deltas = 0;

	CHECK_EQ(encode_pattern("h264", NULL, &c), 0); /* annexb is h264's default */
	CHECK_EQ(c.chunks, FRAMES);
	CHECK_EQ(c.key_chunks, FRAMES / GOP);
	CHECK(c.key[0] && c.key[GOP]);
	for (int i = 0; i < c.chunks && i < MAX_CHUNKS; i++) {
		int t = nal_types(c.buf + c.off[i], c.size[i]);

		if (t < 0)
			bad_starts++;
		else if (c.key[i] && (t & (sps | pps | idr)) != (sps | pps | idr))
			bad_keys++;
		else if (!c.key[i] && ((t & (sps | pps | idr)) || !(t & slice)))
			bad_deltas++;
	}
	CHECK_EQ(bad_starts, 0);
	CHECK_EQ(bad_keys, 0);   /* every keyframe: SPS, PPS and IDR in-band */
	CHECK_EQ(bad_deltas, 0); /* the others: non-IDR slices only */
	/* constrained baseline (profile_idc 66, constraint_set0 and 1), level 3.0 at 640x480
	 * 25 fps: what the demo's WebCodecs codec string "avc1.42C01E" says */
	CHECK_MEM(c.buf + 5, "\x42\xC0\x1E", 3);
	d = decode_annexb_chunks(&c, 0, 0);
	CHECK_EQ(d.frames, FRAMES);
	CHECK(d.in_order);
	CHECK(d.width == 640 && d.height == 480);
	d = decode_annexb_chunks(&c, GOP, GOP); /* a viewer joining at the second keyframe */
	CHECK_EQ(d.frames, FRAMES - GOP);
	CHECK(d.in_order);
	capture_release(&c);
}

/* ---- h264 in fragmented MP4 ---- */

/* The type of the ISO BMFF box at @p, or "" if @n is too short for a header. */
static const char *box_type(const uint8_t *p, size_t n, size_t *box_len)
{
	static char type[5];

	if (n < 8)
		return "";
	*box_len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
	memcpy(type, p + 4, 4);
	return type;
}

/* The top-level boxes of a chunk, e.g. "ftyp moov moof mdat". */
static void box_list(const uint8_t *p, size_t n, char *out, size_t cap)
{
	size_t len = 0;

	out[0] = '\0';
	while (n >= 8) {
		const char *t = box_type(p, n, &len);

		if (len < 8 || len > n)
			break;
		snprintf(out + strlen(out), cap - strlen(out), "%s%s", out[0] ? " " : "", t);
		p += len;
		n -= len;
	}
}

static void test_h264_fmp4(void)
{
	struct capture c;
	struct decoded d;
	char boxes[64];
	size_t ftyp_len = 0, moov_len = 0, init_len;
	int bad_keys = 0, bad_deltas = 0;

	CHECK_EQ(encode_pattern("h264", "fmp4", &c), 0);
	CHECK_EQ(c.chunks, FRAMES);
	CHECK_EQ(c.key_chunks, FRAMES / GOP);
	CHECK(c.key[0] && c.key[GOP]);
	box_list(c.buf, c.size[0], boxes, sizeof(boxes));
	CHECK_STR(boxes, "ftyp moov moof mdat");
	CHECK_STR(box_type(c.buf, c.len, &ftyp_len), "ftyp");
	CHECK_STR(box_type(c.buf + ftyp_len, c.len - ftyp_len, &moov_len), "moov");
	init_len = ftyp_len + moov_len;
	for (int i = 1; i < c.chunks && i < MAX_CHUNKS; i++) {
		const uint8_t *p = c.buf + c.off[i];

		box_list(p, c.size[i], boxes, sizeof(boxes));
		if (c.key[i] &&
		    (strcmp(boxes, "ftyp moov moof mdat") != 0 || memcmp(p, c.buf, init_len) != 0))
			bad_keys++; /* the same init segment before every keyframe's fragment */
		else if (!c.key[i] && strcmp(boxes, "moof mdat") != 0)
			bad_deltas++;
	}
	CHECK_EQ(bad_keys, 0);
	CHECK_EQ(bad_deltas, 0);
	check_decodes(&c, "mp4", AV_CODEC_ID_H264);
	/* and the key chunk by itself is a playable file of one picture */
	d = demux_and_decode(c.buf + c.off[GOP], c.size[GOP], "mp4", AV_CODEC_ID_H264, GOP);
	CHECK_EQ(d.frames, 1);
	CHECK(d.in_order);
	capture_release(&c);
}

/* ---- sources ---- */

static void test_lavfi_source(void)
{
	struct host_video_opts o = {640, 480, 25, 1000000, 5, "h264", "annexb"};
	struct capture c;
	struct host_video_enc *e = NULL;
	struct host_video_src *s = NULL;
	atomic_bool stop = false;
	char why[160] = "";
	int ok = 0;
	struct decoded d;

	capture_init(&c);
	CHECK_EQ(host_video_enc_new(&o, collect, &c, &e, why), 0);
	/* a smaller picture than the encoder's: scaled up */
	CHECK_EQ(host_video_src_open("lavfi:testsrc2=size=320x240:rate=25", &o, &stop, &s, why), 0);
	if (!s || !e) {
		fprintf(stderr, "lavfi: %s\n", why);
		host_video_enc_free(e);
		capture_release(&c);
		return;
	}
	CHECK(host_video_src_is_paced(s));
	for (int i = 0; i < 10; i++)
		ok += host_video_src_encode_next(s, e, i, 0, why) == 0;
	CHECK_EQ(ok, 10);
	CHECK_EQ(c.chunks, 10);
	CHECK_EQ(c.key_chunks, 2);
	CHECK(c.key[0] && c.key[5]);
	d = decode_annexb_chunks(&c, 0, 0);
	CHECK_EQ(d.frames, 10);
	CHECK(d.width == 640 && d.height == 480);
	host_video_src_free(s);
	host_video_enc_free(e);
	capture_release(&c);
}

static void test_test_source(void)
{
	struct host_video_opts o = {640, 480, 25, 1000000, 25, NULL, NULL};
	struct capture c;
	struct host_video_enc *e = NULL;
	struct host_video_src *s = NULL;
	atomic_bool stop = false;
	char why[160] = "";
	struct decoded d;

	capture_init(&c);
	CHECK_EQ(host_video_enc_new(&o, collect, &c, &e, why), 0);
	CHECK_EQ(host_video_src_open("test", &o, &stop, &s, why), 0);
	CHECK(s && host_video_src_is_paced(s));
	for (int i = 0; s && e && i < 3; i++)
		CHECK_EQ(host_video_src_encode_next(s, e, i, 1000 + 40 * i, why), 0);
	d = demux_and_decode(c.buf, c.len, "mpegts", AV_CODEC_ID_MPEG1VIDEO, 0);
	CHECK_EQ(d.frames, 3);
	CHECK(d.in_order); /* the stamp drawn from @n and @time_ms */
	host_video_src_free(s);
	host_video_enc_free(e);
	capture_release(&c);
}

static void test_missing_camera(void)
{
	struct host_video_opts o = {640, 480, 25, 1000000, 25, NULL, NULL};
	struct host_video_src *s = (struct host_video_src *)1;
	atomic_bool stop = false;
	char why[160] = "";

	av_log_set_level(AV_LOG_QUIET); /* v4l2 logs the failure too */
	CHECK_EQ(host_video_src_open("/dev/video99", &o, &stop, &s, why), -ENOENT);
	CHECK(s == NULL);
	CHECK_STR(why, "cannot open camera '/dev/video99': No such file or directory");
	CHECK_EQ(host_video_src_open("v4l2:/dev/video98", &o, &stop, &s, why), -ENOENT);
	CHECK_STR(why, "cannot open camera '/dev/video98': No such file or directory");
	av_log_set_level(AV_LOG_ERROR);
	CHECK_EQ(host_video_src_open("rtsp://cam", &o, &stop, &s, why), -EINVAL);
	CHECK(strstr(why, "unknown video source 'rtsp://cam'") != NULL);
	CHECK(s == NULL);
}

struct reader_thread {
	struct host_video_src *s;
	struct host_video_enc *e;
	int last; /* host_video_src_encode_next's last result */
	int frames;
};

static void *encode_until_error(void *arg)
{
	struct reader_thread *t = arg;
	char why[160];

	do
		t->last = host_video_src_encode_next(t->s, t->e, t->frames, 0, why);
	while (t->last == 0 && ++t->frames < 1000);
	return NULL;
}

static void test_stop(void)
{
	struct host_video_opts o = {640, 480, 25, 1000000, 25, "h264", NULL};
	struct capture c;
	struct host_video_enc *e = NULL;
	struct host_video_src *s = NULL;
	atomic_bool stop = true;
	char why[160] = "";
	struct reader_thread t = {0};
	struct timespec deadline;
	pthread_t th;
	int ret;

	capture_init(&c);
	CHECK_EQ(host_video_enc_new(&o, collect, &c, &e, why), 0);
	/* "realtime" makes lavfi block in each read until the frame is due: a camera's pace */
	CHECK_EQ(host_video_src_open("lavfi:testsrc2=size=640x480:rate=25,realtime", &o, &stop, &s,
	                             why),
	         0);
	if (!s || !e) {
		host_video_enc_free(e);
		capture_release(&c);
		return;
	}
	/* already stopped: nothing is read or encoded */
	CHECK_EQ(host_video_src_encode_next(s, e, 0, 0, why), -EINTR);
	CHECK_EQ(c.chunks, 0);
	/* reading on another thread, stopped once three frames came out */
	atomic_store(&stop, false);
	t.s = s;
	t.e = e;
	CHECK_EQ(pthread_create(&th, NULL, encode_until_error, &t), 0);
	pthread_mutex_lock(&c.lock);
	while (c.chunks < 3)
		pthread_cond_wait(&c.more, &c.lock);
	pthread_mutex_unlock(&c.lock);
	atomic_store(&stop, true);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 2; /* a frame takes 40 ms; 1000 frames would take 40 s */
	ret = pthread_timedjoin_np(th, NULL, &deadline);
	CHECK_EQ(ret, 0);
	if (ret) {
		pthread_detach(th); /* still reading: leave it what it uses */
		return;
	}
	CHECK_EQ(t.last, -EINTR);
	CHECK(t.frames >= 3 && t.frames < 1000);
	host_video_src_free(s);
	host_video_enc_free(e);
	capture_release(&c);
}

int main(void)
{
	av_log_set_level(AV_LOG_ERROR);
	RUN(test_stamp_roundtrip());
	RUN(test_bad_options());
	RUN(test_mpeg1_ts());
	RUN(test_h264_ts());
	RUN(test_h264_annexb());
	RUN(test_h264_fmp4());
	RUN(test_test_source());
	RUN(test_lavfi_source());
	RUN(test_missing_camera());
	RUN(test_stop());
	return harness_done();
}
