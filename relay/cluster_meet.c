/*
 * relay/cluster_meet: rendezvous (/meet/{id}) across instances. Every instance is subscribed to
 * relay:meet and PUBLISHes there, as compact JSON tagged with its nonce, its participants:
 *   {"n":nonce,"k":"+","m":meeting,"p":pid,"tcp":addr,"udp":addr|""}  at join, when the UDP
 *                                                                       address becomes known,
 *                                                                       then once a second
 *   {"n":nonce,"k":"-","m":meeting,"p":pid}                             at leave
 * Each instance keeps what it hears for 3 s (an instance that dies is forgotten, and "left"
 * told, within 3 s) and tells its own participants of the same meeting. Tags never cross: a
 * participant's STUN Binding goes to its own instance. See docs/scale-out.md.
 */
#define LOG_MODULE "cluster"
#include "relay/cluster.h"
#include "relay/cluster_int.h"
#include "pkg/log/log.h"
#include "pkg/ttlmap/ttlmap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PART_TTL_MS  3000
#define PART_BUCKETS 1024
#define PARTS_MAX    65536 /* remote participants remembered; past it new ones are not */
#define MEET_ID_MAX  64
#define PID_MAX      32
#define ADDR_MAX     80

struct rpart {
	struct ttlmap_entry e; /* first */
	uint64_t origin;
	char meeting[MEET_ID_MAX + 1];
	char pid[PID_MAX + 1];
	char tcp[ADDR_MAX];
	char udp[ADDR_MAX];
};

struct part_key {
	const char *meeting, *pid;
};

static bool part_is(const struct ttlmap_entry *e, const void *key)
{
	const struct rpart *r = (const struct rpart *)e;
	const struct part_key *k = key;

	return strcmp(r->pid, k->pid) == 0 && strcmp(r->meeting, k->meeting) == 0;
}

static void part_gone(struct ttlmap_entry *e, bool tell)
{
	struct rpart *r = (struct rpart *)e;

	if (tell)
		relay_meet_remote(r->meeting, r->pid, NULL, NULL);
}

static struct ttlmap_entry *part_b[PART_BUCKETS];

static struct {
	struct ttlmap parts; /* by meeting only: a meeting's participants share a bucket */
	uint64_t dropped;
} M = {.parts = TTLMAP_INIT(part_b, PARTS_MAX, PART_TTL_MS, part_is, part_gone)};

static uint32_t bucket(const char *meeting)
{
	return ttlmap_hash(TTLMAP_HASH_INIT, meeting, strlen(meeting));
}

static struct ttlmap_entry **find(const char *meeting, const char *pid)
{
	struct part_key k = {meeting, pid};

	return ttlmap_find(&M.parts, bucket(meeting), &k);
}

void cluster_meet_free(void)
{
	ttlmap_clear(&M.parts);
}

/* A meeting's remote participants: counted, and passed to cb when there is one. */
struct visit {
	const char *meeting;
	void (*cb)(const char *pid, const char *tcp, const char *udp, void *arg);
	void *arg;
	size_t n;
};

static void visit(struct ttlmap_entry *e, void *arg)
{
	struct rpart *r = (struct rpart *)e;
	struct visit *v = arg;

	if (strcmp(r->meeting, v->meeting) != 0)
		return;
	v->n++;
	if (v->cb)
		v->cb(r->pid, r->tcp, r->udp, v->arg);
}

static size_t visit_all(struct visit *v)
{
	if (cluster_cmd())
		ttlmap_each_in(&M.parts, bucket(v->meeting), relay_mono_ms(), visit, v);
	return v->n;
}

size_t relay_cluster_meet_count(const char *meeting)
{
	struct visit v = {.meeting = meeting};

	return visit_all(&v);
}

void relay_cluster_meet_each(const char *meeting,
                             void (*cb)(const char *pid, const char *tcp, const char *udp,
                                        void *arg),
                             void *arg)
{
	struct visit v = {.meeting = meeting, .cb = cb, .arg = arg};

	visit_all(&v);
}

void relay_cluster_meet_here(const char *meeting, const char *pid, const char *tcp, const char *udp)
{
	if (cluster_cmd())
		cluster_publish_json(CH_MEET,
		                     json_pack("{s:s, s:s, s:s, s:s, s:s}", "k", "+", "m", meeting,
		                               "p", pid, "tcp", tcp, "udp", udp),
		                     &M.dropped);
}

void relay_cluster_meet_left(const char *meeting, const char *pid)
{
	if (cluster_cmd())
		cluster_publish_json(CH_MEET,
		                     json_pack("{s:s, s:s, s:s}", "k", "-", "m", meeting, "p", pid),
		                     &M.dropped);
}

static void here(const char *meeting, const char *pid, const char *tcp, const char *udp, void *arg)
{
	(void)arg;
	relay_cluster_meet_here(meeting, pid, tcp, udp);
}

void cluster_meet_tick(void)
{
	ttlmap_sweep(&M.parts, relay_mono_ms());
	if (cluster_cmd())
		relay_meet_each_local(here, NULL);
}

static void heard_here(const char *meeting, const char *pid, uint64_t origin, const char *tcp,
                       const char *udp)
{
	struct rpart *r = (struct rpart *)*find(meeting, pid);
	int64_t now = relay_mono_ms();
	bool changed;

	if (!r) {
		r = ttlmap_add(&M.parts, bucket(meeting), sizeof(*r), now);
		if (!r)
			return;
		snprintf(r->meeting, sizeof(r->meeting), "%s", meeting);
		snprintf(r->pid, sizeof(r->pid), "%s", pid);
		changed = true;
	} else {
		changed = strcmp(r->tcp, tcp) != 0 || strcmp(r->udp, udp) != 0;
	}
	snprintf(r->tcp, sizeof(r->tcp), "%s", tcp);
	snprintf(r->udp, sizeof(r->udp), "%s", udp);
	r->origin = origin;
	r->e.seen_ms = now;
	if (changed)
		relay_meet_remote(meeting, pid, r->tcp, r->udp);
}

int cluster_meet_message(const redisReply *payload)
{
	const char *n = NULL, *k = NULL, *meeting = NULL, *pid = NULL, *tcp = NULL, *udp = NULL;
	unsigned long long origin;
	struct ttlmap_entry **p;
	json_t *o;
	char *e;
	int err = -1;

	if (payload->type != REDIS_REPLY_STRING)
		return -1;
	o = json_loadb(payload->str, payload->len, 0, NULL);
	if (!o || json_unpack(o, "{s:s, s:s, s:s, s:s, s?s, s?s}", "n", &n, "k", &k, "m", &meeting,
	                      "p", &pid, "tcp", &tcp, "udp", &udp))
		goto out;
	origin = strtoull(n, &e, 16);
	if (*e || strlen(n) != 16 || strlen(meeting) > MEET_ID_MAX || strlen(pid) > PID_MAX ||
	    (tcp && strlen(tcp) >= ADDR_MAX) || (udp && strlen(udp) >= ADDR_MAX))
		goto out;
	err = 0;
	if (origin == cluster_nonce())
		goto out;
	if (k[0] == '+' && tcp && udp) {
		heard_here(meeting, pid, origin, tcp, udp);
	} else if (k[0] == '-') {
		p = find(meeting, pid);
		if (*p && ((struct rpart *)*p)->origin == origin)
			ttlmap_remove(&M.parts, p, true);
	} else {
		err = -1;
	}
out:
	json_decref(o);
	return err;
}
