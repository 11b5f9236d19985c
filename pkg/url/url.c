/* url: scheme://host[:port][/path] for http, https, ws and wss. */
#include "pkg/url/url.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_scheme(const char *s, struct url *u, const char **rest)
{
	static const struct {
		const char *name;
		bool tls;
		int port;
	} schemes[] = {
	        {"http", false, 80}, {"https", true, 443}, {"ws", false, 80}, {"wss", true, 443}};
	const char *sep = strstr(s, "://");
	size_t n = sep ? (size_t)(sep - s) : 0;

	for (size_t i = 0; sep && i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		if (strlen(schemes[i].name) == n && strncasecmp(s, schemes[i].name, n) == 0) {
			snprintf(u->scheme, sizeof(u->scheme), "%s", schemes[i].name);
			u->tls = schemes[i].tls;
			u->port = schemes[i].port;
			*rest = sep + 3;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_port(const char *s, size_t n, int *port)
{
	char buf[8];
	char *end;
	long v;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL; /* digits only (RFC 3986 section 3.2.3): no sign, no blanks
			                 */
	memcpy(buf, s, n);
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	if (*end || v < 1 || v > 65535)
		return -EINVAL;
	*port = (int)v;
	return 0;
}

/*
 * A host in brackets is an IPv6 literal (RFC 3986 section 3.2.2: hex digits, ':' and '.' of an
 * embedded IPv4; no zone ids); any other has no brackets, blanks or control characters.
 */
static bool host_ok(const char *h, bool bracketed)
{
	if (bracketed)
		return strchr(h, ':') && strspn(h, "0123456789abcdefABCDEF:.") == strlen(h);
	for (const char *c = h; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f || *c == '[' || *c == ']')
			return false;
	return true;
}

int url_parse(const char *s, struct url *u)
{
	const char *p, *auth_end, *host_end, *port_start = NULL;
	bool bracketed;
	size_t hlen;

	memset(u, 0, sizeof(*u));
	if (parse_scheme(s, u, &p))
		return -EINVAL;
	auth_end = p + strcspn(p, "/?#");
	bracketed = *p == '[';
	if (bracketed) {
		host_end = memchr(p, ']', (size_t)(auth_end - p));
		if (!host_end)
			return -EINVAL;
		p++;
		if (host_end + 1 < auth_end) {
			if (host_end[1] != ':')
				return -EINVAL;
			port_start = host_end + 2;
		}
	} else {
		host_end = memchr(p, ':', (size_t)(auth_end - p));
		if (host_end)
			port_start = host_end + 1;
		else
			host_end = auth_end;
	}
	hlen = (size_t)(host_end - p);
	if (hlen == 0 || hlen >= sizeof(u->host) || memchr(p, '@', hlen))
		return -EINVAL;
	memcpy(u->host, p, hlen);
	if (port_start && parse_port(port_start, (size_t)(auth_end - port_start), &u->port))
		return -EINVAL;
	if (strcspn(auth_end, "#") + (*auth_end == '/' ? 0 : 1) + 1 > sizeof(u->path))
		return -EINVAL; /* the fragment is dropped, so it does not count */
	snprintf(u->path, sizeof(u->path), "%s%s", *auth_end == '/' ? "" : "/", auth_end);
	if (strchr(u->path, '#'))
		*strchr(u->path, '#') = '\0';
	return host_ok(u->host, bracketed) ? 0 : -EINVAL;
}

int url_topic_of(const char *access_url, char *out, size_t len)
{
	const char *slash = strrchr(access_url, '/');

	if (!slash || !slash[1] || strchr(slash, '?') || strlen(slash + 1) >= len)
		return -EINVAL;
	snprintf(out, len, "%s", slash + 1);
	return 0;
}
