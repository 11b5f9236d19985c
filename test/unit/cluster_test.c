/*
 * cluster_test: pkg/cluster against its contract (pkg/cluster/cluster.h). redis:// URLs (host,
 * IPv6, port, password with and without user, db) and their refusals, without the password in
 * any reason; the topic message header (origin, binary flag, empty and binary payloads, short
 * or unknown-flag input refused); grants through JSON and back, fields too long refused; code
 * hashes; deny/allow notes both ways and malformed ones.
 */
#include "pkg/cluster/cluster.h"
#include "test/harness.h"

#include <errno.h>
#include <stdlib.h>

static void test_url(void)
{
	struct cluster_url u;
	char why[256];

	CHECK_EQ(cluster_url_parse("redis://127.0.0.1:6380/2", &u, why), 0);
	CHECK_STR(u.host, "127.0.0.1");
	CHECK_EQ(u.port, 6380);
	CHECK_EQ(u.db, 2);
	CHECK_STR(u.password, "");
	CHECK_EQ(cluster_url_parse("redis://localhost", &u, why), 0);
	CHECK_STR(u.host, "localhost");
	CHECK_EQ(u.port, 6379);
	CHECK_EQ(u.db, 0);
	CHECK_EQ(cluster_url_parse("redis://:s3cret@[::1]:7000/", &u, why), 0);
	CHECK_STR(u.host, "::1");
	CHECK_EQ(u.port, 7000);
	CHECK_STR(u.user, "");
	CHECK_STR(u.password, "s3cret");
	CHECK_EQ(cluster_url_parse("redis://relay:p@ss:w@h:1", &u, why), 0);
	CHECK_STR(u.user, "relay");
	CHECK_STR(u.password, "p@ss:w");
	CHECK_STR(u.host, "h");
}

static void test_url_refused(void)
{
	const char *bad[] = {"",
	                     "http://h:1",
	                     "rediss://h",
	                     "redis://",
	                     "redis://h:0",
	                     "redis://h:65536",
	                     "redis://h:x",
	                     "redis://[::1",
	                     "redis://h/x",
	                     "redis://nocolon@h",
	                     "redis://:pw@:1",
	                     "redis://[::1]x"};
	struct cluster_url u;
	char why[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		CHECK_EQ(cluster_url_parse(bad[i], &u, why), -EINVAL);
		CHECK(why[0] != '\0');
		CHECK(!strstr(why, "pw"));
	}
	CHECK_EQ(cluster_url_parse(NULL, &u, why), -EINVAL);
}

static void test_frame(void)
{
	uint8_t buf[CLUSTER_HDR + 4] = {0};
	struct cluster_frame f;

	cluster_frame_header(buf, 0x0102030405060708ull, true);
	memcpy(buf + CLUSTER_HDR, "\0a\xffz", 4);
	CHECK_EQ(cluster_frame_parse(buf, sizeof(buf), &f), 0);
	CHECK(f.origin == 0x0102030405060708ull);
	CHECK(f.binary);
	CHECK_EQ(f.len, 4);
	CHECK(memcmp(f.data, "\0a\xffz", 4) == 0);
	cluster_frame_header(buf, UINT64_MAX, false);
	CHECK_EQ(cluster_frame_parse(buf, CLUSTER_HDR, &f), 0);
	CHECK(!f.binary);
	CHECK(f.origin == UINT64_MAX);
	CHECK_EQ(f.len, 0);
	CHECK_EQ(cluster_frame_parse(buf, CLUSTER_HDR - 1, &f), -EINVAL);
	buf[8] = 0x80;
	CHECK_EQ(cluster_frame_parse(buf, CLUSTER_HDR, &f), -EINVAL);
}

