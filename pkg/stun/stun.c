/*
 * stun: the codec. Every length comes from the input and is checked against what is there
 * before it is used; the MACs cover the message as RFC 8489 14.5/14.6 say (the header's length
 * field set to end with the integrity attribute), computed over a patched copy of the header
 * and the bytes in place, so nothing is copied or allocated.
 */
#include "pkg/stun/stun.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define FP_XOR 0x5354554eu

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint16_t stun_type(uint16_t method, uint8_t cls)
{
	return (uint16_t)(((method & 0xf80) << 2) | ((method & 0x70) << 1) | (method & 0xf) |
	                  ((cls & 2) << 7) | ((cls & 1) << 4));
}

void stun_type_split(uint16_t t, uint16_t *method, uint8_t *cls)
{
	*method = (uint16_t)(((t & 0x3e00) >> 2) | ((t & 0x00e0) >> 1) | (t & 0x000f));
	*cls = (uint8_t)(((t & 0x0100) >> 7) | ((t & 0x0010) >> 4));
}

bool stun_is_stun(const uint8_t *p, size_t len)
{
	return len >= STUN_HEADER && (p[0] & 0xc0) == 0 && rd32(p + 4) == STUN_MAGIC &&
	       (rd16(p + 2) & 3) == 0;
}

int stun_parse(const uint8_t *p, size_t len, struct stun_msg *m)
{
	size_t off, end;

	memset(m, 0, sizeof(*m));
	m->mi = m->mi256 = m->fp = -1;
	if (!stun_is_stun(p, len))
		return len < STUN_HEADER ? -EAGAIN : -EINVAL;
	end = STUN_HEADER + (size_t)rd16(p + 2);
	if (len < end)
		return -EAGAIN;
	m->p = p;
	m->len = end;
	m->tid = p + 8;
	stun_type_split(rd16(p), &m->method, &m->cls);
	for (off = STUN_HEADER; off < end;) {
		struct stun_attr *a;
		uint16_t type, alen;

		if (end - off < 4)
			return -EBADMSG;
		type = rd16(p + off);
		alen = rd16(p + off + 2);
		if ((size_t)alen > end - off - 4)
			return -EBADMSG;
		if (m->fp >= 0)
			return -EBADMSG; /* FINGERPRINT must be last */
		/* after MESSAGE-INTEGRITY only -SHA256 and FINGERPRINT count; the rest is ignored */
		if ((m->mi >= 0 || m->mi256 >= 0) && type != STUN_A_FINGERPRINT &&
		    !(type == STUN_A_MESSAGE_INTEGRITY_SHA256 && m->mi256 < 0))
			goto next;
		if (m->n == STUN_MAX_ATTRS)
			return -EBADMSG;
		a = &m->a[m->n];
		a->type = type;
		a->len = alen;
		a->v = p + off + 4;
		a->off = off;
		if (type == STUN_A_MESSAGE_INTEGRITY) {
			if (alen != 20)
				return -EBADMSG;
			m->mi = (int)m->n;
		} else if (type == STUN_A_MESSAGE_INTEGRITY_SHA256) {
			if (alen < 16 || alen > 32 || (alen & 3))
				return -EBADMSG;
			m->mi256 = (int)m->n;
		} else if (type == STUN_A_FINGERPRINT) {
			if (alen != 4)
				return -EBADMSG;
			m->fp = (int)m->n;
		}
		m->n++;
next:
		off += 4 + (((size_t)alen + 3) & ~(size_t)3);
		if (off > end)
			return -EBADMSG; /* padding past the end */
	}
	return 0;
}

const struct stun_attr *stun_find(const struct stun_msg *m, uint16_t type)
{
	for (size_t k = 0; k < m->n; k++)
		if (m->a[k].type == type)
			return &m->a[k];
	return NULL;
}

/* ---- CRC-32 (ISO-HDLC, as zlib) for FINGERPRINT ---- */

