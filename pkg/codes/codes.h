/*
 * codes: one-time codes that stand for a verified token between the access call (POST) and the
 * websocket upgrade (GET ?code=). A code carries 192 random bits, is valid once, for a limited
 * time, and is bound to the grant made from the token's claims. Not thread-safe: one event loop.
 */
#ifndef RELAY_CODES_H
#define RELAY_CODES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CODE_LEN     32  /* base64url characters (24 random bytes) */
#define GRANT_TOPIC  128 /* bytes, including the NUL */
#define GRANT_FIELD  128
#define GRANT_SCOPES 256

/* What a connection may do, copied from a verified token. */
struct grant {
	char topic[GRANT_TOPIC];
	char prefix[GRANT_FIELD];
	char booking_id[GRANT_FIELD]; /* "" when the token had none */
	char who[GRANT_FIELD];        /* sub or jti, for logs; "" when absent */
	char scopes[GRANT_SCOPES];    /* the token's scopes, comma separated */
	bool can_read, can_write;
	int64_t exp;     /* the token's exp, seconds since the epoch */
	uint64_t ticket; /* a kind's own record of what the token said (relay/signal.c); 0: none */
};

struct codes;

/*
 * New store holding at most @max codes, each valid for @ttl_ms. NULL on OOM. Every @now_ms below
 * is read from one monotonic clock (an interval: a step of the wall clock must not stretch or
 * void codes).
 */
struct codes *codes_new(size_t max, int64_t ttl_ms);
void codes_free(struct codes *c);

/*
 * Issue a code for @g at @now_ms into @code (CODE_LEN + 1 bytes). 0, -ENOSPC when full,
 * -EIO when the random source fails.
 */
int codes_issue(struct codes *c, const struct grant *g, int64_t now_ms, char code[CODE_LEN + 1]);

/*
 * Redeem @code (len bytes) for @topic at @now_ms: on success *out holds its grant. Whatever the
 * outcome, a code shown is gone (single use). Returns 0, -ENOENT (unknown, used or expired),
 * -EXDEV (issued for another topic; *out untouched).
 */
int codes_redeem(struct codes *c, const char *code, size_t len, const char *topic, int64_t now_ms,
                 struct grant *out);

/* Forget every code whose grant has this booking id (after a deny). Returns how many. */
size_t codes_drop_booking(struct codes *c, const char *booking_id);

/* Forget expired codes; returns how many. Call from a timer. */
size_t codes_expire(struct codes *c, int64_t now_ms);

size_t codes_count(const struct codes *c);

#endif
