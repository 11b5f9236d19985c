/*
 * wsframe: RFC 6455 section 5.2 frame headers, parsed from bytes and written into buffers, and
 * messages reassembled from frames, and the handshake's accept key (used by the client and by
 * relay host's ingest server). No sockets, so it is unit-testable and fuzzable.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-------+-+-------------+-------------------------------+
 *  |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
 *  |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
 *  |N|V|V|V|       |S|             |   (if payload len==126/127)   |
 *  +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 *  |     Extended payload length continued, if payload len == 127  |
 *  + - - - - - - - - - - - - - - - +-------------------------------+
 *  |                               | Masking-key, if MASK set to 1 |
 *  +-------------------------------+-------------------------------+
 */
#ifndef RELAY_WSFRAME_H
#define RELAY_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pkg/buf/buf.h"

#define WSFRAME_MAX_HEADER 14

enum ws_opcode {
	WS_CONT = 0x0,
	WS_TEXT = 0x1,
	WS_BINARY = 0x2,
	WS_CLOSE = 0x8,
	WS_PING = 0x9,
	WS_PONG = 0xa,
};

struct ws_frame {
	bool fin;
	uint8_t opcode;
	bool masked;
	uint8_t mask[4];
	uint64_t payload_len;
	size_t header_len;
};

/*
 * Parse the frame header at @p (@len bytes available). Returns the header length (> 0) and
 * fills @f when complete; 0 when more bytes are needed; -EPROTO for a header RFC 6455 forbids:
 * reserved bits set (no extensions are negotiated), an unknown opcode, a control frame that is
 * fragmented or longer than 125 bytes, or a 64-bit length with the top bit set.
 */
int wsframe_parse(const uint8_t *p, size_t len, struct ws_frame *f);

/*
 * The next complete frame in @p[*off..len): returns 1 with @f filled, *@payload at its payload
 * (f->payload_len bytes, inside @p) and *off moved past the frame; 0 when the frame at *off is
 * not complete yet (*off unchanged); -EPROTO as wsframe_parse(), or for a payload that cannot
 * fit in memory. The one loop every reader of frames uses:
 *
 *	while ((r = wsframe_next(buf, len, &off, &f, &payload)) > 0)
 *		handle(&f, payload);
 *	consume(off);   (and r < 0 is a protocol error)
 */
int wsframe_next(const uint8_t *p, size_t len, size_t *off, struct ws_frame *f,
                 const uint8_t **payload);

/*
 * Write a header for a frame of @payload_len bytes into @out (WSFRAME_MAX_HEADER bytes at
 * least), masked with @mask when not NULL. Returns the header length.
 */
size_t wsframe_header(uint8_t *out, uint8_t opcode, bool fin, uint64_t payload_len,
                      const uint8_t *mask);

/*
 * A message reassembled from its frames (RFC 6455 section 5.4), bounded: the one piece here
 * that allocates. Zero it to start; release it with wsframe_message_release().
 */
struct ws_message {
	union {
		struct buf data; /* the bytes so far, capped at the @max of wsframe_message_add() */
		struct {
			uint8_t *
			        p; /* readers' names for data.p and data.len (common initial members) */
			size_t len;
		};
	};
	uint8_t opcode; /* WS_TEXT or WS_BINARY */
	bool open;      /* a first frame came, the final one not yet */
};
/*
 * Add the data frame @f (payload @p) to @m. Returns 1 when it completes the message (m->p,
 * m->len), 0 when more frames are to come, -EPROTO for a continuation with no message open or a
 * new message while one is open, -EMSGSIZE past @max bytes, -EILSEQ for a text message that is
 * not UTF-8, -ENOMEM.
 */
int wsframe_message_add(struct ws_message *m, const struct ws_frame *f, const uint8_t *p,
                        size_t max);

void wsframe_message_release(struct ws_message *m);

/* The Sec-WebSocket-Accept value for the client's @key (RFC 6455 section 4.2.2), NUL-terminated. */
#define WSFRAME_ACCEPT_LEN 32
void wsframe_accept_key(const char *key, size_t len, char out[WSFRAME_ACCEPT_LEN]);

/* XOR @len bytes at @p with @mask, starting at byte @offset of the payload. */
void wsframe_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset);

#endif
