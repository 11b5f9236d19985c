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
	struct rpart *next;
	int64_t seen_ms; /* monotonic */
	uint64_t origin;
	char meeting[MEET_ID_MAX + 1];
	char pid[PID_MAX + 1];
	char tcp[ADDR_MAX];
	char udp[ADDR_MAX];
};

static struct {
	struct rpart *b[PART_BUCKETS];
	size_t n;
	uint64_t dropped;
} M;

static unsigned bucket(const char *meeting)
{
	unsigned h = 2166136261u;

	for (const char *p = meeting; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h % PART_BUCKETS;
}

static struct rpart **find(const char *meeting, const char *pid)
{
	struct rpart **p = &M.b[bucket(meeting)];

	while (*p && !(strcmp((*p)->pid, pid) == 0 && strcmp((*p)->meeting, meeting) == 0))
		p = &(*p)->next;
	return p;
}

static void drop(struct rpart **p, bool tell)
{
	struct rpart *r = *p;

	*p = r->next;
	M.n--;
	if (tell)
		relay_meet_remote(r->meeting, r->pid, NULL, NULL);
	free(r);
}

void cluster_meet_free(void)
{
	for (size_t i = 0; i < PART_BUCKETS; i++)
		while (M.b[i])
			drop(&M.b[i], false);
}

size_t relay_cluster_meet_count(const char *meeting)
{
	size_t n = 0;
	int64_t now = relay_mono_ms();

	if (!cluster_cmd())
		return 0;
	for (struct rpart *r = M.b[bucket(meeting)]; r; r = r->next)
		if (strcmp(r->meeting, meeting) == 0 && now - r->seen_ms <= PART_TTL_MS)
			n++;
	return n;
}

void relay_cluster_meet_each(const char *meeting,
                             void (*cb)(const char *pid, const char *tcp, const char *udp,
                                        void *arg),
                             void *arg)
{
	int64_t now = relay_mono_ms();

	if (!cluster_cmd())
		return;
	for (struct rpart *r = M.b[bucket(meeting)]; r; r = r->next)
		if (strcmp(r->meeting, meeting) == 0 && now - r->seen_ms <= PART_TTL_MS)
			cb(r->pid, r->tcp, r->udp, arg);
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
	int64_t now = relay_mono_ms();

	for (size_t i = 0; i < PART_BUCKETS; i++)
		for (struct rpart **p = &M.b[i]; *p;)
			if (now - (*p)->seen_ms > PART_TTL_MS)
				drop(p, true);
			else
				p = &(*p)->next;
	if (cluster_cmd())
		relay_meet_each_local(here, NULL);
}

static void heard_here(const char *meeting, const char *pid, uint64_t origin, const char *tcp,
                       const char *udp)
{
	struct rpart **p = find(meeting, pid), *r = *p;
	bool changed;

	if (!r) {
		if (M.n >= PARTS_MAX || !(r = calloc(1, sizeof(*r))))
			return;
		snprintf(r->meeting, sizeof(r->meeting), "%s", meeting);
		snprintf(r->pid, sizeof(r->pid), "%s", pid);
		r->next = M.b[bucket(meeting)];
		M.b[bucket(meeting)] = r;
		M.n++;
		changed = true;
	} else {
		changed = strcmp(r->tcp, tcp) != 0 || strcmp(r->udp, udp) != 0;
	}
	snprintf(r->tcp, sizeof(r->tcp), "%s", tcp);
	snprintf(r->udp, sizeof(r->udp), "%s", udp);
	r->origin = origin;
	r->seen_ms = relay_mono_ms();
	if (changed)
		relay_meet_remote(meeting, pid, r->tcp, r->udp);
}

int cluster_meet_message(const redisReply *payload)
{
	const char *n = NULL, *k = NULL, *meeting = NULL, *pid = NULL, *tcp = NULL, *udp = NULL;
	unsigned long long origin;
	struct rpart **p;
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
		if (*p && (*p)->origin == origin)
			drop(p, true);
	} else {
		err = -1;
	}
out:
	json_decref(o);
	return err;
}
