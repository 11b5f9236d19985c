/*
 * stun_test: the RFC 5769 test vectors both ways (parse and verify, and produce the same bytes),
 * RFC 8489's SHA-256 integrity, addresses, errors and ChannelData framing.
 */
#include "pkg/stun/stun.h"
#include "test/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

/* RFC 5769 2.1: sample request (short-term credential "VOkJxbRl1RmTxUk/WvJxBt") */
static const uint8_t req21[] = {
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
        0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e,
        0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24,
        0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1,
        0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68,
        0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c,
        0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5,
        0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf};

/* 2.2: sample IPv4 response */
static const uint8_t resp22[] = {
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
        0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
        0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01,
        0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99,
        0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b,
        0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};

/* 2.3: sample IPv6 response */
static const uint8_t resp23[] = {
        0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34,
        0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74,
        0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02,
        0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5,
        0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6,
        0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41,
        0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c};

/* 2.4: sample request with long-term authentication */
static const uint8_t req24[] = {
        0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72,
        0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88,
        0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00,
        0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
        0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73,
        0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72,
        0x67, 0x00, 0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02,
        0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66};

static const char pw_short[] = "VOkJxbRl1RmTxUk/WvJxBt";

static void test_parse_request(void)
{
	struct stun_msg m;
	const struct stun_attr *a;
	uint8_t bad[sizeof(req21)];

	CHECK(stun_parse(req21, sizeof(req21), &m) == 0);
	CHECK(m.method == STUN_BINDING && m.cls == STUN_REQUEST);
	CHECK(m.len == sizeof(req21));
	CHECK(m.mi >= 0 && m.fp == (int)m.n - 1);
	a = stun_find(&m, STUN_A_USERNAME);
	CHECK(a && a->len == 9 && memcmp(a->v, "evtj:h6vY", 9) == 0);
	a = stun_find(&m, STUN_A_SOFTWARE);
	CHECK(a && a->len == 16 && memcmp(a->v, "STUN test client", 16) == 0);
	CHECK(stun_check_fingerprint(&m));
	CHECK(stun_check_integrity(&m, (const uint8_t *)pw_short, strlen(pw_short)));
	CHECK(!stun_check_integrity(&m, (const uint8_t *)"VOkJxbRl1RmTxUk/WvJxBT", 22));
	/* a bit flipped in the body: both checks fail */
	memcpy(bad, req21, sizeof(bad));
	bad[30] ^= 1;
	CHECK(stun_parse(bad, sizeof(bad), &m) == 0);
	CHECK(!stun_check_fingerprint(&m));
	CHECK(!stun_check_integrity(&m, (const uint8_t *)pw_short, strlen(pw_short)));
}

static void check_response(const uint8_t *p, size_t len, const char *ip, int family)
{
	struct stun_msg m;
	const struct stun_attr *a;
	struct sockaddr_storage ss;
	char text[64];

	CHECK(stun_parse(p, len, &m) == 0);
	CHECK(m.method == STUN_BINDING && m.cls == STUN_SUCCESS);
	CHECK(stun_check_fingerprint(&m));
	CHECK(stun_check_integrity(&m, (const uint8_t *)pw_short, strlen(pw_short)));
	a = stun_find(&m, STUN_A_XOR_MAPPED_ADDRESS);
	CHECK(a && stun_addr_decode(a, m.tid, &ss) == 0);
	CHECK(ss.ss_family == family);
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
		CHECK(ntohs(in->sin_port) == 32853);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
		CHECK(ntohs(in6->sin6_port) == 32853);
	}
	CHECK_STR(text, ip);
}

static void test_parse_responses(void)
{
	check_response(resp22, sizeof(resp22), "192.0.2.1", AF_INET);
	check_response(resp23, sizeof(resp23), "2001:db8:1234:5678:11:2233:4455:6677", AF_INET6);
}

