/*
 * http1_test: pkg/http1. Request heads: complete, incomplete, the fields relay host uses, and
 * refusals (RFC 9112: both lengths, two different lengths, a space before the colon, an unknown
 * transfer coding, HTTP/2 preface). Chunked bodies: RFC 9112 section 7.1's example decoded in
 * one piece and byte by byte, extensions and trailers skipped, bytes after the end left alone,
 * malformed sizes refused. Response heads (what pkg/wsclient reads): a 101 upgrade with its
 * accept key, every prefix incomplete, lengths, an empty reason, and malformed status lines.
 */
#include "pkg/http1/http1.h"
#include "test/harness.h"

#include <errno.h>
#include <string.h>

static int parse(const char *s, struct http1_req *r)
{
	return http1_parse_request((const uint8_t *)s, strlen(s), r);
}

static void test_post(void)
{
	const char *s = "POST /ts/video?x=1 HTTP/1.1\r\nHost: localhost:8888\r\n"
	                "Transfer-Encoding: chunked\r\nContent-Type: video/MP2T\r\n\r\nBODY";
	struct http1_req r;

	CHECK_EQ(parse(s, &r), (int)(strlen(s) - 4));
	CHECK(http1_view_is(r.method, "POST"));
	CHECK(http1_view_is(r.path, "/ts/video"));
	CHECK(http1_view_is(r.query, "x=1"));
	CHECK(r.chunked);
	CHECK_EQ(r.content_length, -1);
	CHECK(!r.close);
	CHECK(!r.websocket);
	CHECK(http1_view_is(r.content_type, "video/MP2T"));
	/* every prefix is incomplete */
	for (size_t k = 0; k < strlen(s) - 4; k++)
		CHECK_EQ(http1_parse_request((const uint8_t *)s, k, &r), 0);
}

static void test_websocket(void)
{
	struct http1_req r;

	CHECK(parse("GET /ws/data HTTP/1.1\nHost: x\nUpgrade: WebSocket\nConnection: keep-alive, "
	            "Upgrade\nSec-WebSocket-Key: abc==\nSec-WebSocket-Version: 13\n\n",
	            &r) > 0);
	CHECK(r.websocket);
	CHECK(http1_view_is(r.ws_key, "abc=="));
	CHECK(http1_view_is(r.ws_version, "13"));
	CHECK(http1_view_is(r.query, ""));
	/* Upgrade without Connection: upgrade is not an upgrade */
	CHECK(parse("GET /ws/data HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", &r) > 0);
	CHECK(!r.websocket);
}

