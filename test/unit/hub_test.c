/*
 * hub_test: pkg/hub against its contract (pkg/hub/hub.h). Fan-out order and content, read and
 * write permissions, the wake callback, bounded queues under DROP (by count and by bytes) and
 * CLOSE, message reference counts (run under ASan to catch leaks and use after free), topic
 * lifetime and limits, counters, back-pressure (writers paused when every reader is backed up),
 * and a long seeded random run checking order and accounting.
 */
#include "pkg/hub/hub.h"
#include "test/harness.h"

#include <errno.h>
#include <stdlib.h>

#define HEADROOM 16 /* stands in for LWS_PRE */

/* ---- helpers ---- */

/* What the callbacks see: one per member. */
struct owner {
	int wakes;
	int overflows;
	int pauses, resumes; /* flow callbacks */
	bool paused;
};

static struct owner *last_overflow_owner;

static void on_wake(void *p)
{
	struct owner *o = p;

	o->wakes++;
}

static void on_overflow(void *p)
{
	struct owner *o = p;

	o->overflows++;
	last_overflow_owner = o;
}

static void on_flow(void *p, bool paused)
{
	struct owner *o = p;

	CHECK(o->paused != paused); /* only changes are reported */
	o->paused = paused;
	if (paused)
		o->pauses++;
	else
		o->resumes++;
}

static const struct hub_callbacks callbacks = {
        .wake = on_wake,
        .overflow = on_overflow,
        .flow = on_flow,
};

static struct hub *new_hub(size_t queue_msgs, size_t queue_bytes, enum hub_policy policy)
{
	struct hub_limits lim = {
	        .max_topics = 16,
	        .max_per_topic = 16,
	        .queue_msgs = queue_msgs,
	        .queue_bytes = queue_bytes,
	        .policy = policy,
	};
	struct hub *h = hub_new(&lim, &callbacks);

	CHECK(h != NULL);
	return h;
}

static struct hub_member *join(struct hub *h, const char *topic, bool rd, bool wr, struct owner *o)
{
	enum hub_join_error err = HUB_JOIN_NOMEM;
	struct hub_member *m = hub_join(h, topic, rd, wr, o, &err);

	CHECK(m != NULL);
	CHECK_EQ(err, HUB_JOIN_OK);
	return m;
}

/* A new message of @len bytes: a 4-byte sequence number, then bytes derived from it. */
static struct hub_msg *seq_msg(uint32_t seq, size_t len, bool binary)
{
	struct hub_msg *m = hub_msg_new(len, HEADROOM);

	if (!m)
		abort();
	m->binary = binary;
	for (size_t i = 0; i < len; i++)
		m->data[i] = i < 4 ? (uint8_t)(seq >> (8 * i)) : (uint8_t)(seq * 31 + i);
	return m;
}

/* The sequence number in @m, or UINT32_MAX when its bytes are not what seq_msg() wrote. */
static uint32_t msg_seq(const struct hub_msg *m)
{
	uint32_t seq = 0;

	if (m->len < 4)
		return UINT32_MAX;
	for (size_t i = 0; i < 4; i++)
		seq |= (uint32_t)m->data[i] << (8 * i);
	for (size_t i = 4; i < m->len; i++)
		if (m->data[i] != (uint8_t)(seq * 31 + i))
			return UINT32_MAX;
	return seq;
}

static int publish_seq(struct hub_member *from, uint32_t seq, size_t len)
{
	return hub_publish(from, seq_msg(seq, len, false), 0);
}

/* Check that @m holds exactly the sequence numbers first..last, in order; drain it. */
static void check_queue(struct hub_member *m, uint32_t first, uint32_t last)
{
	CHECK_EQ(hub_queued(m), last - first + 1);
	for (uint32_t s = first; s <= last; s++) {
		struct hub_msg *msg = hub_peek(m);

		CHECK(msg != NULL);
		if (!msg)
			return;
		CHECK_EQ(msg_seq(msg), s);
		hub_pop(m, 0);
	}
	CHECK(hub_peek(m) == NULL);
}

static size_t drain(struct hub_member *m)
{
	size_t n = 0;

	for (; hub_peek(m); n++)
		hub_pop(m, 0);
	return n;
}

/* ---- tests ---- */

static void test_msg_new(void)
{
	struct hub_msg *m = hub_msg_new(100, HEADROOM);

	CHECK(m != NULL);
	CHECK_EQ(m->refs, 1);
	CHECK_EQ(m->len, 100);
	CHECK(!m->binary);
	memset(m->data - HEADROOM, 0xa5, HEADROOM + 100); /* ASan: the headroom is ours */
	hub_msg_ref(m);
	CHECK_EQ(m->refs, 2);
	hub_msg_unref(m);
	CHECK_EQ(m->refs, 1);
	hub_msg_unref(m);
	hub_msg_unref(NULL);

	m = hub_msg_new(0, 0);
	CHECK(m != NULL);
	CHECK_EQ(m->len, 0);
	hub_msg_unref(m);
}

