/*
 * relay/turn_auth: long-term credentials (RFC 8489 9.2) over coturn's REST scheme (pkg/turncred).
 * Nonces are stateless: the time they were made and an HMAC, under a random per-process key, of
 * that time and the client's transport address, so a nonce is stale after TURN_NONCE_S or from
 * another address, and a restart makes every client fetch a new one (438, then it retries).
 */
#define LOG_MODULE "turn"
#include "relay/turn_internal.h"
#include "pkg/log/log.h"
#include "pkg/store/store.h"
#include "pkg/turncred/turncred.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>

/* RFC 8489 9.2: the nonce cookie "obMatJos2" and the 24 feature bits in base64, "Password
 * algorithms" (bit 0) set. Bit 0 is the least significant (the RFC's erratum on 18.1; libjuice
 * reads it so): 0x000001 is "AAAB". A client that reads it otherwise sees no feature and uses
 * MD5 with MESSAGE-INTEGRITY, which works too. */
#define NONCE_PREFIX     "obMatJos2AAAB"
#define NONCE_PREFIX_LEN 13
#define NONCE_LEN        (NONCE_PREFIX_LEN + 8 + 16)

static void nonce_mac(const struct sockaddr *client, const char time_hex[8], char out[17])
{
	uint8_t msg[8 + 16 + 2], mac[32];
	unsigned int n = 0;
	uint16_t port = turn_port_of(client);

	memcpy(msg, time_hex, 8);
	turn_ip16(client, msg + 8);
	msg[24] = (uint8_t)(port >> 8);
	msg[25] = (uint8_t)port;
	if (!HMAC(EVP_sha256(), turn_srv.nonce_key, sizeof(turn_srv.nonce_key), msg, sizeof(msg),
	          mac, &n))
		memset(mac, 0, sizeof(mac)); /* never matches a real one: clients get 438 again */
	for (int k = 0; k < 8; k++)
		snprintf(out + 2 * k, 3, "%02x", mac[k]);
}

void turn_nonce_make(const struct sockaddr *client, int64_t now_s, char out[64])
{
	char t[9];

	snprintf(t, sizeof(t), "%08llx", (unsigned long long)(now_s & 0xffffffff));
	memcpy(out, NONCE_PREFIX, NONCE_PREFIX_LEN);
	memcpy(out + NONCE_PREFIX_LEN, t, 8);
	nonce_mac(client, t, out + NONCE_PREFIX_LEN + 8);
}

int turn_nonce_check(const char *nonce, size_t len, const struct sockaddr *client, int64_t now_s)
{
	char t[9], mac[17];
	char *end;
	long long made;
	uint8_t d = 0;

	if (len != NONCE_LEN || memcmp(nonce, NONCE_PREFIX, NONCE_PREFIX_LEN) != 0)
		return -EINVAL;
	memcpy(t, nonce + NONCE_PREFIX_LEN, 8);
	t[8] = '\0';
	made = strtoll(t, &end, 16);
	if (*end)
		return -EINVAL;
	nonce_mac(client, t, mac);
	for (int k = 0; k < 16; k++)
		d |= (uint8_t)(mac[k] ^ nonce[NONCE_PREFIX_LEN + 8 + k]);
	if (d)
		return -ESTALE; /* another address's, or made before a restart */
	if ((now_s & 0xffffffff) - made > TURN_NONCE_S || (now_s & 0xffffffff) < made)
		return -ESTALE;
	return 0;
}

/* The PASSWORD-ALGORITHMS value we offer: SHA-256, then MD5 (no parameters). */
static const uint8_t offered[8] = {0, STUN_PWALG_SHA256, 0, 0, 0, STUN_PWALG_MD5, 0, 0};

const uint8_t *turn_password_algorithms(size_t *len);
const uint8_t *turn_password_algorithms(size_t *len)
{
	*len = sizeof(offered);
	return offered;
}

static void refuse(struct turn_auth *a, int code, enum turn_refusal r, const char *why)
{
	a->code = code;
	a->refusal = r;
	a->why = why;
}

/* PASSWORD-ALGORITHM (and the PASSWORD-ALGORITHMS it must echo): the algorithm, or -1. */
static int password_alg(const struct stun_msg *m)
{
	const struct stun_attr *alg = stun_find(m, STUN_A_PASSWORD_ALGORITHM);
	const struct stun_attr *algs = stun_find(m, STUN_A_PASSWORD_ALGORITHMS);
	int v;

	if (!alg && !algs)
		return STUN_PWALG_MD5;
	if (!alg || !algs || algs->len != sizeof(offered) ||
	    memcmp(algs->v, offered, sizeof(offered)) != 0 || alg->len != 4 || alg->v[2] ||
	    alg->v[3])
		return -1;
	v = alg->v[0] << 8 | alg->v[1];
	return v == STUN_PWALG_MD5 || v == STUN_PWALG_SHA256 ? v : -1;
}

