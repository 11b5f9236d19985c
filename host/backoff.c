/* host/backoff: see backoff.h. */
#define LOG_MODULE "stream" /* nothing here logs */
#include "host/backoff.h"

int64_t host_backoff_wait_ms(int64_t backoff_ms, uint8_t r)
{
	int64_t pct = r % (2 * HOST_BACKOFF_JITTER_PERCENT + 1) - HOST_BACKOFF_JITTER_PERCENT;

	return backoff_ms + backoff_ms * pct / 100;
}

int64_t host_backoff_next(int64_t backoff_ms, int64_t max_ms)
{
	return backoff_ms > max_ms / 2 ? max_ms : backoff_ms * 2;
}
