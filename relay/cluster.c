/*
 * relay/cluster: instances sharing state through Redis (see cluster.h and docs/scale-out.md).
 *
 * The link: two hiredis connections attached to the relay's uv loop, "cmd" for commands and
 * "sub" for subscriptions (a subscribed connection takes no other command). The link is up when
 * both answered their setup; when either fails, both are dropped and reopened after a backoff
 * (100 ms doubling to 5 s). Down, the relay serves its own readers and writers as a single
 * instance; what could not cross is counted.
 *
 * Redis names: channel relay:t:{topic} (topic messages), relay:bids (deny/allow changes),
 * relay:status (reports), relay:hosts (private channel hosts, cluster_hosts.c), relay:signal
 * (signaling peers and frames, cluster_signal.c), relay:meet (meeting participants, cluster_meet.c), relay:groups (discovery group changes, cluster_groups.c); keys relay:code:{sha256 of code} (grants, PX code_ttl),
 * relay:bookings (hash booking id -> its newest change), relay:status:{instance} (PX 3 s).
 */
#define LOG_MODULE "cluster"
#include "relay/cluster.h"
#include "relay/cluster_int.h"
#include "relay/turn.h"
#include "pkg/cluster/cluster.h"
#include "pkg/log/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#define BACKOFF_FIRST_MS   100
#define BACKOFF_MAX_MS     5000
#define CONNECT_TIMEOUT_MS 2000
#define TOPIC_BUCKETS      1024
#define MAX_REPORTS        64 /* other instances' reports */
#define REPORT_TTL_MS      3000
#define PING_TIMEOUT_MS    3000
#define REPORT_MAX         (4 * 1024 * 1024) /* past it a report leaves out its connections */
#define CH_TOPIC           "relay:t:"
#define CH_BIDS            "relay:bids"
#define CH_STATUS          "relay:status"
#define H_BOOKINGS         "relay:bookings" /* booking id -> its newest change, "deny EXP VER" */
#define SCAN_COUNT         500              /* entries per HSCAN answer at link up */
#define WRITE_CHUNK        200              /* entries per EVAL of a write-back */
#define RESYNC_MS          2000             /* a failed write: written back again after this */
#define KEEP_EXPIRED_S \
	86400 /* an expired entry stays in Redis so long: an older change \
                                    of its booking held by an instance unlinked meanwhile loses */

enum link_state { LINK_DOWN, LINK_CONNECTING, LINK_UP };

/* A topic's subscription: NONE, ON (SUBSCRIBE sent) or OFF (UNSUBSCRIBE sent, not answered). */
enum sub_state { SUB_NONE, SUB_ON, SUB_OFF };

struct topic {
	struct topic *next;
	size_t readers;
	enum sub_state st;
	char name[GRANT_TOPIC];
};

/* A code being claimed for the websocket of connection @conn_id. */
struct claim {
	uint64_t conn_id;
	char hash[CLUSTER_CODE_HASH];
	char topic[GRANT_TOPIC];
	char kind[GRANT_FIELD];
};

/* Another instance's latest report, as it came: parsed only when a /status asks for it. */
struct report {
	char instance[CLUSTER_NAME_MAX];
	char *text; /* its JSON, NUL-terminated; NULL: a free slot */
	size_t len;
	int64_t at_ms; /* monotonic */
};

struct counters {
	uint64_t published, dropped_full, dropped_down, lost, received, bad;
	uint64_t codes_issued, codes_lost, claims_ok, claims_refused;
	uint64_t reconnects, bid_writes_failed;
};

static struct {
	struct server *s;
	uv_loop_t *loop;
	bool on;
	struct cluster_url url;
	char instance[CLUSTER_NAME_MAX];
	uint64_t nonce;
	redisAsyncContext *cmd, *sub;
	bool cmd_ready, sub_ready;
	enum link_state state;
	bool down_logged, ever_up;
	char trouble[192];
	uv_timer_t timer;
	bool timer_init;
	uv_getaddrinfo_t gai; /* resolving url.host off the loop thread (hiredis would block) */
	bool resolving;
	char addr[256]; /* url.host's address, as hiredis is given it */
	unsigned attempts;
	size_t out_bytes;     /* PUBLISHed topic bytes not yet answered */
	int64_t ping_sent_ms; /* monotonic: a liveness PING awaits its answer since then; 0: none */
	struct topic *topics[TOPIC_BUCKETS];
	bool loading;      /* the link-up HSCAN of relay:bookings runs */
	size_t loaded;     /* entries it read so far */
	bool resync;       /* a write to relay:bookings failed: write every entry again */
	bool write_logged; /* that was logged (once per episode) */
	bool disk_logged;  /* a change of another instance could not be written to disk */
	struct {
		struct cluster_bid *v; /* this store's entries, being written back; NULL: none */
		size_t n, cap, next;
		bool oom;
		int64_t last_ms; /* monotonic: the last write-back's start */
	} wb;
	struct {
		struct cluster_bid *v; /* entries ended for long, read by the load running */
		size_t n, cap;
	} stale;
	struct {
		struct lws *wsi;
		char hash[CLUSTER_CODE_HASH];
		char topic[GRANT_TOPIC];
		char kind[GRANT_FIELD];
	} defer;
	struct report reports[MAX_REPORTS];
	uint8_t *scratch;
	size_t scratch_cap;
	struct counters k;
} cl;

static void link_open(void);
static void on_sub(redisAsyncContext *ac, void *r, void *priv);

/* ---- the link ---- */

static void link_fail(const char *why);

/* Reconnect after a backoff, or give up on an attempt that got no answer. */
static void timer_fired(uv_timer_t *t)
{
	(void)t;
	if (cl.state == LINK_DOWN)
		link_open();
	else if (cl.state == LINK_CONNECTING)
		link_fail("no answer within 2 s");
}

