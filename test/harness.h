/*
 * harness: the few macros relay's unit tests use. A test binary runs each test case from
 * main() as RUN(test_x()) and returns harness_done(), which prints how many checks ran, then
 * the closing line "N passed, N failed" counting test cases (a case fails when any of its
 * checks does), and gives the exit status (0 only when nothing failed). Checks made outside
 * RUN() count as one more case, "main".
 */
#ifndef RELAY_TEST_HARNESS_H
#define RELAY_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* checks; atomic: a test may CHECK from a thread it started (wsclient_test's server) */
static _Atomic int harness_passed, harness_failed;
static int harness_cases_passed, harness_cases_failed;
static int harness_case_start = -1; /* harness_failed when the current RUN() began; -1 outside */
static int harness_outside_checks, harness_outside_failed;

static inline void harness_case_begin(void)
{
	harness_case_start = harness_failed;
}

static inline void harness_case_end(const char *name)
{
	if (harness_failed == harness_case_start) {
		harness_cases_passed++;
	} else {
		harness_cases_failed++;
		fprintf(stderr, "not ok - %s\n", name);
	}
	harness_case_start = -1;
}

/* Run one test case: RUN(test_fanout()) or RUN(test_random(8, 600)). */
#define RUN(call)                        \
	do {                             \
		harness_case_begin();    \
		call;                    \
		harness_case_end(#call); \
	} while (0)

/* Counts a check made outside RUN(), so that harness_done() can report it as a case. */
static inline void harness_outside(int failed)
{
	if (harness_case_start < 0) {
		harness_outside_checks++;
		harness_outside_failed += failed;
	}
}

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (cond) {                                                                  \
			harness_passed++;                                                    \
			harness_outside(0);                                                  \
		} else {                                                                     \
			harness_failed++;                                                    \
			harness_outside(1);                                                  \
			fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, \
			        __func__, #cond);                                            \
		}                                                                            \
	} while (0)

#define CHECK_EQ(a, b)                                                                        \
	do {                                                                                  \
		long long ha_ = (long long)(a), hb_ = (long long)(b);                         \
		if (ha_ == hb_) {                                                             \
			harness_passed++;                                                     \
			harness_outside(0);                                                   \
		} else {                                                                      \
			harness_failed++;                                                     \
			harness_outside(1);                                                   \
			fprintf(stderr, "%s:%d: %s: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
			        __FILE__, __LINE__, __func__, #a, #b, ha_, hb_);              \
		}                                                                             \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *ha_ = (a), *hb_ = (b);                                                 \
		if (ha_ && hb_ && strcmp(ha_, hb_) == 0) {                                         \
			harness_passed++;                                                          \
			harness_outside(0);                                                        \
		} else {                                                                           \
			harness_failed++;                                                          \
			harness_outside(1);                                                        \
			fprintf(stderr, "%s:%d: %s: CHECK_STR(%s, %s) failed: \"%s\" != \"%s\"\n", \
			        __FILE__, __LINE__, __func__, #a, #b, ha_ ? ha_ : "(null)",        \
			        hb_ ? hb_ : "(null)");                                             \
		}                                                                                  \
	} while (0)

#define CHECK_MEM(a, b, n)                                                                     \
	do {                                                                                   \
		if (memcmp((a), (b), (n)) == 0) {                                              \
			harness_passed++;                                                      \
			harness_outside(0);                                                    \
		} else {                                                                       \
			harness_failed++;                                                      \
			harness_outside(1);                                                    \
			fprintf(stderr, "%s:%d: %s: CHECK_MEM(%s, %s, %s) failed\n", __FILE__, \
			        __LINE__, __func__, #a, #b, #n);                               \
		}                                                                              \
	} while (0)

static inline int harness_done(void)
{
	if (harness_outside_checks) {
		if (harness_outside_failed)
			harness_cases_failed++;
		else
			harness_cases_passed++;
	}
	printf("checks: %d run, %d failed\n", harness_passed + harness_failed, harness_failed);
	printf("%d passed, %d failed\n", harness_cases_passed, harness_cases_failed);
	return harness_failed ? 1 : 0;
}

#endif
