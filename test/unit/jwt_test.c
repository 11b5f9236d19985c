/*
 * jwt_test: pkg/jwt against its contract (pkg/jwt/jwt.h). Sign/verify round trips for all nine
 * algorithms, one distinct status for every refusal (including alg none and the HS256-with-RSA-PEM
 * confusion), key rotation, the small helpers and the RFC 7515 Appendix A.1-A.3 vectors.
 * Keys and vectors are read from test/vectors/jwt/ (run from the repository root). Time is always
 * an explicit @now: nothing here reads the clock.
 */
#include "pkg/jwt/jwt.h"
#include "test/harness.h"

#include <errno.h>
#include <stdlib.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define VEC    "test/vectors/jwt/"
#define T0     1700000000 /* "now" for most tests; payload literals below use T0 + 600 */
#define EXP    (T0 + 600)
#define AUD    "https://relay.example/"
#define SKEW   30
#define SECRET "relay-test-secret-0123456789abcdef"

/* Headers and payloads of hand-built tokens, with ' for " (see dq()). */
#define HDR_HS256 "{'alg':'HS256','typ':'JWT'}"
#define PL_GOOD   "{'aud':['https://relay.example/'],'exp':1700000600,'topic':'lab-1/video'}"

/* ---- helpers: files, base64url, hand-built tokens ---- */

/* A whole file as a new NUL-terminated string (the files hold no NUL); NULL on error. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;
	ssize_t n = -1;

	if (f) {
		n = getdelim(&buf, &cap, '\0', f);
		fclose(f);
	}
	if (n < 0) {
		fprintf(stderr, "cannot read '%s' (run from the repository root)\n", path);
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

/* A token file: its text without the trailing newline. */
static char *read_token(const char *path)
{
	size_t len;
	char *s = slurp(path, &len);

	while (s && len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	return s;
}

static char *b64url(const void *data, size_t n)
{
	char *s = malloc(4 * ((n + 2) / 3) + 1);
	int len;

	if (!s)
		return NULL;
	len = EVP_EncodeBlock((unsigned char *)s, data, (int)n);
	while (len > 0 && s[len - 1] == '=')
		len--;
	s[len] = '\0';
	for (char *p = s; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	}
	return s;
}

/* Decode unpadded base64url into a new buffer of *n bytes; NULL on error. */
static uint8_t *b64url_decode(const char *in, size_t *n)
{
	size_t len = strlen(in), padded = (len + 3) / 4 * 4;
	char *tmp = malloc(padded + 1);
	uint8_t *out = malloc(padded / 4 * 3 + 1);
	int got = -1;

	if (tmp && out) {
		for (size_t i = 0; i < padded; i++) {
			char ch = i < len ? in[i] : '=';

			tmp[i] = ch == '-' ? '+' : ch == '_' ? '/' : ch;
		}
		got = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)padded);
	}
	free(tmp);
	if (got < 0) {
		free(out);
		return NULL;
	}
	*n = (size_t)got - (padded - len); /* EVP_DecodeBlock counts padding as zero bytes */
	return out;
}

/* A copy of @s with every ' turned into ", so JSON literals stay readable. */
static char *dq(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p && *p; p++)
		if (*p == '\'')
			*p = '"';
	return d;
}

static char *join3(const char *a, const char *b, const char *c)
{
	char *s = NULL;

	if (asprintf(&s, "%s.%s.%s", a, b, c) < 0)
		return NULL;
	return s;
}

/*
 * A token built by hand from JSON text (' for "): HMAC-SHA256 with @key, or an empty signature
 * when @key is NULL. This is how a forger (or a buggy issuer) would make one.
 */
static char *hand_token(const char *header, const char *payload, const void *key, size_t key_len)
{
	char *h = dq(header), *p = dq(payload), *input = NULL, *sig = NULL, *tok = NULL;
	char *hb = h ? b64url(h, strlen(h)) : NULL, *pb = p ? b64url(p, strlen(p)) : NULL;
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;

	if (!hb || !pb || asprintf(&input, "%s.%s", hb, pb) < 0)
		goto out;
	if (key && !HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)input,
	                 strlen(input), mac, &mac_len))
		goto out;
	sig = b64url(mac, mac_len);
	if (sig)
		tok = join3(hb, pb, sig);
out:
	free(h);
	free(p);
	free(hb);
	free(pb);
	free(input);
	free(sig);
	return tok;
}

/* Segment @i (0..2) of a compact token, as a new string. */
static char *segment(const char *tok, int i)
{
	const char *s = tok, *dot;

	for (; i > 0 && s; i--)
		s = strchr(s, '.') ? strchr(s, '.') + 1 : NULL;
	if (!s)
		return NULL;
	dot = strchr(s, '.');
	return strndup(s, dot ? (size_t)(dot - s) : strlen(s));
}

/* The middle character of segment @i (0..2): a whole character, not the unused low bits. */
static char *middle(char *tok, int i)
{
	for (; i > 0; i--)
		tok = strchr(tok, '.') + 1;
	return tok + strcspn(tok, ".") / 2;
}

static void tamper(char *tok, int i)
{
	char *p = middle(tok, i);

	*p = *p == 'A' ? 'B' : 'A';
}

/* ---- helpers: claims and verifiers ---- */

static char s_topic[] = "lab-1/video", s_prefix[] = "session", s_booking[] = "bk-42";
static char s_sub[] = "alice", s_iss[] = "https://book.example", s_jti[] = "jti-0001";
static char s_scope0[] = "write", s_scope1[] = "read", s_scope2[] = "admin:stats";
static char *s_scopes[] = {s_scope0, s_scope1, s_scope2};
static char s_aud0[] = "wss://other.example", s_aud1[] = AUD;
static char *s_auds[] = {s_aud0, s_aud1};

/* Claims that pass every check at T0. They point at static storage: never release them. */
static struct rjwt_claims sample(void)
{
	struct rjwt_claims c = {
	        .topic = s_topic,
	        .prefix = s_prefix,
	        .booking_id = s_booking,
	        .sub = s_sub,
	        .iss = s_iss,
	        .jti = s_jti,
	        .aud = s_auds,
	        .n_aud = 2,
	        .scopes = s_scopes,
	        .n_scopes = 3,
	        .iat = T0 - 5,
	        .nbf = T0 - 5,
	        .exp = EXP,
	};
	return c;
}

