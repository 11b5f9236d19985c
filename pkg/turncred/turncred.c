/*
 * turncred: TURN REST credentials (see turncred.h).
 */
#include "pkg/turncred/turncred.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

static void to_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int turncred_derive(const uint8_t *key, size_t len, char out[TURNCRED_SECRET_HEX + 1])
{
	static const char salt[] = "relay-turn", info[] = "turn rest secret v1";
	uint8_t okm[TURNCRED_SECRET_HEX / 2];
	size_t okm_len = sizeof(okm);
	EVP_PKEY_CTX *kdf = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	int ok = kdf && EVP_PKEY_derive_init(kdf) > 0 &&
	         EVP_PKEY_CTX_set_hkdf_md(kdf, EVP_sha256()) > 0 &&
	         EVP_PKEY_CTX_set1_hkdf_salt(kdf, (const unsigned char *)salt,
	                                     (int)(sizeof(salt) - 1)) > 0 &&
	         EVP_PKEY_CTX_set1_hkdf_key(kdf, key, (int)len) > 0 &&
	         EVP_PKEY_CTX_add1_hkdf_info(kdf, (const unsigned char *)info,
	                                     (int)(sizeof(info) - 1)) > 0 &&
	         EVP_PKEY_derive(kdf, okm, &okm_len) > 0 && okm_len == sizeof(okm);

	EVP_PKEY_CTX_free(kdf);
	if (ok)
		to_hex(okm, sizeof(okm), out);
	OPENSSL_cleanse(okm, sizeof(okm));
	return ok ? 0 : -EIO;
}

static int valid_user(const char *user)
{
	size_t n = strlen(user);

	if (n == 0 || n > TURNCRED_USER_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (user[i] < 0x21 || user[i] > 0x7e || user[i] == ':')
			return 0;
	return 1;
}

int turncred_username(int64_t expiry, const char *user, char *out, size_t len)
{
	int n;

	if (expiry < 0 || !valid_user(user))
		return -EINVAL;
	n = snprintf(out, len, "%lld:%s", (long long)expiry, user);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

static int hmac_sha1(const char *secret, size_t slen, const char *username, size_t ulen,
                     uint8_t mac[20])
{
	unsigned int n = 0;

	if (!HMAC(EVP_sha1(), secret, (int)slen, (const unsigned char *)username, ulen, mac, &n) ||
	    n != 20)
		return -EIO;
	return 0;
}

int turncred_password(const char *secret, size_t slen, const char *username, size_t ulen,
                      char out[TURNCRED_PASSWORD + 1])
{
	uint8_t mac[20];
	int err = hmac_sha1(secret, slen, username, ulen, mac);

	if (!err && EVP_EncodeBlock((unsigned char *)out, mac, sizeof(mac)) != TURNCRED_PASSWORD)
		err = -EIO;
	OPENSSL_cleanse(mac, sizeof(mac));
	return err;
}

int turncred_password_hex(const char *secret, size_t slen, const char *username, size_t ulen,
                          char out[TURNCRED_PASSWORD_HEX + 1])
{
	uint8_t mac[20];
	int err = hmac_sha1(secret, slen, username, ulen, mac);

	if (!err)
		to_hex(mac, sizeof(mac), out);
	OPENSSL_cleanse(mac, sizeof(mac));
	return err;
}

int turncred_expiry(const char *username, size_t len, int64_t *expiry)
{
	int64_t v = 0;
	size_t i = 0;

	/* 18 digits at most: 10^18 - 1 fits in int64_t, a 19th digit could overflow it (a
	 * 19th digit then fails the ':' test below) */
	while (i < len && i < 18 && username[i] >= '0' && username[i] <= '9')
		v = v * 10 + (username[i++] - '0');
	if (i == 0 || i + 1 >= len || username[i] != ':')
		return -EINVAL;
	*expiry = v;
	return 0;
}
