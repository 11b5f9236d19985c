/*
 * pkg/dial: connect a socket to HOST:PORT on a libuv loop without blocking it. A name is
 * looked up on libuv's thread pool (uv_getaddrinfo), an IP literal taken as it is; each address it gives is tried in
 * getaddrinfo's order with a non-blocking connect() watched by a poll handle (so a name whose
 * first address refuses, e.g. localhost as ::1 before 127.0.0.1, still reaches the second), all
 * within one deadline. The caller gets a plain fd, to use as it likes (read()/write(), a poll
 * handle, uv_tcp_open()). The loop's thread only.
 */
#ifndef RELAY_PKG_DIAL_DIAL_H
#define RELAY_PKG_DIAL_DIAL_H

#include <uv.h>

#define DIAL_WHY 256

struct dial;

/* Called once, on the loop, unless the dial was cancelled first: @fd >= 0 is a connected socket
 * (non-blocking, close-on-exec) that the callee now owns, and @err is 0; otherwise @fd is -1,
 * @err a negative errno (-EHOSTUNREACH: the name did not resolve; -ETIMEDOUT: the deadline;
 * else the last address's failure, e.g. -ECONNREFUSED) and @why says what failed. The dial is
 * freed after the callback returns. */
typedef void (*dial_cb)(int fd, int err, const char *why, void *arg);

/* Start connecting to @host:@port with @socktype (SOCK_STREAM or SOCK_DGRAM) within @timeout_ms.
 * Returns the dial, or NULL with @why when it cannot start (then @cb is never called). */
struct dial *dial_start(uv_loop_t *loop, const char *host, int port, int socktype, int timeout_ms,
                        dial_cb cb, void *arg, char why[DIAL_WHY]);

/* Give up @d before its callback: the callback is not called, the socket being connected is
 * closed, and @d is freed on the loop. Not to be called from or after the callback. */
void dial_cancel(struct dial *d);

#endif
