/*
 * relay_admin_test: the query of POST /bids/deny and /bids/allow (relay/admin.c, included to
 * reach its statics): bid and exp in any order, ids up to the 127-byte limit and not past it,
 * repeated and missing arguments, exp syntax, range (2^63-1) and the past, ids that are not
 * UTF-8. The arguments are given as lws
 * hands them over: one "name=value" string each, percent-decoded.
 */
#include "relay/admin.c"
#include "test/harness.h"
#include "test/unit/relay_stubs.h"

/* ---- what admin.c calls elsewhere in relay/ (never reached by these tests) ---- */

struct server relay_srv;

/* relay/cluster.c: without --redis */
void relay_cluster_bid(bool deny, const char *bid, int64_t exp, int64_t ver)
{
	(void)deny, (void)bid, (void)exp, (void)ver;
}

const char *relay_cluster_trouble(void)
{
	return NULL;
}

json_t *relay_cluster_status(void)
{
	return NULL;
}

int64_t relay_now_ms(void)
{
	return 0;
}

int relay_respond_type(struct lws *wsi, struct conn *c, int status, const char *type, char *body)
{
	(void)type;
	return relay_respond(wsi, c, status, body);
}

const char *relay_verify(struct server *s, struct lws *wsi, struct rjwt_claims *claims)
{
	(void)s, (void)wsi, (void)claims;
	return "not here";
}

bool relay_has_stats_scope(const struct rjwt_claims *cl)
{
	(void)cl;
	return false;
}

json_t *relay_status_json(void)
{
	return NULL;
}

char *relay_metrics_text(void)
{
	return NULL;
}

size_t relay_close_booking(const char *bid)
{
	(void)bid;
	return 0;
}

/* ---- helpers ---- */

#define NOW 1700000000

/* Parse a NULL-terminated list of arguments as bid_query_read() would; NULL or the reason. */
static const char *parse(struct bid_query *q, const char *const *args)
{
	const char *why;

	memset(q, 0, sizeof(*q));
	for (; *args; args++) {
		why = bid_query_arg(q, *args);
		if (why)
			return why;
	}
	return bid_query_check(q, NOW);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_any_order(void)
{
	struct bid_query q;

	CHECK(parse(&q, ARGS("bid=bk-1", "exp=1700000100")) == NULL);
	CHECK_STR(q.bid, "bk-1");
	CHECK_EQ(q.exp, 1700000100);
	CHECK(parse(&q, ARGS("exp=1700000100", "bid=bk-2")) == NULL);
	CHECK_STR(q.bid, "bk-2");
	CHECK(parse(&q, ARGS("x=1", "exp=1700000100", "y", "bid=bk-3", "")) == NULL);
	CHECK_STR(q.bid, "bk-3");
	/* decoded values as lws hands them: spaces, '&', '=' and non-ASCII are bytes of the id */
	CHECK(parse(&q, ARGS("bid=a b&c=d", "exp=1700000100")) == NULL);
	CHECK_STR(q.bid, "a b&c=d");
	CHECK(parse(&q, ARGS("bid=caf\xc3\xa9", "exp=1700000100")) == NULL);
	CHECK_STR(q.bid, "caf\xc3\xa9");
}

static void test_id_length(void)
{
	char arg[4 + STORE_BID_MAX + 2];
	struct bid_query q;

	for (size_t n = 1; n <= STORE_BID_MAX + 1; n++) {
		const char *why;

		snprintf(arg, sizeof(arg), "bid=%.*s", (int)n,
		         "0123456789012345678901234567890123456789012345678901234567890123456789"
		         "012345678901234567890123456789012345678901234567890123456789");
		why = parse(&q, ARGS(arg, "exp=1700000100"));
		if (n <= STORE_BID_MAX) {
			CHECK(why == NULL);
			CHECK_EQ(strlen(q.bid), n);
			why = parse(&q, ARGS("exp=1700000100", arg));
			CHECK(why == NULL);
		} else {
			CHECK(why != NULL && strstr(why, "127"));
		}
	}
}

static void test_refusals(void)
{
	struct bid_query q;

	CHECK(parse(&q, ARGS("exp=1700000100")) != NULL);
	CHECK(parse(&q, ARGS("bid=", "exp=1700000100")) != NULL);
	CHECK(parse(&q, ARGS("bid=x")) != NULL);
	CHECK(parse(&q, ARGS("bid=x", "exp=")) != NULL);
	CHECK(parse(&q, ARGS("bid=x", "exp=soon")) != NULL);
	CHECK(parse(&q, ARGS("bid=x", "exp=1700000100s")) != NULL);
	CHECK(parse(&q, ARGS("bid=x", "exp=12")) != NULL);
	CHECK(parse(&q, ARGS("bid=x", "exp=1700000000")) != NULL); /* now is not the future */
	CHECK(parse(&q, ARGS("bid=x", "bid=y", "exp=1700000100")) != NULL);
	CHECK(parse(&q, ARGS("bid=x", "exp=1700000100", "exp=1700000200")) != NULL);
	CHECK(parse(&q, ARGS("BID=x", "exp=1700000100")) != NULL); /* names are exact */
	CHECK(parse(&q, ARGS("bid=x", "exp=+1700000100")) != NULL);
	CHECK(parse(&q, ARGS("bid=x", "exp= 1700000100")) != NULL);
	CHECK(parse(&q, ARGS("bid=x", "exp=-1")) != NULL);
	CHECK(parse(&q, ARGS("bid=x", "exp=0x7fffffff")) != NULL);
}

/* What a token cannot carry cannot be denied: ids that are not UTF-8, exp past year 9999 (every
 * instance must read what /bids takes). */
static void test_token_range(void)
{
	struct bid_query q;
	const char *why;

	CHECK(parse(&q, ARGS("bid=x", "exp=253402300799")) == NULL);
	CHECK_EQ(q.exp, 253402300799);
	why = parse(&q, ARGS("bid=x", "exp=253402300800"));
	CHECK(why && strstr(why, "9999"));
	why = parse(&q, ARGS("bid=x", "exp=9223372036854775807"));
	CHECK(why && strstr(why, "9999"));
	why = parse(&q, ARGS("bid=x", "exp=9223372036854775808"));
	CHECK(why && strstr(why, "9999"));
	CHECK(parse(&q, ARGS("bid=x", "exp=99999999999999999999999")) != NULL);
	CHECK(parse(&q, ARGS("bid=x", "exp=00000000000000000000001700000100")) == NULL);
	why = parse(&q, ARGS("bid=\xff", "exp=1700000100"));
	CHECK(why && strstr(why, "UTF-8"));
	CHECK(parse(&q, ARGS("bid=a\xc3", "exp=1700000100")) != NULL);        /* cut short */
	CHECK(parse(&q, ARGS("bid=\xc0\xaf", "exp=1700000100")) != NULL);     /* overlong */
	CHECK(parse(&q, ARGS("bid=\xed\xa0\x80", "exp=1700000100")) != NULL); /* surrogate */
	CHECK(parse(&q, ARGS("bid=\xf0\x9f\x98\x80", "exp=1700000100")) == NULL);
}

int main(void)
{
	RUN(test_any_order());
	RUN(test_id_length());
	RUN(test_refusals());
	RUN(test_token_range());
	return harness_done();
}
