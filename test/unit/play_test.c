/*
 * play_test: pkg/play against its contract (pkg/play/play.h): every .play construct with all of
 * its fields, practable's own example script, whitespace and CR variants, Go-style durations
 * and the column and expectation reported for each kind of malformed line.
 */
#include "pkg/play/play.h"
#include "test/harness.h"

#include <errno.h>
#include <stdbool.h>

/*
 * Each line under test is copied to the end of this array, so that a read past the line runs
 * into the array's redzone under ASan instead of into a literal's NUL.
 */
static char line_buf[512];
static const char *cur;
static size_t cur_len;

static void set_line(const char *s, size_t len)
{
	if (len > sizeof(line_buf)) {
		fprintf(stderr, "test line too long\n");
		len = 0;
	}
	cur = line_buf + sizeof(line_buf) - len;
	cur_len = len;
	memcpy(line_buf + sizeof(line_buf) - len, s, len);
}

/* Parse @s (its NUL not passed): 0 or -EINVAL; the views stay valid until the next call. */
static int parse(const char *s, struct play_line *l, struct play_error *e)
{
	set_line(s, strlen(s));
	e->column = 0;
	e->expected = NULL;
	return play_parse_line(cur, cur_len, l, e);
}

static int duration(const char *s, int64_t *ms)
{
	set_line(s, strlen(s));
	*ms = -12345;
	return play_parse_duration(cur, cur_len, ms);
}

static bool view_is(struct play_view v, const char *s)
{
	size_t n = strlen(s);

	return v.len == n && (n == 0 || (v.p && memcmp(v.p, s, n) == 0));
}

/* The view points into the line last parsed (an empty view may sit anywhere or be NULL). */
static bool view_in_line(struct play_view v)
{
	if (v.len == 0)
		return true;
	return v.p >= cur && v.p <= cur + cur_len && v.len <= (size_t)(cur + cur_len - v.p);
}

/* Offset of a view into the line last parsed, -1 when it is not inside it. */
static long at(struct play_view v)
{
	if (!v.p || v.p < cur || v.p > cur + cur_len)
		return -1;
	return (long)(v.p - cur);
}

/* ---- blank lines ---- */

static void test_blank(void)
{
	static const char *const lines[] = {"", " ", "\t \t", "\r", "  \t\r"};
	struct play_line l;
	struct play_error e;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		CHECK_EQ(parse(lines[i], &l, &e), 0);
		CHECK_EQ(l.kind, PLAY_BLANK);
		CHECK_EQ(l.msg.len, 0);
		CHECK_EQ(l.pattern.len, 0);
		CHECK(!l.echo);
		CHECK(!l.has_condition);
		CHECK_EQ(l.delay_ms, 0);
		CHECK_EQ(l.count, 0);
		CHECK_EQ(l.timeout_ms, 0);
	}
	/* a second CR is not a trailing CR: the line is a message */
	CHECK_EQ(parse("\r\r", &l, &e), 0);
	CHECK_EQ(l.kind, PLAY_SEND);
	CHECK(view_is(l.msg, "\r"));
}

/* ---- comments ---- */

static void check_comment(const char *line, bool echo, const char *msg)
{
	struct play_line l;
	struct play_error e;

	CHECK_EQ(parse(line, &l, &e), 0);
	CHECK_EQ(l.kind, PLAY_COMMENT);
	CHECK_EQ(l.echo, echo);
	CHECK(view_is(l.msg, msg));
	CHECK(view_in_line(l.msg));
	CHECK_EQ(l.delay_ms, 0);
	CHECK(!l.has_condition);
	CHECK_EQ(l.pattern.len, 0);
	if (!view_is(l.msg, msg))
		fprintf(stderr, "  line \"%s\": msg \"%.*s\"\n", line, (int)l.msg.len,
		        l.msg.p ? l.msg.p : "");
}

