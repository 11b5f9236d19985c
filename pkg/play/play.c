/*
 * play: the .play line parser. The forms are told apart by their first non-blank character
 * ('#', '[', '<', '|'), as practable's parser does with its regexes; a line that starts
 * otherwise is a message.
 */
#include "pkg/play/play.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

struct cursor {
	const char *s;
	size_t len, i;
};

static void skip_blank(struct cursor *c)
{
	while (c->i < c->len && (c->s[c->i] == ' ' || c->s[c->i] == '\t'))
		c->i++;
}

static int fail(struct play_error *err, const struct cursor *c, const char *expected)
{
	err->column = c->i + 1;
	err->expected = expected;
	return -EINVAL;
}

static struct play_view rest(const struct cursor *c)
{
	return (struct play_view){c->s + c->i, c->len - c->i};
}

/* ---- durations ---- */

/* Nanoseconds per unit, or -1. */
static int64_t unit_ns(const char *u, size_t n)
{
	static const struct {
		const char *name;
		int64_t ns;
	} units[] = {{"ns", 1},
	             {"us", 1000},
	             {"\xc2\xb5s", 1000},
	             {"ms", 1000000},
	             {"s", 1000000000},
	             {"m", 60LL * 1000000000},
	             {"h", 3600LL * 1000000000}};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
			return units[i].ns;
	return -1;
}

#define DURATION_MAX_NS (100LL * 365 * 24 * 3600 * 1000000000) /* a century */

int play_parse_duration(const char *s, size_t len, int64_t *ms)
{
	int64_t total = 0;
	size_t i = 0;

	*ms = 0;
	if (len == 0)
		return 0;
	while (i < len) {
		int64_t whole = 0, frac = 0, scale = 1, unit, part;
		size_t nstart = i, ustart;
		bool digits = false;

		for (; i < len && isdigit((unsigned char)s[i]); i++, digits = true) {
			if (whole > DURATION_MAX_NS / 10)
				return -EINVAL;
			whole = whole * 10 + (s[i] - '0');
		}
		if (i < len && s[i] == '.') {
			for (i++; i < len && isdigit((unsigned char)s[i]); i++, digits = true) {
				if (scale <=
				    100000000000000000LL) { /* beyond 1e-18 s nothing counts */
					frac = frac * 10 + (s[i] - '0');
					scale *= 10;
				}
			}
		}
		if (!digits)
			return -EINVAL;
		ustart = i;
		while (i < len && (isalpha((unsigned char)s[i]) || (unsigned char)s[i] >= 0x80))
			i++;
		if (i == ustart && nstart == 0 && i == len)
			unit = 1000000000; /* a lone bare number is seconds */
		else if ((unit = unit_ns(s + ustart, i - ustart)) < 0)
			return -EINVAL;
		if (whole > DURATION_MAX_NS / unit)
			return -EINVAL;
		part = whole * unit + (int64_t)((__int128)frac * unit / scale);
		total += part;
		if (total > DURATION_MAX_NS)
			return -EINVAL;
	}
	*ms = (total + 999999) / 1000000;
	return 0;
}

/* ---- the forms ---- */

static int parse_comment(struct cursor *c, struct play_line *out)
{
	while (c->i < c->len && c->s[c->i] == '#')
		c->i++;
	out->kind = PLAY_COMMENT;
	out->echo = false;
	while (c->i < c->len && (c->s[c->i] == '+' || c->s[c->i] == '-'))
		out->echo = c->s[c->i++] == '+';
	skip_blank(c);
	out->msg = rest(c);
	return 0;
}

static int parse_delay(struct cursor *c, struct play_line *out, struct play_error *err)
{
	const char *close;
	size_t start;

	c->i++; /* '[' */
	skip_blank(c);
	start = c->i;
	close = memchr(c->s + c->i, ']', c->len - c->i);
	if (!close) {
		c->i = c->len;
		return fail(err, c, "']' closing the delay");
	}
	c->i = (size_t)(close - c->s);
	{
		size_t end = c->i;

		while (end > start && (c->s[end - 1] == ' ' || c->s[end - 1] == '\t'))
			end--;
		if (play_parse_duration(c->s + start, end - start, &out->delay_ms)) {
			c->i = start;
			return fail(err, c, "a duration such as 10ms, 0.1s or 1m");
		}
	}
	c->i++; /* ']' */
	skip_blank(c);
	out->msg = rest(c);
	out->kind = out->msg.len ? PLAY_SEND : PLAY_WAIT;
	return 0;
}

