/*
 * file/connect: `relay connect`, the client end of a private channel (docs/connect.md). Joins
 * stdin and stdout to one channel (ssh's ProxyCommand), or accepts local TCP connections
 * (--listen), each becoming its own channel. The bytes go through pkg/wsclient/bridge.
 */
#ifndef RELAY_FILE_CONNECT_H
#define RELAY_FILE_CONNECT_H

#include <stdbool.h>
#include <stdint.h>

struct connect_opts {
	char *session;     /* access URL: https://HOST/connect/HOSTID */
	char *token;       /* the token itself (environment only) */
	char *token_file;  /* or a file holding it */
	char *secret_file; /* or mint HS256 tokens (scope client) with this secret... */
	char *audience;    /* ...for this audience (default: the URL's origin) */
	char *listen;      /* "" (stdin/stdout) or HOST:PORT to accept TCP connections on */
	char *ca_file;     /* trust this PEM file instead of the system's CAs */
	bool insecure;     /* do not verify the TLS certificate */
	int64_t timeout;   /* ms per connection step */
	char *log_level;   /* pkg/log; stderr */
};

/* Run until the channel ends (stdin/stdout) or a signal (--listen). The exit status: 0 when the
 * channel ended cleanly (1000) or on a signal, 1 when refused, unreachable or closed otherwise,
 * 2 for bad settings. */
int file_connect(const struct connect_opts *o);

#endif
