/*
 * relay/cluster_signal: signaling (/signal/{realm}) across instances. Every instance is
 * subscribed to relay:signal and PUBLISHes there, as compact JSON tagged with its nonce:
 *   {"n":nonce,"k":"+","r":realm,"p":id,"peers":[...]}  a peer is here (at join, then once a
 *                                                       second; "peers" only with a claim)
 *   {"n":nonce,"k":"-","r":realm,"p":id}                 the peer left
 *   {"n":nonce,"k":"m","r":realm,"t":to,"f":frame}       a frame for a peer of another instance,
 *                                                       "from" already written by the sender's
 *                                                       instance (never by a client)
 * Each instance keeps the peers it hears of in memory for 3 s (an instance that dies is forgotten,
 * and its peers' leave told, within 3 s), with their peers claim, so that both claims are checked
 * at the sender's instance. One live connection per id per realm: a key relay:peer:{realm} {id}
 * is SET NX at join (the loser is closed with peer-connected), refreshed while connected and
 * deleted at close, by its holder only. See docs/scale-out.md.
 */
#define LOG_MODULE "cluster"
#include "relay/cluster.h"
#include "relay/cluster_int.h"
#include "pkg/log/log.h"
#include "pkg/sigmsg/sigmsg.h"
#include "pkg/ttlmap/ttlmap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEER_TTL_MS 3000
#define KEY_TTL_MS \
	5000 /* outlives a few missed refreshes; after a crash the id is free within it */
#define RPEER_BUCKETS 4096
#define RPEERS_MAX    65536 /* remote peers remembered; past it new ones are not */
#define PEERS_MAX     4096  /* ids in a carried peers claim, as at the access call */
#define KEY_MAX       (16 + GRANT_TOPIC + SIGMSG_ID_MAX)

struct rpeer {
	struct ttlmap_entry e; /* first */
	uint64_t origin;       /* the holding instance's nonce */
	char **allow;          /* sorted; NULL: no claim */
	size_t n_allow;
	char realm[GRANT_TOPIC];
	char id[SIGMSG_ID_MAX + 1];
};

struct peer_key {
	const char *realm, *id;
};

static bool peer_is(const struct ttlmap_entry *e, const void *key)
{
	const struct rpeer *r = (const struct rpeer *)e;
	const struct peer_key *k = key;

	return strcmp(r->id, k->id) == 0 && strcmp(r->realm, k->realm) == 0;
}

static void peer_gone(struct ttlmap_entry *e, bool tell)
{
	struct rpeer *r = (struct rpeer *)e;

	if (tell)
		relay_signal_remote_presence(r->realm, r->id, r->allow, r->n_allow, "leave");
	sigmsg_ids_free(r->allow, r->n_allow);
}

static struct ttlmap_entry *peer_b[RPEER_BUCKETS];

static struct {
	struct ttlmap peers;
	size_t out_bytes; /* published (signaling and meetings), not yet answered */
	uint64_t sent, heard, dropped, bad;
} S = {.peers = TTLMAP_INIT(peer_b, RPEERS_MAX, PEER_TTL_MS, peer_is, peer_gone)};

/* Delete or refresh the key only while it is still ours. */
static const char DEL_MINE[] =
        "if redis.call('get',KEYS[1])==ARGV[1] then return redis.call('del',KEYS[1]) end return 0";
/* Refresh ours, or take it again if it expired meanwhile (Redis was unreachable or restarted). */
static const char KEEP_MINE[] = "local v = redis.call('get', KEYS[1]) if v == ARGV[1] then return "
                                "redis.call('pexpire', KEYS[1], ARGV[2]) elseif not v then return "
                                "redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) end return 0";

/* The realm's bytes, a 0 between, the id's. */
static uint32_t bucket(const char *realm, const char *id)
{
	uint32_t h = ttlmap_hash(TTLMAP_HASH_INIT, realm, strlen(realm));

	return ttlmap_hash(ttlmap_hash(h, "", 1), id, strlen(id));
}

static struct ttlmap_entry **find(const char *realm, const char *id)
{
	struct peer_key k = {realm, id};

	return ttlmap_find(&S.peers, bucket(realm, id), &k);
}

bool relay_cluster_signal_peer(const char *realm, const char *id, char *const **allow,
                               size_t *n_allow)
{
	struct peer_key k = {realm, id};
	struct rpeer *r;

	if (!cluster_cmd())
		return false;
	r = (struct rpeer *)ttlmap_get(&S.peers, bucket(realm, id), &k, relay_mono_ms());
	if (!r)
		return false;
	if (allow) {
		*allow = r->allow;
		*n_allow = r->n_allow;
	}
	return true;
}

