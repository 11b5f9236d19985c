/* host/outbuf: see outbuf.h. */
#define LOG_MODULE "stream" /* nothing here logs */
#include "host/outbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

/* Room for @n more bytes: 0, -ENOBUFS past the bound, -ENOMEM. */
static int reserve(struct host_outbuf *b, size_t n)
{
	if (b->off && n > buf_room(&b->buf)) {
		/* move the unsent bytes to the front once, rather than after every write */
		buf_consume(&b->buf, b->off);
		b->off = 0;
	}
	return buf_reserve(&b->buf, n);
}

static void queued(struct host_outbuf *b, size_t n, int64_t now_ns)
{
	if (host_outbuf_pending(b) == 0)
		b->progress_ns = now_ns; /* a stall is counted from the first byte waiting */
	b->buf.len += n;
}

int host_outbuf_put(struct host_outbuf *b, const void *p, size_t n, int64_t now_ns)
{
	int ret = reserve(b, n);

	if (ret)
		return ret;
	if (n)
		memcpy(b->buf.p + b->buf.len, p, n);
	queued(b, n, now_ns);
	return 0;
}

int host_outbuf_put_frame(struct host_outbuf *b, uint8_t opcode, const void *p, size_t n,
                          int64_t now_ns)
{
	uint8_t mask[4], *at;
	size_t h;
	int ret = reserve(b, WSFRAME_MAX_HEADER + n);

	if (ret)
		return ret;
	RAND_bytes(mask, sizeof(mask));
	at = b->buf.p + b->buf.len;
	h = wsframe_header(at, opcode, true, n, mask);
	if (n)
		memcpy(at + h, p, n);
	wsframe_mask(at + h, n, mask, 0);
	queued(b, h + n, now_ns);
	return 0;
}

int host_outbuf_flush(struct host_outbuf *b, struct wsc *c, int fd, int64_t now_ns)
{
	while (b->off < b->buf.len) {
		ssize_t w;

		if (c) {
			w = wsc_send(c, b->buf.p + b->off, b->buf.len - b->off);
		} else {
			w = write(fd, b->buf.p + b->off, b->buf.len - b->off);
			w = w < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : w;
		}
		if (w == -EAGAIN)
			return 0;
		if (w <= 0)
			return w ? (int)w : -EPIPE;
		b->off += (size_t)w;
		b->progress_ns = now_ns;
	}
	b->off = b->buf.len = 0;
	return 0;
}

void host_outbuf_clear(struct host_outbuf *b)
{
	b->off = b->buf.len = 0;
}

void host_outbuf_release(struct host_outbuf *b)
{
	buf_release(&b->buf);
	b->off = 0;
}
