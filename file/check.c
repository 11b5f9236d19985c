/*
 * file/check: `relay file check`, a monitoring probe. Two connections through the access
 * protocol (access, redeem, websocket), then a random probe message sent on one must arrive on
 * the other; prints one line with the three timings, or FAIL and the reason. One uv loop and the
 * asynchronous client (pkg/wsclient/uv.h), run one step at a time so that each step is timed.
 */
#define LOG_MODULE "check"
#include "file/client.h"
#include "pkg/clock/clock.h"
#include "pkg/secret/secret.h"
#include "pkg/wsclient/uv.h"
#include "pkg/wsframe/wsframe.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>
#include <uv.h>

#define CHECK_OUT_MAX 65536

/* One connection of the probe and what happened to it. */
struct end {
	uv_loop_t *loop;
	struct wsc_uv *c; /* NULL once ended (freed by pkg/wsclient) */
	bool open, ended;
	int err;
	const char *probe; /* on the receiving end: the text that must arrive */
	bool hit;
	char why[WSC_WHY];
};

static void on_open(struct wsc_uv *c, void *arg)
{
	struct end *e = arg;

	(void)c;
	e->open = true;
	uv_stop(e->loop);
}

static bool on_frame(struct wsc_uv *c, const struct ws_frame *f, const uint8_t *payload, void *arg)
{
	struct end *e = arg;

	(void)c;
	/* other messages on the topic are passed over */
	if (e->probe && (f->opcode == WS_TEXT || f->opcode == WS_BINARY) &&
	    f->payload_len == strlen(e->probe) &&
	    memcmp(payload, e->probe, (size_t)f->payload_len) == 0) {
		e->hit = true;
		uv_stop(e->loop);
	}
	return true;
}

static void on_end(struct wsc_uv *c, int err, int status, const char *why, void *arg)
{
	struct end *e = arg;

	(void)c;
	(void)status;
	e->c = NULL;
	e->ended = true;
	e->err = err ? err : -ECONNRESET;
	snprintf(e->why, sizeof(e->why), "%s", why);
	uv_stop(e->loop);
}

static const struct wsc_uv_cbs check_cbs = {on_open, on_frame, on_end};

static void on_timeout(uv_timer_t *t)
{
	*(bool *)t->data = true;
	uv_stop(t->loop);
}

/*
 * Run @loop until *@done, the end of @e, or @timeout_ms (the client has its own deadline for
 * the connection steps; this one bounds the wait for the probe). 0 or -ETIMEDOUT.
 */
static int run_until(uv_loop_t *loop, const bool *done, const struct end *e, int timeout_ms)
{
	uv_timer_t timer;
	bool expired = false;

	uv_timer_init(loop, &timer);
	timer.data = &expired;
	uv_timer_start(&timer, on_timeout, (uint64_t)timeout_ms, 0);
	while (!*done && !e->ended && !expired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(loop, UV_RUN_NOWAIT); /* the timer's close callback */
	return *done || e->ended ? 0 : -ETIMEDOUT;
}

/* Join @e to the topic; 0 once open, else a negative errno with e->why. */
static int join(uv_loop_t *loop, struct end *e, const struct client_opts *o, const char *token,
                SSL_CTX *tls)
{
	e->loop = loop;
	e->c = wsc_uv_join(loop, o->session, token, tls, (int)o->timeout, FILE_MSG_MAX,
	                   CHECK_OUT_MAX, &check_cbs, e, e->why);
	if (!e->c)
		return -EINVAL;
	/* the client's own deadline ends each step; this bound is only a safety net */
	if (run_until(loop, &e->open, e, (int)o->timeout * 4 + 1000))
		snprintf(e->why, sizeof(e->why), "the connection did not open in time");
	return e->open ? 0 : e->ended ? e->err : -ETIMEDOUT;
}

static int round_trip(uv_loop_t *loop, struct end *a, struct end *b, int timeout_ms, char *why,
                      size_t why_len)
{
	char probe[64];
	unsigned char rnd[8];
	int ret;

	RAND_bytes(rnd, sizeof(rnd));
	snprintf(probe, sizeof(probe), "relay-file-check %02x%02x%02x%02x%02x%02x%02x%02x", rnd[0],
	         rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	b->probe = probe;
	ret = wsc_uv_send(a->c, WS_TEXT, probe, strlen(probe));
	if (!ret)
		ret = run_until(loop, &b->hit, b, timeout_ms);
	if (!ret && !b->hit)
		ret = b->err;
	b->probe = NULL;
	if (ret)
		snprintf(why, why_len, "round trip through the topic failed: %.150s",
		         ret == -ETIMEDOUT
		                 ? "the probe did not arrive (does the token have read and write?)"
		         : b->ended ? b->why
		                    : strerror(-ret));
	return ret;
}

static double ms_since(int64_t t0)
{
	return (double)(clock_mono_ns() - t0) / 1e6;
}

int file_check(const struct client_opts *o)
{
	struct end a = {0}, b = {0};
	uv_loop_t loop;
	SSL_CTX *tls;
	char why[256] = "", *token = NULL;
	int ret;
	int64_t t0;
	double t_a = 0, t_b = 0, t_rt = 0;

	ret = uv_loop_init(&loop);
	if (ret) {
		printf("FAIL cannot start an event loop: %s\n", uv_strerror(ret));
		return CLIENT_FAIL;
	}
	tls = wsc_tls_new_ca(!o->insecure, o->ca_file, why);
	ret = tls ? file_token(o, &token, why) : -EINVAL;
	t0 = clock_mono_ns();
	if (!ret && (ret = join(&loop, &a, o, token, tls)))
		snprintf(why, sizeof(why), "%s", a.why);
	t_a = ms_since(t0);
	t0 = clock_mono_ns();
	if (!ret && (ret = join(&loop, &b, o, token, tls)))
		snprintf(why, sizeof(why), "%s", b.why);
	t_b = ms_since(t0);
	t0 = clock_mono_ns();
	if (!ret)
		ret = round_trip(&loop, &a, &b, (int)o->timeout, why, sizeof(why));
	t_rt = ms_since(t0);
	secret_free(token);
	/* no close handshake: a probe only needs the relay to see the sockets end */
	wsc_uv_close(a.c);
	wsc_uv_close(b.c);
	uv_run(&loop, UV_RUN_DEFAULT); /* until both are freed */
	uv_loop_close(&loop);
	if (tls)
		SSL_CTX_free(tls);
	if (ret) {
		printf("FAIL %s\n", why);
		return CLIENT_FAIL;
	}
	printf("ok access+connect %.1f ms, second connection %.1f ms, round trip %.2f ms\n", t_a,
	       t_b, t_rt);
	return CLIENT_OK;
}
