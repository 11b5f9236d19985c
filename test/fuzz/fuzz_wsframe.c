/*
 * fuzz_wsframe: wsframe_parse() over a stream of frames. A parsed header must be 2..14 bytes,
 * every shorter prefix must be incomplete, the header written for the parsed fields must parse
 * back to them, and masking twice (in two pieces at an offset) must give the payload back.
 * wsframe_next() must walk the same frames, with payloads inside the input. (url_parse() has
 * its own fuzzer, fuzz_url.)
 */
#include "pkg/wsframe/wsframe.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_header(const uint8_t *p, size_t len, const struct ws_frame *f, int r)
{
	uint8_t out[WSFRAME_MAX_HEADER];
	struct ws_frame g;
	size_t n;

	if ((size_t)r != f->header_len || f->header_len < 2 || f->header_len > WSFRAME_MAX_HEADER ||
	    f->header_len > len)
		abort();
	if ((f->payload_len >> 63) || f->opcode > 0xf)
		abort();
	for (size_t k = 0; k < f->header_len; k++)
		if (wsframe_parse(p, k, &g) != 0)
			abort();
	n = wsframe_header(out, f->opcode, f->fin, f->payload_len, f->masked ? f->mask : NULL);
	/* the writer uses the shortest length encoding; the input may have used a longer one */
	if (n < 2 || n > f->header_len)
		abort();
	if (wsframe_parse(out, n, &g) != (int)n || g.header_len != n)
		abort();
	if (g.fin != f->fin || g.opcode != f->opcode || g.masked != f->masked ||
	    g.payload_len != f->payload_len)
		abort();
	if (f->masked && memcmp(g.mask, f->mask, 4) != 0)
		abort();
}

/* Unmask @len bytes in two pieces, mask them back in one: the bytes must be unchanged. */
static void check_mask(uint8_t *p, size_t len, const uint8_t mask[4], const uint8_t *orig)
{
	size_t cut = len / 3;

	wsframe_mask(p, cut, mask, 0);
	wsframe_mask(p + cut, len - cut, mask, cut);
	wsframe_mask(p, len, mask, 0);
	if (memcmp(p, orig, len) != 0)
		abort();
}

static void fuzz_frames(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	size_t off = 0;

	if (!copy)
		return;
	memcpy(copy, data, size);
	while (off < size) {
		struct ws_frame f;
		int r = wsframe_parse(data + off, size - off, &f);
		size_t left;

		if (r < 0 && r != -EPROTO)
			abort();
		if (r <= 0)
			break;
		check_header(data + off, size - off, &f, r);
		left = size - off - f.header_len;
		if (f.payload_len > left)
			break;
		off += f.header_len;
		if (f.masked)
			check_mask(copy + off, (size_t)f.payload_len, f.mask, data + off);
		off += (size_t)f.payload_len;
	}
	free(copy);
}

/* wsframe_next() must walk the same frames as the loop above, and stop where it stops. */
static void fuzz_next(const uint8_t *data, size_t size)
{
	size_t off = 0, walked = 0;
	const uint8_t *payload;
	struct ws_frame f, g;
	int r;

	while ((r = wsframe_next(data, size, &off, &f, &payload)) > 0) {
		if (wsframe_parse(data + walked, size - walked, &g) != (int)f.header_len ||
		    payload != data + walked + f.header_len ||
		    off != walked + f.header_len + (size_t)f.payload_len || off > size)
			abort();
		walked = off;
	}
	if (off != walked || (r < 0 && r != -EPROTO))
		abort();
	if (r == 0 && wsframe_parse(data + off, size - off, &g) > 0 &&
	    g.header_len + g.payload_len <= size - off)
		abort(); /* a complete frame was reported incomplete */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_frames(data, size);
	fuzz_next(data, size);
	return 0;
}
