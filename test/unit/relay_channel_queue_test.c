/*
 * relay_channel_queue_test: relay/channel_queue.c, included. Pieces keep their message flags;
 * pieces of one message still coming are coalesced into CHAN_CHUNK pieces and never across
 * messages; held counts what is allocated and goes back to 0; in_bytes counts payload.
 */
#include "relay/channel_queue.c"
#include "test/harness.h"

static void test_whole_messages_stay_apart(void)
{
	struct chan_queue q = {0};
	struct chan_piece *p;

	CHECK_EQ(chan_queue_add(&q, (const uint8_t *)"ab", 2, true, true, true), 0);
	CHECK_EQ(chan_queue_add(&q, (const uint8_t *)"cde", 3, true, true, false), 0);
	CHECK_EQ(q.in_bytes, 5);
	p = chan_queue_peek(&q);
	CHECK(p->first && p->final && p->binary);
	CHECK_MEM(p->data + LWS_PRE, "ab", 2);
	CHECK_EQ(p->cap, 2); /* a whole small message takes what it needs */
	chan_queue_pop(&q);
	p = chan_queue_peek(&q);
	CHECK(p->first && p->final && !p->binary);
	CHECK_EQ(p->len, 3);
	chan_queue_pop(&q);
	CHECK(chan_queue_peek(&q) == NULL);
	CHECK_EQ(q.held, 0);
	CHECK(q.tail == NULL);
}

static void test_fragments_coalesce_within_a_message(void)
{
	struct chan_queue q = {0};
	uint8_t a[1000], b[CHAN_CHUNK];
	struct chan_piece *p;

	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	CHECK_EQ(chan_queue_add(&q, a, 1000, true, false, true), 0);
	CHECK_EQ(chan_queue_add(&q, a, 1000, false, false, true), 0);
	CHECK_EQ(chan_queue_add(&q, a, 10, false, true, true), 0); /* the message ends */
	CHECK(q.head == q.tail);                                   /* one piece */
	p = chan_queue_peek(&q);
	CHECK(p->first && p->final);
	CHECK_EQ(p->len, 2010);
	/* the next message does not join a finished one */
	CHECK_EQ(chan_queue_add(&q, a, 5, true, false, false), 0);
	CHECK(q.head != q.tail);
	CHECK(q.tail->first && !q.tail->final && !q.tail->binary);
	/* a piece that does not fit starts a new piece, a continuation */
	CHECK_EQ(chan_queue_add(&q, b, CHAN_CHUNK, false, true, false), 0);
	CHECK(!q.tail->first && q.tail->final);
	CHECK_EQ(q.tail->len, CHAN_CHUNK);
	CHECK_EQ(q.in_bytes, 2010 + 5 + CHAN_CHUNK);
	chan_queue_clear(&q);
	CHECK_EQ(q.held, 0);
	CHECK(q.head == NULL && q.tail == NULL);
}

static void test_empty_message(void)
{
	struct chan_queue q = {0};

	CHECK_EQ(chan_queue_add(&q, NULL, 0, true, true, true), 0);
	CHECK_EQ(chan_queue_peek(&q)->len, 0);
	CHECK(q.held > 0);
	chan_queue_pop(&q);
	chan_queue_pop(&q); /* popping an empty queue does nothing */
	CHECK_EQ(q.held, 0);
}

int main(void)
{
	RUN(test_whole_messages_stay_apart());
	RUN(test_fragments_coalesce_within_a_message());
	RUN(test_empty_message());
	return harness_done();
}