static unsigned backoff_ms(void)
{
	unsigned ms = BACKOFF_FIRST_MS;

	for (unsigned i = 0; i < cl.attempts && ms < BACKOFF_MAX_MS; i++)
		ms *= 2;
	cl.attempts++;
	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

/* Drop both connections (their pending callbacks run with no reply) and retry later. */
static void link_fail(const char *why)
{
	redisAsyncContext *a = cl.cmd, *b = cl.sub;
	bool was_up = cl.state == LINK_UP;

	cl.cmd = cl.sub = NULL; /* first: the callbacks run below must see a stale context */
	cl.cmd_ready = cl.sub_ready = false;
	cl.state = LINK_DOWN;
	cl.loading = false;
	snprintf(cl.trouble, sizeof(cl.trouble), "redis unreachable: %s", why);
	for (size_t i = 0; i < TOPIC_BUCKETS; i++)
		for (struct topic *t = cl.topics[i]; t; t = t->next)
			t->st = SUB_NONE;
	if (was_up || !cl.down_logged)
		log_warn("%s; serving this instance's readers only, reconnecting", cl.trouble);
	cl.down_logged = true;
	if (a)
		redisAsyncFree(a);
	if (b)
		redisAsyncFree(b);
	if (cl.s && !cl.s->stopping)
		uv_timer_start(&cl.timer, timer_fired, backoff_ms(), 0);
}

static bool is_current(const redisAsyncContext *ac)
{
	return ac && (ac == cl.cmd || ac == cl.sub);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	if (status == REDIS_OK || !is_current(ac))
		return;
	/* hiredis frees @ac after this returns */
	if (ac == cl.cmd)
		cl.cmd = NULL;
	else
		cl.sub = NULL;
	link_fail(ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	if (!is_current(ac))
		return;
	if (ac == cl.cmd)
		cl.cmd = NULL;
	else
		cl.sub = NULL;
	link_fail(status == REDIS_OK ? "connection closed" : ac->errstr);
}

static void resubscribe(void);
static void load_lists(void);

static void maybe_up(void)
{
	if (cl.state != LINK_CONNECTING || !cl.cmd_ready || !cl.sub_ready)
		return;
	uv_timer_stop(&cl.timer);
	if (cl.ever_up)
		cl.k.reconnects++;
	cl.ever_up = true;
	cl.state = LINK_UP;
	cl.attempts = 0;
	cl.ping_sent_ms = 0;
	cl.trouble[0] = '\0';
	cl.down_logged = false;
	log_notice("redis at %s:%d up: instance '%s' shares topics, codes and the deny list",
	           cl.url.host, cl.url.port, cl.instance);
	load_lists(); /* then writes this store's entries back */
	cluster_groups_load();
	resubscribe();
}

/* The answer to a setup command (AUTH, SELECT, PING): an error ends the attempt. */
static void on_setup(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	if (!is_current(ac))
		return;
	if (!reply || reply->type == REDIS_REPLY_ERROR) {
		char why[160];

		snprintf(why, sizeof(why), "%s", reply ? reply->str : "no answer");
		link_fail(why);
		return;
	}
	if (priv) { /* the last one: PING */
		cl.cmd_ready = true;
		maybe_up();
	}
}

static redisAsyncContext *open_ctx(char why[160])
{
	redisAsyncContext *ac = redisAsyncConnect(cl.addr, cl.url.port);

	if (!ac) {
		snprintf(why, 160, "out of memory");
		return NULL;
	}
	if (ac->err || redisLibuvAttach(ac, cl.loop) != REDIS_OK) {
		snprintf(why, 160, "%s", ac->err ? ac->errstr : "cannot attach to the loop");
		redisAsyncFree(ac);
		return NULL;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	if (cl.url.password[0] && cl.url.user[0])
		redisAsyncCommand(ac, on_setup, NULL, "AUTH %s %s", cl.url.user, cl.url.password);
	else if (cl.url.password[0])
		redisAsyncCommand(ac, on_setup, NULL, "AUTH %s", cl.url.password);
	return ac;
}

static void link_connect(void)
{
	char why[160];

	cl.cmd = open_ctx(why);
	cl.sub = cl.cmd ? open_ctx(why) : NULL;
	if (!cl.cmd || !cl.sub) {
		link_fail(why);
		return;
	}
	if (cl.url.db)
		redisAsyncCommand(cl.cmd, on_setup, NULL, "SELECT %d", cl.url.db);
	redisAsyncCommand(cl.cmd, on_setup, &cl, "PING");
	/* Channels are not per database: the control channels are named the same everywhere. */
	redisAsyncCommand(cl.sub, on_sub, NULL, "SUBSCRIBE %s %s %s %s %s %s", CH_BIDS, CH_GROUPS,
	                  CH_HOSTS, CH_SIGNAL, CH_MEET, CH_STATUS);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	(void)req;
	cl.resolving = false;
	if (cl.on && cl.state == LINK_CONNECTING) { /* else stopped, or given up on meanwhile */
		if (status || !res)
			link_fail(uv_strerror(status ? status : UV_EAI_NONAME));
		else if (uv_ip_name(res->ai_addr, cl.addr, sizeof(cl.addr)))
			link_fail("cannot format the address of the Redis host");
		else
			link_connect();
	}
	uv_freeaddrinfo(res);
}

/*
 * An attempt: both connections, within CONNECT_TIMEOUT_MS. A host name is resolved with
 * uv_getaddrinfo() first (libuv's thread pool): hiredis would resolve it with a blocking
 * getaddrinfo() on the loop, every reconnection, stalling every websocket while DNS answers.
 */
static void link_open(void)
{
	struct in6_addr a6;
	struct in_addr a4;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};

	cl.state = LINK_CONNECTING;
	uv_timer_start(&cl.timer, timer_fired, CONNECT_TIMEOUT_MS, 0);
	if (inet_pton(AF_INET, cl.url.host, &a4) == 1 ||
	    inet_pton(AF_INET6, cl.url.host, &a6) == 1) {
		snprintf(cl.addr, sizeof(cl.addr), "%s", cl.url.host);
		link_connect();
		return;
	}
	if (cl.resolving)
		return; /* the last attempt's lookup still runs: this one waits for it */
	if (uv_getaddrinfo(cl.loop, &cl.gai, on_resolved, cl.url.host, NULL, &hints)) {
		link_fail("cannot start resolving the Redis host");
		return;
	}
	cl.resolving = true;
}

/* ---- topics ---- */

static unsigned topic_hash(const char *t, size_t n)
{
	unsigned h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)t[i]) * 16777619u;
	return h % TOPIC_BUCKETS;
}

static struct topic **topic_slot(const char *name, size_t n)
{
	struct topic **p = &cl.topics[topic_hash(name, n)];

	for (; *p; p = &(*p)->next)
		if (strlen((*p)->name) == n && memcmp((*p)->name, name, n) == 0)
			break;
	return p;
}

static void subscribe(struct topic *t)
{
	if (cl.state != LINK_UP || t->st != SUB_NONE)
		return;
	redisAsyncCommand(cl.sub, on_sub, NULL, "SUBSCRIBE " CH_TOPIC "%s", t->name);
	t->st = SUB_ON;
}

static void resubscribe(void)
{
	for (size_t i = 0; i < TOPIC_BUCKETS; i++)
		for (struct topic *t = cl.topics[i]; t; t = t->next)
			if (t->readers)
				subscribe(t);
}

static void topic_remove(struct topic **p)
{
	struct topic *t = *p;

	*p = t->next;
	free(t);
}

void relay_cluster_reader(const char *topic, int delta)
{
	struct topic **p, *t;

	if (!cl.on || strcmp(topic, STATS_TOPIC) == 0)
		return;
	p = topic_slot(topic, strlen(topic));
	t = *p;
	if (!t && delta > 0) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			log_warn("out of memory: topic '%s' stays local", topic);
			return;
		}
		snprintf(t->name, sizeof(t->name), "%s", topic);
		*p = t;
	}
	if (!t)
		return;
	if (delta > 0) {
		t->readers++;
		subscribe(t);
	} else if (t->readers) {
		t->readers--; /* unsubscribed at the next tick: a reader coming back soon costs nothing */
	}
}