static void test_comments(void)
{
	struct play_line l;
	struct play_error e;

	/* practable's example script */
	check_comment("# Non echo comment", false, "Non echo comment");
	check_comment("#- non echo comment", false, "non echo comment");
	check_comment("#+ echo comment", true, "echo comment");

	/* several #, no blank after the marker, indentation, CR, empty text */
	check_comment("##+ x", true, "x");
	check_comment("### x", false, "x");
	check_comment("##- x", false, "x");
	check_comment("#+echo", true, "echo");
	check_comment("#-quiet", false, "quiet");
	check_comment("  \t#+ indented", true, "indented");
	check_comment("#+ echo comment\r", true, "echo comment");
	check_comment("#+ a # b | c [1s]", true, "a # b | c [1s]");
	check_comment("#", false, "");
	check_comment("#+", true, "");
	check_comment("#-", false, "");
	check_comment("#+   ", true, "");

	/* the text is a view into the line: it starts after "#+ " */
	CHECK_EQ(parse("#+ hello", &l, &e), 0);
	CHECK_EQ(at(l.msg), 3);
}

/* ---- delays ---- */

static void check_delay(const char *line, int64_t ms, const char *msg)
{
	struct play_line l;
	struct play_error e;

	CHECK_EQ(parse(line, &l, &e), 0);
	CHECK_EQ(l.kind, msg[0] ? PLAY_SEND : PLAY_WAIT);
	CHECK_EQ(l.delay_ms, ms);
	CHECK(view_is(l.msg, msg));
	CHECK(view_in_line(l.msg));
	CHECK(!l.has_condition);
	CHECK(!l.echo);
	CHECK_EQ(l.pattern.len, 0);
	CHECK_EQ(l.count, 0);
	CHECK_EQ(l.timeout_ms, 0);
	if (l.delay_ms != ms || !view_is(l.msg, msg))
		fprintf(stderr, "  line \"%s\": delay %lld msg \"%.*s\"\n", line,
		        (long long)l.delay_ms, (int)l.msg.len, l.msg.p ? l.msg.p : "");
}

static void test_delays(void)
{
	struct play_line l;
	struct play_error e;

	/* practable's example script */
	check_delay("[10ms]", 10, "");
	check_delay("[0.1s] {\"an\":\"other\"}", 100, "{\"an\":\"other\"}");
	check_delay("[1ms]a", 1, "a");

	check_delay("[1h5.3m0.5s]", 3918500, "");
	check_delay("[]", 0, "");
	check_delay("[ ]", 0, "");
	check_delay("[0.3]", 300, "");
	check_delay("[2]", 2000, "");
	check_delay("[ 0.3s ] foo", 300, "foo");
	check_delay("[\t250ms\t]\tfoo", 250, "foo");
	check_delay("  [5ms] x", 5, "x");
	check_delay("[10ms]\r", 10, "");
	check_delay("[10ms] x\r", 10, "x");
	check_delay("[2s]   spaced out  ", 2000, "spaced out  ");
	/* what follows the delay is a message whatever it starts with */
	check_delay("[1s] [2s]", 1000, "[2s]");
	check_delay("[1s] # not a comment", 1000, "# not a comment");
	check_delay("[1s] |+> x", 1000, "|+> x");
	check_delay("[1s] <'a',1,1s> x", 1000, "<'a',1,1s> x");

	CHECK_EQ(parse("[1ms]abc", &l, &e), 0);
	CHECK_EQ(at(l.msg), 5);
}

/* ---- conditions ---- */

static void test_conditions(void)
{
	struct play_line l;
	struct play_error e;

	/* practable's example script */
	CHECK_EQ(parse("<'^foo\\s*',5,10ms> {\"send\":\"foos\"}", &l, &e), 0);
	CHECK_EQ(l.kind, PLAY_SEND);
	CHECK(l.has_condition);
	CHECK(view_is(l.pattern, "^foo\\s*"));
	CHECK_EQ(at(l.pattern), 2);
	CHECK_EQ(l.count, 5);
	CHECK_EQ(l.timeout_ms, 10);
	CHECK(view_is(l.msg, "{\"send\":\"foos\"}"));
	CHECK(view_in_line(l.msg));
	CHECK_EQ(l.delay_ms, 0);
	CHECK(!l.echo);

	/* blanks around every part, a compound timeout, a CR */
	CHECK_EQ(parse("  < 'x y' , 12 , 1h5.3m0.5s >  go\r", &l, &e), 0);
	CHECK_EQ(l.kind, PLAY_SEND);
	CHECK(l.has_condition);
	CHECK(view_is(l.pattern, "x y"));
	CHECK_EQ(l.count, 12);
	CHECK_EQ(l.timeout_ms, 3918500);
	CHECK(view_is(l.msg, "go"));

	/* '>' and ',' inside the quotes belong to the regex; a bare timeout is seconds */
	CHECK_EQ(parse("<'a>b,c',1,0.5>m", &l, &e), 0);
	CHECK(view_is(l.pattern, "a>b,c"));
	CHECK_EQ(l.count, 1);
	CHECK_EQ(l.timeout_ms, 500);
	CHECK(view_is(l.msg, "m"));

	/* the message may hold '>' and quotes */
	CHECK_EQ(parse("<'a',2,1s> x > 'y'", &l, &e), 0);
	CHECK_EQ(l.count, 2);
	CHECK_EQ(l.timeout_ms, 1000);
	CHECK(view_is(l.msg, "x > 'y'"));
	CHECK(view_in_line(l.pattern));
	CHECK(view_in_line(l.msg));
}

