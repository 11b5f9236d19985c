/*
 * host/video_pattern: the test pattern and its burned-in stamp (host/video.h), with no libav:
 * compiled into the video plugin (relay-video.so), which draws the pattern it encodes, and into
 * relay itself, so that drawing or reading a stamp never loads the plugin.
 */
#define LOG_MODULE "video"
#include "host/video.h"

#include <stdbool.h>
#include <string.h>

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

void host_video_draw_test_pattern(uint8_t *y, int stride, int width, int height, int64_t n,
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

void host_video_read_stamp(const uint8_t *y, int stride, uint32_t *n, uint64_t *time_ms)
{
	*n = (uint32_t)read_bits(y, stride, 0, VIDEO_FRAME_BITS);
	*time_ms = read_bits(y, stride, 1, VIDEO_TIME_BITS);
}
