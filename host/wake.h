/* host/wake: the eventfd and timerfd idioms of the host's loops. Any thread. */
#ifndef RELAY_HOST_WAKE_H
#define RELAY_HOST_WAKE_H

#include <stdint.h>
#include <unistd.h>

/* Bump eventfd @fd. A failure means the counter saturated, which happens only when nobody reads
 * it any more: nothing to do. */
static inline void host_wake(int fd)
{
	uint64_t one = 1;

	(void)!write(fd, &one, sizeof(one));
}

/* Reset eventfd or timerfd @fd (non-blocking). Nothing to read is fine: the caller looks at its
 * own state next. */
static inline void host_drain_fd(int fd)
{
	uint64_t n;

	(void)!read(fd, &n, sizeof(n));
}

#endif
