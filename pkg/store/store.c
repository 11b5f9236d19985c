/*
 * store: SQLite behind, a small open-addressing table in front. Table `bookings(bid PRIMARY KEY,
 * denied INTEGER, exp INTEGER, ver INTEGER)` (ver added to older state dirs at open, 0 there). synchronous=FULL so a deny is durable before we answer 204.
 * Table `groups(app, id, owner, expires, json, PRIMARY KEY(app, id))` behind a chained hash
 * table of discovery groups.
 */
#include "pkg/store/store.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INITIAL_SLOTS 256
#define GROUP_BUCKETS 4096

enum state { FREE = 0, DENIED, ALLOWED, SEEN };

struct slot {
	char bid[STORE_BID_MAX + 1];
	int64_t exp;
	int64_t ver; /* the change's version (store_merge); 0 for seen entries and old rows */
	enum state state;
};

struct store {
	sqlite3 *db; /* NULL: memory only */
	struct slot *slots;
	size_t nslots, used;
	struct store_group **groups; /* GROUP_BUCKETS chains */
	size_t ngroups;
	bool healthy;
	/* The highest version this store has made or seen (store_change() makes its versions
	 * past it), persisted in table meta by tidy before it drops ended rows, and whether a
	 * deny list was ever loaded into it (store_set_loaded()). The owner's alone. */
	int64_t max_ver, saved_max_ver;
	bool loaded;
	bool gated; /* every booking counts as denied until loaded (store_gate()); under mu */
	/* Guards slots, nslots and used: relay serve's TURN thread reads them (store_is_denied)
	 * while the owner's thread changes them. Never held across SQLite: a disk sync (or a
	 * busy timeout) must not stall the TURN loop's deny check. The owner's own reads of the
	 * table need no lock (the other thread only reads); everything else (SQLite, groups,
	 * healthy) is the owner's alone. */
	pthread_mutex_t mu;
};

static int load_groups(struct store *s);

static void lock(const struct store *s)
{
	/* a reader's const store: the lock is not data */
	pthread_mutex_lock((pthread_mutex_t *)&s->mu);
}

static void unlock(const struct store *s)
{
	pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
}

/* ---- the in-memory table (linear probing, tombstone-free: tidy rebuilds) ---- */

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static struct slot *find(const struct store *s, const char *bid)
{
	for (size_t i = hash(bid) % s->nslots;; i = (i + 1) % s->nslots) {
		struct slot *sl = &s->slots[i];

		if (sl->state == FREE || strcmp(sl->bid, bid) == 0)
			return sl;
	}
}

static int rebuild(struct store *s, size_t nslots, int64_t now);

static int put(struct store *s, const char *bid, enum state st, int64_t exp, int64_t ver)
{
	struct slot *sl;

	if ((s->used + 1) * 2 > s->nslots && rebuild(s, s->nslots * 2, INT64_MIN))
		return -ENOMEM;
	sl = find(s, bid);
	if (sl->state == FREE) {
		snprintf(sl->bid, sizeof(sl->bid), "%s", bid);
		s->used++;
	}
	sl->state = st;
	sl->exp = exp;
	sl->ver = ver;
	if (ver > s->max_ver && ver <= STORE_VER_MAX)
		s->max_ver = ver;
	return 0;
}

/* Re-insert every entry still live at @now into a table of @nslots. */
static int rebuild(struct store *s, size_t nslots, int64_t now)
{
	struct slot *old = s->slots;
	size_t n = s->nslots;

	s->slots = calloc(nslots, sizeof(*s->slots));
	if (!s->slots) {
		s->slots = old;
		return -ENOMEM;
	}
	s->nslots = nslots;
	s->used = 0;
	for (size_t i = 0; i < n; i++)
		if (old[i].state != FREE && old[i].exp >= now)
			put(s, old[i].bid, old[i].state, old[i].exp, old[i].ver);
	free(old);
	return 0;
}

/* ---- SQLite ---- */

static int exec_sql(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	s->healthy = rc == SQLITE_OK;
	return rc == SQLITE_OK ? 0 : -EIO;
}

