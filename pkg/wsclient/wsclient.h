/*
 * wsclient: the client side of relay's access protocol for `relay file`, its load generator and
 * `relay host`. Connecting (resolve, connect, TLS, the access POST, the websocket handshake) is
 * the asynchronous client's (uv.h); an open websocket can be handed over from it
 * (wsc_uv_detach()) to a struct wsc here: a non-blocking socket (with its TLS session) that the
 * caller reads and writes itself, e.g. the load generator with its own framer. Frames are parsed
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

/* Close the socket (and end the TLS session); @c is empty (fd -1) afterwards. */
void wsc_close(struct wsc *c);

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

/* url_topic_of() (pkg/url) under the name relay host calls. */
int wsc_topic_of(const char *access_url, char *out, size_t len);

#endif
