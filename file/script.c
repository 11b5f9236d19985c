/*
 * file/script: .play scripts loaded whole and checked before anything is sent: each line parsed
 * by pkg/play, each condition and filter regex compiled (POSIX extended), at most
 * FILE_FILTERS_MAX filters of a kind between resets.
 */
#define LOG_MODULE "script"
#include "file/script.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compile(struct file_script_line *sl, const char *path, char *err_text, size_t len)
{
	char pattern[4096];
	int rc;

	if (sl->l.pattern.len >= sizeof(pattern)) {
		snprintf(err_text, len, "%s:%d: regex longer than %zu bytes", path, sl->lineno,
		         sizeof(pattern) - 1);
		return -EINVAL;
	}
	memcpy(pattern, sl->l.pattern.p, sl->l.pattern.len);
	pattern[sl->l.pattern.len] = '\0';
	rc = regcomp(&sl->re, pattern, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		char msg[128];

		regerror(rc, &sl->re, msg, sizeof(msg));
		snprintf(err_text, len, "%s:%d: bad regex '%.200s': %s", path, sl->lineno, pattern,
		         msg);
		return -EINVAL;
	}
	sl->has_re = true;
	return 0;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < 64 * 1024 * 1024 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
	    fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = '\0';
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Parse and compile every line, so nothing is sent from a script with a mistake in it. */
static int parse_all(struct file_script *s, size_t len, const char *path)
{
	char *p = s->text, *end = s->text + len, err_text[512];
	int lineno = 0, ret = 0, n_accept = 0, n_deny = 0; /* filters since the last reset */

	while (p < end && !ret) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		struct file_script_line *sl = &s->lines[s->n];
		struct play_error e;

		sl->lineno = ++lineno;
		if (play_parse_line(p, n, &sl->l, &e)) {
			fprintf(stderr, "%s:%d:%zu: expected %s\n", path, lineno, e.column,
			        e.expected);
			ret = -EINVAL;
		} else if ((sl->l.has_condition ||
		            (sl->l.kind == PLAY_FILTER && sl->l.verb != PLAY_RESET)) &&
		           compile(sl, path, err_text, sizeof(err_text))) {
			fprintf(stderr, "%s\n", err_text);
			ret = -EINVAL;
		} else if (sl->l.kind == PLAY_FILTER &&
		           ((sl->l.verb == PLAY_ACCEPT && ++n_accept > FILE_FILTERS_MAX) ||
		            (sl->l.verb == PLAY_DENY && ++n_deny > FILE_FILTERS_MAX))) {
			fprintf(stderr, "%s:%d: more than %d %s filters without a reset\n", path,
			        lineno, FILE_FILTERS_MAX,
			        sl->l.verb == PLAY_ACCEPT ? "accept" : "deny");
			regfree(&sl->re);
			ret = -EINVAL;
		} else {
			if (sl->l.kind == PLAY_FILTER && sl->l.verb == PLAY_RESET)
				n_accept = n_deny = 0;
			s->n++;
		}
		p += n + 1;
	}
	return ret;
}

int file_script_load(const char *path, struct file_script **out)
{
	struct file_script *s = calloc(1, sizeof(*s));
	size_t len = 0, lines = 1;
	int ret;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->text = read_file(path, &len);
	if (!s->text) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno ? errno : EIO));
		free(s);
		return -EIO;
	}
	for (size_t i = 0; i < len; i++)
		lines += s->text[i] == '\n';
	s->lines = calloc(lines, sizeof(*s->lines));
	ret = s->lines ? parse_all(s, len, path) : -ENOMEM;
	if (ret) {
		file_script_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

void file_script_free(struct file_script *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		if (s->lines[i].has_re)
			regfree(&s->lines[i].re);
	free(s->lines);
	free(s->text);
	free(s);
}
