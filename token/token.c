/*
 * token: builds claims from settings, signs them with pkg/jwt, and verifies tokens for
 * `relay token verify`. Secrets are wiped after use and never printed.
 */
#include "token/token.h"
#include "pkg/config/config.h"
#include "pkg/jwt/jwt.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SCOPES 32

__attribute__((format(printf, 2, 3))) static int fail(char why[200], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, 200, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int add_scope(struct rjwt_claims *c, const char *s, size_t len)
{
	char *dup;

	if (!len)
		return 0;
	for (size_t i = 0; i < c->n_scopes; i++)
		if (strlen(c->scopes[i]) == len && memcmp(c->scopes[i], s, len) == 0)
			return 0;
	if (c->n_scopes == MAX_SCOPES)
		return -E2BIG;
	dup = strndup(s, len);
	if (!dup)
		return -ENOMEM;
	c->scopes[c->n_scopes++] = dup;
	return 0;
}

/* Split a comma-separated list, trimming spaces. */
static int add_scope_list(struct rjwt_claims *c, const char *list)
{
	while (list && *list) {
		size_t n = strcspn(list, ",");
		const char *s = list;
		size_t len = n;
		int ret;

		while (len && *s == ' ') {
			s++;
			len--;
		}
		while (len && s[len - 1] == ' ')
			len--;
		ret = add_scope(c, s, len);
		if (ret)
			return ret;
		list += n + (list[n] == ',');
	}
	return 0;
}

/* practable's order: relay:admin, write, read, then the others. */
static int build_scopes(const struct token_mint_opts *o, struct rjwt_claims *c)
{
	int ret = 0;

	c->scopes = calloc(MAX_SCOPES, sizeof(char *));
	if (!c->scopes)
		return -ENOMEM;
	if (o->scopes)
		return add_scope_list(c, o->scopes);
	if (o->scope_admin)
		ret = add_scope_list(c, "relay:admin");
	if (!ret && o->scope_write)
		ret = add_scope_list(c, "write");
	if (!ret && o->scope_read)
		ret = add_scope_list(c, "read");
	if (!ret)
		ret = add_scope_list(c, o->scope_other);
	return ret;
}

/* "@UNIX" is absolute; anything else is a duration after @now. */
static int parse_not_before(const char *s, int64_t now, int64_t *out)
{
	int64_t v;

	if (s[0] == '@') {
		if (cfg_parse_int(s + 1, &v) || v <= 0)
			return -EINVAL;
		*out = v;
		return 0;
	}
	if (cfg_parse_duration_ms(s, &v))
		return -EINVAL;
	*out = now + v / 1000;
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static int build_claims(const struct token_mint_opts *o, int64_t now, struct rjwt_claims *c,
                        char why[200])
{
	int ret;

	if (!o->topic || !*o->topic)
		return fail(why, "no topic (set --topic or RELAY_TOKEN_TOPIC)");
	if (!o->audience || !*o->audience)
		return fail(why, "no audience (set --audience or RELAY_TOKEN_AUDIENCE)");
	if (o->lifetime <= 0)
		return fail(why, "no lifetime (set --lifetime or RELAY_TOKEN_LIFETIME)");
	if (!o->connection_type || !*o->connection_type)
		return fail(why, "empty connection type");
	c->iat = now - 1; /* usable at once, as practable's tool does */
	c->nbf = c->iat;
	if (o->not_before && *o->not_before && parse_not_before(o->not_before, now, &c->nbf))
		return fail(why, "invalid --not-before '%.40s': expected a duration or @UNIXTIME",
		            o->not_before);
	c->exp = c->nbf + (o->lifetime + 999) / 1000; /* valid for @lifetime from nbf */
	ret = build_scopes(o, c);
	if (ret == -E2BIG)
		return fail(why, "too many scopes (at most %d)", MAX_SCOPES);
	if (!ret && c->n_scopes == 0)
		return fail(
		        why,
		        "no scopes: set --scopes or one of RELAY_TOKEN_SCOPE_READ, _WRITE, _ADMIN");
	c->aud = calloc(1, sizeof(char *));
	if (ret || !c->aud || !(c->aud[0] = strdup(o->audience)))
		return fail(why, "out of memory");
	c->n_aud = 1;
	c->topic = strdup(o->topic);
	c->prefix = strdup(o->connection_type);
	c->booking_id = dup_or_null(o->booking_id);
	c->sub = dup_or_null(o->sub);
	c->iss = dup_or_null(o->iss);
	c->jti = dup_or_null(o->jti);
	if (!c->topic || !c->prefix)
		return fail(why, "out of memory");
	return 0;
}

static int parse_alg(const char *name, enum rjwt_alg *alg, char why[200])
{
	int a = rjwt_alg_parse(name ? name : "HS256");

	if (a < 0) {
		snprintf(why, 200,
		         "unknown algorithm '%.20s' (HS256/384/512, RS256/384/512, ES256/384/512)",
		         name);
		return -EINVAL;
	}
	*alg = (enum rjwt_alg)a;
	return 0;
}

int token_mint(const struct token_mint_opts *o, int64_t now, char **out, char why[200])
{
	struct rjwt_claims c = {0};
	struct rjwt_key key = {0};
	enum rjwt_alg alg;
	int ret;

	*out = NULL;
	ret = parse_alg(o->algorithm, &alg, why);
	if (!ret)
		ret = build_claims(o, now, &c, why);
	if (!ret)
		ret = rjwt_key_load(alg, o->secret, o->secret_file, o->key, &key, why) ? -EINVAL
		                                                                       : 0;
	if (!ret) {
		ret = rjwt_sign(alg, key.data, key.len, &c, out);
		if (ret)
			snprintf(why, 200, "cannot sign with %s: is the key a valid %s?",
			         rjwt_alg_name(alg),
			         rjwt_alg_is_hmac(alg) ? "secret" : "PEM private key");
	}
	rjwt_key_release(&key);
	rjwt_claims_release(&c);
	return ret;
}

static void print_claims(FILE *out, const char *json)
{
	json_t *v = json_loads(json, 0, NULL);

	if (v)
		json_dumpf(v, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', out);
	json_decref(v);
}

int token_verify(const struct token_verify_opts *o, const char *tok, int64_t now, FILE *claims_out,
                 char why[200])
{
	struct rjwt_verifier v = {0};
	struct rjwt_claims c = {0};
	struct rjwt_key key = {0};
	enum rjwt_status st;
	int ret;

	ret = parse_alg(o->algorithm, &v.alg, why);
	if (!ret)
		ret = rjwt_key_load(v.alg, o->secret, o->secret_file, o->key, &key, why) ? -EINVAL
		                                                                         : 0;
	if (ret)
		return ret;
	if (rjwt_decode_unverified(tok, strlen(tok), &c) == 0)
		print_claims(claims_out, c.json);
	rjwt_claims_release(&c);
	v.key[0] = key.data;
	v.key_len[0] = key.len;
	v.audience = o->audience && *o->audience ? o->audience : NULL;
	v.skew = o->skew / 1000;
	st = rjwt_verify(&v, tok, strlen(tok), now, &c);
	rjwt_claims_release(&c);
	rjwt_key_release(&key);
	if (st != RJWT_OK) {
		snprintf(why, 200, "%s", rjwt_reason(st));
		return 1;
	}
	return 0;
}