static uint32_t crc32_of(uint32_t crc, const uint8_t *p, size_t n)
{
	static const uint32_t nib[16] = {
	        0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
	        0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
	        0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
	};

	crc = ~crc;
	for (size_t k = 0; k < n; k++) {
		crc ^= p[k];
		crc = (crc >> 4) ^ nib[crc & 15];
		crc = (crc >> 4) ^ nib[crc & 15];
	}
	return ~crc;
}

/* CRC over the message up to @off, the header's length field saying it ends at @end. */
static uint32_t fingerprint_of(const uint8_t *p, size_t off, size_t end)
{
	uint8_t h[STUN_HEADER];
	uint32_t crc;

	memcpy(h, p, STUN_HEADER);
	wr16(h + 2, (uint16_t)(end - STUN_HEADER));
	crc = crc32_of(0, h, STUN_HEADER);
	return crc32_of(crc, p + STUN_HEADER, off - STUN_HEADER) ^ FP_XOR;
}

bool stun_check_fingerprint(const struct stun_msg *m)
{
	const struct stun_attr *a;

	if (m->fp < 0)
		return false;
	a = &m->a[m->fp];
	return fingerprint_of(m->p, a->off, a->off + 8) == rd32(a->v);
}

/* ---- MACs ---- */

static EVP_MAC *hmac_alg(void)
{
	static EVP_MAC *mac; /* fetched once: the loop thread (or a fuzzer's) is the only user */

	if (!mac)
		mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	return mac;
}

/* HMAC(@md) of the patched header @h and p[20..off) into @out; its length, or -EIO. */
static int hmac_msg(const char *md, const uint8_t *key, size_t klen, const uint8_t *h,
                    const uint8_t *p, size_t off, uint8_t out[32])
{
	EVP_MAC *mac = hmac_alg();
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[2];
	size_t n = 0;
	int ok;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0);
	params[1] = OSSL_PARAM_construct_end();
	ok = ctx && EVP_MAC_init(ctx, key, klen, params) && EVP_MAC_update(ctx, h, STUN_HEADER) &&
	     EVP_MAC_update(ctx, p + STUN_HEADER, off - STUN_HEADER) &&
	     EVP_MAC_final(ctx, out, &n, 32);
	EVP_MAC_CTX_free(ctx);
	return ok ? (int)n : -EIO;
}

static int mac_at(const char *md, const uint8_t *key, size_t klen, const uint8_t *p, size_t off,
                  size_t alen, uint8_t out[32])
{
	uint8_t h[STUN_HEADER];

	memcpy(h, p, STUN_HEADER);
	wr16(h + 2, (uint16_t)(off + 4 + alen - STUN_HEADER));
	return hmac_msg(md, key, klen, h, p, off, out);
}

/* Compare in time independent of where they differ. */
static bool same(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;

	for (size_t k = 0; k < n; k++)
		d |= a[k] ^ b[k];
	return d == 0;
}

bool stun_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t klen)
{
	const struct stun_attr *a;
	uint8_t mac[32];

	if (m->mi < 0)
		return false;
	a = &m->a[m->mi];
	return mac_at("SHA1", key, klen, m->p, a->off, 20, mac) == 20 && same(mac, a->v, 20);
}

bool stun_check_integrity_sha256(const struct stun_msg *m, const uint8_t *key, size_t klen)
{
	const struct stun_attr *a;
	uint8_t mac[32];

	if (m->mi256 < 0)
		return false;
	a = &m->a[m->mi256];
	return mac_at("SHA256", key, klen, m->p, a->off, a->len, mac) == 32 &&
	       same(mac, a->v, a->len);
}

int stun_long_term_key(int alg, const char *user, size_t ulen, const char *realm, size_t rlen,
                       const char *pass, size_t plen, uint8_t key[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = alg == STUN_PWALG_MD5      ? EVP_md5()
	                   : alg == STUN_PWALG_SHA256 ? EVP_sha256()
	                                              : NULL;
	unsigned int n = 0;
	int ok;

	if (!md) {
		EVP_MD_CTX_free(ctx);
		return -EINVAL;
	}
	ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) && EVP_DigestUpdate(ctx, user, ulen) &&
	     EVP_DigestUpdate(ctx, ":", 1) && EVP_DigestUpdate(ctx, realm, rlen) &&
	     EVP_DigestUpdate(ctx, ":", 1) && EVP_DigestUpdate(ctx, pass, plen) &&
	     EVP_DigestFinal_ex(ctx, key, &n);
	EVP_MD_CTX_free(ctx);
	return ok ? (int)n : -EIO;
}

