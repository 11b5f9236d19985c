/*
 * jwt: relay's token policy over libjwt 1.10.2. We split and decode the compact form ourselves
 * (so every refusal has its own reason and the algorithm is checked before any key is used),
 * let libjwt check the signature, then check claims ourselves: libjwt 1.10 checks none of them.
 */
#include "pkg/jwt/jwt.h"
#include "pkg/secret/secret.h"
#include "pkg/url/url.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

static const char *const alg_names[RJWT_ALG_COUNT] = {
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512",
};

static const jwt_alg_t alg_libjwt[RJWT_ALG_COUNT] = {
        JWT_ALG_HS256, JWT_ALG_HS384, JWT_ALG_HS512, JWT_ALG_RS256, JWT_ALG_RS384,
        JWT_ALG_RS512, JWT_ALG_ES256, JWT_ALG_ES384, JWT_ALG_ES512,
};

int rjwt_alg_parse(const char *name)
{
	for (int i = 0; name && i < RJWT_ALG_COUNT; i++)
		if (strcmp(name, alg_names[i]) == 0)
			return i;
	return -1;
}

const char *rjwt_alg_name(enum rjwt_alg alg)
{
	return alg < RJWT_ALG_COUNT ? alg_names[alg] : "?";
}

bool rjwt_alg_is_hmac(enum rjwt_alg alg)
{
	return alg <= RJWT_HS512;
}

const char *rjwt_reason(enum rjwt_status st)
{
	switch (st) {
	case RJWT_OK:
		return "ok";
	case RJWT_NO_KEY:
		return "no verification key configured";
	case RJWT_TOO_LARGE:
		return "token too large";
	case RJWT_MALFORMED:
		return "token is not three base64url segments";
	case RJWT_BAD_HEADER:
		return "token header is not a JSON object with an alg";
	case RJWT_BAD_PAYLOAD:
		return "token payload is not a JSON object";
	case RJWT_ALG_NONE:
		return "unsigned token (alg none) refused";
	case RJWT_ALG_MISMATCH:
		return "token algorithm differs from the configured one";
	case RJWT_BAD_SIGNATURE:
		return "token signature does not verify";
	case RJWT_BAD_CLAIM:
		return "token claim has the wrong type";
	case RJWT_NO_EXPIRY:
		return "token has no exp claim";
	case RJWT_EXPIRED:
		return "token expired";
	case RJWT_NOT_YET_VALID:
		return "token not yet valid (nbf)";
	case RJWT_ISSUED_IN_FUTURE:
		return "token issued in the future (iat)";
	case RJWT_WRONG_AUDIENCE:
		return "token audience does not match";
	case RJWT_INTERNAL:
		return "internal error while checking token";
	}
	return "unknown token status";
}

/* ---- claims ---- */

