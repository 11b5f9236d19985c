/*
 * relay/cluster_hosts: which instance holds each private channel host's control connection
 * (/connect/{host}), so that a client whose access call reaches another instance is sent there.
 * Each instance PUBLISHes on relay:hosts, once a second and at each change, the hosts whose
 * control connection it holds, with its public URL: "{nonce} + {instance} {url} {host}..." (a
 * "-" instead of "+" when a host leaves). Every instance keeps what it hears in memory for 3 s:
 * nothing to load at link up, and an instance that dies is forgotten within 3 s. The channel's
 * bytes never cross Redis: the client is given a code (kept in Redis) and a uri at the host's
 * instance, where the pairing is local (see docs/scale-out.md).
 */
#define LOG_MODULE "cluster"
#include "relay/cluster.h"
#include "relay/cluster_int.h"
#include "relay/channel.h"
#include "pkg/cluster/cluster.h"
#include "pkg/log/log.h"
#include "pkg/ttlmap/ttlmap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOST_TTL_MS  3000
#define HOST_BUCKETS 256
#define HOSTS_MAX \
	16384        /* remote hosts remembered (about 700 bytes each); past it new ones are not */
#define MSG_MAX 8192 /* one announcement; more hosts go in several */
#define URL_MAX 512

struct rhost {
	struct ttlmap_entry e; /* first */
	char id[GRANT_TOPIC];
	char instance[CLUSTER_NAME_MAX];
	char url[URL_MAX];
};

struct host_key {
	const char *id;
	size_t len;
};

static bool host_is(const struct ttlmap_entry *e, const void *key)
{
	const struct rhost *h = (const struct rhost *)e;
	const struct host_key *k = key;

	return strlen(h->id) == k->len && memcmp(h->id, k->id, k->len) == 0;
}

static struct ttlmap_entry *host_b[HOST_BUCKETS];

static struct ttlmap H = TTLMAP_INIT(host_b, HOSTS_MAX, HOST_TTL_MS, host_is, NULL);

static uint32_t bucket(const char *id, size_t len)
{
	return ttlmap_hash(TTLMAP_HASH_INIT, id, len);
}

static struct ttlmap_entry **find(const char *id, size_t len)
{
	struct host_key k = {id, len};

	return ttlmap_find(&H, bucket(id, len), &k);
}

const char *relay_cluster_host_url(const char *host)
{
	struct host_key k = {host, strlen(host)};
	struct rhost *h;

	if (!cluster_cmd())
		return NULL; /* unheard for a while: nothing known is current */
	h = (struct rhost *)ttlmap_get(&H, bucket(host, k.len), &k, relay_mono_ms());
	return h ? h->url : NULL;
}

void cluster_hosts_free(void)
{
	ttlmap_clear(&H);
}

/* ---- announcing ---- */

struct ann {
	char msg[MSG_MAX];
	size_t head, len; /* head: bytes before the first host */
	redisAsyncContext *ac;
};

static void ann_flush(struct ann *a)
{
	if (a->len > a->head)
		redisAsyncCommand(a->ac, NULL, NULL, "PUBLISH %s %b", CH_HOSTS, a->msg, a->len);
	a->len = a->head;
}

static void ann_add(const char *host, void *arg)
{
	struct ann *a = arg;
	size_t n = strlen(host);

	if (a->len + 1 + n > sizeof(a->msg))
		ann_flush(a);
	a->msg[a->len++] = ' ';
	memcpy(a->msg + a->len, host, n);
	a->len += n;
}

static int ann_begin(struct ann *a, char sign)
{
	int n;

	a->ac = cluster_cmd();
	if (!a->ac)
		return -1;
	n = snprintf(a->msg, sizeof(a->msg), "%016" PRIx64 " %c %s %s", cluster_nonce(), sign,
	             relay_cluster_instance(), cluster_server()->public_url);
	if (n < 0 || (size_t)n + GRANT_TOPIC + 1 > sizeof(a->msg))
		return -1;
	a->head = a->len = (size_t)n;
	return 0;
}

static void announce_one(char sign, const char *host)
{
	struct ann a;

	if (ann_begin(&a, sign))
		return;
	ann_add(host, &a);
	ann_flush(&a);
}

void relay_cluster_host_up(const char *host)
{
	announce_one('+', host);
}

void relay_cluster_host_down(const char *host)
{
	announce_one('-', host);
}

void cluster_hosts_tick(void)
{
	struct ann a;

	ttlmap_sweep(&H, relay_mono_ms()); /* forget hosts not heard of for HOST_TTL_MS */

	if (ann_begin(&a, '+'))
		return;
	chan_each_host(ann_add, &a);
	ann_flush(&a);
}

/* ---- hearing ---- */

static void heard(char sign, const char *instance, size_t ilen, const char *url, size_t ulen,
                  const char *id, size_t len)
{
	struct ttlmap_entry **p = find(id, len);
	struct rhost *h = (struct rhost *)*p;
	int64_t now = relay_mono_ms();

	if (len >= GRANT_TOPIC)
		return;
	if (sign == '-') {
		/* only the instance that holds it says it is gone (a late "-" from an old
		 * holder must not hide the new one) */
		if (h && strlen(h->instance) == ilen && memcmp(h->instance, instance, ilen) == 0)
			ttlmap_remove(&H, p, false);
		return;
	}
	if (!h) {
		h = ttlmap_add(&H, bucket(id, len), sizeof(*h), now);
		if (!h)
			return;
		memcpy(h->id, id, len);
	}
	memcpy(h->instance, instance, ilen);
	h->instance[ilen] = '\0';
	memcpy(h->url, url, ulen);
	h->url[ulen] = '\0';
	h->e.seen_ms = now;
}

/* The next space-separated word of [*p, end): its start, length in *n; NULL at the end. */
static const char *word(const char **p, const char *end, size_t *n)
{
	const char *w = *p, *sp;

	if (w >= end)
		return NULL;
	sp = memchr(w, ' ', (size_t)(end - w));
	*n = (size_t)((sp ? sp : end) - w);
	*p = sp ? sp + 1 : end;
	return *n ? w : NULL;
}

int cluster_hosts_message(const redisReply *payload)
{
	const char *p, *end, *sign, *inst, *url, *id;
	size_t n, ilen, ulen, len;
	unsigned long long origin;
	char *e;

	if (payload->type != REDIS_REPLY_STRING || payload->len < 18 || payload->str[16] != ' ')
		return -1;
	origin = strtoull(payload->str, &e, 16);
	if (e != payload->str + 16)
		return -1;
	if (origin == cluster_nonce())
		return 0;
	p = payload->str + 17;
	end = payload->str + payload->len;
	sign = word(&p, end, &n);
	if (!sign || n != 1 || (*sign != '+' && *sign != '-'))
		return -1;
	inst = word(&p, end, &ilen);
	url = word(&p, end, &ulen);
	if (!inst || !url || ilen >= CLUSTER_NAME_MAX || ulen >= URL_MAX)
		return -1;
	while ((id = word(&p, end, &len)))
		heard(*sign, inst, ilen, url, ulen, id, len);
	return 0;
}
