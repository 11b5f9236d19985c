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
 * It runs on the main thread with its own epoll set, which the caller watches (ingest_fd()).
 */
#ifndef RELAY_HOST_INGEST_H
#define RELAY_HOST_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct ingest;

struct ingest_hooks {
	void *arg;
	/* A message for feed @name from a local client (main thread); returns how many streams
	 * took it. */
	size_t (*feed)(void *arg, const char *name, uint8_t opcode, const uint8_t *p, size_t n);
	/* A REST call: returns the HTTP status and sets *@out to a JSON body (a new reference, or
	 * NULL for none). @body is NUL-terminated. */
	int (*api)(void *arg, const char *method, const char *path, const char *body, json_t **out);
};

/* Listen on @listen ("127.0.0.1:8888", "[::1]:8888"). 0, or with a reason in @why: -EINVAL for
 * a malformed address, -EADDRINUSE when it cannot be bound, -EIO. */
int ingest_new(const char *listen, const struct ingest_hooks *hooks, struct ingest **out,
               char why[160]);

/* Check @listen's form without binding (relay host --check). 0 or -EINVAL with @why. */
int ingest_check_listen(const char *listen, char why[160]);

/* The epoll fd to watch for EPOLLIN; then call ingest_service(). */
int ingest_fd(const struct ingest *g);
void ingest_service(struct ingest *g);

/* Once a second: requests that do not complete within 10 s get 408 and are closed. */
void ingest_tick(struct ingest *g);

/* The port actually bound (for listen addresses with port 0). */
int ingest_port(const struct ingest *g);

/* What the relay said on a topic fed by @feed, for the local websockets of that feed. Any
 * thread; dropped (and counted) when the hand-over queue is full. */
void ingest_from_relay(struct ingest *g, const char *feed, uint8_t opcode, const uint8_t *p,
                       size_t n);

void ingest_free(struct ingest *g);

/* true for a feed name: 1 to 63 of A-Z a-z 0-9 . _ - */
bool ingest_feed_name_ok(const char *p, size_t n);

#endif
