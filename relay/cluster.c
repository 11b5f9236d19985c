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
 * relay:bookings (hash booking id -> its newest change: cluster_bids.c), relay:status:{instance}
 * (PX 3 s).
 */
#define LOG_MODULE "cluster"
#include "relay/cluster.h"
#include "relay/cluster_int.h"
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
#define CH_STATUS          "relay:status"

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
	uint64_t reconnects;
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
	cluster_bids_link_down();
	snprintf(cl.trouble, sizeof(cl.trouble), "redis unreachable: %s", why);
	for (size_t i = 0; i < TOPIC_BUCKETS; i++)
		for (struct topic *t = cl.topics[i]; t; t = t->next)
			t->st = SUB_NONE;
	if (was_up || !cl.down_logged)
		log_warn("%s; serving this instance's readers only%s, reconnecting", cl.trouble,
		         relay_cluster_unloaded() ? " (access calls refused with 503 until it has "
		                                    "loaded the deny list from redis once)"
		                                  : "");
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
	cluster_bids_load(); /* then writes this store's entries back */
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
			cluster_bids_message(reply->element[2]);
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
	/* a state that never loaded the cluster's denies refuses every booking until it has */
	store_gate(s->store);
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
	cluster_bids_free();
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
	if (cl.state == LINK_UP)
		cluster_bids_tick();
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

void cluster_link_fail(const char *why)
{
	if (cl.on && cl.state != LINK_DOWN)
		link_fail(why);
}

void cluster_count_bad(void)
{
	cl.k.bad++;
}

uint64_t cluster_nonce(void)
{
	return cl.nonce;
}

bool relay_cluster_unloaded(void)
{
	return cl.on && !store_loaded(cl.s->store);
}

struct server *cluster_server(void)
{
	return cl.s;
}

const char *relay_cluster_trouble(void)
{
	if (cl.on && cl.state == LINK_UP && cluster_bids_loading())
		return "loading the deny list from redis";
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
	cluster_bids_metrics(f);
	relay_cluster_groups_metrics(f);
	relay_cluster_signal_metrics(f);
}