static int write_row(struct store *s, const char *bid, bool denied, int64_t exp, int64_t ver)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!s->db)
		return 0;
	rc = sqlite3_prepare_v2(
	        s->db,
	        "INSERT INTO bookings(bid, denied, exp, ver) VALUES(?1, ?2, ?3, ?4) "
	        "ON CONFLICT(bid) DO UPDATE SET denied = ?2, exp = ?3, ver = ?4",
	        -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, bid, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, denied);
		sqlite3_bind_int64(st, 3, exp);
		sqlite3_bind_int64(st, 4, ver);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	s->healthy = rc == SQLITE_OK;
	return rc == SQLITE_OK ? 0 : -EIO;
}

/* A state dir written before versions: its allows get version 0 (older than any change), its
 * denies the migration time (ms), so an allow made elsewhere before the upgrade does not undo
 * them: errs towards refusing. */
static int migrate(struct store *s)
{
	sqlite3_stmt *st = NULL;
	bool has_ver = false;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA table_info(bookings)", -1, &st, NULL);

	while (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 1);

		has_ver = has_ver || (name && strcmp(name, "ver") == 0);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return -EIO;
	return has_ver ? 0
	               : exec_sql(s,
	                          "ALTER TABLE bookings ADD COLUMN ver INTEGER NOT NULL "
	                          "DEFAULT 0; UPDATE bookings SET ver = "
	                          "CAST(strftime('%s', 'now') AS INTEGER) * 1000 WHERE denied = 1");
}

static int load_rows(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "SELECT bid, denied, exp, ver FROM bookings", -1, &st,
	                            NULL);
	int step = SQLITE_DONE;

	/* A damaged database must not load half a deny list: any step error fails the open. */
	while (rc == SQLITE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *bid = (const char *)sqlite3_column_text(st, 0);

		if (bid && strlen(bid) <= STORE_BID_MAX &&
		    put(s, bid, sqlite3_column_int(st, 1) ? DENIED : ALLOWED,
		        sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3)))
			rc = SQLITE_NOMEM;
	}
	if (rc == SQLITE_OK && step != SQLITE_DONE)
		rc = step;
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -EIO;
}

/* Table meta's value for @key into *@v (untouched when absent); 0 or -EIO. */
static int meta_get(struct store *s, const char *key, int64_t *v)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			*v = sqlite3_column_int64(st, 0);
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -EIO;
}

static int meta_set(struct store *s, const char *key, int64_t v)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!s->db)
		return 0;
	rc = sqlite3_prepare_v2(s->db,
	                        "INSERT INTO meta(key, value) VALUES(?1, ?2) "
	                        "ON CONFLICT(key) DO UPDATE SET value = ?2",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, v);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	s->healthy = rc == SQLITE_OK;
	return rc == SQLITE_OK ? 0 : -EIO;
}

/* The highest version of the rows (load_rows() raised max_ver) and the one saved by tidy. */
static int load_meta(struct store *s)
{
	int64_t saved = 0, loaded = 0;

	if (meta_get(s, "max_ver", &saved) || meta_get(s, "loaded", &loaded))
		return -EIO;
	if (saved > s->max_ver && saved <= STORE_VER_MAX)
		s->max_ver = saved;
	s->saved_max_ver = saved;
	s->loaded = loaded != 0;
	return 0;
}

static int open_db(struct store *s, const char *dir, char why[256])
{
	char path[PATH_MAX];

	if (mkdir(dir, 0700) && errno != EEXIST) {
		snprintf(why, 256, "cannot create state directory '%.200s': %s", dir,
		         strerror(errno));
		return -errno;
	}
	snprintf(path, sizeof(path), "%s/relay.db", dir);
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) ==
	    SQLITE_OK)
		sqlite3_busy_timeout(s->db, 1000);
	if (!s->db || sqlite3_errcode(s->db) != SQLITE_OK ||
	    exec_sql(
	            s,
	            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
	            "CREATE TABLE IF NOT EXISTS bookings(bid TEXT PRIMARY KEY, denied INTEGER NOT NULL, "
	            "exp INTEGER NOT NULL, ver INTEGER NOT NULL DEFAULT 0); "
	            "CREATE TABLE IF NOT EXISTS groups(app TEXT NOT NULL, id TEXT NOT NULL, "
	            "owner TEXT NOT NULL, expires INTEGER NOT NULL, json TEXT NOT NULL, "
	            "PRIMARY KEY(app, id)); "
	            "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)") ||
	    migrate(s) || load_rows(s) || load_meta(s) || load_groups(s)) {
		snprintf(why, 256, "cannot open state database '%.200s': %s", path,
		         s->db ? sqlite3_errmsg(s->db) : "out of memory");
		return -EIO;
	}
	return 0;
}

