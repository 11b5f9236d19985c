/*
 * host/stream: one stream of `relay host`, on its own thread with its own libuv loop: the relay
 * link, and what it carries (a video source on an encoder thread, a local device, and/or a
 * local ingest feed pushed in by the main thread). Streams are independent: one that cannot
 * connect, or whose camera is unplugged, never holds up another.
 */
#ifndef RELAY_HOST_STREAM_H
#define RELAY_HOST_STREAM_H

#include "host/host.h"

#include <uv.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct host_stream;

/* Room for the one-line reasons given by host_stream_start() and host_stream_check(). */
#define HOST_STREAM_WHY 256

/* A message from the relay for the stream's ingest feed; called on the stream's thread. */
typedef void (*host_stream_relay_fn)(void *arg, const char *feed, uint8_t opcode, const uint8_t *p,
                                     size_t n);

/* Counters and states of a stream, for the local API (a snapshot). */
struct host_stream_stats {
	char name[64], feed[64], topic[128];
	const char *relay, *device, *video; /* "up", "down", "refused", "none" */
	char last_error[256];
	uint64_t msgs_out, bytes_out; /* to the relay */
	uint64_t msgs_in, bytes_in;   /* from the relay */
	uint64_t frames_sent, frames_dropped, feed_dropped;
	uint64_t renewals;
	uint64_t failed_attempts; /* links lost or not made (logged once per state change) */
};

/*
 * Check @o and start the stream's thread. The settings are copied. 0, or a negative errno with
 * a one-line reason in @why (bad settings: nothing was started). @fn (may be NULL) receives
 * what the relay says when the stream forwards a feed. @done (the caller's loop) is sent when the
 * stream gives up for good (a refused token) and when its thread ends; it must stay open until
 * host_stream_stop(). The stream's threads block SIGINT, SIGTERM and SIGHUP: the caller's loop
 * takes them.
 */
int host_stream_start(const struct host_opts *o, host_stream_relay_fn fn, void *arg,
                      uv_async_t *done, struct host_stream **out, char why[HOST_STREAM_WHY]);

/* Check @o as host_stream_start() would, without starting anything. 0 or -EINVAL with @why. */
int host_stream_check(const struct host_opts *o, char why[HOST_STREAM_WHY]);

/* Ask the stream to stop without waiting: its thread closes the relay link (1000), ends and
 * sends @done. A thread inside a device's connection step ends when that step does
 * (--timeout). */
void host_stream_request_stop(struct host_stream *s);

/* true once the stream's thread has ended (host_stream_stop() then returns at once). */
bool host_stream_finished(const struct host_stream *s);

/* Stop (waiting for the thread) and free. NULL is fine. */
void host_stream_stop(struct host_stream *s);

/* Queue a message from the local feed for the relay (any thread). Counted as dropped when the
 * queue is full. */
void host_stream_push(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n);

const char *host_stream_name(const struct host_stream *s);
const char *host_stream_feed(const struct host_stream *s);

/* true once the stream has given up (its token was refused). */
bool host_stream_failed(const struct host_stream *s);

void host_stream_stats(struct host_stream *s, struct host_stream_stats *out);

#endif
