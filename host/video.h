/*
 * host/video: the lab agent's video encoder: a picture source (a synthetic test pattern, a V4L2
 * camera or a lavfi graph) encoded with libavcodec (mpeg1video for JSMpeg players, or H.264
 * through libx264 for WebCodecs/MSE players) and emitted in memory, one chunk per frame, as
 * MPEG-TS, raw H.264 Annex-B or fragmented MP4. Runs on the encoder thread; no lws here.
 *
 * The test pattern carries its frame number and the wall-clock time burned in as two rows of
 * 8x8-pixel blocks at the top (white = 1, black = 0, most significant bit first): row 0 is the
 * 32-bit frame number, row 1 the low 48 bits of the time in milliseconds. A player can read them
 * back from the decoded picture to count frames and measure glass-to-glass latency.
 */
#ifndef RELAY_HOST_VIDEO_H
#define RELAY_HOST_VIDEO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIDEO_BLOCK      8  /* pixels per burned-in bit, each way */
#define VIDEO_FRAME_BITS 32 /* row 0 */
#define VIDEO_TIME_BITS  48 /* row 1 */

struct host_video_opts {
	int width, height; /* even, at least 384 x 64 so the burned-in rows fit */
	int fps;
	int64_t bitrate;    /* bits/s */
	int gop;            /* frames between keyframes */
	const char *codec;  /* "mpeg1" (default when NULL/"") or "h264" (libx264, zerolatency) */
	const char *format; /* "ts" (default for mpeg1), "annexb" (default for h264) or "fmp4" */
};

/*
 * The chunks, one per encoded frame, in order; @key: the chunk starts with a keyframe.
 *   mpeg1 + "ts", h264 + "ts": whole 188-byte TS packets; PAT and PMT come again before each
 *       keyframe (libavformat's mpegts muxer does this by itself).
 *   h264 + "annexb": one access unit, NAL units behind start codes (00 00 00 01 or 00 00 01).
 *       Every keyframe is an IDR picture preceded by its SPS and PPS in the same chunk, so a
 *       viewer can start decoding at any key chunk. Profile: constrained baseline (x264's
 *       "baseline": no B-frames, no CABAC), 4:2:0, level chosen by x264 for the size and rate
 *       (640x480 at 25 fps: 3.0, WebCodecs codec string "avc1.42C01E").
 *   h264 + "fmp4": ISO BMFF fragments, one moof+mdat per frame (default-base-is-moof, a tfdt
 *       in every fragment). The rule for viewers joining mid-stream: every key chunk is the
 *       init segment (ftyp+moov, byte-identical each time) immediately followed by the
 *       keyframe's moof+mdat; a delta chunk is a lone moof+mdat. A key chunk alone is thus a
 *       playable file; SPS/PPS live in the moov's avcC, not in the samples.
 * Settings: x264 preset veryfast, tune zerolatency (no lookahead, no frame of delay), no
 * B-frames, no scene-cut keyframes (one every @gop frames exactly), ABR at @bitrate with a
 * one-second VBV.
 */
typedef void (*host_video_emit_fn)(void *arg, const uint8_t *p, size_t n, bool key);

struct host_video_enc;

/* New encoder; 0, or a negative errno with a one-line reason in @why: -EINVAL for a bad size,
 * rate, codec or format (mpeg1 is muxed only as "ts"), -ENOSYS when libavcodec lacks the
 * encoder. */
int host_video_enc_new(const struct host_video_opts *o, host_video_emit_fn emit, void *arg,
                       struct host_video_enc **out, char why[160]);

/* Draw test-pattern frame @n stamped with @time_ms, encode it and emit its chunk. 0 or -errno. */
int host_video_enc_test_frame(struct host_video_enc *e, int64_t n, int64_t time_ms);

void host_video_enc_free(struct host_video_enc *e);

/*
 * Picture sources. @spec: "test" (the pattern above, paced by the caller), "/dev/videoN" or
 * "v4l2:/dev/videoN" (a camera through libavdevice, paced by the camera), or "lavfi:GRAPH"
 * (libavdevice's lavfi input, e.g. "lavfi:testsrc2=size=640x480:rate=25"; a camera stand-in for
 * tests; generated on demand, so paced by the caller like the pattern). Captured pictures are
 * decoded (raw or MJPEG) and scaled to the encoder's size and pixel format; they carry no
 * burned-in stamp. A camera is opened non-blocking and polled every few milliseconds, so a read
 * gives up within that once *@stop is true; *@stop is also the demuxer's interrupt callback.
 */
struct host_video_src;

/* Open @spec for pictures of @o's size and rate (a camera is asked for them; what it gives is
 * scaled). 0, or a negative errno with a one-line reason in @why, e.g. "cannot open camera
 * '/dev/video9': No such file or directory". @stop is borrowed for the source's lifetime. */
int host_video_src_open(const char *spec, const struct host_video_opts *o, const atomic_bool *stop,
                        struct host_video_src **out, char why[160]);

/* true: the caller sleeps between frames (the test pattern); false: the device paces reads. */
bool host_video_src_is_paced(const struct host_video_src *s);

/* Take the next picture (the test pattern stamped with @n and @time_ms; a camera's next frame)
 * and encode it with @e. 0; -EAGAIN when there was nothing to encode this time (a packet that
 * made no picture, a corrupt one); -EINTR once *stop is true; another -errno with @why when the
 * source failed (unplugged, a lavfi graph that ended): free it and open it again later. */
int host_video_src_encode_next(struct host_video_src *s, struct host_video_enc *e, int64_t n,
                               int64_t time_ms, char why[160]);

void host_video_src_free(struct host_video_src *s);

/* The test pattern into a luma plane (exported for tests and other sources). */
void host_video_draw_test_pattern(uint8_t *y, int stride, int width, int height, int64_t n,
                                  int64_t time_ms);

/* Read the burned-in frame number and time back from a decoded luma plane. */
void host_video_read_stamp(const uint8_t *y, int stride, uint32_t *n, uint64_t *time_ms);

#endif
