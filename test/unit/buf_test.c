/*
 * buf_test: pkg/buf. Growth up to the cap and not past it (-ENOBUFS leaves the buffer as it
 * was), appends keep their bytes across reallocations, consume moves the rest to the front,
 * a zero cap refuses everything, a cap lowered below the held bytes refuses more, and release returns to empty with the same cap.
 * buf_reserved_cap() foretells the capacity buf_reserve() leaves.
 */
#include "pkg/buf/buf.h"
#include "test/harness.h"

#include <errno.h>
#include <string.h>

static void test_grow_to_max(void)
{
	struct buf b;
	uint8_t chunk[100];

	buf_init(&b, 1000);
	CHECK(b.p == NULL);
	for (int i = 0; i < 10; i++) {
		memset(chunk, 'a' + i, sizeof(chunk));
		CHECK_EQ(buf_add(&b, chunk, sizeof(chunk)), 0);
		CHECK(b.cap <= 1000);
		CHECK(b.cap >= b.len);
	}
	CHECK_EQ(b.len, 1000);
	CHECK_EQ(buf_left(&b), 0);
	for (int i = 0; i < 10; i++)
		CHECK(b.p[i * 100] == 'a' + i && b.p[i * 100 + 99] == 'a' + i);
	CHECK_EQ(buf_add(&b, "x", 1), -ENOBUFS);
	CHECK_EQ(b.len, 1000);
	CHECK_EQ(buf_reserve(&b, 0), 0);
	buf_release(&b);
	CHECK(b.p == NULL);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(b.max, 1000);
}

/* buf_reserved_cap() names the capacity buf_reserve() then leaves, at every step to max */
static void test_reserved_cap(void)
{
	struct buf b;
	size_t steps[] = {0, 1, 255, 1, 300, 5000, 1, 40000, 50000, 4442};

	buf_init(&b, 100000);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		size_t want = buf_reserved_cap(&b, steps[i]);

		CHECK(want <= b.max);
		CHECK_EQ(buf_reserve(&b, steps[i]), 0);
		CHECK_EQ(b.cap, want);
		b.len += steps[i];
	}
	CHECK_EQ(b.len, 100000);
	CHECK_EQ(b.cap, 100000);
	CHECK_EQ(buf_reserved_cap(&b, 0), 100000);
	buf_release(&b);
}

static void test_reserve_refuses_past_max(void)
{
	struct buf b;

	buf_init(&b, 300);
	CHECK_EQ(buf_reserve(&b, 301), -ENOBUFS);
	CHECK(b.p == NULL);
	CHECK_EQ(buf_reserve(&b, 10), 0);
	CHECK(buf_room(&b) >= 10);
	CHECK_EQ(buf_add(&b, "0123456789", 10), 0);
	CHECK_EQ(buf_reserve(&b, 290), 0);
	CHECK_EQ(b.cap, 300);
	CHECK_EQ(buf_reserve(&b, 291), -ENOBUFS);
	CHECK_MEM(b.p, "0123456789", 10);
	buf_release(&b);
	/* a huge request must not overflow len + n */
	buf_init(&b, 64);
	CHECK_EQ(buf_add(&b, "ab", 2), 0);
	CHECK_EQ(buf_reserve(&b, (size_t)-1), -ENOBUFS);
	buf_release(&b);
}

static void test_consume(void)
{
	struct buf b;

	buf_init(&b, 64);
	CHECK_EQ(buf_add(&b, "hello world", 11), 0);
	buf_consume(&b, 6);
	CHECK_EQ(b.len, 5);
	CHECK_MEM(b.p, "world", 5);
	buf_consume(&b, 5);
	CHECK_EQ(b.len, 0);
	CHECK_EQ(buf_add(&b, "x", 1), 0);
	CHECK_MEM(b.p, "x", 1);
	buf_release(&b);
}

static void test_max_lowered(void)
{
	struct buf b;

	buf_init(&b, 64);
	CHECK_EQ(buf_add(&b, "0123456789", 10), 0);
	b.max = 4; /* a caller with a smaller cap: nothing more fits, nothing held is lost */
	CHECK_EQ(buf_left(&b), 0);
	CHECK_EQ(buf_add(&b, "x", 1), -ENOBUFS);
	CHECK_EQ(b.len, 10);
	buf_release(&b);
}

static void test_zero_max(void)
{
	struct buf b;

	buf_init(&b, 0);
	CHECK_EQ(buf_add(&b, "", 0), 0);
	CHECK_EQ(buf_add(&b, "x", 1), -ENOBUFS);
	buf_release(&b);
}

int main(void)
{
	RUN(test_grow_to_max());
	RUN(test_reserved_cap());
	RUN(test_reserve_refuses_past_max());
	RUN(test_consume());
	RUN(test_max_lowered());
	RUN(test_zero_max());
	return harness_done();
}
