/*
 * url: split the URLs relay's clients use (http, https, ws, wss) into host, port and path.
 * No DNS here: the client resolves (IP literals and names from /etc/hosts both work).
 */
#ifndef RELAY_URL_H
#define RELAY_URL_H

#include <stdbool.h>
#include <stddef.h>

struct url {
	char scheme[8];  /* lowercase: http, https, ws, wss */
	char host[256];  /* without brackets for IPv6 */
	int port;        /* explicit, or 80/443 by scheme */
	char path[2048]; /* path and query, at least "/" */
	bool tls;        /* https or wss */
};

/* Parse @s; 0, or -EINVAL when the scheme is not one of the four or a part does not fit. */
int url_parse(const char *s, struct url *u);

/* The topic of an access URL (its last path segment, no query), copied to @out; 0 or -EINVAL. */
int url_topic_of(const char *access_url, char *out, size_t len);

#endif
