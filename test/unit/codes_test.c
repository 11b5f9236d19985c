/*
 * codes_test: pkg/codes against its contract (pkg/codes/codes.h). Code syntax and randomness,
 * single use, the grant handed back whole, topic binding (-EXDEV, and the code used up all the
 * same), expiry at now > issue + ttl, malformed and near-miss codes, the capacity limit and how
 * expiry frees it, dropping by booking, the count, and 20000 live codes at once (long hash chains). Time is passed in, never read.
 */
#include "pkg/codes/codes.h"
#include "test/harness.h"

#include <errno.h>
#include <stdlib.h>

#define TTL 30000 /* ms */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* ---- helpers ---- */

static struct grant make_grant(const char *topic, const char *booking, const char *who)
{
	struct grant g;

	memset(&g, 0, sizeof(g));
	snprintf(g.topic, sizeof(g.topic), "%s", topic);
	snprintf(g.prefix, sizeof(g.prefix), "session");
	snprintf(g.booking_id, sizeof(g.booking_id), "%s", booking);
	snprintf(g.who, sizeof(g.who), "%s", who);
	snprintf(g.scopes, sizeof(g.scopes), "read,write");
	g.can_read = true;
	g.can_write = false;
	g.exp = 1700000000;
	return g;
}

static void check_grant(const struct grant *got, const struct grant *want)
{
	CHECK_STR(got->topic, want->topic);
	CHECK_STR(got->prefix, want->prefix);
	CHECK_STR(got->booking_id, want->booking_id);
	CHECK_STR(got->who, want->who);
	CHECK_STR(got->scopes, want->scopes);
	CHECK_EQ(got->can_read, want->can_read);
	CHECK_EQ(got->can_write, want->can_write);
	CHECK_EQ(got->exp, want->exp);
}

static bool is_b64url(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!s[i] || !memchr(b64url, s[i], 64))
			return false;
	return true;
}

/* Issue a code for @g, checking that it worked. */
static void issue(struct codes *c, const struct grant *g, int64_t now, char code[CODE_LEN + 1])
{
	memset(code, 0, CODE_LEN + 1);
	CHECK_EQ(codes_issue(c, g, now, code), 0);
}

static int redeem(struct codes *c, const char *code, const char *topic, int64_t now)
{
	struct grant out;

	return codes_redeem(c, code, strlen(code), topic, now, &out);
}

/* Another valid base64url character than @ch. */
static char other_char(char ch)
{
	return ch == 'A' ? 'B' : 'A';
}

/* ---- tests ---- */

static void test_issue_syntax(void)
{
	struct codes *c = codes_new(16, TTL);
	struct grant g = make_grant("lab-1", "bk-1", "alice");
	char a[CODE_LEN + 1], b[CODE_LEN + 1];

	CHECK(c != NULL);
	issue(c, &g, 1000, a);
	issue(c, &g, 1000, b);
	CHECK_EQ(strlen(a), CODE_LEN);
	CHECK_EQ(strlen(b), CODE_LEN);
	CHECK(is_b64url(a, CODE_LEN));
	CHECK(is_b64url(b, CODE_LEN));
	CHECK(strcmp(a, b) != 0);
	CHECK_EQ(codes_count(c), 2);
	codes_free(c);
}

/* Over many codes every character position takes many values (no stuck bits). */
static void test_issue_spread(void)
{
	struct codes *c = codes_new(1000, TTL);
	struct grant g = make_grant("t", "", "");
	bool seen[CODE_LEN][64];
	char code[CODE_LEN + 1];
	int narrow = 0;

	memset(seen, 0, sizeof(seen));
	for (int n = 0; n < 1000; n++) {
		narrow += codes_issue(c, &g, 0, code) != 0;
		for (int i = 0; i < CODE_LEN; i++) {
			const char *p = memchr(b64url, code[i], 64);

			if (p)
				seen[i][p - b64url] = true;
		}
	}
	for (int i = 0; i < CODE_LEN; i++) {
		int k = 0;

		for (int v = 0; v < 64; v++)
			k += seen[i][v];
		narrow += k < 60; /* 1000 draws miss a value with p ~ 1e-5 */
	}
	CHECK_EQ(narrow, 0);
	codes_free(c);
}