static void check_sample(const struct rjwt_claims *c)
{
	CHECK_STR(c->topic, s_topic);
	CHECK_STR(c->prefix, s_prefix);
	CHECK_STR(c->booking_id, s_booking);
	CHECK_STR(c->sub, s_sub);
	CHECK_STR(c->iss, s_iss);
	CHECK_STR(c->jti, s_jti);
	CHECK_EQ(c->n_scopes, 3);
	for (size_t i = 0; i < 3 && i < c->n_scopes; i++)
		CHECK_STR(c->scopes[i], s_scopes[i]);
	CHECK_EQ(c->n_aud, 2);
	for (size_t i = 0; i < 2 && i < c->n_aud; i++)
		CHECK_STR(c->aud[i], s_auds[i]);
	CHECK_EQ(c->iat, T0 - 5);
	CHECK_EQ(c->nbf, T0 - 5);
	CHECK_EQ(c->exp, EXP);
}

static bool is_released(const struct rjwt_claims *c)
{
	return !c->topic && !c->prefix && !c->booking_id && !c->sub && !c->iss && !c->jti &&
	       !c->aud && !c->n_aud && !c->scopes && !c->n_scopes && !c->iat && !c->nbf &&
	       !c->exp && !c->json;
}

static struct rjwt_verifier verifier(enum rjwt_alg alg, const void *key, size_t key_len)
{
	struct rjwt_verifier v = {.alg = alg, .audience = AUD, .skew = SKEW};

	v.key[0] = key;
	v.key_len[0] = key_len;
	return v;
}

static struct rjwt_verifier hs256_verifier(const char *secret)
{
	return verifier(RJWT_HS256, secret, strlen(secret));
}

/* rjwt_verify() at @now, claims discarded; a refusal must leave them released. */
static enum rjwt_status verify_at(const struct rjwt_verifier *v, const char *tok, int64_t now)
{
	struct rjwt_claims c;
	enum rjwt_status st;

	if (!tok)
		return RJWT_INTERNAL; /* the token could not be built: fail the caller's check */
	st = rjwt_verify(v, tok, strlen(tok), now, &c);
	if (st != RJWT_OK)
		CHECK(is_released(&c));
	rjwt_claims_release(&c);
	return st;
}

static char *sign(enum rjwt_alg alg, const void *key, size_t key_len, const struct rjwt_claims *c)
{
	char *tok = NULL;

	CHECK_EQ(rjwt_sign(alg, key, key_len, c, &tok), 0);
	return tok;
}

static char *sign_hs256(const char *secret, const struct rjwt_claims *c)
{
	return sign(RJWT_HS256, secret, strlen(secret), c);
}

/* ---- round trips ---- */

struct alg_case {
	enum rjwt_alg alg;
	const char *priv, *pub; /* PEM files; NULL for HS*, which use SECRET */
	size_t sig_chars;       /* base64url length of the signature; ES* are raw R||S */
};

static const struct alg_case alg_cases[] = {
        {RJWT_HS256, NULL, NULL, 43},
        {RJWT_HS384, NULL, NULL, 64},
        {RJWT_HS512, NULL, NULL, 86},
        {RJWT_RS256, VEC "rsa_private.pem", VEC "rsa_public.pem", 342},
        {RJWT_RS384, VEC "rsa_private.pem", VEC "rsa_public.pem", 342},
        {RJWT_RS512, VEC "rsa_private.pem", VEC "rsa_public.pem", 342},
        {RJWT_ES256, VEC "ec256_private.pem", VEC "ec256_public.pem", 86},
        {RJWT_ES384, VEC "ec384_private.pem", VEC "ec384_public.pem", 128},
        {RJWT_ES512, VEC "ec521_private.pem", VEC "ec521_public.pem", 176},
};

static void round_trip(const struct alg_case *ac, const void *sk, size_t sk_len, const void *vk,
                       size_t vk_len)
{
	struct rjwt_claims in = sample(), got;
	struct rjwt_verifier v = verifier(ac->alg, vk, vk_len);
	char *tok = sign(ac->alg, sk, sk_len, &in), *sig;

	if (!tok)
		return;
	sig = strrchr(tok, '.');
	CHECK_EQ(sig ? strlen(sig + 1) : 0, ac->sig_chars);
	CHECK_EQ(rjwt_verify(&v, tok, strlen(tok), T0, &got), RJWT_OK);
	check_sample(&got);
	CHECK(got.json && strstr(got.json, "\"topic\":\"lab-1/video\""));
	CHECK(rjwt_has_scope(&got, "read"));
	CHECK(!rjwt_has_scope(&got, "rea"));
	CHECK(!rjwt_has_scope(&got, "admin"));
	rjwt_claims_release(&got);
	CHECK(is_released(&got));
	free(tok);
}

static void test_round_trips(void)
{
	for (size_t i = 0; i < sizeof(alg_cases) / sizeof(alg_cases[0]); i++) {
		const struct alg_case *ac = &alg_cases[i];
		size_t priv_len = 0, pub_len = 0;
		char *priv, *pub;

		if (!ac->priv) {
			CHECK(rjwt_alg_is_hmac(ac->alg));
			round_trip(ac, SECRET, strlen(SECRET), SECRET, strlen(SECRET));
			continue;
		}
		CHECK(!rjwt_alg_is_hmac(ac->alg));
		priv = slurp(ac->priv, &priv_len);
		pub = slurp(ac->pub, &pub_len);
		CHECK(priv && pub);
		if (priv && pub)
			round_trip(ac, priv, priv_len, pub, pub_len);
		free(priv);
		free(pub);
	}
}

/* The token need not be NUL-terminated: give it an exact-size buffer (ASan sees overreads). */
static void test_not_nul_terminated(void)
{
	struct rjwt_claims in = sample(), got;
	struct rjwt_verifier v = hs256_verifier(SECRET);
	char *tok = sign_hs256(SECRET, &in), *exact;
	size_t len = tok ? strlen(tok) : 0;

	exact = malloc(len + 1);
	if (!tok || !exact)
		goto out;
	memcpy(exact, tok, len);
	CHECK_EQ(rjwt_verify(&v, exact, len, T0, &got), RJWT_OK);
	rjwt_claims_release(&got);
	exact[len] = '.'; /* one more byte exists but is not part of the token */
	CHECK_EQ(rjwt_verify(&v, exact, len, T0, &got), RJWT_OK);
	rjwt_claims_release(&got);
	CHECK_EQ(rjwt_decode_unverified(exact, len, &got), 0);
	CHECK_STR(got.topic, s_topic);
	rjwt_claims_release(&got);
out:
	free(exact);
	free(tok);
}

