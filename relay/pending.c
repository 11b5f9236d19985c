/*
 * relay/pending: connections accepted whose first request head has not arrived whole (nothing
 * authenticated them yet). Holds them to --max-pending-per-address per client address (the
 * refusal is a 429 on a plain listener, a bare close under TLS) and to --max-pending in all: past
 * that the oldest pending connection is closed, so slow heads give way to new ones.
 *
 * Why here and not in lws: lws 4.1.6 (Debian) gives every accepted connection a header table
 * ("ah", max_http_header_data bytes) at adoption, before its first byte and before the TLS
 * handshake, and keeps it until the head is parsed or a timeout fires (10-11 s); when its pool
 * (max_http_header_pool) is used up, every new connection waits, unread, for one to free. Its own
 * per-address limits (LWS_WITH_PEER_LIMITS) are not built in Debian's package. So serve.c sizes
 * the pool to the connection limit (nobody waits) and this file bounds how many tables the
 * unauthenticated can hold: see docs/operations.md, "Slow and idle connections".
 *
 * HTTP/2 streams are tracked the same way from their creation until their header block ends:
 * lws 4.1.6 reads CONTINUATION frames without limit (an endless header block took a core for
 * ever), so a stream's head also has its deadline, past which its whole connection is closed.
 *
 * States of a tracked wsi (one struct pending each, found by the wsi's address in a hash table:
 * not from lws's opaque pointer, which adoption clears after WSI_CREATE, so that a connection
 * destroyed before SERVER_NEW_CLIENT_INSTANTIATED, a failed TLS accept, would leave its record
 * behind pointing at a freed wsi):
 *   created (WSI_CREATE) --relay_pending_add--> pending --relay_pending_done--> answered (untracked)
 *   pending --relay_pending_expire (past the head deadline)--> its connection killed by lws
 *   pending --evict_oldest (over --max-pending)--> its connection killed by lws
 * The deadline is the same for all, so the oldest-first list is also deadline order.
 */
#define LOG_MODULE "pending"
#include "relay/internal.h"
#include "pkg/clock/clock.h"
#include "pkg/log/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#define ADDR_SLOTS   65536 /* counters by hashed address: collisions only make a cap stricter */
#define LOG_EVERY_MS 1000

struct pending {
	struct lws *wsi;
	struct pending *prev, *next; /* oldest first; the free list uses next */
	uint32_t slot;               /* in per_addr[], or ADDR_SLOTS when not counted */
	int64_t deadline_ms;         /* monotonic */
};

static struct {
	struct pending *all, *free;
	struct pending *oldest, *newest;
	size_t count, max, per_addr_max;
	int64_t head_ms; /* whole head (and TLS handshake) within this of the connection's start */
	uint16_t *per_addr;
	uint32_t
	        *by_wsi; /* open addressing: index + 1 into all[], 0 empty; by_wsi_mask + 1 slots */
	size_t by_wsi_mask;
	uint64_t seed;
	uint64_t refused, evicted, expired; /* since start, for the log */
	uint64_t refused_logged, evicted_logged, expired_logged;
	int64_t last_log_ms;
} p;

int relay_pending_init(const struct relay_opts *o)
{
	memset(&p, 0, sizeof(p));
	p.max = (size_t)o->max_pending;
	p.head_ms = o->http_timeout;
	/* Behind a proxy every connection comes from the proxy's address: only the total holds. */
	p.per_addr_max = o->trust_forwarded_for ? 0 : (size_t)o->max_pending_per_address;
	p.all = calloc(p.max, sizeof(*p.all));
	p.per_addr = calloc(ADDR_SLOTS, sizeof(*p.per_addr));
	p.by_wsi_mask = 1;
	while (p.by_wsi_mask + 1 < 2 * p.max) /* at most half full: short probes */
		p.by_wsi_mask = 2 * p.by_wsi_mask + 1;
	p.by_wsi = calloc(p.by_wsi_mask + 1, sizeof(*p.by_wsi));
	if (!p.all || !p.per_addr || !p.by_wsi)
		return -ENOMEM;
	for (size_t i = 0; i < p.max; i++) {
		p.all[i].next = p.free;
		p.free = &p.all[i];
	}
	if (RAND_bytes((unsigned char *)&p.seed, sizeof(p.seed)) != 1)
		p.seed = (uint64_t)clock_mono_ns();
	return 0;
}

