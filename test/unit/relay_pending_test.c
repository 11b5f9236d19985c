/*
 * relay_pending_test: relay/pending.c's records of connections without a request head, found by
 * the wsi's address (relay/pending.c is included to reach its statics). Every record must be
 * found again after any mix of insertions and removals (the hash table's backward-shift
 * deletion), a wsi made twice must leave one record, and the count must return to zero. The wsi
 * pointers are addresses in an array: nothing here calls into lws.
 */
#include "relay/pending.c"
#include "test/harness.h"

#define N 512

static char fake[N * 8]; /* wsi i is fake + 8 * i: neighbours, as lws's allocations are */

static struct lws *wsi_n(int i)
{
	return (struct lws *)(void *)(fake + 8 * i);
}

static void start(int64_t max)
{
	struct relay_opts o = {.max_pending = max, .http_timeout = 10000};

	relay_pending_release();
	CHECK(relay_pending_init(&o) == 0);
}

static void test_every_record_found_after_removals(void)
{
	uint64_t x = 88172645463325252ull; /* xorshift: the same order on every run */
	bool live[N] = {false};
	size_t n = 0;

	start(N);
	for (int i = 0; i < N; i++) {
		relay_pending_add(wsi_n(i));
		live[i] = true;
		n++;
	}
	CHECK_EQ(relay_pending_count(), (size_t)N);
	for (int round = 0; round < 4 * N; round++) {
		int i;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		i = (int)(x % N);
		if (live[i]) {
			relay_pending_done(wsi_n(i), false);
			n--;
		} else {
			relay_pending_add(wsi_n(i));
			n++;
		}
		live[i] = !live[i];
	}
	CHECK_EQ(relay_pending_count(), n);
	for (int i = 0; i < N; i++)
		if ((ours(wsi_n(i)) != NULL) != live[i])
			CHECK(!"record found exactly when live");
	for (int i = 0; i < N; i++)
		relay_pending_done(wsi_n(i), false);
	CHECK_EQ(relay_pending_count(), (size_t)0);
}

static void test_made_twice_leaves_one_record(void)
{
	start(4);
	relay_pending_add(wsi_n(1));
	relay_pending_add(wsi_n(1));
	CHECK_EQ(relay_pending_count(), (size_t)1);
	relay_pending_done(wsi_n(1), false);
	CHECK_EQ(relay_pending_count(), (size_t)0);
	CHECK(ours(wsi_n(1)) == NULL);
}

static void test_unknown_wsi_is_ignored(void)
{
	start(4);
	relay_pending_add(wsi_n(2));
	relay_pending_done(wsi_n(3), false);
	CHECK_EQ(relay_pending_count(), (size_t)1);
	CHECK(ours(wsi_n(2)) != NULL);
}

int main(void)
{
	RUN(test_every_record_found_after_removals());
	RUN(test_made_twice_leaves_one_record());
	RUN(test_unknown_wsi_is_ignored());
	relay_pending_release();
	return harness_done();
}