/* A realm's remote peers, to cb. */
struct visit {
	const char *realm;
	void (*cb)(const char *id, char *const *allow, size_t n, void *arg);
	void *arg;
};

static void visit(struct ttlmap_entry *e, void *arg)
{
	struct rpeer *r = (struct rpeer *)e;
	struct visit *v = arg;

	if (strcmp(r->realm, v->realm) == 0)
		v->cb(r->id, r->allow, r->n_allow, v->arg);
}

void relay_cluster_signal_each(const char *realm,
                               void (*cb)(const char *id, char *const *allow, size_t n, void *arg),
                               void *arg)
{
	struct visit v = {realm, cb, arg};

	if (cluster_cmd())
		ttlmap_each(&S.peers, relay_mono_ms(), visit, &v);
}

void cluster_signal_free(void)
{
	ttlmap_clear(&S.peers);
}

/* ---- publishing ---- */

static void on_published(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	size_t n = (size_t)(uintptr_t)priv;

	(void)ac;
	S.out_bytes -= n < S.out_bytes ? n : S.out_bytes;
	if (!reply || reply->type == REDIS_REPLY_ERROR)
		S.dropped++; /* a meeting's note among them, rarely: counted here */
}

int cluster_publish_json(const char *channel, json_t *o, uint64_t *dropped)
{
	redisAsyncContext *ac = cluster_cmd();
	char nonce[17], *s;
	size_t n;

	if (!o || !ac) {
		json_decref(o);
		(*dropped)++;
		return -1;
	}
	snprintf(nonce, sizeof(nonce), "%016" PRIx64, cluster_nonce());
	json_object_set_new(o, "n", json_string(nonce));
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	n = s ? strlen(s) : 0;
	if (!s || S.out_bytes + n > (size_t)cluster_server()->o->redis_buffer ||
	    redisAsyncCommand(ac, on_published, (void *)(uintptr_t)n, "PUBLISH %s %b", channel, s,
	                      n) != REDIS_OK) {
		free(s);
		(*dropped)++;
		return -1;
	}
	free(s);
	S.out_bytes += n;
	return 0;
}

static int publish(json_t *o)
{
	if (cluster_publish_json(CH_SIGNAL, o, &S.dropped))
		return -1;
	S.sent++;
	return 0;
}

static json_t *presence(char kind, const char *realm, const char *id, char *const *allow,
                        size_t n_allow)
{
	json_t *o = json_pack("{s:s#, s:s, s:s}", "k", &kind, (size_t)1, "r", realm, "p", id);
	json_t *a = allow ? json_array() : NULL;

	for (size_t i = 0; a && i < n_allow; i++)
		json_array_append_new(a, json_string(allow[i]));
	if (o && a)
		json_object_set_new(o, "peers", a);
	else
		json_decref(a);
	return o;
}

/* The id's key: a realm has no '/', so "realm/id" names one id of one realm. */
static void key_of(char key[KEY_MAX], const char *realm, const char *id)
{
	snprintf(key, KEY_MAX, "relay:peer:%s/%s", realm, id);
}

static void key_cmd(const char *script, const char *realm, const char *id)
{
	redisAsyncContext *ac = cluster_cmd();
	char nonce[17], key[KEY_MAX];

	if (!ac)
		return;
	snprintf(nonce, sizeof(nonce), "%016" PRIx64, cluster_nonce());
	key_of(key, realm, id);
	redisAsyncCommand(ac, NULL, NULL, "EVAL %s 1 %s %s %d", script, key, nonce, KEY_TTL_MS);
}

struct held {
	char realm[GRANT_TOPIC];
	char id[SIGMSG_ID_MAX + 1];
};

/* SET NX answered: nil means another instance holds the id. */
static void on_claimed(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct held *h = priv;

	if (reply && cluster_is_cmd(ac) && reply->type == REDIS_REPLY_NIL)
		relay_signal_conflict(h->realm, h->id);
	free(h);
}

void relay_cluster_signal_join(const char *realm, const char *id, char *const *allow,
                               size_t n_allow)
{
	redisAsyncContext *ac = cluster_cmd();
	struct held *h;
	char nonce[17], key[KEY_MAX];

	if (!ac)
		return;
	snprintf(nonce, sizeof(nonce), "%016" PRIx64, cluster_nonce());
	h = calloc(1, sizeof(*h));
	if (h) {
		snprintf(h->realm, sizeof(h->realm), "%s", realm);
		snprintf(h->id, sizeof(h->id), "%s", id);
		key_of(key, realm, id);
		if (redisAsyncCommand(ac, on_claimed, h, "SET %s %s NX PX %d", key, nonce,
		                      KEY_TTL_MS) != REDIS_OK)
			free(h);
	}
	publish(presence('+', realm, id, allow, n_allow));
}

