/*
 * play: practable's .play script format, one line at a time. A line is
 *   # comment            not echoed (also "#-"); "#+ comment" is echoed to the recording
 *   [DELAY]              wait, e.g. [10ms], [0.1s], [1h5.3m0.5s], [] (no wait)
 *   [DELAY] message      wait, then send the message
 *   <'REGEX',COUNT,TIMEOUT> message
 *                        send after COUNT received messages match REGEX, or after TIMEOUT
 *   |+> REGEX  |accept> REGEX   record only messages matching one of the accept patterns...
 *   |-> REGEX  |deny> REGEX     ...and none of the deny patterns (also |a> |d>)
 *   |reset>  |r>         clear the filter: record everything
 *   anything else        a message, sent at once
 * DELAY and TIMEOUT are Go-style durations (ns, us, ms, s, m, h, combined) or a bare number
 * of seconds. Regexes are POSIX extended (with GNU's \s \S \w \W). The parser takes bytes and
 * returns views into them: no allocation; regexes are compiled by the caller.
 */
#ifndef RELAY_PLAY_H
#define RELAY_PLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct play_view {
	const char *p;
	size_t len;
};

enum play_kind {
	PLAY_BLANK,   /* an empty line: nothing to do */
	PLAY_COMMENT, /* msg; echo */
	PLAY_WAIT,    /* delay_ms */
	PLAY_SEND,    /* msg after delay_ms, or after the condition */
	PLAY_FILTER,  /* verb; pattern */
};

enum play_filter_verb {
	PLAY_ACCEPT,
	PLAY_DENY,
	PLAY_RESET,
};

struct play_line {
	enum play_kind kind;
	struct play_view msg;
	bool echo;
	int64_t delay_ms; /* rounded up to whole ms */
	bool has_condition;
	struct play_view pattern; /* condition or filter regex */
	int64_t count;
	int64_t timeout_ms;
	enum play_filter_verb verb;
};

/* A malformed line: the 1-based column and what was expected there. */
struct play_error {
	size_t column;
	const char *expected; /* static string */
};

/*
 * Parse one line (without its newline; a trailing CR is ignored). 0 with @out filled, or -EINVAL
 * with @err set.
 */
int play_parse_line(const char *line, size_t len, struct play_line *out, struct play_error *err);

/* Parse a Go-style duration ("1h5.3m0.5s", "10ms", "0.3") into ms, rounded up. 0 or -EINVAL. */
int play_parse_duration(const char *s, size_t len, int64_t *ms);

#endif
