/*
 * wsclient: sockets, TLS, one HTTP/1.1 request and the RFC 6455 opening handshake (section 4.1)
 * for relay's clients. Blocking during setup (socket timeouts bound every step), non-blocking
 * afterwards.
 */
#include "pkg/wsclient/wsclient.h"
#include "pkg/wsclient/internal.h"
#include "pkg/buf/buf.h"
#include "pkg/http1/http1.h"
#include "pkg/wsframe/wsframe.h"
#include "pkg/url/url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define HEAD_MAX 16384

SSL_CTX *wsc_tls_new_ca(bool verify, const char *ca_file, char why[WSC_WHY])
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	unsigned long e;

	if (!ctx) {
		snprintf(why, WSC_WHY, "cannot create a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (!verify) {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		return ctx;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (!ca_file || !*ca_file) {
		SSL_CTX_set_default_verify_paths(ctx);
		return ctx;
	}
	/* only this file, as curl's --cacert: a private CA, or the relay's own certificate */
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		e = ERR_get_error();
		snprintf(why, WSC_WHY, "cannot load CA file '%.150s': %s", ca_file,
		         e ? ERR_reason_error_string(e) : "no certificates");
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* trust a certificate in the file even when it is not a self-signed root (pinning) */
	X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_PARTIAL_CHAIN);
	return ctx;
}

SSL_CTX *wsc_tls_new(bool verify)
{
	char why[WSC_WHY];

	return wsc_tls_new_ca(verify, NULL, why);
}

static void set_timeouts(int fd, int timeout_ms)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static int tcp_connect(const struct url *u, int timeout_ms, char why[WSC_WHY])
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	char port[8];
	int fd = -1, err, one = 1;

	snprintf(port, sizeof(port), "%d", u->port);
	err = getaddrinfo(u->host, port, &hints, &res);
	if (err) {
		snprintf(why, WSC_WHY, "cannot resolve '%.100s': %s", u->host, gai_strerror(err));
		return -EHOSTUNREACH;
	}
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			err = errno; /* e.g. out of descriptors: never fall through with fd 0 */
			continue;
		}
		set_timeouts(fd, timeout_ms);
		if (connect(fd, a->ai_addr, a->ai_addrlen)) {
			/* with SO_SNDTIMEO a connect that timed out says EINPROGRESS */
			err = errno == EINPROGRESS || errno == EAGAIN ? ETIMEDOUT : errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(why, WSC_WHY, "cannot connect to %.100s:%d: %s", u->host, u->port,
		         err == ETIMEDOUT ? "timed out" : strerror(err));
		return -err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* Check the peer's name: an IP literal against IP SANs, anything else as a DNS name. */
static void expect_host(SSL *ssl, const char *host)
{
	struct in6_addr a;

	if (inet_pton(AF_INET, host, &a) == 1 || inet_pton(AF_INET6, host, &a) == 1)
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
	else
		SSL_set1_host(ssl, host);
}

void wsc__tls_failure(SSL *ssl, const struct url *u, char why[WSC_WHY])
{
	unsigned long e = ERR_get_error();
	long v = SSL_get_verify_result(ssl);

	if (v != X509_V_OK)
		snprintf(why, WSC_WHY,
		         "TLS handshake with %.100s:%d failed: certificate not trusted: %s (see "
		         "--ca-file)",
		         u->host, u->port, X509_verify_cert_error_string(v));
	else
		snprintf(why, WSC_WHY, "TLS handshake with %.100s:%d failed: %s", u->host, u->port,
		         e ? ERR_reason_error_string(e) : "connection closed");
	ERR_clear_error();
}

void wsc__tls_names(SSL *ssl, SSL_CTX *tls, const char *host)
{
	struct in6_addr a;

	/* RFC 6066 section 3: no IP literals in SNI */
	if (inet_pton(AF_INET, host, &a) != 1 && inet_pton(AF_INET6, host, &a) != 1)
		SSL_set_tlsext_host_name(ssl, host);
	if (SSL_CTX_get_verify_mode(tls) & SSL_VERIFY_PEER)
		expect_host(ssl, host);
}

static int tls_start(struct wsc *c, const struct url *u, SSL_CTX *tls, char why[WSC_WHY])
{
	c->ssl = SSL_new(tls);
	if (!c->ssl || !SSL_set_fd(c->ssl, c->fd)) {
		snprintf(why, WSC_WHY, "out of memory");
		return -ENOMEM;
	}
	wsc__tls_names(c->ssl, tls, u->host);
	if (SSL_connect(c->ssl) != 1) {
		wsc__tls_failure(c->ssl, u, why);
		return -EPROTO;
	}
	return 0;
}

int wsc_open(struct wsc *c, const char *url, SSL_CTX *tls, int timeout_ms, char why[WSC_WHY])
{
	struct url u;
	int ret;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	if (url_parse(url, &u)) {
		snprintf(why, WSC_WHY, "invalid URL '%.200s'", url);
		return -EINVAL;
	}
	c->fd = tcp_connect(&u, timeout_ms, why);
	if (c->fd < 0)
		return c->fd;
	if (u.tls && (ret = tls_start(c, &u, tls, why))) {
		wsc_close(c);
		return ret;
	}
	return 0;
}

void wsc_close(struct wsc *c)
{
	if (c->ssl) {
		SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	buf_release(&c->in);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

int wsc_nonblock(struct wsc *c)
{
	int fl = fcntl(c->fd, F_GETFL);

	return fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) ? -errno : 0;
}

static ssize_t ssl_result(struct wsc *c, int n)
{
	int e = SSL_get_error(c->ssl, n);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return -EAGAIN;
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	ERR_clear_error();
	return e == SSL_ERROR_SYSCALL && errno ? -errno : -EPROTO;
}

ssize_t wsc_send(struct wsc *c, const void *p, size_t n)
{
	ssize_t r;

	if (c->ssl) {
		int k = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));

		return k > 0 ? k : ssl_result(c, k);
	}
	r = send(c->fd, p, n, MSG_NOSIGNAL);
	return r < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : r;
}