/* ---- filters ---- */

static void check_filter(const char *line, enum play_filter_verb verb, const char *pattern)
{
	struct play_line l;
	struct play_error e;

	CHECK_EQ(parse(line, &l, &e), 0);
	CHECK_EQ(l.kind, PLAY_FILTER);
	CHECK_EQ(l.verb, verb);
	CHECK(view_is(l.pattern, pattern));
	CHECK(view_in_line(l.pattern));
	CHECK_EQ(l.msg.len, 0);
	CHECK(!l.has_condition);
	CHECK_EQ(l.delay_ms, 0);
	if (l.verb != verb || !view_is(l.pattern, pattern))
		fprintf(stderr, "  line \"%s\": verb %d pattern \"%.*s\"\n", line, (int)l.verb,
		        (int)l.pattern.len, l.pattern.p ? l.pattern.p : "");
}

static void test_filters(void)
{
	struct play_line l;
	struct play_error e;

	/* practable's example script */
	check_filter("|+> [a-h]", PLAY_ACCEPT, "[a-h]");
	check_filter("|accept> [R-Z]", PLAY_ACCEPT, "[R-Z]");
	check_filter("|->[0-9]", PLAY_DENY, "[0-9]");
	check_filter("|deny>  [#!&%]", PLAY_DENY, "[#!&%]");
	check_filter("|reset>", PLAY_RESET, "");

	/* short verbs, case, CR */
	check_filter("|a> ^x", PLAY_ACCEPT, "^x");
	check_filter("|d> ^y", PLAY_DENY, "^y");
	check_filter("|r>", PLAY_RESET, "");
	check_filter("|A> x", PLAY_ACCEPT, "x");
	check_filter("|D> x", PLAY_DENY, "x");
	check_filter("|R>", PLAY_RESET, "");
	check_filter("|Accept> x", PLAY_ACCEPT, "x");
	check_filter("|DENY> x", PLAY_DENY, "x");
	check_filter("|ReSeT>", PLAY_RESET, "");
	check_filter("|reset>\r", PLAY_RESET, "");
	check_filter("|+> [a-h]\r", PLAY_ACCEPT, "[a-h]");
	check_filter("  |->x", PLAY_DENY, "x");
	/* the regex is the rest of the line, '>' and blanks inside it included */
	check_filter("|+> a> b", PLAY_ACCEPT, "a> b");
	/* blanks around the verb are allowed */
	check_filter("  | + > 35", PLAY_ACCEPT, "35");

	CHECK_EQ(parse("|accept> [R-Z]", &l, &e), 0);
	CHECK_EQ(at(l.pattern), 9);
}

/* ---- plain messages ---- */

static void check_message(const char *line, const char *msg)
{
	struct play_line l;
	struct play_error e;

	CHECK_EQ(parse(line, &l, &e), 0);
	CHECK_EQ(l.kind, PLAY_SEND);
	CHECK(view_is(l.msg, msg));
	CHECK(view_in_line(l.msg));
	CHECK_EQ(l.delay_ms, 0);
	CHECK(!l.has_condition);
	CHECK(!l.echo);
	CHECK_EQ(l.pattern.len, 0);
}

