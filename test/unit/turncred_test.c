/*
 * turncred: REST credentials against values computed independently (coturn's scheme:
 * base64(HMAC-SHA1(secret, "<expiry>:<user>"))) and the username rules.
 */
#include "pkg/turncred/turncred.h"
#include "test/harness.h"

#include <errno.h>

static void test_password_known_value(void)
{
	char pw[TURNCRED_PASSWORD + 1], hex[TURNCRED_PASSWORD_HEX + 1];
	const char *user = "1700000000:alice";

	/* printf %s 1700000000:alice | openssl dgst -sha1 -hmac s3cret -binary | base64 */
	CHECK(turncred_password("s3cret", 6, user, strlen(user), pw) == 0);
	CHECK_STR(pw, "TtElzSjT0GdnTQ9xdcRNxx96yQs=");
	/* ... | openssl dgst -sha1 -hmac s3cret (hex) */
	CHECK(turncred_password_hex("s3cret", 6, user, strlen(user), hex) == 0);
	CHECK_STR(hex, "4ed125cd28d3d067674d0f7175c44dc71f7ac90b");
}

static void test_derive_is_stable_and_keyed(void)
{
	char a[TURNCRED_SECRET_HEX + 1], b[TURNCRED_SECRET_HEX + 1], c[TURNCRED_SECRET_HEX + 1];

	CHECK(turncred_derive((const uint8_t *)"jwt-secret", 10, a) == 0);
	CHECK(turncred_derive((const uint8_t *)"jwt-secret", 10, b) == 0);
	CHECK(turncred_derive((const uint8_t *)"jwt-secreT", 10, c) == 0);
	CHECK(strlen(a) == TURNCRED_SECRET_HEX);
	CHECK_STR(a, b);
	CHECK(strcmp(a, c) != 0);
	CHECK(strstr(a, "jwt") == NULL);
}

static void test_username(void)
{
	char u[64];
	int64_t exp = 0;

	CHECK(turncred_username(1700000000, "bk-1", u, sizeof(u)) == 0);
	CHECK_STR(u, "1700000000:bk-1");
	CHECK(turncred_username(1, "a:b", u, sizeof(u)) == -EINVAL);
	CHECK(turncred_username(1, "", u, sizeof(u)) == -EINVAL);
	CHECK(turncred_username(-1, "a", u, sizeof(u)) == -EINVAL);
	CHECK(turncred_username(1700000000, "abcdefgh", u, 12) == -ENOSPC);
	CHECK(turncred_expiry("1700000000:bk-1", 15, &exp) == 0 && exp == 1700000000);
	CHECK(turncred_expiry("1700000000:", 11, &exp) == -EINVAL);
	CHECK(turncred_expiry("bk-1", 4, &exp) == -EINVAL);
	CHECK(turncred_expiry(":bk", 3, &exp) == -EINVAL);
	CHECK(turncred_expiry("1234567890123456789:x", 21, &exp) == -EINVAL);
	/* 19 nines: taking the 19th digit would overflow int64_t (UBSan: signed overflow) */
	CHECK(turncred_expiry("9999999999999999999:x", 21, &exp) == -EINVAL);
	CHECK(turncred_expiry("999999999999999999:x", 20, &exp) == 0 && exp == 999999999999999999);
	CHECK(turncred_expiry("99999999999999999999999999:x", 28, &exp) == -EINVAL);
}

int main(void)
{
	RUN(test_password_known_value());
	RUN(test_derive_is_stable_and_keyed());
	RUN(test_username());
	return harness_done();
}