int store_open(const char *dir, struct store **out, char why[256])
{
	struct store *s = calloc(1, sizeof(*s));
	int ret;

	*out = NULL;
	if (!s || !(s->slots = calloc(INITIAL_SLOTS, sizeof(*s->slots))) ||
	    !(s->groups = calloc(GROUP_BUCKETS, sizeof(*s->groups)))) {
		if (s)
			free(s->slots);
		free(s);
		snprintf(why, 256, "out of memory");
		return -ENOMEM;
	}
	s->nslots = INITIAL_SLOTS;
	s->healthy = true;
	pthread_mutex_init(&s->mu, NULL);
	if (dir) {
		ret = open_db(s, dir, why);
		if (ret) {
			store_close(s);
			return ret;
		}
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	free(s->slots);
	for (size_t i = 0; i < GROUP_BUCKETS; i++) {
		struct store_group *g = s->groups[i], *next;

		for (; g; g = next) {
			next = g->next;
			free(g->json);
			free(g);
		}
	}
	free(s->groups);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static bool valid_bid(const char *bid)
{
	return bid && *bid && strlen(bid) <= STORE_BID_MAX;
}

bool store_newer(bool deny, int64_t exp, int64_t ver, bool held_deny, int64_t held_exp,
                 int64_t held_ver)
{
	if (ver != held_ver)
		return ver > held_ver;
	if (deny != held_deny)
		return deny; /* equal versions: refuse rather than admit */
	return exp > held_exp;
}

/* On disk first (without the lock: it may wait for a sync), then in the table. With
 * @mem_anyway, a failed disk write still changes the table (and -EIO is returned). */
static int set_state(struct store *s, const char *bid, enum state st, int64_t exp, int64_t ver,
                     bool mem_anyway)
{
	int ret, disk;

	if (!valid_bid(bid))
		return -EINVAL;
	disk = write_row(s, bid, st == DENIED, exp, ver);
	if (disk && !mem_anyway)
		return -EIO;
	lock(s);
	ret = put(s, bid, st, exp, ver);
	unlock(s);
	return ret ? ret : disk;
}

/* The version @bid's deny/allow entry holds (0: written before versions), -1 when none. */
static int64_t held_version(const struct store *s, const char *bid, bool *deny, int64_t *exp)
{
	const struct slot *sl = find(s, bid); /* the owner's read: no lock */

	*deny = sl->state == DENIED;
	*exp = sl->state == DENIED || sl->state == ALLOWED ? sl->exp : 0;
	return sl->state == DENIED || sl->state == ALLOWED ? sl->ver : -1;
}

int store_change(struct store *s, const char *bid, bool deny, int64_t exp, int64_t *ver)
{
	bool hd;
	int64_t he, held;

	if (!valid_bid(bid))
		return -EINVAL;
	held = held_version(s, bid, &hd, &he);
	if (*ver > STORE_VER_MAX)
		*ver = STORE_VER_MAX;
	/* made after everything this store has seen, so newer than it, whatever the clock says
	 * (a clock behind, or stepped back); saturates at STORE_VER_MAX */
	if (*ver <= s->max_ver)
		*ver = s->max_ver < STORE_VER_MAX ? s->max_ver + 1 : STORE_VER_MAX;
	if (*ver <= held)
		*ver = held < STORE_VER_MAX ? held + 1 : STORE_VER_MAX;
	return set_state(s, bid, deny ? DENIED : ALLOWED, exp, *ver, false);
}

int store_merge(struct store *s, const char *bid, bool deny, int64_t exp, int64_t ver,
                bool mem_anyway)
{
	bool hd;
	int64_t he, held;
	int ret;

	if (!valid_bid(bid) || ver < 0 || ver > STORE_VER_MAX)
		return -EINVAL;
	held = held_version(s, bid, &hd, &he);
	if (held >= 0 && !store_newer(deny, exp, ver, hd, he, held))
		return 0;
	ret = set_state(s, bid, deny ? DENIED : ALLOWED, exp, ver, mem_anyway);
	return ret == 0 ? 1 : ret;
}

void store_saw_version(struct store *s, int64_t ver)
{
	if (ver > s->max_ver && ver <= STORE_VER_MAX)
		s->max_ver = ver;
}

int64_t store_max_version(const struct store *s)
{
	return s->max_ver;
}

bool store_loaded(const struct store *s)
{
	return s->loaded;
}

void store_gate(struct store *s)
{
	lock(s);
	s->gated = !s->loaded;
	unlock(s);
}

int store_set_loaded(struct store *s)
{
	lock(s);
	s->gated = false;
	unlock(s);
	if (s->loaded)
		return 0;
	s->loaded = true;
	return meta_set(s, "loaded", 1);
}

int64_t store_version(const struct store *s, const char *bid)
{
	bool d;
	int64_t e;

	int64_t v = valid_bid(bid) ? held_version(s, bid, &d, &e) : 0;

	return v > 0 ? v : 0;
}

int store_batch_begin(struct store *s)
{
	if (!s->db)
		return 0;
	return sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
}

int store_batch_end(struct store *s)
{
	if (!s->db)
		return 0;
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		return 0;
	sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->healthy = false;
	return -EIO;
}

int store_deny(struct store *s, const char *bid, int64_t exp)
{
	int64_t ver = 1;

	return store_change(s, bid, true, exp, &ver);
}

int store_allow(struct store *s, const char *bid, int64_t exp)
{
	int64_t ver = 1;

	return store_change(s, bid, false, exp, &ver);
}

void store_seen(struct store *s, const char *bid, int64_t exp)
{
	struct slot *sl;

	if (!valid_bid(bid))
		return;
	lock(s);
	sl = find(s, bid);
	if (sl->state == FREE || (sl->state == SEEN && sl->exp < exp))
		put(s, bid, SEEN, exp, 0);
	unlock(s);
}

int64_t store_denied_until(const struct store *s, const char *bid, int64_t now)
{
	const struct slot *sl;
	int64_t until;

	if (!valid_bid(bid))
		return 0;
	lock(s);
	sl = find(s, bid);
	until = sl->state == DENIED && sl->exp >= now ? sl->exp : 0;
	unlock(s);
	return until;
}

bool store_is_denied(const struct store *s, const char *bid, int64_t now)
{
	bool gated;

	lock(s);
	gated = s->gated;
	unlock(s);
	return gated || store_denied_until(s, bid, now) != 0;
}

void store_list(const struct store *s, enum store_list which, int64_t now,
                void (*fn)(const char *bid, int64_t exp, void *arg), void *arg)
{
	for (size_t i = 0; i < s->nslots; i++) {
		const struct slot *sl = &s->slots[i];
		bool want = which == STORE_DENIED ? sl->state == DENIED
		                                  : sl->state == ALLOWED || sl->state == SEEN;

		if (want && sl->exp >= now)
			fn(sl->bid, sl->exp, arg);
	}
}

void store_each(const struct store *s, int64_t now,
                void (*fn)(const char *bid, bool deny, int64_t exp, int64_t ver, void *arg),
                void *arg)
{
	for (size_t i = 0; i < s->nslots; i++) {
		const struct slot *sl = &s->slots[i];

		if ((sl->state == DENIED || sl->state == ALLOWED) && sl->exp >= now)
			fn(sl->bid, sl->state == DENIED, sl->exp, sl->ver, arg);
	}
}

int store_tidy(struct store *s, int64_t now)
{
	size_t before = s->used;
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK, ret;

	/* The rows dropped may hold the highest version: it is kept (store_change()). */
	if (s->db && s->max_ver > s->saved_max_ver) {
		rc = meta_set(s, "max_ver", s->max_ver) ? SQLITE_ERROR : SQLITE_OK;
		if (rc == SQLITE_OK)
			s->saved_max_ver = s->max_ver;
	}
	if (s->db && rc == SQLITE_OK) {
		rc = sqlite3_prepare_v2(s->db, "DELETE FROM bookings WHERE exp < ?1", -1, &st,
		                        NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, now);
			rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		}
		sqlite3_finalize(st);
		s->healthy = rc == SQLITE_OK;
	}
	lock(s);
	ret = rebuild(s, s->nslots, now) ? -ENOMEM : (int)(before - s->used);
	unlock(s);
	return rc == SQLITE_OK || ret < 0 ? ret : -EIO;
}

bool store_is_healthy(struct store *s)
{
	if (!s->healthy)
		return false;
	/* Reads the schema page, so a vanished or unreadable file shows. */
	return !s->db || sqlite3_exec(s->db, "SELECT count(*) FROM sqlite_master", NULL, NULL,
	                              NULL) == SQLITE_OK;
}

/* ---- discovery groups ---- */

static bool valid_key(const char *app, const char *id)
{
	return app && *app && strlen(app) <= STORE_APP_MAX && id && *id &&
	       strlen(id) <= STORE_GID_MAX;
}

static struct store_group **group_slot(const struct store *s, const char *app, const char *id)
{
	uint64_t h = (hash(app) * 31) ^ hash(id);
	struct store_group **pp = &s->groups[h % GROUP_BUCKETS];

	while (*pp && (strcmp((*pp)->app, app) != 0 || strcmp((*pp)->id, id) != 0))
		pp = &(*pp)->next;
	return pp;
}

/* Set @g's fields (a new or existing entry); -ENOMEM leaves @g as it was. */
static int group_fill(struct store_group *g, const char *owner, int64_t expires, const char *json)
{
	size_t n = strlen(json);
	char *copy = malloc(n + 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, json, n + 1);
	free(g->json);
	g->json = copy;
	g->json_len = n;
	g->expires = expires;
	snprintf(g->owner, sizeof(g->owner), "%s", owner ? owner : "");
	return 0;
}

static int group_insert(struct store *s, const char *app, const char *id, const char *owner,
                        int64_t expires, const char *json)
{
	struct store_group **pp = group_slot(s, app, id), *g = *pp;

	if (g)
		return group_fill(g, owner, expires, json);
	g = calloc(1, sizeof(*g));
	if (!g || group_fill(g, owner, expires, json)) {
		free(g);
		return -ENOMEM;
	}
	snprintf(g->app, sizeof(g->app), "%s", app);
	snprintf(g->id, sizeof(g->id), "%s", id);
	*pp = g;
	s->ngroups++;
	return 0;
}

static int group_write(struct store *s, const char *app, const char *id, const char *owner,
                       int64_t expires, const char *json)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!s->db)
		return 0;
	rc = sqlite3_prepare_v2(s->db,
	                        "INSERT INTO groups(app, id, owner, expires, json) "
	                        "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(app, id) DO UPDATE SET "
	                        "owner = ?3, expires = ?4, json = ?5",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, owner ? owner : "", -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, expires);
		sqlite3_bind_text(st, 5, json, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	s->healthy = rc == SQLITE_OK;
	return rc == SQLITE_OK ? 0 : -EIO;
}