void relay_pending_release(void)
{
	free(p.all);
	free(p.per_addr);
	free(p.by_wsi);
	memset(&p, 0, sizeof(p));
}

size_t relay_pending_count(void)
{
	return p.count;
}

/* The counter of @fd's peer: its IPv4 address, or the /64 of an IPv6 one (one host's share). */
static uint32_t addr_slot(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const uint8_t *a = NULL;
	size_t n = 0;
	uint64_t h = 1469598103934665603ull ^ p.seed;

	if (getpeername(fd, (struct sockaddr *)&ss, &len))
		return ADDR_SLOTS;
	if (ss.ss_family == AF_INET) {
		a = (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr;
		n = 4;
	} else if (ss.ss_family == AF_INET6) {
		const struct in6_addr *in6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		a = in6->s6_addr;
		n = 8;
		if (IN6_IS_ADDR_V4MAPPED(in6)) {
			a += 12;
			n = 4;
		}
	} else {
		return ADDR_SLOTS;
	}
	for (size_t i = 0; i < n; i++)
		h = (h ^ a[i]) * 1099511628211ull;
	h ^= h >> 29;
	return (uint32_t)(h % ADDR_SLOTS);
}

static void log_counts(void)
{
	int64_t now = clock_mono_ns() / 1000000;

	if (now - p.last_log_ms < LOG_EVERY_MS ||
	    (p.refused == p.refused_logged && p.evicted == p.evicted_logged &&
	     p.expired == p.expired_logged))
		return;
	p.last_log_ms = now;
	if (p.refused != p.refused_logged)
		log_notice("refused %llu connection(s) over max_pending_per_address (%zu)",
		           (unsigned long long)(p.refused - p.refused_logged), p.per_addr_max);
	if (p.evicted != p.evicted_logged)
		log_notice(
		        "closed %llu slow connection(s) over max_pending (%zu) without a request",
		        (unsigned long long)(p.evicted - p.evicted_logged), p.max);
	if (p.expired != p.expired_logged)
		log_notice("closed %llu connection(s) whose request head took over %lld ms",
		           (unsigned long long)(p.expired - p.expired_logged),
		           (long long)p.head_ms);
	p.refused_logged = p.refused;
	p.evicted_logged = p.evicted;
	p.expired_logged = p.expired;
}

/* What a refused client on a plain listener reads in place of an answer to its request. */
static void write_refusal(int fd)
{
	static const char body[] =
	        "{\"code\":\"too_many_requests\",\"message\":\"too many unanswered "
	        "connections from your address: finish or close one\"}";
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
	                 "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
	                 "Content-Length: %zu\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
	                 sizeof(body) - 1, body);

	/* A new socket's send buffer takes it whole; anything else and the close says enough. */
	if (send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		log_debug("cannot send the refusal: %s", strerror(errno));
}

int relay_pending_filter(int fd, bool plain)
{
	uint32_t slot;

	if (!p.per_addr_max)
		return 0;
	slot = addr_slot(fd);
	if (slot == ADDR_SLOTS || p.per_addr[slot] < p.per_addr_max)
		return 0;
	p.refused++;
	if (plain)
		write_refusal(fd);
	log_counts();
	return 1;
}

/* ---- the records by wsi: a hash table with linear probing ---- */

static size_t wsi_home(const struct lws *wsi)
{
	uint64_t h = (uint64_t)(uintptr_t)wsi * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 32) & p.by_wsi_mask;
}

/* The slot holding @wsi's record, or the empty slot where it would go. */
static size_t wsi_slot(const struct lws *wsi)
{
	size_t i = wsi_home(wsi);

	while (p.by_wsi[i] && p.all[p.by_wsi[i] - 1].wsi != wsi)
		i = (i + 1) & p.by_wsi_mask;
	return i;
}

