/*
 * relay_access_test: the pure parts of relay/access.c, which is included to reach its statics.
 * The per-address rate limiter (refill on the time passed in, burst cap, a clock that does not
 * move, slot collisions that must not hand out a fresh burst, eviction of the stalest slot) and
 * X-Forwarded-For parsing; the websocket version check (RFC 6455 section 4.4). Time is passed in, never read; nothing here touches a socket.
 */
#include "relay/access.c"
#include "test/harness.h"
#include "test/unit/relay_stubs.h"

/* ---- what access.c calls elsewhere in relay/ (never reached by these tests) ---- */

struct server relay_srv;

/* relay/cluster.c: without --redis, codes stay local */
int relay_cluster_issue(const struct grant *g, char code[CODE_LEN + 1])
{
	(void)g, (void)code;
	return -ENOTCONN;
}

int relay_cluster_defer(struct lws *wsi, const char *code, size_t len, const char *topic,
                        const char *kind)
{
	(void)wsi, (void)code, (void)len, (void)topic, (void)kind;
	return -ENOENT;
}

int64_t relay_now_ms(void)
{
	return 0;
}

int64_t relay_mono_ns(void)
{
	return 0;
}

const struct relay_kind relay_kind_channel = {.name = "connect"};

const struct relay_kind *relay_kind_of(const char *name, size_t n)
{
	return n == 7 && memcmp(name, "connect", 7) == 0 ? &relay_kind_channel : NULL;
}

/* ---- websocket paths ---- */

static void test_endpoint_topic(void)
{
	const struct relay_kind *k = &relay_kind_channel;

	CHECK_STR(endpoint_topic("/session/lab-1", &k), "lab-1");
	CHECK(k == NULL);
	CHECK_STR(endpoint_topic("/connect/pc7", &k), "pc7");
	CHECK(k == &relay_kind_channel);
	CHECK(endpoint_topic("/connectx/pc7", &k) == NULL);
	CHECK(endpoint_topic("/connect", &k) == NULL);
	CHECK(endpoint_topic("/sessions/a", &k) == NULL);
	CHECK(endpoint_topic("//a", &k) == NULL);
	CHECK(endpoint_topic("", &k) == NULL);
}

/* ---- rate limiter ---- */

#define RATE  2 /* per second */
#define BURST 5

static struct rate_slot tab[RATE_SLOTS];

static bool allows(const char *addr, int64_t now_ms)
{
	return relay_rate_allows(tab, RATE_SLOTS, addr, now_ms, RATE, BURST);
}

/* How many calls in a row @addr may make at @now_ms. */
static int drain(const char *addr, int64_t now_ms)
{
	int n = 0;

	while (n < 1000 && allows(addr, now_ms))
		n++;
	return n;
}

static void test_rate_burst_and_refill(void)
{
	memset(tab, 0, sizeof(tab));
	CHECK_EQ(drain("10.0.0.1", 1000), BURST);
	CHECK(!allows("10.0.0.1", 1000));
	CHECK(!allows("10.0.0.1", 1499)); /* 0.998 tokens */
	CHECK(allows("10.0.0.1", 1500));  /* one token after 500 ms at 2/s */
	CHECK(!allows("10.0.0.1", 1500));
	CHECK_EQ(drain("10.0.0.1", 1500 + 60000), BURST); /* a long pause: capped at the burst */
	CHECK_EQ(drain("10.0.0.2", 1000), BURST);         /* other addresses have their own */
}

/* The monotonic clock never goes back, but a stale @now_ms must not mint or lose tokens. */
static void test_rate_time_does_not_run_back(void)
{
	memset(tab, 0, sizeof(tab));
	CHECK_EQ(drain("10.0.0.1", 100000), BURST);
	CHECK(!allows("10.0.0.1", 50000));
	CHECK(!allows("10.0.0.1", 100000));
	CHECK(allows("10.0.0.1", 100500));
}

static void test_rate_off(void)
{
	memset(tab, 0, sizeof(tab));
	for (int i = 0; i < 100; i++)
		CHECK(relay_rate_allows(tab, RATE_SLOTS, "10.0.0.1", 0, 0, BURST));
}

/* Addresses whose hashes start at the same slot, found by search. */
static void colliding(char out[][RATE_ADDR], size_t n, size_t slots)
{
	size_t found = 0;
	unsigned want = addr_hash("10.1.0.0") % slots;

	for (unsigned i = 0; found < n && i < 10000000; i++) {
		char a[RATE_ADDR];

		snprintf(a, sizeof(a), "10.%u.%u.%u", 1 + i / 65536, i / 256 % 256, i % 256);
		if (addr_hash(a) % slots == want)
			snprintf(out[found++], RATE_ADDR, "%s", a);
	}
	CHECK_EQ(found, n);
}

/* Two addresses on the same slot, alternating, each keep their own bucket (no fresh bursts). */
static void test_rate_collision_keeps_buckets(void)
{
	char a[2][RATE_ADDR];
	int got = 0;

	memset(tab, 0, sizeof(tab));
	colliding(a, 2, RATE_SLOTS);
	CHECK_EQ(drain(a[0], 1000), BURST);
	CHECK_EQ(drain(a[1], 1000), BURST);
	for (int i = 0; i < 20; i++) /* alternating, old code reset the bucket every time */
		got += allows(a[i % 2], 1000);
	CHECK_EQ(got, 0);
}

