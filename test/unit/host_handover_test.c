/*
 * host_handover_test: the renewal matcher (host/handover.h). The new link's copies of the old
 * link's tail are dropped, exactly once each and only as a prefix: a message repeated on purpose
 * after the overlap is delivered (F4), a new link that joined late is not mistaken for a copy,
 * and the window and the record's bound hold. Messages are letters; "abc" is a sequence.
 */
#include "host/handover.c"
#include "test/harness.h"

#ifndef RUN /* a harness that does not count test cases yet */
#define RUN(call) call
#endif

#define NOW 1000

static uint64_t hash_of(char c)
{
	return host_handover_hash(1, (const uint8_t *)&c, 1);
}

/* Record @old as the old link's deliveries, then feed @new to the new link: the letters kept
 * (delivered) are returned in @kept. */
static void run(const char *old, const char *new, char *kept)
{
	static struct host_handover h;

	host_handover_record_start(&h);
	for (const char *p = old; *p; p++)
		host_handover_record(&h, hash_of(*p));
	host_handover_match_start(&h, NOW + 100);
	for (const char *p = new; *p; p++)
		if (!host_handover_is_copy(&h, hash_of(*p), NOW))
			*kept++ = *p;
	*kept = '\0';
}

static void check_run(const char *old, const char *new, const char *want)
{
	char kept[64];

	run(old, new, kept);
	if (strcmp(kept, want) != 0)
		fprintf(stderr, "old '%s' new '%s': kept '%s', want '%s'\n", old, new, kept, want);
	CHECK_STR(kept, want);
}

static void test_overlap_dropped_once(void)
{
	check_run("abc", "abcde", "de"); /* the whole of the old tail */
	check_run("xabc", "bcde", "de"); /* the new link joined after x and a */
	check_run("abc", "de", "de");    /* no overlap */
	check_run("", "abc", "abc");     /* nothing recorded */
}

static void test_repeats_on_purpose_kept(void)
{
	/* "stop" sent three times: the old link delivered two, the new link repeats those and
	 * then brings the third; the membership matcher dropped the third too */
	check_run("ss", "sss", "s");
	check_run("ss", "ssss", "ss");
	check_run("sa", "sas", "s");       /* a repeat after the overlap */
	check_run("as", "ssx", "sx");      /* the new link joined after a: one copy of s */
	check_run("s", "as", "as");        /* joined after s: nothing to drop */
	check_run("abab", "ababab", "ab"); /* the longest tail that the new link repeats */
}

static void test_first_message_past_overlap_ends_it(void)
{
	/* once a new message went through, later ones equal to the old tail are new too */
	check_run("ab", "xab", "xab");
	check_run("abc", "abxc", "xc");
	/* a sequence, not membership: c follows a on the new link, so it is not b's neighbour
	 * copy (the membership matcher dropped it) */
	check_run("abc", "ac", "c");
}

static void test_window(void)
{
	struct host_handover h;

	host_handover_record_start(&h);
	host_handover_record(&h, hash_of('a'));
	host_handover_match_start(&h, NOW);
	CHECK(!host_handover_is_copy(&h, hash_of('a'), NOW + 1)); /* past the window */
	CHECK_EQ(h.state, HOST_HANDOVER_IDLE);
	/* not recording: nothing is remembered */
	host_handover_record(&h, hash_of('b'));
	CHECK_EQ(h.n, 1);
}

static void test_bound_keeps_the_tail(void)
{
	static struct host_handover h;
	size_t i;

	host_handover_record_start(&h);
	for (i = 0; i < HOST_HANDOVER_MAX + 10; i++)
		host_handover_record(&h, host_handover_hash(1, (const uint8_t *)&i, sizeof(i)));
	CHECK_EQ(h.n, HOST_HANDOVER_MAX);
	host_handover_match_start(&h, NOW);
	i = 10; /* the oldest that is still remembered */
	CHECK(host_handover_is_copy(&h, host_handover_hash(1, (const uint8_t *)&i, sizeof(i)),
	                            NOW));
}

static void test_forget_first(void)
{
	struct host_handover h;
	char kept[8] = "", *k = kept;

	host_handover_record_start(&h);
	for (const char *p = "xyab"; *p; p++)
		host_handover_record(&h, hash_of(*p));
	host_handover_forget_first(&h, 2); /* x and y reached the old link only */
	CHECK_EQ(h.n, 2);
	host_handover_match_start(&h, NOW);
	for (const char *p = "abxy"; *p; p++)
		if (!host_handover_is_copy(&h, hash_of(*p), NOW))
			*k++ = *p;
	*k = '\0';
	CHECK_STR(kept, "xy");
	host_handover_forget_first(&h, 99);
	CHECK_EQ(h.n, 0);
}

static void test_hash_depends_on_type_and_bytes(void)
{
	CHECK(host_handover_hash(1, (const uint8_t *)"a", 1) !=
	      host_handover_hash(2, (const uint8_t *)"a", 1));
	CHECK(host_handover_hash(1, (const uint8_t *)"a", 1) !=
	      host_handover_hash(1, (const uint8_t *)"b", 1));
	CHECK(host_handover_hash(1, (const uint8_t *)"a\0", 2) !=
	      host_handover_hash(1, (const uint8_t *)"a", 1));
}

int main(void)
{
	RUN(test_overlap_dropped_once());
	RUN(test_repeats_on_purpose_kept());
	RUN(test_first_message_past_overlap_ends_it());
	RUN(test_window());
	RUN(test_bound_keeps_the_tail());
	RUN(test_forget_first());
	RUN(test_hash_depends_on_type_and_bytes());
	return harness_done();
}
