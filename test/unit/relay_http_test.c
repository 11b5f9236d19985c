/*
 * relay_http_test: request framing in relay/http.c (included to reach its statics), as RFC 9112
 * section 6 wants it: Transfer-Encoding never read (with Content-Length: 400; alone: 411 for a
 * POST), one Content-Length of decimal digits (lws joins repeated ones as "4, 5"), at most
 * MAX_BODY bytes.
 */
#include "relay/http.c"
#include "test/harness.h"

/* ---- what http.c calls elsewhere in relay/ (never reached by these tests) ---- */

struct server relay_srv;

bool relay_cluster_unloaded(void)
{
	return false; /* no --redis here: never waiting for a first load */
}

bool relay_rate_check(struct server *s, struct lws *wsi)
{
	(void)s, (void)wsi;
	return true;
}

int relay_access_session(struct server *s, struct lws *wsi, struct conn *c, const char *topic)
{
	(void)s, (void)wsi, (void)c, (void)topic;
	return 0;
}

int relay_redeem(struct lws *wsi, struct grant *g, const char **why)
{
	(void)wsi, (void)g, (void)why;
	return 0;
}

int relay_channel_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                         const char *rest)
{
	(void)s, (void)wsi, (void)c, (void)m, (void)rest;
	return 0;
}

int relay_signal_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                        const char *rest)
{
	(void)s, (void)wsi, (void)c, (void)m, (void)rest;
	return 0;
}

int relay_meet_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                      const char *rest)
{
	(void)s, (void)wsi, (void)c, (void)m, (void)rest;
	return 0;
}

int relay_ice_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m)
{
	(void)s, (void)wsi, (void)c, (void)m;
	return 0;
}

int relay_discovery(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                    const char *path)
{
	(void)s, (void)wsi, (void)c, (void)m, (void)path;
	return 0;
}

const char *relay_discovery_refusal(struct server *s, struct lws *wsi, enum relay_method m,
                                    const char *path, int *status)
{
	(void)s, (void)wsi, (void)m, (void)path, (void)status;
	return NULL;
}

int relay_bids(struct server *s, struct lws *wsi, struct conn *c, bool list, bool deny)
{
	(void)s, (void)wsi, (void)c, (void)list, (void)deny;
	return 0;
}

int relay_get_status(struct server *s, struct lws *wsi, struct conn *c)
{
	(void)s, (void)wsi, (void)c;
	return 0;
}

int relay_get_metrics(struct lws *wsi, struct conn *c)
{
	(void)wsi, (void)c;
	return 0;
}

int relay_get_healthz(struct server *s, struct lws *wsi, struct conn *c)
{
	(void)s, (void)wsi, (void)c;
	return 0;
}

bool relay_is_static(const char *path)
{
	(void)path;
	return false;
}

int relay_static_start(struct lws *wsi, struct conn *c, const char *path)
{
	(void)wsi, (void)c, (void)path;
	return 0;
}

int relay_static_write(struct lws *wsi, struct conn *c)
{
	(void)wsi, (void)c;
	return 0;
}

void relay_static_close(struct conn *c)
{
	(void)c;
}

/* ---- framing ---- */

/* framing_error()'s status, or 0 when the framing is sound (then *len is the length). */
static int framing(bool te, const char *cl, bool post, int64_t *len)
{
	int status;

	return framing_error(te, cl, post, MAX_BODY, len, &status) ? status : 0;
}

static void test_lengths(void)
{
	int64_t len;

	CHECK_EQ(framing(false, "", false, &len), 0);
	CHECK_EQ(len, 0);
	CHECK_EQ(framing(false, "0", true, &len), 0);
	CHECK_EQ(framing(false, "4", true, &len), 0);
	CHECK_EQ(len, 4);
	CHECK_EQ(framing(false, "0004", true, &len), 0);
	CHECK_EQ(len, 4);
	CHECK_EQ(framing(false, "4 \t", true, &len), 0); /* OWS after the value */
	CHECK_EQ(len, 4);
	CHECK_EQ(framing(false, "1024", true, &len), 0);
	CHECK_EQ(framing(false, "1025", true, &len), 413);
	CHECK_EQ(framing(false, "999999999999999999", true, &len), 413);
	CHECK_EQ(framing(false, "", true, &len), 411);
}

static void test_bad_lengths(void)
{
	static const char *const bad[] = {
	        "4, 5",
	        "4, 4",
	        "4,4",
	        "+4",
	        "-1",
	        "4x",
	        "x",
	        "0x4",
	        " ",
	        "4 4",
	        "4\t5",
	        "9999999999999999999", /* 19 digits: past what is read, whatever the limit */
	};
	int64_t len;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ(framing(false, bad[i], true, &len), 400);
		CHECK_EQ(framing(false, bad[i], false, &len), 400);
	}
	CHECK_EQ(framing(false, NULL, true, &len), 400); /* too long to copy */
}

static void test_transfer_encoding(void)
{
	int64_t len;

	CHECK_EQ(framing(true, "4", true, &len), 400);
	CHECK_EQ(framing(true, "0", false, &len), 400);
	CHECK_EQ(framing(true, NULL, true, &len), 400);
	CHECK_EQ(framing(true, "", true, &len), 411);
	CHECK_EQ(framing(true, "", false, &len), 400);
}

int main(void)
{
	RUN(test_lengths());
	RUN(test_bad_lengths());
	RUN(test_transfer_encoding());
	return harness_done();
}
