/*
 * wsclient on libuv: relay's access protocol as one asynchronous connection on the caller's
 * uv loop. Resolve (every address is tried in turn), connect, TLS over memory BIOs, the access
 * POST, the websocket upgrade, then frames in and out, each step within a deadline and nothing
 * blocking. Output goes through libuv's write queue, bounded: a send that would pass the bound
 * is refused, never buffered without limit. Frames use pkg/wsframe (written and parsed here, not
 * by lws: NOTES.md).
 *
 * States (struct wsc_uv.state):
 *   RESOLVE -> CONNECT -> (TLS) -> HEAD -> BODY   for the access POST (phase 0)  (on_resolved ...)
 *   RESOLVE -> CONNECT -> (TLS) -> HEAD -> OPEN   for the websocket (phase 1)    (on_head)
 *   wsc_uv_open() starts at phase 1; wsc_uv_detach() hands an OPEN one over to a struct wsc
 *   any -> DONE: on an error, the peer's end, the deadline or wsc_uv_close()      (finish)
 */
#ifndef RELAY_WSCLIENT_UV_H
#define RELAY_WSCLIENT_UV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "pkg/wsclient/wsclient.h"
#include "pkg/wsframe/wsframe.h"

struct wsc_uv;

struct wsc_uv_cbs {
	/* The websocket is open; frames may be sent. */
	void (*on_open)(struct wsc_uv *c, void *arg);
	/*
	 * A complete frame; @payload is borrowed until it returns. Return false after
	 * wsc_uv_close() to stop reading.
	 */
	bool (*on_frame)(struct wsc_uv *c, const struct ws_frame *f, const uint8_t *payload,
	                 void *arg);
	/*
	 * The connection ended (not after wsc_uv_close()): @err is a negative errno (-EACCES for
	 * a refusal, with the HTTP @status; -ETIMEDOUT, -ECONNRESET, -EPROTO...) and @why says
	 * what happened. @c is freed by the library afterwards: forget it.
	 */
	void (*on_close)(struct wsc_uv *c, int err, int status, const char *why, void *arg);
};

/*
 * Start joining @access_url with @token (copied and wiped later) on @loop: POST, then open the
 * returned websocket uri. Each connection step must finish within @timeout_ms. Received frames
 * may be up to @in_max bytes; at most @out_max bytes wait to be written. A new connection, or
 * NULL with @why (a malformed URL or token, out of memory); on success exactly one of on_open
 * or on_close follows, later, from the loop. Loop thread only.
 */
struct wsc_uv *wsc_uv_join(uv_loop_t *loop, const char *access_url, const char *token, SSL_CTX *tls,
                           int timeout_ms, size_t in_max, size_t out_max,
                           const struct wsc_uv_cbs *cbs, void *arg, char why[WSC_WHY]);

/*
 * Open the websocket at @ws_url (ws:// or wss://) straight away, without the access POST: a
 * plain websocket server such as relay host's websocket device. As wsc_uv_join() otherwise.
 */
struct wsc_uv *wsc_uv_open(uv_loop_t *loop, const char *ws_url, SSL_CTX *tls, int timeout_ms,
                           size_t in_max, size_t out_max, const struct wsc_uv_cbs *cbs, void *arg,
                           char why[WSC_WHY]);

/*
 * From on_open: hand the open websocket over to @out (its own copy of the fd, non-blocking; the
 * TLS session now on that fd; the bytes received after the handshake in out->in) for the
 * calls in wsclient.h (the caller reads and writes the socket itself), and end @c as wsc_uv_close() would, without writing.
 * 0, or a negative errno with @out empty (fd -1) and @c unchanged.
 */
int wsc_uv_detach(struct wsc_uv *c, struct wsc *out);

/*
 * Queue one masked frame (a fresh random mask per frame, RFC 6455 section 5.3). 0, -ENOTCONN
 * before on_open or after the end, -ENOBUFS when it would pass out_max (the peer is not
 * reading), -ENOMEM, or another -errno from libuv.
 */
int wsc_uv_send(struct wsc_uv *c, uint8_t opcode, const void *p, size_t n);

/*
 * Stop (@pause) or resume reading the socket, for back-pressure: while paused no frame is handed
 * to on_frame (frames already received wait), and TCP's window makes the peer wait. Resuming
 * hands the waiting frames to on_frame before it returns. 0, or -ENOTCONN when not open.
 */
int wsc_uv_pause(struct wsc_uv *c, bool pause);

/*
 * Call @fn (with the callbacks' arg) each time a write completes while open: wsc_uv_queued() is
 * smaller, for a sender that waits for room. @fn may send, pause or close.
 */
void wsc_uv_on_drained(struct wsc_uv *c, void (*fn)(struct wsc_uv *c, void *arg));

/* Bytes queued and not yet written. */
size_t wsc_uv_queued(const struct wsc_uv *c);

/*
 * Stop: no callback is called after this. What is queued is still written (within the
 * deadline), then the socket is closed and @c freed. Loop thread only.
 */
void wsc_uv_close(struct wsc_uv *c);

#endif
