/*
 * cluster: the pure parts of sharing one relay's state with others through Redis (relay/cluster.c
 * does the talking): the redis:// URL, the bytes of a topic message on a Redis channel, a grant
 * as Redis holds it, the key of a one-time code and the deny/allow notes. No sockets, no
 * allocation except where a result says "new string".
 */
#ifndef RELAY_PKG_CLUSTER_H
#define RELAY_PKG_CLUSTER_H

#include "pkg/codes/codes.h"
#include "pkg/store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] */
struct cluster_url {
	char host[256]; /* without brackets for IPv6 */
	int port;       /* 6379 when absent */
	char user[128]; /* "" : AUTH with the password alone */
	char password[256];
	int db; /* 0 when absent */
};

/* Parse @s into @u; 0, or -EINVAL with a one-line reason in @why (the password never in it). */
int cluster_url_parse(const char *s, struct cluster_url *u, char why[256]);

/*
 * A topic message on a Redis channel: the publishing instance's 64-bit nonce (big endian, so that
 * an instance can tell its own messages), one flags byte, then the message's bytes unchanged.
 */
#define CLUSTER_HDR      9
#define CLUSTER_F_BINARY 0x01
#define CLUSTER_F_KNOWN  CLUSTER_F_BINARY /* flags this version understands */

struct cluster_frame {
	uint64_t origin;
	bool binary;
	const uint8_t *data; /* into the input */
	size_t len;
};

/* Write the header of a message from @origin into @out. */
void cluster_frame_header(uint8_t out[CLUSTER_HDR], uint64_t origin, bool binary);
/* Split @p (@len bytes) into @f; 0, or -EINVAL (too short, unknown flags). */
int cluster_frame_parse(const uint8_t *p, size_t len, struct cluster_frame *f);

/* A grant as JSON (new string, free() after wiping: it names who may connect); NULL on OOM. */
char *cluster_grant_dump(const struct grant *g);
/* The reverse: 0, or -EINVAL (not a grant, or a field too long). */
int cluster_grant_load(const char *s, size_t len, struct grant *g);

/* The hex SHA-256 of a code: Redis keys name codes by it, so a Redis reader cannot redeem them. */
#define CLUSTER_CODE_HASH 65 /* with the NUL */
int cluster_code_hash(const char *code, size_t len, char out[CLUSTER_CODE_HASH]);

/*
 * A change of the deny/allow list, as instances tell each other: "deny EXP VER BID" (or
 * "allow ..."), VER being the change's version (store_newer()). Redis's hash relay:bookings holds
 * the newest change per booking as "deny EXP VER" under the booking id.
 */
struct cluster_bid {
	bool deny;
	int64_t exp;
	int64_t ver;
	char bid[STORE_BID_MAX + 1];
};

/* A booking id /bids would take: 1 to STORE_BID_MAX bytes of UTF-8, no NUL. */
bool cluster_bid_id_ok(const char *p, size_t n);
/* Write @b into @out (@len bytes); the length written, or -ENOSPC. */
int cluster_bid_format(const struct cluster_bid *b, char *out, size_t len);
/* The greatest EXP (the last second of year 9999, as /bids takes) and VER (2^53-1: a Lua number,
 * as Redis's script reads it, holds every integer up to it exactly). */
#define CLUSTER_EXP_MAX INT64_C(253402300799)
#define CLUSTER_VER_MAX ((INT64_C(1) << 53) - 1)

/* Parse @p (@len bytes) into @b; 0 or -EINVAL (EXP up to CLUSTER_EXP_MAX, VER up to
 * CLUSTER_VER_MAX: anything greater cannot be read). */
int cluster_bid_parse(const char *p, size_t len, struct cluster_bid *b);
/* The hash value "deny EXP VER" of @b (without its id); the length written, or -ENOSPC. */
int cluster_bid_value(const struct cluster_bid *b, char *out, size_t len);
/* Parse a hash value into @b's deny, exp and ver (@b's bid untouched); 0 or -EINVAL. */
int cluster_bid_parse_value(const char *p, size_t len, struct cluster_bid *b);

/*
 * A status report on the channel relay:status: the instance's name (1 to CLUSTER_NAME_MAX - 1
 * bytes of A-Z a-z 0-9 - . _ :), a newline, then the report's JSON. The name is read without
 * parsing the JSON, which may be megabytes: it is parsed only when a /status asks for it.
 */
#define CLUSTER_NAME_MAX 128 /* with the NUL */
/* Split @p (@len bytes) into @name and the JSON's start and length; 0 or -EINVAL. */
int cluster_report_split(const char *p, size_t len, char name[CLUSTER_NAME_MAX], const char **json,
                         size_t *json_len);

#endif