ssize_t wsc_recv(struct wsc *c, void *p, size_t n)
{
	ssize_t r;

	if (c->ssl) {
		int k = SSL_read(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));

		return k > 0 ? k : ssl_result(c, k);
	}
	r = recv(c->fd, p, n, 0);
	return r < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : r;
}

ssize_t wsc_fill(struct wsc *c, size_t max)
{
	struct buf *b = &c->in;
	size_t want;
	ssize_t r;
	int ret;

	/* the cap is the caller's (a head, a stream's largest message); what is held stays */
	b->max = max > b->cap ? max : b->cap;
	/* read 64 KiB at once when starting, then at least 4 KiB: fewer calls for a load generator */
	want = b->cap ? 4096 : 65536;
	if (want > buf_left(b))
		want = buf_left(b);
	if (!want)
		return -ENOBUFS;
	ret = buf_reserve(b, want);
	if (ret)
		return ret;
	r = wsc_recv(c, b->p + b->len, buf_room(b));
	if (r > 0)
		b->len += (size_t)r;
	return r;
}

void wsc_consume(struct wsc *c, size_t n)
{
	buf_consume(&c->in, n);
}

size_t wsc_buffered(const struct wsc *c)
{
	return c->in.len;
}

static int send_all(struct wsc *c, const char *p, size_t n)
{
	while (n) {
		ssize_t r = wsc_send(c, p, n);

		if (r <= 0)
			return r == 0 ? -EPIPE : (int)r;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * Read until the response head is complete and parse it into @r (views into c->in, valid until
 * c->in changes); returns the head's length (bytes after it stay in c->in) or -errno: -EPROTO for
 * a malformed head, -E2BIG past HEAD_MAX.
 */
static long read_head(struct wsc *c, struct http1_resp *r)
{
	for (;;) {
		int n = http1_parse_response(c->in.p, c->in.len, r);
		ssize_t got;

		if (n > 0)
			return n;
		if (n < 0)
			return -EPROTO;
		if (c->in.len >= HEAD_MAX)
			return -E2BIG;
		got = wsc_fill(c, HEAD_MAX + 65536);
		if (got <= 0)
			return got == 0 ? -ECONNRESET : got;
	}
}

/* The reason of a failed read_head() for @why. */
static const char *head_error(long err)
{
	return err == -EAGAIN   ? "timed out"
	       : err == -EPROTO ? "malformed HTTP answer"
	                        : strerror((int)-err);
}

/* Decode the chunked body at the start of c->in in place; its decoded length so far. */
static int dechunk_in(struct wsc *c, struct http1_chunked *ch, size_t *data, bool *done)
{
	size_t used;
	ssize_t k;

	if (c->in.len == *data)
		return 0; /* nothing new (and perhaps no buffer yet) */
	k = http1_dechunk(ch, c->in.p + *data, c->in.len - *data, &used, done);
	if (k < 0)
		return -EPROTO;
	/* the decoded bytes now sit at *data; drop the framing bytes after them */
	memmove(c->in.p + *data + k, c->in.p + *data + used, c->in.len - *data - used);
	c->in.len -= used - (size_t)k;
	*data += (size_t)k;
	return 0;
}

/*
 * Read the body after a response head into @body, NUL-terminated and cut to @len - 1 bytes:
 * Content-Length bytes, a chunked body, or what comes until the end of the stream (the request
 * said "Connection: close"). 0 or -EPROTO for a malformed chunked body.
 */
static int read_body(struct wsc *c, const struct http1_resp *r, char *body, size_t len)
{
	struct http1_chunked ch = {0};
	size_t want = len - 1, n = 0;
	bool done = false;

	if (r->content_length >= 0 && (uint64_t)r->content_length < want)
		want = (size_t)r->content_length;
	if (r->chunked) {
		for (;;) {
			if (dechunk_in(c, &ch, &n, &done))
				return -EPROTO;
			if (done || n >= want || wsc_fill(c, want + HEAD_MAX) <= 0)
				break;
		}
	} else {
		while (c->in.len < want && wsc_fill(c, want) > 0)
			;
		n = c->in.len;
	}
	n = n < want ? n : want;
	if (n)
		memcpy(body, c->in.p, n);
	body[n] = '\0';
	return 0;
}

bool wsc__token_ok(const char *token)
{
	for (const char *t = token; *t; t++)
		if ((unsigned char)*t < 0x20 || *t == 0x7f)
			return false; /* a CR or LF would end the header and start another */
	return true;
}

int wsc__post_request(char **out, const struct url *u, const char *token)
{
	return asprintf(out,
	                "POST %s HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: %s\r\nContent-Length: "
	                "0\r\nConnection: close\r\nUser-Agent: relay-file\r\n\r\n",
	                u->path, u->host, u->port, token);
}

int wsc__upgrade_request(char **out, const struct url *u, const char *key)
{
	return asprintf(out,
	                "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: "
	                "Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
	                "User-Agent: relay-file\r\n\r\n",
	                u->path, u->host, u->port, key);
}

int wsc_post(const char *access_url, const char *token, SSL_CTX *tls, int timeout_ms, char *body,
             size_t body_len, char why[WSC_WHY])
{
	struct http1_resp resp;
	struct wsc c;
	struct url u;
	char *req = NULL;
	long head;
	int ret, n;

	body[0] = '\0';
	if (url_parse(access_url, &u)) {
		snprintf(why, WSC_WHY, "invalid access URL '%.200s'", access_url);
		return -EINVAL;
	}
	if (!wsc__token_ok(token)) {
		snprintf(why, WSC_WHY, "the token holds control characters");
		return -EINVAL;
	}
	ret = wsc_open(&c, access_url, tls, timeout_ms, why);
	if (ret)
		return ret;
	n = wsc__post_request(&req, &u, token);
	ret = n < 0 ? -ENOMEM : send_all(&c, req, (size_t)n);
	if (n > 0)
		OPENSSL_cleanse(req, (size_t)n); /* it holds the token */
	free(req);
	head = ret ? ret : read_head(&c, &resp);
	if (head < 0) {
		snprintf(why, WSC_WHY, "no HTTP answer from %.100s:%d: %s", u.host, u.port,
		         head_error(head));
		head = head == -EAGAIN ? -ETIMEDOUT : head;
		wsc_close(&c);
		return (int)head;
	}
	wsc_consume(&c, (size_t)head);
	ret = read_body(&c, &resp, body, body_len) ? -EPROTO : resp.status;
	wsc_close(&c);
	if (ret < 0)
		snprintf(why, WSC_WHY, "malformed HTTP body from %.100s:%d", u.host, u.port);
	return ret;
}

void wsc__ws_key(char key[32])
{
	unsigned char raw[16];

	RAND_bytes(raw, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
}

bool wsc__accept_matches(const char *key, struct http1_view got)
{
	char want[WSFRAME_ACCEPT_LEN];

	wsframe_accept_key(key, strlen(key), want);
	return http1_view_is(got, want);
}

int wsc_ws_open(struct wsc *c, const char *uri, SSL_CTX *tls, int timeout_ms, int *status,
                char why[WSC_WHY])
{
	char key[32], *req = NULL;
	struct http1_resp resp;
	struct url u;
	long head;
	int ret, n;

	*status = 0;
	if (url_parse(uri, &u)) {
		snprintf(why, WSC_WHY, "invalid websocket uri '%.200s'", uri);
		return -EINVAL;
	}
	ret = wsc_open(c, uri, tls, timeout_ms, why);
	if (ret)
		return ret;
	wsc__ws_key(key);
	n = wsc__upgrade_request(&req, &u, key);
	ret = n < 0 ? -ENOMEM : send_all(c, req, (size_t)n);
	free(req);
	head = ret ? ret : read_head(c, &resp);
	if (head < 0) {
		snprintf(why, WSC_WHY, "no handshake answer from %.100s:%d: %s", u.host, u.port,
		         head_error(head));
		head = head == -EAGAIN ? -ETIMEDOUT : head;
		wsc_close(c);
		return (int)head;
	}
	*status = resp.status;
	if (resp.status != 101 || !resp.websocket || !wsc__accept_matches(key, resp.ws_accept)) {
		snprintf(why, WSC_WHY, "websocket refused: HTTP %d", resp.status);
		wsc_close(c);
		return -ECONNREFUSED;
	}
	wsc_consume(c, (size_t)head);
	return 0;
}

int wsc__uri_of(const char *body, char *uri, size_t len)
{
	json_t *o = json_loads(body, 0, NULL);
	const char *s = json_string_value(json_object_get(o, "uri"));
	int ret = s && strlen(s) < len ? 0 : -EPROTO;

	if (!ret)
		snprintf(uri, len, "%s", s);
	json_decref(o);
	return ret;
}

void wsc__error_message(const char *body, char *out, size_t len)
{
	json_t *o = json_loads(body, 0, NULL);
	const char *s = json_string_value(json_object_get(o, "message"));

	snprintf(out, len, "%.150s", s ? s : body);
	json_decref(o);
}

int wsc_join(struct wsc *c, const char *access_url, const char *token, SSL_CTX *tls, int timeout_ms,
             int *status, char why[WSC_WHY])
{
	char body[4096], uri[2048], msg[160];
	int ret;

	*status = wsc_post(access_url, token, tls, timeout_ms, body, sizeof(body), why);
	if (*status < 0)
		return *status;
	if (*status != 200) {
		wsc__error_message(body, msg, sizeof(msg));
		snprintf(why, WSC_WHY, "access refused: HTTP %d: %s", *status, msg);
		return -EACCES;
	}
	if (wsc__uri_of(body, uri, sizeof(uri))) {
		snprintf(why, WSC_WHY, "access answer has no uri");
		return -EPROTO;
	}
	ret = wsc_ws_open(c, uri, tls, timeout_ms, status, why);
	return ret ? ret : wsc_nonblock(c);
}

int wsc_topic_of(const char *access_url, char *out, size_t len)
{
	return url_topic_of(access_url, out, len);
}

int wsc_send_frame(struct wsc *c, uint8_t opcode, const void *data, size_t len, int timeout_ms)
{
	uint8_t mask[4], *frame = malloc(WSFRAME_MAX_HEADER + len);
	size_t h, off = 0;
	int ret = 0;

	if (!frame)
		return -ENOMEM;
	RAND_bytes(mask, sizeof(mask));
	h = wsframe_header(frame, opcode, true, len, mask);
	if (len)
		memcpy(frame + h, data, len);
	wsframe_mask(frame + h, len, mask, 0);
	while (off < h + len && !ret) {
		ssize_t r = wsc_send(c, frame + off, h + len - off);
		struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};

		if (r == -EAGAIN)
			ret = poll(&pfd, 1, timeout_ms) == 1 ? 0 : -ETIMEDOUT;
		else if (r <= 0)
			ret = r ? (int)r : -EPIPE;
		else
			off += (size_t)r;
	}
	free(frame);
	return ret;
}

/*
 * The callback stopped after the frames up to @off: drop them, so that the next call does not
 * hand them over again, unless the callback closed @c (wsc_close() leaves no buffer) or opened
 * it anew.
 */
static int stopped(struct wsc *c, const uint8_t *held, size_t off)
{
	if (c->fd >= 0 && c->in.p == held && c->in.len >= off)
		wsc_consume(c, off);
	return 1;
}

int wsc_read_frames(struct wsc *c, size_t max, wsc_frame_fn fn, void *arg)
{
	for (;;) {
		const uint8_t *held = c->in.p, *payload;
		struct ws_frame f;
		size_t off = 0;
		ssize_t r;
		int k;

		/* what is buffered first: frames can arrive with the handshake's answer */
		while ((k = wsframe_next(c->in.p, c->in.len, &off, &f, &payload)) > 0)
			if (!fn(arg, &f, payload))
				return stopped(c, held, off);
		if (k < 0)
			return -EPROTO;
		wsc_consume(c, off);
		r = wsc_fill(c, max);
		if (r == -EAGAIN)
			return 0;
		if (r <= 0)
			return r == 0 ? -ECONNRESET : (int)r;
	}
}