static void test_fanout(void)
{
	static const char *const texts[] = {"", "a", "hello", "\0\x01\xff binary", "last"};
	static const size_t lens[] = {0, 1, 5, 10, 4};
	struct owner ow = {0}, oread[3] = {{0}}, owo = {0}, oother = {0};
	struct hub *h = new_hub(16, 1 << 16, HUB_DROP);
	struct hub_member *w = join(h, "t", true, true, &ow);
	struct hub_member *r[3], *wo, *other;

	for (int i = 0; i < 3; i++)
		r[i] = join(h, "t", true, false, &oread[i]);
	wo = join(h, "t", false, true, &owo);
	other = join(h, "u", true, true, &oother);

	for (int i = 0; i < 5; i++) {
		struct hub_msg *m = hub_msg_new(lens[i], HEADROOM);

		memcpy(m->data, texts[i], lens[i]);
		m->binary = i % 2;
		m->t_in_ns = 1000 + i;
		CHECK_EQ(hub_publish(w, m, 1000 + i), 3);
	}
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(hub_queued(r[i]), 5);
		for (int k = 0; k < 5; k++) {
			struct hub_msg *m = hub_peek(r[i]);

			CHECK(m != NULL);
			if (!m)
				break;
			CHECK_EQ(m->len, lens[k]);
			CHECK_MEM(m->data, texts[k], lens[k]);
			CHECK_EQ(m->binary, k % 2);
			CHECK_EQ(m->t_in_ns, 1000 + k);
			hub_pop(r[i], 2000);
		}
		CHECK_EQ(hub_queued(r[i]), 0);
	}
	CHECK_EQ(hub_queued(w), 0); /* never the sender */
	CHECK(hub_peek(w) == NULL);
	CHECK_EQ(hub_queued(wo), 0);
	CHECK_EQ(hub_queued(other), 0); /* another topic */
	CHECK_EQ(ow.wakes, 0);
	CHECK_EQ(oother.wakes, 0);

	for (int i = 0; i < 3; i++)
		hub_leave(r[i]);
	hub_leave(wo);
	hub_leave(w);
	hub_leave(other);
	hub_free(h);
}

static void test_no_write(void)
{
	struct owner ow = {0}, oread = {0};
	struct hub *h = new_hub(16, 1 << 16, HUB_DROP);
	struct hub_member *ro = join(h, "t", true, false, &ow);
	struct hub_member *r = join(h, "t", true, true, &oread);
	const struct hub_counters *c = hub_member_counters(ro);

	CHECK_EQ(hub_publish(ro, seq_msg(1, 10, false), 5), -EPERM); /* takes the ref: ASan */
	CHECK_EQ(c->refused, 1);
	CHECK_EQ(c->rx_msgs, 0);
	CHECK_EQ(c->rx_bytes, 0);
	CHECK_EQ(hub_queued(r), 0);
	CHECK_EQ(oread.wakes, 0);
	hub_note_refused(ro);
	CHECK_EQ(c->refused, 2);

	hub_leave(ro);
	hub_leave(r);
	hub_free(h);
}

static void test_no_read(void)
{
	struct owner ow = {0}, owo = {0}, oread = {0};
	struct hub *h = new_hub(16, 1 << 16, HUB_DROP);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *wo = join(h, "t", false, true, &owo);
	struct hub_member *r = join(h, "t", true, false, &oread);

	CHECK_EQ(publish_seq(w, 1, 8), 1);
	CHECK_EQ(publish_seq(w, 2, 8), 1);
	CHECK_EQ(hub_queued(wo), 0);
	CHECK(hub_peek(wo) == NULL);
	hub_pop(wo, 1); /* nothing to pop: no count */
	CHECK_EQ(hub_member_counters(wo)->tx_msgs, 0);
	CHECK_EQ(owo.wakes, 0);
	CHECK_EQ(hub_member_counters(wo)->dropped, 0);
	check_queue(r, 1, 2);

	hub_leave(w);
	hub_leave(wo);
	hub_leave(r);
	hub_free(h);
}

static void test_wake(void)
{
	struct owner ow = {0}, oread = {0};
	struct hub *h = new_hub(4, 1 << 16, HUB_DROP);
	struct hub_member *w = join(h, "t", true, true, &ow);
	struct hub_member *r = join(h, "t", true, false, &oread);

	publish_seq(w, 1, 8);
	CHECK_EQ(oread.wakes, 1);
	publish_seq(w, 2, 8);
	CHECK_EQ(oread.wakes, 1);
	hub_pop(r, 0);
	publish_seq(w, 3, 8); /* still non-empty */
	CHECK_EQ(oread.wakes, 1);
	for (uint32_t s = 4; s < 10; s++) /* drops while full: still no wake */
		publish_seq(w, s, 8);
	CHECK_EQ(oread.wakes, 1);
	CHECK_EQ(drain(r), 4);
	publish_seq(w, 10, 8); /* empty -> non-empty */
	CHECK_EQ(oread.wakes, 2);
	CHECK_EQ(ow.wakes, 0);

	hub_leave(w);
	hub_leave(r);
	hub_free(h);
}