static void free_strv(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void rjwt_claims_release(struct rjwt_claims *c)
{
	free(c->topic);
	free(c->prefix);
	free(c->booking_id);
	free(c->sub);
	free(c->iss);
	free(c->jti);
	free_strv(c->aud, c->n_aud);
	free_strv(c->scopes, c->n_scopes);
	if (c->json) {
		OPENSSL_cleanse(c->json, strlen(c->json));
		free(c->json);
	}
	memset(c, 0, sizeof(*c));
}

bool rjwt_has_scope(const struct rjwt_claims *c, const char *scope)
{
	for (size_t i = 0; i < c->n_scopes; i++)
		if (strcmp(c->scopes[i], scope) == 0)
			return true;
	return false;
}

/* ---- base64url (RFC 4648 section 5, no padding) ---- */

static int b64url_value(unsigned char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-')
		return 62;
	if (ch == '_')
		return 63;
	return -1;
}

/* Decode @len chars into @out (capacity >= len * 3 / 4 + 1, NUL added); -1 on a bad char. */
static long b64url_decode(const char *in, size_t len, char *out)
{
	uint32_t acc = 0;
	size_t bits = 0, n = 0;

	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64url_value((unsigned char)in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[n] = '\0';
	return (long)n;
}

/* ---- the compact form ---- */

struct parts {
	const char *seg[3];
	size_t len[3];
};

static bool is_b64url(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b64url_value((unsigned char)s[i]) < 0)
			return false;
	return true;
}

static enum rjwt_status split(const char *tok, size_t len, struct parts *p)
{
	const char *end = tok + len, *s = tok;

	for (int i = 0; i < 3; i++) {
		const char *dot = memchr(s, '.', (size_t)(end - s));

		if (i < 2 && !dot)
			return RJWT_MALFORMED;
		if (i == 2 && dot)
			return RJWT_MALFORMED;
		p->seg[i] = s;
		p->len[i] = (size_t)((i < 2 ? dot : end) - s);
		if (!is_b64url(p->seg[i], p->len[i]))
			return RJWT_MALFORMED;
		s = i < 2 ? dot + 1 : end;
	}
	if (p->len[0] == 0 || p->len[1] == 0)
		return RJWT_MALFORMED;
	return RJWT_OK;
}

/* Decode one segment as a JSON object; NULL when it is not one. */
static json_t *decode_object(const char *seg, size_t len)
{
	char buf[RJWT_MAX_TOKEN];
	json_t *obj;
	long n = b64url_decode(seg, len, buf);

	if (n < 0)
		return NULL;
	obj = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
	OPENSSL_cleanse(buf, (size_t)n);
	if (obj && !json_is_object(obj)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/* ---- claims from JSON ---- */

static int take_string(json_t *payload, const char *name, char **out)
{
	json_t *v = json_object_get(payload, name);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -EINVAL;
	*out = strdup(json_string_value(v));
	return *out ? 0 : -ENOMEM;
}

static int take_time(json_t *payload, const char *name, int64_t *out)
{
	json_t *v = json_object_get(payload, name);

	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v))
		*out = json_integer_value(v);
	else if (json_is_real(v) && json_real_value(v) > 0 && json_real_value(v) < 1e15)
		*out = (int64_t)json_real_value(v);
	else
		return -EINVAL;
	return 0;
}

/* A string or an array of strings (aud); @allow_single: a plain string is one element. */
static int take_strv(json_t *payload, const char *name, bool allow_single, char ***out, size_t *n)
{
	json_t *v = json_object_get(payload, name), *e;
	size_t i;

	if (!v || json_is_null(v))
		return 0;
	if (allow_single && json_is_string(v)) {
		*out = calloc(1, sizeof(char *));
		if (!*out || !((*out)[0] = strdup(json_string_value(v))))
			return -ENOMEM;
		*n = 1;
		return 0;
	}
	if (!json_is_array(v))
		return -EINVAL;
	*out = calloc(json_array_size(v) + 1, sizeof(char *));
	if (!*out)
		return -ENOMEM;
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e))
			return -EINVAL;
		(*out)[i] = strdup(json_string_value(e));
		if (!(*out)[i])
			return -ENOMEM;
		*n = i + 1;
	}
	return 0;
}

static int claims_from_json(json_t *p, struct rjwt_claims *c)
{
	int ret = 0;

	ret = ret ?: take_string(p, "topic", &c->topic);
	ret = ret ?: take_string(p, "prefix", &c->prefix);
	ret = ret ?: take_string(p, "booking_id", &c->booking_id);
	ret = ret ?: take_string(p, "sub", &c->sub);
	ret = ret ?: take_string(p, "iss", &c->iss);
	ret = ret ?: take_string(p, "jti", &c->jti);
	ret = ret ?: take_strv(p, "aud", true, &c->aud, &c->n_aud);
	ret = ret ?: take_strv(p, "scopes", false, &c->scopes, &c->n_scopes);
	ret = ret ?: take_time(p, "iat", &c->iat);
	ret = ret ?: take_time(p, "nbf", &c->nbf);
	ret = ret ?: take_time(p, "exp", &c->exp);
	if (!ret) {
		c->json = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (!c->json)
			ret = -ENOMEM;
	}
	return ret;
}

/* ---- verification ---- */

