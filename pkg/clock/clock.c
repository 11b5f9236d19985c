/*
 * clock: CLOCK_MONOTONIC and CLOCK_REALTIME (vDSO: no system call).
 *
 * Test builds only (-DRELAY_TEST_CLOCK: build/VARIANT/test/relay, never build/VARIANT/relay):
 * both clocks run ahead by the milliseconds in the file named by RELAY_TEST_CLOCK_FILE (a
 * native-endian int64 at offset 0, mapped once and read on every call), so that an end-to-end
 * test makes a code or a token expire at once instead of waiting. The installed binary has no
 * such input on purpose: an environment variable that moved a production relay's clock, set by
 * accident, would let every token outlive its exp.
 */
#include "pkg/clock/clock.h"

#include <time.h>

#ifdef RELAY_TEST_CLOCK
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const int64_t *test_offset_ms; /* NULL: no file; written by the test, read here */
static pthread_once_t test_once = PTHREAD_ONCE_INIT;

static void test_clock_map(void)
{
	const char *path = getenv("RELAY_TEST_CLOCK_FILE");
	struct stat st;
	void *p;
	int fd;

	if (!path || !*path)
		return;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	/* mapped pages past the end of the file would fault: it must already hold the int64 */
	if (fd < 0 || fstat(fd, &st) || st.st_size < (off_t)sizeof(int64_t)) {
		fprintf(stderr, "relay (test build): cannot use RELAY_TEST_CLOCK_FILE '%s'\n",
		        path);
		abort();
	}
	p = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		fprintf(stderr, "relay (test build): cannot map RELAY_TEST_CLOCK_FILE '%s'\n",
		        path);
		abort();
	}
	test_offset_ms = p;
	fprintf(stderr, "relay (test build): clocks shifted by the offset in '%s'\n", path);
}

static int64_t offset_ns(void)
{
	pthread_once(&test_once, test_clock_map);
	return test_offset_ms ? __atomic_load_n(test_offset_ms, __ATOMIC_RELAXED) * 1000000 : 0;
}
#else
static int64_t offset_ns(void)
{
	return 0;
}
#endif

int64_t clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + offset_ns();
}

int64_t clock_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + offset_ns()) / 1000000;
}