/* ---- one status for every refusal ---- */

static void test_no_key(void)
{
	struct rjwt_claims in = sample();
	char *tok = sign_hs256(SECRET, &in), *none = hand_token("{'alg':'none'}", PL_GOOD, NULL, 0);
	struct rjwt_verifier v = hs256_verifier(SECRET);

	v.key[0] = NULL;
	v.key_len[0] = 0;
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_NO_KEY);
	CHECK_EQ(verify_at(&v, none, T0), RJWT_NO_KEY);
	v.key[0] = (const uint8_t *)SECRET; /* a key of zero length is no key */
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_NO_KEY);
	CHECK_EQ(verify_at(&v, none, T0), RJWT_NO_KEY);
	v.key[1] = (const uint8_t *)"";
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_NO_KEY);
	free(tok);
	free(none);
}

/* Grow a signed token past RJWT_MAX_TOKEN: refused unread; the largest that fits is accepted. */
static void test_too_large(void)
{
	struct rjwt_claims in = sample(), got;
	struct rjwt_verifier v = hs256_verifier(SECRET);
	char *topic = malloc(RJWT_MAX_TOKEN + 1), *tok = NULL, *fit = NULL;

	if (!topic)
		return;
	memset(topic, 'x', RJWT_MAX_TOKEN);
	in.topic = topic;
	for (size_t n = 5000; n < RJWT_MAX_TOKEN && !tok; n++) {
		topic[n] = '\0';
		if (rjwt_sign(RJWT_HS256, (const uint8_t *)SECRET, strlen(SECRET), &in, &tok))
			tok = NULL;
		topic[n] = 'x';
		if (tok && strlen(tok) <= RJWT_MAX_TOKEN) {
			free(fit);
			fit = tok;
			tok = NULL;
		}
	}
	CHECK(tok && fit && strlen(fit) > RJWT_MAX_TOKEN - 4);
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_TOO_LARGE);
	CHECK_EQ(verify_at(&v, fit, T0), RJWT_OK);
	if (tok) {
		CHECK_EQ(rjwt_decode_unverified(tok, strlen(tok), &got), -E2BIG);
		CHECK(is_released(&got));
	}
	memset(topic, 'A', RJWT_MAX_TOKEN);
	topic[RJWT_MAX_TOKEN] = '\0';
	topic[10] = topic[20] = '.';
	CHECK_EQ(rjwt_verify(&v, topic, RJWT_MAX_TOKEN + 1, T0, &got), RJWT_TOO_LARGE);
	free(topic);
	free(tok);
	free(fit);
}

static void test_malformed(void)
{
	struct rjwt_claims in = sample();
	struct rjwt_verifier v = hs256_verifier(SECRET);
	char *tok = sign_hs256(SECRET, &in), *bad = NULL;
	static const char odd[] = "+/= !*~\n";

	if (!tok)
		return;
	CHECK_EQ(verify_at(&v, "", T0), RJWT_MALFORMED);
	CHECK_EQ(verify_at(&v, "..", T0), RJWT_MALFORMED);
	CHECK_EQ(verify_at(&v, "abc", T0), RJWT_MALFORMED);
	bad = strndup(tok, (size_t)(strrchr(tok, '.') - tok)); /* two segments */
	CHECK_EQ(verify_at(&v, bad, T0), RJWT_MALFORMED);
	free(bad);
	bad = NULL;
	CHECK(asprintf(&bad, "%s.AAAA", tok) > 0); /* four segments */
	CHECK_EQ(verify_at(&v, bad, T0), RJWT_MALFORMED);
	free(bad);
	bad = NULL;
	CHECK(asprintf(&bad, "%s.", tok) > 0); /* four, the last empty */
	CHECK_EQ(verify_at(&v, bad, T0), RJWT_MALFORMED);
	free(bad);
	bad = NULL;
	CHECK(asprintf(&bad, "%s=", tok) > 0); /* padding is not base64url */
	CHECK_EQ(verify_at(&v, bad, T0), RJWT_MALFORMED);
	free(bad);
	/* a character outside the base64url alphabet, in each segment */
	for (const char *o = odd; *o; o++) {
		for (int seg = 0; seg < 3; seg++) {
			bad = strdup(tok);
			*middle(bad, seg) = *o;
			CHECK_EQ(verify_at(&v, bad, T0), RJWT_MALFORMED);
			free(bad);
		}
	}
	free(tok);
}

static void test_bad_header(void)
{
	static const char *const headers[] = {
	        "not json",  "{'typ':'JWT'}", "{'alg':256}",    "{'alg':null}",
	        "['HS256']", "'HS256'",       "{'alg':'HS256'",
	};
	struct rjwt_verifier v = hs256_verifier(SECRET);

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *tok = hand_token(headers[i], PL_GOOD, SECRET, strlen(SECRET));

		CHECK_EQ(verify_at(&v, tok, T0), RJWT_BAD_HEADER);
		free(tok);
	}
}

static void test_bad_payload(void)
{
	static const char *const payloads[] = {
	        "['https://relay.example/']", "garbage", "'a string'", "17", "{'exp':1700000600",
	};
	struct rjwt_verifier v = hs256_verifier(SECRET);
	char *tok;

	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		tok = hand_token(HDR_HS256, payloads[i], SECRET, strlen(SECRET));
		CHECK_EQ(verify_at(&v, tok, T0), RJWT_BAD_PAYLOAD);
		free(tok);
	}
	/* Duplicate claims are ambiguous (which exp wins?): refused, whatever the status. */
	tok = hand_token(HDR_HS256, "{'aud':'" AUD "','exp':1700000600,'exp':1}", SECRET,
	                 strlen(SECRET));
	CHECK(tok && verify_at(&v, tok, T0) != RJWT_OK);
	free(tok);
}

