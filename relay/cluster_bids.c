/*
 * relay/cluster_bids: the booking deny/allow list across instances (docs/scale-out.md, "Deny and
 * allow"); relay/cluster.c holds the link and calls in here.
 *
 * Every change carries a version (store_newer(): the wall-clock ms at the instance that made it)
 * and is applied, here, in Redis and at every other instance, only if newer than what is held for
 * its booking: the last change made wins wherever, whatever order notes and lists arrive in.
 * Redis's hash relay:bookings holds the newest change per booking ("deny EXP VER"), written by a
 * Lua script that compares versions and PUBLISHes on relay:bids only what it set. At each link
 * up an instance reads the hash (HSCAN, in chunks), then writes every live entry of its own store
 * back through the same script, so a change made while unlinked, or lost by Redis, reaches
 * everyone: the state database is the queue. The changes of a write that is not answered OK
 * are written again, they alone (every RESYNC_MS while the link is up; with everything else at
 * the next link up).
 */
#define LOG_MODULE "cluster"
#include "relay/cluster.h"
#include "relay/cluster_int.h"
#include "relay/turn.h"
#include "pkg/cluster/cluster.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H_BOOKINGS  "relay:bookings" /* booking id -> its newest change, "deny EXP VER" */
#define SCAN_COUNT  500              /* entries per HSCAN answer at link up */
#define WRITE_CHUNK 200              /* entries per EVAL of a write-back */
#define RESYNC_MS   2000             /* a failed write: written back again after this */
/* An ended entry stays in Redis so long after its end: an older change of its booking, held by
 * an instance unlinked meanwhile, loses to it. */
#define KEEP_EXPIRED_S 86400
#define STR_(x)        #x
#define STR(x)         STR_(x)
#define TIME_EVERY_MS  60000 /* Redis's clock read again so often while linked */
/* changes kept to be written again, at most; past it every live entry is (a write-back) */
#define RETRY_MAX    4096
#define SKEW_WARN_MS 1000 /* an offset past this is logged: this clock is off (NTP?) */

static struct {
	bool loading;      /* the link-up HSCAN of relay:bookings runs */
	size_t loaded;     /* entries it read so far */
	bool resync;       /* a write to relay:bookings failed: write it again (retry) */
	bool write_logged; /* that was logged (once per episode) */
	bool disk_logged;  /* a change of another instance could not be written to disk */
	uint64_t writes_failed;
	struct {
		struct cluster_bid *v; /* this store's entries, being written back; NULL: none */
		size_t n, cap, next;
		size_t sent, sent_n; /* the chunk in flight */
		bool oom, failed;    /* failed: a chunk of this pass was not written */
		int64_t last_ms;     /* monotonic: the last write-back's start */
	} wb;
	struct {
		struct cluster_bid *v; /* the changes not written: written again, they alone */
		size_t n, cap;
		bool all; /* one could not be kept: every live entry is written again */
	} retry;
	struct {
		struct cluster_bid *v; /* entries ended for long, read by the load running */
		size_t n, cap;
	} stale;
	/* Versions follow Redis's clock: its TIME minus this wall clock, read at each link up and
	 * every TIME_EVERY_MS; kept while unlinked (0 until the first answer). */
	struct {
		int64_t offset_ms;
		int64_t sent_wall, sent_mono; /* the TIME asked, unanswered when pending */
		bool pending, warned;
	} clk;
} bs;

static void scan_next(const char *cursor);

/* A version more than this ahead of the cluster's clock is applied to its booking but not taken
 * as the highest seen: one corrupt entry at the 2^53 cap would make every later change of every
 * booking tie at the cap (and a deny made then win over every allow after it). Not refused as a
 * whole: an instance whose clock is days behind before Redis's TIME is known must still apply
 * every deny it reads. */
#define VER_HORIZON_MS (86400 * 1000LL)

static void saw_version(int64_t ver)
{
	if (ver <= relay_cluster_now_ms() + VER_HORIZON_MS)
		store_saw_version(cluster_server()->store, ver);
}

/*
 * Entries that ended before this (unix seconds) are stale for the load: KEEP_EXPIRED_S before
 * now by this instance's own clock and by the cluster's (Redis's TIME offset), whichever is
 * earlier, so that neither clock running far ahead makes a live deny look ended.
 */