static void test_drop_by_count(void)
{
	struct owner ow = {0}, oslow = {0}, ofast = {0};
	struct hub *h = new_hub(4, 1 << 16, HUB_DROP);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *slow = join(h, "t", true, false, &oslow);
	struct hub_member *fast = join(h, "t", true, false, &ofast);
	const struct hub_counters *cs = hub_member_counters(slow);
	const struct hub_counters *cf = hub_member_counters(fast);

	for (uint32_t s = 0; s < 10; s++) {
		CHECK_EQ(publish_seq(w, s, 20), 2);
		CHECK(hub_queued(slow) <= 4);
		drain(fast);
	}
	CHECK_EQ(cs->dropped, 6);
	CHECK_EQ(cf->dropped, 0);
	CHECK_EQ(oslow.overflows + ofast.overflows, 0);
	check_queue(slow, 6, 9); /* the newest are kept */
	CHECK_EQ(10 * 2, cs->tx_msgs + cs->dropped + cf->tx_msgs + cf->dropped);
	CHECK_EQ(cs->tx_msgs, 4);
	CHECK_EQ(cf->tx_msgs, 10);

	hub_leave(w);
	hub_leave(slow);
	hub_leave(fast);
	hub_free(h);
}

/* A reader's ring grows while wrapped around (it starts at 16 slots) and keeps the order. */
static void test_ring_growth(void)
{
	struct owner ow = {0}, or = {0};
	struct hub *h = new_hub(40, 1 << 20, HUB_DROP);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *r = join(h, "t", true, false, & or);
	const struct hub_counters *c = hub_member_counters(r);

	for (uint32_t s = 0; s < 10; s++)
		CHECK_EQ(publish_seq(w, s, 8), 1);
	for (int i = 0; i < 7; i++)
		hub_pop(r, 0); /* the head moves, so the next ones wrap around */
	for (uint32_t s = 10; s < 40; s++)
		CHECK_EQ(publish_seq(w, s, 8 + s), 1);
	CHECK_EQ(c->dropped, 0);
	CHECK(hub_peek_at(r, 32) != NULL && msg_seq(hub_peek_at(r, 32)) == 39);
	for (uint32_t s = 40; s < 49; s++) /* 2 past queue_msgs: the oldest go */
		CHECK_EQ(publish_seq(w, s, 8), 1);
	CHECK_EQ(c->dropped, 2);
	check_queue(r, 9, 48);
	CHECK_EQ(or.wakes, 1);

	hub_leave(w);
	hub_leave(r);
	hub_free(h);
}

static void test_drop_by_bytes(void)
{
	struct owner ow = {0}, oread = {0};
	struct hub *h = new_hub(100, 100, HUB_DROP);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *r = join(h, "t", true, false, &oread);
	const struct hub_counters *c = hub_member_counters(r);
	size_t bytes = 0;

	for (uint32_t s = 0; s < 10; s++)
		publish_seq(w, s, 30);
	CHECK_EQ(c->dropped, 7); /* 3 x 30 fit in 100 bytes */
	check_queue(r, 7, 9);
	CHECK_EQ(c->tx_msgs + c->dropped, 10);

	/* a 60-byte message after 3 x 30 must push out two of them */
	for (uint32_t s = 10; s < 13; s++)
		publish_seq(w, s, 30);
	publish_seq(w, 13, 60);
	CHECK_EQ(c->dropped, 9);
	CHECK_EQ(hub_queued(r), 2);
	CHECK_EQ(msg_seq(hub_peek(r)), 12);

	/* mixed sizes: what is queued never exceeds the byte bound */
	drain(r);
	for (uint32_t s = 14; s < 200; s++)
		publish_seq(w, s, 4 + (s * 7) % 60);
	while (hub_peek(r)) {
		bytes += hub_peek(r)->len;
		hub_pop(r, 0);
	}
	CHECK(bytes <= 100);
	CHECK_EQ(c->tx_msgs + c->dropped, 200);

	hub_leave(w);
	hub_leave(r);
	hub_free(h);
}

