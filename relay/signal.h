/*
 * relay/signal.h: what signal.c (/signal/{realm}) and meet.c (/meet/{id}) share: a bounded
 * queue of text messages for one websocket, written one frame per WRITEABLE
 * (signal_out.c). Loop thread only.
 */
#ifndef RELAY_SIGNAL_H
#define RELAY_SIGNAL_H

#include "relay/internal.h"

struct sig_omsg;

/* Messages waiting for one connection, oldest first; at most signal_queue bytes. */
struct sig_out {
	struct sig_omsg *head, *tail;
	size_t bytes, n;
};

/*
 * Queue the text @s (a new NUL-terminated string: taken over and freed) for @c and ask for
 * WRITEABLE. A @c already closing drops it. Past --signal-queue bytes, or out of memory, @c is
 * closed (1008 "reader too slow", or 1011) and its queue emptied: a peer that does not read
 * never makes the relay hold more. A NULL @s (its builder ran out of memory) closes @c too.
 */
void sig_out_push(struct conn *c, struct sig_out *q, char *s);
/* WRITEABLE: write the oldest message (one lws_write), ask again while more wait. 0 or -1. */
int sig_out_write(struct lws *wsi, struct conn *c, struct sig_out *q);
/* Drop everything queued. */
void sig_out_clear(struct sig_out *q);

#endif