static int load_groups(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "SELECT app, id, owner, expires, json FROM groups", -1,
	                            &st, NULL);
	int step = SQLITE_DONE;

	while (rc == SQLITE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *app = (const char *)sqlite3_column_text(st, 0);
		const char *id = (const char *)sqlite3_column_text(st, 1);
		const char *owner = (const char *)sqlite3_column_text(st, 2);
		const char *json = (const char *)sqlite3_column_text(st, 4);

		/* Rows we would not have written (ids too long) are skipped, not trusted. */
		if (valid_key(app, id) && owner && strlen(owner) <= STORE_OWNER_MAX && json &&
		    group_insert(s, app, id, owner, sqlite3_column_int64(st, 3), json))
			rc = SQLITE_NOMEM;
	}
	if (rc == SQLITE_OK && step != SQLITE_DONE)
		rc = step;
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -EIO;
}

int store_group_put(struct store *s, const char *app, const char *id, const char *owner,
                    int64_t expires, const char *json)
{
	if (!valid_key(app, id) || !json || (owner && strlen(owner) > STORE_OWNER_MAX))
		return -EINVAL;
	if (group_write(s, app, id, owner, expires, json))
		return -EIO;
	/* On disk but not in memory after an OOM: the next start loads it; rare enough. */
	return group_insert(s, app, id, owner, expires, json);
}

