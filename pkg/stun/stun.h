/*
 * stun: the STUN message codec (RFC 8489) with the TURN attributes (RFC 8656) and ChannelData
 * framing. Parsers take bytes and return views into them; builders append attributes into a
 * caller's bounded buffer. Pure: no I/O, no logging, no allocation (OpenSSL computes the MACs).
 */
#ifndef RELAY_STUN_H
#define RELAY_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STUN_HEADER    20
#define STUN_MAGIC     0x2112A442u
#define STUN_TID       12
#define STUN_MAX_ATTRS 40 /* attributes kept from one message; more is malformed */
#define STUN_MAX_MSG   (STUN_HEADER + 65535)

/* Methods (RFC 8489, RFC 8656) */
enum stun_method {
	STUN_BINDING = 0x001,
	STUN_ALLOCATE = 0x003,
	STUN_REFRESH = 0x004,
	STUN_SEND = 0x006,
	STUN_DATA = 0x007,
	STUN_CREATE_PERMISSION = 0x008,
	STUN_CHANNEL_BIND = 0x009,
	/* TCP allocations (RFC 6062) */
	STUN_CONNECT = 0x00A,
	STUN_CONNECTION_BIND = 0x00B,
	STUN_CONNECTION_ATTEMPT = 0x00C,
};

enum stun_class {
	STUN_REQUEST = 0,
	STUN_INDICATION = 1,
	STUN_SUCCESS = 2,
	STUN_ERROR = 3,
};

/* Attributes: below 0x8000 a receiver must understand them (comprehension-required). */
enum stun_attr_type {
	STUN_A_MAPPED_ADDRESS = 0x0001,
	STUN_A_USERNAME = 0x0006,
	STUN_A_MESSAGE_INTEGRITY = 0x0008,
	STUN_A_ERROR_CODE = 0x0009,
	STUN_A_UNKNOWN_ATTRIBUTES = 0x000A,
	STUN_A_CHANNEL_NUMBER = 0x000C,
	STUN_A_LIFETIME = 0x000D,
	STUN_A_XOR_PEER_ADDRESS = 0x0012,
	STUN_A_DATA = 0x0013,
	STUN_A_REALM = 0x0014,
	STUN_A_NONCE = 0x0015,
	STUN_A_XOR_RELAYED_ADDRESS = 0x0016,
	STUN_A_REQUESTED_ADDRESS_FAMILY = 0x0017,
	STUN_A_EVEN_PORT = 0x0018,
	STUN_A_REQUESTED_TRANSPORT = 0x0019,
	STUN_A_DONT_FRAGMENT = 0x001A,
	STUN_A_MESSAGE_INTEGRITY_SHA256 = 0x001C,
	STUN_A_PASSWORD_ALGORITHM = 0x001D,
	STUN_A_USERHASH = 0x001E,
	STUN_A_XOR_MAPPED_ADDRESS = 0x0020,
	STUN_A_RESERVATION_TOKEN = 0x0022,
	STUN_A_CONNECTION_ID = 0x002A, /* RFC 6062: 4 bytes */
	STUN_A_PRIORITY = 0x0024,
	STUN_A_USE_CANDIDATE = 0x0025,
	STUN_A_PASSWORD_ALGORITHMS = 0x8002,
	STUN_A_ALTERNATE_DOMAIN = 0x8003,
	STUN_A_SOFTWARE = 0x8022,
	STUN_A_ALTERNATE_SERVER = 0x8023,
	STUN_A_FINGERPRINT = 0x8028,
	STUN_A_ICE_CONTROLLED = 0x8029,
	STUN_A_ICE_CONTROLLING = 0x802A,
};

/* PASSWORD-ALGORITHM values (RFC 8489 18.5) */
enum stun_password_alg { STUN_PWALG_MD5 = 1, STUN_PWALG_SHA256 = 2 };

struct stun_attr {
	uint16_t type;
	uint16_t len;     /* value bytes, without padding */
	const uint8_t *v; /* the value, inside the message */
	size_t off;       /* offset of the attribute's header in the message */
};

/* A parsed message: views into the bytes given to stun_parse(). */
struct stun_msg {
	const uint8_t *p; /* the whole message */
	size_t len;       /* STUN_HEADER + the length field */
	uint16_t method;  /* enum stun_method */
	uint8_t cls;      /* enum stun_class */
	const uint8_t *tid;
	struct stun_attr a[STUN_MAX_ATTRS];
	size_t n;
	/* Index in a[] of MESSAGE-INTEGRITY, -SHA256 and FINGERPRINT, or -1. Attributes after
	 * the integrity ones other than FINGERPRINT (and -SHA256 after MESSAGE-INTEGRITY) are
	 * ignored as RFC 8489 14.5 says; nothing after FINGERPRINT is allowed. */
	int mi, mi256, fp;
};

/* true when @p looks like a STUN message: top bits 00, the magic cookie, a length that is a
 * multiple of 4. RFC 8656's ChannelData starts with 0b01 and is told apart by this. */
bool stun_is_stun(const uint8_t *p, size_t len);