static void test_redeem_once(void)
{
	struct codes *c = codes_new(16, TTL);
	struct grant g = make_grant("lab-1", "bk-1", "alice"), out;
	char code[CODE_LEN + 1];

	g.can_write = true;
	g.exp = 1234567890123;
	snprintf(g.scopes, sizeof(g.scopes), "%s", "read,write,admin:x");
	issue(c, &g, 1000, code);
	memset(&out, 0x5a, sizeof(out));
	CHECK_EQ(codes_redeem(c, code, CODE_LEN, "lab-1", 2000, &out), 0);
	check_grant(&out, &g);
	CHECK_EQ(codes_count(c), 0);
	CHECK_EQ(codes_redeem(c, code, CODE_LEN, "lab-1", 2000, &out), -ENOENT);
	CHECK_EQ(codes_count(c), 0);
	codes_free(c);
}

/* A code that is not NUL-terminated: only @len bytes are read (ASan checks). */
static void test_redeem_unterminated(void)
{
	struct codes *c = codes_new(16, TTL);
	struct grant g = make_grant("lab-1", "", ""), out;
	char code[CODE_LEN + 1];
	char *raw = malloc(CODE_LEN);

	issue(c, &g, 0, code);
	memcpy(raw, code, CODE_LEN);
	CHECK_EQ(codes_redeem(c, raw, CODE_LEN, "lab-1", 0, &out), 0);
	free(raw);
	codes_free(c);
}

static void test_wrong_topic(void)
{
	struct codes *c = codes_new(16, TTL);
	struct grant g = make_grant("lab-1", "bk-1", "alice"), out;
	char code[CODE_LEN + 1];

	issue(c, &g, 1000, code);
	CHECK_EQ(codes_redeem(c, code, CODE_LEN, "lab-1", 1000, &out), 0);
	check_grant(&out, &g);
	/* a code shown for another topic is used up all the same: single use means one showing */
	for (const char *const *t = (const char *const[]){"lab-2", "lab-", "lab-10", "", NULL}; *t;
	     t++) {
		issue(c, &g, 1000, code);
		CHECK_EQ(codes_count(c), 1);
		memset(&out, 0x5a, sizeof(out));
		CHECK_EQ(codes_redeem(c, code, CODE_LEN, *t, 1000, &out), -EXDEV);
		CHECK_EQ(out.topic[0], 0x5a); /* no grant handed out */
		CHECK_EQ(codes_count(c), 0);
		CHECK_EQ(codes_redeem(c, code, CODE_LEN, "lab-1", 1000, &out), -ENOENT);
	}
	codes_free(c);
}

static void test_expiry(void)
{
	struct codes *c = codes_new(16, TTL);
	struct grant g = make_grant("lab-1", "", "");
	char early[CODE_LEN + 1], late[CODE_LEN + 1], code[CODE_LEN + 1];

	issue(c, &g, 1000, early);
	issue(c, &g, 1000, late);
	issue(c, &g, 1000, code);
	CHECK_EQ(redeem(c, early, "lab-1", 1000 + TTL - 1), 0); /* within the ttl */
	CHECK_EQ(redeem(c, late, "lab-1", 1000 + TTL + 1), -ENOENT);
	CHECK_EQ(codes_count(c), 1); /* the expired one went on redeem */
	CHECK_EQ(redeem(c, late, "lab-1", 1000), -ENOENT);
	CHECK_EQ(redeem(c, code, "other", 1000 + TTL + 1000), -ENOENT); /* expired beats topic */
	CHECK_EQ(codes_count(c), 0);
	codes_free(c);
}

/* The last valid moment is issue + ttl, for redeem and for expire alike. */
static void test_expiry_edge(void)
{
	struct codes *c = codes_new(16, TTL);
	struct grant g = make_grant("lab-1", "", "");
	char a[CODE_LEN + 1], b[CODE_LEN + 1];

	issue(c, &g, 500, a);
	issue(c, &g, 500, b);
	CHECK_EQ(codes_expire(c, 500 + TTL), 0);
	CHECK_EQ(redeem(c, a, "lab-1", 500 + TTL), 0);
	CHECK_EQ(codes_expire(c, 500 + TTL + 1), 1);
	CHECK_EQ(redeem(c, b, "lab-1", 500 + TTL), -ENOENT);
	codes_free(c);
}