static void test_messages(void)
{
	struct play_line l;
	struct play_error e;

	/* practable's example script */
	check_message("{\"some\":\"msg\"}", "{\"some\":\"msg\"}");

	check_message("hello world", "hello world");
	check_message("]x", "]x");
	check_message(">x", ">x");
	check_message("+> x", "+> x");
	check_message("'quoted'", "'quoted'");
	check_message("x # y", "x # y");
	check_message("a[1s] b", "a[1s] b");
	check_message("{", "{");
	check_message("foo\r", "foo");
	check_message("foo \t", "foo \t");
	/* the whole line, leading blanks included */
	check_message("  foo", "  foo");

	/* lengths, not NULs, delimit a line */
	set_line("a\0b", 3);
	CHECK_EQ(play_parse_line(cur, cur_len, &l, &e), 0);
	CHECK_EQ(l.kind, PLAY_SEND);
	CHECK_EQ(l.msg.len, 3);
	CHECK_EQ(at(l.msg), 0);
	set_line("[1s]x\0y", 7);
	CHECK_EQ(play_parse_line(cur, cur_len, &l, &e), 0);
	CHECK_EQ(l.delay_ms, 1000);
	CHECK_EQ(l.msg.len, 3);
	/* a line passed without its last byte */
	set_line("[10ms]", 5);
	CHECK_EQ(play_parse_line(cur, cur_len, &l, &e), -EINVAL);
}

/* ---- durations ---- */

static void test_durations(void)
{
	static const struct {
		const char *s;
		int64_t ms;
	} good[] = {
	        {"10ms", 10},
	        {"0.1s", 100},
	        {"1h5.3m0.5s", 3918500},
	        {"1.5", 1500}, /* bare seconds */
	        {"0.3", 300},  /* bare seconds */
	        {"250us", 1},  /* rounded up */
	        {"250\xc2\xb5s", 1},
	        {"1ns", 1},
	        {"1000000ns", 1},
	        {"1000001ns", 2},
	        {"1500us", 2},
	        {"", 0},
	        {"0", 0},
	        {"0s", 0},
	        {"1s", 1000},
	        {"2m", 120000},
	        {"1h", 3600000},
	        {"1m30s", 90000},
	        {"1h1m1s1ms", 3661001},
	        {"0.3s", 300},
	        {"0.7s", 700},
	        {"1.7s", 1700},
	        {"0.009s", 9},
	        {"0.051s", 51},
	        {"2.25m", 135000},
	        {"1.0000001ms", 1}, /* as Go: fractions of a nanosecond are dropped */
	};
	static const char *const bad[] = {
	        "5x",  "1h5", ".",   "s",   "-1s",   "1e3s",
	        "+1s", "1 s", "1s ", " 1s", "ms",    "1.2.3s",
	        "1S",  "1hh", "1sm", "0h5", "0s0.5", "999999999999999999999h",
	};
	int64_t ms;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK_EQ(duration(good[i].s, &ms), 0);
		CHECK_EQ(ms, good[i].ms);
		if (ms != good[i].ms)
			fprintf(stderr, "  duration \"%s\" gave %lld\n", good[i].s, (long long)ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = duration(bad[i], &ms);

		CHECK_EQ(rc, -EINVAL);
		if (rc != -EINVAL)
			fprintf(stderr, "  duration \"%s\" accepted as %lld\n", bad[i],
			        (long long)ms);
	}

	/* every millisecond-exact X.XXXs value from 0 to 10 s is parsed exactly */
	{
		int wrong = 0;

		for (int i = 0; i < 10000; i++) {
			char s[16];

			snprintf(s, sizeof(s), "%d.%03ds", i / 1000, i % 1000);
			if (duration(s, &ms) || ms != i)
				wrong++;
		}
		CHECK_EQ(wrong, 0);
	}
}

/* ---- malformed lines ---- */