static void test_alg_none(void)
{
	struct rjwt_verifier v = hs256_verifier(SECRET);
	char *tok = hand_token("{'alg':'none'}", PL_GOOD, NULL, 0);

	CHECK(tok && strlen(tok) && tok[strlen(tok) - 1] == '.'); /* empty signature */
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_ALG_NONE);
	free(tok);
	tok = hand_token("{'alg':'none','typ':'JWT'}", PL_GOOD, SECRET, strlen(SECRET));
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_ALG_NONE);
	free(tok);
	/* Other spellings are refused too (the exact status is not the point). */
	tok = hand_token("{'alg':'NONE'}", PL_GOOD, NULL, 0);
	CHECK(tok && verify_at(&v, tok, T0) != RJWT_OK);
	free(tok);
	tok = hand_token("{'alg':''}", PL_GOOD, NULL, 0);
	CHECK(tok && verify_at(&v, tok, T0) != RJWT_OK);
	free(tok);
}

static void test_alg_mismatch(void)
{
	struct rjwt_claims in = sample();
	struct rjwt_verifier v = hs256_verifier(SECRET);
	char *tok = sign(RJWT_HS384, SECRET, strlen(SECRET), &in);
	size_t priv_len = 0;
	char *priv = slurp(VEC "rsa_private.pem", &priv_len);

	CHECK_EQ(verify_at(&v, tok, T0), RJWT_ALG_MISMATCH);
	v.alg = RJWT_HS512;
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_ALG_MISMATCH);
	free(tok);
	tok = NULL;
	if (priv) {
		struct rjwt_verifier rv = verifier(RJWT_RS512, priv, priv_len);

		tok = sign(RJWT_RS256, priv, priv_len, &in);
		CHECK_EQ(verify_at(&rv, tok, T0), RJWT_ALG_MISMATCH);
		rv.alg = RJWT_ES256;
		CHECK_EQ(verify_at(&rv, tok, T0), RJWT_ALG_MISMATCH);
	}
	free(tok);
	free(priv);
}

/*
 * The classic confusion: the attacker HMACs an HS256 token with the relay's RSA *public* key
 * PEM (which is public) and sends it to a verifier configured for RS256 with that key. libjwt
 * 1.10.2 alone accepts it (NOTES.md), so the refusal must come from our algorithm check.
 */
static void test_alg_confusion(void)
{
	size_t pem_len = 0;
	char *pem = slurp(VEC "rsa_public.pem", &pem_len), *tok;
	struct rjwt_verifier v = verifier(RJWT_RS256, pem, pem_len);

	if (!pem)
		return;
	tok = hand_token(HDR_HS256, PL_GOOD, pem, pem_len);
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_ALG_MISMATCH);
	v.key[1] = v.key[0]; /* through the rotation slot too */
	v.key_len[1] = v.key_len[0];
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_ALG_MISMATCH);
	/* The forgery itself is sound: an HS256 verifier keyed with the PEM accepts it. */
	v.alg = RJWT_HS256;
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_OK);
	free(tok);
	free(pem);
}

static void test_bad_signature_hmac(void)
{
	struct rjwt_claims in = sample();
	struct rjwt_verifier v = hs256_verifier(SECRET);
	char *tok = sign_hs256(SECRET, &in), *good, *evil, *mixed = NULL, *s[3] = {0};

	CHECK_EQ(verify_at(&v, tok, T0), RJWT_OK);
	v = hs256_verifier(SECRET "x"); /* wrong secret */
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_BAD_SIGNATURE);
	v = hs256_verifier(SECRET);
	tamper(tok, 2);
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_BAD_SIGNATURE);
	free(tok);

	/* One payload byte changed ("lab-1" -> "lab-2"), header and signature kept. */
	good = hand_token(HDR_HS256, PL_GOOD, SECRET, strlen(SECRET));
	evil = hand_token(
	        HDR_HS256,
	        "{'aud':['https://relay.example/'],'exp':1700000600,'topic':'lab-2/video'}", SECRET,
	        strlen(SECRET));
	CHECK_EQ(verify_at(&v, good, T0), RJWT_OK);
	CHECK_EQ(verify_at(&v, evil, T0), RJWT_OK);
	if (good && evil) {
		s[0] = segment(good, 0);
		s[1] = segment(evil, 1);
		s[2] = segment(good, 2);
		mixed = join3(s[0], s[1], s[2]);
	}
	CHECK_EQ(verify_at(&v, mixed, T0), RJWT_BAD_SIGNATURE);
	free(mixed);
	/* An empty and a truncated signature. */
	mixed = s[0] && s[1] ? join3(s[0], s[1], "") : NULL;
	CHECK_EQ(verify_at(&v, mixed, T0), RJWT_BAD_SIGNATURE);
	free(mixed);
	if (s[2])
		s[2][strlen(s[2]) - 4] = '\0';
	mixed = s[0] && s[1] && s[2] ? join3(s[0], s[1], s[2]) : NULL;
	CHECK_EQ(verify_at(&v, mixed, T0), RJWT_BAD_SIGNATURE);
	free(mixed);
	for (int i = 0; i < 3; i++)
		free(s[i]);
	free(good);
	free(evil);
}

/* Sign with @priv_path; the verifier holds @other_pub_path, which is not the matching key. */
static void bad_signature_pem(enum rjwt_alg alg, const char *priv_path, const char *other_pub_path)
{
	struct rjwt_claims in = sample();
	size_t priv_len = 0, pub_len = 0;
	char *priv = slurp(priv_path, &priv_len), *pub = slurp(other_pub_path, &pub_len), *tok;
	struct rjwt_verifier v = verifier(alg, pub, pub_len);

	if (!priv || !pub)
		goto out;
	tok = sign(alg, priv, priv_len, &in);
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_BAD_SIGNATURE); /* another key of the same kind */
	free(tok);
out:
	free(priv);
	free(pub);
}

static void tampered_pem(enum rjwt_alg alg, const char *priv_path, const char *pub_path)
{
	struct rjwt_claims in = sample();
	size_t priv_len = 0, pub_len = 0;
	char *priv = slurp(priv_path, &priv_len), *pub = slurp(pub_path, &pub_len), *tok;
	struct rjwt_verifier v = verifier(alg, pub, pub_len);

	if (!priv || !pub)
		goto out;
	tok = sign(alg, priv, priv_len, &in);
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_OK);
	if (tok)
		tamper(tok, 2);
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_BAD_SIGNATURE);
	free(tok);
out:
	free(priv);
	free(pub);
}