/* ---- attribute values ---- */

int stun_addr_decode(const struct stun_attr *a, const uint8_t *tid, struct sockaddr_storage *ss)
{
	const uint8_t *v = a->v;
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	if (a->len < 4)
		return -EBADMSG;
	port = rd16(v + 2);
	if (tid)
		port ^= (uint16_t)(STUN_MAGIC >> 16);
	if (v[1] == 1 && a->len == 8) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		uint32_t ip = rd32(v + 4);

		if (tid)
			ip ^= STUN_MAGIC;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		in->sin_addr.s_addr = htonl(ip);
		return 0;
	}
	if (v[1] == 2 && a->len == 20) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		uint8_t mask[16];

		wr32(mask, STUN_MAGIC);
		if (tid)
			memcpy(mask + 4, tid, STUN_TID);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		for (int k = 0; k < 16; k++)
			in6->sin6_addr.s6_addr[k] = (uint8_t)(v[4 + k] ^ (tid ? mask[k] : 0));
		return 0;
	}
	return -EBADMSG;
}

int stun_error_decode(const struct stun_attr *a, int *code, const uint8_t **reason, size_t *rlen)
{
	int cls, num;

	if (a->len < 4)
		return -EBADMSG;
	cls = a->v[2] & 7;
	num = a->v[3];
	if (cls < 3 || cls > 6 || num > 99)
		return -EBADMSG;
	*code = cls * 100 + num;
	*reason = a->v + 4;
	*rlen = a->len - 4u;
	return 0;
}

int stun_u32_decode(const struct stun_attr *a, uint32_t *v)
{
	if (a->len != 4)
		return -EBADMSG;
	*v = rd32(a->v);
	return 0;
}

/* ---- building ---- */

void stun_build(struct stun_builder *b, uint8_t *buf, size_t cap, uint16_t method, uint8_t cls,
                const uint8_t *tid)
{
	b->p = buf;
	b->cap = cap;
	b->len = 0;
	b->err = cap < STUN_HEADER;
	if (b->err)
		return;
	wr16(buf, stun_type(method, cls));
	wr16(buf + 2, 0);
	wr32(buf + 4, STUN_MAGIC);
	memcpy(buf + 8, tid, STUN_TID);
	b->len = STUN_HEADER;
}

/* Room for an attribute of @len value bytes: its header's offset, or NULL (err set). */
static uint8_t *reserve(struct stun_builder *b, uint16_t type, size_t len)
{
	size_t padded = (len + 3) & ~(size_t)3;
	uint8_t *at;

	if (b->err || len > 0xffff || b->cap - b->len < 4 + padded ||
	    b->len + 4 + padded - STUN_HEADER > 0xffff) {
		b->err = true;
		return NULL;
	}
	at = b->p + b->len;
	wr16(at, type);
	wr16(at + 2, (uint16_t)len);
	memset(at + 4 + len, 0, padded - len);
	b->len += 4 + padded;
	wr16(b->p + 2, (uint16_t)(b->len - STUN_HEADER));
	return at;
}

void stun_add(struct stun_builder *b, uint16_t type, const void *v, size_t len)
{
	uint8_t *at = reserve(b, type, len);

	if (at && len)
		memcpy(at + 4, v, len);
}

void stun_add_u32(struct stun_builder *b, uint16_t type, uint32_t v)
{
	uint8_t *at = reserve(b, type, 4);

	if (at)
		wr32(at + 4, v);
}