/* Topics left without readers: unsubscribe, and forget those no longer subscribed. */
static void unsubscribe_idle(void)
{
	for (size_t i = 0; i < TOPIC_BUCKETS; i++) {
		struct topic **p = &cl.topics[i];

		while (*p) {
			struct topic *t = *p;

			if (t->readers == 0 && t->st == SUB_ON && cl.state == LINK_UP) {
				redisAsyncCommand(cl.sub, on_sub, NULL,
				                  "UNSUBSCRIBE " CH_TOPIC "%s", t->name);
				t->st = SUB_OFF;
			}
			if (t->readers == 0 && t->st == SUB_NONE)
				topic_remove(p);
			else
				p = &t->next;
		}
	}
}

/* UNSUBSCRIBE answered: subscribe again if a reader came meanwhile (hiredis forgets the
 * channel's callback on this answer, so a SUBSCRIBE sent before it would have been lost). */
static void unsubscribed(const char *name, size_t n)
{
	struct topic **p = topic_slot(name, n), *t = *p;

	if (!t)
		return;
	t->st = SUB_NONE;
	if (t->readers)
		subscribe(t);
	else
		topic_remove(p);
}

static uint8_t *scratch(size_t n)
{
	if (n > cl.scratch_cap) {
		uint8_t *p = realloc(cl.scratch, n);

		if (!p)
			return NULL;
		cl.scratch = p;
		cl.scratch_cap = n;
	}
	return cl.scratch;
}

static void on_published(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	size_t n = (size_t)(uintptr_t)priv;

	(void)ac;
	cl.out_bytes -= n < cl.out_bytes ? n : cl.out_bytes;
	if (!reply || reply->type == REDIS_REPLY_ERROR)
		cl.k.lost++;
	else
		cl.k.published++;
}

void relay_cluster_publish(const char *topic, const struct hub_msg *m)
{
	char channel[sizeof(CH_TOPIC) + GRANT_TOPIC];
	const char *argv[3];
	size_t argvlen[3], cost;
	uint8_t *p;

	if (!cl.on || strcmp(topic, STATS_TOPIC) == 0)
		return;
	if (cl.state != LINK_UP) {
		cl.k.dropped_down++;
		return;
	}
	cost = m->len + CLUSTER_HDR;
	if (cl.out_bytes + cost > (size_t)cl.s->o->redis_buffer || !(p = scratch(cost))) {
		cl.k.dropped_full++;
		return;
	}
	cluster_frame_header(p, cl.nonce, m->binary);
	if (m->len)
		memcpy(p + CLUSTER_HDR, m->data, m->len);
	argv[0] = "PUBLISH";
	argvlen[0] = 7;
	argvlen[1] = (size_t)snprintf(channel, sizeof(channel), CH_TOPIC "%s", topic);
	argv[1] = channel;
	argv[2] = (const char *)p;
	argvlen[2] = cost;
	/* hiredis copies the command: the scratch buffer is free again on return */
	if (redisAsyncCommandArgv(cl.cmd, on_published, (void *)(uintptr_t)cost, 3, argv,
	                          argvlen) != REDIS_OK) {
		cl.k.lost++;
		return;
	}
	cl.out_bytes += cost;
}

/* A message of another instance on @topic (@n bytes): to every reader here. */
static void topic_message(const char *topic, size_t n, const redisReply *payload)
{
	char name[GRANT_TOPIC];
	struct cluster_frame f;
	struct hub_msg *m;

	if (n >= sizeof(name) || payload->type != REDIS_REPLY_STRING ||
	    cluster_frame_parse((const uint8_t *)payload->str, payload->len, &f)) {
		cl.k.bad++;
		return;
	}
	if (f.origin == cl.nonce)
		return; /* ours: our readers had it without Redis */
	memcpy(name, topic, n);
	name[n] = '\0';
	m = hub_msg_new(f.len, LWS_PRE);
	if (!m) {
		cl.k.bad++;
		return;
	}
	if (f.len)
		memcpy(m->data, f.data, f.len);
	m->binary = f.binary;
	m->t_in_ns = relay_mono_ns();
	cl.k.received++;
	hub_publish_system(cl.s->hub, name, m);
}

/* ---- the deny list ----
 *
 * Every change carries a version (store_newer(): the wall-clock ms at the instance that made it)
 * and is applied, here, in Redis and at every other instance, only if newer than what is held for
 * its booking: the last change made wins wherever, whatever order notes and lists arrive in.
 * Redis's hash relay:bookings holds the newest change per booking ("deny EXP VER"), written by a
 * Lua script that compares versions and PUBLISHes on relay:bids only what it set. At each link
 * up an instance reads the hash (HSCAN, in chunks), then writes every live entry of its own store
 * back through the same script, so a change made while unlinked, or lost by Redis, reaches
 * everyone: the state database is the queue. A write that is not answered OK marks a resync:
 * the write-back runs again (every RESYNC_MS while the link is up, and at the next link up).
 */

/* KEYS[1] the hash; ARGV[1] the writer's nonce, then pairs (booking id, "deny EXP VER"). */
static const char set_newer_lua[] =
        "local function parse(v)\n"
        "  local d, e, ver = string.match(v, '^(%a+) (%d+) (%d+)$')\n"
        "  if not d then return nil end\n"
        "  return tonumber(ver), d == 'deny' and 1 or 0, tonumber(e)\n"
        "end\n"
        "local n = 0\n"
        "for i = 2, #ARGV - 1, 2 do\n"
        "  local bid, val = ARGV[i], ARGV[i + 1]\n"
        "  local cur = redis.call('HGET', KEYS[1], bid)\n"
        "  local newer = true\n"
        "  if cur then\n"
        "    local cv, cd, ce = parse(cur)\n"
        "    local v, d, e = parse(val)\n"
        "    if cv and v then\n"
        "      newer = v > cv or (v == cv and (d > cd or (d == cd and e > ce)))\n"
        "    end\n"
        "  end\n"
        "  if newer then\n"
        "    redis.call('HSET', KEYS[1], bid, val)\n"
        "    redis.call('PUBLISH', '" CH_BIDS "', ARGV[1] .. ' ' .. val .. ' ' .. bid)\n"
        "    n = n + 1\n"
        "  end\n"
        "end\n"
        "return n\n";

/* KEYS[1] the hash; pairs (booking id, value): each deleted only if it still holds that value. */
static const char del_same_lua[] = "local n = 0\n"
                                   "for i = 1, #ARGV - 1, 2 do\n"
                                   "  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then\n"
                                   "    n = n + redis.call('HDEL', KEYS[1], ARGV[i])\n"
                                   "  end\n"
                                   "end\n"
                                   "return n\n";

