/*
 * ttlmap_test: pkg/ttlmap. An entry is fresh up to ttl_ms after it was last heard and stale one
 * millisecond later, on the time passed in (a refresh moves it forward); a sweep removes only
 * the stale, telling gone(); clear removes all without telling; at max entries new ones are
 * refused until one goes; each() sees only fresh entries, each_in() only one bucket's; keys that
 * share a bucket stay apart.
 */
#include "pkg/ttlmap/ttlmap.h"
#include "test/harness.h"

#include <stdio.h>
#include <string.h>

struct item {
	struct ttlmap_entry e;
	char name[16];
};

static int told, untold;

static bool item_is(const struct ttlmap_entry *e, const void *key)
{
	return strcmp(((const struct item *)e)->name, key) == 0;
}

static void item_gone(struct ttlmap_entry *e, bool tell)
{
	(void)e;
	if (tell)
		told++;
	else
		untold++;
}

#define BUCKETS 4
static struct ttlmap_entry *heads[BUCKETS];

static struct ttlmap map(size_t max)
{
	memset(heads, 0, sizeof(heads));
	told = untold = 0;
	return (struct ttlmap)TTLMAP_INIT(heads, max, 3000, item_is, item_gone);
}

static uint32_t hash(const char *name)
{
	return ttlmap_hash(TTLMAP_HASH_INIT, name, strlen(name));
}

static struct item *add(struct ttlmap *m, const char *name, int64_t now)
{
	struct item *it = ttlmap_add(m, hash(name), sizeof(*it), now);

	if (it)
		snprintf(it->name, sizeof(it->name), "%s", name);
	return it;
}

static struct item *get(struct ttlmap *m, const char *name, int64_t now)
{
	return (struct item *)ttlmap_get(m, hash(name), name, now);
}

/* the monotonic times start far from 0 and one step past the TTL is stale */
static void test_expiry(void)
{
	struct ttlmap m = map(10);
	int64_t t0 = 5000000;

	CHECK(add(&m, "a", t0) != NULL);
	CHECK(get(&m, "a", t0) != NULL);
	CHECK(get(&m, "a", t0 + 3000) != NULL);
	CHECK(get(&m, "a", t0 + 3001) == NULL);
	CHECK(get(&m, "b", t0) == NULL);
	ttlmap_sweep(&m, t0 + 3000);
	CHECK_EQ(m.n, 1);
	CHECK_EQ(told, 0);
	ttlmap_sweep(&m, t0 + 3001);
	CHECK_EQ(m.n, 0);
	CHECK_EQ(told, 1);
	CHECK(*ttlmap_find(&m, hash("a"), "a") == NULL);
}

/* hearing it again moves its expiry forward; a sweep keeps it */
static void test_refresh(void)
{
	struct ttlmap m = map(10);
	struct item *a = add(&m, "a", 1000);

	CHECK(add(&m, "b", 1000) != NULL);
	a->e.seen_ms = 3500; /* heard again */
	ttlmap_sweep(&m, 5000);
	CHECK_EQ(m.n, 1);
	CHECK_EQ(told, 1);
	CHECK(get(&m, "a", 6500) == a);
	CHECK(get(&m, "a", 6501) == NULL);
	CHECK(get(&m, "b", 5000) == NULL);
	ttlmap_clear(&m);
	CHECK_EQ(m.n, 0);
	CHECK_EQ(untold, 1);
}

/* at max, new keys are refused; one removed makes room */
static void test_bound(void)
{
	struct ttlmap m = map(3);
	char name[16];
	struct ttlmap_entry **p;

	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "k%d", i);
		CHECK(add(&m, name, 0) != NULL);
	}
	CHECK(add(&m, "k3", 0) == NULL);
	CHECK_EQ(m.n, 3);
	CHECK(get(&m, "k3", 0) == NULL);
	p = ttlmap_find(&m, hash("k1"), "k1");
	CHECK(*p != NULL);
	ttlmap_remove(&m, p, true);
	CHECK_EQ(told, 1);
	CHECK(get(&m, "k1", 0) == NULL);
	CHECK(add(&m, "k3", 0) != NULL);
	CHECK(get(&m, "k3", 0) != NULL);
	CHECK(get(&m, "k0", 0) != NULL && get(&m, "k2", 0) != NULL);
	ttlmap_clear(&m);
	CHECK_EQ(untold, 3);
}

static void count(struct ttlmap_entry *e, void *arg)
{
	(void)e;
	(*(int *)arg)++;
}

/* many keys in 4 buckets: each is found as itself; each() sees the fresh, each_in() a bucket's */
static void test_each(void)
{
	struct ttlmap m = map(100);
	char name[16];
	int all = 0, in = 0, in_expected = 0;

	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		CHECK(add(&m, name, i < 30 ? 100 : 0) != NULL);
	}
	for (int i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		CHECK(get(&m, name, 100) && strcmp(get(&m, name, 100)->name, name) == 0);
		if (i < 30 && hash(name) % BUCKETS == hash("n0") % BUCKETS)
			in_expected++;
	}
	ttlmap_each(&m, 3050, count, &all);
	CHECK_EQ(all, 30);
	ttlmap_each_in(&m, hash("n0"), 3050, count, &in);
	CHECK_EQ(in, in_expected);
	CHECK(in > 0 && in < 30);
	ttlmap_clear(&m);
	CHECK_EQ(untold, 40);
}

int main(void)
{
	RUN(test_expiry());
	RUN(test_refresh());
	RUN(test_bound());
	RUN(test_each());
	return harness_done();
}