static void test_grant(void)
{
	struct grant g = {.topic = "lab",
	                  .prefix = "session",
	                  .booking_id = "bk\"1",
	                  .who = "u/j",
	                  .scopes = "read,write",
	                  .can_read = true,
	                  .can_write = false,
	                  .exp = 1900000000};
	struct grant back;
	char *s = cluster_grant_dump(&g), *bad;

	CHECK(s != NULL);
	CHECK_EQ(cluster_grant_load(s, strlen(s), &back), 0);
	CHECK(memcmp(&g, &back, sizeof(g)) == 0);
	free(s);
	CHECK_EQ(cluster_grant_load("[]", 2, &back), -EINVAL);
	CHECK_EQ(cluster_grant_load("{\"topic\":\"x\"}", 13, &back), -EINVAL);
	bad = malloc(GRANT_TOPIC + 200);
	snprintf(bad, GRANT_TOPIC + 200,
	         "{\"topic\":\"%0*d\",\"prefix\":\"session\",\"booking_id\":\"\",\"who\":\"\","
	         "\"scopes\":\"\",\"read\":true,\"write\":true,\"exp\":1}",
	         GRANT_TOPIC, 0);
	CHECK_EQ(cluster_grant_load(bad, strlen(bad), &back), -EINVAL);
	free(bad);
}