/* <'REGEX',COUNT,TIMEOUT> message */
static int parse_condition(struct cursor *c, struct play_line *out, struct play_error *err)
{
	const char *q, *gt;
	size_t start;

	c->i++; /* '<' */
	skip_blank(c);
	if (c->i >= c->len || c->s[c->i] != '\'')
		return fail(err, c, "a quoted regex: <'pattern',count,timeout>");
	c->i++;
	q = memchr(c->s + c->i, '\'', c->len - c->i);
	if (!q) {
		c->i = c->len;
		return fail(err, c, "the closing ' of the regex");
	}
	out->pattern = (struct play_view){c->s + c->i, (size_t)(q - (c->s + c->i))};
	c->i = (size_t)(q - c->s) + 1;
	skip_blank(c);
	if (c->i >= c->len || c->s[c->i] != ',')
		return fail(err, c, "',' then the count of matching messages");
	c->i++;
	skip_blank(c);
	start = c->i;
	out->count = 0;
	while (c->i < c->len && isdigit((unsigned char)c->s[c->i]) && out->count <= 1000000000)
		out->count = out->count * 10 + (c->s[c->i++] - '0');
	if (c->i == start || out->count == 0 || out->count > 1000000000) {
		c->i = start;
		return fail(err, c, "a count of messages, 1 to 1000000000");
	}
	skip_blank(c);
	if (c->i >= c->len || c->s[c->i] != ',')
		return fail(err, c, "',' then a timeout such as 10s");
	c->i++;
	skip_blank(c);
	gt = memchr(c->s + c->i, '>', c->len - c->i);
	if (!gt) {
		c->i = c->len;
		return fail(err, c, "'>' closing the condition");
	}
	start = c->i;
	{
		size_t end = (size_t)(gt - c->s);

		while (end > start && (c->s[end - 1] == ' ' || c->s[end - 1] == '\t'))
			end--;
		if (end == start ||
		    play_parse_duration(c->s + start, end - start, &out->timeout_ms))
			return fail(err, c, "a timeout such as 10s or 500ms");
	}
	c->i = (size_t)(gt - c->s) + 1;
	skip_blank(c);
	out->kind = PLAY_SEND;
	out->has_condition = true;
	out->msg = rest(c);
	return 0;
}

/* |VERB> REGEX */
static int parse_filter(struct cursor *c, struct play_line *out, struct play_error *err)
{
	static const struct {
		const char *word;
		enum play_filter_verb verb;
	} verbs[] = {{"+", PLAY_ACCEPT}, {"a", PLAY_ACCEPT},   {"accept", PLAY_ACCEPT},
	             {"-", PLAY_DENY},   {"d", PLAY_DENY},     {"deny", PLAY_DENY},
	             {"r", PLAY_RESET},  {"reset", PLAY_RESET}};
	size_t start, n;
	bool found = false;

	c->i++; /* '|' */
	skip_blank(c);
	start = c->i;
	while (c->i < c->len &&
	       (isalpha((unsigned char)c->s[c->i]) || c->s[c->i] == '+' || c->s[c->i] == '-'))
		c->i++;
	n = c->i - start;
	for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]) && !found; k++) {
		if (strlen(verbs[k].word) == n &&
		    strncasecmp(verbs[k].word, c->s + start, n) == 0) {
			out->verb = verbs[k].verb;
			found = true;
		}
	}
	if (!found) {
		c->i = start;
		return fail(err, c, "a filter verb: + - a d r accept deny reset");
	}
	skip_blank(c);
	if (c->i >= c->len || c->s[c->i] != '>')
		return fail(err, c, "'>' after the filter verb");
	c->i++;
	skip_blank(c);
	out->kind = PLAY_FILTER;
	out->pattern = rest(c);
	if (out->verb != PLAY_RESET && out->pattern.len == 0)
		return fail(err, c, "a regex to filter by");
	return 0;
}

int play_parse_line(const char *line, size_t len, struct play_line *out, struct play_error *err)
{
	struct cursor c = {line, len, 0};

	memset(out, 0, sizeof(*out));
	if (len && line[len - 1] == '\r')
		c.len--;
	skip_blank(&c);
	if (c.i == c.len) {
		out->kind = PLAY_BLANK;
		return 0;
	}
	switch (line[c.i]) {
	case '#':
		return parse_comment(&c, out);
	case '[':
		return parse_delay(&c, out, err);
	case '<':
		return parse_condition(&c, out, err);
	case '|':
		return parse_filter(&c, out, err);
	default:
		out->kind = PLAY_SEND;
		out->msg = (struct play_view){line, c.len};
		return 0;
	}
}