static bool verify(const struct stun_msg *m, const uint8_t *key, size_t klen)
{
	return m->mi256 >= 0 ? stun_check_integrity_sha256(m, key, klen)
	                     : stun_check_integrity(m, key, klen);
}

/* The key for @pass; true when @m's integrity verifies with it (the key left in @a). */
static bool try_password(const struct stun_msg *m, struct turn_auth *a, int alg, const char *pass,
                         size_t plen)
{
	const char *realm = turn_srv.realm;
	int n = stun_long_term_key(alg, a->username, strlen(a->username), realm, strlen(realm),
	                           pass, plen, a->key);

	if (n < 0)
		return false;
	a->key_len = (size_t)n;
	return verify(m, a->key, a->key_len);
}

/* The user part ("<expiry>:<user>") is a denied booking: the credential /ice handed out lives
 * until the token's exp, and a deny that only ended the allocations it found would let the
 * client allocate again with it at once. */
static bool denied(const char *username, int64_t now_s)
{
	const char *user = strchr(username, ':');

	return user && turn_srv.s && turn_srv.s->store &&
	       store_is_denied(turn_srv.s->store, user + 1, now_s);
}

void turn_auth_check(const struct stun_msg *m, const struct sockaddr *client, int64_t now_s,
                     int64_t mono_s, struct turn_auth *a)
{
	const struct stun_attr *user = stun_find(m, STUN_A_USERNAME);
	const struct stun_attr *realm = stun_find(m, STUN_A_REALM);
	const struct stun_attr *nonce = stun_find(m, STUN_A_NONCE);
	char pass[TURNCRED_PASSWORD_HEX + 1];
	int alg;

	memset(a, 0, sizeof(*a));
	if (m->mi < 0 && m->mi256 < 0)
		return refuse(a, 401, TR_N, "no credentials yet"); /* the usual first round */
	if (!user || !realm || !nonce)
		return refuse(a, 400, TR_BAD_REQUEST, "USERNAME, REALM or NONCE missing");
	if (turn_nonce_check((const char *)nonce->v, nonce->len, client, mono_s))
		return refuse(a, 438, TR_STALE_NONCE, "stale nonce");
	if (realm->len != strlen(turn_srv.realm) ||
	    memcmp(realm->v, turn_srv.realm, realm->len) != 0)
		return refuse(a, 401, TR_UNAUTHORIZED, "wrong realm");
	alg = password_alg(m);
	if (alg < 0)
		return refuse(a, 400, TR_BAD_REQUEST, "PASSWORD-ALGORITHM(S) not as offered");
	a->sha256 = m->mi256 >= 0;
	if (user->len >= sizeof(a->username) || memchr(user->v, 0, user->len))
		return refuse(a, 401, TR_UNAUTHORIZED, "username too long");
	memcpy(a->username, user->v, user->len);
	a->username[user->len] = '\0';
	if (turncred_expiry(a->username, user->len, &a->expiry_s))
		return refuse(a, 401, TR_UNAUTHORIZED, "username is not <expiry>:<user>");
	if (a->expiry_s <= now_s)
		return refuse(a, 401, TR_EXPIRED, "credential expired");
	if (turncred_password(turn_srv.secret, turn_srv.secret_len, a->username, user->len, pass) ==
	            0 &&
	    try_password(m, a, alg, pass, TURNCRED_PASSWORD)) {
		OPENSSL_cleanse(pass, sizeof(pass));
		if (denied(a->username, now_s)) {
			OPENSSL_cleanse(a->key, sizeof(a->key));
			refuse(a, 403, TR_DENIED, "booking denied");
		}
		return;
	}
	if (turncred_password_hex(turn_srv.secret, turn_srv.secret_len, a->username, user->len,
	                          pass) == 0 &&
	    try_password(m, a, alg, pass, TURNCRED_PASSWORD_HEX))
		refuse(a, 401, TR_HEX, "password is the hex HMAC; the REST scheme wants base64");
	else
		refuse(a, 401, TR_UNAUTHORIZED, "wrong password");
	OPENSSL_cleanse(pass, sizeof(pass));
	OPENSSL_cleanse(a->key, sizeof(a->key));
}