static int64_t stale_cut(void)
{
	int64_t own = relay_now_ms(), cluster = relay_cluster_now_ms();

	return (own < cluster ? own : cluster) / 1000 - KEEP_EXPIRED_S;
}

/* parse(value): version, deny (1/0), exp; nil for what the C parser refuses too
 * (cluster_bid_parse_value(): EXP up to CLUSTER_EXP_MAX, VER up to CLUSTER_VER_MAX = 2^53-1, the
 * integers a Lua number holds exactly). */
#define PARSE_LUA                                                                                    \
	"local function parse(v)\n"                                                                  \
	"  local d, e, ver = string.match(v, '^(%l+) (%d+) (%d+)$')\n"                               \
	"  if not d or (d ~= 'deny' and d ~= 'allow') or #e > 12 or #ver > 16 then return nil end\n" \
	"  e, ver = tonumber(e), tonumber(ver)\n"                                                    \
	"  if e > 253402300799 or ver > 9007199254740991 then return nil end\n"                      \
	"  return ver, d == 'deny' and 1 or 0, e\n"                                                  \
	"end\n"

/* KEYS[1] the hash; ARGV[1] the writer's nonce, then pairs (booking id, "deny EXP VER"). An
 * entry Redis holds that cannot be read is overwritten; a change that cannot be read is not
 * written. */
static const char set_newer_lua[] =
        PARSE_LUA "local n = 0\n"
                  "for i = 2, #ARGV - 1, 2 do\n"
                  "  local bid, val = ARGV[i], ARGV[i + 1]\n"
                  "  local cur = redis.call('HGET', KEYS[1], bid)\n"
                  "  local v, d, e = parse(val)\n"
                  "  local newer = v ~= nil\n"
                  "  if cur and v then\n"
                  "    local cv, cd, ce = parse(cur)\n"
                  "    if cv then\n"
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

/* KEYS[1] the hash; ARGV[1] the asking instance's cut (stale_cut()), then pairs (booking id,
 * value): each deleted only if it still holds that value and ended KEEP_EXPIRED_S ago by
 * Redis's clock and before the cut, by both clocks (one of them far ahead, Redis's or the
 * instance's, must not delete live denies). */
static const char del_same_lua[] = PARSE_LUA "local cut = tonumber(redis.call('TIME')[1]) - " STR(
        KEEP_EXPIRED_S) "\n"
                        "cut = math.min(cut, tonumber(ARGV[1]))\n"
                        "local n = 0\n"
                        "for i = 2, #ARGV - 1, 2 do\n"
                        "  local cur = redis.call('HGET', KEYS[1], ARGV[i])\n"
                        "  if cur == ARGV[i + 1] then\n"
                        "    local v, d, e = parse(cur)\n"
                        "    if v and e < cut then\n"
                        "      n = n + redis.call('HDEL', KEYS[1], ARGV[i])\n"
                        "    end\n"
                        "  end\n"
                        "end\n"
                        "return n\n";

/* Send @script with @first (unless NULL) then the pairs (@ids[i], @vals[i]) of @n entries; 0 or
 * -EIO. */
static int eval_pairs(const char *script, const char *first, const char *const *ids,
                      const char *const *vals, size_t n, redisCallbackFn *cb, void *priv)
{
	size_t argc = 0, max = 5 + 2 * n;
	redisAsyncContext *ac = cluster_cmd();
	const char **argv = malloc(max * sizeof(*argv));
	size_t *lens = malloc(max * sizeof(*lens));
	int ret = -EIO;

	if (!ac || !argv || !lens)
		goto out;
#define ARG(p) (argv[argc] = (p), lens[argc] = strlen(argv[argc]), argc++)
	ARG("EVAL");
	ARG(script);
	ARG("1");
	ARG(H_BOOKINGS);
	if (first)
		ARG(first);
	for (size_t i = 0; i < n; i++) {
		ARG(ids[i]);
		ARG(vals[i]);
	}
#undef ARG
	if (redisAsyncCommandArgv(ac, cb, priv, (int)argc, argv, lens) == REDIS_OK)
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
	char nonce[17];
	int ret = -ENOMEM;

	snprintf(nonce, sizeof(nonce), "%016llx", (unsigned long long)cluster_nonce());
	if (ids && vals && text) {
		for (size_t i = 0; i < n; i++) {
			cluster_bid_value(&b[i], text[i], sizeof(text[i]));
			ids[i] = b[i].bid;
			vals[i] = text[i];
		}
		ret = eval_pairs(set_newer_lua, nonce, ids, vals, n, cb, priv);
	}
	free(ids);
	free(vals);
	free(text);
	return ret;
}

