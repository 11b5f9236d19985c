/*
 * host_ingest_test: pure pieces of the host's local server (host/ingest.c, included to reach its
 * statics): the websocket key check (RFC 6455 section 4.2.1) and take_body, which feeds or
 * collects request bodies by length, chunks or until the peer closes, leaving the bytes of a
 * next request in place and refusing an API body past its cap; ws_input, which takes whole
 * frames and keeps a partial one for the next read, and refuses unmasked frames and frames that
 * cannot fit in the input buffer.
 */
#include "host/ingest.c"
#include "test/harness.h"

#ifndef RUN /* a harness that does not count test cases yet */
#define RUN(call) call
#endif

static size_t fed_bytes, fed_calls;

static size_t count_feed(void *arg, const char *name, uint8_t opcode, const uint8_t *p, size_t n)
{
	(void)arg;
	(void)name;
	(void)opcode;
	(void)p;
	fed_bytes += n;
	fed_calls++;
	return 1;
}

static struct host_ingest g = {.hooks = {.feed = count_feed}};

static struct http1_view view(const char *s)
{
	return (struct http1_view){s, strlen(s)};
}

static void test_ws_key(void)
{
	CHECK(ws_key_ok(view("dGhlIHNhbXBsZSBub25jZQ=="))); /* RFC 6455's example */
	CHECK(ws_key_ok(view("AAAAAAAAAAAAAAAAAAAAAA==")));
	CHECK(ws_key_ok(view("+/+/+/+/+/+/+/+/+/+/+w==")));
	CHECK(!ws_key_ok(view("")));
	CHECK(!ws_key_ok(view("dGhlIHNhbXBsZSBub25jZQ=")));     /* 23 characters */
	CHECK(!ws_key_ok(view("dGhlIHNhbXBsZSBub25jZQ===")));   /* 25 */
	CHECK(!ws_key_ok(view("dGhlIHNhbXBsZSBub25jZQAA")));    /* no padding: not 16 bytes */
	CHECK(!ws_key_ok(view("dGhlIHNhbXBsZSBub25jZ-==")));    /* not base64 */
	CHECK(!ws_key_ok(view("dGhlIHNhbXBsZSBub25j\x00Q=="))); /* a NUL inside */
	CHECK(!ws_key_ok((struct http1_view){"dGhlIHNhbXBsZSBub25jZQ==", 22}));
}

static struct conn *new_conn(enum conn_state state, int64_t body_left, const char *in)
{
	struct conn *c = calloc(1, sizeof(*c));

	c->state = state;
	c->body_left = body_left;
	buf_init(&c->in, IN_MAX);
	buf_init(&c->msg, API_BODY_MAX + 1);
	buf_add(&c->in, in, strlen(in));
	snprintf(c->feed, sizeof(c->feed), "f");
	return c;
}

static void free_conn(struct conn *c)
{
	buf_release(&c->in);
	buf_release(&c->msg);
	free(c);
}

static void test_length_body(void)
{
	/* an API body by length: collected, the next request's bytes stay */
	struct conn *c = new_conn(C_API_BODY, 5, "hel");

	CHECK_EQ(take_body(&g, c), 0);
	CHECK_EQ(c->msg.len, 3);
	CHECK_EQ(c->in.len, 0);
	buf_add(&c->in, "loGET /", 7);
	CHECK_EQ(take_body(&g, c), 1);
	CHECK_EQ(c->msg.len, 5);
	CHECK_MEM(c->msg.p, "hello", 5);
	CHECK_EQ(c->in.len, 5);
	CHECK_MEM(c->in.p, "GET /", 5);
	free_conn(c);
	/* an empty body is complete at once */
	c = new_conn(C_API_BODY, 0, "");
	CHECK_EQ(take_body(&g, c), 1);
	free_conn(c);
}

static void test_chunked_body(void)
{
	struct conn *c = new_conn(C_BODY, -1, "4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\nNEXT");

	fed_bytes = fed_calls = 0;
	CHECK_EQ(take_body(&g, c), 1);
	CHECK_EQ(fed_bytes, 9);
	CHECK_EQ(c->in.len, 4);
	CHECK_MEM(c->in.p, "NEXT", 4);
	free_conn(c);
	c = new_conn(C_BODY, -1, "zz\r\n");
	CHECK_EQ(take_body(&g, c), -1);
	free_conn(c);
}