static void test_bad_signature_pem(void)
{
	tampered_pem(RJWT_RS256, VEC "rsa_private.pem", VEC "rsa_public.pem");
	tampered_pem(RJWT_ES256, VEC "ec256_private.pem", VEC "ec256_public.pem");
	tampered_pem(RJWT_ES512, VEC "ec521_private.pem", VEC "ec521_public.pem");
	/* The RFC 7515 A.2/A.3 public keys serve as "some other key" of each kind. */
	bad_signature_pem(RJWT_RS256, VEC "rsa_private.pem", VEC "rfc7515_a2_public.pem");
	bad_signature_pem(RJWT_ES256, VEC "ec256_private.pem", VEC "rfc7515_a3_public.pem");
	/* A key of the wrong kind, or one that is not a key: nothing verifies. */
	bad_signature_pem(RJWT_ES256, VEC "ec256_private.pem", VEC "rsa_public.pem");
	bad_signature_pem(RJWT_RS256, VEC "rsa_private.pem", VEC "rfc7515_a1.jwt");
}

static void test_bad_claim(void)
{
	static const char *const payloads[] = {
	        "{'aud':'" AUD "','exp':'soon'}",
	        "{'aud':'" AUD "','exp':true}",
	        "{'aud':'" AUD "','exp':1700000600,'scopes':'read'}",
	        "{'aud':'" AUD "','exp':1700000600,'scopes':['read',7]}",
	        "{'aud':'" AUD "','exp':1700000600,'topic':5}",
	        "{'aud':'" AUD "','exp':1700000600,'prefix':['session']}",
	        "{'aud':'" AUD "','exp':1700000600,'booking_id':{}}",
	        "{'aud':'" AUD "','exp':1700000600,'sub':false}",
	        "{'aud':'" AUD "','exp':1700000600,'iss':1}",
	        "{'aud':'" AUD "','exp':1700000600,'jti':1.5}",
	        "{'aud':'" AUD "','exp':1700000600,'iat':'now'}",
	        "{'aud':'" AUD "','exp':1700000600,'nbf':[1]}",
	        "{'aud':5,'exp':1700000600}",
	        "{'aud':['" AUD "',5],'exp':1700000600}",
	};
	struct rjwt_verifier v = hs256_verifier(SECRET);

	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		char *tok = hand_token(HDR_HS256, payloads[i], SECRET, strlen(SECRET));

		CHECK_EQ(verify_at(&v, tok, T0), RJWT_BAD_CLAIM);
		free(tok);
	}
}

static void test_times(void)
{
	struct rjwt_claims in = sample();
	struct rjwt_verifier v = hs256_verifier(SECRET);
	char *tok;

	in.exp = 0;
	tok = sign_hs256(SECRET, &in);
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_NO_EXPIRY);
	free(tok);
	tok = hand_token(HDR_HS256, "{'aud':'" AUD "','exp':null}", SECRET, strlen(SECRET));
	CHECK_EQ(verify_at(&v, tok, T0), RJWT_NO_EXPIRY);
	free(tok);

	in = sample();
	tok = sign_hs256(SECRET, &in);
	CHECK_EQ(verify_at(&v, tok, EXP), RJWT_OK);
	CHECK_EQ(verify_at(&v, tok, EXP + SKEW), RJWT_OK);
	CHECK_EQ(verify_at(&v, tok, EXP + SKEW + 1), RJWT_EXPIRED);
	v.skew = 0;
	CHECK_EQ(verify_at(&v, tok, EXP + 1), RJWT_EXPIRED);
	v.skew = SKEW;
	free(tok);

	in.nbf = T0 + 100;
	in.iat = 0;
	tok = sign_hs256(SECRET, &in);
	CHECK_EQ(verify_at(&v, tok, T0 + 100 - SKEW - 1), RJWT_NOT_YET_VALID);
	CHECK_EQ(verify_at(&v, tok, T0 + 100 - SKEW), RJWT_OK);
	free(tok);

	in.nbf = 0;
	in.iat = T0 + 100;
	tok = sign_hs256(SECRET, &in);
	CHECK_EQ(verify_at(&v, tok, T0 + 100 - SKEW - 1), RJWT_ISSUED_IN_FUTURE);
	CHECK_EQ(verify_at(&v, tok, T0 + 100 - SKEW), RJWT_OK);
	free(tok);
}

/*
 * Times at the ends of the int64 range mean far future or far past: exp + skew and nbf - skew
 * must not wrap around (signed overflow is undefined behaviour, and UBSan aborts on it).
 */
static void test_time_extremes(void)
{
	static const char *const payloads[] = {
	        "{'aud':'" AUD "','exp':9223372036854775807}",
	        "{'aud':'" AUD "','exp':1700000600,'nbf':-9223372036854775808}",
	        "{'aud':'" AUD "','exp':1700000600,'iat':-9223372036854775808}",
	};
	struct rjwt_verifier v = hs256_verifier(SECRET);

	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		char *tok = hand_token(HDR_HS256, payloads[i], SECRET, strlen(SECRET));

		CHECK_EQ(verify_at(&v, tok, T0), RJWT_OK);
		free(tok);
	}
}

/* Token audience (' for "), wanted audience, expected status. */
struct aud_case {
	const char *payload;
	const char *want;
	enum rjwt_status st;
};

static const struct aud_case aud_cases[] = {
        {"{'aud':['https://relay.example/'],'exp':1700000600}", AUD, RJWT_OK},
        {"{'aud':['https://relay.example'],'exp':1700000600}", AUD, RJWT_OK},
        {"{'aud':['https://relay.example/'],'exp':1700000600}", "https://relay.example", RJWT_OK},
        {"{'aud':'https://relay.example','exp':1700000600}", AUD, RJWT_OK},
        {"{'aud':'https://relay.example/','exp':1700000600}", AUD, RJWT_OK},
        {"{'aud':['a','b','https://relay.example'],'exp':1700000600}", AUD, RJWT_OK},
        {"{'aud':['https://other.example/'],'exp':1700000600}", AUD, RJWT_WRONG_AUDIENCE},
        {"{'aud':'https://other.example','exp':1700000600}", AUD, RJWT_WRONG_AUDIENCE},
        {"{'aud':['https://relay.example.evil'],'exp':1700000600}", AUD, RJWT_WRONG_AUDIENCE},
        {"{'aud':['https://relay.exampl'],'exp':1700000600}", AUD, RJWT_WRONG_AUDIENCE},
        {"{'aud':['HTTPS://RELAY.EXAMPLE/'],'exp':1700000600}", AUD, RJWT_WRONG_AUDIENCE},
        {"{'aud':[],'exp':1700000600}", AUD, RJWT_WRONG_AUDIENCE},
        {"{'aud':'','exp':1700000600}", AUD, RJWT_WRONG_AUDIENCE},
        {"{'exp':1700000600}", AUD, RJWT_WRONG_AUDIENCE},
        {"{'exp':1700000600}", NULL, RJWT_OK}, /* NULL audience skips the check */
};