void stun_add_addr(struct stun_builder *b, uint16_t type, const struct sockaddr *sa, bool xor)
{
	uint8_t *at;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		uint32_t ip = ntohl(in->sin_addr.s_addr);
		uint16_t port = ntohs(in->sin_port);

		at = reserve(b, type, 8);
		if (!at)
			return;
		at[4] = 0;
		at[5] = 1;
		wr16(at + 6, xor? (uint16_t)(port ^ (STUN_MAGIC >> 16)) : port);
		wr32(at + 8, xor? ip ^ STUN_MAGIC : ip);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		uint16_t port = ntohs(in6->sin6_port);
		uint8_t mask[16];

		at = reserve(b, type, 20);
		if (!at)
			return;
		wr32(mask, STUN_MAGIC);
		memcpy(mask + 4, b->p + 8, STUN_TID);
		at[4] = 0;
		at[5] = 2;
		wr16(at + 6, xor? (uint16_t)(port ^ (STUN_MAGIC >> 16)) : port);
		for (int k = 0; k < 16; k++)
			at[8 + k] = (uint8_t)(in6->sin6_addr.s6_addr[k] ^ (xor? mask[k] : 0));
	} else {
		b->err = true;
	}
}

void stun_add_error(struct stun_builder *b, int code, const char *reason)
{
	size_t rlen = strlen(reason);
	uint8_t *at;

	if (code < 300 || code > 699) {
		b->err = true;
		return;
	}
	at = reserve(b, STUN_A_ERROR_CODE, 4 + rlen);
	if (!at)
		return;
	at[4] = at[5] = 0;
	at[6] = (uint8_t)(code / 100);
	at[7] = (uint8_t)(code % 100);
	memcpy(at + 8, reason, rlen);
}

static void add_mac(struct stun_builder *b, const char *md, uint16_t type, size_t mlen,
                    const uint8_t *key, size_t klen)
{
	size_t off = b->len;
	uint8_t mac[32];
	uint8_t *at = reserve(b, type, mlen);

	/* reserve() already set the length field to end after this attribute, as the MAC needs */
	if (!at)
		return;
	if (hmac_msg(md, key, klen, b->p, b->p, off, mac) < (int)mlen) {
		b->err = true;
		return;
	}
	memcpy(at + 4, mac, mlen);
}

void stun_add_integrity(struct stun_builder *b, const uint8_t *key, size_t klen)
{
	add_mac(b, "SHA1", STUN_A_MESSAGE_INTEGRITY, 20, key, klen);
}

void stun_add_integrity_sha256(struct stun_builder *b, const uint8_t *key, size_t klen)
{
	add_mac(b, "SHA256", STUN_A_MESSAGE_INTEGRITY_SHA256, 32, key, klen);
}

void stun_add_fingerprint(struct stun_builder *b)
{
	size_t off = b->len;
	uint8_t *at = reserve(b, STUN_A_FINGERPRINT, 4);

	if (at)
		wr32(at + 4, fingerprint_of(b->p, off, b->len));
}

int stun_build_end(const struct stun_builder *b)
{
	return b->err ? -ENOSPC : (int)b->len;
}

/* ---- ChannelData ---- */

long stun_stream_frame_len(const uint8_t *p, size_t len)
{
	if (len < 4)
		return 0;
	if ((p[0] & 0xc0) == 0) {
		if (len >= 8 && rd32(p + 4) != STUN_MAGIC)
			return -EBADMSG;
		if (rd16(p + 2) & 3)
			return -EBADMSG;
		return STUN_HEADER + (long)rd16(p + 2);
	}
	if ((p[0] & 0xc0) == 0x40)
		return 4 + (((long)rd16(p + 2) + 3) & ~3L);
	return -EBADMSG;
}

int stun_channel_parse(const uint8_t *p, size_t len, uint16_t *ch, const uint8_t **data,
                       size_t *dlen)
{
	uint16_t c;

	if (len < 4)
		return -EBADMSG;
	c = rd16(p);
	if (c < STUN_CHANNEL_MIN || c > STUN_CHANNEL_MAX || (size_t)rd16(p + 2) > len - 4)
		return -EBADMSG;
	*ch = c;
	*dlen = rd16(p + 2);
	*data = p + 4;
	return 0;
}

void stun_channel_header(uint8_t out[4], uint16_t ch, uint16_t dlen)
{
	wr16(out, ch);
	wr16(out + 2, dlen);
}
