/*
 * relay_static_test: which page paths relay/static.c (included to reach safe_path) agrees to open
 * under --web-dir. ".." at every level, "." segments, empty segments, backslashes, percent forms
 * (lws decodes %XX before, so "%2e" here is a literal that came double-encoded), characters
 * outside [A-Za-z0-9._-]; and the ordinary pages still open.
 */
#include "relay/static.c"
#include "test/harness.h"

struct server relay_srv;

int relay_add_connection_close(struct lws *wsi, unsigned char **p, unsigned char *end)
{
	(void)wsi, (void)p, (void)end;
	return 0;
}

static void test_ordinary_pages(void)
{
	static const char *const good[] = {
	        "/dashboard/",
	        "/dashboard/index.html",
	        "/dashboard/app.js",
	        "/demo/",
	        "/demo/lib/jsmpeg.min.js",
	        "/demo/a-b_c.d/e.css",
	        "/dashboard/.well-known", /* dot files are names, not steps */
	        "/dashboard/...",
	        "/dashboard/..x",
	        "/dashboard/x..",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK(safe_path(good[i]));
		if (!safe_path(good[i]))
			fprintf(stderr, "  refused: %s\n", good[i]);
	}
}

static void test_traversal(void)
{
	static const char *const bad[] = {
	        "/..",
	        "/../etc/passwd",
	        "/dashboard/..",
	        "/dashboard/../",
	        "/dashboard/../../etc/passwd",
	        "/dashboard/a/../../../etc/passwd",
	        "/dashboard/a/b/c/../../../../..",
	        "/demo/x/..",
	        "/demo/x/../y",
	        "/dashboard/.",
	        "/dashboard/./x",
	        "/./dashboard/",
	        "/dashboard//x",
	        "//etc/passwd",
	        "/dashboard/%2e%2e/%2e%2e/etc/passwd", /* double-encoded: literal %2e */
	        "/dashboard/%2E%2E/x",
	        "/dashboard/..%2f..%2fetc",
	        "/dashboard/%2f",
	        "/dashboard/..\\..\\etc\\passwd",
	        "/dashboard\\..\\x",
	        "/dashboard/a\\b",
	        "/dashboard/x?y",
	        "/dashboard/x y",
	        "/dashboard/\xc0\xae\xc0\xae/x", /* overlong '.' forms */
	        "dashboard/x",
	        "",
	        "/dashboard/x\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(!safe_path(bad[i]));
		if (safe_path(bad[i]))
			fprintf(stderr, "  allowed: %s\n", bad[i]);
	}
}

/* ".." as every segment of paths up to 6 deep: refused wherever it stands. */
static void test_dotdot_everywhere(void)
{
	const char *seg[] = {"dashboard", "a", "b", "c", "d", "e"};
	char path[128];

	for (int depth = 1; depth <= 6; depth++)
		for (int at = 0; at < depth; at++) {
			size_t n = 0;

			for (int i = 0; i < depth; i++)
				n += (size_t)snprintf(path + n, sizeof(path) - n, "/%s",
				                      i == at ? ".." : seg[i]);
			CHECK(!safe_path(path));
			snprintf(path + n, sizeof(path) - n, "/");
			CHECK(!safe_path(path));
		}
}

int main(void)
{
	RUN(test_ordinary_pages());
	RUN(test_traversal());
	RUN(test_dotdot_everywhere());
	return harness_done();
}