/* Equal but for one trailing '/' on either side. */
static bool same_audience(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la && a[la - 1] == '/')
		la--;
	if (lb && b[lb - 1] == '/')
		lb--;
	return la == lb && memcmp(a, b, la) == 0;
}

static bool audience_matches(const struct rjwt_claims *c, const char *want)
{
	for (size_t i = 0; i < c->n_aud; i++)
		if (same_audience(c->aud[i], want))
			return true;
	return false;
}

static enum rjwt_status check_times(const struct rjwt_claims *c, int64_t now, int64_t skew)
{
	if (!c->exp)
		return RJWT_NO_EXPIRY;
	/* The skew goes on the trusted side: claims may hold any int64. */
	if (now - skew > c->exp)
		return RJWT_EXPIRED;
	if (c->nbf && now + skew < c->nbf)
		return RJWT_NOT_YET_VALID;
	if (c->iat && now + skew < c->iat)
		return RJWT_ISSUED_IN_FUTURE;
	return RJWT_OK;
}

/* libjwt wants a NUL-terminated token, and with a key it checks the signature. */
static enum rjwt_status check_signature(const struct rjwt_verifier *v, const char *tok, size_t len)
{
	enum rjwt_status st = RJWT_BAD_SIGNATURE;
	char *copy = malloc(len + 1);

	if (!copy)
		return RJWT_INTERNAL;
	for (int k = 0; k < RJWT_MAX_KEYS && st != RJWT_OK; k++) {
		jwt_t *jwt = NULL;

		if (!v->key[k] || !v->key_len[k])
			continue;
		memcpy(copy, tok, len);
		copy[len] = '\0';
		if (jwt_decode(&jwt, copy, v->key[k], (int)v->key_len[k]) == 0 && jwt &&
		    jwt_get_alg(jwt) == alg_libjwt[v->alg])
			st = RJWT_OK;
		jwt_free(jwt);
	}
	OPENSSL_cleanse(copy, len);
	free(copy);
	return st;
}

static enum rjwt_status check_header(const struct parts *p, enum rjwt_alg want)
{
	json_t *hdr = decode_object(p->seg[0], p->len[0]);
	const char *alg;
	enum rjwt_status st;

	if (!hdr)
		return RJWT_BAD_HEADER;
	alg = json_string_value(json_object_get(hdr, "alg"));
	if (!alg)
		st = RJWT_BAD_HEADER;
	else if (strcasecmp(alg, "none") == 0)
		st = RJWT_ALG_NONE;
	else if (strcmp(alg, alg_names[want]) != 0)
		st = RJWT_ALG_MISMATCH;
	else
		st = RJWT_OK;
	json_decref(hdr);
	return st;
}

static bool has_key(const struct rjwt_verifier *v)
{
	for (int k = 0; k < RJWT_MAX_KEYS; k++)
		if (v->key[k] && v->key_len[k])
			return true;
	return false;
}

enum rjwt_status rjwt_verify(const struct rjwt_verifier *v, const char *token, size_t len,
                             int64_t now, struct rjwt_claims *out)
{
	struct parts p;
	enum rjwt_status st;
	json_t *payload;

	memset(out, 0, sizeof(*out));
	if (!has_key(v) || v->alg >= RJWT_ALG_COUNT)
		return RJWT_NO_KEY;
	if (len > RJWT_MAX_TOKEN)
		return RJWT_TOO_LARGE;
	st = split(token, len, &p);
	if (st == RJWT_OK)
		st = check_header(&p, v->alg);
	if (st != RJWT_OK)
		return st;
	payload = decode_object(p.seg[1], p.len[1]);
	if (!payload)
		return RJWT_BAD_PAYLOAD;
	st = check_signature(v, token, len);
	if (st == RJWT_OK) {
		int ret = claims_from_json(payload, out);

		st = ret == -ENOMEM ? RJWT_INTERNAL : ret ? RJWT_BAD_CLAIM : RJWT_OK;
	}
	json_decref(payload);
	if (st == RJWT_OK)
		st = check_times(out, now, v->skew);
	if (st == RJWT_OK && v->audience && !audience_matches(out, v->audience))
		st = RJWT_WRONG_AUDIENCE;
	if (st != RJWT_OK)
		rjwt_claims_release(out);
	return st;
}