static void test_lengths_and_close(void)
{
	struct http1_req r;

	CHECK(parse("POST /a HTTP/1.1\r\nContent-Length: 42\r\nConnection: close\r\n\r\n", &r) > 0);
	CHECK_EQ(r.content_length, 42);
	CHECK(r.close);
	CHECK(parse("POST /a HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n", &r) > 0);
	CHECK_EQ(r.content_length, 7);
	CHECK(parse("GET /a HTTP/1.0\r\n\r\n", &r) > 0);
	CHECK(r.close);
	CHECK(parse("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r) > 0);
	CHECK(!r.close);
	CHECK(parse("\r\nGET /a HTTP/1.1\r\n\r\n", &r) > 0); /* leading empty line ignored */
}

static void test_refused(void)
{
	struct http1_req r;

	CHECK_EQ(
	        parse("POST /a HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	              &r),
	        -EINVAL);
	CHECK_EQ(parse("POST /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r),
	         -EINVAL);
	CHECK_EQ(parse("POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse("POST /a HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", &r),
	         -EINVAL);
	CHECK_EQ(parse("POST /a HTTP/1.1\r\nHost : x\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse("POST /a HTTP/1.1\r\nno colon\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse("POST /a HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &r),
	         -ENOTSUP);
	CHECK_EQ(parse("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse("GET /a HTTP/1.2\r\n\r\n", &r), -ENOTSUP);
	CHECK_EQ(parse("GET /a HTTP/1.1 x\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse("GET a HTTP/1.1\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse("G(T /a HTTP/1.1\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse("GET /a\x01 HTTP/1.1\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse("GET /a HTTP/1.1\r\nX: a\x01\r\n\r\n", &r), -EINVAL);
}

static const char example[] = "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n"
                              "0\r\nTrailer: x\r\n\r\nNEXT";

static void test_dechunk_whole(void)
{
	uint8_t buf[sizeof(example)];
	struct http1_chunked c = {0};
	size_t used;
	bool done;
	ssize_t n;

	memcpy(buf, example, sizeof(example));
	n = http1_dechunk(&c, buf, sizeof(example) - 1, &used, &done);
	CHECK_EQ(n, 23);
	CHECK_MEM(buf, "Wikipedia in\r\n\r\nchunks.", 23);
	CHECK(done);
	CHECK_EQ(used, sizeof(example) - 1 - 4); /* "NEXT" is not the body's */
}

static void test_dechunk_bytewise(void)
{
	uint8_t buf[sizeof(example)], out[64];
	struct http1_chunked c = {0};
	size_t total = 0, used, consumed = 0;
	bool done = false;

	memcpy(buf, example, sizeof(example));
	for (size_t i = 0; i < sizeof(example) - 1 && !done; i++) {
		ssize_t n = http1_dechunk(&c, buf + i, 1, &used, &done);

		CHECK(n == 0 || n == 1);
		if (n == 1)
			out[total++] = buf[i];
		consumed += used;
	}
	CHECK(done);
	CHECK_EQ(total, 23);
	CHECK_MEM(out, "Wikipedia in\r\n\r\nchunks.", 23);
	CHECK_EQ(consumed, sizeof(example) - 1 - 4);
}

static void check_bad_chunked(const char *s)
{
	uint8_t buf[128];
	struct http1_chunked c = {0};
	size_t used;
	bool done;

	memcpy(buf, s, strlen(s));
	CHECK_EQ(http1_dechunk(&c, buf, strlen(s), &used, &done), -EINVAL);
}

static void test_dechunk_bad(void)
{
	check_bad_chunked("x\r\n");                /* not a size */
	check_bad_chunked(";a\r\n");               /* no digits */
	check_bad_chunked("3\r\nabcX\r\n");        /* no CRLF after the data */
	check_bad_chunked("1000000000000000\r\n"); /* 16 hex digits */
}

static int parse_resp(const char *s, struct http1_resp *r)
{
	return http1_parse_response((const uint8_t *)s, strlen(s), r);
}

static void test_response_upgrade(void)
{
	const char *s =
	        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
	        "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
	        "\r\n\x81\x02hi";
	struct http1_resp r;

	CHECK_EQ(parse_resp(s, &r), (int)(strlen(s) - 4));
	CHECK_EQ(r.status, 101);
	CHECK(http1_view_is(r.reason, "Switching Protocols"));
	CHECK(r.websocket);
	CHECK(http1_view_is(r.ws_accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
	CHECK_EQ(r.content_length, -1);
	CHECK(!r.close);
	for (size_t k = 0; k < strlen(s) - 4; k++)
		CHECK_EQ(http1_parse_response((const uint8_t *)s, k, &r), 0);
	/* an empty buffer, before anything arrived, may be NULL (UBSan: no memchr on it) */
	CHECK_EQ(http1_parse_response(NULL, 0, &r), 0);
	CHECK_EQ(http1_parse_request(NULL, 0, &(struct http1_req){0}), 0);
	/* Upgrade without Connection: upgrade is no upgrade */
	CHECK(parse_resp("HTTP/1.1 101 x\r\nUpgrade: websocket\r\n\r\n", &r) > 0);
	CHECK(!r.websocket);
}

static void test_response_fields(void)
{
	struct http1_resp r;

	CHECK(parse_resp(
	              "HTTP/1.1 200 OK\r\nContent-Length: 17\r\nContent-Type: application/json\r\n"
	              "Connection: close\r\n\r\n",
	              &r) > 0);
	CHECK_EQ(r.status, 200);
	CHECK_EQ(r.content_length, 17);
	CHECK(r.close);
	CHECK(http1_view_is(r.content_type, "application/json"));
	CHECK(parse_resp("HTTP/1.1 403 \r\nTransfer-Encoding: chunked\r\n\r\n", &r) > 0);
	CHECK_EQ(r.status, 403);
	CHECK(r.chunked);
	CHECK_EQ(r.reason.len, 0);
	CHECK(parse_resp("HTTP/1.0 204\n\n", &r) > 0); /* no reason, bare LF, 1.0 closes */
	CHECK_EQ(r.status, 204);
	CHECK(r.close);
}

static void test_response_refused(void)
{
	struct http1_resp r;

	CHECK_EQ(parse_resp("HTTP/1.1 20 OK\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse_resp("HTTP/1.1 2000 OK\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse_resp("HTTP/1.1 099 x\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse_resp("HTTP/1.1 2x0 OK\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse_resp("HTTP/1.1  200 OK\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse_resp("HTTP/2 200\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse_resp("HTTP/1.2 200 OK\r\n\r\n", &r), -ENOTSUP);
	CHECK_EQ(parse_resp("ICY 200 OK\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse_resp("\r\nHTTP/1.1 200 OK\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse_resp("HTTP/1.1 200 O\x01K\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse_resp("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(parse_resp("HTTP/1.1 200 OK\r\nX: a\x7f\r\n\r\n", &r), -EINVAL);
	CHECK_EQ(
	        parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r),
	        -EINVAL);
	CHECK_EQ(parse_resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: "
	                    "chunked\r\n\r\n",
	                    &r),
	         -EINVAL);
	CHECK_EQ(parse_resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", &r), -ENOTSUP);
}

int main(void)
{
	RUN(test_response_upgrade());
	RUN(test_response_fields());
	RUN(test_response_refused());
	RUN(test_post());
	RUN(test_websocket());
	RUN(test_lengths_and_close());
	RUN(test_refused());
	RUN(test_dechunk_whole());
	RUN(test_dechunk_bytewise());
	RUN(test_dechunk_bad());
	return harness_done();
}
