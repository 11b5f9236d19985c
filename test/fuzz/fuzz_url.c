/*
 * fuzz_url: url_parse() and url_topic_of() on arbitrary strings. A parsed URL holds the
 * contract's forms (a known scheme with the matching tls flag, a non-empty host without blanks
 * or delimiters, a port in 1..65535, a path that starts with '/' and is the input's tail up to
 * the fragment); written back out as scheme://host:port/path it parses to the same fields. A
 * topic is a non-empty tail of the input, after a '/', without '/' or '?'.
 */
#include "pkg/url/url.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The path is the input's tail up to the fragment, with a "/" put in front when the tail has
 * none: never cut short. No '#' can come before the path (it ends the authority).
 */
static bool path_is_tail(const char *s, const char *path)
{
	size_t end = (size_t)(strchrnul(s, '#') - s), plen = strlen(path);

	if (plen <= end && memcmp(s + end - plen, path, plen) == 0)
		return true;
	return plen - 1 <= end && memcmp(s + end - (plen - 1), path + 1, plen - 1) == 0;
}

static void check_url(const char *s, const struct url *u)
{
	size_t hlen = strnlen(u->host, sizeof(u->host));

	if (hlen == 0 || hlen == sizeof(u->host) || strpbrk(u->host, " \t\r\n@/?#"))
		abort();
	if (u->port < 1 || u->port > 65535)
		abort();
	if (strnlen(u->path, sizeof(u->path)) == sizeof(u->path) || u->path[0] != '/' ||
	    strchr(u->path, '#') || !path_is_tail(s, u->path))
		abort();
	if (u->tls != (strcmp(u->scheme, "https") == 0 || strcmp(u->scheme, "wss") == 0))
		abort();
	if (!u->tls && strcmp(u->scheme, "http") != 0 && strcmp(u->scheme, "ws") != 0)
		abort();
}

/* Written back out, the URL parses to the same fields. */
static void check_round_trip(const struct url *u)
{
	static char again[sizeof(u->scheme) + sizeof(u->host) + sizeof(u->path) + 32];
	bool v6 = strchr(u->host, ':') != NULL;
	struct url v;

	snprintf(again, sizeof(again), "%s://%s%s%s:%d%s", u->scheme, v6 ? "[" : "", u->host,
	         v6 ? "]" : "", u->port, u->path);
	if (url_parse(again, &v) != 0 || strcmp(v.scheme, u->scheme) != 0 ||
	    strcmp(v.host, u->host) != 0 || v.port != u->port || strcmp(v.path, u->path) != 0 ||
	    v.tls != u->tls)
		abort();
}

static void fuzz_topic(const char *s)
{
	char topic[64];
	size_t n, len = strlen(s);

	if (url_topic_of(s, topic, sizeof(topic)) != 0)
		return;
	n = strlen(topic);
	if (n == 0 || n >= sizeof(topic) || strpbrk(topic, "/?") || n >= len ||
	    memcmp(s + len - n, topic, n) != 0 || s[len - n - 1] != '/')
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	struct url u;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (url_parse(s, &u) == 0) {
		check_url(s, &u);
		check_round_trip(&u);
	}
	fuzz_topic(s);
	free(s);
	return 0;
}
