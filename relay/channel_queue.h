/*
 * relay/channel_queue: what waits for one side of a private channel, as the pieces lws
 * delivered (no reassembly: see channel_queue.c).
 */
#ifndef RELAY_CHANNEL_QUEUE_H
#define RELAY_CHANNEL_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A run of bytes of one message, as received; several pieces of a message may be coalesced. */
struct chan_piece {
	struct chan_piece *next;
	size_t len, cap; /* payload bytes held, room (after LWS_PRE bytes of headroom) */
	bool first;      /* starts a message: written with its type, else as a continuation */
	bool final;      /* ends a message: written with FIN */
	bool binary;
	uint8_t data[]; /* LWS_PRE bytes of headroom, then cap bytes */
};

/* What waits for one side of a channel. */
struct chan_queue {
	struct chan_piece *head, *tail;
	size_t held;       /* bytes allocated for pieces (cap + headers): what the limit bounds */
	uint64_t in_bytes; /* payload bytes queued since the start */
};

/* Pieces not final are given this much room, so that a long message's pieces share writes. */
#define CHAN_CHUNK (64 * 1024)

/*
 * Append a piece of @len bytes of a message (@first: it starts one; @final: it ends it). A
 * piece continuing the tail's message goes into the tail while it has room. 0 or -ENOMEM.
 */
int chan_queue_add(struct chan_queue *q, const uint8_t *in, size_t len, bool first, bool final,
                   bool binary);
/* The oldest piece, or NULL. */
static inline struct chan_piece *chan_queue_peek(const struct chan_queue *q)
{
	return q->head;
}
/* Drop the oldest piece (written). */
void chan_queue_pop(struct chan_queue *q);
/* Drop everything (its side is gone). */
void chan_queue_clear(struct chan_queue *q);

#endif
