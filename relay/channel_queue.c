/*
 * relay/channel_queue: what waits for one side of a channel. Messages are not reassembled: a
 * channel carries a byte stream cut into messages of any size (an ssh session, a file), so
 * each piece lws hands over is queued as it is and written on with the matching continuation
 * and FIN flags. Memory then stays bounded by the queue limit whatever the message size (no
 * --max-message), and the first bytes of a large message go on before its last arrive.
 * Consecutive pieces of one message are coalesced into CHAN_CHUNK-sized pieces, so that a
 * large message goes out in large writes however lws cut it.
 */
#define LOG_MODULE "chan"
#include "relay/channel_queue.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

static size_t piece_size(size_t cap)
{
	return sizeof(struct chan_piece) + LWS_PRE + cap;
}

/* The tail takes @len more bytes of its own message. */
static bool tail_takes(const struct chan_queue *q, size_t len, bool first)
{
	const struct chan_piece *t = q->tail;

	return t && !first && !t->final && t->cap - t->len >= len;
}

int chan_queue_add(struct chan_queue *q, const uint8_t *in, size_t len, bool first, bool final,
                   bool binary)
{
	struct chan_piece *p;
	size_t cap;

	if (tail_takes(q, len, first)) {
		p = q->tail;
		memcpy(p->data + LWS_PRE + p->len, in, len);
		p->len += len;
		p->final = final;
		q->in_bytes += len;
		return 0;
	}
	/* a whole small message gets what it needs; a message still coming gets a chunk */
	cap = final || len >= CHAN_CHUNK ? len : CHAN_CHUNK;
	p = malloc(piece_size(cap));
	if (!p)
		return -ENOMEM;
	p->next = NULL;
	p->len = len;
	p->cap = cap;
	p->first = first;
	p->final = final;
	p->binary = binary;
	if (len)
		memcpy(p->data + LWS_PRE, in, len);
	if (q->tail)
		q->tail->next = p;
	else
		q->head = p;
	q->tail = p;
	q->held += piece_size(cap);
	q->in_bytes += len;
	return 0;
}

void chan_queue_pop(struct chan_queue *q)
{
	struct chan_piece *p = q->head;

	if (!p)
		return;
	q->head = p->next;
	if (!q->head)
		q->tail = NULL;
	q->held -= piece_size(p->cap);
	free(p);
}

void chan_queue_clear(struct chan_queue *q)
{
	while (q->head)
		chan_queue_pop(q);
}