/* Send @script with the pairs (@ids[i], @vals[i]) of @n entries; 0 or -EIO. */
static int eval_pairs(const char *script, bool with_nonce, const char *const *ids,
                      const char *const *vals, size_t n, redisCallbackFn *cb, void *priv)
{
	size_t argc = 0, max = 5 + 2 * n;
	const char **argv = malloc(max * sizeof(*argv));
	size_t *lens = malloc(max * sizeof(*lens));
	char nonce[17];
	int ret = -EIO;

	if (!argv || !lens)
		goto out;
#define ARG(p) (argv[argc] = (p), lens[argc] = strlen(argv[argc]), argc++)
	ARG("EVAL");
	ARG(script);
	ARG("1");
	ARG(H_BOOKINGS);
	if (with_nonce) {
		snprintf(nonce, sizeof(nonce), "%016llx", (unsigned long long)cl.nonce);
		ARG(nonce);
	}
	for (size_t i = 0; i < n; i++) {
		ARG(ids[i]);
		ARG(vals[i]);
	}
#undef ARG
	if (redisAsyncCommandArgv(cl.cmd, cb, priv, (int)argc, argv, lens) == REDIS_OK)
		ret = 0;
out:
	free(argv);
	free(lens);
	return ret;
}

/* Send set_newer_lua for @n changes. */
static int write_changes(const struct cluster_bid *b, size_t n, redisCallbackFn *cb, void *priv)
{
	const char **ids = calloc(n ? n : 1, sizeof(*ids)),
	           **vals = calloc(n ? n : 1, sizeof(*vals));
	char(*text)[64] = calloc(n ? n : 1, sizeof(*text));
	int ret = -ENOMEM;

	if (ids && vals && text) {
		for (size_t i = 0; i < n; i++) {
			cluster_bid_value(&b[i], text[i], sizeof(text[i]));
			ids[i] = b[i].bid;
			vals[i] = text[i];
		}
		ret = eval_pairs(set_newer_lua, true, ids, vals, n, cb, priv);
	}
	free(ids);
	free(vals);
	free(text);
	return ret;
}

