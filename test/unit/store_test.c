/*
 * store_test: pkg/store against its contract (pkg/store/store.h). In memory: deny/allow/seen
 * semantics, expiry (denied at exp, not after), listing only live entries, invalid booking ids,
 * tidy, and growth past the initial table. On disk (a mkdtemp directory under /tmp, removed
 * afterwards): what survives a reopen (deny, allow) and what does not (seen), tidy reaching the
 * disk, a second opener seeing a change at once, open errors with their reason, health after a
 * failed write, and a damaged database that must not load half a deny list. One thread checking
 * the deny list while another grows and tidies it (relay serve's TURN thread and main loop) never
 * sees a denied booking as not denied, and never waits for a write held up by the disk. Raw SQLite calls
 * only prepare the files that store_open() then reads.
 */
#include "pkg/store/store.h"
#include "test/harness.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

/* What store_list() reported: the first few entries, and how many and their exp sum in all. */
struct listing {
	size_t n;
	int64_t exp_sum;
	struct {
		char bid[STORE_BID_MAX + 1];
		int64_t exp;
	} e[16];
};

static void collect(const char *bid, int64_t exp, void *arg)
{
	struct listing *l = arg;

	if (l->n < sizeof(l->e) / sizeof(l->e[0])) {
		snprintf(l->e[l->n].bid, sizeof(l->e[l->n].bid), "%s", bid);
		l->e[l->n].exp = exp;
	}
	l->n++;
	l->exp_sum += exp;
}

static struct listing list(const struct store *s, enum store_list which, int64_t now)
{
	struct listing l;

	memset(&l, 0, sizeof(l));
	store_list(s, which, now, collect, &l);
	return l;
}

/* The exp listed for @bid, or -1 when it is not listed. */
static int64_t listed_exp(const struct listing *l, const char *bid)
{
	for (size_t i = 0; i < l->n && i < sizeof(l->e) / sizeof(l->e[0]); i++)
		if (strcmp(l->e[i].bid, bid) == 0)
			return l->e[i].exp;
	return -1;
}

/* The exp store_list() gives for @bid at @now, or -1 when it is not listed. */
static int64_t exp_of(const struct store *s, enum store_list which, int64_t now, const char *bid)
{
	struct listing l = list(s, which, now);

	return listed_exp(&l, bid);
}

static struct store *open_store(const char *dir)
{
	struct store *s = NULL;
	char why[256] = "";
	int ret = store_open(dir, &s, why);

	CHECK_EQ(ret, 0);
	CHECK(s != NULL);
	if (ret)
		fprintf(stderr, "store_open: %s\n", why);
	return s;
}

/* A new empty directory under /tmp; free with remove_dir(). */
static char *make_dir(void)
{
	char *dir = strdup("/tmp/relay-store-test.XXXXXX");

	if (!dir || !mkdtemp(dir))
		abort();
	return dir;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_dir(char *dir)
{
	CHECK_EQ(nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS), 0);
	free(dir);
}

/* A booking id of @len bytes. */
static char *long_bid(size_t len)
{
	char *bid = malloc(len + 1);

	if (!bid)
		abort();
	memset(bid, 'b', len);
	bid[len] = '\0';
	return bid;
}

/* ---- in memory ---- */

