/* buf: capped growable byte buffers. */
#include "pkg/buf/buf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The first allocation: small buffers stay small, large ones double from here. */
#define BUF_MIN 256

void buf_init(struct buf *b, size_t max)
{
	b->p = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

void buf_release(struct buf *b)
{
	free(b->p);
	buf_init(b, b->max);
}

size_t buf_reserved_cap(const struct buf *b, size_t n)
{
	size_t cap;

	if (n <= b->cap - b->len)
		return b->cap;
	cap = b->cap ? b->cap : BUF_MIN;
	while (cap < b->len + n && cap <= b->max / 2)
		cap *= 2;
	if (cap < b->len + n || cap > b->max)
		cap = b->max; /* doubling would pass max, and len + n <= max */
	return cap;
}

int buf_reserve(struct buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->len > b->max || n > b->max - b->len)
		return -ENOBUFS; /* also when a caller lowered max below what is held */
	if (n <= b->cap - b->len)
		return 0;
	cap = buf_reserved_cap(b, n);
	p = realloc(b->p, cap ? cap : 1);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int buf_add(struct buf *b, const void *p, size_t n)
{
	int ret = buf_reserve(b, n);

	if (ret)
		return ret;
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n < b->len)
		memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

size_t buf_room(const struct buf *b)
{
	return b->cap - b->len;
}

size_t buf_left(const struct buf *b)
{
	return b->len < b->max ? b->max - b->len : 0;
}
