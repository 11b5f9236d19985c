/*
 * cluster: see cluster.h. Everything here is a pure function of its input, for unit tests and
 * fuzzing; relay/cluster.c sends and receives.
 */
#define LOG_MODULE "cluster"
#include "pkg/cluster/cluster.h"
#include "pkg/utf8/utf8.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

/* ---- redis:// ---- */

static int fail(char why[256], const char *reason)
{
	snprintf(why, 256, "%s", reason);
	return -EINVAL;
}

/* Digits only, @lo..@hi; -1 when not. */
static long small_number(const char *p, size_t n, long lo, long hi)
{
	long v = 0;

	if (n == 0 || n > 6 || strspn(p, "0123456789") < n)
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (p[i] - '0');
	return v < lo || v > hi ? -1 : v;
}

/* "[USER]:PASSWORD" (@n bytes) into @u. */
static int parse_userinfo(const char *p, size_t n, struct cluster_url *u, char why[256])
{
	const char *colon = memchr(p, ':', n);
	size_t ul;

	if (!colon)
		return fail(why, "redis URL: credentials must be :PASSWORD@ or USER:PASSWORD@");
	ul = (size_t)(colon - p);
	if (ul >= sizeof(u->user) || n - ul - 1 >= sizeof(u->password))
		return fail(why, "redis URL: user or password too long");
	memcpy(u->user, p, ul);
	u->user[ul] = '\0';
	memcpy(u->password, colon + 1, n - ul - 1);
	u->password[n - ul - 1] = '\0';
	return 0;
}

/* "HOST[:PORT]" or "[V6][:PORT]" (@n bytes) into @u. */
static int parse_hostport(const char *p, size_t n, struct cluster_url *u, char why[256])
{
	const char *host = p, *port = NULL;
	size_t hl = n;
	long v;

	if (n && p[0] == '[') {
		const char *close = memchr(p, ']', n);

		if (!close)
			return fail(why, "redis URL: unclosed [ in host");
		host = p + 1;
		hl = (size_t)(close - host);
		if (close + 1 < p + n) {
			if (close[1] != ':')
				return fail(why, "redis URL: expected :PORT after ]");
			port = close + 2;
		}
	} else {
		const char *colon = memchr(p, ':', n);

		if (colon) {
			hl = (size_t)(colon - p);
			port = colon + 1;
		}
	}
	if (hl == 0 || hl >= sizeof(u->host))
		return fail(why, "redis URL: host missing or too long");
	memcpy(u->host, host, hl);
	u->host[hl] = '\0';
	u->port = 6379;
	if (port) {
		v = small_number(port, (size_t)(p + n - port), 1, 65535);
		if (v < 0)
			return fail(why, "redis URL: port must be 1-65535");
		u->port = (int)v;
	}
	return 0;
}

int cluster_url_parse(const char *s, struct cluster_url *u, char why[256])
{
	const char *auth, *at, *slash, *end;
	long db;

	memset(u, 0, sizeof(*u));
	if (!s || strncmp(s, "redis://", 8) != 0)
		return fail(why,
		            "redis URL must start with redis:// (rediss:// TLS is not supported)");
	auth = s + 8;
	end = auth + strlen(auth);
	slash = strchr(auth, '/');
	if (!slash)
		slash = end;
	at = memrchr(auth, '@', (size_t)(slash - auth));
	if (at && parse_userinfo(auth, (size_t)(at - auth), u, why))
		return -EINVAL;
	if (parse_hostport(at ? at + 1 : auth, (size_t)(slash - (at ? at + 1 : auth)), u, why)) {
		OPENSSL_cleanse(u->password, sizeof(u->password));
		return -EINVAL;
	}
	if (slash < end && slash + 1 < end) {
		db = small_number(slash + 1, (size_t)(end - slash - 1), 0, 9999);
		if (db < 0) {
			OPENSSL_cleanse(u->password, sizeof(u->password));
			return fail(why, "redis URL: /DB must be a database number");
		}
		u->db = (int)db;
	}
	return 0;
}

/* ---- topic messages ---- */

void cluster_frame_header(uint8_t out[CLUSTER_HDR], uint64_t origin, bool binary)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(origin >> (56 - 8 * i));
	out[8] = binary ? CLUSTER_F_BINARY : 0;
}

int cluster_frame_parse(const uint8_t *p, size_t len, struct cluster_frame *f)
{
	if (len < CLUSTER_HDR || (p[8] & ~CLUSTER_F_KNOWN))
		return -EINVAL;
	f->origin = 0;
	for (int i = 0; i < 8; i++)
		f->origin = f->origin << 8 | p[i];
	f->binary = p[8] & CLUSTER_F_BINARY;
	f->data = p + CLUSTER_HDR;
	f->len = len - CLUSTER_HDR;
	return 0;
}

/* ---- grants ---- */

char *cluster_grant_dump(const struct grant *g)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:I}", "topic", g->topic,
	                      "prefix", g->prefix, "booking_id", g->booking_id, "who", g->who,
	                      "scopes", g->scopes, "read", g->can_read, "write", g->can_write,
	                      "exp", (json_int_t)g->exp);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return s;
}