static void test_malformed(void)
{
	static const char bad_chars[] = {'+', '/', '=', ' ', '.', '\n', '\0', '\x80'};
	struct codes *c = codes_new(16, TTL);
	struct grant g = make_grant("lab-1", "", ""), out;
	char code[CODE_LEN + 1], bad[CODE_LEN + 2];
	int wrong = 0;

	issue(c, &g, 0, code);
	CHECK_EQ(codes_redeem(c, code, CODE_LEN - 1, "lab-1", 0, &out), -ENOENT);
	memcpy(bad, code, CODE_LEN);
	bad[CODE_LEN] = 'A';
	bad[CODE_LEN + 1] = '\0';
	CHECK_EQ(codes_redeem(c, bad, CODE_LEN + 1, "lab-1", 0, &out), -ENOENT);
	CHECK_EQ(codes_redeem(c, "", 0, "lab-1", 0, &out), -ENOENT);
	for (size_t i = 0; i < sizeof(bad_chars); i++) {
		for (int pos = 0; pos < CODE_LEN; pos += CODE_LEN - 1) {
			memcpy(bad, code, CODE_LEN + 1);
			bad[pos] = bad_chars[i];
			wrong += codes_redeem(c, bad, CODE_LEN, "lab-1", 0, &out) != -ENOENT;
		}
	}
	CHECK_EQ(wrong, 0);

	/* a valid code that differs only in its last (or first) character */
	memcpy(bad, code, CODE_LEN + 1);
	bad[CODE_LEN - 1] = other_char(code[CODE_LEN - 1]);
	CHECK_EQ(redeem(c, bad, "lab-1", 0), -ENOENT);
	memcpy(bad, code, CODE_LEN + 1);
	bad[0] = other_char(code[0]);
	CHECK_EQ(redeem(c, bad, "lab-1", 0), -ENOENT);
	CHECK_EQ(codes_count(c), 1);
	CHECK_EQ(redeem(c, code, "lab-1", 0), 0); /* untouched by the misses */
	codes_free(c);
}

static void test_capacity(void)
{
	struct codes *c = codes_new(3, TTL);
	struct grant g = make_grant("lab-1", "", "");
	char code[4][CODE_LEN + 1];

	issue(c, &g, 0, code[0]);
	issue(c, &g, 10, code[1]);
	issue(c, &g, 20, code[2]);
	CHECK_EQ(codes_issue(c, &g, 20, code[3]), -ENOSPC);
	CHECK_EQ(codes_count(c), 3);
	CHECK_EQ(codes_expire(c, TTL + 5), 1); /* only the first is past its ttl */
	CHECK_EQ(codes_count(c), 2);
	CHECK_EQ(codes_expire(c, TTL + 5), 0);
	issue(c, &g, TTL + 5, code[3]);
	CHECK_EQ(codes_count(c), 3);
	CHECK_EQ(redeem(c, code[1], "lab-1", TTL + 5), 0);
	CHECK_EQ(codes_count(c), 2);
	issue(c, &g, TTL + 5, code[0]); /* redeeming freed a slot */
	CHECK_EQ(codes_count(c), 3);

	/* full again: issue expires old codes itself (code[2] at 20, code[0] and [3] at TTL + 5) */
	CHECK_EQ(codes_issue(c, &g, TTL + 21, code[1]), 0);
	CHECK_EQ(codes_count(c), 3);
	CHECK_EQ(redeem(c, code[2], "lab-1", TTL + 21), -ENOENT);
	CHECK_EQ(redeem(c, code[3], "lab-1", TTL + 21), 0);
	CHECK_EQ(redeem(c, code[0], "lab-1", TTL + 21), 0);
	CHECK_EQ(redeem(c, code[1], "lab-1", TTL + 21), 0);
	CHECK_EQ(codes_count(c), 0);
	codes_free(c);

	c = codes_new(0, TTL);
	CHECK_EQ(codes_issue(c, &g, 0, code[0]), -ENOSPC);
	codes_free(c);
}

static void test_drop_booking(void)
{
	static const char *const bookings[] = {"bk-1", "bk-2", "bk-1", "", "bk-10", "bk-1", "bk-"};
	enum { N = sizeof(bookings) / sizeof(bookings[0]) };
	struct codes *c = codes_new(64, TTL);
	char code[N][CODE_LEN + 1];
	struct grant g[N];
	int wrong = 0;

	for (int i = 0; i < N; i++) {
		g[i] = make_grant("lab-1", bookings[i], "who");
		issue(c, &g[i], 0, code[i]);
	}
	CHECK_EQ(codes_count(c), N);
	CHECK_EQ(codes_drop_booking(c, "bk-1"), 3);
	CHECK_EQ(codes_count(c), N - 3);
	CHECK_EQ(codes_drop_booking(c, "bk-1"), 0);
	CHECK_EQ(codes_drop_booking(c, "no-such"), 0);
	for (int i = 0; i < N; i++) {
		int want = strcmp(bookings[i], "bk-1") == 0 ? -ENOENT : 0;

		wrong += redeem(c, code[i], "lab-1", 0) != want;
	}
	CHECK_EQ(wrong, 0);
	CHECK_EQ(codes_count(c), 0);
	codes_free(c);
}

