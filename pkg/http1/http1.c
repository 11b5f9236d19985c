/*
 * http1: request and response heads and chunked bodies (RFC 9112 sections 3, 4, 5, 6 and 7.1). Lines end in
 * CRLF; a bare LF is accepted as the RFC allows for robustness.
 */
#include "pkg/http1/http1.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

bool http1_view_is(struct http1_view v, const char *s)
{
	return v.len == strlen(s) && memcmp(v.p, s, v.len) == 0;
}

static bool view_is_nocase(struct http1_view v, const char *s)
{
	return v.len == strlen(s) && strncasecmp(v.p, s, v.len) == 0;
}

/* true when the comma-separated list @v holds the token @tok (case-insensitive). */
static bool list_has(struct http1_view v, const char *tok)
{
	size_t i = 0;

	while (i < v.len) {
		size_t start, end;

		while (i < v.len && (v.p[i] == ' ' || v.p[i] == '\t' || v.p[i] == ','))
			i++;
		start = i;
		while (i < v.len && v.p[i] != ',')
			i++;
		end = i;
		while (end > start && (v.p[end - 1] == ' ' || v.p[end - 1] == '\t'))
			end--;
		if (end > start &&
		    view_is_nocase((struct http1_view){v.p + start, end - start}, tok))
			return true;
	}
	return false;
}

/* The next line of @p[*off..n) without its line end; false when there is no line end yet. */
static bool next_line(const uint8_t *p, size_t n, size_t *off, struct http1_view *line)
{
	const uint8_t *lf = n > *off ? memchr(p + *off, '\n', n - *off) : NULL;
	size_t len;

	if (!lf)
		return false; /* also for an empty (possibly NULL) buffer */
	len = (size_t)(lf - (p + *off));
	line->p = (const char *)p + *off;
	line->len = len && line->p[len - 1] == '\r' ? len - 1 : len;
	*off += len + 1;
	return true;
}

