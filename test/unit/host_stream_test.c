/*
 * host_stream_test: a stream's loop (host/stream.c, link.c, device.c, msgq.c, encoder.c and
 * their pure helpers, and channel.c, included to reach their statics; the video pieces stubbed, as libav is
 * not linked here). The relay link's connection steps are asynchronous: a stream whose relay
 * accepts the connection and never answers stops at once when asked, where a blocking join
 * held it for --timeout; it then reports its end through the caller's async handle. So are the
 * device's: a tcp: device whose connect is never answered holds neither the relay link nor a stop.
 */
#include "host/stream.c"
#undef LOG_MODULE
#include "host/link.c"
#undef LOG_MODULE
#include "host/device.c"
#undef LOG_MODULE
#include "host/msgq.c"
#undef LOG_MODULE
#include "host/encoder.c"
#undef LOG_MODULE
#undef LOG_MODULE
#include "host/backoff.c"
#undef LOG_MODULE
#include "host/devspec.c"
#undef LOG_MODULE
#include "host/handover.c"
#undef LOG_MODULE
#include "host/outbuf.c"
#undef LOG_MODULE
#include "host/channel.c"
#undef LOG_MODULE
#include "host/opts.c"
#include "test/harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>

#define STOP_BOUND_NS (2 * NS_PER_S) /* --timeout is 10 s: a blocking step would take that */

/* ---- stubs: what host/video.c and host/ingest.c provide in the program ---- */

int host_video_enc_new(const struct host_video_opts *o, host_video_emit_fn emit, void *arg,
                       struct host_video_enc **out, char why[160])
{
	(void)o;
	(void)emit;
	(void)arg;
	*out = NULL;
	snprintf(why, 160, "no video in this test");
	return -ENOTSUP;
}

void host_video_enc_free(struct host_video_enc *e)
{
	(void)e;
}

int host_video_src_open(const char *spec, const struct host_video_opts *o, const atomic_bool *stop,
                        struct host_video_src **out, char why[160])
{
	(void)spec;
	(void)o;
	(void)stop;
	*out = NULL;
	snprintf(why, 160, "no video in this test");
	return -ENOTSUP;
}

bool host_video_src_is_paced(const struct host_video_src *s)
{
	(void)s;
	return true;
}

int host_video_src_encode_next(struct host_video_src *s, struct host_video_enc *e, int64_t n,
                               int64_t time_ms, char why[160])
{
	(void)s;
	(void)e;
	(void)n;
	(void)time_ms;
	snprintf(why, 160, "no video in this test");
	return -ENOTSUP;
}

void host_video_src_free(struct host_video_src *s)
{
	(void)s;
}

bool host_ingest_feed_name_ok(const char *p, size_t n)
{
	(void)p;
	return n > 0 && n < 64;
}

/* ---- the test ---- */

static int done_calls;

static void on_done(uv_async_t *h)
{
	(void)h;
	done_calls++;
}

/* A listener that never accepts: connections complete in its backlog and hear nothing. */
static int black_hole(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 8) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static void test_stop_while_joining(void)
{
	char url[64], err[CFG_ERR_MAX], why[HOST_STREAM_WHY];
	char *argv[] = {(char *)"host", (char *)"--session", url,          (char *)"--feed",
	                (char *)"f",    (char *)"--timeout", (char *)"10s"};
	struct host_opts o = {0};
	struct host_stream *s = NULL;
	struct pollfd pfd;
	uv_loop_t loop;
	uv_async_t done;
	int port = 0, first, lfd = black_hole(&port);
	int64_t t0;

	CHECK(lfd >= 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/session/t", port);
	setenv("RELAY_HOST_TOKEN", "a.b.c", 1);
	CHECK_EQ(cfg_parse(&host_opts_table, &o, 7, argv, &first, err), CFG_OK);
	CHECK_EQ(uv_loop_init(&loop), 0);
	CHECK_EQ(uv_async_init(&loop, &done, on_done), 0);
	CHECK_EQ(host_stream_start(&o, NULL, NULL, &done, &s, why), 0);

	/* the access POST's connection is in the listener's backlog: the link is joining */
	pfd = (struct pollfd){.fd = lfd, .events = POLLIN};
	CHECK_EQ(poll(&pfd, 1, 5000), 1);
	t0 = clock_mono_ns();
	host_stream_request_stop(s);
	while (!host_stream_finished(s) && clock_mono_ns() - t0 < STOP_BOUND_NS)
		poll(NULL, 0, 5);
	CHECK(host_stream_finished(s));
	CHECK(clock_mono_ns() - t0 < STOP_BOUND_NS);
	host_stream_stop(s); /* joins the thread: waits out a blocking step if there still is one */

	uv_run(&loop, UV_RUN_NOWAIT); /* the stream's end, sent from its thread */
	CHECK(done_calls >= 1);
	uv_close((uv_handle_t *)&done, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK_EQ(uv_loop_close(&loop), 0);
	cfg_release(&host_opts_table, &o);
	close(lfd);
}

/* A listener whose queue is full (backlog 0, then connections until one no longer completes):
 * the kernel drops further SYNs, so a connect to it neither succeeds nor fails for seconds. */
static int full_listener(int *port, int fillers[4])
{
	int fd = black_hole(port);
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)*port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	if (fd < 0 || listen(fd, 0))
		return -1;
	for (int i = 0; i < 4; i++) {
		struct pollfd p = {.events = POLLOUT};
		int err = 0;
		socklen_t len = sizeof(err);

		p.fd = fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (p.fd < 0)
			return -1;
		connect(p.fd, (struct sockaddr *)&a, sizeof(a));
		if (poll(&p, 1, 500) == 1 && !getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len) &&
		    !err)
			continue;
		close(fillers[i]); /* did not complete: the queue is full */
		fillers[i] = -1;
		return fd;
	}
	return -1;
}

