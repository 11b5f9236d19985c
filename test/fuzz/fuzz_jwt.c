/*
 * fuzz_jwt: rjwt_verify() and rjwt_decode_unverified() on arbitrary bytes. The first byte picks
 * the algorithm; the rest is the token. Nothing may crash, leak or read out of bounds, and a
 * refused token must leave the claims empty.
 */
#include "pkg/jwt/jwt.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[] = "fuzz-secret";
	struct rjwt_verifier v = {0};
	struct rjwt_claims c;

	if (size < 1)
		return 0;
	v.alg = (enum rjwt_alg)(data[0] % 3); /* HS*: no PEM parsing on every input */
	v.key[0] = key;
	v.key_len[0] = sizeof(key) - 1;
	v.audience = (data[0] & 0x80) ? "https://relay.example" : NULL;
	v.skew = 5;
	if (rjwt_verify(&v, (const char *)data + 1, size - 1, 1700000000, &c) != RJWT_OK) {
		if (c.topic || c.scopes || c.aud || c.json)
			abort();
	}
	rjwt_claims_release(&c);
	if (rjwt_decode_unverified((const char *)data + 1, size - 1, &c) == 0)
		rjwt_claims_release(&c);
	return 0;
}