static void test_close_by_count(void)
{
	struct owner ow = {0}, oslow = {0}, ofast = {0};
	struct hub *h = new_hub(3, 1 << 16, HUB_CLOSE);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *slow = join(h, "t", true, false, &oslow);
	struct hub_member *fast = join(h, "t", true, false, &ofast);

	last_overflow_owner = NULL;
	for (uint32_t s = 0; s < 3; s++) {
		CHECK_EQ(publish_seq(w, s, 8), 2);
		drain(fast);
	}
	CHECK_EQ(oslow.overflows, 0);
	CHECK_EQ(publish_seq(w, 3, 8), 1); /* queued only for fast */
	CHECK_EQ(oslow.overflows, 1);
	CHECK(last_overflow_owner == &oslow);
	CHECK_EQ(ofast.overflows, 0);
	CHECK_EQ(ow.overflows, 0);
	CHECK_EQ(hub_queued(slow), 3); /* nothing past the limit, nothing dropped from it */
	CHECK_EQ(hub_member_counters(slow)->dropped, 1);
	CHECK_EQ(hub_queued(fast), 1);

	/* the owner closes it after the callback */
	hub_leave(slow);
	CHECK_EQ(publish_seq(w, 4, 8), 1);
	CHECK_EQ(ofast.overflows, 0);
	check_queue(fast, 3, 4);

	hub_leave(w);
	hub_leave(fast);
	hub_free(h);
}

static void test_close_by_bytes(void)
{
	struct owner ow = {0}, oread = {0};
	struct hub *h = new_hub(100, 50, HUB_CLOSE);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *r = join(h, "t", true, false, &oread);

	last_overflow_owner = NULL;
	CHECK_EQ(publish_seq(w, 0, 20), 1);
	CHECK_EQ(publish_seq(w, 1, 20), 1);
	CHECK_EQ(oread.overflows, 0);
	CHECK_EQ(publish_seq(w, 2, 20), 0);
	CHECK_EQ(oread.overflows, 1);
	CHECK(last_overflow_owner == &oread);
	CHECK_EQ(hub_queued(r), 2);
	check_queue(r, 0, 1);

	hub_leave(w);
	hub_leave(r);
	hub_free(h);
}

static void test_refcounts(void)
{
	struct owner ow = {0}, oread[3] = {{0}};
	struct hub *h = new_hub(8, 1 << 16, HUB_DROP);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *r[3];
	struct hub_msg *m;

	for (int i = 0; i < 3; i++)
		r[i] = join(h, "t", true, false, &oread[i]);

	/* with a reference of our own, watch the count go down */
	m = seq_msg(1, 64, true);
	hub_msg_ref(m);
	CHECK_EQ(hub_publish(w, m, 0), 3);
	CHECK_EQ(m->refs, 4);
	hub_pop(r[0], 0);
	CHECK_EQ(m->refs, 3);
	hub_leave(r[1]);
	CHECK_EQ(m->refs, 2);
	hub_pop(r[2], 0);
	CHECK_EQ(m->refs, 1);
	hub_msg_unref(m);

	/* without one: the publisher's reference is handed over; ASan sees any leak */
	r[1] = join(h, "t", true, false, &oread[1]);
	m = seq_msg(2, 64, false);
	CHECK_EQ(hub_publish(w, m, 0), 3);
	CHECK_EQ(m->refs, 3);
	hub_pop(r[0], 0);
	CHECK_EQ(m->refs, 2);
	hub_pop(r[1], 0);
	CHECK_EQ(m->refs, 1);
	CHECK_EQ(msg_seq(hub_peek(r[2])), 2); /* still readable by the last reader */
	hub_pop(r[2], 0);

	/* published to nobody: freed at once */
	for (int i = 0; i < 3; i++)
		hub_leave(r[i]);
	CHECK_EQ(publish_seq(w, 3, 64), 0);

	hub_leave(w);
	hub_free(h);
}

static void test_leave_frees_queue(void)
{
	struct owner ow = {0}, oread[2] = {{0}};
	struct hub *h = new_hub(8, 1 << 16, HUB_DROP);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *a = join(h, "t", true, false, &oread[0]);
	struct hub_member *b = join(h, "t", true, false, &oread[1]);
	struct hub_msg *kept = seq_msg(0, 32, false);

	hub_msg_ref(kept);
	hub_publish(w, kept, 0);
	for (uint32_t s = 1; s < 6; s++)
		publish_seq(w, s, 32);
	CHECK_EQ(kept->refs, 3);
	hub_leave(a); /* 6 queued: released, the others are freed by b */
	CHECK_EQ(kept->refs, 2);
	hub_leave(b);
	CHECK_EQ(kept->refs, 1);
	hub_msg_unref(kept);

	hub_leave(w);
	hub_free(h);
}

