/*
 * relay_turn_thread_test: the queue from relay serve's TURN thread to its main loop
 * (relay/turn_thread.c, included to reach its statics), with the TURN thread really running.
 * Only a USERNAME of a meeting tag's length is queued (a burst of other Bindings cannot fill the
 * queue); a full queue refuses the Binding (false: the caller leaves it unanswered, so the
 * client retransmits) and counts it; the main loop delivers every queued tag with its source;
 * the tags are wiped from the queue and the drained batch once delivered, and at stop.
 */
#include "relay/turn_thread.c"
#include "test/harness.h"

#include <arpa/inet.h>

static struct {
	size_t n;
	size_t wrong; /* a tag or an address not as queued */
} got;

void relay_meet_udp_seen(struct server *s, const char *tag, size_t len, const struct sockaddr *from)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)from;
	char want[TURN_SEEN_TAG + 1];

	(void)s;
	snprintf(want, sizeof(want), "%032zx", got.n);
	if (len != TURN_SEEN_TAG || memcmp(tag, want, len) != 0 || from->sa_family != AF_INET ||
	    ntohs(in->sin_port) != 1000 + got.n)
		got.wrong++;
	got.n++;
}

static void close_nothing(void)
{
}

static bool all_zero(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static struct sockaddr_in from_port(size_t port)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	inet_pton(AF_INET, "192.0.2.1", &in.sin_addr);
	return in;
}

/* Queue the tag numbered @k (32 hex digits) from port 1000 + @k. */
static bool seen(size_t k)
{
	char tag[TURN_SEEN_TAG + 1];
	struct sockaddr_in in = from_port(1000 + k);

	snprintf(tag, sizeof(tag), "%032zx", k);
	return turn_thread_seen(tag, TURN_SEEN_TAG, (struct sockaddr *)&in);
}

/* the settings turn_thread_run reads (--turn-nice 0: the test thread keeps its priority) */
static struct relay_opts opts = {.turn_nice = 0};
static struct server srv = {.o = &opts};

static void test_queue(void)
{
	uv_loop_t main_loop;
	char why[256] = "", junk[65];
	struct sockaddr_in in = from_port(9);
	static const size_t junk_len[] = {0, 1, TURN_SEEN_TAG - 1, TURN_SEEN_TAG + 1, 64};

	CHECK_EQ(uv_loop_init(&main_loop), 0);
	CHECK_EQ(turn_thread_init(why), 0);
	CHECK_EQ(turn_thread_run(&srv, &main_loop, why), 0);

	/* other USERNAMEs (ICE's "ufrag:ufrag", junk) are answered but never queued */
	memset(junk, 'j', sizeof(junk));
	for (int round = 0; round < 100; round++)
		for (size_t i = 0; i < sizeof(junk_len) / sizeof(junk_len[0]); i++)
			CHECK(turn_thread_seen(junk, junk_len[i], (struct sockaddr *)&in));
	CHECK_EQ(th.nseen, 0);

	/* the queue holds TURN_SEEN_MAX; one more is refused, unanswered, counted */
	for (size_t k = 0; k < TURN_SEEN_MAX; k++)
		CHECK(seen(k));
	CHECK(!seen(TURN_SEEN_MAX));
	CHECK_EQ(turn_thread_seen_dropped(), 1);

	/* the main loop delivers each, in order, then wipes the queue and its copy */
	for (int i = 0; i < 100 && got.n < TURN_SEEN_MAX; i++)
		uv_run(&main_loop, UV_RUN_ONCE);
	CHECK_EQ(got.n, TURN_SEEN_MAX);
	CHECK_EQ(got.wrong, 0);
	CHECK(all_zero(seen_batch, sizeof(seen_batch)));
	CHECK(all_zero(th.seen, sizeof(th.seen)));

	/* room again: the client's retransmission gets through; stop wipes what is left */
	got.n = TURN_SEEN_MAX;
	CHECK(seen(TURN_SEEN_MAX));
	CHECK_EQ(th.nseen, 1);
	turn_thread_stop(close_nothing);
	CHECK_EQ(th.nseen, 0);
	CHECK(all_zero(th.seen, sizeof(th.seen)));
	uv_run(&main_loop, UV_RUN_DEFAULT); /* closes seen_wake */
	CHECK_EQ(uv_loop_close(&main_loop), 0);
	CHECK_EQ(got.n, TURN_SEEN_MAX); /* the one queued at stop was never delivered */
}

int main(void)
{
	RUN(test_queue());
	return harness_done();
}