static void test_until_close(void)
{
	struct conn *c = new_conn(C_BODY, -2, "all of it");

	fed_bytes = 0;
	CHECK_EQ(take_body(&g, c), 0); /* never complete: the peer's close ends it */
	CHECK_EQ(fed_bytes, 9);
	CHECK_EQ(c->in.len, 0);
	free_conn(c);
}

static void test_api_body_cap(void)
{
	struct conn *c = new_conn(C_API_BODY, API_BODY_MAX + 1, "");
	int r = 0;

	for (size_t sent = 0; sent <= API_BODY_MAX && r == 0; sent += 4096) {
		c->in.len = 0;
		buf_reserve(&c->in, 4096);
		memset(c->in.p, 'a', 4096);
		c->in.len = 4096;
		r = take_body(&g, c);
	}
	CHECK_EQ(r, -2);
	CHECK(c->msg.len <= API_BODY_MAX);
	free_conn(c);
	/* exactly the cap is fine */
	c = new_conn(C_API_BODY, API_BODY_MAX, "");
	for (size_t sent = 0; sent < API_BODY_MAX && r != 1; sent += 4096) {
		c->in.len = 0;
		buf_reserve(&c->in, 4096);
		memset(c->in.p, 'a', 4096);
		c->in.len = 4096;
		r = take_body(&g, c);
	}
	CHECK_EQ(r, 1);
	CHECK_EQ(c->msg.len, API_BODY_MAX);
	free_conn(c);
}

/* A client's frame (masked) of @n bytes of @p, appended to c->in. */
static void add_frame(struct conn *c, uint8_t opcode, const char *p, size_t n, bool masked)
{
	static const uint8_t mask[4] = {1, 2, 3, 4};
	uint8_t h[WSFRAME_MAX_HEADER];
	size_t at;

	buf_add(&c->in, h, wsframe_header(h, opcode, true, n, masked ? mask : NULL));
	at = c->in.len;
	buf_add(&c->in, p, n);
	if (masked)
		wsframe_mask(c->in.p + at, n, mask, 0);
}

/* ws_input: whole frames are taken, a partial one waits at the front of c->in for the rest */
static void test_ws_input(void)
{
	struct conn *c = new_conn(C_WS, 0, ""), *t = new_conn(C_WS, 0, "");
	static const uint8_t mask[4] = {1, 2, 3, 4};
	uint8_t h[WSFRAME_MAX_HEADER];

	fed_bytes = fed_calls = 0;
	add_frame(c, WS_TEXT, "hi", 2, true);
	add_frame(c, WS_BINARY, "there", 5, true);
	add_frame(t, WS_TEXT, "later", 5, true); /* the third frame: all but 3 bytes come */
	buf_add(&c->in, t->in.p, t->in.len - 3);
	CHECK(ws_input(&g, c));
	CHECK_EQ(fed_calls, 2);
	CHECK_EQ(fed_bytes, 7);
	CHECK_EQ(c->in.len, t->in.len - 3); /* moved to the front */
	CHECK_MEM(c->in.p, t->in.p, t->in.len - 3);
	buf_add(&c->in, t->in.p + t->in.len - 3, 3);
	CHECK(ws_input(&g, c));
	CHECK_EQ(fed_calls, 3);
	CHECK_EQ(fed_bytes, 12);
	CHECK_EQ(c->in.len, 0);
	/* RFC 6455 section 5.1: an unmasked client frame ends the connection */
	add_frame(c, WS_TEXT, "bare", 4, false);
	CHECK(!ws_input(&g, c));
	CHECK_EQ(fed_calls, 3);
	wsframe_message_release(&c->wsm);
	free_conn(c);
	free_conn(t);
	/* a frame that could never fit in IN_MAX is refused at its header */
	c = new_conn(C_WS, 0, "");
	buf_add(&c->in, h, wsframe_header(h, WS_BINARY, true, IN_MAX, mask));
	CHECK(!ws_input(&g, c));
	free_conn(c);
}

static void test_feed_names(void)
{
	CHECK(host_ingest_feed_name_ok("cam-1.a_b", 9));
	CHECK(!host_ingest_feed_name_ok("", 0));
	CHECK(!host_ingest_feed_name_ok("a/b", 3));
	CHECK(!host_ingest_feed_name_ok("a b", 3));
	CHECK(host_ingest_feed_name_ok(
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 63));
	CHECK(!host_ingest_feed_name_ok(
	        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 64));
}

int main(void)
{
	RUN(test_ws_key());
	RUN(test_length_body());
	RUN(test_chunked_body());
	RUN(test_until_close());
	RUN(test_api_body_cap());
	RUN(test_ws_input());
	RUN(test_feed_names());
	return harness_done();
}
