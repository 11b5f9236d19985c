/*
 * wsframe_test: pkg/wsframe against its contract (pkg/wsframe/wsframe.h). The RFC 6455 section
 * 5.7 examples byte for byte in both directions, unmasking (whole and in pieces at an offset),
 * incomplete headers at every prefix length, the -EPROTO refusals of section 5.2 (RSV bits,
 * unknown opcodes, fragmented or long control frames, a 64-bit length with the top bit set) and
 * the 7/16/64-bit length boundaries round-tripped through wsframe_header() and wsframe_parse().
 * wsframe_next() walks complete frames, stops before an incomplete one at every cut, and refuses
 * a bad header; the accept key matches section 1.3's example.
 */
#include "pkg/wsframe/wsframe.h"
#include "test/harness.h"

#include <errno.h>
#include <string.h>

/* Section 5.7: the masking key of the masked examples, and "Hello" masked with it. */
static const uint8_t rfc_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

struct example {
	const char *name;
	const uint8_t *bytes; /* header, then payload when the example gives one */
	size_t len;
	bool fin;
	uint8_t opcode;
	bool masked;
	uint64_t payload_len;
	size_t header_len;
	const char *payload; /* NULL when the example gives only a header */
};

static const uint8_t ex_text[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t ex_masked_text[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                         0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t ex_frag1[] = {0x01, 0x03, 0x48, 0x65, 0x6c};
static const uint8_t ex_frag2[] = {0x80, 0x02, 0x6c, 0x6f};
static const uint8_t ex_ping[] = {0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
static const uint8_t ex_masked_pong[] = {0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                         0x7f, 0x9f, 0x4d, 0x51, 0x58};
static const uint8_t ex_bin256[] = {0x82, 0x7e, 0x01, 0x00};
static const uint8_t ex_bin64k[] = {0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00};

static const struct example examples[] = {
        {"unmasked text", ex_text, sizeof(ex_text), true, WS_TEXT, false, 5, 2, "Hello"},
        {"masked text", ex_masked_text, sizeof(ex_masked_text), true, WS_TEXT, true, 5, 6, "Hello"},
        {"fragment 1", ex_frag1, sizeof(ex_frag1), false, WS_TEXT, false, 3, 2, "Hel"},
        {"fragment 2", ex_frag2, sizeof(ex_frag2), true, WS_CONT, false, 2, 2, "lo"},
        {"unmasked ping", ex_ping, sizeof(ex_ping), true, WS_PING, false, 5, 2, "Hello"},
        {"masked pong", ex_masked_pong, sizeof(ex_masked_pong), true, WS_PONG, true, 5, 6, "Hello"},
        {"256-byte binary", ex_bin256, sizeof(ex_bin256), true, WS_BINARY, false, 256, 4, NULL},
        {"64 KiB binary", ex_bin64k, sizeof(ex_bin64k), true, WS_BINARY, false, 65536, 10, NULL},
};

#define N_EXAMPLES (sizeof(examples) / sizeof(examples[0]))

/* ---- helpers ---- */

static void check_frame(const struct ws_frame *f, const struct example *ex)
{
	CHECK_EQ(f->fin, ex->fin);
	CHECK_EQ(f->opcode, ex->opcode);
	CHECK_EQ(f->masked, ex->masked);
	CHECK_EQ(f->payload_len, ex->payload_len);
	CHECK_EQ(f->header_len, ex->header_len);
	if (ex->masked)
		CHECK_MEM(f->mask, rfc_mask, 4);
}

/* A fresh frame with every field set to something no parse would give. */
static void poison(struct ws_frame *f)
{
	memset(f, 0xa5, sizeof(*f));
}

static int parse2(uint8_t b0, uint8_t b1)
{
	const uint8_t p[2] = {b0, b1};
	struct ws_frame f;

	return wsframe_parse(p, sizeof(p), &f);
}

/* ---- tests ---- */

static void test_rfc_examples_parse(void)
{
	for (size_t i = 0; i < N_EXAMPLES; i++) {
		const struct example *ex = &examples[i];
		struct ws_frame f;
		int r;

		poison(&f);
		r = wsframe_parse(ex->bytes, ex->len, &f);
		if (r != (int)ex->header_len)
			fprintf(stderr, "example '%s'\n", ex->name);
		CHECK_EQ(r, ex->header_len);
		check_frame(&f, ex);
		if (ex->payload) {
			CHECK_EQ(ex->len, ex->header_len + ex->payload_len);
			if (!ex->masked)
				CHECK_MEM(ex->bytes + ex->header_len, ex->payload, ex->payload_len);
		}
	}
}

/* Exactly the header bytes are given: no payload is needed to parse a header. */
static void test_rfc_examples_header_only(void)
{
	for (size_t i = 0; i < N_EXAMPLES; i++) {
		const struct example *ex = &examples[i];
		struct ws_frame f;

		poison(&f);
		CHECK_EQ(wsframe_parse(ex->bytes, ex->header_len, &f), ex->header_len);
		check_frame(&f, ex);
	}
}

static void test_rfc_examples_write(void)
{
	for (size_t i = 0; i < N_EXAMPLES; i++) {
		const struct example *ex = &examples[i];
		uint8_t out[WSFRAME_MAX_HEADER + 4];
		size_t n;

		memset(out, 0xee, sizeof(out));
		n = wsframe_header(out, ex->opcode, ex->fin, ex->payload_len,
		                   ex->masked ? rfc_mask : NULL);
		CHECK_EQ(n, ex->header_len);
		CHECK_MEM(out, ex->bytes, ex->header_len);
		/* nothing written past the header */
		for (size_t j = n; j < sizeof(out); j++)
			CHECK_EQ(out[j], 0xee);
	}
}

static void test_unmask_hello(void)
{
	uint8_t p[5];

	memcpy(p, ex_masked_text + 6, 5);
	wsframe_mask(p, sizeof(p), rfc_mask, 0);
	CHECK_MEM(p, "Hello", 5);
	/* masking again gives back the bytes on the wire */
	wsframe_mask(p, sizeof(p), rfc_mask, 0);
	CHECK_MEM(p, ex_masked_text + 6, 5);
}

/* The payload arrives in pieces: each is unmasked at its offset in the payload. */
static void test_unmask_in_pieces(void)
{
	for (size_t cut = 0; cut <= 5; cut++) {
		uint8_t p[5];

		memcpy(p, ex_masked_text + 6, 5);
		wsframe_mask(p, cut, rfc_mask, 0);
		wsframe_mask(p + cut, 5 - cut, rfc_mask, cut);
		CHECK_MEM(p, "Hello", 5);
	}
	/* one byte at a time */
	{
		uint8_t p[5];

		memcpy(p, ex_masked_text + 6, 5);
		for (size_t i = 0; i < 5; i++)
			wsframe_mask(p + i, 1, rfc_mask, i);
		CHECK_MEM(p, "Hello", 5);
	}
}

/* Only offset % 4 matters, also past 4 GiB into a 64-bit-length frame. */
static void test_mask_large_offset(void)
{
	static const uint64_t offsets[] = {
	        4, 8, 1ull << 32, (1ull << 32) + 1, (1ull << 62) + 3, UINT64_MAX};
	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		uint8_t p[8] = {0}, want[8];

		for (size_t j = 0; j < sizeof(want); j++)
			want[j] = rfc_mask[(offsets[i] + j) % 4];
		wsframe_mask(p, sizeof(p), rfc_mask, offsets[i]);
		CHECK_MEM(p, want, sizeof(want));
	}
}

static void test_mask_zero_length(void)
{
	uint8_t p[1] = {0x42};

	wsframe_mask(p, 0, rfc_mask, 1);
	CHECK_EQ(p[0], 0x42);
}

static void test_incomplete_prefixes(void)
{
	static const uint8_t masked64[] = {0x82, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00,
	                                   0x01, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04};
	static const uint8_t masked16[] = {0x82, 0xfe, 0x01, 0x00, 0x01, 0x02, 0x03, 0x04};
	struct ws_frame f;

	for (size_t i = 0; i < N_EXAMPLES; i++)
		for (size_t k = 0; k < examples[i].header_len; k++)
			CHECK_EQ(wsframe_parse(examples[i].bytes, k, &f), 0);
	for (size_t k = 0; k < sizeof(masked64); k++)
		CHECK_EQ(wsframe_parse(masked64, k, &f), 0);
	CHECK_EQ(wsframe_parse(masked64, sizeof(masked64), &f), 14);
	CHECK_EQ(f.payload_len, 65536);
	CHECK_MEM(f.mask, "\x01\x02\x03\x04", 4);
	for (size_t k = 0; k < sizeof(masked16); k++)
		CHECK_EQ(wsframe_parse(masked16, k, &f), 0);
	CHECK_EQ(wsframe_parse(masked16, sizeof(masked16), &f), 8);
	CHECK_EQ(f.payload_len, 256);
	CHECK_MEM(f.mask, "\x01\x02\x03\x04", 4);
}

static void test_refuse_rsv(void)
{
	CHECK_EQ(parse2(0xc1, 0x05), -EPROTO); /* RSV1 */
	CHECK_EQ(parse2(0xa1, 0x05), -EPROTO); /* RSV2 */
	CHECK_EQ(parse2(0x91, 0x05), -EPROTO); /* RSV3 */
	CHECK_EQ(parse2(0xf1, 0x05), -EPROTO);
	CHECK_EQ(parse2(0x40, 0x00), -EPROTO); /* continuation, not final, RSV1 */
	CHECK_EQ(parse2(0xc9, 0x00), -EPROTO); /* ping with RSV1 */
}

static void test_refuse_unknown_opcodes(void)
{
	static const uint8_t bad[] = {0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf};
	static const uint8_t good[] = {0x0, 0x1, 0x2, 0x8, 0x9, 0xa};

	for (size_t i = 0; i < sizeof(bad); i++) {
		CHECK_EQ(parse2(0x80 | bad[i], 0x00), -EPROTO);
		if (bad[i] < 0x8)
			CHECK_EQ(parse2(bad[i], 0x00), -EPROTO);
	}
	for (size_t i = 0; i < sizeof(good); i++) {
		struct ws_frame f;
		const uint8_t p[2] = {0x80 | good[i], 0x00};

		CHECK_EQ(wsframe_parse(p, 2, &f), 2);
		CHECK_EQ(f.opcode, good[i]);
		CHECK_EQ(f.fin, true);
		CHECK_EQ(f.payload_len, 0);
	}
}

static void test_refuse_fragmented_control(void)
{
	CHECK_EQ(parse2(0x08, 0x00), -EPROTO); /* close */
	CHECK_EQ(parse2(0x09, 0x05), -EPROTO); /* ping */
	CHECK_EQ(parse2(0x0a, 0x85), -EPROTO); /* masked pong */
	/* data frames may be fragmented */
	CHECK_EQ(parse2(0x01, 0x05), 2);
	CHECK_EQ(parse2(0x02, 0x05), 2);
	CHECK_EQ(parse2(0x00, 0x05), 2);
}

static void test_refuse_long_control(void)
{
	static const uint8_t ops[] = {WS_CLOSE, WS_PING, WS_PONG};

	for (size_t i = 0; i < sizeof(ops); i++) {
		const uint8_t b0 = 0x80 | ops[i];
		const uint8_t p126[4] = {b0, 126, 0x00, 0x7e};
		const uint8_t p127[10] = {b0, 127, 0, 0, 0, 0, 0, 0, 0, 0x7e};
		const uint8_t p125[2] = {b0, 125};
		struct ws_frame f;

		CHECK_EQ(wsframe_parse(p126, sizeof(p126), &f), -EPROTO);
		CHECK_EQ(wsframe_parse(p127, sizeof(p127), &f), -EPROTO);
		CHECK_EQ(parse2(b0, 0x80 | 126), -EPROTO); /* masked */
		CHECK_EQ(wsframe_parse(p125, sizeof(p125), &f), 2);
		CHECK_EQ(f.payload_len, 125);
	}
}

static void test_refuse_64bit_top_bit(void)
{
	const uint8_t top[10] = {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0};
	const uint8_t all[10] = {0x82, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	const uint8_t max[10] = {0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	const uint8_t top_masked[14] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 5, 1, 2, 3, 4};
	struct ws_frame f;

	CHECK_EQ(wsframe_parse(top, sizeof(top), &f), -EPROTO);
	CHECK_EQ(wsframe_parse(all, sizeof(all), &f), -EPROTO);
	CHECK_EQ(wsframe_parse(top_masked, sizeof(top_masked), &f), -EPROTO);
	poison(&f);
	CHECK_EQ(wsframe_parse(max, sizeof(max), &f), 10);
	CHECK_EQ(f.payload_len == INT64_MAX, true);
}

static void check_round_trip(uint8_t opcode, bool fin, uint64_t payload_len, size_t want_hlen)
{
	static const uint8_t mask[4] = {0xde, 0xad, 0xbe, 0xef};
	uint8_t out[WSFRAME_MAX_HEADER];
	struct ws_frame f;
	size_t n, nm;

	n = wsframe_header(out, opcode, fin, payload_len, NULL);
	CHECK_EQ(n, want_hlen);
	poison(&f);
	CHECK_EQ(wsframe_parse(out, n, &f), want_hlen);
	CHECK_EQ(f.fin, fin);
	CHECK_EQ(f.opcode, opcode);
	CHECK_EQ(f.masked, false);
	CHECK_EQ(f.payload_len == payload_len, true);
	CHECK_EQ(f.header_len, want_hlen);

	nm = wsframe_header(out, opcode, fin, payload_len, mask);
	CHECK_EQ(nm, n + 4);
	CHECK_MEM(out + n, mask, 4);
	poison(&f);
	CHECK_EQ(wsframe_parse(out, nm, &f), nm);
	CHECK_EQ(f.fin, fin);
	CHECK_EQ(f.opcode, opcode);
	CHECK_EQ(f.masked, true);
	CHECK_MEM(f.mask, mask, 4);
	CHECK_EQ(f.payload_len == payload_len, true);
	CHECK_EQ(f.header_len, nm);
	/* one byte short of the masked header is incomplete */
	CHECK_EQ(wsframe_parse(out, nm - 1, &f), 0);
}

static void test_length_boundaries(void)
{
	static const struct {
		uint64_t len;
		size_t hlen;
	} cases[] = {
	        {0, 2},
	        {1, 2},
	        {125, 2},
	        {126, 4},
	        {127, 4},
	        {256, 4},
	        {65535, 4},
	        {65536, 10},
	        {0xffffffffull, 10},
	        {0x100000000ull, 10},
	        {INT64_MAX, 10},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_round_trip(WS_BINARY, true, cases[i].len, cases[i].hlen);
		check_round_trip(WS_TEXT, false, cases[i].len, cases[i].hlen);
		check_round_trip(WS_CONT, true, cases[i].len, cases[i].hlen);
	}
	for (uint64_t len = 0; len <= 125; len++) {
		check_round_trip(WS_CLOSE, true, len, 2);
		check_round_trip(WS_PING, true, len, 2);
		check_round_trip(WS_PONG, true, len, 2);
	}
}

/* The exact encodings at the boundaries, as section 5.2 lays them out. */
static void test_length_encodings(void)
{
	uint8_t out[WSFRAME_MAX_HEADER];

	CHECK_EQ(wsframe_header(out, WS_BINARY, true, 125, NULL), 2);
	CHECK_MEM(out, "\x82\x7d", 2);
	CHECK_EQ(wsframe_header(out, WS_BINARY, true, 126, NULL), 4);
	CHECK_MEM(out, "\x82\x7e\x00\x7e", 4);
	CHECK_EQ(wsframe_header(out, WS_BINARY, true, 65535, NULL), 4);
	CHECK_MEM(out, "\x82\x7e\xff\xff", 4);
	CHECK_EQ(wsframe_header(out, WS_BINARY, true, 65536, NULL), 10);
	CHECK_MEM(out, "\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10);
	CHECK_EQ(wsframe_header(out, WS_TEXT, false, 0x0102030405060708ull, NULL), 10);
	CHECK_MEM(out, "\x01\x7f\x01\x02\x03\x04\x05\x06\x07\x08", 10);
	CHECK_EQ(wsframe_header(out, WS_CLOSE, true, 2, rfc_mask), 6);
	CHECK_MEM(out, "\x88\x82\x37\xfa\x21\x3d", 6);
	CHECK_EQ(wsframe_header(out, WS_BINARY, true, 65536, rfc_mask), 14);
	CHECK_MEM(out, "\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x37\xfa\x21\x3d", 14);
}

/* Two frames back to back: the second header starts at header_len + payload_len. */
static void test_consecutive_frames(void)
{
	uint8_t wire[sizeof(ex_frag1) + sizeof(ex_frag2)];
	struct ws_frame f;
	size_t off = 0;
	int r;

	memcpy(wire, ex_frag1, sizeof(ex_frag1));
	memcpy(wire + sizeof(ex_frag1), ex_frag2, sizeof(ex_frag2));
	r = wsframe_parse(wire, sizeof(wire), &f);
	CHECK_EQ(r, 2);
	CHECK_EQ(f.fin, false);
	CHECK_EQ(f.payload_len, 3);
	off = f.header_len + f.payload_len;
	r = wsframe_parse(wire + off, sizeof(wire) - off, &f);
	CHECK_EQ(r, 2);
	CHECK_EQ(f.fin, true);
	CHECK_EQ(f.opcode, WS_CONT);
	CHECK_MEM(wire + off + f.header_len, "lo", 2);
}

static int add(struct ws_message *m, uint8_t opcode, bool fin, const char *text, size_t max)
{
	struct ws_frame f = {.fin = fin, .opcode = opcode, .payload_len = strlen(text)};

	return wsframe_message_add(m, &f, (const uint8_t *)text, max);
}

static void test_message(void)
{
	struct ws_message m = {0};

	CHECK_EQ(add(&m, WS_TEXT, false, "hel", 100), 0);
	CHECK_EQ(add(&m, WS_CONT, false, "", 100), 0);
	CHECK_EQ(add(&m, WS_CONT, true, "lo", 100), 1);
	CHECK_EQ(m.len, 5);
	CHECK_MEM(m.p, "hello", 5);
	CHECK_EQ(m.opcode, WS_TEXT);
	CHECK_EQ(add(&m, WS_BINARY, true, "\xff", 100), 1); /* binary: no UTF-8 rule */
	CHECK_EQ(m.opcode, WS_BINARY);
	CHECK_EQ(add(&m, WS_CONT, true, "x", 100), -EPROTO); /* nothing open */
	CHECK_EQ(add(&m, WS_TEXT, false, "a", 100), 0);
	CHECK_EQ(add(&m, WS_TEXT, true, "b", 100), -EPROTO); /* a new message mid-message */
	wsframe_message_release(&m);
	CHECK_EQ(add(&m, WS_TEXT, false, "\xce", 100), 0); /* a character split across frames */
	CHECK_EQ(add(&m, WS_CONT, true, "\xba", 100), 1);
	wsframe_message_release(&m);
	CHECK_EQ(add(&m, WS_TEXT, true, "\xce", 100), -EILSEQ);
	wsframe_message_release(&m);
	CHECK_EQ(add(&m, WS_BINARY, false, "12345", 8), 0);
	CHECK_EQ(add(&m, WS_CONT, true, "6789", 8), -EMSGSIZE);
	wsframe_message_release(&m);
	CHECK_EQ(add(&m, WS_BINARY, true, "12345678", 8), 1); /* exactly the limit */
	wsframe_message_release(&m);
	CHECK(m.p == NULL && m.len == 0);
}

static void test_next(void)
{
	/* "Hello", a ping "ab", then a 126-byte binary frame */
	uint8_t buf[7 + 4 + 4 + 126];
	const uint8_t *payload = NULL;
	struct ws_frame f;
	size_t off = 0, n = 0;

	memcpy(buf, ex_text, sizeof(ex_text));
	n = sizeof(ex_text);
	n += wsframe_header(buf + n, WS_PING, true, 2, NULL);
	buf[n++] = 'a';
	buf[n++] = 'b';
	n += wsframe_header(buf + n, WS_BINARY, true, 126, NULL);
	memset(buf + n, 0x5a, 126);
	n += 126;
	CHECK_EQ(n, sizeof(buf));
	CHECK_EQ(wsframe_next(buf, n, &off, &f, &payload), 1);
	CHECK_EQ(f.opcode, WS_TEXT);
	CHECK(payload == buf + 2);
	CHECK_MEM(payload, "Hello", 5);
	CHECK_EQ(off, sizeof(ex_text));
	CHECK_EQ(wsframe_next(buf, n, &off, &f, &payload), 1);
	CHECK_EQ(f.opcode, WS_PING);
	CHECK_MEM(payload, "ab", 2);
	CHECK_EQ(off, 11);
	CHECK_EQ(wsframe_next(buf, n, &off, &f, &payload), 1);
	CHECK_EQ(f.payload_len, 126);
	CHECK(payload == buf + 15);
	CHECK_EQ(off, n);
	CHECK_EQ(wsframe_next(buf, n, &off, &f, &payload), 0);
	CHECK_EQ(off, n);
	/* cut anywhere inside the last frame: two frames, then incomplete with off at its start */
	for (size_t cut = 11; cut < n; cut++) {
		int k, frames = 0;

		off = 0;
		while ((k = wsframe_next(buf, cut, &off, &f, &payload)) > 0)
			frames++;
		CHECK_EQ(k, 0);
		CHECK_EQ(frames, 2);
		CHECK_EQ(off, 11);
	}
	/* an empty buffer may be NULL */
	off = 0;
	CHECK_EQ(wsframe_next(NULL, 0, &off, &f, &payload), 0);
	/* a reserved bit in the second frame */
	buf[7] |= 0x40;
	off = 0;
	CHECK_EQ(wsframe_next(buf, n, &off, &f, &payload), 1);
	CHECK_EQ(wsframe_next(buf, n, &off, &f, &payload), -EPROTO);
	CHECK_EQ(off, 7);
}

static void test_accept_key(void)
{
	char out[WSFRAME_ACCEPT_LEN];

	wsframe_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
	CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

int main(void)
{
	RUN(test_next());
	RUN(test_accept_key());
	RUN(test_message());
	RUN(test_rfc_examples_parse());
	RUN(test_rfc_examples_header_only());
	RUN(test_rfc_examples_write());
	RUN(test_unmask_hello());
	RUN(test_unmask_in_pieces());
	RUN(test_mask_large_offset());
	RUN(test_mask_zero_length());
	RUN(test_incomplete_prefixes());
	RUN(test_refuse_rsv());
	RUN(test_refuse_unknown_opcodes());
	RUN(test_refuse_fragmented_control());
	RUN(test_refuse_long_control());
	RUN(test_refuse_64bit_top_bit());
	RUN(test_length_boundaries());
	RUN(test_length_encodings());
	RUN(test_consecutive_frames());
	return harness_done();
}