static void test_errors(void)
{
	/* column: 1-based; needle: a word the expectation must contain */
	static const struct {
		const char *line;
		size_t column;
		const char *needle;
	} bad[] = {
	        {"[10ms", 6, "]"}, /* no ']': the line ends where it was expected */
	        {"[", 2, "]"},
	        {"[10q] x", 2, "duration"}, /* at the start of the duration */
	        {"[ 5x ] y", 3, "duration"},
	        {"[1h5] x", 2, "duration"},
	        {"[10q]\r", 2, "duration"},
	        {"<foo,1,1s> x", 2, "quote"}, /* no quote */
	        {"<", 2, "quote"},
	        {"<'a',,1s> x", 6, "count"},  /* count missing */
	        {"<'a',0,1s> x", 6, "count"}, /* count 0: at the count */
	        {"<'a',x,1s> x", 6, "count"},
	        {"<'a'1,1s> x", 5, ","},        /* no ',' after the regex */
	        {"<'a',1 1s> x", 8, ","},       /* no ',' after the count */
	        {"<'a',1,> x", 8, "timeout"},   /* timeout missing */
	        {"<'a',1,5x> x", 8, "timeout"}, /* bad timeout */
	        {"<'a',1,1s x", 12, ">"},       /* no '>': the line ends where it was expected */
	        {"<'a x", 6, "'"},              /* unterminated quote: likewise */
	        {"|bogus> x", 2, "verb"},       /* unknown verb */
	        {"|> x", 2, "verb"},
	        {"|", 2, "verb"},
	        {"|+-> x", 2, "verb"},
	        {"|+ x", 4, ">"},    /* no '>' */
	        {"|+>", 4, "regex"}, /* no regex */
	        {"|+>   ", 7, "regex"},
	        {"|deny>\r", 7, "regex"},
	        {"|a>", 4, "regex"},
	};
	struct play_line l;
	struct play_error e;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i].line, &l, &e);

		CHECK_EQ(rc, -EINVAL);
		CHECK_EQ(e.column, bad[i].column);
		CHECK(e.expected && e.expected[0]);
		CHECK(e.expected && strstr(e.expected, bad[i].needle));
		if (rc != -EINVAL || e.column != bad[i].column ||
		    !(e.expected && strstr(e.expected, bad[i].needle)))
			fprintf(stderr, "  line \"%s\": rc %d column %zu expected \"%s\"\n",
			        bad[i].line, rc, e.column, e.expected ? e.expected : "(null)");
	}

	/* a count too large to hold is refused, at the count or after it */
	CHECK_EQ(parse("<'a',99999999999999999999999,1s> x", &l, &e), -EINVAL);
	CHECK(e.column >= 6 && e.column <= 29);
	CHECK(e.expected && e.expected[0]);
}

/* ---- practable's example script, line by line ---- */

static void test_example_script(void)
{
	static const char script[] = "[10ms]\n"
	                             "{\"some\":\"msg\"}\n"
	                             "# Non echo comment\n"
	                             "#- non echo comment\n"
	                             "#+ echo comment\n"
	                             "\n"
	                             "[0.1s] {\"an\":\"other\"}\n"
	                             "<'^foo\\s*',5,10ms> {\"send\":\"foos\"}\n"
	                             "[1ms]a\n"
	                             "|+> [a-h]\n"
	                             "|accept> [R-Z]\n"
	                             "|->[0-9]\n"
	                             "|deny>  [#!&%]\n"
	                             "|reset>\n";
	static const enum play_kind kinds[] = {
	        PLAY_WAIT,   PLAY_SEND,   PLAY_COMMENT, PLAY_COMMENT, PLAY_COMMENT,
	        PLAY_BLANK,  PLAY_SEND,   PLAY_SEND,    PLAY_SEND,    PLAY_FILTER,
	        PLAY_FILTER, PLAY_FILTER, PLAY_FILTER,  PLAY_FILTER,
	};
	const char *p = script, *end = script + sizeof(script) - 1;
	size_t n = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		struct play_line l;
		struct play_error e;

		set_line(p, (size_t)(nl - p));
		CHECK_EQ(play_parse_line(cur, cur_len, &l, &e), 0);
		if (n < sizeof(kinds) / sizeof(kinds[0]))
			CHECK_EQ(l.kind, kinds[n]);
		n++;
		p = nl + 1;
	}
	CHECK_EQ(n, sizeof(kinds) / sizeof(kinds[0]));
}

int main(void)
{
	RUN(test_blank());
	RUN(test_comments());
	RUN(test_delays());
	RUN(test_conditions());
	RUN(test_filters());
	RUN(test_messages());
	RUN(test_durations());
	RUN(test_errors());
	RUN(test_example_script());
	return harness_done();
}
