/*
 * log_test: pkg/log against its contract (pkg/log/log.h). Level names, log_init's errors, the
 * text and JSON line layouts (JSON lines are parsed back with jansson), level filtering by the
 * macros, reopening after a rename (logrotate) without losing lines, and cutting long messages.
 * Every line goes to a temporary file under /tmp; nothing is written to stderr.
 */
#define LOG_MODULE "unit"
#include "pkg/log/log.h"
#include "test/harness.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#define LINE_MAX_BYTES 2048 /* as in pkg/log/log.c */

/* ---- helpers ---- */

/* A new empty temporary file; returns its path (free with drop_temp()). */
static char *make_temp(void)
{
	char *path = strdup("/tmp/relay-log-test.XXXXXX");
	int fd = path ? mkstemp(path) : -1;

	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	return path;
}

static void drop_temp(char *path)
{
	if (path)
		unlink(path);
	free(path);
}

/* The whole file as a new string; "" when it cannot be read. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t cap = 0;

	if (!f || getdelim(&buf, &cap, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	if (f)
		fclose(f);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static int count_file_lines(const char *path)
{
	char *s = slurp(path);
	int n = count_lines(s);

	free(s);
	return n;
}

/* Start logging to a fresh temporary file; returns its path. */
static char *log_to_temp(const char *level, const char *format)
{
	char *path = make_temp();

	CHECK_EQ(log_init(level, format, path), 0);
	return path;
}

/* Back to stderr, and return the file's text. */
static char *finish(const char *path)
{
	log_close();
	return slurp(path);
}

static bool matches(const char *s, const char *pattern)
{
	regex_t re;
	bool ok;

	if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	if (!ok)
		fprintf(stderr, "  '%s' does not match /%s/\n", s, pattern);
	return ok;
}

/* ---- levels and init ---- */

static void test_level_parse(void)
{
	CHECK_EQ(log_level_parse("error"), LOG_LEVEL_ERR);
	CHECK_EQ(log_level_parse("warn"), LOG_LEVEL_WARN);
	CHECK_EQ(log_level_parse("notice"), LOG_LEVEL_NOTICE);
	CHECK_EQ(log_level_parse("info"), LOG_LEVEL_INFO);
	CHECK_EQ(log_level_parse("debug"), LOG_LEVEL_DEBUG);
	CHECK_EQ(log_level_parse("verbose"), -EINVAL);
	CHECK_EQ(log_level_parse("ERROR"), -EINVAL);
	CHECK_EQ(log_level_parse("warning"), -EINVAL);
	CHECK_EQ(log_level_parse(""), -EINVAL);
	CHECK_EQ(log_level_parse(NULL), -EINVAL);
}

static void test_init_errors(void)
{
	char *path = log_to_temp("notice", "text");
	char *text;

	CHECK_EQ(log_init("loud", "text", NULL), -EINVAL);
	CHECK_EQ(log_init("info", "xml", NULL), -EINVAL);
	CHECK_EQ(log_init("info", "", NULL), -EINVAL);
	CHECK_EQ(log_init("info", "text", "/nonexistent/relay-log-test/x.log"), -ENOENT);
	/* Each failure left the sink and the level alone. */
	CHECK_EQ(log__level, LOG_LEVEL_NOTICE);
	log_notice("still here");
	text = finish(path);
	CHECK_EQ(count_lines(text), 1);
	CHECK(strstr(text, "still here") != NULL);
	free(text);
	drop_temp(path);

	CHECK_EQ(log_init(NULL, NULL, "-"), 0);
	CHECK_EQ(log__level, LOG_LEVEL_INFO);
}

/* ---- line layouts ---- */

static void test_text_line(void)
{
	char *path = log_to_temp("debug", "text");
	char *text;

	logt_warn("c42", "cannot bind '%s': %d", "0.0.0.0:443", 13);
	log_debug("no tag %d", 7);
	text = finish(path);
	CHECK_EQ(count_lines(text), 2);
	CHECK(matches(text, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
	                    "warn +unit c42: cannot bind '0\\.0\\.0\\.0:443': 13\n"));
	CHECK(matches(text, "\n[0-9]{4}-[0-9-]+T[0-9:.]+Z debug +unit: no tag 7\n$"));
	free(text);
	drop_temp(path);
}

/* Parse the JSON line @line (without its newline); NULL and a failed check if it is not an object.
 */
static json_t *parse_line(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(line, len, 0, &jerr);

	CHECK(json_is_object(j));
	if (!j)
		fprintf(stderr, "  not JSON (%s): %.*s\n", jerr.text, (int)len, line);
	return j;
}

static void check_field(json_t *j, const char *key, const char *want)
{
	CHECK_STR(json_string_value(json_object_get(j, key)), want);
}