/* A write to relay:bookings was not answered OK: write everything again later. */
static void write_failed(const redisReply *reply)
{
	cl.resync = true;
	cl.k.bid_writes_failed++;
	if (cl.write_logged)
		return;
	cl.write_logged = true;
	log_warn("a deny/allow change could not be written to redis (%s): every live entry will be "
	         "written again",
	         reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no answer");
}

static bool reply_ok(const redisReply *reply)
{
	return reply && reply->type != REDIS_REPLY_ERROR;
}

/* A change made here (one at a time, as /bids makes them). */
static void on_change_written(redisAsyncContext *ac, void *r, void *priv)
{
	struct cluster_bid *b = priv;

	if (!reply_ok(r)) {
		write_failed(r);
		/* Redis refused it (full?): still tell the live instances; PUBLISH takes no memory,
		 * and they apply it only if newer, as always */
		if (r && is_current(ac)) {
			char msg[32 + STORE_BID_MAX + 64];
			int n = snprintf(msg, sizeof(msg), "%016llx ",
			                 (unsigned long long)cl.nonce);
			int m = cluster_bid_format(b, msg + n, sizeof(msg) - (size_t)n);

			if (m > 0)
				redisAsyncCommand(ac, NULL, NULL, "PUBLISH %s %b", CH_BIDS, msg,
				                  (size_t)(n + m));
		}
	}
	free(b);
}

void relay_cluster_bid(bool deny, const char *bid, int64_t exp, int64_t ver)
{
	struct cluster_bid *b;

	if (!cl.on)
		return;
	if (cl.state != LINK_UP) {
		cl.resync = true; /* kept in the state database: written back at link up */
		return;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		write_failed(NULL);
		return;
	}
	b->deny = deny;
	b->exp = exp;
	b->ver = ver;
	snprintf(b->bid, sizeof(b->bid), "%s", bid);
	if (write_changes(b, 1, on_change_written, b)) {
		free(b);
		write_failed(NULL);
	}
}

/* Bookings whose TURN allocations end: collected over a chunk of the list, ended in one call. */
struct ends {
	const char **bids;
	size_t n, cap;
};

static void ends_add(struct ends *e, const char *bid)
{
	const char **p;
	char *copy;

	if (!e) {
		relay_turn_end_booking(bid);
		return;
	}
	if (e->n == e->cap) {
		p = realloc(e->bids, (e->cap ? e->cap * 2 : 64) * sizeof(*p));
		if (!p) {
			relay_turn_end_booking(bid);
			return;
		}
		e->bids = p;
		e->cap = e->cap ? e->cap * 2 : 64;
	}
	copy = strdup(bid);
	if (!copy) {
		relay_turn_end_booking(bid);
		return;
	}
	e->bids[e->n++] = copy;
}

static void ends_run(struct ends *e)
{
	if (e->n)
		relay_turn_end_bookings(e->bids, e->n);
	for (size_t i = 0; i < e->n; i++)
		free((char *)e->bids[i]);
	free(e->bids);
	memset(e, 0, sizeof(*e));
}

/*
 * A change made at another instance (a note, or an entry of the list at link up): applied if
 * newer than what this store holds. A deny is applied in memory even when the disk write fails
 * (refuse rather than admit). @e: where TURN ends go (NULL: now).
 */
static void merge_change(const struct cluster_bid *b, bool from_list, struct ends *e)
{
	struct server *s = cl.s;
	int64_t now = relay_now_ms() / 1000;
	bool was_denied = store_is_denied(s->store, b->bid, now);
	int ret = store_merge(s->store, b->bid, b->deny, b->exp, b->ver, true);
	size_t closed;

	if (ret == 0)
		return; /* not newer than what is here */
	if (ret == -EIO && !cl.disk_logged) {
		cl.disk_logged = true;
		log_err("state write failed: changes of other instances are applied in memory only "
		        "(booking '%s' first)",
		        b->bid);
	} else if (ret < 0 && ret != -EIO) {
		log_err("cannot %s booking '%s' here: %s", b->deny ? "deny" : "allow", b->bid,
		        strerror(-ret));
		return;
	} else if (ret > 0) {
		cl.disk_logged = false;
	}
	if (!b->deny || b->exp < now) {
		if (!b->deny && (!from_list || was_denied))
			log_notice("booking '%s' allowed until %lld (by another instance)", b->bid,
			           (long long)b->exp);
		return;
	}
	codes_drop_booking(s->codes, b->bid);
	closed = relay_close_booking(b->bid);
	/* TURN allocations stay local, but a deny ends them: a round trip to the TURN thread,
	 * so not for a booking denied here already (its allocations ended then) */
	if (!was_denied)
		ends_add(e, b->bid);
	if (!from_list || closed) /* not one line per entry of a list of thousands */
		log_notice(
		        "booking '%s' denied until %lld (by another instance), %zu connection(s) "
		        "closed",
		        b->bid, (long long)b->exp, closed);
}

static void bids_message(const redisReply *payload)
{
	struct cluster_bid b;
	char *end;
	unsigned long long origin;

	if (payload->type != REDIS_REPLY_STRING || payload->len < 18 || payload->str[16] != ' ') {
		cl.k.bad++;
		return;
	}
	origin = strtoull(payload->str, &end, 16);
	if (end != payload->str + 16 ||
	    cluster_bid_parse(payload->str + 17, payload->len - 17, &b)) {
		cl.k.bad++;
		return;
	}
	if (origin != cl.nonce)
		merge_change(&b, false, NULL);
}

/* ---- write-back: every live entry of this store, in chunks, one answered before the next ---- */

static void writeback_next(void);

static void on_chunk_written(redisAsyncContext *ac, void *r, void *priv)
{
	(void)priv;
	if (!reply_ok(r))
		write_failed(r);
	if (!is_current(ac) || !cl.wb.v)
		return; /* the link dropped: the next link up starts over */
	writeback_next();
}

static void writeback_end(void)
{
	free(cl.wb.v);
	cl.wb.v = NULL;
	cl.wb.n = cl.wb.next = 0;
}

static void writeback_next(void)
{
	size_t n = cl.wb.n - cl.wb.next;

	if (n == 0) {
		log_debug("%zu deny/allow entries written back to redis", cl.wb.n);
		writeback_end();
		if (!cl.resync && cl.write_logged) {
			cl.write_logged = false;
			log_notice("deny/allow list written to redis again");
		}
		return;
	}
	if (n > WRITE_CHUNK)
		n = WRITE_CHUNK;
	if (write_changes(cl.wb.v + cl.wb.next, n, on_chunk_written, NULL)) {
		write_failed(NULL);
		writeback_end();
		return;
	}
	cl.wb.next += n;
}

static void collect_entry(const char *bid, bool deny, int64_t exp, int64_t ver, void *arg)
{
	struct cluster_bid *b;

	(void)arg;
	if (cl.wb.n == cl.wb.cap) {
		size_t cap = cl.wb.cap ? cl.wb.cap * 2 : 256;
		struct cluster_bid *p = realloc(cl.wb.v, cap * sizeof(*p));

		if (!p) {
			cl.wb.oom = true;
			return;
		}
		cl.wb.v = p;
		cl.wb.cap = cap;
	}
	b = &cl.wb.v[cl.wb.n++];
	b->deny = deny;
	b->exp = exp;
	b->ver = ver;
	snprintf(b->bid, sizeof(b->bid), "%s", bid);
}

/* Write every live deny and allow held here to Redis (newer-only). */
static void writeback_start(void)
{
	if (cl.wb.v || cl.loading || cl.state != LINK_UP)
		return;
	cl.resync = false;
	cl.wb.n = cl.wb.cap = cl.wb.next = 0;
	cl.wb.oom = false;
	cl.wb.last_ms = relay_mono_ms();
	store_each(cl.s->store, relay_now_ms() / 1000, collect_entry, NULL);
	if (cl.wb.oom) {
		writeback_end();
		write_failed(NULL);
		return;
	}
	if (!cl.wb.v) /* nothing here: nothing to write */
		cl.wb.v = malloc(sizeof(*cl.wb.v));
	if (cl.wb.v)
		writeback_next();
	else
		write_failed(NULL);
}

/* ---- the link-up load: HSCAN relay:bookings, a chunk per answer ---- */

static void scan_next(const char *cursor);

/* An entry ended for long, kept to be deleted once the whole load is read. */
static void stale_add(const struct cluster_bid *b)
{
	if (cl.stale.n == cl.stale.cap) {
		size_t cap = cl.stale.cap ? cl.stale.cap * 2 : 64;
		struct cluster_bid *p = realloc(cl.stale.v, cap * sizeof(*p));

		if (!p)
			return; /* deleted at a later load */
		cl.stale.v = p;
		cl.stale.cap = cap;
	}
	cl.stale.v[cl.stale.n++] = *b;
}

/*
 * Entries ended for long are deleted, each only if it still holds the value read
 * (compare-and-delete): a change of that booking written since, by any instance, stays.
 */
static void delete_stale(void)
{
	for (size_t i = 0; i < cl.stale.n; i += WRITE_CHUNK) {
		size_t n = cl.stale.n - i < WRITE_CHUNK ? cl.stale.n - i : WRITE_CHUNK;
		const char *ids[WRITE_CHUNK], *vals[WRITE_CHUNK];
		char text[WRITE_CHUNK][64];

		for (size_t j = 0; j < n; j++) {
			cluster_bid_value(&cl.stale.v[i + j], text[j], sizeof(text[j]));
			ids[j] = cl.stale.v[i + j].bid;
			vals[j] = text[j];
		}
		if (eval_pairs(del_same_lua, false, ids, vals, n, NULL, NULL)) {
			log_warn("cannot remove ended entries of %s", H_BOOKINGS);
			break;
		}
	}
	free(cl.stale.v);
	memset(&cl.stale, 0, sizeof(cl.stale));
}

static void load_chunk(const redisReply *kv)
{
	int64_t now = relay_now_ms() / 1000;
	struct ends e = {0};
	bool batch;

	/* One disk sync for the chunk, not one per booking. */
	batch = store_batch_begin(cl.s->store) == 0;
	for (size_t i = 0; i + 1 < kv->elements; i += 2) {
		const redisReply *k = kv->element[i], *v = kv->element[i + 1];
		struct cluster_bid b = {0};

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
		    !cluster_bid_id_ok(k->str, k->len) ||
		    cluster_bid_parse_value(v->str, v->len, &b)) {
			cl.k.bad++; /* what /bids would refuse is not applied */
			continue;
		}
		memcpy(b.bid, k->str, k->len);
		if (b.exp < now - KEEP_EXPIRED_S)
			stale_add(&b);
		else
			merge_change(&b, true, &e);
	}
	if (batch && store_batch_end(cl.s->store) && !cl.disk_logged) {
		cl.disk_logged = true;
		log_err("cannot write the deny/allow list from redis to the state database: applied "
		        "in memory only");
	}
	ends_run(&e);
}

static void on_scan(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	char cursor[32];

	(void)priv;
	if (!is_current(ac))
		return;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING || reply->element[0]->len >= 32 ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY) {
		char why[160];

		snprintf(why, sizeof(why), "cannot read %s: %s", H_BOOKINGS,
		         reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "bad answer");
		cl.loading = false;
		link_fail(why); /* the whole load again at the next link up */
		return;
	}
	memcpy(cursor, reply->element[0]->str, reply->element[0]->len);
	cursor[reply->element[0]->len] = '\0';
	load_chunk(reply->element[1]);
	cl.loaded += reply->element[1]->elements / 2;
	if (strcmp(cursor, "0") != 0) {
		scan_next(cursor); /* the next chunk at a later turn of the loop */
		return;
	}
	cl.loading = false;
	delete_stale();
	log_info("deny/allow list loaded from redis (%zu entries); writing this instance's back",
	         cl.loaded);
	writeback_start();
}