const struct store_group *store_group_get(const struct store *s, const char *app, const char *id)
{
	if (!valid_key(app, id))
		return NULL;
	return *group_slot(s, app, id);
}

static int group_unwrite(struct store *s, const char *app, const char *id)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!s->db)
		return 0;
	rc = sqlite3_prepare_v2(s->db, "DELETE FROM groups WHERE app = ?1 AND id = ?2", -1, &st,
	                        NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, app, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	s->healthy = rc == SQLITE_OK;
	return rc == SQLITE_OK ? 0 : -EIO;
}

static void group_unlink(struct store *s, struct store_group **pp)
{
	struct store_group *g = *pp;

	*pp = g->next;
	free(g->json);
	free(g);
	s->ngroups--;
}

int store_group_delete(struct store *s, const char *app, const char *id)
{
	struct store_group **pp;

	if (!valid_key(app, id))
		return -ENOENT;
	pp = group_slot(s, app, id);
	if (!*pp)
		return -ENOENT;
	if (group_unwrite(s, app, id))
		return -EIO;
	group_unlink(s, pp);
	return 0;
}

size_t store_group_count(const struct store *s, const char *app)
{
	size_t n = 0;

	if (!app)
		return s->ngroups;
	for (size_t i = 0; i < GROUP_BUCKETS; i++)
		for (const struct store_group *g = s->groups[i]; g; g = g->next)
			n += strcmp(g->app, app) == 0;
	return n;
}