static bool is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* "METHOD SP target SP HTTP/1.x" */
static int parse_request_line(struct http1_view l, struct http1_req *r)
{
	const char *sp1 = memchr(l.p, ' ', l.len), *sp2, *q;
	const char *end = l.p + l.len;

	if (!sp1 || sp1 == l.p)
		return -EINVAL;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1 || sp1[1] != '/')
		return -EINVAL;
	for (const char *c = l.p; c < sp1; c++)
		if (!is_tchar(*c))
			return -EINVAL;
	for (const char *c = sp1 + 1; c < sp2; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return -EINVAL;
	if ((size_t)(end - sp2 - 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return -EINVAL;
	if (sp2[8] != '0' && sp2[8] != '1')
		return -ENOTSUP;
	r->close = sp2[8] == '0'; /* HTTP/1.0 closes unless it asks to keep alive */
	r->method = (struct http1_view){l.p, (size_t)(sp1 - l.p)};
	q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
	r->path = (struct http1_view){sp1 + 1, (size_t)((q ? q : sp2) - sp1 - 1)};
	r->query =
	        q ? (struct http1_view){q + 1, (size_t)(sp2 - q - 1)} : (struct http1_view){sp2, 0};
	return 0;
}

static int parse_length(struct http1_view v, int64_t *out)
{
	int64_t n = 0;

	if (!v.len || v.len > 18)
		return -EINVAL;
	for (size_t i = 0; i < v.len; i++) {
		if (v.p[i] < '0' || v.p[i] > '9')
			return -EINVAL;
		n = n * 10 + (v.p[i] - '0');
	}
	if (*out >= 0 && *out != n)
		return -EINVAL;
	*out = n;
	return 0;
}

/* Split "name: value" into views, the value without surrounding blanks (RFC 9112 section 5). */
static int split_header(struct http1_view l, struct http1_view *name, struct http1_view *v)
{
	const char *colon = memchr(l.p, ':', l.len);

	if (!colon || colon == l.p)
		return -EINVAL;
	for (const char *c = l.p; c < colon; c++)
		if (!is_tchar(*c))
			return -EINVAL; /* also "Name :" (RFC 9112 section 5.1) */
	*name = (struct http1_view){l.p, (size_t)(colon - l.p)};
	v->p = colon + 1;
	v->len = (size_t)(l.p + l.len - v->p);
	while (v->len && (v->p[0] == ' ' || v->p[0] == '\t')) {
		v->p++;
		v->len--;
	}
	while (v->len && (v->p[v->len - 1] == ' ' || v->p[v->len - 1] == '\t'))
		v->len--;
	for (size_t i = 0; i < v->len; i++)
		if ((v->p[i] < ' ' && v->p[i] != '\t') || v->p[i] == 0x7f)
			return -EINVAL;
	return 0;
}

/* The header fields relay reads, of a request or a response. */
struct fields {
	int64_t content_length; /* -1 when absent */
	bool chunked, close, keep_alive, upgrade, websocket;
	struct http1_view ws_key, ws_version, ws_accept, content_type;
};

static int parse_field(struct http1_view l, struct fields *f)
{
	struct http1_view name, v;
	int ret = split_header(l, &name, &v);

	if (ret)
		return ret;
	if (view_is_nocase(name, "content-length"))
		return parse_length(v, &f->content_length);
	if (view_is_nocase(name, "transfer-encoding")) {
		if (!view_is_nocase(v, "chunked"))
			return -ENOTSUP;
		f->chunked = true;
	} else if (view_is_nocase(name, "connection")) {
		f->close |= list_has(v, "close");
		f->keep_alive |= list_has(v, "keep-alive");
		f->upgrade |= list_has(v, "upgrade");
	} else if (view_is_nocase(name, "upgrade")) {
		f->websocket = list_has(v, "websocket");
	} else if (view_is_nocase(name, "sec-websocket-key")) {
		f->ws_key = v;
	} else if (view_is_nocase(name, "sec-websocket-version")) {
		f->ws_version = v;
	} else if (view_is_nocase(name, "sec-websocket-accept")) {
		f->ws_accept = v;
	} else if (view_is_nocase(name, "content-type")) {
		f->content_type = v;
	}
	return 0;
}

/*
 * The header lines after the start line, up to the blank line (@off moves past it): 1 when
 * complete, 0 when not yet, or -errno. Both Content-Length and Transfer-Encoding is -EINVAL
 * (RFC 9112 section 6.3); websocket only with Connection: upgrade too.
 */
static int parse_fields(const uint8_t *p, size_t n, size_t *off, struct fields *f)
{
	struct http1_view line;

	*f = (struct fields){.content_length = -1};
	for (;;) {
		int ret;

		if (!next_line(p, n, off, &line))
			return 0;
		if (!line.len)
			break;
		ret = parse_field(line, f);
		if (ret)
			return ret;
	}
	if (f->chunked && f->content_length >= 0)
		return -EINVAL;
	f->websocket = f->websocket && f->upgrade;
	return 1;
}

int http1_parse_request(const uint8_t *p, size_t n, struct http1_req *r)
{
	struct http1_view line;
	struct fields f;
	size_t off = 0;
	bool http10;
	int ret;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	/* RFC 9112 section 2.2: ignore empty lines before the request line */
	while (off < n && (p[off] == '\r' || p[off] == '\n'))
		off++;
	if (!next_line(p, n, &off, &line))
		return 0;
	ret = parse_request_line(line, r);
	if (ret)
		return ret;
	http10 = r->close;
	ret = parse_fields(p, n, &off, &f);
	if (ret <= 0)
		return ret;
	r->content_length = f.content_length;
	r->chunked = f.chunked;
	r->close = (http10 || f.close) && !(http10 && f.keep_alive);
	r->websocket = f.websocket;
	r->ws_key = f.ws_key;
	r->ws_version = f.ws_version;
	r->content_type = f.content_type;
	return off > (size_t)INT32_MAX ? -EINVAL : (int)off;
}

/* ---- response heads ---- */

/* "HTTP/1.x SP 3DIGIT SP reason" (RFC 9112 section 4); the SP before an empty reason optional. */
static int parse_status_line(struct http1_view l, struct http1_resp *r)
{
	if (l.len < 12 || memcmp(l.p, "HTTP/1.", 7) != 0 || l.p[8] != ' ')
		return -EINVAL;
	if (l.p[7] != '0' && l.p[7] != '1')
		return -ENOTSUP;
	for (int i = 9; i < 12; i++)
		if (l.p[i] < '0' || l.p[i] > '9')
			return -EINVAL;
	if (l.p[9] == '0')
		return -EINVAL; /* 100-999 */
	if (l.len > 12 && l.p[12] != ' ')
		return -EINVAL;
	for (size_t i = 13; i < l.len; i++)
		if (((unsigned char)l.p[i] < ' ' && l.p[i] != '\t') || l.p[i] == 0x7f)
			return -EINVAL;
	r->status = (l.p[9] - '0') * 100 + (l.p[10] - '0') * 10 + (l.p[11] - '0');
	r->reason = l.len > 13 ? (struct http1_view){l.p + 13, l.len - 13}
	                       : (struct http1_view){l.p + l.len, 0};
	r->close = l.p[7] == '0';
	return 0;
}

int http1_parse_response(const uint8_t *p, size_t n, struct http1_resp *r)
{
	struct http1_view line;
	struct fields f;
	size_t off = 0;
	int ret;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	if (!next_line(p, n, &off, &line))
		return 0;
	ret = parse_status_line(line, r);
	if (ret)
		return ret;
	ret = parse_fields(p, n, &off, &f);
	if (ret <= 0)
		return ret;
	r->content_length = f.content_length;
	r->chunked = f.chunked;
	r->close |= f.close;
	r->websocket = f.websocket;
	r->ws_accept = f.ws_accept;
	r->content_type = f.content_type;
	return off > (size_t)INT32_MAX ? -EINVAL : (int)off;
}

/* ---- chunked bodies ---- */

enum {
	CH_SIZE,      /* hex digits of the chunk size */
	CH_EXT,       /* chunk extension, skipped up to the line end */
	CH_DATA,      /* chunk data */
	CH_DATA_END,  /* the CRLF after the data */
	CH_TRAILER,   /* start of a trailer line, or the final blank line */
	CH_TRAILER_X, /* inside a trailer line */
	CH_DONE,
};

static int hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The end of a line in the framing: CR is skipped, LF moves on. */
static int size_byte(struct http1_chunked *c, uint8_t b)
{
	int h = hex(b);

	if (c->state == CH_SIZE && h >= 0) {
		if (++c->digits > 15)
			return -EINVAL;
		c->left = c->left << 4 | (uint64_t)h;
		return 0;
	}
	if (c->state == CH_SIZE && !c->digits)
		return -EINVAL;
	if (b == '\n') {
		c->state = c->left ? CH_DATA : CH_TRAILER;
		return 0;
	}
	c->state = CH_EXT; /* ';' extensions, or the CR */
	return 0;
}

ssize_t http1_dechunk(struct http1_chunked *c, uint8_t *buf, size_t n, size_t *used, bool *done)
{
	size_t in = 0, out = 0;

	*done = c->state == CH_DONE;
	while (in < n && c->state != CH_DONE) {
		uint8_t b = buf[in];

		switch (c->state) {
		case CH_SIZE:
		case CH_EXT:
			if (size_byte(c, b))
				return -EINVAL;
			in++;
			break;
		case CH_DATA: {
			size_t k = n - in < c->left ? n - in : (size_t)c->left;

			memmove(buf + out, buf + in, k);
			out += k;
			in += k;
			c->left -= k;
			if (!c->left)
				c->state = CH_DATA_END;
			break;
		}
		case CH_DATA_END:
			in++;
			if (b == '\n') {
				c->state = CH_SIZE;
				c->digits = 0;
			} else if (b != '\r') {
				return -EINVAL;
			}
			break;
		case CH_TRAILER:
			in++;
			if (b == '\n')
				c->state = CH_DONE;
			else if (b != '\r')
				c->state = CH_TRAILER_X;
			break;
		case CH_TRAILER_X:
			in++;
			if (b == '\n')
				c->state = CH_TRAILER;
			break;
		}
	}
	*used = in;
	*done = c->state == CH_DONE;
	return (ssize_t)out;
}
