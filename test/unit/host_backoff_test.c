/*
 * host_backoff_test: a link's retry schedule (host/backoff.h): every wait within +-20 % of the
 * backoff, both ends reached, the backoff doubling to its cap and never past it.
 */
#include "host/backoff.c"
#include "test/harness.h"

#ifndef RUN /* a harness that does not count test cases yet */
#define RUN(call) call
#endif

#include <stdbool.h>

static void test_jitter_bounds(void)
{
	static const int64_t backoffs[] = {1, 5, 100, 1000, 30000};

	for (size_t i = 0; i < sizeof(backoffs) / sizeof(backoffs[0]); i++) {
		int64_t b = backoffs[i], lo = INT64_MAX, hi = 0;
		bool in = true;

		for (int r = 0; r < 256; r++) {
			int64_t w = host_backoff_wait_ms(b, (uint8_t)r);

			in = in && w * 100 >= b * 80 && w * 100 <= b * 120 && w >= 0;
			lo = w < lo ? w : lo;
			hi = w > hi ? w : hi;
		}
		CHECK(in);
		CHECK_EQ(lo, b - b * 20 / 100); /* -20 % is reached */
		CHECK_EQ(hi, b + b * 20 / 100); /* and +20 % */
	}
	CHECK_EQ(host_backoff_wait_ms(1000, 20), 1000); /* the middle: no jitter */
}

static void test_doubling_to_the_cap(void)
{
	int64_t b = 1000;
	int steps = 0;

	while (b < 30000 && steps < 100) {
		int64_t next = host_backoff_next(b, 30000);

		CHECK(next == b * 2 || next == 30000);
		b = next;
		steps++;
	}
	CHECK_EQ(b, 30000);
	CHECK_EQ(steps, 5); /* 1, 2, 4, 8, 16, then the cap */
	CHECK_EQ(host_backoff_next(30000, 30000), 30000);
	CHECK_EQ(host_backoff_next(15001, 30000), 30000);
	CHECK_EQ(host_backoff_next(15000, 30000), 30000);
	CHECK_EQ(host_backoff_next(100, 100), 100);
	/* no overflow near the top of the range */
	CHECK_EQ(host_backoff_next(INT64_MAX / 2 + 1, INT64_MAX), INT64_MAX);
}

int main(void)
{
	RUN(test_jitter_bounds());
	RUN(test_doubling_to_the_cap());
	return harness_done();
}
