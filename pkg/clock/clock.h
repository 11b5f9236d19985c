/*
 * clock: the two clocks relay reads. Any thread. In test builds (RELAY_TEST_CLOCK) both can be
 * moved forward from outside, for expiry tests; see clock.c.
 */
#ifndef RELAY_CLOCK_H
#define RELAY_CLOCK_H

#include <stdint.h>

/* Monotonic nanoseconds, for intervals and deadlines. */
int64_t clock_mono_ns(void);

/* Wall-clock milliseconds since the epoch, for timestamps and token times. */
int64_t clock_real_ms(void);

#endif