/* Whether a socket of ours is in SYN_SENT (state 02 in /proc/net/tcp) towards 127.0.0.1:@port. */
static bool syn_sent_to(int port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[256];
	bool found = false;
	unsigned raddr, rport, st;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, " %*d: %*x:%*x %x:%x %x", &raddr, &rport, &st) == 3 &&
		        (int)rport == port && st == 2;
	fclose(f);
	return found;
}

/* A tcp: device that never answers (its connect is in SYN_SENT) does not hold the stream's
 * loop: the relay link goes on meanwhile, and a stop is prompt, where a blocking connect held the
 * stream for --timeout. */
static void test_stop_while_device_connects(void)
{
	char url[64], data[64], err[CFG_ERR_MAX], why[HOST_STREAM_WHY];
	char *argv[] = {(char *)"host", (char *)"--session", url,          (char *)"--data",
	                data,           (char *)"--timeout", (char *)"10s"};
	struct host_opts o = {0};
	struct host_stream *s = NULL;
	struct host_stream_stats st;
	struct pollfd pfd;
	int port = 0, dport = 0, first, fillers[4] = {-1, -1, -1, -1};
	int lfd = black_hole(&port), dfd = full_listener(&dport, fillers);
	int64_t t0;

	CHECK(lfd >= 0);
	CHECK(dfd >= 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/session/t", port);
	snprintf(data, sizeof(data), "tcp:127.0.0.1:%d", dport);
	setenv("RELAY_HOST_TOKEN", "a.b.c", 1);
	CHECK_EQ(cfg_parse(&host_opts_table, &o, 7, argv, &first, err), CFG_OK);
	CHECK_EQ(host_stream_start(&o, NULL, NULL, NULL, &s, why), 0);

	/* the device's connect is under way: its SYN goes unanswered */
	t0 = clock_mono_ns();
	while (!syn_sent_to(dport) && clock_mono_ns() - t0 < STOP_BOUND_NS)
		poll(NULL, 0, 5);
	CHECK(syn_sent_to(dport));
	host_stream_stats(s, &st);
	CHECK(!strcmp(st.device, "down"));
	/* meanwhile the relay link goes on joining: its connection reaches the relay (a blocked
	 * loop would make it only after the device's --timeout) */
	pfd = (struct pollfd){.fd = lfd, .events = POLLIN};
	CHECK_EQ(poll(&pfd, 1, (int)(STOP_BOUND_NS / NS_PER_MS)), 1);
	t0 = clock_mono_ns();
	host_stream_request_stop(s);
	while (!host_stream_finished(s) && clock_mono_ns() - t0 < STOP_BOUND_NS)
		poll(NULL, 0, 5);
	CHECK(host_stream_finished(s));
	CHECK(clock_mono_ns() - t0 < STOP_BOUND_NS);
	host_stream_stop(s);
	cfg_release(&host_opts_table, &o);
	for (int i = 0; i < 4; i++)
		if (fillers[i] >= 0)
			close(fillers[i]);
	close(dfd);
	close(lfd);
}

int main(void)
{
	log_init("warn", "text", NULL);
	RUN(test_stop_while_joining());
	RUN(test_stop_while_device_connects());
	return harness_done();
}