static void test_audience(void)
{
	struct rjwt_verifier v = hs256_verifier(SECRET);
	enum rjwt_status st;

	for (size_t i = 0; i < sizeof(aud_cases) / sizeof(aud_cases[0]); i++) {
		const struct aud_case *ac = &aud_cases[i];
		char *tok = hand_token(HDR_HS256, ac->payload, SECRET, strlen(SECRET));

		v.audience = ac->want;
		st = verify_at(&v, tok, T0);
		CHECK_EQ(st, ac->st);
		if (st != ac->st)
			fprintf(stderr, "  audience case %zu: %s want %s\n", i, ac->payload,
			        ac->want ? ac->want : "(null)");
		free(tok);
	}
}

/* A plain string aud reads back as one element. */
static void test_audience_string(void)
{
	struct rjwt_verifier v = hs256_verifier(SECRET);
	char *tok = hand_token(HDR_HS256, "{'aud':'https://relay.example','exp':1700000600}",
	                       SECRET, strlen(SECRET));
	struct rjwt_claims got;

	CHECK_EQ(tok ? rjwt_verify(&v, tok, strlen(tok), T0, &got) : RJWT_INTERNAL, RJWT_OK);
	CHECK_EQ(got.n_aud, 1);
	CHECK_STR(got.n_aud ? got.aud[0] : NULL, "https://relay.example");
	rjwt_claims_release(&got);
	free(tok);
}

/* ---- rotation ---- */

static void test_rotation(void)
{
	static const char new_key[] = "rotation-secret-new", old_key[] = "rotation-secret-old";
	static const char third[] = "rotation-secret-3rd";
	struct rjwt_claims in = sample();
	struct rjwt_verifier v = hs256_verifier(new_key);
	char *t_new = sign_hs256(new_key, &in), *t_old = sign_hs256(old_key, &in);
	char *t_third = sign_hs256(third, &in);

	CHECK_EQ(verify_at(&v, t_new, T0), RJWT_OK);
	CHECK_EQ(verify_at(&v, t_old, T0), RJWT_BAD_SIGNATURE); /* before rotation */
	v.key[1] = (const uint8_t *)old_key;
	v.key_len[1] = strlen(old_key);
	CHECK_EQ(verify_at(&v, t_new, T0), RJWT_OK);
	CHECK_EQ(verify_at(&v, t_old, T0), RJWT_OK);
	CHECK_EQ(verify_at(&v, t_third, T0), RJWT_BAD_SIGNATURE);
	/* A claim check still applies to a token signed with the old key. */
	CHECK_EQ(verify_at(&v, t_old, EXP + SKEW + 1), RJWT_EXPIRED);
	free(t_new);
	free(t_old);
	free(t_third);
}

/* ---- helpers of the API ---- */

static void test_reasons(void)
{
	for (int i = RJWT_OK; i <= RJWT_INTERNAL; i++) {
		const char *r = rjwt_reason((enum rjwt_status)i);

		CHECK(r && *r);
		for (int j = RJWT_OK; r && j < i; j++) {
			const char *o = rjwt_reason((enum rjwt_status)j);

			CHECK(o && strcmp(r, o) != 0);
			if (!o || strcmp(r, o) == 0)
				fprintf(stderr, "  reasons %d and %d are the same\n", j, i);
		}
	}
}

static void test_alg_names(void)
{
	static const char *const unknown[] = {"none",   "HS1",   "",     "hs256",
	                                      "HS256 ", "PS256", "EdDSA"};

	for (int i = 0; i < RJWT_ALG_COUNT; i++) {
		const char *name = rjwt_alg_name((enum rjwt_alg)i);

		CHECK(name && *name);
		CHECK_EQ(rjwt_alg_parse(name), i);
	}
	CHECK_STR(rjwt_alg_name(RJWT_HS256), "HS256");
	CHECK_STR(rjwt_alg_name(RJWT_RS384), "RS384");
	CHECK_STR(rjwt_alg_name(RJWT_ES512), "ES512");
	/* alg values are case-sensitive (RFC 7515 section 4.1.1) */
	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		CHECK_EQ(rjwt_alg_parse(unknown[i]), -1);
}

static void test_decode_unverified(void)
{
	struct rjwt_claims in = sample(), got;
	char *tok = sign_hs256("a key the decoder never sees", &in);

	CHECK_EQ(tok ? rjwt_decode_unverified(tok, strlen(tok), &got) : -1, 0);
	check_sample(&got);
	rjwt_claims_release(&got);
	/* An expired or forged token still decodes: nothing is checked. */
	if (tok)
		tamper(tok, 2);
	CHECK_EQ(tok ? rjwt_decode_unverified(tok, strlen(tok), &got) : -1, 0);
	CHECK_STR(got.topic, s_topic);
	rjwt_claims_release(&got);
	free(tok);

	CHECK(rjwt_decode_unverified("garbage", 7, &got) < 0);
	CHECK(is_released(&got));
	CHECK(rjwt_decode_unverified("", 0, &got) < 0);
	CHECK(rjwt_decode_unverified("a.b", 3, &got) < 0);
	tok = hand_token(HDR_HS256, "[1,2]", NULL, 0);
	CHECK(tok && rjwt_decode_unverified(tok, strlen(tok), &got) < 0);
	CHECK(is_released(&got));
	free(tok);
	tok = hand_token(HDR_HS256, "{'exp':1700000600,'scopes':['read',7]}", NULL, 0);
	CHECK(tok && rjwt_decode_unverified(tok, strlen(tok), &got) < 0);
	CHECK(is_released(&got));
	free(tok);
}

