/*
 * host/handover: the renewal matcher (see handover.h). Candidates are the alignments k (the new
 * link's first message is d[k]); each message of the new link removes the candidates it
 * contradicts, in O(n).
 */
#define LOG_MODULE "link" /* nothing here logs: the caller does */
#include "host/handover.h"

#include <string.h>

uint64_t host_handover_hash(uint8_t opcode, const uint8_t *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL ^ opcode; /* FNV-1a offset basis */

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL; /* FNV-1a prime */
	return h ^ n;
}

void host_handover_record_start(struct host_handover *h)
{
	h->state = HOST_HANDOVER_RECORDING;
	h->n = 0;
	h->seen = 0;
}

void host_handover_record(struct host_handover *h, uint64_t hash)
{
	if (h->state != HOST_HANDOVER_RECORDING)
		return;
	if (h->n == HOST_HANDOVER_MAX) {
		/* the overlap is a tail: the oldest message matters least */
		memmove(h->d, h->d + 1, (HOST_HANDOVER_MAX - 1) * sizeof(h->d[0]));
		h->n--;
	}
	h->d[h->n++] = hash;
}

void host_handover_forget_first(struct host_handover *h, size_t k)
{
	k = k < h->n ? k : h->n;
	memmove(h->d, h->d + k, (h->n - k) * sizeof(h->d[0]));
	h->n -= k;
}

void host_handover_match_start(struct host_handover *h, int64_t until_ns)
{
	h->state = h->n ? HOST_HANDOVER_MATCHING : HOST_HANDOVER_IDLE;
	h->seen = 0;
	h->until_ns = until_ns;
	for (size_t k = 0; k <= h->n; k++)
		h->alive[k] = true;
}

bool host_handover_is_copy(struct host_handover *h, uint64_t hash, int64_t now_ns)
{
	size_t j = h->seen, first = h->n;

	if (h->state != HOST_HANDOVER_MATCHING)
		return false;
	if (now_ns > h->until_ns) {
		h->state = HOST_HANDOVER_IDLE;
		return false;
	}
	for (size_t k = 0; k < h->n; k++) {
		if (h->alive[k] && k + j < h->n)
			h->alive[k] = h->d[k + j] == hash;
		if (h->alive[k] && k < first)
			first = k;
	}
	h->seen++;
	if (first + j < h->n)
		return true;
	/* past the longest overlap still possible: every later message is new */
	h->state = HOST_HANDOVER_IDLE;
	return false;
}