int rjwt_decode_unverified(const char *token, size_t len, struct rjwt_claims *out)
{
	struct parts p;
	json_t *payload;
	int ret;

	memset(out, 0, sizeof(*out));
	if (len > RJWT_MAX_TOKEN)
		return -E2BIG;
	if (split(token, len, &p) != RJWT_OK)
		return -EINVAL;
	payload = decode_object(p.seg[1], p.len[1]);
	if (!payload)
		return -EINVAL;
	ret = claims_from_json(payload, out);
	json_decref(payload);
	if (ret)
		rjwt_claims_release(out);
	return ret;
}

/* ---- signing ---- */

static json_t *strv_json(char **v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static int set_opt_string(json_t *obj, const char *name, const char *val)
{
	if (!val)
		return 0;
	return json_object_set_new(obj, name, json_string(val)) ? -EINVAL : 0;
}

static int set_opt_time(json_t *obj, const char *name, int64_t val)
{
	if (!val)
		return 0;
	return json_object_set_new(obj, name, json_integer(val)) ? -ENOMEM : 0;
}

/* The payload as JSON text, claims in a stable order. */
static char *payload_json(const struct rjwt_claims *c)
{
	json_t *o = json_object();
	char *s = NULL;
	int ret = o ? 0 : -ENOMEM;

	ret = ret ?: set_opt_string(o, "topic", c->topic);
	ret = ret ?: set_opt_string(o, "prefix", c->prefix);
	ret = ret ?: set_opt_string(o, "booking_id", c->booking_id);
	if (!ret && c->scopes)
		ret = json_object_set_new(o, "scopes", strv_json(c->scopes, c->n_scopes)) ? -EINVAL
		                                                                          : 0;
	if (!ret && c->aud)
		ret = json_object_set_new(o, "aud", strv_json(c->aud, c->n_aud)) ? -EINVAL : 0;
	ret = ret ?: set_opt_string(o, "sub", c->sub);
	ret = ret ?: set_opt_string(o, "iss", c->iss);
	ret = ret ?: set_opt_string(o, "jti", c->jti);
	ret = ret ?: set_opt_time(o, "iat", c->iat);
	ret = ret ?: set_opt_time(o, "nbf", c->nbf);
	ret = ret ?: set_opt_time(o, "exp", c->exp);
	if (!ret)
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

int rjwt_sign(enum rjwt_alg alg, const uint8_t *key, size_t key_len, const struct rjwt_claims *c,
              char **out)
{
	jwt_t *jwt = NULL;
	char *grants = NULL;
	int ret = -EINVAL;

	*out = NULL;
	if (alg >= RJWT_ALG_COUNT || !key || !key_len || key_len > INT32_MAX)
		return -EINVAL;
	if (jwt_new(&jwt))
		return -ENOMEM;
	grants = payload_json(c);
	if (!grants)
		goto out;
	if (jwt_add_grants_json(jwt, grants))
		goto out;
	if (jwt_set_alg(jwt, alg_libjwt[alg], key, (int)key_len))
		goto out;
	*out = jwt_encode_str(jwt);
	ret = *out ? 0 : -EINVAL;
out:
	free(grants);
	jwt_free(jwt);
	return ret;
}

/* ---- keys ---- */

void rjwt_key_release(struct rjwt_key *k)
{
	if (k->data) {
		OPENSSL_cleanse(k->data, k->len);
		free(k->data);
	}
	k->data = NULL;
	k->len = 0;
}

int rjwt_key_load(enum rjwt_alg alg, const char *secret, const char *secret_file,
                  const char *pem_file, struct rjwt_key *out, char why[160])
{
	const char *path = rjwt_alg_is_hmac(alg) ? secret_file : pem_file;
	char *text = NULL;
	int ret;

	out->data = NULL;
	out->len = 0;
	if (rjwt_alg_is_hmac(alg) && secret && *secret) {
		text = strdup(secret);
		if (!text)
			return -ENOMEM;
	} else if (path && *path) {
		ret = secret_read_file(path, &text);
		if (ret) {
			snprintf(why, 160, "cannot read key file '%.100s': %s", path,
			         ret == -ENODATA ? "empty"
			         : ret == -EFBIG ? "too large"
			                         : strerror(-ret));
			return ret;
		}
	} else {
		snprintf(why, 160, "%s",
		         rjwt_alg_is_hmac(alg) ? "no secret given (set a secret or a secret file)"
		                               : "no PEM key file given");
		return -ENOKEY;
	}
	out->data = (uint8_t *)text;
	out->len = strlen(text);
	return 0;
}

/* ---- tokens for clients ---- */

/* The origin of @u as an operator writes it: no port when it is the scheme's default. */
static void origin_of(const struct url *u, char *out, size_t len)
{
	bool v6 = strchr(u->host, ':') != NULL;
	int n = snprintf(out, len, "%s://%s%s%s", u->tls ? "https" : "http", v6 ? "[" : "", u->host,
	                 v6 ? "]" : "");

	if (u->port != (u->tls ? 443 : 80) && n > 0 && (size_t)n < len)
		snprintf(out + n, len - (size_t)n, ":%d", u->port);
}

int rjwt_mint_session(const char *access_url, const char *secret_file, const char *audience,
                      char **scopes, size_t n_scopes, int64_t lifetime_s, const char *who,
                      char **out, char why[RJWT_WHY])
{
	struct rjwt_claims c = {0};
	char topic[128], aud[512], *secret = NULL, *auds[] = {aud};
	struct url u;
	int ret;

	*out = NULL;
	if (url_topic_of(access_url, topic, sizeof(topic)) || url_parse(access_url, &u)) {
		snprintf(why, RJWT_WHY,
		         "the session must be an access URL ending in /session/TOPIC");
		return -EINVAL;
	}
	if (audience && *audience)
		snprintf(aud, sizeof(aud), "%s", audience);
	else
		origin_of(&u, aud, sizeof(aud));
	ret = secret_read_file(secret_file, &secret);
	if (ret) {
		snprintf(why, RJWT_WHY, "cannot read secret file '%.200s'", secret_file);
		return ret;
	}
	c.topic = topic;
	/* the kind of the access URL: /connect/HOST (private channels) or /session/TOPIC */
	c.prefix = strstr(u.path, "/connect/") ? (char *)"connect" : (char *)"session";
	c.booking_id = (char *)who;
	c.sub = (char *)who;
	c.scopes = scopes;
	c.n_scopes = n_scopes;
	c.aud = auds;
	c.n_aud = 1;
	c.iat = time(NULL) - 1; /* JWT times are wall-clock seconds (RFC 7519 section 2) */
	c.nbf = c.iat;
	c.exp = c.iat + lifetime_s;
	ret = rjwt_sign(RJWT_HS256, (const uint8_t *)secret, strlen(secret), &c, out);
	secret_free(secret);
	if (ret)
		snprintf(why, RJWT_WHY, "cannot sign a token");
	return ret;
}

int rjwt_client_token(const struct rjwt_source *src, const char *access_url, char **out,
                      char why[RJWT_WHY])
{
	int ret;

	*out = NULL;
	if (src->token && *src->token) {
		*out = strdup(src->token);
		return *out ? 0 : -ENOMEM;
	}
	if (src->token_file && *src->token_file) {
		ret = secret_read_file(src->token_file, out);
		if (ret)
			snprintf(why, RJWT_WHY, "cannot read token file '%.200s'", src->token_file);
		return ret;
	}
	if (src->secret_file && *src->secret_file)
		return rjwt_mint_session(access_url, src->secret_file, src->audience, src->scopes,
		                         src->n_scopes, src->lifetime_s, src->who, out, why);
	snprintf(why, RJWT_WHY,
	         "no token: give the token (environment), a token file or a secret file");
	return -EINVAL;
}