static void retry_clear(void)
{
	free(bs.retry.v);
	memset(&bs.retry, 0, sizeof(bs.retry));
}

/* Keep the @n changes at @b (NULL: every live entry) to be written again. */
static void retry_add(const struct cluster_bid *b, size_t n)
{
	bs.resync = true;
	if (!b)
		bs.retry.all = true;
	if (!bs.retry.all && bs.retry.n + n > RETRY_MAX) { /* a bound: past it, all of them */
		retry_clear();
		bs.retry.all = true;
	}
	if (bs.retry.all)
		return;
	if (bs.retry.n + n > bs.retry.cap) {
		size_t cap =
		        bs.retry.cap * 2 > bs.retry.n + n ? bs.retry.cap * 2 : bs.retry.n + n + 64;
		struct cluster_bid *p = realloc(bs.retry.v, cap * sizeof(*p));

		if (!p) {
			bs.retry.all = true;
			return;
		}
		bs.retry.v = p;
		bs.retry.cap = cap;
	}
	memcpy(bs.retry.v + bs.retry.n, b, n * sizeof(*b));
	bs.retry.n += n;
}

/* A write of the @n changes at @b (NULL: unknown) to relay:bookings was not answered OK: they
 * are written again later (every RESYNC_MS while linked; everything at the next link up). */
