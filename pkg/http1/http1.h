/*
 * http1: HTTP/1.1 request and response heads (RFC 9112) and chunked bodies, parsed from bytes. No sockets, no
 * allocation: results are views into the caller's buffer, so it is unit-testable and fuzzable.
 * Used by `relay host`'s local ingest server (lws 4.1 hangs on chunked POSTs, NOTES.md, and
 * `ffmpeg -f mpegts http://...` posts chunked), and for the answers pkg/wsclient reads.
 */
#ifndef RELAY_HTTP1_H
#define RELAY_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A view into the parsed buffer (not NUL-terminated). */
struct http1_view {
	const char *p;
	size_t len;
};

struct http1_req {
	struct http1_view method, path, query; /* query: after '?', empty when none */
	int64_t content_length;                /* -1 when absent */
	bool chunked;                          /* Transfer-Encoding: chunked */
	bool close;                            /* Connection: close */
	bool websocket;                        /* Upgrade: websocket (and Connection: upgrade) */
	struct http1_view ws_key;              /* Sec-WebSocket-Key */
	struct http1_view ws_version;          /* Sec-WebSocket-Version */
	struct http1_view content_type;
};

/*
 * Parse the request head at @p (@n bytes). Returns its length including the blank line (> 0)
 * and fills @r; 0 when the head is not complete yet; -EINVAL for a malformed head (also both
 * Content-Length and Transfer-Encoding, or two different lengths: RFC 9112 section 6.3);
 * -ENOTSUP for a version other than HTTP/1.0 and 1.1 or a transfer coding other than chunked.
 */
int http1_parse_request(const uint8_t *p, size_t n, struct http1_req *r);

struct http1_resp {
	int status;                  /* 100-999 */
	struct http1_view reason;    /* may be empty */
	int64_t content_length;      /* -1 when absent */
	bool chunked;                /* Transfer-Encoding: chunked */
	bool close;                  /* Connection: close, or HTTP/1.0 */
	bool websocket;              /* Upgrade: websocket and Connection: upgrade */
	struct http1_view ws_accept; /* Sec-WebSocket-Accept */
	struct http1_view content_type;
};

/*
 * Parse the response head at @p (@n bytes), as http1_parse_request() does: its length (> 0) and
 * @r filled, 0 when incomplete, -EINVAL when malformed (a status line other than
 * "HTTP/1.x NNN reason", a bad header line, both or two different lengths), -ENOTSUP for another
 * version or transfer coding. Leading empty lines are refused: a client reads exactly one answer.
 */
int http1_parse_response(const uint8_t *p, size_t n, struct http1_resp *r);

/* true when @v equals the NUL-terminated @s (case-sensitive). */
bool http1_view_is(struct http1_view v, const char *s);

/* The state of a chunked body being decoded; zero it before the first call. */
struct http1_chunked {
	int state;
	uint64_t left; /* bytes left in the current chunk, or its size being read */
	int digits;
};

/*
 * Decode the chunked body bytes in @buf (@n bytes), in place: the data of the chunks is moved to
 * the start of @buf and its length returned (>= 0). *@used is how many input bytes were taken:
 * all of them unless the body ended (*@done true), after which the rest belongs to the next
 * request. -EINVAL for malformed framing (a bad size, a missing CRLF, a size over 2^60).
 */
ssize_t http1_dechunk(struct http1_chunked *c, uint8_t *buf, size_t n, size_t *used, bool *done);

#endif