static void wsi_insert(struct pending *e)
{
	p.by_wsi[wsi_slot(e->wsi)] = (uint32_t)(e - p.all) + 1;
}

/* Remove @wsi's entry, moving later entries of its probe run back (no tombstones). */
static void wsi_remove(const struct lws *wsi)
{
	size_t i = wsi_slot(wsi), j = i;

	if (!p.by_wsi[i])
		return;
	for (;;) {
		size_t home;

		p.by_wsi[i] = 0;
		do {
			j = (j + 1) & p.by_wsi_mask;
			if (!p.by_wsi[j])
				return;
			home = wsi_home(p.all[p.by_wsi[j] - 1].wsi);
			/* the entry at j may move to i unless its home lies cyclically in (i, j] */
		} while (i <= j ? (i < home && home <= j) : (i < home || home <= j));
		p.by_wsi[i] = p.by_wsi[j];
		i = j;
	}
}

static void unlink_pending(struct pending *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		p.oldest = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		p.newest = e->prev;
	if (e->slot < ADDR_SLOTS && p.per_addr[e->slot])
		p.per_addr[e->slot]--;
	wsi_remove(e->wsi);
	e->wsi = NULL;
	e->prev = NULL;
	e->next = p.free;
	p.free = e;
	p.count--;
}

/* Close @e's connection (for a stream, the whole HTTP/2 connection) at lws's next pass. */
static void kill_pending(struct pending *e)
{
	struct lws *nwsi = lws_get_network_wsi(e->wsi);

	lws_set_timeout(nwsi ? nwsi : e->wsi, PENDING_TIMEOUT_HOLDING_AH, LWS_TO_KILL_ASYNC);
	unlink_pending(e);
}

/* Make room: the oldest pending connection has had the longest to send its head. */
static void evict_oldest(void)
{
	kill_pending(p.oldest);
	p.evicted++;
	log_counts();
}

void relay_pending_expire(void)
{
	int64_t now = clock_mono_ns() / 1000000;

	while (p.oldest && p.oldest->deadline_ms <= now) {
		kill_pending(p.oldest);
		p.expired++;
	}
	log_counts();
}

static struct pending *ours(struct lws *wsi)
{
	size_t i;

	if (!wsi || !p.max)
		return NULL;
	i = wsi_slot(wsi);
	return p.by_wsi[i] ? &p.all[p.by_wsi[i] - 1] : NULL;
}

void relay_pending_add(struct lws *wsi)
{
	struct pending *e;

	if (!p.max)
		return;
	if ((e = ours(wsi)) != NULL) /* made twice: one record, the newest deadline */
		unlink_pending(e);
	if (!p.free)
		evict_oldest();
	e = p.free;
	p.free = e->next;
	e->wsi = wsi;
	e->slot = ADDR_SLOTS;
	e->deadline_ms = clock_mono_ns() / 1000000 + p.head_ms;
	e->next = NULL;
	e->prev = p.newest;
	if (p.newest)
		p.newest->next = e;
	else
		p.oldest = e;
	p.newest = e;
	p.count++;
	wsi_insert(e);
}

void relay_pending_accepted(struct lws *wsi)
{
	struct pending *e = ours(wsi);

	if (!e || e->slot != ADDR_SLOTS)
		return;
	e->slot = addr_slot(lws_get_socket_fd(wsi));
	if (e->slot < ADDR_SLOTS && p.per_addr[e->slot] < UINT16_MAX)
		p.per_addr[e->slot]++;
}

void relay_pending_done(struct lws *wsi, bool head)
{
	struct pending *e = ours(wsi);

	if (e)
		unlink_pending(e);
	/* A stream's head also answers for its connection (an HTTP/2 connection's first head). */
	if (head && (e = ours(lws_get_network_wsi(wsi))) != NULL)
		unlink_pending(e);
}