static int copy_field(json_t *o, const char *name, char *out, size_t len)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_string(v) || json_string_length(v) >= len ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return -EINVAL;
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int cluster_grant_load(const char *s, size_t len, struct grant *g)
{
	json_t *o = json_loadb(s, len, 0, NULL), *r, *w, *e;
	int err = -EINVAL;

	memset(g, 0, sizeof(*g));
	if (!json_is_object(o))
		goto out;
	r = json_object_get(o, "read");
	w = json_object_get(o, "write");
	e = json_object_get(o, "exp");
	if (!json_is_boolean(r) || !json_is_boolean(w) || !json_is_integer(e))
		goto out;
	if (copy_field(o, "topic", g->topic, sizeof(g->topic)) ||
	    copy_field(o, "prefix", g->prefix, sizeof(g->prefix)) ||
	    copy_field(o, "booking_id", g->booking_id, sizeof(g->booking_id)) ||
	    copy_field(o, "who", g->who, sizeof(g->who)) ||
	    copy_field(o, "scopes", g->scopes, sizeof(g->scopes)))
		goto out;
	g->can_read = json_is_true(r);
	g->can_write = json_is_true(w);
	g->exp = (int64_t)json_integer_value(e);
	err = 0;
out:
	if (err)
		OPENSSL_cleanse(g, sizeof(*g));
	json_decref(o);
	return err;
}

int cluster_code_hash(const char *code, size_t len, char out[CLUSTER_CODE_HASH])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	if (!SHA256((const unsigned char *)code, len, md))
		return -EIO;
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

/* ---- deny/allow notes ---- */

bool cluster_bid_id_ok(const char *p, size_t n)
{
	return n && n <= STORE_BID_MAX && !memchr(p, '\0', n) && utf8_valid((const uint8_t *)p, n);
}

int cluster_bid_value(const struct cluster_bid *b, char *out, size_t len)
{
	int n = snprintf(out, len, "%s %lld %lld", b->deny ? "deny" : "allow", (long long)b->exp,
	                 (long long)b->ver);

	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int cluster_bid_format(const struct cluster_bid *b, char *out, size_t len)
{
	int n = cluster_bid_value(b, out, len);
	int m = n < 0 ? -1 : snprintf(out + n, len - (size_t)n, " %s", b->bid);

	return m < 0 || (size_t)m >= len - (size_t)n ? -ENOSPC : n + m;
}

/* Digits up to @end or the first space, as an int64 from 0 to @max (more refused); the
 * position after them in *@next. */
static int parse_i64(const char *p, const char *end, int64_t max, int64_t *v, const char **next)
{
	const char *q = p;

	*v = 0;
	for (; q < end && *q != ' '; q++) {
		if (*q < '0' || *q > '9' || *v > (max - (*q - '0')) / 10)
			return -EINVAL;
		*v = *v * 10 + (*q - '0');
	}
	*next = q;
	return q == p ? -EINVAL : 0;
}

/* "deny EXP VER" at @p; the position after VER in *@next. */
static int parse_value(const char *p, const char *end, struct cluster_bid *b, const char **next)
{
	if (end - p > 5 && memcmp(p, "deny ", 5) == 0) {
		b->deny = true;
		p += 5;
	} else if (end - p > 6 && memcmp(p, "allow ", 6) == 0) {
		b->deny = false;
		p += 6;
	} else {
		return -EINVAL;
	}
	if (parse_i64(p, end, CLUSTER_EXP_MAX, &b->exp, &p) || p == end || *p != ' ')
		return -EINVAL;
	return parse_i64(p + 1, end, CLUSTER_VER_MAX, &b->ver, next);
}

int cluster_bid_parse_value(const char *p, size_t len, struct cluster_bid *b)
{
	const char *next;

	b->deny = false;
	b->exp = b->ver = 0;
	return parse_value(p, p + len, b, &next) || next != p + len ? -EINVAL : 0;
}

int cluster_bid_parse(const char *p, size_t len, struct cluster_bid *b)
{
	const char *end = p + len, *next;

	memset(b, 0, sizeof(*b));
	if (parse_value(p, end, b, &next) || next == end || *next != ' ' ||
	    !cluster_bid_id_ok(next + 1, (size_t)(end - next - 1))) {
		memset(b, 0, sizeof(*b));
		return -EINVAL;
	}
	memcpy(b->bid, next + 1, (size_t)(end - next - 1));
	return 0;
}

/* ---- status reports ---- */

int cluster_report_split(const char *p, size_t len, char name[CLUSTER_NAME_MAX], const char **json,
                         size_t *json_len)
{
	static const char ok[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._:";
	const char *nl = memchr(p, '\n', len < CLUSTER_NAME_MAX ? len : CLUSTER_NAME_MAX);
	size_t n = nl ? (size_t)(nl - p) : 0;

	if (!n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!p[i] || !strchr(ok, p[i]))
			return -EINVAL;
	memcpy(name, p, n);
	name[n] = '\0';
	*json = nl + 1;
	*json_len = len - n - 1;
	return 0;
}
