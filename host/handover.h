/*
 * host/handover: which messages on a renewed relay link are copies. During make-before-break
 * renewal both links are readers of the topic: the old link delivers a sequence D after the new
 * link joined, and the new link's stream N begins with the same messages (the relay sends to
 * every reader, in order). The matcher drops exactly the prefix of N that equals a tail of D:
 * a sequence match, not membership, so a message repeated on purpose ("stop" twice) is delivered
 * each time it is sent. Pure: no I/O, no clock (the caller passes the time); one thread.
 */
#ifndef RELAY_HOST_HANDOVER_H
#define RELAY_HOST_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How many of the old link's last messages are remembered (the overlap is a tail of them). */
#define HOST_HANDOVER_MAX 1024

enum host_handover_state { HOST_HANDOVER_IDLE, HOST_HANDOVER_RECORDING, HOST_HANDOVER_MATCHING };

struct host_handover {
	enum host_handover_state state;
	uint64_t d[HOST_HANDOVER_MAX]; /* hashes of what the old link delivered, oldest first */
	size_t n;                      /* entries in d */
	size_t seen;                   /* messages of the new link matched so far */
	/* alive[k]: the new link's stream may start at d[k] (k == n: no overlap at all) */
	bool alive[HOST_HANDOVER_MAX + 1];
	int64_t until_ns; /* matching ends then, whatever happened */
};

/* A message's identity for the matcher: FNV-1a over its type, bytes and length. */
uint64_t host_handover_hash(uint8_t opcode, const uint8_t *p, size_t n);

/* Start recording what the old link delivers (forgets any earlier handover). */
void host_handover_record_start(struct host_handover *h);

/* Record a message the old link delivered (only while recording; the oldest is forgotten when
 * more than HOST_HANDOVER_MAX are recorded). */
void host_handover_record(struct host_handover *h, uint64_t hash);

/* Forget the @k oldest recorded messages: the old link had them before the new one joined. */
void host_handover_forget_first(struct host_handover *h, size_t k);

/* The old link is closed: match the new link's messages until @until_ns (monotonic). */
void host_handover_match_start(struct host_handover *h, int64_t until_ns);

/*
 * true when @hash, the next message of the new link, is its copy of one the old link delivered
 * (drop it). The overlap chosen is the longest tail of D that the new link's messages so far
 * repeat; the first message past it ends the handover, and so does @now_ns past the window.
 */
bool host_handover_is_copy(struct host_handover *h, uint64_t hash, int64_t now_ns);

#endif