static void test_code_hash(void)
{
	char a[CLUSTER_CODE_HASH], b[CLUSTER_CODE_HASH];

	CHECK_EQ(cluster_code_hash("abc", 3, a), 0);
	CHECK_STR(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK_EQ(cluster_code_hash("abd", 3, b), 0);
	CHECK(strcmp(a, b) != 0);
}

static void test_bid(void)
{
	struct cluster_bid b = {.deny = true,
	                        .exp = 1900000000,
	                        .ver = 1733390000123,
	                        .bid = "bk 1"},
	                   back;
	char s[256];
	int n = cluster_bid_format(&b, s, sizeof(s));

	CHECK(n > 0);
	CHECK_STR(s, "deny 1900000000 1733390000123 bk 1");
	CHECK_EQ(cluster_bid_parse(s, (size_t)n, &back), 0);
	CHECK(back.deny);
	CHECK(back.exp == 1900000000);
	CHECK(back.ver == 1733390000123);
	CHECK_STR(back.bid, "bk 1");
	CHECK_EQ(cluster_bid_parse("allow 5 7 x", 11, &back), 0);
	CHECK(!back.deny);
	CHECK(back.exp == 5 && back.ver == 7);
	CHECK_EQ(cluster_bid_format(&b, s, 8), -ENOSPC);
	CHECK_EQ(cluster_bid_format(&b, s, 31), -ENOSPC); /* the value fits, the id does not */
	CHECK_EQ(cluster_bid_parse("allow 5 7 ", 10, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("allow 5 x", 9, &back), -EINVAL); /* no version */
	CHECK_EQ(cluster_bid_parse("allow x1 1 b", 12, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("allow 1 x1 b", 12, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("block 1 1 b", 11, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("deny  1 b", 9, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("deny 1 1 a\0b", 12, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("deny 1 1 \xff", 10, &back), -EINVAL); /* not UTF-8 */
}

/* Every exp /bids takes crosses (up to the last second of 9999) and no further; versions up to
 * 2^53-1, which Redis's Lua script reads exactly too (review 6; review 2, finding 5: a value
 * outside is no entry, in C as in Lua). */
static void test_bid_range(void)
{
	struct cluster_bid b = {.deny = true,
	                        .exp = CLUSTER_EXP_MAX,
	                        .ver = CLUSTER_VER_MAX,
	                        .bid = "x"},
	                   back;
	char s[256];
	int n = cluster_bid_format(&b, s, sizeof(s));

	CHECK_EQ(cluster_bid_parse(s, (size_t)n, &back), 0);
	CHECK(back.exp == CLUSTER_EXP_MAX && back.ver == CLUSTER_VER_MAX);
	CHECK_EQ(cluster_bid_parse("deny 9223372036854775808 1 x", 28, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("deny 1 9223372036854775808 x", 28, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("deny 1 9223372036854775807 x", 28, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("deny 1 9007199254740992 x", 25, &back), -EINVAL); /* 2^53 */
	CHECK_EQ(cluster_bid_parse("deny 1 9007199254740991 x", 25, &back), 0);
	CHECK_EQ(cluster_bid_parse("deny 1 4611686018427387904 x", 28, &back), -EINVAL); /* 2^62 */
	CHECK_EQ(cluster_bid_parse("deny 99999999999999999999 1 x", 29, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("deny 253402300800 1 x", 21, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("deny 253402300799 1 x", 21, &back), 0);
	CHECK(back.exp == 253402300799);
	CHECK_EQ(cluster_bid_parse_value("allow 5 99999999999999999999", 28, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse_value("allow 253402300800 5", 20, &back), -EINVAL);
}

/* The hash value, without the id; what the link-up load skips. */
static void test_bid_value(void)
{
	struct cluster_bid b = {.exp = 1900000000, .ver = 42}, back = {.bid = "kept"};
	char s[64];
	int n = cluster_bid_value(&b, s, sizeof(s));

	CHECK(n > 0);
	CHECK_STR(s, "allow 1900000000 42");
	CHECK_EQ(cluster_bid_parse_value(s, (size_t)n, &back), 0);
	CHECK(!back.deny && back.exp == 1900000000 && back.ver == 42);
	CHECK_STR(back.bid, "kept");
	CHECK_EQ(cluster_bid_parse_value("deny 5 6", 8, &back), 0);
	CHECK(back.deny && back.exp == 5 && back.ver == 6);
	CHECK_EQ(cluster_bid_parse_value("deny 5", 6, &back), -EINVAL); /* old format: no ver */
	CHECK_EQ(cluster_bid_parse_value("1900000000", 10, &back), -EINVAL); /* older still */
	CHECK_EQ(cluster_bid_parse_value("deny 5 6 x", 10, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse_value("deny 5 6 ", 9, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse_value("", 0, &back), -EINVAL);
	CHECK(cluster_bid_id_ok("bk-1", 4));
	CHECK(!cluster_bid_id_ok("", 0));
	CHECK(!cluster_bid_id_ok("a\0b", 3));
	CHECK(!cluster_bid_id_ok("\xc0\xaf", 2));
	CHECK(cluster_bid_id_ok(s, 0) == false);
	{
		char id[STORE_BID_MAX + 2];

		memset(id, 'b', sizeof(id));
		CHECK(cluster_bid_id_ok(id, STORE_BID_MAX));
		CHECK(!cluster_bid_id_ok(id, STORE_BID_MAX + 1));
	}
}

/* A report's name is read without parsing its JSON; a malformed name is refused. */
static void test_report_split(void)
{
	char name[CLUSTER_NAME_MAX], big[300];
	const char *json;
	size_t len;
	const char *m = "relay-a:8443\n{\"instance\":\"relay-a:8443\"}";

	CHECK_EQ(cluster_report_split(m, strlen(m), name, &json, &len), 0);
	CHECK_EQ(strcmp(name, "relay-a:8443"), 0);
	CHECK_EQ(len, strlen(m) - 13);
	CHECK_MEM(json, "{\"instance\"", 11);
	CHECK_EQ(cluster_report_split("{\"instance\":1}", 14, name, &json, &len), -EINVAL);
	CHECK_EQ(cluster_report_split("\n{}", 3, name, &json, &len), -EINVAL);
	CHECK_EQ(cluster_report_split("a b\n{}", 6, name, &json, &len), -EINVAL);
	CHECK_EQ(cluster_report_split("a\0b\n{}", 6, name, &json, &len), -EINVAL);
	CHECK_EQ(cluster_report_split("a\n", 2, name, &json, &len), 0);
	CHECK_EQ(len, 0);
	memset(big, 'x', sizeof(big));
	big[127] = '\n'; /* a name of 127 bytes: the most */
	CHECK_EQ(cluster_report_split(big, sizeof(big), name, &json, &len), 0);
	CHECK_EQ(strlen(name), 127);
	big[127] = 'x';
	big[128] = '\n'; /* 128: too long */
	CHECK_EQ(cluster_report_split(big, sizeof(big), name, &json, &len), -EINVAL);
}

int main(void)
{
	RUN(test_url());
	RUN(test_url_refused());
	RUN(test_frame());
	RUN(test_grant());
	RUN(test_code_hash());
	RUN(test_bid());
	RUN(test_bid_range());
	RUN(test_bid_value());
	RUN(test_report_split());
	return harness_done();
}
