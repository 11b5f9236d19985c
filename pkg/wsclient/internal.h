/*
 * wsclient internals: the requests, the checks of the answers and TLS names, which the client on
 * libuv (uv.c) uses and wsclient.c holds beside the TLS contexts.
 */
#ifndef RELAY_WSCLIENT_INTERNAL_H
#define RELAY_WSCLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "pkg/http1/http1.h"
#include "pkg/url/url.h"
#include "pkg/wsclient/wsclient.h"

/* false when @token holds control characters (they would end the header). */
bool wsc__token_ok(const char *token);
/* The access POST and the websocket upgrade for @u, as new strings; their length or -1. */
int wsc__post_request(char **out, const struct url *u, const char *token);
int wsc__upgrade_request(char **out, const struct url *u, const char *key);
/* A random Sec-WebSocket-Key, and whether @got is the accept value for it. */
void wsc__ws_key(char key[32]);
bool wsc__accept_matches(const char *key, struct http1_view got);
/* SNI (not for IP literals) and the name the certificate must carry, on a new @ssl. */
void wsc__tls_names(SSL *ssl, SSL_CTX *tls, const char *host);
/* Why a handshake failed, into @why: the certificate check's reason when that was it. */
void wsc__tls_failure(SSL *ssl, const struct url *u, char why[WSC_WHY]);
/* The "uri" of an access answer (0 or -EPROTO); the "message" of an error body, or the body. */
int wsc__uri_of(const char *body, char *uri, size_t len);
void wsc__error_message(const char *body, char *out, size_t len);

#endif
