/*
 * harness: the few macros relay's unit tests use. A test binary calls its test functions
 * from main() and returns harness_done(), which prints the closing line
 * "N passed, N failed" and gives the exit status (0 only when nothing failed).
 */
#ifndef RELAY_TEST_HARNESS_H
#define RELAY_TEST_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int harness_passed, harness_failed;

#define CHECK(cond)                                                                          \
	do {                                                                                 \
		if (cond) {                                                                  \
			harness_passed++;                                                    \
		} else {                                                                     \
			harness_failed++;                                                    \
			fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n", __FILE__, __LINE__, \
			        __func__, #cond);                                            \
		}                                                                            \
	} while (0)

#define CHECK_EQ(a, b)                                                                        \
	do {                                                                                  \
		long long ha_ = (long long)(a), hb_ = (long long)(b);                         \
		if (ha_ == hb_) {                                                             \
			harness_passed++;                                                     \
		} else {                                                                      \
			harness_failed++;                                                     \
			fprintf(stderr, "%s:%d: %s: CHECK_EQ(%s, %s) failed: %lld != %lld\n", \
			        __FILE__, __LINE__, __func__, #a, #b, ha_, hb_);              \
		}                                                                             \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *ha_ = (a), *hb_ = (b);                                                 \
		if (ha_ && hb_ && strcmp(ha_, hb_) == 0) {                                         \
			harness_passed++;                                                          \
		} else {                                                                           \
			harness_failed++;                                                          \
			fprintf(stderr, "%s:%d: %s: CHECK_STR(%s, %s) failed: \"%s\" != \"%s\"\n", \
			        __FILE__, __LINE__, __func__, #a, #b, ha_ ? ha_ : "(null)",        \
			        hb_ ? hb_ : "(null)");                                             \
		}                                                                                  \
	} while (0)

#define CHECK_MEM(a, b, n)                                                                     \
	do {                                                                                   \
		if (memcmp((a), (b), (n)) == 0) {                                              \
			harness_passed++;                                                      \
		} else {                                                                       \
			harness_failed++;                                                      \
			fprintf(stderr, "%s:%d: %s: CHECK_MEM(%s, %s, %s) failed\n", __FILE__, \
			        __LINE__, __func__, #a, #b, #n);                               \
		}                                                                              \
	} while (0)

static inline int harness_done(void)
{
	printf("%d passed, %d failed\n", harness_passed, harness_failed);
	return harness_failed ? 1 : 0;
}

#endif