/* Produce 2.2/2.3 with the builder; the RFC pads SOFTWARE with a space where we write 0. */
static void produce_response(const uint8_t *want, size_t len, const struct sockaddr *sa)
{
	uint8_t out[256];
	struct stun_builder b;

	stun_build(&b, out, sizeof(out), STUN_BINDING, STUN_SUCCESS, want + 8);
	stun_add(&b, STUN_A_SOFTWARE, "test vector", 11);
	out[b.len - 1] = 0x20;
	stun_add_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, sa, true);
	stun_add_integrity(&b, (const uint8_t *)pw_short, strlen(pw_short));
	stun_add_fingerprint(&b);
	CHECK(stun_build_end(&b) == (int)len);
	CHECK_MEM(out, want, len);
}

static void test_produce_responses(void)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(32853)};
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(32853)};

	inet_pton(AF_INET, "192.0.2.1", &in.sin_addr);
	inet_pton(AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677", &in6.sin6_addr);
	produce_response(resp22, sizeof(resp22), (struct sockaddr *)&in);
	produce_response(resp23, sizeof(resp23), (struct sockaddr *)&in6);
}

static void test_produce_request(void)
{
	static const uint8_t prio[] = {0x6e, 0x00, 0x01, 0xff};
	static const uint8_t tie[] = {0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36};
	uint8_t out[256];
	struct stun_builder b;

	stun_build(&b, out, sizeof(out), STUN_BINDING, STUN_REQUEST, req21 + 8);
	stun_add(&b, STUN_A_SOFTWARE, "STUN test client", 16);
	stun_add(&b, STUN_A_PRIORITY, prio, 4);
	stun_add(&b, STUN_A_ICE_CONTROLLED, tie, 8);
	stun_add(&b, STUN_A_USERNAME, "evtj:h6vY", 9);
	memset(out + b.len - 3, 0x20, 3); /* the RFC's padding */
	stun_add_integrity(&b, (const uint8_t *)pw_short, strlen(pw_short));
	stun_add_fingerprint(&b);
	CHECK(stun_build_end(&b) == (int)sizeof(req21));
	CHECK_MEM(out, req21, sizeof(req21));
}

/* Username U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9; the password after SASLprep. */
static const char user24[] =
        "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";

static void test_long_term(void)
{
	struct stun_msg m;
	uint8_t key[32], out[256];
	struct stun_builder b;
	const struct stun_attr *a;
	int klen;

	klen = stun_long_term_key(STUN_PWALG_MD5, user24, strlen(user24), "example.org", 11,
	                          "TheMatrIX", 9, key);
	CHECK(klen == 16);
	CHECK(stun_parse(req24, sizeof(req24), &m) == 0);
	a = stun_find(&m, STUN_A_NONCE);
	CHECK(a && a->len == 28 && memcmp(a->v, "f//499k954d6OL34oL9FSTvy64sA", 28) == 0);
	a = stun_find(&m, STUN_A_REALM);
	CHECK(a && a->len == 11 && memcmp(a->v, "example.org", 11) == 0);
	CHECK(m.fp < 0 && !stun_check_fingerprint(&m));
	CHECK(stun_check_integrity(&m, key, (size_t)klen));
	CHECK(!stun_check_integrity(&m, (const uint8_t *)"TheMatrIX", 9));
	/* produce */
	stun_build(&b, out, sizeof(out), STUN_BINDING, STUN_REQUEST, req24 + 8);
	stun_add(&b, STUN_A_USERNAME, user24, strlen(user24));
	stun_add(&b, STUN_A_NONCE, "f//499k954d6OL34oL9FSTvy64sA", 28);
	stun_add(&b, STUN_A_REALM, "example.org", 11);
	stun_add_integrity(&b, key, (size_t)klen);
	CHECK(stun_build_end(&b) == (int)sizeof(req24));
	CHECK_MEM(out, req24, sizeof(req24));
}