static void scan_next(const char *cursor)
{
	redisAsyncCommand(cl.cmd, on_scan, NULL, "HSCAN %s %s COUNT %d", H_BOOKINGS, cursor,
	                  SCAN_COUNT);
}

static void load_lists(void)
{
	writeback_end(); /* one left from before the link dropped: this one starts over */
	cl.loading = true;
	cl.loaded = 0;
	cl.stale.n = 0;
	scan_next("0");
}

/* While the link is up: a write that failed is retried by a whole write-back. */
static void resync_tick(void)
{
	if (cl.state == LINK_UP && cl.resync && !cl.loading && !cl.wb.v &&
	    relay_mono_ms() - cl.wb.last_ms >= RESYNC_MS)
		writeback_start();
}

/* ---- reports ---- */

static json_t *own_report(void)
{
	json_t *st = relay_status_json();

	return json_pack("{s:s, s:I, s:s, s:I, s:I, s:o}", "instance", cl.instance, "time",
	                 (json_int_t)(relay_now_ms() / 1000), "redis",
	                 !cl.on                ? "off"
	                 : cl.state == LINK_UP ? "up"
	                                       : "down",
	                 "connections", (json_int_t)cl.s->nconns, "topics",
	                 (json_int_t)hub_topic_count(cl.s->hub), "status", st ? st : json_array());
}

static void publish_report(void)
{
	json_t *o = own_report();
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (text && strlen(text) > REPORT_MAX) {
		free(text);
		json_object_set_new(o, "status", json_string("too large: ask this instance"));
		text = json_dumps(o, JSON_COMPACT);
	}
	json_decref(o);
	if (!text)
		return;
	redisAsyncCommand(cl.cmd, NULL, NULL, "SET relay:status:%s %s PX %d", cl.instance, text,
	                  REPORT_TTL_MS);
	/* the name first (cluster_report_split): a receiver need not parse megabytes to file it */
	redisAsyncCommand(cl.cmd, NULL, NULL, "PUBLISH %s %s\n%s", CH_STATUS, cl.instance, text);
	free(text);
}

/* The slot for @name's report: its own, else a free or stale one, else NULL. */
static struct report *report_slot(const char *name)
{
	for (size_t i = 0; i < MAX_REPORTS; i++)
		if (cl.reports[i].text && strcmp(cl.reports[i].instance, name) == 0)
			return &cl.reports[i];
	for (size_t i = 0; i < MAX_REPORTS; i++)
		if (!cl.reports[i].text || relay_mono_ms() - cl.reports[i].at_ms > REPORT_TTL_MS)
			return &cl.reports[i];
	return NULL;
}

/*
 * Kept as text: each instance sends one a second, up to REPORT_MAX bytes, and parsing every one
 * on the loop would cost every instance tens of milliseconds a second per other instance.
 */
static void status_message(const redisReply *payload)
{
	char name[CLUSTER_NAME_MAX];
	const char *json;
	size_t len;
	struct report *slot;
	char *copy;

	if (cluster_report_split(payload->str, payload->len, name, &json, &len)) {
		cl.k.bad++;
		return;
	}
	if (strcmp(name, cl.instance) == 0 || !(slot = report_slot(name)))
		return;
	copy = malloc(len + 1);
	if (!copy)
		return;
	memcpy(copy, json, len);
	copy[len] = '\0';
	free(slot->text);
	snprintf(slot->instance, sizeof(slot->instance), "%s", name);
	slot->text = copy;
	slot->len = len;
	slot->at_ms = relay_mono_ms();
}

json_t *relay_cluster_status(void)
{
	json_t *list = json_array();

	if (cl.s) /* without --redis: this instance alone */
		json_array_append_new(list, own_report());
	for (size_t i = 0; cl.on && i < MAX_REPORTS; i++) {
		const struct report *r = &cl.reports[i];
		json_t *o;

		if (!r->text || relay_mono_ms() - r->at_ms > REPORT_TTL_MS)
			continue;
		o = json_loadb(r->text, r->len, 0, NULL);
		if (o)
			json_array_append_new(list, o);
	}
	return json_pack("{s:s, s:o}", "scope", "cluster", "instances", list);
}

/* ---- the subscribed connection ---- */

static bool str_is(const redisReply *r, const char *s)
{
	return r->type == REDIS_REPLY_STRING && r->len == strlen(s) &&
	       memcmp(r->str, s, r->len) == 0;
}

static void on_sub(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	const redisReply *kind, *ch;

	(void)priv;
	if (!reply || !is_current(ac) || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3)
		return;
	kind = reply->element[0];
	ch = reply->element[1];
	if (ch->type != REDIS_REPLY_STRING)
		return;
	if (str_is(kind, "message")) {
		if (ch->len > sizeof(CH_TOPIC) - 1 &&
		    memcmp(ch->str, CH_TOPIC, sizeof(CH_TOPIC) - 1) == 0)
			topic_message(ch->str + sizeof(CH_TOPIC) - 1,
			              ch->len - (sizeof(CH_TOPIC) - 1), reply->element[2]);
		else if (str_is(ch, CH_BIDS))
			bids_message(reply->element[2]);
		else if (str_is(ch, CH_GROUPS))
			cluster_groups_message(reply->element[2]);
		else if (str_is(ch, CH_HOSTS) && cluster_hosts_message(reply->element[2]))
			cl.k.bad++;
		else if (str_is(ch, CH_SIGNAL) && cluster_signal_message(reply->element[2]))
			cl.k.bad++;
		else if (str_is(ch, CH_MEET) && cluster_meet_message(reply->element[2]))
			cl.k.bad++;
		else if (str_is(ch, CH_STATUS) && reply->element[2]->type == REDIS_REPLY_STRING)
			status_message(reply->element[2]);
	} else if (str_is(kind, "subscribe") && str_is(ch, CH_STATUS)) {
		cl.sub_ready = true; /* the last control channel: the link can carry everything */
		maybe_up();
	} else if (str_is(kind, "unsubscribe") && ch->len > sizeof(CH_TOPIC) - 1) {
		unsubscribed(ch->str + sizeof(CH_TOPIC) - 1, ch->len - (sizeof(CH_TOPIC) - 1));
	}
}

