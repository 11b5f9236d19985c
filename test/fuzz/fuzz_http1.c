/*
 * fuzz_http1: http1_parse_request(), http1_parse_response() and http1_dechunk() on arbitrary
 * bytes. A parsed head (request or response) must lie inside the input with its views inside the
 * head; every shorter prefix of a complete head must be incomplete or malformed, never parsed to
 * another length; a response's status is 100-999. Decoding a chunked body in
 * one call and byte by byte must give the same data and the same end.
 */
#include "pkg/http1/http1.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_view(const uint8_t *base, size_t n, struct http1_view v)
{
	if (v.len && ((const uint8_t *)v.p < base || (const uint8_t *)v.p + v.len > base + n))
		abort();
}

static void fuzz_head(const uint8_t *data, size_t size)
{
	struct http1_req r, s;
	int n = http1_parse_request(data, size, &r);

	if (n <= 0)
		return;
	if ((size_t)n > size)
		abort();
	check_view(data, (size_t)n, r.method);
	check_view(data, (size_t)n, r.path);
	check_view(data, (size_t)n, r.query);
	check_view(data, (size_t)n, r.ws_key);
	if (r.path.len < 1 || r.path.p[0] != '/' || (r.chunked && r.content_length >= 0))
		abort();
	for (size_t k = 0; k < (size_t)n; k += 1 + k / 8)
		if (http1_parse_request(data, k, &s) > 0)
			abort();
}

static void fuzz_response(const uint8_t *data, size_t size)
{
	struct http1_resp r, s;
	int n = http1_parse_response(data, size, &r);

	if (n <= 0)
		return;
	if ((size_t)n > size || r.status < 100 || r.status > 999)
		abort();
	check_view(data, (size_t)n, r.reason);
	check_view(data, (size_t)n, r.ws_accept);
	check_view(data, (size_t)n, r.content_type);
	if (r.chunked && r.content_length >= 0)
		abort();
	for (size_t k = 0; k < (size_t)n; k += 1 + k / 8)
		if (http1_parse_response(data, k, &s) > 0)
			abort();
}

static void fuzz_chunked(const uint8_t *data, size_t size)
{
	uint8_t *a = malloc(size + 1), *b = malloc(size + 1);
	struct http1_chunked ca = {0}, cb = {0};
	size_t used_a = 0, used_b = 0, out_b = 0;
	bool done_a = false, done_b = false;
	ssize_t out_a;

	if (!a || !b)
		goto out;
	memcpy(a, data, size);
	memcpy(b, data, size);
	out_a = http1_dechunk(&ca, a, size, &used_a, &done_a);
	for (size_t i = 0; i < size && !done_b; i++) {
		size_t used;
		ssize_t k = http1_dechunk(&cb, b + i, 1, &used, &done_b);

		if (k < 0) {
			out_b = (size_t)-1;
			break;
		}
		if (k > 1 || used > 1)
			abort();
		if (k)
			b[out_b] = b[i];
		out_b += (size_t)k;
		used_b += used;
	}
	if (out_a < 0) {
		if (out_b != (size_t)-1)
			abort();
		goto out;
	}
	if (out_b == (size_t)-1 || (size_t)out_a != out_b || done_a != done_b || used_a != used_b ||
	    memcmp(a, b, out_b) != 0 || used_a > size)
		abort();
out:
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_head(data, size);
	fuzz_response(data, size);
	fuzz_chunked(data, size);
	return 0;
}