static void test_sha256_integrity(void)
{
	uint8_t key[32], out[256], tid[12] = {1, 2, 3};
	struct stun_builder b;
	struct stun_msg m;
	int klen = stun_long_term_key(STUN_PWALG_SHA256, "u", 1, "r", 1, "p", 1, key);

	CHECK(klen == 32);
	stun_build(&b, out, sizeof(out), STUN_ALLOCATE, STUN_REQUEST, tid);
	stun_add(&b, STUN_A_USERNAME, "u", 1);
	stun_add_integrity(&b, key, 16);
	stun_add_integrity_sha256(&b, key, 32);
	stun_add_fingerprint(&b);
	CHECK(stun_build_end(&b) > 0);
	CHECK(stun_parse(out, (size_t)b.len, &m) == 0);
	CHECK(m.mi >= 0 && m.mi256 > m.mi && m.fp > m.mi256);
	CHECK(stun_check_integrity(&m, key, 16));
	CHECK(stun_check_integrity_sha256(&m, key, 32));
	CHECK(!stun_check_integrity_sha256(&m, key, 16));
	CHECK(stun_check_fingerprint(&m));
}

static void test_malformed(void)
{
	uint8_t p[64] = {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42};
	struct stun_msg m;

	CHECK(stun_parse(p, 10, &m) == -EAGAIN);
	CHECK(stun_parse(p, 24, &m) == -EAGAIN);
	p[20] = 0x00, p[21] = 0x06, p[22] = 0x00, p[23] = 0x08; /* USERNAME of 8: crosses the end */
	CHECK(stun_parse(p, 28, &m) == -EBADMSG);
	p[23] = 0x04;
	CHECK(stun_parse(p, 28, &m) == 0 && m.n == 1);
	p[4] = 0x22; /* no magic cookie */
	CHECK(stun_parse(p, 28, &m) == -EINVAL);
	p[4] = 0x21;
	p[3] = 0x06; /* length not a multiple of 4 */
	CHECK(stun_parse(p, 28, &m) == -EINVAL);
	p[3] = 0x10; /* FINGERPRINT then USERNAME: refused */
	p[20] = 0x80, p[21] = 0x28, p[22] = 0, p[23] = 4;
	p[28] = 0x00, p[29] = 0x06, p[30] = 0, p[31] = 4;
	CHECK(stun_parse(p, 36, &m) == -EBADMSG);
	p[20] = 0x00, p[21] = 0x08, p[22] = 0, p[23] = 4; /* MESSAGE-INTEGRITY of 4 bytes */
	CHECK(stun_parse(p, 36, &m) == -EBADMSG);
}

static void test_error_and_addresses(void)
{
	uint8_t out[128], tid[12] = {9};
	struct stun_builder b;
	struct stun_msg m;
	const uint8_t *reason;
	size_t rlen;
	int code;
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(5)};
	struct sockaddr_storage ss;

	inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
	stun_build(&b, out, sizeof(out), STUN_ALLOCATE, STUN_ERROR, tid);
	stun_add_error(&b, 438, "Stale Nonce");
	stun_add_addr(&b, STUN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&in6, true);
	CHECK(stun_build_end(&b) > 0);
	CHECK(stun_parse(out, b.len, &m) == 0 && m.method == STUN_ALLOCATE && m.cls == STUN_ERROR);
	CHECK(stun_error_decode(stun_find(&m, STUN_A_ERROR_CODE), &code, &reason, &rlen) == 0);
	CHECK(code == 438 && rlen == 11 && memcmp(reason, "Stale Nonce", 11) == 0);
	CHECK(stun_addr_decode(stun_find(&m, STUN_A_XOR_PEER_ADDRESS), m.tid, &ss) == 0);
	CHECK(ss.ss_family == AF_INET6 &&
	      memcmp(&((struct sockaddr_in6 *)&ss)->sin6_addr, &in6.sin6_addr, 16) == 0);
	/* a full buffer is an error, not an overrun */
	stun_build(&b, out, 30, STUN_BINDING, STUN_SUCCESS, tid);
	stun_add(&b, STUN_A_SOFTWARE, "0123456789", 10);
	CHECK(stun_build_end(&b) == -ENOSPC);
}