static void test_count(void)
{
	struct codes *c = codes_new(100, TTL);
	struct grant g = make_grant("lab-1", "bk", "");
	char code[10][CODE_LEN + 1];

	CHECK_EQ(codes_count(c), 0);
	for (int i = 0; i < 10; i++)
		issue(c, &g, i * 1000, code[i]);
	CHECK_EQ(codes_count(c), 10);
	CHECK_EQ(redeem(c, code[9], "lab-1", 9000), 0);
	CHECK_EQ(codes_count(c), 9);
	CHECK_EQ(redeem(c, code[8], "nope", 9000), -EXDEV);
	CHECK_EQ(codes_count(c), 8);
	CHECK_EQ(codes_expire(c, TTL + 2500), 3); /* issued at 0, 1000, 2000 */
	CHECK_EQ(codes_count(c), 5);
	CHECK_EQ(codes_drop_booking(c, "bk"), 5);
	CHECK_EQ(codes_count(c), 0);
	codes_free(c);
	codes_free(NULL);
}

/* ---- many codes ---- */

#define MANY 20000

struct issued {
	char code[CODE_LEN + 1];
	int idx;
};

static int cmp_issued(const void *a, const void *b)
{
	return strcmp(((const struct issued *)a)->code, ((const struct issued *)b)->code);
}

static void test_many(void)
{
	struct codes *c = codes_new(MANY, TTL);
	struct issued *is = calloc(MANY, sizeof(*is));
	struct grant g, out;
	char topic[32], spare[CODE_LEN + 1];
	int failed = 0, wrong = 0, dups = 0;

	for (int i = 0; i < MANY; i++) {
		snprintf(topic, sizeof(topic), "lab-%d", i % 97);
		g = make_grant(topic, "bk", "");
		snprintf(g.who, sizeof(g.who), "user-%d", i);
		failed += codes_issue(c, &g, 0, is[i].code) != 0;
		is[i].idx = i;
	}
	CHECK_EQ(failed, 0);
	CHECK_EQ(codes_count(c), MANY);
	CHECK_EQ(codes_issue(c, &g, 0, spare), -ENOSPC);

	qsort(is, MANY, sizeof(*is), cmp_issued); /* a shuffled redeem order, and dups meet */
	for (int i = 1; i < MANY; i++)
		dups += strcmp(is[i - 1].code, is[i].code) == 0;
	CHECK_EQ(dups, 0);
	for (int i = 0; i < MANY; i++) {
		char want[GRANT_FIELD];

		snprintf(topic, sizeof(topic), "lab-%d", is[i].idx % 97);
		snprintf(want, sizeof(want), "user-%d", is[i].idx);
		if (i % 3 == 0) { /* wrong topic: used up, and the chain must stay intact */
			wrong += codes_redeem(c, is[i].code, CODE_LEN, "x", 1, &out) != -EXDEV;
			wrong += codes_redeem(c, is[i].code, CODE_LEN, topic, 1, &out) != -ENOENT;
			continue;
		}
		if (codes_redeem(c, is[i].code, CODE_LEN, topic, 1, &out) != 0)
			failed++;
		else
			wrong += strcmp(out.who, want) != 0 || strcmp(out.topic, topic) != 0;
		if (i % 2 == 0) /* then gone */
			wrong += codes_redeem(c, is[i].code, CODE_LEN, topic, 1, &out) != -ENOENT;
	}
	CHECK_EQ(failed, 0);
	CHECK_EQ(wrong, 0);
	CHECK_EQ(codes_count(c), 0);
	free(is);
	codes_free(c);
}

int main(void)
{
	RUN(test_issue_syntax());
	RUN(test_issue_spread());
	RUN(test_redeem_once());
	RUN(test_redeem_unterminated());
	RUN(test_wrong_topic());
	RUN(test_expiry());
	RUN(test_expiry_edge());
	RUN(test_malformed());
	RUN(test_capacity());
	RUN(test_drop_booking());
	RUN(test_count());
	RUN(test_many());
	return harness_done();
}