static void test_topics(void)
{
	struct owner o[4] = {{0}};
	struct hub *h = new_hub(8, 1 << 16, HUB_DROP);
	struct hub_member *a1, *a2, *b1, *a3;

	CHECK_EQ(hub_topic_count(h), 0);
	a1 = join(h, "alpha", true, true, &o[0]);
	CHECK_EQ(hub_topic_count(h), 1);
	CHECK_STR(hub_member_topic(a1), "alpha");
	CHECK_EQ(hub_topic_members(a1), 1);
	a2 = join(h, "alpha", true, true, &o[1]);
	CHECK_EQ(hub_topic_count(h), 1);
	CHECK_EQ(hub_topic_members(a1), 2);
	b1 = join(h, "beta", true, true, &o[2]);
	CHECK_EQ(hub_topic_count(h), 2);
	CHECK_STR(hub_member_topic(b1), "beta");
	CHECK_EQ(hub_topic_members(b1), 1);

	hub_leave(a1);
	CHECK_EQ(hub_topic_count(h), 2);
	CHECK_EQ(hub_topic_members(a2), 1);
	hub_leave(a2);
	CHECK_EQ(hub_topic_count(h), 1);
	a3 = join(h, "alpha", true, true, &o[3]); /* created again */
	CHECK_EQ(hub_topic_count(h), 2);
	CHECK_EQ(hub_topic_members(a3), 1);
	hub_leave(b1);
	hub_leave(a3);
	CHECK_EQ(hub_topic_count(h), 0);
	hub_leave(NULL);
	hub_free(h);
}

static void check_join_fails(struct hub *h, const char *topic, enum hub_join_error want)
{
	struct owner o = {0};
	enum hub_join_error err = HUB_JOIN_OK;

	CHECK(hub_join(h, topic, true, true, &o, &err) == NULL);
	CHECK_EQ(err, want);
}

/* Many topics, so that the hash chains are exercised; each lookup must find its own. */
static void test_many_topics(void)
{
	struct hub_limits lim = {
	        .max_topics = 5000,
	        .max_per_topic = 4,
	        .queue_msgs = 4,
	        .queue_bytes = 1024,
	};
	struct hub *h = hub_new(&lim, &callbacks);
	static struct hub_member *m[5000];
	enum hub_join_error err;
	struct owner o = {0};
	char name[32];
	int joined = 0, ok = 0;

	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "topic-%d", i);
		m[i] = hub_join(h, name, true, true, &o, &err);
		joined += m[i] != NULL;
	}
	CHECK_EQ(joined, 5000);
	CHECK_EQ(hub_topic_count(h), 5000);
	check_join_fails(h, "one-too-many", HUB_JOIN_TOO_MANY_TOPICS);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "topic-%d", i);
		ok += strcmp(hub_member_topic(m[i]), name) == 0 && hub_topic_members(m[i]) == 1;
	}
	CHECK_EQ(ok, 5000);
	for (int i = 0; i < 5000; i += 2)
		hub_leave(m[i]);
	CHECK_EQ(hub_topic_count(h), 2500);
	for (int i = 1; i < 5000; i += 2)
		hub_leave(m[i]);
	CHECK_EQ(hub_topic_count(h), 0);
	hub_free(h);
}

static void test_limits(void)
{
	struct hub_limits lim = {
	        .max_topics = 2,
	        .max_per_topic = 2,
	        .queue_msgs = 4,
	        .queue_bytes = 1024,
	};
	struct owner o[4] = {{0}};
	struct hub *h = hub_new(&lim, &callbacks);
	struct hub_member *a1 = join(h, "a", true, true, &o[0]);
	struct hub_member *b1 = join(h, "b", true, true, &o[1]);
	struct hub_member *a2, *c1;

	check_join_fails(h, "c", HUB_JOIN_TOO_MANY_TOPICS);
	CHECK_EQ(hub_topic_count(h), 2);
	a2 = join(h, "a", true, true, &o[2]); /* an existing topic is fine */
	check_join_fails(h, "a", HUB_JOIN_TOPIC_FULL);
	CHECK_EQ(hub_topic_members(a1), 2);
	hub_leave(a2);
	a2 = join(h, "a", true, true, &o[2]); /* room again */
	hub_leave(b1);
	c1 = join(h, "c", true, true, &o[3]); /* a topic slot was freed */
	CHECK_EQ(hub_topic_count(h), 2);
	check_join_fails(h, "b", HUB_JOIN_TOO_MANY_TOPICS);

	hub_leave(a1);
	hub_leave(a2);
	hub_leave(c1);
	hub_free(h);
}

