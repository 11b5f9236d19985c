/*
 * turncred: TURN REST credentials, the scheme coturn calls "use-auth-secret" (and
 * draft-uberti-behave-turn-rest): a username "<unix expiry>:<user>" and the password
 * base64(HMAC-SHA1(secret, username)), so anyone holding the secret mints them and the TURN
 * server checks them without a database. Also the REST secret itself, derived from the relay's
 * key so that the JWT secret never leaves the relay. Pure: no I/O, no logging.
 */
#ifndef RELAY_TURNCRED_H
#define RELAY_TURNCRED_H

#include <stddef.h>
#include <stdint.h>

#define TURNCRED_SECRET_HEX   64  /* characters of a derived REST secret (32 bytes, hex) */
#define TURNCRED_PASSWORD     28  /* characters of base64(HMAC-SHA1): 20 bytes */
#define TURNCRED_PASSWORD_HEX 40  /* the hex form some clients send by mistake */
#define TURNCRED_USER_MAX     127 /* bytes of the <user> part */

/*
 * The REST secret derived from the relay's key @key (@len bytes; the JWT secret): HKDF-SHA256
 * (RFC 5869) with salt "relay-turn" and info "turn rest secret v1", 32 bytes written as lower
 * case hex into @out (TURNCRED_SECRET_HEX + 1 bytes). Deterministic: every relay with the same
 * key derives the same secret, and a coturn given it (static-auth-secret) accepts the same
 * credentials. 0, or -EIO when OpenSSL fails.
 */
int turncred_derive(const uint8_t *key, size_t len, char out[TURNCRED_SECRET_HEX + 1]);

/*
 * The username "<expiry>:<user>" into @out (@len bytes). @user: 1 to TURNCRED_USER_MAX bytes
 * of printable ASCII without ':'. 0, -EINVAL (bad user or expiry < 0), -ENOSPC.
 */
int turncred_username(int64_t expiry, const char *user, char *out, size_t len);

/*
 * The password for @username (@ulen bytes) under @secret (@slen bytes): base64 of
 * HMAC-SHA1(secret, username) into @out (TURNCRED_PASSWORD + 1 bytes, NUL-terminated).
 * turncred_password_hex() writes the hex form instead (TURNCRED_PASSWORD_HEX + 1 bytes): a
 * server uses it only to tell a client that sent it why it is refused. 0 or -EIO.
 */
int turncred_password(const char *secret, size_t slen, const char *username, size_t ulen,
                      char out[TURNCRED_PASSWORD + 1]);
int turncred_password_hex(const char *secret, size_t slen, const char *username, size_t ulen,
                          char out[TURNCRED_PASSWORD_HEX + 1]);

/*
 * The expiry of @username (@len bytes): the decimal digits before its first ':' (1 to 18 of
 * them, then ':' and at least one byte of user). 0, or -EINVAL when it has no such form.
 */
int turncred_expiry(const char *username, size_t len, int64_t *expiry);

#endif