/* ---- codes ---- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void on_code_set(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;

	(void)ac, (void)priv;
	if (!reply || reply->type == REDIS_REPLY_ERROR || reply->type == REDIS_REPLY_NIL) {
		cl.k.codes_lost++;
		log_warn("a code could not be stored in redis: %s",
		         reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no answer");
	}
}

int relay_cluster_issue(const struct grant *g, char code[CODE_LEN + 1])
{
	uint8_t rnd[CODE_LEN * 3 / 4];
	char hash[CLUSTER_CODE_HASH], *json;

	if (!cl.on || cl.state != LINK_UP)
		return -ENOTCONN;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	for (size_t i = 0, o = 0; i < sizeof(rnd); i += 3) {
		uint32_t v = (uint32_t)rnd[i] << 16 | (uint32_t)rnd[i + 1] << 8 | rnd[i + 2];

		for (int j = 3; j >= 0; j--)
			code[o++] = b64url[(v >> (6 * j)) & 63];
	}
	code[CODE_LEN] = '\0';
	OPENSSL_cleanse(rnd, sizeof(rnd));
	json = cluster_grant_dump(g);
	if (!json || cluster_code_hash(code, CODE_LEN, hash)) {
		free(json);
		OPENSSL_cleanse(code, CODE_LEN + 1);
		return -ENOMEM;
	}
	/* NX: a code is never overwritten (2^-192 apart); PX: it dies on its own, everywhere. */
	redisAsyncCommand(cl.cmd, on_code_set, NULL, "SET relay:code:%s %s PX %lld NX", hash, json,
	                  (long long)cl.s->o->code_ttl);
	OPENSSL_cleanse(json, strlen(json));
	free(json);
	cl.k.codes_issued++;
	return 0;
}

int relay_cluster_defer(struct lws *wsi, const char *code, size_t len, const char *topic,
                        const char *kind)
{
	if (!cl.on || cl.state != LINK_UP || len != CODE_LEN || strspn(code, b64url) < len ||
	    strlen(topic) >= sizeof(cl.defer.topic))
		return -ENOENT;
	if (cluster_code_hash(code, len, cl.defer.hash))
		return -ENOENT;
	cl.defer.wsi = wsi;
	snprintf(cl.defer.topic, sizeof(cl.defer.topic), "%s", topic);
	snprintf(cl.defer.kind, sizeof(cl.defer.kind), "%s", kind);
	return 0;
}

static struct conn *conn_by_id(uint64_t id)
{
	for (struct conn *c = cl.s->conns; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

/* Why the grant claimed for @k cannot open @k's websocket (NULL: it can). */
static const char *claim_refusal(const struct claim *k, const struct grant *g,
                                 enum redeem_result *res)
{
	int64_t now = relay_now_ms() / 1000;
	const struct relay_kind *kind;
	const char *why;

	*res = REDEEM_OTHER_TOPIC;
	if (strcmp(g->topic, k->topic) != 0 || strcmp(g->prefix, k->kind) != 0)
		return "code was issued for another topic";
	*res = REDEEM_UNKNOWN;
	if (g->exp < now)
		return "token expired";
	*res = REDEEM_DENIED;
	if (g->booking_id[0] && store_is_denied(cl.s->store, g->booking_id, now))
		return "booking denied";
	/* The kind's own check at redemption (a /connect client: is its host here?) */
	kind = relay_kind_of(g->prefix, strlen(g->prefix));
	*res = REDEEM_UNKNOWN;
	if (kind && kind->admit && kind->admit(g, &why))
		return why;
	*res = REDEEM_OK;
	return NULL;
}

static void on_claimed(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct claim *k = priv;
	struct conn *c = conn_by_id(k->conn_id);
	enum redeem_result res = REDEEM_UNKNOWN;
	const char *why = "code unknown, used or expired";
	struct grant g;

	(void)ac;
	if (!c || c->closing) {
		OPENSSL_cleanse(k, sizeof(*k));
		free(k);
		return;
	}
	if (!reply)
		why = "redis unreachable: try again";
	else if (reply->type == REDIS_REPLY_STRING &&
	         !cluster_grant_load(reply->str, reply->len, &g))
		why = claim_refusal(k, &g, &res);
	cl.s->m.redeem[res]++;
	if (why) {
		cl.k.claims_refused++;
		logt_info(c->tag, "websocket refused after the upgrade: %s", why);
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
	} else {
		cl.k.claims_ok++;
		c->grant = g;
		c->rx_paused = false;
		lws_rx_flow_control(c->wsi, 1);
		if (relay_ws_admit(c)) /* not inside its callback: close rather than hang up */
			relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "cannot admit");
	}
	OPENSSL_cleanse(&g, sizeof(g));
	OPENSSL_cleanse(k, sizeof(*k));
	free(k);
}

bool relay_cluster_claiming(struct conn *c)
{
	struct claim *k;

	if (!cl.on || c->grant.topic[0])
		return false; /* redeemed from the local table (a stale slot must not match it) */
	if (!cl.defer.wsi || cl.defer.wsi != c->wsi) {
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		                 "code unknown, used or expired");
		return true;
	}
	cl.defer.wsi = NULL;
	k = calloc(1, sizeof(*k));
	if (!k || cl.state != LINK_UP) {
		free(k);
		cl.s->m.redeem[REDEEM_UNKNOWN]++;
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		                 k ? "redis unreachable: try again" : "out of memory");
		return true;
	}
	k->conn_id = c->id;
	memcpy(k->hash, cl.defer.hash, sizeof(k->hash));
	memcpy(k->topic, cl.defer.topic, sizeof(k->topic));
	memcpy(k->kind, cl.defer.kind, sizeof(k->kind));
	OPENSSL_cleanse(&cl.defer, sizeof(cl.defer));
	/* Nothing is read from it (nor sent to it: it is in no topic) until the claim is answered. */
	c->rx_paused = true;
	lws_rx_flow_control(c->wsi, 0);
	/* GETDEL: one instance gets the grant, every other one nil, whatever the timing. */
	redisAsyncCommand(cl.cmd, on_claimed, k, "GETDEL relay:code:%s", k->hash);
	return true;
}

/* ---- start, stop, tick ---- */

static bool valid_instance(const char *n)
{
	size_t len = strlen(n);

	return len && len < sizeof(cl.instance) &&
	       strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._:") ==
	               len;
}