static void test_sign_errors(void)
{
	struct rjwt_claims in = sample(), zero = {0};
	size_t pub_len = 0;
	static char sentinel[] = "sentinel";
	char *pub = slurp(VEC "rsa_public.pem", &pub_len), *tok = sentinel;

	CHECK_EQ(rjwt_sign(RJWT_HS256, NULL, 0, &in, &tok), -EINVAL);
	CHECK(!tok);
	CHECK_EQ(rjwt_sign(RJWT_HS256, (const uint8_t *)SECRET, 0, &in, &tok), -EINVAL);
	CHECK_EQ(rjwt_sign(RJWT_RS256, (const uint8_t *)"not a pem", 9, &in, &tok), -EINVAL);
	CHECK(!tok);
	if (pub) {
		/* a public key cannot sign */
		CHECK_EQ(rjwt_sign(RJWT_RS256, (const uint8_t *)pub, pub_len, &in, &tok), -EINVAL);
		CHECK(!tok);
	}
	free(pub);
	rjwt_claims_release(&zero); /* safe on a zeroed struct, and twice */
	rjwt_claims_release(&zero);
	CHECK(is_released(&zero));
}

/* ---- tokens for clients ---- */

static void check_audience(const char *url, const char *want_aud)
{
	char *scopes[] = {(char *)"read"}, *token = NULL, why[RJWT_WHY] = "";
	struct rjwt_claims c = {0};

	CHECK_EQ(rjwt_mint_session(url, VEC "hs256_secret.txt", NULL, scopes, 1, 60, "test", &token,
	                           why),
	         0);
	CHECK_EQ(token ? rjwt_decode_unverified(token, strlen(token), &c) : -1, 0);
	CHECK_EQ(c.n_aud, 1);
	CHECK_STR(c.n_aud ? c.aud[0] : NULL, want_aud);
	CHECK_STR(c.topic, "expt00");
	rjwt_claims_release(&c);
	free(token);
}

/* The default audience is the origin as an operator writes it: no port when it is the default. */
static void test_mint_default_audience(void)
{
	check_audience("https://relay.example.org/session/expt00", "https://relay.example.org");
	check_audience("https://relay.example.org:443/session/expt00", "https://relay.example.org");
	check_audience("http://relay.example.org/session/expt00", "http://relay.example.org");
	check_audience("https://127.0.0.1:8443/session/expt00", "https://127.0.0.1:8443");
	check_audience("http://127.0.0.1:443/session/expt00", "http://127.0.0.1:443");
	check_audience("https://[::1]:8443/session/expt00", "https://[::1]:8443");
}

/* A minted token verifies with the file's secret, for its topic, scopes and lifetime. */
static void test_mint_verifies(void)
{
	char *scopes[] = {(char *)"read", (char *)"write"}, *token = NULL, why[RJWT_WHY] = "";
	struct rjwt_verifier v = hs256_verifier("relay-file-secret");
	struct rjwt_claims c = {0};
	int64_t now = (int64_t)time(NULL);

	v.audience = "https://r.example";
	CHECK_EQ(rjwt_mint_session("https://r.example/session/t1", VEC "hs256_secret.txt", NULL,
	                           scopes, 2, 600, "me", &token, why),
	         0);
	CHECK(token && rjwt_verify(&v, token, strlen(token), now, &c) == RJWT_OK);
	CHECK_STR(c.topic, "t1");
	CHECK_STR(c.sub, "me");
	CHECK(rjwt_has_scope(&c, "read") && rjwt_has_scope(&c, "write"));
	CHECK(c.exp >= now + 598 && c.exp <= now + 600);
	rjwt_claims_release(&c);
	free(token);
	CHECK_EQ(rjwt_mint_session("https://r.example/", VEC "hs256_secret.txt", NULL, scopes, 2,
	                           60, "me", &token, why),
	         -EINVAL);
	CHECK(strstr(why, "/session/TOPIC") != NULL);
	CHECK_EQ(rjwt_mint_session("https://r.example/session/t1", "/nonexistent/secret", NULL,
	                           scopes, 2, 60, "me", &token, why),
	         -ENOENT);
	CHECK(strstr(why, "cannot read secret file") != NULL);
	CHECK(token == NULL);
}

/* Precedence: the token, then the token file, then minting; none of them is a clear error. */
static void test_client_token(void)
{
	struct rjwt_source src = {
	        .scopes = (char *[]){(char *)"read"}, .n_scopes = 1, .lifetime_s = 60, .who = "t"};
	const char *url = "https://r.example/session/t1";
	char *out = NULL, why[RJWT_WHY] = "";

	CHECK_EQ(rjwt_client_token(&src, url, &out, why), -EINVAL);
	CHECK(strstr(why, "no token") != NULL);
	src.secret_file = VEC "hs256_secret.txt";
	CHECK_EQ(rjwt_client_token(&src, url, &out, why), 0);
	CHECK(out && strncmp(out, "eyJ", 3) == 0);
	free(out);
	src.token_file = VEC "hs256_secret.txt"; /* any file: its contents are the token */
	CHECK_EQ(rjwt_client_token(&src, url, &out, why), 0);
	CHECK_STR(out, "relay-file-secret");
	free(out);
	src.token = "given";
	CHECK_EQ(rjwt_client_token(&src, url, &out, why), 0);
	CHECK_STR(out, "given");
	free(out);
	src.token = NULL;
	src.token_file = "/nonexistent/token";
	CHECK_EQ(rjwt_client_token(&src, url, &out, why), -ENOENT);
	CHECK(strstr(why, "cannot read token file") != NULL);
}

/* ---- key loading ---- */

static void test_key_load_secret(void)
{
	struct rjwt_key k = {0};
	char why[160] = "";

	CHECK_EQ(rjwt_key_load(RJWT_HS256, "inline", VEC "hs256_secret.txt", NULL, &k, why), 0);
	CHECK_EQ(k.len, 6); /* an inline secret wins over the file */
	CHECK(k.data && memcmp(k.data, "inline", 6) == 0);
	rjwt_key_release(&k);
	CHECK(!k.data && !k.len);
	CHECK_EQ(rjwt_key_load(RJWT_HS384, NULL, VEC "hs256_secret.txt", NULL, &k, why), 0);
	CHECK_EQ(k.len, strlen("relay-file-secret")); /* the trailing newline is dropped */
	CHECK(k.data && memcmp(k.data, "relay-file-secret", k.len) == 0);
	rjwt_key_release(&k);
	CHECK_EQ(rjwt_key_load(RJWT_HS256, "", VEC "hs256_secret.txt", NULL, &k, why), 0);
	CHECK_EQ(k.len, strlen("relay-file-secret"));
	rjwt_key_release(&k);

	/* HS* ignore the PEM file: nothing usable is given */
	CHECK(rjwt_key_load(RJWT_HS256, NULL, NULL, VEC "rsa_public.pem", &k, why) < 0);
	CHECK(!k.data && !k.len && why[0]);
	why[0] = '\0';
	CHECK_EQ(rjwt_key_load(RJWT_HS256, NULL, VEC "missing.txt", NULL, &k, why), -ENOENT);
	CHECK(!k.data && strstr(why, "missing.txt"));
	rjwt_key_release(&k);
}

