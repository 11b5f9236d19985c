/* host/backoff: a link's retry schedule: exponential from backoff_min to backoff_max, each
 * wait spread by +-20 % so that many hosts cut off together do not retry together. Pure. */
#ifndef RELAY_HOST_BACKOFF_H
#define RELAY_HOST_BACKOFF_H

#include <stdint.h>

#define HOST_BACKOFF_JITTER_PERCENT 20

/* The wait before the next attempt: @backoff_ms spread by @r (a random byte) within +-20 %. */
int64_t host_backoff_wait_ms(int64_t backoff_ms, uint8_t r);

/* The backoff after one more failure: doubled, at most @max_ms. */
int64_t host_backoff_next(int64_t backoff_ms, int64_t max_ms);

#endif