int relay_cluster_start(struct server *s, uv_loop_t *loop, int port, char why[256])
{
	const struct relay_opts *o = s->o;
	char host[64];

	memset(&cl, 0, sizeof(cl));
	cl.s = s;
	if (!o->redis || !*o->redis)
		return 0;
	if (!loop) {
		snprintf(why, 256, "redis needs event_loop libuv");
		return -EINVAL;
	}
	if (cluster_url_parse(o->redis, &cl.url, why))
		return -EINVAL;
	if (o->instance && *o->instance) {
		snprintf(cl.instance, sizeof(cl.instance), "%s", o->instance);
	} else {
		if (gethostname(host, sizeof(host)))
			snprintf(host, sizeof(host), "relay");
		host[sizeof(host) - 1] = '\0';
		snprintf(cl.instance, sizeof(cl.instance), "%s:%d", host, port);
	}
	if (!valid_instance(cl.instance)) {
		snprintf(why, 256, "instance name must be 1-127 characters of A-Z a-z 0-9 - . _ :");
		return -EINVAL;
	}
	if (RAND_bytes((unsigned char *)&cl.nonce, sizeof(cl.nonce)) != 1) {
		snprintf(why, 256, "random source failed");
		return -EIO;
	}
	cl.loop = loop;
	cl.on = true;
	uv_timer_init(loop, &cl.timer);
	cl.timer_init = true;
	log_notice("instance '%s': connecting to redis at %s:%d (db %d)", cl.instance, cl.url.host,
	           cl.url.port, cl.url.db);
	link_open();
	return 0;
}

void relay_cluster_stop(void)
{
	redisAsyncContext *a = cl.cmd, *b = cl.sub;

	if (!cl.on)
		return;
	cl.cmd = cl.sub = NULL;
	cl.state = LINK_DOWN;
	if (a)
		redisAsyncFree(a);
	if (b)
		redisAsyncFree(b);
	if (cl.timer_init)
		uv_close((uv_handle_t *)&cl.timer, NULL);
	if (cl.resolving) /* its callback runs with UV_ECANCELED, or finds cl.on false */
		uv_cancel((uv_req_t *)&cl.gai);
	for (size_t i = 0; i < TOPIC_BUCKETS; i++)
		while (cl.topics[i])
			topic_remove(&cl.topics[i]);
	for (size_t i = 0; i < MAX_REPORTS; i++)
		free(cl.reports[i].text);
	free(cl.scratch);
	free(cl.wb.v);
	free(cl.stale.v);
	cluster_hosts_free();
	cluster_signal_free();
	cluster_meet_free();
	OPENSSL_cleanse(&cl.url, sizeof(cl.url));
	cl.on = false;
}

static void on_pong(redisAsyncContext *ac, void *r, void *priv)
{
	(void)priv;
	if (r && is_current(ac))
		cl.ping_sent_ms = 0;
}

/* A Redis that stopped answering (a frozen process, a dead route) closes no socket: ask. */
static void check_alive(void)
{
	int64_t now = relay_mono_ms();

	if (cl.ping_sent_ms && now - cl.ping_sent_ms > PING_TIMEOUT_MS) {
		cl.ping_sent_ms = 0;
		link_fail("no answer to PING for 3 s");
		return;
	}
	if (!cl.ping_sent_ms) {
		cl.ping_sent_ms = now;
		redisAsyncCommand(cl.cmd, on_pong, NULL, "PING");
	}
}

void relay_cluster_tick(void)
{
	if (!cl.on)
		return;
	unsubscribe_idle();
	if (cl.state == LINK_UP)
		check_alive();
	if (cl.state == LINK_UP)
		publish_report();
	if (cl.state == LINK_UP)
		cluster_hosts_tick();
	resync_tick();
	/* also while the link is down: peers of other instances unheard of for 3 s are gone */
	cluster_signal_tick();
	cluster_meet_tick();
}

bool relay_cluster_on(void)
{
	return cl.on;
}

const char *relay_cluster_instance(void)
{
	return cl.instance;
}

redisAsyncContext *cluster_cmd(void)
{
	return cl.on && cl.state == LINK_UP ? cl.cmd : NULL;
}

bool cluster_is_cmd(const redisAsyncContext *ac)
{
	return ac && ac == cl.cmd;
}

uint64_t cluster_nonce(void)
{
	return cl.nonce;
}

struct server *cluster_server(void)
{
	return cl.s;
}

const char *relay_cluster_trouble(void)
{
	if (!cl.on || cl.state == LINK_UP)
		return NULL;
	return cl.trouble[0] ? cl.trouble : "redis unreachable: connecting";
}

/* ---- /metrics ---- */

static void counter(FILE *f, const char *name, const char *help, const char *labels, uint64_t v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s%s %llu\n", name, help, name, name, labels,
	        (unsigned long long)v);
}

void relay_cluster_metrics(FILE *f)
{
	if (!cl.on)
		return;
	fprintf(f,
	        "# HELP relay_cluster_info This instance's name in the cluster.\n"
	        "# TYPE relay_cluster_info gauge\nrelay_cluster_info{instance=\"%s\"} 1\n",
	        cl.instance);
	fprintf(f,
	        "# HELP relay_cluster_redis_up 1 while Redis is reachable.\n"
	        "# TYPE relay_cluster_redis_up gauge\nrelay_cluster_redis_up %d\n",
	        cl.state == LINK_UP);
	fprintf(f,
	        "# HELP relay_cluster_out_bytes Topic bytes on their way to Redis.\n"
	        "# TYPE relay_cluster_out_bytes gauge\nrelay_cluster_out_bytes %zu\n",
	        cl.out_bytes);
	counter(f, "relay_cluster_published_total", "Topic messages sent to other instances.", "",
	        cl.k.published);
	fprintf(f,
	        "# HELP relay_cluster_not_crossed_total Topic messages that could not reach other "
	        "instances.\n# TYPE relay_cluster_not_crossed_total counter\n");
	fprintf(f, "relay_cluster_not_crossed_total{reason=\"buffer_full\"} %llu\n",
	        (unsigned long long)cl.k.dropped_full);
	fprintf(f, "relay_cluster_not_crossed_total{reason=\"redis_down\"} %llu\n",
	        (unsigned long long)cl.k.dropped_down);
	fprintf(f, "relay_cluster_not_crossed_total{reason=\"lost\"} %llu\n",
	        (unsigned long long)cl.k.lost);
	counter(f, "relay_cluster_received_total", "Topic messages received from other instances.",
	        "", cl.k.received);
	counter(f, "relay_cluster_bad_messages_total", "Redis messages that could not be read.", "",
	        cl.k.bad);
	counter(f, "relay_cluster_codes_issued_total", "Codes issued through Redis.", "",
	        cl.k.codes_issued);
	fprintf(f,
	        "# HELP relay_cluster_claims_total Codes claimed from Redis after the upgrade.\n"
	        "# TYPE relay_cluster_claims_total counter\n"
	        "relay_cluster_claims_total{result=\"ok\"} %llu\n"
	        "relay_cluster_claims_total{result=\"refused\"} %llu\n",
	        (unsigned long long)cl.k.claims_ok, (unsigned long long)cl.k.claims_refused);
	counter(f, "relay_cluster_reconnects_total", "Times the link to Redis came back.", "",
	        cl.k.reconnects);
	counter(f, "relay_cluster_bid_writes_failed_total",
	        "Deny/allow writes to Redis not answered OK (written again later).", "",
	        cl.k.bid_writes_failed);
	relay_cluster_groups_metrics(f);
	relay_cluster_signal_metrics(f);
}
