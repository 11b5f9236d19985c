/*
 * wsclient/bridge: one private channel's two ends joined on a libuv loop: a websocket
 * (pkg/wsclient/uv.h) and a local byte stream (a TCP connection, or stdin and stdout). Bytes
 * read locally go out as binary frames; binary frames received are written locally. Lossless and
 * bounded both ways: when the websocket's output queue passes BRIDGE_HIGH the local stream is not
 * read (uv_read_stop) until it drains below BRIDGE_LOW, and when the local output passes
 * BRIDGE_HIGH the websocket is not read (wsc_uv_pause), so TCP's window holds the sender back.
 *
 * Half-close: the end of the local input is sent as an empty binary frame, and an empty binary
 * frame received shuts the local output (shutdown(SHUT_WR) for a socket, close for stdout) once
 * what came before it is written. When both directions have ended, the channel is closed with
 * 1000. A close frame from the peer ends the channel with its code.
 *
 * Use: wsc_bridge_new(), start the websocket with &wsc_bridge_cbs and the bridge as arg, give it
 * to wsc_bridge_set_ws(), and the local stream to wsc_bridge_set_local() when it is ready (in
 * either order). Nothing is read before both are ready. The loop's thread only.
 */
#ifndef RELAY_WSCLIENT_BRIDGE_H
#define RELAY_WSCLIENT_BRIDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "pkg/wsclient/uv.h"

#define BRIDGE_HIGH    (1 << 20)   /* bytes queued one way before the other end is not read */
#define BRIDGE_LOW     (256 << 10) /* ...and read again below this */
#define BRIDGE_IN_MAX  (8 << 20)   /* the largest frame taken (the relay may join pieces) */
#define BRIDGE_OUT_MAX (4 << 20)   /* the websocket's output bound (more than HIGH + one read) */
#define BRIDGE_WHY     256

struct wsc_bridge;

/*
 * The channel ended, once, from the loop: @code is the close code (1000: both directions ended
 * cleanly or the peer closed with 1000; the peer's code; 1006 when the connection was lost;
 * 1011 for a local failure) and @why says what happened. The bridge frees itself afterwards.
 */
typedef void (*wsc_bridge_end_fn)(struct wsc_bridge *b, int code, const char *why, void *arg);

/* The callbacks to open the websocket with (arg: the bridge). */
extern const struct wsc_uv_cbs wsc_bridge_cbs;

/* A new bridge, or NULL (out of memory). */
struct wsc_bridge *wsc_bridge_new(uv_loop_t *loop, wsc_bridge_end_fn fn, void *arg);

/* The websocket started with wsc_bridge_cbs (open or still joining). */
void wsc_bridge_set_ws(struct wsc_bridge *b, struct wsc_uv *c);

/*
 * The local stream: @in to read and @out to write (the same handle for a socket), initialised
 * on the bridge's loop and on the heap; the bridge takes them (closes and free()s them).
 */
void wsc_bridge_set_local(struct wsc_bridge *b, uv_stream_t *in, uv_stream_t *out);

/*
 * End the channel from this side: a close frame with @code (1000, 1011...) after what is
 * queued, then the end callback with @code and @why (called before this returns).
 */
void wsc_bridge_close(struct wsc_bridge *b, int code, const char *why);

/* Bytes carried so far: from the local stream to the websocket, and back. */
void wsc_bridge_counts(const struct wsc_bridge *b, uint64_t *to_ws, uint64_t *from_ws);

/*
 * A stream for a local fd (stdin, stdout, an accepted socket): a TCP handle for a socket, a
 * pipe handle for a pipe, a TTY handle for a terminal; on the heap, for wsc_bridge_set_local().
 * NULL with @why for anything else (a regular file).
 */
uv_stream_t *wsc_bridge_stream_of_fd(uv_loop_t *loop, int fd, bool readable, char why[BRIDGE_WHY]);

#endif