static void test_deny_allow(void)
{
	struct store *s = open_store(NULL);
	struct listing l;

	CHECK(!store_is_denied(s, "bk", 0));
	CHECK_EQ(store_deny(s, "bk", 100), 0);
	CHECK(store_is_denied(s, "bk", 50));
	CHECK(store_is_denied(s, "bk", 100));  /* at exp */
	CHECK(!store_is_denied(s, "bk", 101)); /* not after */
	CHECK(!store_is_denied(s, "bk2", 50));
	CHECK(!store_is_denied(s, "b", 50));
	CHECK_EQ(store_denied_until(s, "bk", 50), 100);
	CHECK_EQ(store_denied_until(s, "bk", 101), 0);
	CHECK_EQ(store_denied_until(s, "bk2", 50), 0);
	l = list(s, STORE_DENIED, 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(listed_exp(&l, "bk"), 100);

	CHECK_EQ(store_allow(s, "bk", 200), 0);
	CHECK(!store_is_denied(s, "bk", 50));
	CHECK_EQ(list(s, STORE_DENIED, 0).n, 0);
	l = list(s, STORE_ALLOWED, 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(listed_exp(&l, "bk"), 200);

	CHECK_EQ(store_deny(s, "bk", 300), 0); /* deny again: off the allow list */
	CHECK(store_is_denied(s, "bk", 250));
	CHECK_EQ(list(s, STORE_ALLOWED, 0).n, 0);
	CHECK_EQ(store_allow(s, "other", 50), 0); /* allowing another does not touch it */
	CHECK(store_is_denied(s, "bk", 250));
	store_close(s);
}

static void test_seen(void)
{
	struct store *s = open_store(NULL);
	struct listing l;

	store_seen(s, "s1", 100);
	CHECK(!store_is_denied(s, "s1", 0));
	l = list(s, STORE_ALLOWED, 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(listed_exp(&l, "s1"), 100);
	store_seen(s, "s1", 300); /* a later exp extends it */
	store_seen(s, "s1", 200); /* an earlier one does not shorten it */
	l = list(s, STORE_ALLOWED, 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(listed_exp(&l, "s1"), 300);

	CHECK_EQ(store_deny(s, "d1", 100), 0);
	store_seen(s, "d1", 500); /* does not override the deny */
	CHECK(store_is_denied(s, "d1", 50));
	CHECK(!store_is_denied(s, "d1", 101));
	l = list(s, STORE_DENIED, 0);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(listed_exp(&l, "d1"), 100);
	CHECK_EQ(listed_exp(&l, "s1"), -1);
	CHECK_EQ(exp_of(s, STORE_ALLOWED, 0, "d1"), -1);

	CHECK_EQ(store_deny(s, "s1", 400), 0); /* a deny overrides seen */
	CHECK(store_is_denied(s, "s1", 350));
	CHECK_EQ(list(s, STORE_ALLOWED, 0).n, 0);

	store_seen(s, "a1", 100);
	CHECK_EQ(store_allow(s, "a1", 50), 0); /* allow takes over, with its exp */
	CHECK_EQ(exp_of(s, STORE_ALLOWED, 0, "a1"), 50);
	store_close(s);
}

static void test_list_live(void)
{
	struct store *s = open_store(NULL);
	struct listing l;

	CHECK_EQ(store_deny(s, "deny-old", 10), 0);
	CHECK_EQ(store_deny(s, "deny-new", 100), 0);
	CHECK_EQ(store_allow(s, "allow-old", 10), 0);
	CHECK_EQ(store_allow(s, "allow-new", 100), 0);
	store_seen(s, "seen-old", 10);
	store_seen(s, "seen-new", 100);

	l = list(s, STORE_DENIED, 50);
	CHECK_EQ(l.n, 1);
	CHECK_EQ(listed_exp(&l, "deny-new"), 100);
	l = list(s, STORE_ALLOWED, 50);
	CHECK_EQ(l.n, 2);
	CHECK_EQ(listed_exp(&l, "allow-new"), 100);
	CHECK_EQ(listed_exp(&l, "seen-new"), 100);

	l = list(s, STORE_DENIED, 10); /* exp >= now is live */
	CHECK_EQ(l.n, 2);
	CHECK_EQ(listed_exp(&l, "deny-old"), 10);
	l = list(s, STORE_ALLOWED, 10);
	CHECK_EQ(l.n, 4);
	CHECK_EQ(listed_exp(&l, "allow-old"), 10);
	CHECK_EQ(listed_exp(&l, "seen-old"), 10);

	CHECK_EQ(list(s, STORE_DENIED, 101).n, 0);
	CHECK_EQ(list(s, STORE_ALLOWED, 101).n, 0);
	store_close(s);
}

static void test_invalid_bid(void)
{
	struct store *s = open_store(NULL);
	char *max = long_bid(STORE_BID_MAX), *over = long_bid(STORE_BID_MAX + 1);

	CHECK_EQ(store_deny(s, "", 100), -EINVAL);
	CHECK_EQ(store_allow(s, "", 100), -EINVAL);
	CHECK_EQ(store_deny(s, over, 100), -EINVAL);
	CHECK_EQ(store_allow(s, over, 100), -EINVAL);
	store_seen(s, "", 100);
	store_seen(s, over, 100);
	CHECK(!store_is_denied(s, "", 0));
	CHECK(!store_is_denied(s, over, 0));
	CHECK_EQ(list(s, STORE_DENIED, 0).n, 0);
	CHECK_EQ(list(s, STORE_ALLOWED, 0).n, 0);

	CHECK_EQ(store_deny(s, max, 100), 0); /* 127 bytes is fine */
	CHECK(store_is_denied(s, max, 0));
	CHECK(!store_is_denied(s, over, 0)); /* not a prefix match */
	CHECK_EQ(exp_of(s, STORE_DENIED, 0, max), 100);
	free(max);
	free(over);
	store_close(s);
}

static void test_tidy(void)
{
	struct store *s = open_store(NULL);

	CHECK_EQ(store_tidy(s, 0), 0);
	CHECK_EQ(store_deny(s, "a", 10), 0);
	CHECK_EQ(store_allow(s, "b", 20), 0);
	store_seen(s, "c", 30);
	CHECK_EQ(store_deny(s, "d", 100), 0);

	CHECK_EQ(store_tidy(s, 25), 2); /* a and b */
	CHECK_EQ(store_tidy(s, 25), 0);
	CHECK(store_is_denied(s, "d", 50));
	CHECK_EQ(list(s, STORE_DENIED, 0).n, 1);
	CHECK_EQ(list(s, STORE_ALLOWED, 0).n, 1);
	CHECK_EQ(exp_of(s, STORE_ALLOWED, 0, "c"), 30);
	CHECK_EQ(store_tidy(s, 30), 0); /* c is live at its exp */
	CHECK_EQ(store_tidy(s, 31), 1);
	CHECK_EQ(store_tidy(s, 1000), 1);
	CHECK_EQ(list(s, STORE_DENIED, 0).n, 0);
	CHECK_EQ(list(s, STORE_ALLOWED, 0).n, 0);

	/* a tidied booking can come back */
	CHECK_EQ(store_deny(s, "a", 2000), 0);
	CHECK(store_is_denied(s, "a", 1500));
	store_close(s);
}

#define MANY 5000

static void test_grow(void)
{
	struct store *s = open_store(NULL);
	int64_t want_denied = 0, want_allowed = 0;
	int failed = 0, wrong = 0;
	struct listing l;
	char bid[32];

	for (int i = 0; i < MANY; i++) {
		snprintf(bid, sizeof(bid), "booking-%d", i);
		failed +=
		        (i % 2 ? store_allow(s, bid, 1000 + i) : store_deny(s, bid, 1000 + i)) != 0;
		*(i % 2 ? &want_allowed : &want_denied) += 1000 + i;
	}
	CHECK_EQ(failed, 0);
	for (int i = 0; i < MANY; i++) {
		snprintf(bid, sizeof(bid), "booking-%d", i);
		wrong += store_is_denied(s, bid, 0) != !(i % 2);
		snprintf(bid, sizeof(bid), "absent-%d", i);
		wrong += store_is_denied(s, bid, 0);
	}
	CHECK_EQ(wrong, 0);
	l = list(s, STORE_DENIED, 0);
	CHECK_EQ(l.n, MANY / 2);
	CHECK_EQ(l.exp_sum, want_denied);
	l = list(s, STORE_ALLOWED, 0);
	CHECK_EQ(l.n, MANY / 2);
	CHECK_EQ(l.exp_sum, want_allowed);

	/* updates in place do not add entries */
	for (int i = 0; i < MANY; i += 2) {
		snprintf(bid, sizeof(bid), "booking-%d", i);
		failed += store_deny(s, bid, 1000 + i) != 0;
	}
	CHECK_EQ(failed, 0);
	CHECK_EQ(list(s, STORE_DENIED, 0).n, MANY / 2);

	/* tidy the older half; the rest stays findable */
	CHECK_EQ(store_tidy(s, 1000 + MANY / 2), MANY / 2);
	for (int i = 0; i < MANY; i++) {
		snprintf(bid, sizeof(bid), "booking-%d", i);
		wrong += store_is_denied(s, bid, 0) != (!(i % 2) && i >= MANY / 2);
	}
	CHECK_EQ(wrong, 0);
	CHECK_EQ(list(s, STORE_DENIED, 0).n + list(s, STORE_ALLOWED, 0).n, MANY / 2);

	/* and it grows again */
	for (int i = 0; i < MANY; i++) {
		snprintf(bid, sizeof(bid), "seen-%d", i);
		store_seen(s, bid, 5000);
	}
	CHECK_EQ(list(s, STORE_ALLOWED, 0).n, MANY / 4 + MANY);
	CHECK(store_is_denied(s, "booking-4998", 0));
	store_close(s);
}

static void test_memory_health(void)
{
	struct store *s = open_store(NULL);

	CHECK(store_is_healthy(s));
	CHECK_EQ(store_deny(s, "x", 1), 0);
	CHECK(store_is_healthy(s));
	store_close(s);
	store_close(NULL);
}

/* ---- on disk ---- */

static void test_disk_survives(void)
{
	char *dir = make_dir();
	struct store *s = open_store(dir);
	struct listing l;

	CHECK_EQ(store_deny(s, "denied", 1000), 0);
	CHECK_EQ(store_allow(s, "allowed", 1000), 0);
	store_seen(s, "seen", 1000);
	CHECK_EQ(store_deny(s, "flipped", 1000), 0);
	CHECK_EQ(store_allow(s, "flipped", 2000), 0);
	CHECK_EQ(store_allow(s, "flopped", 1000), 0);
	CHECK_EQ(store_deny(s, "flopped", 3000), 0);
	CHECK(store_is_healthy(s));
	store_close(s);

	s = open_store(dir);
	CHECK(store_is_healthy(s));
	CHECK(store_is_denied(s, "denied", 500));
	CHECK(!store_is_denied(s, "denied", 1001));
	CHECK(!store_is_denied(s, "flipped", 500));
	CHECK(store_is_denied(s, "flopped", 2500));
	l = list(s, STORE_DENIED, 0);
	CHECK_EQ(l.n, 2);
	CHECK_EQ(listed_exp(&l, "denied"), 1000);
	CHECK_EQ(listed_exp(&l, "flopped"), 3000);
	l = list(s, STORE_ALLOWED, 0);
	CHECK_EQ(l.n, 2); /* not "seen" */
	CHECK_EQ(listed_exp(&l, "allowed"), 1000);
	CHECK_EQ(listed_exp(&l, "flipped"), 2000);
	CHECK_EQ(listed_exp(&l, "seen"), -1);

	CHECK_EQ(store_allow(s, "denied", 1500), 0); /* an update of a loaded row */
	store_close(s);
	s = open_store(dir);
	CHECK(!store_is_denied(s, "denied", 500));
	CHECK_EQ(exp_of(s, STORE_ALLOWED, 0, "denied"), 1500);
	store_close(s);
	remove_dir(dir);
}

/* A change is on disk when the call returns: a second opener sees it without a close. */
static void test_disk_at_once(void)
{
	char *dir = make_dir();
	struct store *a = open_store(dir), *b;

	CHECK_EQ(store_deny(a, "now", 1000), 0);
	b = open_store(dir);
	CHECK(store_is_denied(b, "now", 0));
	store_close(b);
	store_close(a);
	remove_dir(dir);
}

/* A batch: its writes are on disk once it ends (a second opener sees them), and memory is
 * applied at once; a batch in a memory-only store is a no-op. */
static void test_disk_batch(void)
{
	char *dir = make_dir();
	struct store *a = open_store(dir), *b, *m = open_store(NULL);
	char bid[32];

	CHECK_EQ(store_batch_begin(a), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(bid, sizeof(bid), "bk-%d", i);
		CHECK_EQ(store_deny(a, bid, 1000), 0);
	}
	CHECK_EQ(store_allow(a, "bk-7", 1000), 0);
	CHECK(store_is_denied(a, "bk-199", 0)); /* in memory before the batch ends */
	CHECK_EQ(store_batch_end(a), 0);
	CHECK(store_is_healthy(a));
	b = open_store(dir);
	CHECK(store_is_denied(b, "bk-0", 0));
	CHECK(store_is_denied(b, "bk-199", 0));
	CHECK(!store_is_denied(b, "bk-7", 0));
	CHECK_EQ(list(b, STORE_DENIED, 0).n, 199);
	store_close(b);
	CHECK_EQ(store_deny(a, "after", 1000), 0); /* out of the batch: at once again */
	b = open_store(dir);
	CHECK(store_is_denied(b, "after", 0));
	store_close(b);
	store_close(a);
	CHECK_EQ(store_batch_begin(m), 0);
	CHECK_EQ(store_deny(m, "x", 1000), 0);
	CHECK_EQ(store_batch_end(m), 0);
	CHECK(store_is_denied(m, "x", 0));
	store_close(m);
	remove_dir(dir);
}

static void test_disk_tidy(void)
{
	char *dir = make_dir();
	struct store *s = open_store(dir);

	CHECK_EQ(store_deny(s, "old-deny", 10), 0);
	CHECK_EQ(store_allow(s, "old-allow", 10), 0);
	CHECK_EQ(store_deny(s, "new-deny", 1000), 0);
	CHECK_EQ(store_allow(s, "new-allow", 1000), 0);
	store_close(s);

	s = open_store(dir); /* expired rows stay on disk until tidied */
	CHECK_EQ(list(s, STORE_DENIED, 0).n, 2);
	CHECK_EQ(list(s, STORE_ALLOWED, 0).n, 2);
	CHECK_EQ(store_tidy(s, 500), 2);
	store_close(s);

	s = open_store(dir);
	CHECK_EQ(list(s, STORE_DENIED, 0).n, 1);
	CHECK_EQ(exp_of(s, STORE_DENIED, 0, "new-deny"), 1000);
	CHECK_EQ(list(s, STORE_ALLOWED, 0).n, 1);
	CHECK_EQ(exp_of(s, STORE_ALLOWED, 0, "new-allow"), 1000);
	CHECK_EQ(store_tidy(s, 500), 0);
	store_close(s);
	remove_dir(dir);
}

static void check_open_fails(const char *dir)
{
	static char not_null;
	struct store *s = (struct store *)&not_null;
	char why[256] = "";
	int ret = store_open(dir, &s, why);

	CHECK(ret < 0);
	CHECK(s == NULL);
	CHECK(strlen(why) > 0);
	CHECK(strlen(why) < sizeof(why));
	if (ret == 0)
		store_close(s);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_open_errors(void)
{
	char *dir = make_dir();
	char path[512];
	struct store *s;

	snprintf(path, sizeof(path), "%s/plain-file", dir);
	write_file(path, "not a directory\n");
	check_open_fails(path);

	snprintf(path, sizeof(path), "%s/missing/sub", dir); /* only the last level is made */
	check_open_fails(path);

	snprintf(path, sizeof(path), "%s/junk", dir);
	CHECK_EQ(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/junk/relay.db", dir);
	write_file(path, "this is not an SQLite database, not even close to one........\n");
	snprintf(path, sizeof(path), "%s/junk", dir);
	check_open_fails(path);

	snprintf(path, sizeof(path), "%s/new", dir); /* a missing last level is created */
	s = open_store(path);
	CHECK(s && store_is_healthy(s));
	CHECK(s && store_deny(s, "x", 10) == 0);
	store_close(s);
	snprintf(path, sizeof(path), "%s/new/relay.db", dir);
	CHECK_EQ(access(path, F_OK), 0);
	remove_dir(dir);
}

/* Run @sql on the database in @dir through a connection of our own. */
static void raw_sql(const char *dir, const char *sql)
{
	char path[512];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/relay.db", dir);
	CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* A write that fails makes the store unhealthy until a write succeeds again. */
static void test_disk_health(void)
{
	char *dir = make_dir();
	struct store *s = open_store(dir);

	CHECK(store_is_healthy(s));
	raw_sql(dir, "DROP TABLE bookings");
	CHECK_EQ(store_deny(s, "lost", 100), -EIO);
	CHECK(!store_is_denied(s, "lost", 0)); /* not applied */
	CHECK(!store_is_healthy(s));
	raw_sql(dir, "CREATE TABLE bookings(bid TEXT PRIMARY KEY, denied INTEGER NOT NULL, "
	             "exp INTEGER NOT NULL, ver INTEGER NOT NULL DEFAULT 0)");
	CHECK_EQ(store_deny(s, "kept", 100), 0);
	CHECK(store_is_denied(s, "kept", 0));
	CHECK(store_is_healthy(s));
	store_close(s);
	remove_dir(dir);
}

/* ---- versions (a cluster's changes: the last made wins, whatever order they arrive in) ---- */

static void test_versions(void)
{
	struct store *s = open_store(NULL);
	int64_t ver;

	CHECK(store_newer(false, 10, 2, true, 99, 1)); /* a later version wins */
	CHECK(!store_newer(true, 99, 1, false, 10, 2));
	CHECK(store_newer(true, 10, 5, false, 99, 5)); /* equal: deny over allow */
	CHECK(!store_newer(false, 99, 5, true, 10, 5));
	CHECK(store_newer(true, 11, 5, true, 10, 5));  /* then the later end */
	CHECK(!store_newer(true, 10, 5, true, 10, 5)); /* the same change: not newer */

	CHECK_EQ(store_merge(s, "bk", true, 1000, 100, false), 1);
	CHECK(store_is_denied(s, "bk", 500));
	CHECK_EQ(store_version(s, "bk"), 100);
	CHECK_EQ(store_merge(s, "bk", false, 1000, 50, false), 0); /* an older allow: ignored */
	CHECK(store_is_denied(s, "bk", 500));
	CHECK_EQ(store_merge(s, "bk", true, 300, 200, false), 1); /* a newer, shorter deny */
	CHECK_EQ(store_denied_until(s, "bk", 0), 300);
	CHECK_EQ(store_merge(s, "bk", true, 900, 150, false), 0); /* an older, longer one */
	CHECK_EQ(store_denied_until(s, "bk", 0), 300);
	CHECK_EQ(store_merge(s, "bk", false, 1000, 250, false), 1); /* a newer allow lifts it */
	CHECK(!store_is_denied(s, "bk", 0));
	CHECK_EQ(store_merge(s, "", true, 1000, 1, false), -EINVAL);

	/* A change made here is newer than anything held, even with a clock behind. */
	ver = 10;
	CHECK_EQ(store_change(s, "bk", true, 700, &ver), 0);
	CHECK_EQ(ver, 251);
	CHECK(store_is_denied(s, "bk", 0));
	ver = 5000;
	CHECK_EQ(store_change(s, "bk", false, 700, &ver), 0);
	CHECK_EQ(ver, 5000);
	CHECK_EQ(store_version(s, "bk"), 5000);
	/* ... and than anything this store has seen, for any booking (review 2, findings 2, 3:
	 * a clock behind or stepped back) */
	ver = 1;
	CHECK_EQ(store_change(s, "new", true, 700, &ver), 0);
	CHECK_EQ(ver, 5001);
	store_saw_version(s, 9000);
	ver = 1;
	CHECK_EQ(store_change(s, "new", true, 700, &ver), 0);
	CHECK_EQ(ver, 9001);
	CHECK_EQ(store_max_version(s), 9001);

	/* Finding 5: versions stay below 2^53; a greater one is refused, held + 1 saturates. */
	CHECK_EQ(store_merge(s, "big", true, 700, STORE_VER_MAX + 1, false), -EINVAL);
	CHECK_EQ(store_merge(s, "big", true, 700, INT64_MAX, false), -EINVAL);
	CHECK_EQ(store_merge(s, "big", true, 700, -1, false), -EINVAL);
	CHECK_EQ(store_merge(s, "big", true, 700, STORE_VER_MAX, false), 1);
	ver = 1;
	CHECK_EQ(store_change(s, "big", false, 700, &ver), 0);
	CHECK_EQ(ver, STORE_VER_MAX);
	ver = INT64_MAX;
	CHECK_EQ(store_change(s, "other", false, 700, &ver), 0);
	CHECK_EQ(ver, STORE_VER_MAX);

	/* Seen bookings hold no version: any change is newer. */
	store_seen(s, "seen", 900);
	CHECK_EQ(store_version(s, "seen"), 0);
	CHECK_EQ(store_merge(s, "seen", false, 900, 0, false), 1);
	store_close(s);
}

struct each {
	int n;
	int64_t ver_sum;
	bool saw_seen;
};

static void each_entry(const char *bid, bool deny, int64_t exp, int64_t ver, void *arg)
{
	struct each *e = arg;

	(void)deny, (void)exp;
	e->n++;
	e->ver_sum += ver;
	e->saw_seen = e->saw_seen || strcmp(bid, "seen") == 0;
}

static void test_each(void)
{
	struct store *s = open_store(NULL);
	struct each e = {0};

	CHECK_EQ(store_merge(s, "d", true, 100, 7, false), 1);
	CHECK_EQ(store_merge(s, "a", false, 100, 8, false), 1);
	CHECK_EQ(store_merge(s, "old", true, 10, 9, false), 1);
	store_seen(s, "seen", 100);
	store_each(s, 50, each_entry, &e);
	CHECK_EQ(e.n, 2); /* live deny and allow only */
	CHECK_EQ(e.ver_sum, 15);
	CHECK(!e.saw_seen);
	store_close(s);
}

/* Versions survive a restart; a state dir of the schema before versions opens, its rows at 0. */
static void test_versions_disk(void)
{
	char *dir = make_dir();
	struct store *s;

	raw_sql(dir, "CREATE TABLE bookings(bid TEXT PRIMARY KEY, denied INTEGER NOT NULL, "
	             "exp INTEGER NOT NULL); INSERT INTO bookings VALUES('old-deny', 1, 1000), "
	             "('old-allow', 0, 1000)");
	s = open_store(dir);
	CHECK(s != NULL);
	CHECK(store_is_denied(s, "old-deny", 0));
	/* finding 6: a migrated deny holds the migration time, an allow 0 (errs towards refusing) */
	CHECK(store_version(s, "old-deny") >= (int64_t)time(NULL) * 1000 - 60000);
	CHECK_EQ(store_version(s, "old-allow"), 0);
	CHECK_EQ(store_merge(s, "old-deny", false, 1000, 1, false), 0); /* an earlier allow */
	CHECK(store_is_denied(s, "old-deny", 0));
	CHECK_EQ(store_merge(s, "old-deny", false, 1000, STORE_VER_MAX - 1, false), 1);
	CHECK(!store_is_denied(s, "old-deny", 0));
	CHECK_EQ(store_merge(s, "old-allow", true, 2000, 77, false), 1);
	store_close(s);

	s = open_store(dir); /* migrated once: opens again */
	CHECK(s != NULL);
	CHECK(!store_is_denied(s, "old-deny", 0));
	CHECK_EQ(store_version(s, "old-deny"), STORE_VER_MAX - 1);
	CHECK_EQ(store_denied_until(s, "old-allow", 0), 2000);
	CHECK_EQ(store_version(s, "old-allow"), 77);
	CHECK_EQ(store_merge(s, "old-allow", false, 2000, 76, false), 0);
	store_close(s);
	remove_dir(dir);
}

/* The highest version survives a restart even once tidy dropped the rows holding it; a state
 * loaded once says so after a restart; until then a gated store refuses every booking. */
static void test_max_version_disk(void)
{
	char *dir = make_dir();
	struct store *s = open_store(dir);
	int64_t ver = 1;

	CHECK(!store_loaded(s));
	store_gate(s);
	CHECK(store_is_denied(s, "anyone", 0));
	CHECK_EQ(store_merge(s, "ended", true, 100, 7000, false), 1);
	CHECK_EQ(store_tidy(s, 200), 1); /* the row holding 7000 is gone */
	store_close(s);

	s = open_store(dir);
	CHECK_EQ(store_max_version(s), 7000);
	CHECK(store_is_denied(s, "anyone", 0) == false); /* not gated until store_gate() */
	store_gate(s);
	CHECK(store_is_denied(s, "anyone", 0));
	CHECK_EQ(store_change(s, "ended", true, 900, &ver), 0);
	CHECK_EQ(ver, 7001); /* finding 3: newer than the ended entry */
	CHECK_EQ(store_set_loaded(s), 0);
	CHECK(!store_is_denied(s, "anyone", 0));
	store_close(s);

	s = open_store(dir);
	CHECK(store_loaded(s));
	store_gate(s); /* loaded once: not gated */
	CHECK(!store_is_denied(s, "anyone", 0));
	CHECK_EQ(store_max_version(s), 7001);
	store_close(s);
	remove_dir(dir);
}

/* Review 8: another instance's deny holds here in memory even when this disk fails. */
static void test_merge_disk_fails(void)
{
	char *dir = make_dir();
	struct store *s = open_store(dir);

	raw_sql(dir, "DROP TABLE bookings");
	CHECK_EQ(store_merge(s, "strict", true, 100, 5, false), -EIO);
	CHECK(!store_is_denied(s, "strict", 0));
	CHECK_EQ(store_merge(s, "held", true, 100, 5, true), -EIO);
	CHECK(store_is_denied(s, "held", 0));
	CHECK_EQ(store_version(s, "held"), 5);
	store_close(s);
	remove_dir(dir);
}

#define ROWS 5000

/* A database of @ROWS denied bookings, written in one transaction. */
static void make_rows(const char *dir)
{
	char path[512], bid[64];
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	int failed = 0;

	snprintf(path, sizeof(path), "%s/relay.db", dir);
	CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ(
	        sqlite3_exec(db,
	                     "CREATE TABLE bookings(bid TEXT PRIMARY KEY, denied INTEGER NOT NULL, "
	                     "exp INTEGER NOT NULL); BEGIN",
	                     NULL, NULL, NULL),
	        SQLITE_OK);
	CHECK_EQ(sqlite3_prepare_v2(db, "INSERT INTO bookings VALUES(?1, 1, 1000)", -1, &st, NULL),
	         SQLITE_OK);
	for (int i = 0; i < ROWS; i++) {
		snprintf(bid, sizeof(bid), "booking-%06d-with-some-padding", i);
		sqlite3_bind_text(st, 1, bid, -1, SQLITE_TRANSIENT);
		failed += sqlite3_step(st) != SQLITE_DONE;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	CHECK_EQ(failed, 0);
	CHECK_EQ(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* Overwrite the middle leaf page of a table b-tree (page type 0x0d) with 0xff. */
static void damage_leaf_page(const char *dir)
{
	char path[512];
	unsigned char *b;
	size_t ps, n, nleaves = 0, leaf = 0;
	long len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/relay.db", dir);
	f = fopen(path, "r+b");
	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 4096 || fseek(f, 0, SEEK_SET))
		abort();
	b = malloc((size_t)len);
	if (!b || fread(b, 1, (size_t)len, f) != (size_t)len)
		abort();
	ps = (size_t)b[16] << 8 | b[17];
	ps = ps == 1 ? 65536 : ps;
	n = (size_t)len / ps;
	for (size_t i = 1; i < n; i++)
		nleaves += b[i * ps] == 0x0d;
	for (size_t i = 1, k = 0; i < n; i++)
		if (b[i * ps] == 0x0d && k++ == nleaves / 2)
			leaf = i;
	CHECK(leaf > 0);
	memset(b + leaf * ps, 0xff, ps);
	CHECK_EQ(fseek(f, 0, SEEK_SET), 0);
	CHECK_EQ(fwrite(b, 1, (size_t)len, f), len);
	fclose(f);
	free(b);
}

/* A damaged database must fail to open, never load part of the deny list. */
static void test_disk_damaged(void)
{
	char *dir = make_dir();
	struct store *s = NULL;
	char why[256] = "";
	int ret;

	make_rows(dir);
	s = open_store(dir);
	CHECK_EQ(list(s, STORE_DENIED, 0).n, ROWS);
	store_close(s);

	damage_leaf_page(dir);
	ret = store_open(dir, &s, why);
	if (ret == 0) {
		CHECK_EQ(list(s, STORE_DENIED, 0).n, ROWS); /* everything, or fail */
		store_close(s);
	} else {
		CHECK(s == NULL);
		CHECK(strlen(why) > 0);
	}
	remove_dir(dir);
}

/* ---- discovery groups ---- */

struct expired {
	size_t n;
	char last[STORE_GID_MAX + 1];
	const struct store *s;
	bool gone_when_called; /* the store no longer held it when @fn ran */
};

static void on_expired(const char *app, const char *id, void *arg)
{
	struct expired *e = arg;

	e->n++;
	snprintf(e->last, sizeof(e->last), "%s", id);
	e->gone_when_called = store_group_get(e->s, app, id) == NULL;
}

static void count_group(const struct store_group *g, void *arg)
{
	(void)g;
	(*(size_t *)arg)++;
}

static void test_groups_memory(void)
{
	struct store *s = open_store(NULL);
	const struct store_group *g;
	struct expired e = {.s = s};
	size_t n = 0;
	char *long_id = long_bid(STORE_GID_MAX + 1);

	CHECK(store_group_get(s, "app", "g1") == NULL);
	CHECK_EQ(store_group_put(s, "app", "g1", "alice", 1000, "{\"ID\":\"g1\"}"), 0);
	CHECK_EQ(store_group_put(s, "app", "g2", "bob", 3000, "{}"), 0);
	CHECK_EQ(store_group_put(s, "other", "g1", "carol", 1000, "{\"o\":1}"), 0);
	g = store_group_get(s, "app", "g1");
	CHECK(g != NULL);
	if (g) {
		CHECK_EQ(strcmp(g->owner, "alice"), 0);
		CHECK_EQ(strcmp(g->json, "{\"ID\":\"g1\"}"), 0);
		CHECK_EQ(g->json_len, 11);
		CHECK_EQ(g->expires, 1000);
	}
	/* The same id in another app is another group. */
	g = store_group_get(s, "other", "g1");
	CHECK(g && strcmp(g->owner, "carol") == 0);
	CHECK_EQ(store_group_count(s, "app"), 2);
	CHECK_EQ(store_group_count(s, "other"), 1);
	CHECK_EQ(store_group_count(s, "none"), 0);
	CHECK_EQ(store_group_count(s, NULL), 3);
	store_group_list(s, "app", count_group, &n);
	CHECK_EQ(n, 2);

	/* Replace: new text and expiry, same count. */
	CHECK_EQ(store_group_put(s, "app", "g1", "alice", 2000, "{\"v\":2}"), 0);
	g = store_group_get(s, "app", "g1");
	CHECK(g && g->expires == 2000 && strcmp(g->json, "{\"v\":2}") == 0);
	CHECK_EQ(store_group_count(s, NULL), 3);

	CHECK_EQ(store_group_put(s, "app", long_id, "x", 1, "{}"), -EINVAL);
	CHECK_EQ(store_group_put(s, "", "g", "x", 1, "{}"), -EINVAL);
	CHECK_EQ(store_group_delete(s, "app", "nope"), -ENOENT);
	CHECK_EQ(store_group_delete(s, "other", "g1"), 0);
	CHECK(store_group_get(s, "other", "g1") == NULL);
	CHECK(store_group_get(s, "app", "g1") != NULL);

	/* Expiry: strictly before @now, reported after removal. */
	CHECK_EQ(store_group_expire(s, 2000, on_expired, &e), 0);
	CHECK_EQ(store_group_expire(s, 2001, on_expired, &e), 1);
	CHECK_EQ(e.n, 1);
	CHECK_EQ(strcmp(e.last, "g1"), 0);
	CHECK(e.gone_when_called);
	CHECK_EQ(store_group_count(s, NULL), 1);
	free(long_id);
	store_close(s);
}

/* Many groups: chains hold them all and expiry finds each. */
static void test_groups_many(void)
{
	struct store *s = open_store(NULL);
	struct expired e = {.s = s};
	char id[32];

	for (int i = 0; i < 10000; i++) {
		snprintf(id, sizeof(id), "g%d", i);
		CHECK_EQ(store_group_put(s, i % 2 ? "odd" : "even", id, "o", i, "{}"), 0);
	}
	CHECK_EQ(store_group_count(s, "odd"), 5000);
	CHECK(store_group_get(s, "odd", "g9999") != NULL);
	CHECK(store_group_get(s, "even", "g9999") == NULL);
	CHECK_EQ(store_group_expire(s, 5000, on_expired, &e), 5000);
	CHECK_EQ(store_group_count(s, NULL), 5000);
	CHECK(store_group_get(s, "even", "g4998") == NULL);
	CHECK(store_group_get(s, "even", "g5000") != NULL);
	store_close(s);
}

/* Groups survive a reopen; deletes and expiry reach the disk. */
static void test_groups_disk(void)
{
	char *dir = make_dir();
	struct store *s = open_store(dir);
	const struct store_group *g;
	struct expired e;

	CHECK_EQ(store_group_put(s, "app", "keep", "alice", 5000, "{\"k\":1}"), 0);
	CHECK_EQ(store_group_put(s, "app", "del", "alice", 5000, "{}"), 0);
	CHECK_EQ(store_group_put(s, "app", "old", "bob", 10, "{}"), 0);
	CHECK_EQ(store_group_delete(s, "app", "del"), 0);
	store_close(s);

	s = open_store(dir);
	e = (struct expired){.s = s};
	CHECK_EQ(store_group_count(s, NULL), 2);
	g = store_group_get(s, "app", "keep");
	CHECK(g && strcmp(g->json, "{\"k\":1}") == 0 && strcmp(g->owner, "alice") == 0 &&
	      g->expires == 5000);
	CHECK(store_group_get(s, "app", "del") == NULL);
	CHECK_EQ(store_group_expire(s, 100, on_expired, &e), 1);
	store_close(s);

	s = open_store(dir);
	CHECK_EQ(store_group_count(s, NULL), 1);
	CHECK(store_group_get(s, "app", "old") == NULL);
	store_close(s);
	remove_dir(dir);
}

/* ---- two threads (relay serve's TURN thread reads while the main loop writes) ---- */

struct reader {
	struct store *s;
	atomic_bool started, stop;
	atomic_ulong reads, wrong;
};

static void *read_deny(void *arg)
{
	struct reader *r = arg;

	atomic_store(&r->started, true);
	while (!atomic_load(&r->stop)) {
		if (!store_is_denied(r->s, "bk-held", 50))
			atomic_fetch_add(&r->wrong, 1);
		atomic_fetch_add(&r->reads, 1);
	}
	return NULL;
}

static void test_threads(void)
{
	struct reader r = {.s = open_store(NULL)};
	pthread_t t;
	char bid[32];

	CHECK_EQ(store_deny(r.s, "bk-held", 100), 0);
	CHECK_EQ(pthread_create(&t, NULL, read_deny, &r), 0);
	while (!atomic_load(&r.started))
		sched_yield();
	/* growth rebuilds the table (a new array, every entry put back), tidy rebuilds it too */
	for (int i = 0; i < 20000; i++) {
		snprintf(bid, sizeof(bid), "bk-%d", i);
		if (i % 2)
			store_deny(r.s, bid, i % 4 == 1 ? 10 : 100);
		else
			store_seen(r.s, bid, 100);
		if (i % 2000 == 1999)
			store_tidy(r.s, 20);
	}
	atomic_store(&r.stop, true);
	pthread_join(t, NULL);
	CHECK(atomic_load(&r.reads) > 0);
	CHECK_EQ(atomic_load(&r.wrong), 0);
	CHECK(store_is_denied(r.s, "bk-held", 50));
	CHECK(store_is_denied(r.s, "bk-3", 50));
	CHECK(!store_is_denied(r.s, "bk-1", 50)); /* tidied: expired at 10 */
	store_close(r.s);
}

/*
 * A deny check never waits for the disk: while another SQLite connection holds the database's
 * write lock, a store_deny() on the owner's thread waits out the busy timeout (1 s) and fails,
 * and every store_is_denied() made meanwhile on another thread answers at once. With the lock
 * held across the write, one of those checks would wait the whole second.
 */
struct slow_writer {
	struct store *s;
	atomic_bool started, done;
	int ret;
};

static void *deny_slowly(void *arg)
{
	struct slow_writer *w = arg;

	atomic_store(&w->started, true);
	w->ret = store_deny(w->s, "bk-slow", 100);
	atomic_store(&w->done, true);
	return NULL;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_deny_check_not_behind_disk(void)
{
	char *dir = make_dir(), path[256];
	struct slow_writer w = {.s = open_store(dir)};
	sqlite3 *other = NULL;
	pthread_t t;
	int64_t worst = 0, checks = 0;

	CHECK_EQ(store_deny(w.s, "bk-held", 100), 0);
	snprintf(path, sizeof(path), "%s/relay.db", dir);
	CHECK_EQ(sqlite3_open(path, &other), SQLITE_OK);
	CHECK_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	CHECK_EQ(pthread_create(&t, NULL, deny_slowly, &w), 0);
	while (!atomic_load(&w.started))
		sched_yield();
	while (!atomic_load(&w.done)) {
		int64_t t0 = mono_ns(), d;

		if (!store_is_denied(w.s, "bk-held", 50))
			CHECK(false);
		d = mono_ns() - t0;
		worst = d > worst ? d : worst;
		checks++;
	}
	pthread_join(t, NULL);
	CHECK_EQ(w.ret, -EIO); /* it did wait for the lock the other connection holds */
	CHECK(checks > 0);
	CHECK(worst < 500 * 1000000LL); /* the busy timeout is 1 s: no check waited for it */
	if (worst >= 500 * 1000000LL)
		fprintf(stderr, "a deny check waited %lld ms\n", (long long)(worst / 1000000));
	CHECK(!store_is_denied(w.s, "bk-slow", 50)); /* not written: not applied */
	CHECK_EQ(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	CHECK_EQ(store_deny(w.s, "bk-slow", 100), 0);
	CHECK(store_is_denied(w.s, "bk-slow", 50));
	store_close(w.s);
	remove_dir(dir);
}

int main(void)
{
	RUN(test_deny_allow());
	RUN(test_versions());
	RUN(test_each());
	RUN(test_versions_disk());
	RUN(test_merge_disk_fails());
	RUN(test_seen());
	RUN(test_list_live());
	RUN(test_invalid_bid());
	RUN(test_tidy());
	RUN(test_grow());
	RUN(test_memory_health());
	RUN(test_disk_survives());
	RUN(test_disk_at_once());
	RUN(test_disk_batch());
	RUN(test_disk_tidy());
	RUN(test_open_errors());
	RUN(test_disk_health());
	RUN(test_disk_damaged());
	RUN(test_groups_memory());
	RUN(test_groups_many());
	RUN(test_groups_disk());
	RUN(test_max_version_disk());
	RUN(test_threads());
	RUN(test_deny_check_not_behind_disk());
	return harness_done();
}