static void test_counters(void)
{
	struct owner ow = {0}, oread = {0};
	struct hub *h = new_hub(8, 1 << 16, HUB_DROP);
	struct hub_member *w = join(h, "t", true, true, &ow);
	struct hub_member *r = join(h, "t", true, true, &oread);
	const struct hub_counters *cw = hub_member_counters(w);
	const struct hub_counters *cr = hub_member_counters(r);

	CHECK_EQ(cw->rx_msgs, 0);
	CHECK_EQ(cr->tx_msgs, 0);
	hub_publish(w, seq_msg(1, 10, false), 100);
	hub_publish(w, seq_msg(2, 20, true), 200);
	hub_publish(w, seq_msg(3, 30, false), 300);
	CHECK_EQ(cw->rx_msgs, 3);
	CHECK_EQ(cw->rx_bytes, 60);
	CHECK_EQ(cw->last_rx_ns, 300);
	CHECK_EQ(cw->tx_msgs, 0);
	CHECK_EQ(cr->rx_msgs, 0);
	CHECK_EQ(cr->tx_msgs, 0); /* queued is not delivered */

	hub_pop(r, 400);
	CHECK_EQ(cr->tx_msgs, 1);
	CHECK_EQ(cr->tx_bytes, 10);
	CHECK_EQ(cr->last_tx_ns, 400);
	hub_pop(r, 500);
	hub_pop(r, 600);
	hub_pop(r, 700); /* empty: not counted */
	CHECK_EQ(cr->tx_msgs, 3);
	CHECK_EQ(cr->tx_bytes, 60);
	CHECK_EQ(cr->last_tx_ns, 600);

	hub_publish(r, seq_msg(4, 7, false), 800);
	CHECK_EQ(cr->rx_msgs, 1);
	CHECK_EQ(cr->rx_bytes, 7);
	CHECK_EQ(cr->last_rx_ns, 800);
	hub_pop(w, 900);
	CHECK_EQ(cw->tx_msgs, 1);
	CHECK_EQ(cw->tx_bytes, 7);
	CHECK_EQ(cw->dropped + cr->dropped + cw->refused + cr->refused, 0);

	hub_leave(w);
	hub_leave(r);
	hub_free(h);
}

/* ---- a long random run ---- */

#define RMEMBERS 8
#define RSTEPS   200000

struct rmember {
	struct hub_member *m;
	struct owner o;
	bool rd, wr;
	uint32_t last;   /* last sequence number read, + 1 (0: none yet) */
	uint64_t expect; /* messages queued for it, delivered or dropped */
	uint64_t popped; /* what we popped */
	uint64_t bad;    /* out of order, corrupted or from itself */
	uint32_t writer; /* index in the payload */
	int wakes_before;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13; /* xorshift64 */
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32);
}

/* Messages carry the global sequence number in bytes 0-3 and the writer in byte 4. */
static struct hub_msg *random_msg(uint32_t seq, uint32_t writer)
{
	struct hub_msg *m = seq_msg(seq, 5 + rng() % 120, rng() & 1);

	m->data[4] = (uint8_t)writer; /* over seq_msg's pattern byte, which is not checked */
	return m;
}

static void random_pop(struct rmember *rm, int64_t now)
{
	struct hub_msg *m = hub_peek(rm->m);
	uint32_t seq;

	if (!m)
		return;
	seq = (uint32_t)m->data[0] | (uint32_t)m->data[1] << 8 | (uint32_t)m->data[2] << 16 |
	      (uint32_t)m->data[3] << 24;
	for (size_t i = 5; i < m->len; i++)
		rm->bad += m->data[i] != (uint8_t)(seq * 31 + i);
	rm->bad += seq + 1 <= rm->last;      /* order */
	rm->bad += m->data[4] == rm->writer; /* never the sender */
	rm->last = seq + 1;
	rm->popped++;
	hub_pop(rm->m, now);
}

/* Publish from rm[@from]; counts what the hub must queue, and checks its return and wakes. */
static void random_publish(struct rmember *rm, int n, int from, uint32_t seq, uint64_t *good)
{
	bool was_empty[RMEMBERS];
	int want = 0, got;

	for (int i = 0; i < n; i++) {
		was_empty[i] = rm[i].rd && hub_queued(rm[i].m) == 0;
		rm[i].wakes_before = rm[i].o.wakes;
		if (i != from && rm[i].rd) {
			rm[i].expect++;
			want++;
		}
	}
	got = hub_publish(rm[from].m, random_msg(seq, rm[from].writer), seq);
	*good += got == want;
	for (int i = 0; i < n; i++) /* a wake exactly when the queue went empty -> non-empty */
		rm[i].bad += rm[i].o.wakes - rm[i].wakes_before !=
		             (was_empty[i] && hub_queued(rm[i].m) > 0);
}

