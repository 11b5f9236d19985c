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
	struct cluster_bid b = {.deny = true, .exp = 1900000000, .bid = "bk 1"}, back;
	char s[256];
	int n = cluster_bid_format(&b, s, sizeof(s));

	CHECK(n > 0);
	CHECK_STR(s, "deny 1900000000 bk 1");
	CHECK_EQ(cluster_bid_parse(s, (size_t)n, &back), 0);
	CHECK(back.deny);
	CHECK(back.exp == 1900000000);
	CHECK_STR(back.bid, "bk 1");
	CHECK_EQ(cluster_bid_parse("allow 5 x", 9, &back), 0);
	CHECK(!back.deny);
	CHECK_EQ(cluster_bid_format(&b, s, 8), -ENOSPC);
	CHECK_EQ(cluster_bid_parse("allow 5 ", 8, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("allow x1 b", 10, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("block 1 b", 9, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("deny  b", 7, &back), -EINVAL);
	CHECK_EQ(cluster_bid_parse("deny 1 a\0b", 10, &back), -EINVAL);
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
	RUN(test_report_split());
	return harness_done();
}