void relay_cluster_signal_leave(const char *realm, const char *id)
{
	if (!cluster_cmd())
		return;
	key_cmd(DEL_MINE, realm, id);
	publish(presence('-', realm, id, NULL, 0));
}

int relay_cluster_signal_send(const char *realm, const char *to, const char *frame)
{
	return publish(
	        json_pack("{s:s, s:s, s:s, s:s}", "k", "m", "r", realm, "t", to, "f", frame));
}

static void here(const char *realm, const char *id, char *const *allow, size_t n_allow, void *arg)
{
	(void)arg;
	key_cmd(KEEP_MINE, realm, id);
	publish(presence('+', realm, id, allow, n_allow));
}

void cluster_signal_tick(void)
{
	ttlmap_sweep(&S.peers, relay_mono_ms());
	if (cluster_cmd())
		relay_signal_each_local(here, NULL);
}

/* ---- hearing ---- */

static void heard_here(const char *realm, const char *id, uint64_t origin, const char *payload)
{
	struct rpeer *r = (struct rpeer *)*find(realm, id);
	int64_t now = relay_mono_ms();
	char **allow = NULL;
	size_t n_allow = 0;

	if (relay_signal_is_local(realm, id))
		return; /* the key decides which one stays: the loser is closed */
	if (sigmsg_peers_claim(payload, PEERS_MAX, &allow, &n_allow)) {
		S.bad++;
		return;
	}
	if (!r) {
		r = ttlmap_add(&S.peers, bucket(realm, id), sizeof(*r), now);
		if (!r) {
			sigmsg_ids_free(allow, n_allow);
			return;
		}
		snprintf(r->realm, sizeof(r->realm), "%s", realm);
		snprintf(r->id, sizeof(r->id), "%s", id);
		r->allow = allow;
		r->n_allow = n_allow;
		r->origin = origin;
		relay_signal_remote_presence(realm, id, allow, n_allow, "join");
		return;
	}
	sigmsg_ids_free(r->allow, r->n_allow);
	r->allow = allow;
	r->n_allow = n_allow;
	r->origin = origin;
	r->e.seen_ms = now;
}

static void heard_gone(const char *realm, const char *id, uint64_t origin)
{
	struct ttlmap_entry **p = find(realm, id);

	/* only its holder says it left (a late "-" must not hide a newer connection) */
	if (*p && ((struct rpeer *)*p)->origin == origin)
		ttlmap_remove(&S.peers, p, true);
}

int cluster_signal_message(const redisReply *payload)
{
	const char *n = NULL, *k = NULL, *realm = NULL, *id = NULL, *to = NULL, *frame = NULL;
	unsigned long long origin;
	json_t *o;
	char *e;
	int err = -1;

	if (payload->type != REDIS_REPLY_STRING)
		return -1;
	o = json_loadb(payload->str, payload->len, 0, NULL);
	if (!o || json_unpack(o, "{s:s, s:s, s:s, s?s, s?s, s?s}", "n", &n, "k", &k, "r", &realm,
	                      "p", &id, "t", &to, "f", &frame))
		goto out;
	origin = strtoull(n, &e, 16);
	if (*e || strlen(n) != 16 || strlen(realm) >= GRANT_TOPIC)
		goto out;
	err = 0;
	if (origin == cluster_nonce())
		goto out;
	S.heard++;
	if (k[0] == 'm' && to && frame)
		relay_signal_remote_frame(realm, to, frame);
	else if (k[0] == '+' && id && sigmsg_valid_id(id, strlen(id)))
		heard_here(realm, id, origin, payload->str);
	else if (k[0] == '-' && id)
		heard_gone(realm, id, origin);
	else
		err = -1;
out:
	if (err)
		S.bad++;
	json_decref(o);
	return err;
}

void relay_cluster_signal_metrics(FILE *f)
{
	fprintf(f,
	        "# HELP relay_cluster_signal_sent_total Signaling notes published to other "
	        "instances.\n# TYPE relay_cluster_signal_sent_total counter\n"
	        "relay_cluster_signal_sent_total %llu\n"
	        "# HELP relay_cluster_signal_dropped_total Signaling notes that could not cross "
	        "(link down, buffer full).\n# TYPE relay_cluster_signal_dropped_total counter\n"
	        "relay_cluster_signal_dropped_total %llu\n"
	        "# HELP relay_cluster_signal_remote_peers Signaling peers known at other instances.\n"
	        "# TYPE relay_cluster_signal_remote_peers gauge\nrelay_cluster_signal_remote_peers "
	        "%zu\n",
	        (unsigned long long)S.sent, (unsigned long long)S.dropped, S.peers.n);
}