/* More colliding addresses than probe slots: a newcomer inherits the stalest bucket as it is. */
static void test_rate_eviction_inherits(void)
{
	char a[RATE_PROBE + 1][RATE_ADDR];
	int got = 0;

	memset(tab, 0, sizeof(tab));
	colliding(a, RATE_PROBE + 1, RATE_SLOTS);
	for (int i = 0; i < RATE_PROBE; i++)
		CHECK_EQ(drain(a[i], 1000 + i), BURST);
	/* the window is full of empty buckets: the next address takes a[0]'s (stalest), empty */
	CHECK(!allows(a[RATE_PROBE], 1010));
	/* a[0] lost its slot; coming back it takes the next stalest, empty too */
	CHECK(!allows(a[0], 1010));
	/* cycling through all of them gets nothing until time passes */
	for (int r = 0; r < 3; r++)
		for (int i = 0; i <= RATE_PROBE; i++)
			got += allows(a[i], 1010);
	CHECK_EQ(got, 0);
	/* time refills each slot at its rate: after 1 s, at most 2 tokens a slot */
	got = 0;
	for (int i = 0; i <= RATE_PROBE; i++)
		got += drain(a[i], 2010);
	CHECK(got <= RATE_PROBE * RATE);
	CHECK(got >= 1);
}

/* A slot freed long ago (full again by now) is no gift: the newcomer gets what anyone would. */
static void test_rate_stale_slot_full(void)
{
	char a[RATE_PROBE + 1][RATE_ADDR];

	memset(tab, 0, sizeof(tab));
	colliding(a, RATE_PROBE + 1, RATE_SLOTS);
	for (int i = 0; i < RATE_PROBE; i++)
		CHECK_EQ(drain(a[i], 1000), BURST);
	CHECK_EQ(drain(a[RATE_PROBE], 1000 + 60000), BURST);
}

/* ---- X-Forwarded-For ---- */

/* relay_forwarded_addr() into a 48-byte buffer; "" when it refuses. */
static const char *xff(const char *value)
{
	static char out[RATE_ADDR];

	if (!relay_forwarded_addr(value, out, sizeof(out)))
		out[0] = '\0';
	return out;
}

static void test_forwarded_for(void)
{
	char small[8];

	CHECK_STR(xff("203.0.113.7"), "203.0.113.7");
	/* only the last entry, the one the trusted proxy appended, counts */
	CHECK_STR(xff("10.9.9.9, 203.0.113.7"), "203.0.113.7");
	CHECK_STR(xff("1.1.1.1,2.2.2.2,203.0.113.7"), "203.0.113.7");
	CHECK_STR(xff("forged junk, 203.0.113.7"), "203.0.113.7");
	CHECK_STR(xff("10.9.9.9,\t203.0.113.7 \t"), "203.0.113.7");
	CHECK_STR(xff("2001:db8::1"), "2001:db8::1");
	CHECK_STR(xff("10.0.0.1, ::ffff:203.0.113.7"), "::ffff:203.0.113.7");
	/* lws joins repeated X-Forwarded-For headers with ',': the last one's last entry */
	CHECK_STR(xff("10.0.0.1,10.0.0.2, 203.0.113.7"), "203.0.113.7");
	/* refused: the caller falls back to the peer's address (the proxy) */
	CHECK_STR(xff(""), "");
	CHECK_STR(xff(" "), "");
	CHECK_STR(xff("203.0.113.7,"), "");
	CHECK_STR(xff("203.0.113.7, "), "");
	CHECK_STR(xff("203.0.113.7, evil.example"), "");
	CHECK_STR(xff("203.0.113.7, 10.0.0.1 junk"), ""); /* not one literal */
	CHECK_STR(xff("[2001:db8::1]"), "");
	CHECK_STR(xff("203.0.113.7/24"), "");
	CHECK_STR(xff("unknown"), "");
	CHECK_STR(xff("1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc"), "");
	CHECK(!relay_forwarded_addr("203.0.113.7", small, sizeof(small)));
	CHECK(relay_forwarded_addr("1.2.3.4", small, sizeof(small)));
	CHECK_STR(small, "1.2.3.4");
}

static void test_ws_version(void)
{
	CHECK(ws_version_ok("13"));
	CHECK(!ws_version_ok("8"));
	CHECK(!ws_version_ok("13, 8")); /* lws joins repeated headers */
	CHECK(!ws_version_ok("13,13"));
	CHECK(!ws_version_ok("013"));
	CHECK(!ws_version_ok("1"));
	CHECK(!ws_version_ok(""));
}

int main(void)
{
	RUN(test_endpoint_topic());
	RUN(test_rate_burst_and_refill());
	RUN(test_rate_time_does_not_run_back());
	RUN(test_rate_off());
	RUN(test_rate_collision_keeps_buckets());
	RUN(test_rate_eviction_inherits());
	RUN(test_rate_stale_slot_full());
	RUN(test_forwarded_for());
	RUN(test_ws_version());
	return harness_done();
}
