/*
 * file/check: `relay file check`, a monitoring probe. Two connections through the access
 * protocol (access, redeem, websocket), then a random probe message sent on one must arrive on
 * the other; prints one line with the three timings, or FAIL and the reason. Blocking, no loop.
 */
#define LOG_MODULE "check"
#include "file/client.h"
#include "pkg/clock/clock.h"
#include "pkg/secret/secret.h"
#include "pkg/wsclient/wsclient.h"
#include "pkg/wsframe/wsframe.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>

static double ms_since(int64_t t0)
{
	return (double)(clock_mono_ns() - t0) / 1e6;
}

/* Wait for a message carrying @probe on @c, within @timeout_ms. */
struct probe {
	const char *text;
	bool hit;
};

static bool probe_frame(void *arg, const struct ws_frame *f, const uint8_t *payload)
{
	struct probe *pr = arg;

	pr->hit = f->payload_len == strlen(pr->text) &&
	          memcmp(payload, pr->text, (size_t)f->payload_len) == 0;
	return !pr->hit; /* other messages on the topic are passed over */
}

/* Wait until the probe comes back on @c (non-blocking), skipping other messages. */
static int await_probe(struct wsc *c, const char *probe, int timeout_ms)
{
	int64_t end = clock_mono_ns() + (int64_t)timeout_ms * 1000000;
	struct probe pr = {probe, false};

	for (int64_t left; (left = (end - clock_mono_ns()) / 1000000) >= 0;) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int r = wsc_read_frames(c, FILE_MSG_MAX + WSFRAME_MAX_HEADER, probe_frame, &pr);

		if (pr.hit)
			return 0;
		if (r < 0)
			return r == -EPROTO ? -EPROTO : -ECONNRESET;
		poll(&pfd, 1, (int)left + 1);
	}
	return -ETIMEDOUT;
}

int file_check(const struct client_opts *o)
{
	struct wsc a = {.fd = -1}, b = {.fd = -1};
	SSL_CTX *tls;
	char why[256] = "", *token = NULL, probe[64];
	unsigned char rnd[8];
	int status, ret;
	int64_t t0;
	double t_a, t_b, t_rt;

	tls = wsc_tls_new_ca(!o->insecure, o->ca_file, why);
	ret = tls ? file_token(o, &token, why) : -EINVAL;
	t0 = clock_mono_ns();
	if (!ret)
		ret = wsc_join(&a, o->session, token, tls, (int)o->timeout, &status, why);
	t_a = ms_since(t0);
	t0 = clock_mono_ns();
	if (!ret)
		ret = wsc_join(&b, o->session, token, tls, (int)o->timeout, &status, why);
	t_b = ms_since(t0);
	RAND_bytes(rnd, sizeof(rnd));
	snprintf(probe, sizeof(probe), "relay-file-check %02x%02x%02x%02x%02x%02x%02x%02x", rnd[0],
	         rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	t0 = clock_mono_ns();
	if (!ret) {
		ret = wsc_send_frame(&a, WS_TEXT, probe, strlen(probe), (int)o->timeout);
		if (!ret)
			ret = await_probe(&b, probe, (int)o->timeout);
		if (ret)
			snprintf(
			        why, sizeof(why), "round trip through the topic failed: %s",
			        ret == -ETIMEDOUT
			                ? "the probe did not arrive (does the token have read and write?)"
			                : strerror(-ret));
	}
	t_rt = ms_since(t0);
	secret_free(token);
	wsc_close(&a);
	wsc_close(&b);
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