/* RFC 6062's methods and CONNECTION-ID (the numbers coturn and pion put on the wire). */
static void test_tcp_allocations(void)
{
	uint8_t out[128], tid[12] = {7};
	struct stun_builder b;
	struct stun_msg m;
	uint32_t id = 0;

	CHECK(STUN_CONNECT == 0x000A && STUN_CONNECTION_BIND == 0x000B &&
	      STUN_CONNECTION_ATTEMPT == 0x000C && STUN_A_CONNECTION_ID == 0x002A);
	CHECK(stun_type(STUN_CONNECT, STUN_REQUEST) == 0x000A);
	CHECK(stun_type(STUN_CONNECT, STUN_SUCCESS) == 0x010A);
	CHECK(stun_type(STUN_CONNECT, STUN_ERROR) == 0x011A);
	CHECK(stun_type(STUN_CONNECTION_BIND, STUN_REQUEST) == 0x000B);
	CHECK(stun_type(STUN_CONNECTION_ATTEMPT, STUN_INDICATION) == 0x001C);
	stun_build(&b, out, sizeof(out), STUN_CONNECTION_ATTEMPT, STUN_INDICATION, tid);
	stun_add_u32(&b, STUN_A_CONNECTION_ID, 0xdeadbeef);
	stun_add_fingerprint(&b);
	CHECK(stun_build_end(&b) == 20 + 8 + 8);
	CHECK(out[0] == 0x00 && out[1] == 0x1C && out[20] == 0x00 && out[21] == 0x2A);
	CHECK(stun_parse(out, b.len, &m) == 0 && m.method == STUN_CONNECTION_ATTEMPT &&
	      m.cls == STUN_INDICATION);
	CHECK(stun_u32_decode(stun_find(&m, STUN_A_CONNECTION_ID), &id) == 0 && id == 0xdeadbeef);
}

static void test_channel_data(void)
{
	uint8_t p[12] = {0x40, 0x01, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};
	const uint8_t *d;
	size_t dlen;
	uint16_t ch;

	CHECK(stun_stream_frame_len(p, 3) == 0);
	CHECK(stun_stream_frame_len(p, 12) == 12); /* padded over streams */
	CHECK(stun_channel_parse(p, 9, &ch, &d, &dlen) == 0 && ch == 0x4001 && dlen == 5);
	CHECK(stun_channel_parse(p, 8, &ch, &d, &dlen) == -EBADMSG);
	p[0] = 0x7f; /* 0x7f01: RFC 5766's range, still in use */
	CHECK(stun_channel_parse(p, 9, &ch, &d, &dlen) == 0 && ch == 0x7f01);
	p[0] = 0x80; /* 0x8001: not a channel number */
	CHECK(stun_channel_parse(p, 9, &ch, &d, &dlen) == -EBADMSG);
	p[0] = 0xc0;
	CHECK(stun_stream_frame_len(p, 12) == -EBADMSG);
	CHECK(stun_stream_frame_len(req21, sizeof(req21)) == (long)sizeof(req21));
	stun_channel_header(p, 0x4fff, 300);
	CHECK(p[0] == 0x4f && p[1] == 0xff && p[2] == 1 && p[3] == 44);
}

int main(void)
{
	RUN(test_parse_request());
	RUN(test_parse_responses());
	RUN(test_produce_responses());
	RUN(test_produce_request());
	RUN(test_long_term());
	RUN(test_sha256_integrity());
	RUN(test_malformed());
	RUN(test_error_and_addresses());
	RUN(test_channel_data());
	RUN(test_tcp_allocations());
	return harness_done();
}
