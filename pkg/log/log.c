/*
 * log: formats one line into a bounded stack buffer and writes it with a single write(2),
 * so lines from several threads never interleave. Long messages are cut, not split.
 */
#include "pkg/log/log.h"
#include "pkg/utf8/utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048

/* Lock-free, so that log_request_reopen() stays async-signal-safe (relay serve's SIGHUP
 * handler) as well as safe across threads (relay host's main thread sets it while stream
 * threads log). volatile sig_atomic_t was only the former. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "log needs a lock-free atomic_int");

atomic_int log__level = LOG_LEVEL_INFO;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int sink_fd = STDERR_FILENO; /* guarded by lock */
static char sink_path[4096];        /* guarded by lock; empty for stderr */
static bool json_lines;             /* guarded by lock */
static atomic_int reopen_wanted;    /* set by any thread or signal handler, taken under lock */

static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (name && strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

static int open_sink(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	return fd < 0 ? -errno : fd;
}

int log_init(const char *level, const char *format, const char *path)
{
	int lvl = log_level_parse(level ? level : "info");
	bool json;
	int fd = STDERR_FILENO;

	if (lvl < 0)
		return -EINVAL;
	if (!format || strcmp(format, "text") == 0)
		json = false;
	else if (strcmp(format, "json") == 0)
		json = true;
	else
		return -EINVAL;
	if (path && *path && strcmp(path, "-") != 0) {
		if (strlen(path) >= sizeof(sink_path))
			return -ENAMETOOLONG;
		fd = open_sink(path);
		if (fd < 0)
			return fd;
	}

	pthread_mutex_lock(&lock);
	if (sink_fd != STDERR_FILENO)
		close(sink_fd);
	sink_fd = fd;
	if (fd == STDERR_FILENO)
		sink_path[0] = '\0';
	else
		snprintf(sink_path, sizeof(sink_path), "%s", path);
	json_lines = json;
	atomic_store_explicit(&log__level, lvl, memory_order_relaxed);
	pthread_mutex_unlock(&lock);
	return 0;
}

void log_request_reopen(void)
{
	atomic_store_explicit(&reopen_wanted, 1, memory_order_relaxed);
}

void log_close(void)
{
	pthread_mutex_lock(&lock);
	if (sink_fd != STDERR_FILENO)
		close(sink_fd);
	sink_fd = STDERR_FILENO;
	sink_path[0] = '\0';
	pthread_mutex_unlock(&lock);
}

/* Called with lock held. On failure the old file stays in use. */
static void reopen_locked(void)
{
	int fd;

	if (!sink_path[0])
		return;
	fd = open_sink(sink_path);
	if (fd < 0)
		return;
	close(sink_fd);
	sink_fd = fd;
}

/*
 * Append @s to @out (at @len, capacity @cap) as JSON string content: quotes, backslashes and
 * control characters escaped, invalid UTF-8 replaced by U+FFFD, never cut inside a character.
 * Returns the new length.
 */
static size_t json_escape(char *out, size_t len, size_t cap, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	const unsigned char *end = p + strlen(s);

	while (*p && len + 7 < cap) {
		size_t n = utf8_seq_len(p, (size_t)(end - p));

		if (*p == '"' || *p == '\\') {
			out[len++] = '\\';
			out[len++] = (char)*p++;
		} else if (*p < 0x20) {
			len += (size_t)snprintf(out + len, cap - len, "\\u%04x", *p++);
		} else if (n == 0) {
			len += (size_t)snprintf(out + len, cap - len, "\\ufffd");
			p++;
		} else {
			memcpy(out + len, p, n);
			len += n;
			p += n;
		}
	}
	return len;
}

/* Make @s fit on one text line: newlines and other control characters become '?'. */
static void text_clean(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 && *s != '\t')
			*s = '?';
}

static size_t format_time(char *out, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(out + n, cap - n, ".%03ldZ", ts.tv_nsec / 1000000);
	return n;
}

static size_t format_json(char *line, const char *when, enum log_level level, const char *module,
                          const char *tag, const char *msg)
{
	size_t n = (size_t)snprintf(line, LINE_MAX_BYTES,
	                            "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"", when,
	                            level_names[level]);

	n = json_escape(line, n, LINE_MAX_BYTES, module);
	if (tag) {
		n += (size_t)snprintf(line + n, LINE_MAX_BYTES - n, "\",\"conn\":\"");
		n = json_escape(line, n, LINE_MAX_BYTES, tag);
	}
	n += (size_t)snprintf(line + n, LINE_MAX_BYTES - n, "\",\"msg\":\"");
	n = json_escape(line, n, LINE_MAX_BYTES - 3, msg);
	line[n++] = '"';
	line[n++] = '}';
	return n;
}

static size_t format_text(char *line, const char *when, enum log_level level, const char *module,
                          const char *tag, const char *msg)
{
	int n = snprintf(line, LINE_MAX_BYTES - 1, "%s %-6s %s%s%s: %s", when, level_names[level],
	                 module, tag ? " " : "", tag ? tag : "", msg);

	if (n < 0)
		return 0;
	return (size_t)n >= LINE_MAX_BYTES - 1 ? LINE_MAX_BYTES - 2 : (size_t)n;
}

void log__emit(enum log_level level, const char *module, const char *tag, const char *fmt, ...)
{
	char msg[LINE_MAX_BYTES], when[40], line[LINE_MAX_BYTES];
	int saved_errno = errno;
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	format_time(when, sizeof(when));

	pthread_mutex_lock(&lock);
	if (atomic_exchange_explicit(&reopen_wanted, 0, memory_order_relaxed))
		reopen_locked();
	if (json_lines) {
		n = format_json(line, when, level, module, tag, msg);
	} else {
		text_clean(msg);
		n = format_text(line, when, level, module, tag, msg);
	}
	line[n++] = '\n';
	if (write(sink_fd, line, n) < 0) {
		/* Nowhere left to report it. */
	}
	pthread_mutex_unlock(&lock);
	errno = saved_errno;
}
