/*
 * wsclient: the client side of relay's access protocol, on plain sockets with OpenSSL, for
 * `relay file`, its load generator and (next) `relay host`. Setup (connect, TLS, the access
 * POST, the websocket handshake) is blocking with a timeout; afterwards a connection can be
 * switched to non-blocking and driven by the caller's epoll loop. Frames are encoded and parsed
 * with pkg/wsframe: lws's client parser costs a function call per byte (NOTES.md), too slow for a
 * load generator.
 */
#ifndef RELAY_WSCLIENT_H
#define RELAY_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "pkg/buf/buf.h"
#include "pkg/wsframe/wsframe.h"

#define WSC_WHY 256

struct wsc {
	int fd;
	SSL *ssl;
	struct buf in; /* received bytes not yet consumed */
};

/*
 * A TLS client context. @verify checks the certificate chain and the host name (an IP literal
 * against the certificate's IP addresses); the chain must end at a certificate in @ca_file (PEM:
 * a private CA, or the relay's self-signed certificate itself) when set, else at one of the
 * system's CAs. NULL with @why on failure (an unreadable @ca_file or one without certificates).
 */
SSL_CTX *wsc_tls_new_ca(bool verify, const char *ca_file, char why[WSC_WHY]);
/* wsc_tls_new_ca() with the system's CAs. */
SSL_CTX *wsc_tls_new(bool verify);

/*
 * Connect to @url's host and port (TLS for https/wss, with SNI and host-name check when the
 * context verifies) within @timeout_ms. 0 or a negative errno with a reason in @why.
 */
int wsc_open(struct wsc *c, const char *url, SSL_CTX *tls, int timeout_ms, char why[WSC_WHY]);
void wsc_close(struct wsc *c);

/* Switch to non-blocking I/O (after the handshakes). */
int wsc_nonblock(struct wsc *c);

/* Send or receive; -EAGAIN when it would block, 0 from recv at end of stream, else -errno. */
ssize_t wsc_send(struct wsc *c, const void *p, size_t n);
ssize_t wsc_recv(struct wsc *c, void *p, size_t n);

/*
 * Receive into c->in (growing it up to @max bytes). Returns bytes added, 0 at end, -ENOBUFS when
 * c->in holds @max bytes already, -EAGAIN, -errno.
 */
ssize_t wsc_fill(struct wsc *c, size_t max);
/* Drop the first @n bytes of c->in. */
void wsc_consume(struct wsc *c, size_t n);
/* How many received bytes wait in c->in (frames that came with others, or with the handshake). */
size_t wsc_buffered(const struct wsc *c);

/*
 * POST an empty body to @access_url with "Authorization: @token" on a new connection. Returns
 * the HTTP status (the body in @body, NUL-terminated, cut to @body_len - 1), or a negative errno
 * with @why.
 */
int wsc_post(const char *access_url, const char *token, SSL_CTX *tls, int timeout_ms, char *body,
             size_t body_len, char why[WSC_WHY]);

/*
 * The access protocol's two steps: POST the token, then open the returned websocket uri.
 * On success returns 0 with @c open and non-blocking. Otherwise a negative errno, with the HTTP
 * status of a refusal in *status (0 when there was none) and a reason in @why.
 */
int wsc_join(struct wsc *c, const char *access_url, const char *token, SSL_CTX *tls, int timeout_ms,
             int *status, char why[WSC_WHY]);

/* Open a websocket to @uri (blocking handshake); *status is the HTTP status of a refusal. */
int wsc_ws_open(struct wsc *c, const char *uri, SSL_CTX *tls, int timeout_ms, int *status,
                char why[WSC_WHY]);

/*
 * Called for each complete frame; @payload holds f->payload_len bytes, borrowed until it returns.
 * Return false to stop reading: the frames handed over so far are consumed, the rest stays
 * buffered for the next call. The callback may close @c with wsc_close() before returning false
 * (wsc_read_frames() then sees the closed state and leaves @c alone); it must not free @c.
 */
typedef bool (*wsc_frame_fn)(void *arg, const struct ws_frame *f, const uint8_t *payload);

/*
 * Hand each complete frame already buffered (bytes that came with the handshake's answer) and
 * then each one that arrives (buffering at most @max bytes) to @fn, until the socket would block.
 * Returns 0 (would block), 1 (stopped by @fn), -ECONNRESET at the end of the stream, -EPROTO for a
 * malformed frame, or another negative errno.
 */
int wsc_read_frames(struct wsc *c, size_t max, wsc_frame_fn fn, void *arg);

/*
 * Send one masked frame (RFC 6455 section 5.3: a fresh random mask per frame), waiting up to
 * @timeout_ms for room when the socket is non-blocking. 0 or -errno (-ETIMEDOUT, -EPIPE...).
 */
int wsc_send_frame(struct wsc *c, uint8_t opcode, const void *data, size_t len, int timeout_ms);

/* url_topic_of() (pkg/url) under the name relay host calls. */
int wsc_topic_of(const char *access_url, char *out, size_t len);

#endif