static void test_json_lines(void)
{
	static const char msg[] = "say \"hi\" \\ back\nnext\tcol\x01";
	char *path = log_to_temp("info", "json");
	char *text, *nl;
	json_t *j;

	logt_err("c7", "%s", msg);
	log_info("plain");
	text = finish(path);
	CHECK_EQ(count_lines(text), 2);
	CHECK(strchr(text, '\t') == NULL);
	CHECK(strstr(text, "\\\"hi\\\" \\\\ back") != NULL);

	nl = strchr(text, '\n');
	j = nl ? parse_line(text, (size_t)(nl - text)) : NULL;
	check_field(j, "level", "error");
	check_field(j, "module", "unit");
	check_field(j, "conn", "c7");
	check_field(j, "msg", msg);
	CHECK(json_is_string(json_object_get(j, "time")));
	json_decref(j);

	j = nl ? parse_line(nl + 1, strlen(nl + 1) - 1) : NULL;
	check_field(j, "level", "info");
	check_field(j, "msg", "plain");
	CHECK(json_object_get(j, "conn") == NULL);
	json_decref(j);
	free(text);
	drop_temp(path);
}

/* Invalid UTF-8 and a multibyte message cut at the line limit still give valid JSON. */
static void test_json_utf8(void)
{
	char *path = log_to_temp("info", "json");
	char *text, *nl, big[5001];
	json_t *j;

	for (size_t i = 0; i + 2 <= 5000; i += 2)
		memcpy(big + i, "\xc3\xa9", 2);
	big[5000] = '\0';
	log_info("bad \xff byte");
	log_info("x%s", big);
	text = finish(path);
	CHECK_EQ(count_lines(text), 2);
	nl = strchr(text, '\n');
	j = nl ? parse_line(text, (size_t)(nl - text)) : NULL;
	check_field(j, "msg", "bad \xef\xbf\xbd byte");
	json_decref(j);
	j = nl ? parse_line(nl + 1, strlen(nl + 1) - 1) : NULL;
	CHECK(j != NULL);
	json_decref(j);
	free(text);
	drop_temp(path);
}

/* Text lines stay one line whatever the message holds. */
static void test_text_newline(void)
{
	char *path = log_to_temp("info", "text");
	char *text;

	log_info("a\nb\rc");
	text = finish(path);
	CHECK_EQ(count_lines(text), 1);
	CHECK(strstr(text, "a?b?c") != NULL);
	free(text);
	drop_temp(path);
}

static void test_level_filter(void)
{
	char *path = log_to_temp("warn", "text");
	char *text;

	log_debug("hidden debug");
	log_info("hidden info");
	logt_notice("c1", "hidden notice");
	log_warn("shown warn");
	logt_err("c1", "shown error");
	text = finish(path);
	CHECK_EQ(count_lines(text), 2);
	CHECK(strstr(text, "hidden") == NULL);
	CHECK(strstr(text, "shown warn") != NULL);
	CHECK(strstr(text, "shown error") != NULL);
	free(text);
	drop_temp(path);

	path = log_to_temp("error", "json");
	log_warn("hidden");
	log_err("shown");
	text = finish(path);
	CHECK_EQ(count_lines(text), 1);
	CHECK(strstr(text, "hidden") == NULL);
	free(text);
	drop_temp(path);
}

/* ---- reopen ---- */

static void test_reopen(void)
{
	char *path = log_to_temp("info", "text");
	char *rotated = NULL;

	CHECK(asprintf(&rotated, "%s.1", path) > 0);
	log_info("line 1");
	log_info("line 2");
	CHECK_EQ(rename(path, rotated), 0);
	log_info("line 3 after rename"); /* still the old file: no reopen asked for */
	log_request_reopen();
	log_info("line 4 after reopen");
	log_info("line 5");
	log_close();

	CHECK_EQ(count_file_lines(rotated), 3);
	CHECK_EQ(count_file_lines(path), 2);
	CHECK_EQ(count_file_lines(rotated) + count_file_lines(path), 5);
	unlink(rotated);
	free(rotated);
	drop_temp(path);
}

/* ---- long messages ---- */

static void check_long(const char *format)
{
	char *big = malloc(3 * LINE_MAX_BYTES);
	char *path, *text;
	size_t len;

	if (!big) {
		CHECK(big != NULL);
		return;
	}
	path = log_to_temp("info", format);
	memset(big, 'x', 3 * LINE_MAX_BYTES - 1);
	big[3 * LINE_MAX_BYTES - 1] = '\0';
	logt_info("c9", "%s", big);
	log_info("after");
	text = finish(path);
	CHECK_EQ(count_lines(text), 2);
	len = strcspn(text, "\n");
	CHECK(len > LINE_MAX_BYTES / 2);
	CHECK(len < LINE_MAX_BYTES);
	CHECK(strstr(text, "xxxx\n") != NULL || strstr(text, "xxxx\"}\n") != NULL);
	if (strcmp(format, "json") == 0) {
		json_t *j = parse_line(text, len);

		check_field(j, "conn", "c9");
		json_decref(j);
	}
	free(text);
	free(big);
	drop_temp(path);
}

static void test_long_message(void)
{
	check_long("text");
	check_long("json");
}

int main(void)
{
	RUN(test_level_parse());
	RUN(test_init_errors());
	RUN(test_text_line());
	RUN(test_json_lines());
	RUN(test_json_utf8());
	RUN(test_text_newline());
	RUN(test_level_filter());
	RUN(test_reopen());
	RUN(test_long_message());
	log_close();
	return harness_done();
}