static void write_failed(const redisReply *reply, const struct cluster_bid *b, size_t n)
{
	retry_add(b, n);
	bs.writes_failed++;
	if (bs.write_logged)
		return;
	bs.write_logged = true;
	log_warn(
	        "a deny/allow change could not be written to redis (%s): written again every %d ms "
	        "until it is",
	        reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no answer", RESYNC_MS);
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
		write_failed(r, b, 1);
		/* Redis refused it (full?): still tell the live instances; PUBLISH takes no memory,
		 * and they apply it only if newer, as always */
		if (r && cluster_is_cmd(ac)) {
			char msg[32 + STORE_BID_MAX + 64];
			int n = snprintf(msg, sizeof(msg), "%016llx ",
			                 (unsigned long long)cluster_nonce());
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

	if (!relay_cluster_on())
		return;
	if (!cluster_cmd()) {
		bs.resync = true; /* kept in the state database: written back at link up */
		return;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		write_failed(NULL, NULL, 0);
		return;
	}
	b->deny = deny;
	b->exp = exp;
	b->ver = ver;
	snprintf(b->bid, sizeof(b->bid), "%s", bid);
	if (write_changes(b, 1, on_change_written, b)) {
		write_failed(NULL, b, 1);
		free(b);
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
	struct server *s = cluster_server();
	int64_t now = relay_now_ms() / 1000;
	/* not store_is_denied(): during a fresh state's first load it says denied for all */
	bool was_denied = store_denied_until(s->store, b->bid, now) != 0;
	int ret = store_merge(s->store, b->bid, b->deny, b->exp, b->ver, true);
	size_t closed;

	if (ret == 0)
		return; /* not newer than what is here */
	if (ret == -EIO && !bs.disk_logged) {
		bs.disk_logged = true;
		log_err("state write failed: changes of other instances are applied in memory only "
		        "(booking '%s' first)",
		        b->bid);
	} else if (ret < 0 && ret != -EIO) {
		log_err("cannot %s booking '%s' here: %s", b->deny ? "deny" : "allow", b->bid,
		        strerror(-ret));
		return;
	} else if (ret > 0) {
		bs.disk_logged = false;
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

void cluster_bids_message(const redisReply *payload)
{
	struct cluster_bid b;
	char *end;
	unsigned long long origin;

	if (payload->type != REDIS_REPLY_STRING || payload->len < 18 || payload->str[16] != ' ') {
		cluster_count_bad();
		return;
	}
	origin = strtoull(payload->str, &end, 16);
	if (end != payload->str + 16 ||
	    cluster_bid_parse(payload->str + 17, payload->len - 17, &b)) {
		cluster_count_bad();
		return;
	}
	saw_version(b.ver);
	if (origin != cluster_nonce())
		merge_change(&b, false, NULL);
}

/* ---- write-back: every live entry of this store, in chunks, one answered before the next ---- */

static void writeback_next(void);

static void on_chunk_written(redisAsyncContext *ac, void *r, void *priv)
{
	(void)priv;
	if (!cluster_is_cmd(ac) || !bs.wb.v) {
		if (!reply_ok(r))
			write_failed(r, NULL, 0);
		return; /* the link dropped: the next link up starts over */
	}
	if (!reply_ok(r)) {
		bs.wb.failed = true;
		write_failed(r, bs.wb.v + bs.wb.sent, bs.wb.sent_n); /* that chunk alone again */
	}
	writeback_next();
}

static void writeback_end(void)
{
	free(bs.wb.v);
	bs.wb.v = NULL;
	bs.wb.n = bs.wb.next = 0;
}

static void writeback_next(void)
{
	size_t n = bs.wb.n - bs.wb.next;

	if (n == 0) {
		if (!bs.wb.failed)
			log_debug("%zu deny/allow entries written back to redis", bs.wb.n);
		writeback_end();
		if (!bs.resync && bs.write_logged) {
			bs.write_logged = false;
			log_notice("deny/allow list written to redis again");
		}
		return;
	}
	if (n > WRITE_CHUNK)
		n = WRITE_CHUNK;
	if (write_changes(bs.wb.v + bs.wb.next, n, on_chunk_written, NULL)) {
		write_failed(NULL, NULL, 0);
		writeback_end();
		return;
	}
	bs.wb.sent = bs.wb.next;
	bs.wb.sent_n = n;
	bs.wb.next += n;
}

static void collect_entry(const char *bid, bool deny, int64_t exp, int64_t ver, void *arg)
{
	struct cluster_bid *b;

	(void)arg;
	if (bs.wb.n == bs.wb.cap) {
		size_t cap = bs.wb.cap ? bs.wb.cap * 2 : 256;
		struct cluster_bid *p = realloc(bs.wb.v, cap * sizeof(*p));

		if (!p) {
			bs.wb.oom = true;
			return;
		}
		bs.wb.v = p;
		bs.wb.cap = cap;
	}
	b = &bs.wb.v[bs.wb.n++];
	b->deny = deny;
	b->exp = exp;
	b->ver = ver;
	snprintf(b->bid, sizeof(b->bid), "%s", bid);
}

/* Write to Redis (newer-only) every live deny and allow held here (@all: at link up, or when
 * a failed change could not be kept), else the changes not written yet. */
static void writeback_start(bool all)
{
	if (bs.wb.v || bs.loading || !cluster_cmd())
		return;
	bs.resync = false;
	bs.wb.n = bs.wb.cap = bs.wb.next = bs.wb.sent = bs.wb.sent_n = 0;
	bs.wb.oom = bs.wb.failed = false;
	bs.wb.last_ms = relay_mono_ms();
	if (!all && !bs.retry.all) { /* taken over: new failures go to a new list */
		bs.wb.v = bs.retry.v;
		bs.wb.n = bs.retry.n;
		bs.wb.cap = bs.retry.cap;
		memset(&bs.retry, 0, sizeof(bs.retry));
	} else {
		retry_clear();
		store_each(cluster_server()->store, relay_now_ms() / 1000, collect_entry, NULL);
	}
	if (bs.wb.oom) {
		writeback_end();
		write_failed(NULL, NULL, 0);
		return;
	}
	if (!bs.wb.v) /* nothing here: nothing to write */
		bs.wb.v = malloc(sizeof(*bs.wb.v));
	if (bs.wb.v)
		writeback_next();
	else
		write_failed(NULL, NULL, 0);
}

/* ---- the link-up load: HSCAN relay:bookings, a chunk per answer ---- */

/* An entry ended for long, kept to be deleted once the whole load is read. */
static void stale_add(const struct cluster_bid *b)
{
	if (bs.stale.n == bs.stale.cap) {
		size_t cap = bs.stale.cap ? bs.stale.cap * 2 : 64;
		struct cluster_bid *p = realloc(bs.stale.v, cap * sizeof(*p));

		if (!p)
			return; /* deleted at a later load */
		bs.stale.v = p;
		bs.stale.cap = cap;
	}
	bs.stale.v[bs.stale.n++] = *b;
}

/* A chunk of delete_stale() answered: how many went (the script's count), for the log. */
static void on_deleted(redisAsyncContext *ac, void *r, void *priv)
{
	const redisReply *reply = r;

	(void)ac, (void)priv;
	if (reply && reply->type == REDIS_REPLY_INTEGER)
		log_debug("%s: %lld ended entries deleted", H_BOOKINGS, (long long)reply->integer);
	else
		log_warn("cannot remove ended entries of %s: %s", H_BOOKINGS,
		         reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no answer");
}

/*
 * Entries ended for long are deleted, each only if it still holds the value read
 * (compare-and-delete): a change of that booking written since, by any instance, stays.
 */
static void delete_stale(void)
{
	char cut[24];

	snprintf(cut, sizeof(cut), "%lld", (long long)stale_cut());
	for (size_t i = 0; i < bs.stale.n; i += WRITE_CHUNK) {
		size_t n = bs.stale.n - i < WRITE_CHUNK ? bs.stale.n - i : WRITE_CHUNK;
		const char *ids[WRITE_CHUNK], *vals[WRITE_CHUNK];
		char text[WRITE_CHUNK][64];

		for (size_t j = 0; j < n; j++) {
			cluster_bid_value(&bs.stale.v[i + j], text[j], sizeof(text[j]));
			ids[j] = bs.stale.v[i + j].bid;
			vals[j] = text[j];
		}
		if (eval_pairs(del_same_lua, cut, ids, vals, n, on_deleted, NULL)) {
			log_warn("cannot remove ended entries of %s", H_BOOKINGS);
			break;
		}
	}
	free(bs.stale.v);
	memset(&bs.stale, 0, sizeof(bs.stale));
}

static void load_chunk(const redisReply *kv)
{
	/* the delete script decides again with Redis's own clock */
	int64_t cut = stale_cut();
	struct ends e = {0};
	bool batch;

	/* One disk sync for the chunk, not one per booking. */
	batch = store_batch_begin(cluster_server()->store) == 0;
	for (size_t i = 0; i + 1 < kv->elements; i += 2) {
		const redisReply *k = kv->element[i], *v = kv->element[i + 1];
		struct cluster_bid b = {0};

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
		    !cluster_bid_id_ok(k->str, k->len) ||
		    cluster_bid_parse_value(v->str, v->len, &b)) {
			cluster_count_bad(); /* what /bids would refuse is not applied */
			continue;
		}
		memcpy(b.bid, k->str, k->len);
		saw_version(b.ver); /* changes made here go past it */
		if (b.exp < cut)
			stale_add(&b);
		else
			merge_change(&b, true, &e);
	}
	if (batch && store_batch_end(cluster_server()->store) && !bs.disk_logged) {
		bs.disk_logged = true;
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
	if (!cluster_is_cmd(ac))
		return;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING || reply->element[0]->len >= 32 ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY) {
		char why[160];

		snprintf(why, sizeof(why), "cannot read %s: %s", H_BOOKINGS,
		         reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "bad answer");
		bs.loading = false;
		cluster_link_fail(why); /* the whole load again at the next link up */
		return;
	}
	memcpy(cursor, reply->element[0]->str, reply->element[0]->len);
	cursor[reply->element[0]->len] = '\0';
	load_chunk(reply->element[1]);
	bs.loaded += reply->element[1]->elements / 2;
	if (strcmp(cursor, "0") != 0) {
		scan_next(cursor); /* the next chunk at a later turn of the loop */
		return;
	}
	bs.loading = false;
	if (store_set_loaded(cluster_server()->store))
		log_warn("cannot record in the state database that the deny list was loaded");
	delete_stale();
	log_info("deny/allow list loaded from redis (%zu entries); writing this instance's back",
	         bs.loaded);
	writeback_start(true);
}

static void scan_next(const char *cursor)
{
	redisAsyncContext *ac = cluster_cmd();

	if (ac)
		redisAsyncCommand(ac, on_scan, NULL, "HSCAN %s %s COUNT %d", H_BOOKINGS, cursor,
		                  SCAN_COUNT);
}

/* ---- Redis's clock ---- */

static int parse_time_part(const redisReply *r, int64_t max, int64_t *v)
{
	char *end;
	long long x;

	if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len > 18)
		return -EINVAL;
	errno = 0;
	x = strtoll(r->str, &end, 10);
	if (errno || end != r->str + r->len || x < 0 || x > max)
		return -EINVAL;
	*v = x;
	return 0;
}

static void on_time(redisAsyncContext *ac, void *r, void *priv)
{
	const redisReply *reply = r;
	int64_t sec, usec, rtt, offset;

	(void)priv;
	if (!cluster_is_cmd(ac))
		return;
	bs.clk.pending = false;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    parse_time_part(reply->element[0], INT64_C(1) << 40, &sec) ||
	    parse_time_part(reply->element[1], 999999, &usec)) {
		cluster_count_bad();
		return;
	}
	rtt = relay_mono_ms() - bs.clk.sent_mono;
	/* Redis read its clock about half the round trip after we asked */
	offset = sec * 1000 + usec / 1000 - (bs.clk.sent_wall + rtt / 2);
	bs.clk.offset_ms = offset;
	if (llabs(offset) > SKEW_WARN_MS && !bs.clk.warned) {
		bs.clk.warned = true;
		log_warn("this instance's clock is %lld ms %s redis's: deny/allow versions follow "
		         "redis's clock, but tokens, exp and logs use this one: check NTP",
		         llabs(offset), offset > 0 ? "behind" : "ahead of");
	} else if (llabs(offset) <= SKEW_WARN_MS && bs.clk.warned) {
		bs.clk.warned = false;
		log_notice("this instance's clock is within %d ms of redis's again", SKEW_WARN_MS);
	}
}

static void ask_time(void)
{
	redisAsyncContext *ac = cluster_cmd();

	if (!ac || bs.clk.pending)
		return;
	bs.clk.sent_wall = relay_now_ms();
	bs.clk.sent_mono = relay_mono_ms();
	if (redisAsyncCommand(ac, on_time, NULL, "TIME") == REDIS_OK)
		bs.clk.pending = true;
}

int64_t relay_cluster_now_ms(void)
{
	return relay_now_ms() + bs.clk.offset_ms;
}

void cluster_bids_load(void)
{
	bs.clk.pending = false; /* an answer on the old link never comes */
	ask_time();             /* answered before the load: versions of the write-back follow it */
	writeback_end();        /* one left from before the link dropped: this one starts over */
	bs.loading = true;
	bs.loaded = 0;
	bs.stale.n = 0;
	scan_next("0");
}

/* While the link is up: the changes whose write failed are written again (they alone). */
void cluster_bids_tick(void)
{
	if (cluster_cmd() && relay_mono_ms() - bs.clk.sent_mono >= TIME_EVERY_MS)
		ask_time();
	if (cluster_cmd() && bs.resync && !bs.loading && !bs.wb.v &&
	    relay_mono_ms() - bs.wb.last_ms >= RESYNC_MS)
		writeback_start(false);
}

bool cluster_bids_loading(void)
{
	return bs.loading;
}

void cluster_bids_link_down(void)
{
	bs.loading = false; /* a write-back stops at its next answer (none comes: not current) */
}

void cluster_bids_free(void)
{
	free(bs.wb.v);
	free(bs.stale.v);
	free(bs.retry.v);
	memset(&bs, 0, sizeof(bs));
}

void cluster_bids_metrics(FILE *f)
{
	fprintf(f,
	        "# HELP relay_cluster_bid_writes_failed_total Deny/allow writes to Redis not answered "
	        "OK (written again later).\n"
	        "# TYPE relay_cluster_bid_writes_failed_total counter\n"
	        "relay_cluster_bid_writes_failed_total %llu\n",
	        (unsigned long long)bs.writes_failed);
}
