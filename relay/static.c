/*
 * relay/static: the pages under <web_dir> (/dashboard/, /demo/), served by relay itself in
 * 16 KiB pieces, one per HTTP_WRITEABLE. (lws 4.1's own file mounts send HTTP/2 DATA frames as
 * large as its read buffer, which relay enlarges for throughput, and browsers reset the stream
 * with FRAME_SIZE_ERROR.) Files are small and local: their reads stay on the loop.
 */
#define LOG_MODULE "static"
#include "relay/internal.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PIECE    16384 /* the HTTP/2 default SETTINGS_MAX_FRAME_SIZE */
#define FILE_MAX (8 * 1024 * 1024)

static const char *content_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {{".html", "text/html; charset=utf-8"},
	             {".js", "text/javascript; charset=utf-8"},
	             {".css", "text/css; charset=utf-8"},
	             {".png", "image/png"},
	             {".svg", "image/svg+xml"},
	             {".json", "application/json"}};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(dot, types[i].ext) == 0)
			return types[i].type;
	return "text/plain; charset=utf-8";
}

bool relay_is_static(const char *path)
{
	return strncmp(path, "/dashboard", 10) == 0 || strncmp(path, "/demo", 5) == 0;
}

/*
 * Path segments of [A-Za-z0-9._-], each after one '/', none "." or ".." and none empty but the
 * last (a directory: its index.html). lws has decoded %XX and folded "/../" before; this does
 * not rely on it: "%", "\\", "//", "/./", "/../" and a final "/." or "/.." are refused whatever
 * made them.
 */
static bool safe_path(const char *p)
{
	static const char ok[] =
	        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";

	if (*p != '/')
		return false;
	while (*p == '/') {
		const char *seg = ++p;
		size_t n = strspn(seg, ok);

		p += n;
		if (*p && *p != '/')
			return false;
		if ((n == 0 && *p) || (n == 1 && seg[0] == '.') ||
		    (n == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
	}
	return true;
}

static int headers(struct lws *wsi, int status, const char *type, size_t len, const char *location)
{
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
	                                   *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, (unsigned int)status, type, len, &p, end) ||
	    relay_add_connection_close(wsi, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
	                                (const unsigned char *)"no-cache", 8, &p, end) ||
	    (location && lws_add_http_header_by_name(wsi, (const unsigned char *)"location:",
	                                             (const unsigned char *)location,
	                                             (int)strlen(location), &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

int relay_static_start(struct lws *wsi, struct conn *c, const char *path)
{
	char file[PATH_MAX], loc[64];
	struct stat st;
	int fd;

	if (strcmp(path, "/dashboard") == 0 || strcmp(path, "/demo") == 0) {
		snprintf(loc, sizeof(loc), "%s/", path); /* relative links need the slash */
		c->responded = true;
		c->file_fd = -1;
		if (headers(wsi, 301, "text/plain", 0, loc))
			return -1;
		lws_callback_on_writable(wsi);
		return 0;
	}
	if (!safe_path(path))
		return -ENOENT;
	snprintf(file, sizeof(file), "%s%s%s", relay_srv.o->web_dir, path,
	         path[strlen(path) - 1] == '/' ? "index.html" : "");
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > FILE_MAX) {
		close(fd);
		return -ENOENT;
	}
	c->file_fd = fd;
	c->file_left = (size_t)st.st_size;
	c->responded = true;
	if (headers(wsi, 200, content_type(file), c->file_left, NULL)) {
		relay_static_close(c); /* not a file transfer after all: nobody else closes it */
		return -1;
	}
	lws_callback_on_writable(wsi);
	return 0;
}

/* One piece per writable. Returns 1 while more is to come, 0 at the end, -1 on error. */
int relay_static_write(struct lws *wsi, struct conn *c)
{
	unsigned char buf[LWS_PRE + PIECE];
	size_t want = c->file_left < PIECE ? c->file_left : PIECE;
	ssize_t n = 0;

	if (c->file_fd >= 0 && want)
		n = read(c->file_fd, buf + LWS_PRE, want);
	if (n < 0 || (size_t)n != want) {
		log_err("cannot read a static file: %s", n < 0 ? strerror(errno) : "it shrank");
		return -1;
	}
	c->file_left -= want;
	if (lws_write(wsi, buf + LWS_PRE, want,
	              c->file_left ? LWS_WRITE_HTTP : LWS_WRITE_HTTP_FINAL) < (int)want)
		return -1;
	if (c->file_left) {
		lws_callback_on_writable(wsi);
		return 1;
	}
	relay_static_close(c);
	return 0;
}

void relay_static_close(struct conn *c)
{
	if (c->file_fd >= 0) /* set by relay_static_start() before is_file, -1 when none */
		close(c->file_fd);
	c->file_fd = -1;
	c->file_left = 0;
}
