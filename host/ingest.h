/*
 * host/ingest: `relay host`'s local server on the lab PC (default 127.0.0.1:8888), compatible
 * with practable's host so that existing experiment scripts keep working:
 *
 *   POST /ts/NAME   a body streamed into feed NAME (e.g. `ffmpeg -f mpegts http://...:8888/ts/video`),
 *                   chunked or with a length; each read goes on as one binary message
 *   GET  /ws/NAME   a websocket: its messages go into feed NAME; what the relay says on the
 *                   topics that feed goes to is sent back to it
 *   /api/...        the REST API, answered by the caller's hook (host.c: rules and streams)
 *
 * It runs on the caller's uv loop (the main thread's): its listener, connections, timer and
 * wake-up are handles of that loop. Requests that do not complete within 10 s get 408 and are
 * closed.
 */
#ifndef RELAY_HOST_INGEST_H
#define RELAY_HOST_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

struct host_ingest;

struct host_ingest_hooks {
	void *arg;
	/* A message for feed @name from a local client (main thread); returns how many streams
	 * took it. */
	size_t (*feed)(void *arg, const char *name, uint8_t opcode, const uint8_t *p, size_t n);
	/* A REST call: returns the HTTP status and sets *@out to a JSON body (a new reference, or
	 * NULL for none). @body is NUL-terminated. */
	int (*api)(void *arg, const char *method, const char *path, const char *body, json_t **out);
};

/* Listen on @listen ("127.0.0.1:8888", "[::1]:8888") on @loop (its thread only, from then on).
 * 0, or with a reason in @why: -EINVAL for a malformed address, -EADDRINUSE when it cannot be
 * bound, -EIO. */
int host_ingest_new(uv_loop_t *loop, const char *listen, const struct host_ingest_hooks *hooks,
                    struct host_ingest **out, char why[160]);

/* Check @listen's form without binding (relay host --check). 0 or -EINVAL with @why. */
int host_ingest_check_listen(const char *listen, char why[160]);

/* The port actually bound (for listen addresses with port 0). */
int host_ingest_port(const struct host_ingest *g);

/* What the relay said on a topic fed by @feed, for the local websockets of that feed. Any
 * thread; dropped (and counted) when the hand-over queue is full. */
void host_ingest_from_relay(struct host_ingest *g, const char *feed, uint8_t opcode,
                            const uint8_t *p, size_t n);

/* Close every connection and handle; the memory goes once the loop has run their close
 * callbacks. Only after every stream that calls host_ingest_from_relay() has stopped. NULL is
 * fine. */
void host_ingest_free(struct host_ingest *g);

/* true for a feed name: 1 to 63 of A-Z a-z 0-9 . _ - */
bool host_ingest_feed_name_ok(const char *p, size_t n);

#endif
