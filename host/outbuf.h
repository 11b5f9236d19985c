/*
 * host/outbuf: a bounded output buffer for one non-blocking connection of a stream (the relay
 * link, a device), written when the socket has room (UV_WRITABLE) so that nothing on the stream's
 * loop waits for a peer. Websocket frames are masked into it whole (RFC 6455 section 5.3). One
 * thread (the stream's).
 */
#ifndef RELAY_HOST_OUTBUF_H
#define RELAY_HOST_OUTBUF_H

#include "pkg/buf/buf.h"
#include "pkg/wsclient/wsclient.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct host_outbuf {
	struct buf buf; /* unsent bytes: buf.p[off .. buf.len); buf.max is the bound: what
	                      * does not fit is refused, never grown past */
	size_t off;
	int64_t progress_ns; /* when bytes last left (or the first were queued): stalls */
};

/* Unsent bytes. */
static inline size_t host_outbuf_pending(const struct host_outbuf *b)
{
	return b->buf.len - b->off;
}

/* Append @n bytes; -ENOBUFS when they do not fit under b->max (nothing appended), -ENOMEM. */
int host_outbuf_put(struct host_outbuf *b, const void *p, size_t n, int64_t now_ns);

/* Append one masked client frame; -ENOBUFS unless @n + WSFRAME_MAX_HEADER bytes fit (nothing
 * appended), or -ENOMEM. */
int host_outbuf_put_frame(struct host_outbuf *b, uint8_t opcode, const void *p, size_t n,
                          int64_t now_ns);

/* Write what the socket takes now, through @c (TLS or plain) or to @fd when @c is NULL.
 * 0 (sent, or would block), or -errno when the connection failed. */
int host_outbuf_flush(struct host_outbuf *b, struct wsc *c, int fd, int64_t now_ns);

/* Forget what is queued (the connection is gone); keeps the bound. */
void host_outbuf_clear(struct host_outbuf *b);

/* Free the memory; keeps the bound. */
void host_outbuf_release(struct host_outbuf *b);

#endif
