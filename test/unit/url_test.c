/*
 * url_test: pkg/url against its contract (pkg/url/url.h). Default ports and the tls flag for
 * http, https, ws and wss; explicit ports; IPv6 literals; path and query kept, fragment dropped;
 * case-insensitive schemes; and the -EINVAL refusals (other schemes, missing or empty parts,
 * bad ports, userinfo, unterminated brackets, spaces, and hosts or paths that do not fit).
 */
#include "pkg/url/url.h"
#include "test/harness.h"

#include <errno.h>

/* ---- helpers ---- */

/* Parse @s and check every field of the result. */
static void check_url(const char *s, const char *scheme, const char *host, int port,
                      const char *path, bool tls)
{
	struct url u;
	int r;

	memset(&u, 0x5a, sizeof(u));
	r = url_parse(s, &u);
	if (r != 0) {
		fprintf(stderr, "url_parse(\"%s\") = %d\n", s, r);
		CHECK_EQ(r, 0);
		return;
	}
	CHECK_STR(u.scheme, scheme);
	CHECK_STR(u.host, host);
	CHECK_EQ(u.port, port);
	CHECK_STR(u.path, path);
	CHECK_EQ(u.tls, tls);
}

static void check_refused(const char *s)
{
	struct url u;
	int r = url_parse(s, &u);

	if (r != -EINVAL)
		fprintf(stderr, "url_parse(\"%.80s\") = %d, want -EINVAL\n", s, r);
	CHECK_EQ(r, -EINVAL);
}

/* @prefix + @n copies of @c + @tail, in @buf of @size bytes. */
static const char *make_long(char *buf, size_t size, const char *prefix, char c, size_t n,
                             const char *tail)
{
	size_t off = strlen(prefix);

	if (off + n + strlen(tail) + 1 > size) {
		CHECK(!"make_long: buffer too small");
		buf[0] = '\0';
		return buf;
	}
	memcpy(buf, prefix, off);
	memset(buf + off, c, n);
	memcpy(buf + off + n, tail, strlen(tail) + 1);
	return buf;
}

/* ---- tests ---- */

static void test_default_ports(void)
{
	check_url("http://example.com", "http", "example.com", 80, "/", false);
	check_url("https://example.com", "https", "example.com", 443, "/", true);
	check_url("ws://example.com", "ws", "example.com", 80, "/", false);
	check_url("wss://example.com", "wss", "example.com", 443, "/", true);
	check_url("wss://relay.example/session/t", "wss", "relay.example", 443, "/session/t", true);
	check_url("http://127.0.0.1/", "http", "127.0.0.1", 80, "/", false);
}

static void test_explicit_ports(void)
{
	check_url("http://localhost:8080/", "http", "localhost", 8080, "/", false);
	check_url("https://localhost:8443/x", "https", "localhost", 8443, "/x", true);
	check_url("ws://h:1", "ws", "h", 1, "/", false);
	check_url("wss://h:65535/", "wss", "h", 65535, "/", true);
	/* the port does not change the tls flag */
	check_url("http://h:443/", "http", "h", 443, "/", false);
	check_url("wss://h:80/", "wss", "h", 80, "/", true);
}

static void test_ipv6(void)
{
	check_url("wss://[::1]:8443/session/t", "wss", "::1", 8443, "/session/t", true);
	check_url("https://[::1]:8443", "https", "::1", 8443, "/", true);
	check_url("http://[::1]/", "http", "::1", 80, "/", false);
	check_url("ws://[2001:db8::1]", "ws", "2001:db8::1", 80, "/", false);
	check_url("ws://[fe80::1]:9000?x=1", "ws", "fe80::1", 9000, "/?x=1", false);
}

static void test_path_and_query(void)
{
	check_url("https://relay.example/session/t?code=abc", "https", "relay.example", 443,
	          "/session/t?code=abc", true);
	check_url("wss://h:1?x=1", "wss", "h", 1, "/?x=1", true);
	check_url("wss://h?x=1&y=2", "wss", "h", 443, "/?x=1&y=2", true);
	check_url("http://h/a/b/c/", "http", "h", 80, "/a/b/c/", false);
	check_url("http://h/a:b@c", "http", "h", 80, "/a:b@c", false);
	check_url("http://h/?u=ws://x:1/y", "http", "h", 80, "/?u=ws://x:1/y", false);
}

static void test_no_path(void)
{
	check_url("http://h", "http", "h", 80, "/", false);
	check_url("http://h:81", "http", "h", 81, "/", false);
	check_url("http://h/", "http", "h", 80, "/", false);
}

static void test_fragment_dropped(void)
{
	check_url("https://h/a#frag", "https", "h", 443, "/a", true);
	check_url("https://h/a?q=1#frag", "https", "h", 443, "/a?q=1", true);
	check_url("https://h#frag", "https", "h", 443, "/", true);
	check_url("https://h:444#frag", "https", "h", 444, "/", true);
	check_url("https://h/#", "https", "h", 443, "/", true);
}

static void test_scheme_case(void)
{
	check_url("HTTP://h/", "http", "h", 80, "/", false);
	check_url("HtTpS://h/", "https", "h", 443, "/", true);
	check_url("WS://h/", "ws", "h", 80, "/", false);
	check_url("WsS://h/", "wss", "h", 443, "/", true);
}

static void test_refuse_scheme(void)
{
	check_refused("ftp://h/");
	check_refused("file:///etc/passwd");
	check_refused("httpx://h/");
	check_refused("htt://h/");
	check_refused("wsss://h/");
	check_refused("://h/");
	check_refused("h/");
	check_refused("h:80/x");
	check_refused("//h/");
	check_refused("http:/h/");
	check_refused("http:h");
	check_refused("");
	check_refused(" http://h/");
}

