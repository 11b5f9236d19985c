/*
 * fuzz_stun: stun_parse() and every attribute decoder over any bytes; attributes must lie inside
 * the message; checks run on whatever parses; a message rebuilt from the parsed attributes must
 * parse back to the same types and values. The stream framer must never claim more than the
 * 16-bit lengths allow. A USERNAME's REST expiry (turncred_expiry(), which any client reaches
 * before its MESSAGE-INTEGRITY is checked) is read from every USERNAME and from the raw bytes.
 */
#include "pkg/stun/stun.h"
#include "pkg/turncred/turncred.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[STUN_MAX_MSG];

static void rebuild(const struct stun_msg *m)
{
	struct stun_builder b;
	struct stun_msg r;
	size_t n = 0;

	stun_build(&b, out, sizeof(out), m->method, m->cls, m->tid);
	for (size_t k = 0; k < m->n; k++) {
		if ((int)k == m->mi || (int)k == m->mi256 || (int)k == m->fp)
			continue;
		stun_add(&b, m->a[k].type, m->a[k].v, m->a[k].len);
		n++;
	}
	stun_add_integrity(&b, (const uint8_t *)"k", 1);
	stun_add_fingerprint(&b);
	if (stun_build_end(&b) < 0 || n + 2 > STUN_MAX_ATTRS) /* too many for one message */
		return;
	if (stun_parse(out, (size_t)b.len, &r) != 0 || r.method != m->method || r.cls != m->cls)
		abort();
	if (r.n != n + 2 || !stun_check_fingerprint(&r) ||
	    !stun_check_integrity(&r, (const uint8_t *)"k", 1))
		abort();
	for (size_t k = 0, j = 0; k < m->n; k++) {
		if ((int)k == m->mi || (int)k == m->mi256 || (int)k == m->fp)
			continue;
		if (r.a[j].type != m->a[k].type || r.a[j].len != m->a[k].len ||
		    memcmp(r.a[j].v, m->a[k].v, m->a[k].len) != 0)
			abort();
		j++;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct stun_msg m;
	struct sockaddr_storage ss;
	const uint8_t *d;
	size_t dlen;
	uint16_t ch;
	long fl;
	int code;
	uint32_t v;
	int64_t exp;

	if (turncred_expiry((const char *)data, size, &exp) == 0 && exp < 0)
		abort();
	fl = stun_stream_frame_len(data, size);
	if (fl > 4 + 65536 + 3 && fl > STUN_MAX_MSG)
		abort();
	if (stun_channel_parse(data, size, &ch, &d, &dlen) == 0 &&
	    (d + dlen > data + size || ch < STUN_CHANNEL_MIN))
		abort();
	if (stun_parse(data, size, &m) != 0)
		return 0;
	if (m.len > size || m.n > STUN_MAX_ATTRS)
		abort();
	for (size_t k = 0; k < m.n; k++) {
		const struct stun_attr *a = &m.a[k];

		if (a->v < data + STUN_HEADER || a->v + a->len > data + m.len ||
		    a->off + 4 + a->len > m.len)
			abort();
		stun_addr_decode(a, m.tid, &ss);
		stun_addr_decode(a, NULL, &ss);
		stun_error_decode(a, &code, &d, &dlen);
		stun_u32_decode(a, &v);
		if (a->type == STUN_A_USERNAME &&
		    turncred_expiry((const char *)a->v, a->len, &exp) == 0 && exp < 0)
			abort();
	}
	stun_check_fingerprint(&m);
	stun_check_integrity(&m, (const uint8_t *)"k", 1);
	stun_check_integrity_sha256(&m, (const uint8_t *)"k", 1);
	rebuild(&m);
	return 0;
}
