/*
 * codes: a chained hash table keyed by the code's first random bytes (the code is random, so
 * they are a fine hash); the whole code is compared in constant time. Entries are wiped when
 * removed.
 */
#include "pkg/codes/codes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define NBUCKETS 4096

struct entry {
	struct entry *next;
	char code[CODE_LEN + 1];
	int64_t expires_ms;
	struct grant grant;
};

struct codes {
	struct entry *bucket[NBUCKETS];
	size_t count, max;
	int64_t ttl_ms;
};

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static unsigned bucket_of(const char *code)
{
	unsigned h = 0;

	for (int i = 0; i < 4; i++)
		h = h * 64 + (unsigned)((const char *)memchr(b64url, code[i], 64) - b64url);
	return h % NBUCKETS;
}

static bool is_code_syntax(const char *code, size_t len)
{
	if (len != CODE_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!code[i] || !memchr(b64url, code[i], 64))
			return false;
	return true;
}

struct codes *codes_new(size_t max, int64_t ttl_ms)
{
	struct codes *c = calloc(1, sizeof(*c));

	if (c) {
		c->max = max;
		c->ttl_ms = ttl_ms;
	}
	return c;
}

static void entry_free(struct entry *e)
{
	OPENSSL_cleanse(e, sizeof(*e));
	free(e);
}

void codes_free(struct codes *c)
{
	if (!c)
		return;
	for (size_t b = 0; b < NBUCKETS; b++) {
		while (c->bucket[b]) {
			struct entry *e = c->bucket[b];

			c->bucket[b] = e->next;
			entry_free(e);
		}
	}
	free(c);
}

int codes_issue(struct codes *c, const struct grant *g, int64_t now_ms, char code[CODE_LEN + 1])
{
	unsigned char rnd[CODE_LEN * 3 / 4];
	struct entry *e;
	unsigned b;

	if (c->count >= c->max)
		codes_expire(c, now_ms);
	if (c->count >= c->max)
		return -ENOSPC;
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -EIO;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < CODE_LEN; i++) {
		size_t bit = i * 6;
		unsigned v = (unsigned)(rnd[bit / 8] << 8 |
		                        (bit / 8 + 1 < sizeof(rnd) ? rnd[bit / 8 + 1] : 0));

		e->code[i] = b64url[(v >> (10 - bit % 8)) & 63];
	}
	OPENSSL_cleanse(rnd, sizeof(rnd));
	e->expires_ms = now_ms + c->ttl_ms;
	e->grant = *g;
	b = bucket_of(e->code);
	e->next = c->bucket[b];
	c->bucket[b] = e;
	c->count++;
	memcpy(code, e->code, CODE_LEN + 1);
	return 0;
}

int codes_redeem(struct codes *c, const char *code, size_t len, const char *topic, int64_t now_ms,
                 struct grant *out)
{
	struct entry **pp;
	int ret = 0;

	if (!is_code_syntax(code, len))
		return -ENOENT;
	for (pp = &c->bucket[bucket_of(code)]; *pp; pp = &(*pp)->next) {
		struct entry *e = *pp;

		if (CRYPTO_memcmp(e->code, code, CODE_LEN) != 0)
			continue;
		/* Shown once, gone: expired, for another topic (single use means one showing,
		 * whatever the outcome) or redeemed. */
		*pp = e->next;
		c->count--;
		if (e->expires_ms < now_ms)
			ret = -ENOENT;
		else if (strcmp(e->grant.topic, topic) != 0)
			ret = -EXDEV;
		else
			*out = e->grant;
		entry_free(e);
		return ret;
	}
	return -ENOENT;
}

/* Remove every entry for which @drop says so; returns how many. */
static size_t remove_if(struct codes *c, bool (*drop)(const struct entry *, const void *),
                        const void *arg)
{
	size_t n = 0;

	for (size_t b = 0; b < NBUCKETS; b++) {
		struct entry **pp = &c->bucket[b];

		while (*pp) {
			struct entry *e = *pp;

			if (!drop(e, arg)) {
				pp = &e->next;
				continue;
			}
			*pp = e->next;
			entry_free(e);
			n++;
		}
	}
	c->count -= n;
	return n;
}

static bool has_booking(const struct entry *e, const void *bid)
{
	return strcmp(e->grant.booking_id, bid) == 0;
}

static bool is_expired(const struct entry *e, const void *now_ms)
{
	return e->expires_ms < *(const int64_t *)now_ms;
}

size_t codes_drop_booking(struct codes *c, const char *booking_id)
{
	if (!*booking_id)
		return 0; /* "" means no booking: never a wildcard */
	return remove_if(c, has_booking, booking_id);
}

size_t codes_expire(struct codes *c, int64_t now_ms)
{
	return remove_if(c, is_expired, &now_ms);
}

size_t codes_count(const struct codes *c)
{
	return c->count;
}