static void test_refuse_empty_host(void)
{
	check_refused("http://");
	check_refused("http:///path");
	check_refused("http://:80/");
	check_refused("http://?x=1");
	check_refused("http://#f");
	check_refused("http://[]/");
	check_refused("http://[]:80/");
}

static void test_refuse_port(void)
{
	check_refused("http://h:0/");
	check_refused("http://h:65536/");
	check_refused("http://h:99999/");
	check_refused("http://h:abc/");
	check_refused("http://h:80abc/");
	check_refused("http://h:/");
	check_refused("http://h:");
	check_refused("http://h:?x=1");
	check_refused("http://h:-1/");
	check_refused("http://h:80:81/");
	check_refused("http://h:123456789012/");
	check_refused("http://[::1]:/");
	check_refused("http://[::1]:0/");
	check_refused("http://[::1]x/");
	check_refused("http://[::1]x80/");
	/* a port is digits only (RFC 3986 section 3.2.3) */
	check_refused("http://h:+80/");
	check_refused("http://h: 80/");
}

static void test_refuse_userinfo(void)
{
	check_refused("http://user@host/");
	check_refused("https://user:pass@host/");
	check_refused("wss://user@host:443/");
	check_refused("ws://@host/");
}

static void test_refuse_brackets(void)
{
	check_refused("http://[::1");
	check_refused("http://[::1/x]");
	check_refused("http://[::1:80/");
	/* found by fuzz_url: brackets hold an IPv6 literal, and nothing else holds brackets */
	check_refused("wss://[[[[[[[]");
	check_refused("http://[example.org]/");
	check_refused("http://[]/");
	check_refused("http://a[b]/");
	check_refused("http://ab]:80/");
	check_url("http://[::ffff:192.0.2.1]:81/", "http", "::ffff:192.0.2.1", 81, "/", false);
}

static void test_refuse_spaces(void)
{
	check_refused("http://a b/");
	check_refused("http://a b");
	check_refused("http:// h/");
	check_refused("http://h /");
	check_refused("http://a\tb/");
	check_refused("http://[::1 ]/");
	check_refused("http://a\x01b/");
	check_refused("http://a\x7f/");
}

static void test_host_length(void)
{
	char buf[600];
	struct url u;

	/* 255 characters fit in host[256] */
	CHECK_EQ(url_parse(make_long(buf, sizeof(buf), "http://", 'a', 255, "/x"), &u), 0);
	CHECK_EQ(strlen(u.host), 255);
	CHECK_STR(u.path, "/x");
	CHECK_EQ(url_parse(make_long(buf, sizeof(buf), "http://", 'a', 255, ":81"), &u), 0);
	CHECK_EQ(strlen(u.host), 255);
	CHECK_EQ(u.port, 81);
	check_refused(make_long(buf, sizeof(buf), "http://", 'a', 256, "/x"));
	check_refused(make_long(buf, sizeof(buf), "http://", 'a', 256, ""));
	check_refused(make_long(buf, sizeof(buf), "wss://", 'a', 256, ":443"));
	check_refused(make_long(buf, sizeof(buf), "wss://[", 'a', 256, "]:443"));
	check_refused(make_long(buf, sizeof(buf), "wss://", 'a', 500, ""));
}

/* path[2048] holds a path (with its query) of 2047 characters and the NUL. */
static void test_path_length(void)
{
	char buf[4200];
	struct url u;

	CHECK_EQ(url_parse(make_long(buf, sizeof(buf), "https://h/", 'p', 2045, "?"), &u), 0);
	CHECK_EQ(strlen(u.path), 2047);
	CHECK_EQ(url_parse(make_long(buf, sizeof(buf), "https://h:1/", 'p', 2046, ""), &u), 0);
	CHECK_EQ(strlen(u.path), 2047);
	CHECK_EQ(u.path[2046], 'p');
	/* a query without a path gets a "/" in front: 1 + 2046 characters */
	CHECK_EQ(url_parse(make_long(buf, sizeof(buf), "https://h?", 'q', 2045, ""), &u), 0);
	CHECK_EQ(strlen(u.path), 2047);
	CHECK_EQ(u.path[0], '/');
	CHECK_EQ(u.path[1], '?');
	/* one more does not fit */
	check_refused(make_long(buf, sizeof(buf), "https://h/", 'p', 2047, ""));
	check_refused(make_long(buf, sizeof(buf), "https://h:1/", 'p', 2047, ""));
	check_refused(make_long(buf, sizeof(buf), "https://h?", 'q', 2046, ""));
	check_refused(make_long(buf, sizeof(buf), "https://h/", 'p', 4000, ""));
}

/* A refused URL may leave @u half-filled, but a later good parse starts clean. */
static void test_reuse(void)
{
	struct url u;

	CHECK_EQ(url_parse("https://[::1]:8443/long/path?q=1", &u), 0);
	CHECK_EQ(url_parse("ws://h", &u), 0);
	CHECK_STR(u.scheme, "ws");
	CHECK_STR(u.host, "h");
	CHECK_EQ(u.port, 80);
	CHECK_STR(u.path, "/");
	CHECK_EQ(u.tls, false);
}

int main(void)
{
	RUN(test_default_ports());
	RUN(test_explicit_ports());
	RUN(test_ipv6());
	RUN(test_path_and_query());
	RUN(test_no_path());
	RUN(test_fragment_dropped());
	RUN(test_scheme_case());
	RUN(test_refuse_scheme());
	RUN(test_refuse_empty_host());
	RUN(test_refuse_port());
	RUN(test_refuse_userinfo());
	RUN(test_refuse_brackets());
	RUN(test_refuse_spaces());
	RUN(test_host_length());
	RUN(test_path_length());
	RUN(test_reuse());
	return harness_done();
}
