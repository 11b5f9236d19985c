/*
 * host/video: the lab agent's video encoder: a synthetic test pattern (or, later, a camera)
 * encoded with libavcodec's mpeg1video and muxed into MPEG-TS in memory, one chunk per frame,
 * which is what browser JSMpeg players decode. Runs on the encoder thread; no lws here.
 *
 * The test pattern carries its frame number and the wall-clock time burned in as two rows of
 * 8x8-pixel blocks at the top (white = 1, black = 0, most significant bit first): row 0 is the
 * 32-bit frame number, row 1 the low 48 bits of the time in milliseconds. A player can read them
 * back from the decoded picture to count frames and measure glass-to-glass latency.
 */
#ifndef RELAY_HOST_VIDEO_H
#define RELAY_HOST_VIDEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VIDEO_BLOCK      8  /* pixels per burned-in bit, each way */
#define VIDEO_FRAME_BITS 32 /* row 0 */
#define VIDEO_TIME_BITS  48 /* row 1 */

struct video_opts {
	int width, height; /* even, at least 384 x 64 so the burned-in rows fit */
	int fps;
	int64_t bitrate; /* bits/s */
	int gop;         /* frames between keyframes */
};

/* Called with each frame's MPEG-TS bytes (whole 188-byte packets); @key: starts with a keyframe. */
typedef void (*video_emit_fn)(void *arg, const uint8_t *p, size_t n, bool key);

struct video_enc;

/* New encoder; 0, or a negative errno with a one-line reason in @why. */
int video_enc_new(const struct video_opts *o, video_emit_fn emit, void *arg, struct video_enc **out,
                  char why[160]);

/* Draw test-pattern frame @n stamped with @time_ms, encode it and emit its TS bytes. 0 or -errno.
 */
int video_enc_test_frame(struct video_enc *e, int64_t n, int64_t time_ms);

void video_enc_free(struct video_enc *e);

/* The test pattern into a luma plane (exported for tests and other sources). */
void video_draw_test_pattern(uint8_t *y, int stride, int width, int height, int64_t n,
                             int64_t time_ms);

/* Read the burned-in frame number and time back from a decoded luma plane. */
void video_read_stamp(const uint8_t *y, int stride, uint32_t *n, uint64_t *time_ms);

#endif
