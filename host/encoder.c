/*
 * host/encoder: a stream's video thread. It opens the source (reopening it with backoff when it
 * fails: an unplugged camera), paces, encodes and muxes frames (host/video) and queues each
 * frame's bytes for the stream's thread. Everything here runs on the encoder thread.
 */
#define LOG_MODULE "encoder"
#include "host/internal.h"
#include "pkg/clock/clock.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define STOP_CHECK_NS (100 * NS_PER_MS) /* a stop is noticed within this while pacing */

/* Called on the encoder thread with one frame's bytes. */
void host__on_chunk(void *arg, const uint8_t *p, size_t n, bool key)
{
	host__queue_put(arg, WS_BINARY, p, n, true, key);
}

/* Sleep until @t_ns (monotonic) in slices, so that a stop is noticed within 100 ms. */
static void sleep_until(struct host_stream *s, int64_t t_ns)
{
	while (!atomic_load(&s->stop)) {
		int64_t now = clock_mono_ns(), step = t_ns - now;
		struct timespec ts;

		if (step <= 0)
			return;
		if (step > STOP_CHECK_NS)
			step = STOP_CHECK_NS;
		now += step;
		ts.tv_sec = now / NS_PER_S;
		ts.tv_nsec = now % NS_PER_S;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

static int64_t wall_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The source: opened, and reopened with backoff when it fails (an unplugged camera). */
void *host__encoder_main(void *arg)
{
	struct host_stream *s = arg;
	int64_t period_ns = NS_PER_S / s->o.fps, next = clock_mono_ns();
	char why[HOST_STREAM_WHY];

	for (int64_t n = 0; !atomic_load(&s->stop);) {
		if (!s->src) {
			sleep_until(s, s->video.retry_ns == NEVER ? 0 : s->video.retry_ns);
			if (atomic_load(&s->stop))
				break;
			if (host_video_src_open(s->o.video, &s->vo, &s->stop, &s->src, why)) {
				atomic_store(&s->video_state, "down");
				host__link_down(s, &s->video, why);
				continue;
			}
			atomic_store(&s->video_state, "up");
			host__link_up(s, &s->video);
			next = clock_mono_ns();
		}
		if (host_video_src_is_paced(s->src)) {
			sleep_until(s, next);
			next += period_ns;
		}
		int64_t t = clock_mono_ns();
		int ret = host_video_src_encode_next(s->src, s->enc, n, wall_ms(), why);

		if (ret == -EAGAIN)
			continue;
		if (ret) {
			host_video_src_free(s->src);
			s->src = NULL;
			if (!atomic_load(&s->stop)) {
				atomic_store(&s->video_state, "down");
				host__link_down(s, &s->video, why);
			}
			continue;
		}
		s->encode_us[s->n_encoded++ % ENCODE_TIMES] = (clock_mono_ns() - t) / 1000;
		n++;
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Encode time per frame (capture/draw + encode + mux), median and p99 over the last frames. */
void host__report_encoding(struct host_stream *s)
{
	size_t n = s->n_encoded < ENCODE_TIMES ? s->n_encoded : ENCODE_TIMES;

	if (!n)
		return;
	qsort(s->encode_us, n, sizeof(s->encode_us[0]), cmp_i64);
	logt_notice(s->name, "video: %zu frames encoded, encode time median %lld us, p99 %lld us",
	            s->n_encoded, (long long)s->encode_us[n / 2],
	            (long long)s->encode_us[(n * 99) / 100]);
}
