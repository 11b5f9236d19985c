/*
 * wsclient: TLS contexts, the requests and answer checks the uv client (uv.c) uses, and a
 * websocket handed over by it (wsc_uv_detach()): non-blocking sends and receives, frames read
 * with pkg/wsframe. Connecting is uv.c's alone (through pkg/dial).
 */
#include "pkg/wsclient/wsclient.h"
#include "pkg/wsclient/internal.h"
#include "pkg/buf/buf.h"
#include "pkg/http1/http1.h"
#include "pkg/wsframe/wsframe.h"
#include "pkg/url/url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

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

int wsc_topic_of(const char *access_url, char *out, size_t len)
{
	return url_topic_of(access_url, out, len);
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
