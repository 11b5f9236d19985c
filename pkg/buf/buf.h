/*
 * buf: a growable byte buffer with a hard cap (curl's dynbuf). Network-fed buffers get a @max;
 * reaching it is an error for the caller to handle (close the connection, refuse the message),
 * never a silent realloc past it. Not thread-safe; no I/O.
 */
#ifndef RELAY_BUF_H
#define RELAY_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	uint8_t *p;
	size_t len, cap, max;
};

/* An empty buffer that may grow to @max bytes; allocates nothing yet. */
void buf_init(struct buf *b, size_t max);

/* Free the bytes and return to the empty state (same @max). */
void buf_release(struct buf *b);

/*
 * Make room for @n more bytes after b->len (at b->p + b->len), growing by doubling up to max.
 * 0, -ENOBUFS when len + n would pass max (nothing changes), or -ENOMEM.
 */
int buf_reserve(struct buf *b, size_t n);

/*
 * The capacity buf_reserve(@b, @n) would leave, allocating nothing: b->cap when there is room
 * already. For a caller that accounts for memory before it is taken (relay's memory budget).
 * Only for len + n <= max.
 */
size_t buf_reserved_cap(const struct buf *b, size_t n);

/* Append @n bytes from @p; 0, -ENOBUFS or -ENOMEM as buf_reserve(). */
int buf_add(struct buf *b, const void *p, size_t n);

/* Drop the first @n bytes (n <= len), moving the rest to the front. */
void buf_consume(struct buf *b, size_t n);

/* Room left in the allocation, and the bytes that may still be added before max. */
size_t buf_room(const struct buf *b);
size_t buf_left(const struct buf *b);

#endif
