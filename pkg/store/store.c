/*
 * store: SQLite behind, a small open-addressing table in front. Table `bookings(bid PRIMARY KEY,
 * denied INTEGER, exp INTEGER)`. synchronous=FULL so a deny is durable before we answer 204.
 */
#include "pkg/store/store.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define INITIAL_SLOTS 256

enum state { FREE = 0, DENIED, ALLOWED, SEEN };

struct slot {
	char bid[STORE_BID_MAX + 1];
	int64_t exp;
	enum state state;
};

struct store {
	sqlite3 *db; /* NULL: memory only */
	struct slot *slots;
	size_t nslots, used;
	bool healthy;
};

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

static int put(struct store *s, const char *bid, enum state st, int64_t exp)
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
			put(s, old[i].bid, old[i].state, old[i].exp);
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

static int write_row(struct store *s, const char *bid, bool denied, int64_t exp)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!s->db)
		return 0;
	rc = sqlite3_prepare_v2(s->db,
	                        "INSERT INTO bookings(bid, denied, exp) VALUES(?1, ?2, ?3) "
	                        "ON CONFLICT(bid) DO UPDATE SET denied = ?2, exp = ?3",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, bid, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, denied);
		sqlite3_bind_int64(st, 3, exp);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	}
	sqlite3_finalize(st);
	s->healthy = rc == SQLITE_OK;
	return rc == SQLITE_OK ? 0 : -EIO;
}

static int load_rows(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, "SELECT bid, denied, exp FROM bookings", -1, &st, NULL);
	int step = SQLITE_DONE;

	/* A damaged database must not load half a deny list: any step error fails the open. */
	while (rc == SQLITE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
		const char *bid = (const char *)sqlite3_column_text(st, 0);

		if (bid && strlen(bid) <= STORE_BID_MAX &&
		    put(s, bid, sqlite3_column_int(st, 1) ? DENIED : ALLOWED,
		        sqlite3_column_int64(st, 2)))
			rc = SQLITE_NOMEM;
	}
	if (rc == SQLITE_OK && step != SQLITE_DONE)
		rc = step;
	sqlite3_finalize(st);
	return rc == SQLITE_OK ? 0 : -EIO;
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
	            "exp INTEGER NOT NULL)") ||
	    load_rows(s)) {
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
	if (!s || !(s->slots = calloc(INITIAL_SLOTS, sizeof(*s->slots)))) {
		free(s);
		snprintf(why, 256, "out of memory");
		return -ENOMEM;
	}
	s->nslots = INITIAL_SLOTS;
	s->healthy = true;
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
	free(s);
}

static bool valid_bid(const char *bid)
{
	return bid && *bid && strlen(bid) <= STORE_BID_MAX;
}

static int set_state(struct store *s, const char *bid, enum state st, int64_t exp)
{
	if (!valid_bid(bid))
		return -EINVAL;
	if (write_row(s, bid, st == DENIED, exp))
		return -EIO;
	return put(s, bid, st, exp);
}

int store_deny(struct store *s, const char *bid, int64_t exp)
{
	return set_state(s, bid, DENIED, exp);
}

int store_allow(struct store *s, const char *bid, int64_t exp)
{
	return set_state(s, bid, ALLOWED, exp);
}

void store_seen(struct store *s, const char *bid, int64_t exp)
{
	struct slot *sl;

	if (!valid_bid(bid))
		return;
	sl = find(s, bid);
	if (sl->state == FREE || (sl->state == SEEN && sl->exp < exp))
		put(s, bid, SEEN, exp);
}

bool store_is_denied(const struct store *s, const char *bid, int64_t now)
{
	const struct slot *sl;

	if (!valid_bid(bid))
		return false;
	sl = find(s, bid);
	return sl->state == DENIED && sl->exp >= now;
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

int store_tidy(struct store *s, int64_t now)
{
	size_t before = s->used;
	sqlite3_stmt *st = NULL;
	int rc = SQLITE_OK;

	if (s->db) {
		rc = sqlite3_prepare_v2(s->db, "DELETE FROM bookings WHERE exp < ?1", -1, &st,
		                        NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_int64(st, 1, now);
			rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		}
		sqlite3_finalize(st);
		s->healthy = rc == SQLITE_OK;
	}
	if (rebuild(s, s->nslots, now))
		return -ENOMEM;
	return rc == SQLITE_OK ? (int)(before - s->used) : -EIO;
}

bool store_is_healthy(struct store *s)
{
	if (!s->healthy)
		return false;
	/* Reads the schema page, so a vanished or unreadable file shows. */
	return !s->db || sqlite3_exec(s->db, "SELECT count(*) FROM sqlite_master", NULL, NULL,
	                              NULL) == SQLITE_OK;
}
