/*
 * sigmsg_test: pkg/sigmsg against its contract (pkg/sigmsg/sigmsg.h): peer ids, client frames
 * accepted and refused (with the ref read back for the error), "from" replaced on delivery,
 * the server's messages, and the peers claim (sorted, deduplicated, refused when malformed).
 */
#include "pkg/sigmsg/sigmsg.h"
#include "test/harness.h"

#include <errno.h>
#include <stdlib.h>

static int parse(const char *s, struct sigmsg *m, const char **why, json_t **ref)
{
	return sigmsg_parse((const uint8_t *)s, strlen(s), m, why, ref);
}

static void test_ids(void)
{
	char big[SIGMSG_ID_MAX + 2];

	CHECK(sigmsg_valid_id("a", 1));
	CHECK(sigmsg_valid_id("peer one~!", 10));
	CHECK(!sigmsg_valid_id("", 0));
	CHECK(!sigmsg_valid_id("a\tb", 3));
	CHECK(!sigmsg_valid_id("\xc3\xa9", 2));
	memset(big, 'x', sizeof(big));
	CHECK(sigmsg_valid_id(big, SIGMSG_ID_MAX));
	CHECK(!sigmsg_valid_id(big, SIGMSG_ID_MAX + 1));
}

static void test_parse_ok(void)
{
	struct sigmsg m;
	const char *why = NULL;
	json_t *ref = NULL;
	size_t n = 0;
	char *out;

	CHECK_EQ(parse("{\"to\":\"bob\",\"type\":\"offer\",\"data\":{\"sdp\":\"v=0\"},\"ref\":3,"
	               "\"from\":\"mallory\"}",
	               &m, &why, &ref),
	         0);
	CHECK_STR(m.to, "bob");
	CHECK_EQ(m.type, SIGMSG_OFFER);
	CHECK(json_integer_value(m.ref) == 3);
	out = sigmsg_deliver(&m, "alice", &n);
	CHECK(out != NULL);
	CHECK_STR(out, "{\"to\":\"bob\",\"type\":\"offer\",\"data\":{\"sdp\":\"v=0\"},\"ref\":3,"
	               "\"from\":\"alice\"}");
	CHECK_EQ(n, strlen(out));
	free(out);
	sigmsg_release(&m);

	CHECK_EQ(parse("{\"type\":\"bye\",\"to\":\"b\"}", &m, &why, &ref), 0);
	CHECK_EQ(m.type, SIGMSG_BYE);
	CHECK(m.ref == NULL);
	out = sigmsg_deliver(&m, "a", &n);
	CHECK_STR(out, "{\"type\":\"bye\",\"to\":\"b\",\"from\":\"a\"}");
	free(out);
	sigmsg_release(&m);
}

static void check_refused(const char *s, const char *want_ref)
{
	struct sigmsg m;
	const char *why = NULL;
	json_t *ref = NULL;
	int r = parse(s, &m, &why, &ref);

	CHECK_EQ(r, -EINVAL);
	CHECK(why != NULL);
	if (want_ref) {
		char *got = ref ? json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;

		CHECK(got != NULL);
		if (got)
			CHECK_STR(got, want_ref);
		free(got);
	} else {
		CHECK(ref == NULL);
	}
	json_decref(ref);
}

static void test_parse_refused(void)
{
	check_refused("", NULL);
	check_refused("not json", NULL);
	check_refused("[1,2]", NULL);
	check_refused("\"to\"", NULL);
	check_refused("{\"to\":\"bob\",\"type\":\"offer\"", NULL);
	check_refused("{\"type\":\"offer\",\"ref\":\"r1\"}", "\"r1\"");
	check_refused("{\"to\":5,\"type\":\"offer\",\"ref\":[1]}", "[1]");
	check_refused("{\"to\":\"\",\"type\":\"offer\"}", NULL);
	check_refused("{\"to\":\"a\\u0000b\",\"type\":\"offer\"}", NULL);
	check_refused("{\"to\":\"bob\",\"type\":\"welcome\",\"ref\":7}", "7");
	check_refused("{\"to\":\"bob\"}", NULL);
	check_refused("{\"to\":\"bob\",\"to\":\"eve\",\"type\":\"offer\"}", NULL);
	check_refused("{\"to\":\"bob\",\"type\":\"offer\",\"from\":1,\"from\":2}", NULL);
}

static void test_server_messages(void)
{
	const char *peers[] = {"a", "b"};
	json_t *ref = json_string("r");
	size_t n = 0;
	char *s;

	s = sigmsg_welcome("me", peers, 2, NULL, &n);
	CHECK_STR(s,
	          "{\"type\":\"welcome\",\"id\":\"me\",\"peers\":[\"a\",\"b\"],\"iceServers\":[]}");
	free(s);
	s = sigmsg_error("unknown-peer", "no such peer", ref, &n);
	CHECK_STR(s, "{\"type\":\"error\",\"code\":\"unknown-peer\",\"message\":\"no such peer\","
	             "\"ref\":\"r\"}");
	free(s);
	json_decref(ref);
	s = sigmsg_error("too-large", "big", NULL, &n);
	CHECK_STR(s, "{\"type\":\"error\",\"code\":\"too-large\",\"message\":\"big\"}");
	free(s);
	s = sigmsg_presence("join", "x\"y", &n);
	CHECK_STR(s, "{\"type\":\"join\",\"from\":\"x\\\"y\"}");
	free(s);
	s = sigmsg_group_expired("g1", &n);
	CHECK_STR(s, "{\"type\":\"group-expired\",\"id\":\"g1\"}");
	free(s);
}

static void test_peers_claim(void)
{
	char **ids = (char **)1;
	size_t n = 99;

	CHECK_EQ(sigmsg_peers_claim("{\"sub\":\"a\"}", 10, &ids, &n), 0);
	CHECK(ids == NULL);
	CHECK_EQ(n, 0);
	CHECK_EQ(sigmsg_peers_claim(NULL, 10, &ids, &n), 0);
	CHECK(ids == NULL);
	CHECK_EQ(sigmsg_peers_claim("{\"peers\":[\"c\",\"a\",\"c\",\"b\"]}", 10, &ids, &n), 0);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK_STR(ids[0], "a");
		CHECK_STR(ids[1], "b");
		CHECK_STR(ids[2], "c");
	}
	CHECK(sigmsg_ids_have(ids, n, "b"));
	CHECK(!sigmsg_ids_have(ids, n, "d"));
	sigmsg_ids_free(ids, n);
	CHECK_EQ(sigmsg_peers_claim("{\"peers\":[]}", 10, &ids, &n), 0);
	CHECK(ids != NULL);
	CHECK_EQ(n, 0);
	CHECK(!sigmsg_ids_have(ids, n, "a"));
	sigmsg_ids_free(ids, n);
	CHECK_EQ(sigmsg_peers_claim("{\"peers\":\"a\"}", 10, &ids, &n), -EINVAL);
	CHECK_EQ(sigmsg_peers_claim("{\"peers\":[\"a\",1]}", 10, &ids, &n), -EINVAL);
	CHECK_EQ(sigmsg_peers_claim("{\"peers\":[\"\"]}", 10, &ids, &n), -EINVAL);
	CHECK_EQ(sigmsg_peers_claim("{\"peers\":[\"a\",\"b\",\"c\"]}", 2, &ids, &n), -EINVAL);
	CHECK(ids == NULL);
}

int main(void)
{
	RUN(test_ids());
	RUN(test_parse_ok());
	RUN(test_parse_refused());
	RUN(test_server_messages());
	RUN(test_peers_claim());
	return harness_done();
}
