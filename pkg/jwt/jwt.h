/*
 * jwt: sign and verify relay's JSON Web Tokens (RFC 7519, JWS compact form RFC 7515) over libjwt.
 * The policy lives here, not in libjwt: the algorithm must equal the configured one, an empty key
 * refuses everything, exp is required and exp/nbf/iat are checked with a skew, aud must match.
 * Claims are wire-compatible with practable/relay: topic, prefix, scopes, booking_id, aud, iat,
 * nbf, exp; sub, iss and jti are carried when present. No allocation happens on failure paths
 * that the caller must undo: rjwt_claims_release() is always safe.
 */
#ifndef RELAY_JWT_H
#define RELAY_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RJWT_MAX_TOKEN 8192 /* bytes; longer tokens are refused unread */
#define RJWT_MAX_KEYS  2    /* a current and a previous key, for rotation */

enum rjwt_alg {
	RJWT_HS256,
	RJWT_HS384,
	RJWT_HS512,
	RJWT_RS256,
	RJWT_RS384,
	RJWT_RS512,
	RJWT_ES256,
	RJWT_ES384,
	RJWT_ES512,
	RJWT_ALG_COUNT,
};

/* "HS256" -> RJWT_HS256; -1 when unknown or "none". */
int rjwt_alg_parse(const char *name);
const char *rjwt_alg_name(enum rjwt_alg alg);
/* HS* take a shared secret; RS* and ES* take a PEM key (private to sign, public to verify). */
bool rjwt_alg_is_hmac(enum rjwt_alg alg);

/* Why a token was refused. Each value has a distinct static reason (rjwt_reason()). */
enum rjwt_status {
	RJWT_OK = 0,
	RJWT_NO_KEY,           /* the verifier has no key: everything is refused */
	RJWT_TOO_LARGE,        /* over RJWT_MAX_TOKEN bytes */
	RJWT_MALFORMED,        /* not three base64url segments */
	RJWT_BAD_HEADER,       /* header is not a JSON object with a string "alg" */
	RJWT_BAD_PAYLOAD,      /* payload is not a JSON object */
	RJWT_ALG_NONE,         /* "alg":"none" */
	RJWT_ALG_MISMATCH,     /* alg differs from the configured one */
	RJWT_BAD_SIGNATURE,    /* signature does not verify with any configured key */
	RJWT_BAD_CLAIM,        /* a known claim has the wrong JSON type */
	RJWT_NO_EXPIRY,        /* exp missing */
	RJWT_EXPIRED,          /* now > exp + skew */
	RJWT_NOT_YET_VALID,    /* now < nbf - skew */
	RJWT_ISSUED_IN_FUTURE, /* now < iat - skew */
	RJWT_WRONG_AUDIENCE,   /* aud missing or none matches */
	RJWT_INTERNAL,         /* out of memory or a library failure */
};

const char *rjwt_reason(enum rjwt_status st);

/* Claims of a token. Strings are owned by the struct; absent ones are NULL, absent times 0. */
struct rjwt_claims {
	char *topic;
	char *prefix; /* connection type, e.g. "session" */
	char *booking_id;
	char *sub;
	char *iss;
	char *jti;
	char **aud; /* n_aud strings */
	size_t n_aud;
	char **scopes; /* n_scopes strings, in token order */
	size_t n_scopes;
	int64_t iat, nbf, exp; /* seconds since the epoch; 0 when absent */
	char *json;            /* verify only: the whole payload, compact JSON */
};

/* Free what the claims own and zero them. Safe on a zeroed or partly filled struct. */
void rjwt_claims_release(struct rjwt_claims *c);

bool rjwt_has_scope(const struct rjwt_claims *c, const char *scope);

/* The policy a token is checked against. Keys are borrowed for the verifier's lifetime. */
struct rjwt_verifier {
	enum rjwt_alg alg;
	const uint8_t *key[RJWT_MAX_KEYS]; /* key[0] current; key[1] optional previous (rotation) */
	size_t key_len[RJWT_MAX_KEYS];
	const char *audience; /* required audience; NULL skips the check (CLI inspection only) */
	int64_t skew;         /* seconds of clock skew allowed on exp/nbf/iat */
};

/*
 * Verify @token (@len bytes, need not be NUL-terminated) at time @now (seconds since the epoch).
 * On RJWT_OK @out holds the claims; on any other status @out is left released.
 * Any thread; no logging.
 */
enum rjwt_status rjwt_verify(const struct rjwt_verifier *v, const char *token, size_t len,
                             int64_t now, struct rjwt_claims *out);

/*
 * Decode @token's payload without checking anything, for display ("relay token verify" prints
 * the claims even of a refused token). 0, or -EINVAL/-E2BIG/-ENOMEM. @out as for rjwt_verify().
 */
int rjwt_decode_unverified(const char *token, size_t len, struct rjwt_claims *out);

/* Key material: a shared secret (HS*) or a PEM key (RS*, ES*). Wiped by rjwt_key_release(). */
struct rjwt_key {
	uint8_t *data;
	size_t len;
};

/*
 * Load the key for @alg. HS*: @secret when set, else the contents of @secret_file (one trailing
 * newline dropped). RS* and ES*: the PEM file @pem_file (a private key to sign, public to verify).
 * 0 or a negative errno, with a one-line reason in @why naming what is missing or unreadable
 * (never the secret itself).
 */
int rjwt_key_load(enum rjwt_alg alg, const char *secret, const char *secret_file,
                  const char *pem_file, struct rjwt_key *out, char why[160]);
void rjwt_key_release(struct rjwt_key *k);

/*
 * Sign @c with @alg and @key (@key_len bytes: secret or PEM private key) into a new
 * NUL-terminated string in *out (free with free()). aud is written as an array, like practable.
 * 0, -EINVAL (no key, bad claims or key) or -ENOMEM.
 */
int rjwt_sign(enum rjwt_alg alg, const uint8_t *key, size_t key_len, const struct rjwt_claims *c,
              char **out);

/* ---- tokens for clients that hold the secret (relay file, relay host) ---- */

#define RJWT_WHY 256

/*
 * Mint an HS256 token for the topic of @access_url (its last path segment; prefix connect for a
 * /connect/ URL, else session) with @scopes, for
 * @audience (NULL or "": the URL's origin as an operator writes it), valid @lifetime_s seconds
 * from now, booking id and sub @who. The secret is read from @secret_file and wiped. The token
 * is a new string in *out (wipe and free with secret_free()). 0 or -errno with @why.
 */
int rjwt_mint_session(const char *access_url, const char *secret_file, const char *audience,
                      char **scopes, size_t n_scopes, int64_t lifetime_s, const char *who,
                      char **out, char why[RJWT_WHY]);

/* Where a client's token comes from, in order of precedence. */
struct rjwt_source {
	const char *token;       /* the token itself (from the environment) */
	const char *token_file;  /* a file holding it */
	const char *secret_file; /* else mint one with rjwt_mint_session() */
	const char *audience;
	char **scopes;
	size_t n_scopes;
	int64_t lifetime_s;
	const char *who;
};

/*
 * The token a client presents for @access_url from @src. A new string in *out (wipe and free with
 * secret_free()). 0 or -errno with a reason in @why naming what is missing or unreadable.
 */
int rjwt_client_token(const struct rjwt_source *src, const char *access_url, char **out,
                      char why[RJWT_WHY]);

#endif
