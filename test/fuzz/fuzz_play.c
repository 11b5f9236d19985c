/*
 * fuzz_play: play_parse_line() on every line of arbitrary bytes, and play_parse_duration() on
 * the whole input. Nothing may crash or read past a line; an accepted line's views lie inside
 * it and never cover the ignored trailing CR; a refused line points at a column of the line
 * (or just past its end) and says what was expected; no duration is negative.
 */
#include "pkg/play/play.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* @v lies within the first @len bytes of @line (an empty view may be NULL or anywhere). */
static bool view_inside(struct play_view v, const char *line, size_t len)
{
	if (v.len == 0)
		return true;
	return v.p >= line && v.p <= line + len && v.len <= (size_t)(line + len - v.p);
}

static void check_line(const char *line, size_t len)
{
	size_t used = len && line[len - 1] == '\r' ? len - 1 : len;
	struct play_error err = {0, NULL};
	struct play_line l;
	int rc = play_parse_line(line, len, &l, &err);

	if (rc != 0) {
		if (rc != -EINVAL || err.column < 1 || err.column > len + 1 || !err.expected)
			abort();
		return;
	}
	if (!view_inside(l.msg, line, used) || !view_inside(l.pattern, line, used))
		abort();
	switch (l.kind) {
	case PLAY_BLANK:
	case PLAY_COMMENT:
		break;
	case PLAY_WAIT:
		if (l.delay_ms < 0 || l.msg.len)
			abort();
		break;
	case PLAY_SEND:
		if (l.delay_ms < 0 || (l.has_condition && (l.count < 1 || l.timeout_ms < 0)))
			abort();
		break;
	case PLAY_FILTER:
		if (l.verb != PLAY_ACCEPT && l.verb != PLAY_DENY && l.verb != PLAY_RESET)
			abort();
		if (l.verb != PLAY_RESET && l.pattern.len == 0)
			abort();
		break;
	default:
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data, *end = s + size;
	int64_t ms;

	/* each line in a buffer of its own, so that reading past it is caught */
	while (s <= end) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t len = (size_t)((nl ? nl : end) - s);
		char *line = malloc(len ? len : 1);

		if (!line)
			return 0;
		memcpy(line, s, len);
		check_line(line, len);
		free(line);
		if (!nl)
			break;
		s = nl + 1;
	}
	if (play_parse_duration((const char *)data, size, &ms) == 0 && ms < 0)
		abort();
	return 0;
}