void store_group_list(const struct store *s, const char *app,
                      void (*fn)(const struct store_group *g, void *arg), void *arg)
{
	for (size_t i = 0; i < GROUP_BUCKETS; i++)
		for (const struct store_group *g = s->groups[i]; g; g = g->next)
			if (!app || strcmp(g->app, app) == 0)
				fn(g, arg);
}

static int expire_rows(struct store *s, int64_t now)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!s->db)
		return 0;
	rc = sqlite3_prepare_v2(s->db, "DELETE FROM groups WHERE expires < ?1", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, now);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	s->healthy = rc == SQLITE_OK;
	return rc == SQLITE_OK ? 0 : -EIO;
}

int store_group_expire(struct store *s, int64_t now,
                       void (*fn)(const char *app, const char *id, void *arg), void *arg)
{
	struct store_group *gone = NULL;
	bool any = false;
	int n = 0;

	for (size_t i = 0; i < GROUP_BUCKETS && !any; i++)
		for (const struct store_group *g = s->groups[i]; g && !any; g = g->next)
			any = g->expires < now;
	if (!any)
		return 0; /* the common case touches no disk */
	if (expire_rows(s, now))
		return -EIO;
	for (size_t i = 0; i < GROUP_BUCKETS; i++) {
		for (struct store_group **pp = &s->groups[i]; *pp;) {
			struct store_group *g = *pp;

			if (g->expires >= now) {
				pp = &g->next;
				continue;
			}
			*pp = g->next;
			g->next = gone;
			gone = g;
			s->ngroups--;
		}
	}
	/* Called once the store no longer holds them, so @fn may look them up or re-create. */
	while (gone) {
		struct store_group *g = gone;

		gone = g->next;
		if (fn)
			fn(g->app, g->id, arg);
		free(g->json);
		free(g);
		n++;
	}
	return n;
}