static void test_random(size_t queue_msgs, size_t queue_bytes)
{
	struct hub *h = new_hub(queue_msgs, queue_bytes, HUB_DROP);
	struct rmember rm[RMEMBERS] = {{0}};
	uint64_t sent = 0, good_returns = 0, total_expect = 0, total = 0, bad = 0, pops = 0;
	uint64_t sum_tx = 0;

	for (int i = 0; i < RMEMBERS; i++) {
		rm[i].rd = i != 0; /* 0: write only */
		rm[i].wr = i < 4;  /* 1..3: read and write; 4..7: read only */
		rm[i].writer = (uint32_t)i;
		rm[i].m = join(h, "random", rm[i].rd, rm[i].wr, &rm[i].o);
	}
	for (uint32_t step = 0; step < RSTEPS; step++) {
		uint32_t r = rng();
		int who = (int)(rng() % RMEMBERS);

		if (r % 3 == 0 && rm[who].wr) {
			random_publish(rm, RMEMBERS, who, (uint32_t)sent, &good_returns);
			sent++;
		} else if (rm[who].rd) {
			for (uint32_t k = rng() % 4; k; k--)
				random_pop(&rm[who], step);
		}
	}
	for (int i = 0; i < RMEMBERS; i++) {
		while (hub_peek(rm[i].m))
			random_pop(&rm[i], RSTEPS);
	}
	for (int i = 0; i < RMEMBERS; i++) {
		const struct hub_counters *c = hub_member_counters(rm[i].m);

		total_expect += rm[i].expect;
		total += c->tx_msgs + c->dropped;
		bad += rm[i].bad;
		bad += rm[i].expect != c->tx_msgs + c->dropped; /* per reader too */
		bad += rm[i].popped != c->tx_msgs;
		pops += rm[i].popped;
		sum_tx += c->tx_msgs;
		hub_leave(rm[i].m);
	}
	CHECK(sent > 1000);
	CHECK(pops > 1000);
	CHECK(total_expect > pops); /* some were dropped */
	CHECK_EQ(good_returns, sent);
	CHECK_EQ(bad, 0);
	CHECK_EQ(total, total_expect);
	CHECK_EQ(sum_tx, pops);
	CHECK_EQ(hub_topic_count(h), 0);
	hub_free(h);
}

/* ---- back-pressure ---- */

/* Every reader backed up (three quarters of a limit): the writer is paused, never a reader;
 * nothing is dropped; one reader down to a quarter resumes it. */
static void test_pause_when_all_backed_up(void)
{
	struct owner ow = {0}, oa = {0}, ob = {0};
	struct hub *h = new_hub(8, 1 << 16, HUB_DROP);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *a = join(h, "t", true, false, &oa);
	struct hub_member *b = join(h, "t", true, false, &ob);

	for (uint32_t s = 0; s < 5; s++)
		CHECK_EQ(publish_seq(w, s, 10), 2);
	CHECK(!hub_topic_paused(w)); /* 5 of 8: below three quarters */
	CHECK_EQ(ow.pauses, 0);
	CHECK_EQ(publish_seq(w, 5, 10), 2); /* 6 of 8: both backed up */
	CHECK(hub_topic_paused(w));
	CHECK_EQ(ow.pauses, 1);
	CHECK_EQ(oa.pauses + ob.pauses, 0); /* readers that do not write are not paused */
	CHECK_EQ(publish_seq(w, 6, 10), 2); /* what was in flight is still queued... */
	CHECK_EQ(publish_seq(w, 7, 10), 2);
	CHECK_EQ(ow.pauses, 1); /* ...and asks nothing again */
	for (int i = 0; i < 5; i++)
		hub_pop(a, 0);
	CHECK(hub_topic_paused(w)); /* 3 left: above a quarter (2) */
	hub_pop(a, 0);
	CHECK(!hub_topic_paused(w));
	CHECK_EQ(ow.resumes, 1);
	check_queue(a, 6, 7);
	check_queue(b, 0, 7);
	CHECK_EQ(hub_member_counters(a)->dropped + hub_member_counters(b)->dropped, 0);
	hub_leave(w);
	hub_leave(a);
	hub_leave(b);
	hub_free(h);
}

/* By bytes as well: three quarters of queue_bytes back a reader up. */
static void test_pause_by_bytes(void)
{
	struct owner ow = {0}, or = {0};
	struct hub *h = new_hub(100, 1000, HUB_DROP);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *r = join(h, "t", true, false, & or);

	CHECK_EQ(publish_seq(w, 0, 749), 1);
	CHECK(!hub_topic_paused(w));
	CHECK_EQ(publish_seq(w, 1, 1), 1); /* 750 of 1000 bytes */
	CHECK(hub_topic_paused(w));
	hub_pop(r, 0); /* 1 byte left, 1 message */
	CHECK(!hub_topic_paused(w));
	CHECK_EQ(ow.pauses, 1);
	CHECK_EQ(ow.resumes, 1);
	hub_leave(w);
	hub_leave(r);
	hub_free(h);
}

/* A reader that lags behind one with room is dropped from (as before); the writer is never
 * paused while the other keeps up. */