/*
 * Parse the message at the start of @p (@len bytes, at least the message; extra bytes after it
 * are not part of it) into @m. 0; -EAGAIN when @len is shorter than the message says;
 * -EINVAL when it is not STUN; -EBADMSG when malformed (an attribute crossing the end, too many,
 * a FINGERPRINT that is not last, an integrity attribute of a wrong size).
 */
int stun_parse(const uint8_t *p, size_t len, struct stun_msg *m);

/* The first attribute of @type in @m, or NULL. */
const struct stun_attr *stun_find(const struct stun_msg *m, uint16_t type);

/* The method and class of a message type, and back. */
uint16_t stun_type(uint16_t method, uint8_t cls);
void stun_type_split(uint16_t type, uint16_t *method, uint8_t *cls);

/* true when FINGERPRINT is present and right. */
bool stun_check_fingerprint(const struct stun_msg *m);

/*
 * The long-term key (RFC 8489 9.2.2): MD5 (@alg STUN_PWALG_MD5, 16 bytes) or SHA-256
 * (STUN_PWALG_SHA256, 32 bytes) of "username:realm:password" into @key (32 bytes of room).
 * Returns the key's length, or -EINVAL/-EIO.
 */
int stun_long_term_key(int alg, const char *user, size_t ulen, const char *realm, size_t rlen,
                       const char *pass, size_t plen, uint8_t key[32]);

/* MESSAGE-INTEGRITY (HMAC-SHA1) / -SHA256 of @m under @key: true when present and right. */
bool stun_check_integrity(const struct stun_msg *m, const uint8_t *key, size_t klen);
bool stun_check_integrity_sha256(const struct stun_msg *m, const uint8_t *key, size_t klen);

/*
 * A transport address from an (XOR-)address attribute: @tid is the message's transaction id
 * for the XOR forms, NULL for MAPPED-ADDRESS. Into @ss (an AF_INET or AF_INET6 sockaddr).
 * 0, or -EBADMSG (wrong length or family).
 */
int stun_addr_decode(const struct stun_attr *a, const uint8_t *tid, struct sockaddr_storage *ss);

/* ERROR-CODE's number (300..699) and reason view. 0 or -EBADMSG. */
int stun_error_decode(const struct stun_attr *a, int *code, const uint8_t **reason, size_t *rlen);

/* A big-endian u32 value (LIFETIME, REQUESTED-TRANSPORT's first byte...): 0 or -EBADMSG. */
int stun_u32_decode(const struct stun_attr *a, uint32_t *v);

/* ---- building ---- */

/* A message being built into p[0..cap). Once an add fails, @err stays set. */
struct stun_builder {
	uint8_t *p;
	size_t len, cap;
	bool err;
};

/* Start a message of @method/@cls with transaction id @tid (12 bytes) in @buf (@cap bytes). */
void stun_build(struct stun_builder *b, uint8_t *buf, size_t cap, uint16_t method, uint8_t cls,
                const uint8_t *tid);
/* Append an attribute (value zero-padded to 4 bytes). */
void stun_add(struct stun_builder *b, uint16_t type, const void *v, size_t len);
void stun_add_u32(struct stun_builder *b, uint16_t type, uint32_t v);
/* An address attribute; XORed with the message's transaction id unless @type is
 * STUN_A_MAPPED_ADDRESS (or another non-XOR one: @xor false). */
void stun_add_addr(struct stun_builder *b, uint16_t type, const struct sockaddr *sa, bool xor);
/* ERROR-CODE with @code (300..699) and @reason. */
void stun_add_error(struct stun_builder *b, int code, const char *reason);
/* MESSAGE-INTEGRITY / -SHA256 over what is there so far, then FINGERPRINT. */
void stun_add_integrity(struct stun_builder *b, const uint8_t *key, size_t klen);
void stun_add_integrity_sha256(struct stun_builder *b, const uint8_t *key, size_t klen);
void stun_add_fingerprint(struct stun_builder *b);
/* The message's length, or -ENOSPC when it did not fit (or a MAC failed: -EIO). */
int stun_build_end(const struct stun_builder *b);

/* ---- ChannelData (RFC 8656 12.4) ---- */

#define STUN_CHANNEL_MIN 0x4000
/* RFC 5766's range: RFC 8656 narrowed it to 0x4FFF, but clients (coturn's) still use it all */
#define STUN_CHANNEL_MAX 0x7FFF

/*
 * The length of the message (STUN or ChannelData) at the start of a stream buffer @p: for
 * ChannelData over TCP/TLS with its padding to 4 bytes. 0 when more bytes are needed to tell;
 * -EBADMSG when the bytes are neither.
 */
long stun_stream_frame_len(const uint8_t *p, size_t len);

/* A ChannelData message in @p: its channel and data view. 0, or -EBADMSG (short, or not a
 * channel number; bytes beyond the data, e.g. padding, are allowed). */
int stun_channel_parse(const uint8_t *p, size_t len, uint16_t *ch, const uint8_t **data,
                       size_t *dlen);
/* Write a ChannelData header (4 bytes) for @ch and @dlen bytes into @out. */
void stun_channel_header(uint8_t out[4], uint16_t ch, uint16_t dlen);

#endif