/* PEM keys load from files and sign/verify as the raw file contents do. */
static void test_key_load_pem(void)
{
	struct rjwt_key priv = {0}, pub = {0};
	struct rjwt_claims in = sample(), got;
	struct rjwt_verifier v;
	char why[160] = "", *tok = NULL;

	CHECK_EQ(rjwt_key_load(RJWT_ES384, NULL, NULL, VEC "ec384_private.pem", &priv, why), 0);
	CHECK_EQ(rjwt_key_load(RJWT_ES384, NULL, NULL, VEC "ec384_public.pem", &pub, why), 0);
	CHECK(priv.len > 0 && pub.len > 0);
	if (priv.data && pub.data)
		tok = sign(RJWT_ES384, priv.data, priv.len, &in);
	v = verifier(RJWT_ES384, pub.data, pub.len);
	CHECK_EQ(tok ? rjwt_verify(&v, tok, strlen(tok), T0, &got) : RJWT_INTERNAL, RJWT_OK);
	check_sample(&got);
	rjwt_claims_release(&got);
	free(tok);
	rjwt_key_release(&priv);
	rjwt_key_release(&pub);

	/* RS* and ES* need the PEM file: a secret is not a key for them */
	why[0] = '\0';
	CHECK(rjwt_key_load(RJWT_RS256, "inline", VEC "hs256_secret.txt", NULL, &pub, why) < 0);
	CHECK(!pub.data && !pub.len && why[0]);
	why[0] = '\0';
	CHECK_EQ(rjwt_key_load(RJWT_RS256, NULL, NULL, VEC "missing.pem", &pub, why), -ENOENT);
	CHECK(!pub.data && strstr(why, "missing.pem"));
}

/*
 * ---- RFC 7515 Appendix A ----
 * A.1-A.3 are JWTs that libjwt's algorithms cover. A.4 (ES512) signs the bytes "Payload", not a
 * JSON object, so rjwt_verify() refuses it before the signature (RJWT_BAD_PAYLOAD); A.5 is an
 * unsecured JWS (alg none), refused by design.
 */

/* A.1's key is the JWK {"kty":"oct","k":...}; k is base64url. */
static uint8_t *a1_key(size_t *len)
{
	json_t *jwk = json_load_file(VEC "rfc7515_a1.jwk", 0, NULL);
	const char *k = json_string_value(json_object_get(jwk, "k"));
	uint8_t *key = k ? b64url_decode(k, len) : NULL;

	json_decref(jwk);
	return key;
}

/* Each vector's payload is {"iss":"joe",\r\n "exp":1300819380,\r\n "http://...":true}. */
static void check_rfc_vector(enum rjwt_alg alg, const char *tok_path, const void *key,
                             size_t key_len)
{
	struct rjwt_verifier v = verifier(alg, key, key_len);
	char *tok = read_token(tok_path);
	struct rjwt_claims got;

	v.audience = NULL; /* the vectors carry no aud */
	v.skew = 0;
	CHECK(tok && key);
	if (!tok || !key)
		goto out;
	CHECK_EQ(rjwt_verify(&v, tok, strlen(tok), 1300819380 - 10, &got), RJWT_OK);
	CHECK_STR(got.iss, "joe");
	CHECK_EQ(got.exp, 1300819380);
	CHECK(!got.topic && !got.n_aud && !got.iat && !got.nbf);
	CHECK(got.json && strstr(got.json, "\"http://example.com/is_root\":true"));
	rjwt_claims_release(&got);
	CHECK_EQ(verify_at(&v, tok, 1300819380), RJWT_OK);
	CHECK_EQ(verify_at(&v, tok, 1300819380 + 1), RJWT_EXPIRED);
	v.audience = AUD;
	CHECK_EQ(verify_at(&v, tok, 1300819380 - 10), RJWT_WRONG_AUDIENCE);
	v.audience = NULL;
	tamper(tok, 2);
	CHECK_EQ(verify_at(&v, tok, 1300819380 - 10), RJWT_BAD_SIGNATURE);
out:
	free(tok);
}

static void test_rfc7515(void)
{
	size_t len = 0;
	uint8_t *k1 = a1_key(&len);
	char *pem;

	CHECK_EQ(len, 64);
	check_rfc_vector(RJWT_HS256, VEC "rfc7515_a1.jwt", k1, len);
	free(k1);
	pem = slurp(VEC "rfc7515_a2_public.pem", &len);
	check_rfc_vector(RJWT_RS256, VEC "rfc7515_a2.jwt", pem, len);
	free(pem);
	pem = slurp(VEC "rfc7515_a3_public.pem", &len);
	check_rfc_vector(RJWT_ES256, VEC "rfc7515_a3.jwt", pem, len);
	free(pem);
}

int main(void)
{
	RUN(test_mint_default_audience());
	RUN(test_mint_verifies());
	RUN(test_client_token());
	RUN(test_round_trips());
	RUN(test_not_nul_terminated());
	RUN(test_no_key());
	RUN(test_too_large());
	RUN(test_malformed());
	RUN(test_bad_header());
	RUN(test_bad_payload());
	RUN(test_alg_none());
	RUN(test_alg_mismatch());
	RUN(test_alg_confusion());
	RUN(test_bad_signature_hmac());
	RUN(test_bad_signature_pem());
	RUN(test_bad_claim());
	RUN(test_times());
	RUN(test_time_extremes());
	RUN(test_audience());
	RUN(test_audience_string());
	RUN(test_rotation());
	RUN(test_reasons());
	RUN(test_alg_names());
	RUN(test_decode_unverified());
	RUN(test_sign_errors());
	RUN(test_key_load_secret());
	RUN(test_key_load_pem());
	RUN(test_rfc7515());
	return harness_done();
}