static void test_laggard_dropped_not_paused(void)
{
	struct owner ow = {0}, oslow = {0}, ofast = {0};
	struct hub *h = new_hub(8, 1 << 16, HUB_DROP);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *slow = join(h, "t", true, false, &oslow);
	struct hub_member *fast = join(h, "t", true, false, &ofast);

	for (uint32_t s = 0; s < 100; s++) {
		CHECK_EQ(publish_seq(w, s, 10), 2);
		drain(fast);
	}
	CHECK_EQ(ow.pauses, 0);
	CHECK(!hub_topic_paused(w));
	CHECK_EQ(hub_member_counters(slow)->dropped, 92);
	CHECK_EQ(hub_member_counters(fast)->tx_msgs, 100);
	/* once the fast one is backed up too, the writer pauses */
	for (uint32_t s = 100; s < 105; s++)
		publish_seq(w, s, 10);
	CHECK(!hub_topic_paused(w)); /* 5 of 8 */
	publish_seq(w, 105, 10);
	CHECK(hub_topic_paused(w)); /* 6 of 8 */
	hub_leave(w);
	hub_leave(slow);
	hub_leave(fast);
	hub_free(h);
}

/* No reader but the writer itself (or none at all): never paused, however much it sends. */
static void test_no_other_reader_never_pauses(void)
{
	struct owner ow = {0}, orw = {0};
	struct hub *h = new_hub(4, 1 << 16, HUB_DROP);
	struct hub_member *w = join(h, "alone", false, true, &ow);
	struct hub_member *rw = join(h, "self", true, true, &orw);

	for (uint32_t s = 0; s < 50; s++) {
		CHECK_EQ(publish_seq(w, s, 10), 0);
		CHECK_EQ(publish_seq(rw, s, 10), 0);
	}
	CHECK(!hub_topic_paused(w));
	CHECK(!hub_topic_paused(rw));
	CHECK_EQ(ow.pauses + orw.pauses, 0);
	hub_leave(w);
	hub_leave(rw);
	hub_free(h);
}

/* Writers that also read: only the others' queues count; every writer is paused together; a
 * writer joining a paused topic is paused at once; a new reader (room) resumes them. */
static void test_several_writers(void)
{
	struct owner o1 = {0}, o2 = {0}, o3 = {0}, onew = {0};
	struct hub *h = new_hub(4, 1 << 16, HUB_DROP);
	struct hub_member *w1 = join(h, "t", true, true, &o1);
	struct hub_member *w2 = join(h, "t", true, true, &o2);
	struct hub_member *w3, *fresh;

	CHECK_EQ(publish_seq(w1, 0, 10), 1);
	CHECK_EQ(publish_seq(w1, 1, 10), 1);
	CHECK(!hub_topic_paused(w1));        /* w2 holds 2 of 4 */
	CHECK_EQ(publish_seq(w1, 2, 10), 1); /* 3 of 4; w1's own queue is empty */
	CHECK(hub_topic_paused(w1));
	CHECK(o1.paused && o2.paused);
	w3 = join(h, "t", false, true, &o3);
	CHECK(o3.paused);
	fresh = join(h, "t", true, false, &onew);
	CHECK(!hub_topic_paused(w1));
	CHECK(!o1.paused && !o2.paused && !o3.paused);
	CHECK_EQ(onew.pauses + onew.resumes, 0);
	hub_leave(w1);
	hub_leave(w2);
	hub_leave(w3);
	hub_leave(fresh);
	hub_free(h);
}

/* The last backed-up reader leaving resumes the writers. */
static void test_reader_leaves_resumes(void)
{
	struct owner ow = {0}, or = {0};
	struct hub *h = new_hub(4, 1 << 16, HUB_CLOSE);
	struct hub_member *w = join(h, "t", false, true, &ow);
	struct hub_member *r = join(h, "t", true, false, & or);

	publish_seq(w, 0, 10);
	publish_seq(w, 1, 10);
	publish_seq(w, 2, 10);
	CHECK(ow.paused);
	hub_leave(r);
	CHECK(!ow.paused);
	CHECK_EQ(or.overflows, 0);
	hub_leave(w);
	hub_free(h);
}

int main(void)
{
	RUN(test_msg_new());
	RUN(test_fanout());
	RUN(test_no_write());
	RUN(test_no_read());
	RUN(test_wake());
	RUN(test_drop_by_count());
	RUN(test_ring_growth());
	RUN(test_drop_by_bytes());
	RUN(test_close_by_count());
	RUN(test_close_by_bytes());
	RUN(test_refcounts());
	RUN(test_leave_frees_queue());
	RUN(test_topics());
	RUN(test_many_topics());
	RUN(test_limits());
	RUN(test_counters());
	RUN(test_pause_when_all_backed_up());
	RUN(test_pause_by_bytes());
	RUN(test_laggard_dropped_not_paused());
	RUN(test_no_other_reader_never_pauses());
	RUN(test_several_writers());
	RUN(test_reader_leaves_resumes());
	RUN(test_random(8, 600));
	RUN(test_random(40, 4000)); /* rings grow past their first 16 slots */
	return harness_done();
}
