/*
 * dial_test: pkg/dial on a real loop against loopback sockets. A listening 127.0.0.1 socket is
 * reached (the fd non-blocking and close-on-exec) over TCP and UDP; "localhost" reaches a
 * listener on 127.0.0.1 only although ::1 comes first and refuses (skipped with a reason when
 * localhost does not resolve to both here); a bound port nobody listens on gives -ECONNREFUSED;
 * a listener whose queue is full (backlog 0) gives -ETIMEDOUT at the deadline; a dial cancelled
 * while resolving or while connecting never calls back, and its handles all close. The callback
 * never comes from dial_start() itself, also for an IP literal (taken without the thread pool)
 * whose connect() succeeds at once (UDP).
 */
#include "pkg/dial/dial.h"
#include "test/harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct outcome {
	int calls, fd, err;
	char why[DIAL_WHY];
};

static void on_dial(int fd, int err, const char *why, void *arg)
{
	struct outcome *o = arg;

	o->calls++;
	o->fd = fd;
	o->err = err;
	snprintf(o->why, sizeof(o->why), "%s", why);
}

/* A 127.0.0.1 socket of @type bound to a free port (in *port), listening with @backlog if >= 0. */
static int bound(int type, int backlog, int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	CHECK_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	if (backlog >= 0)
		CHECK_EQ(listen(fd, backlog), 0);
	CHECK_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Dial @host:@port and run the loop until everything the dial held has closed. */
static void dial_run(const char *host, int port, int type, int timeout_ms, struct outcome *o)
{
	uv_loop_t loop;
	char why[DIAL_WHY] = "";

	memset(o, 0, sizeof(*o));
	o->fd = -2;
	CHECK_EQ(uv_loop_init(&loop), 0);
	CHECK(dial_start(&loop, host, port, type, timeout_ms, on_dial, o, why) != NULL);
	CHECK_EQ(o->calls, 0); /* never from dial_start(), even when connect() succeeds at once */
	CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0);
	CHECK_EQ(uv_loop_close(&loop), 0);
	CHECK_EQ(o->calls, 1);
}

static void test_connects(int type)
{
	int port, lfd = bound(type, type == SOCK_STREAM ? 8 : -1, &port);
	struct outcome o;

	dial_run("127.0.0.1", port, type, 5000, &o);
	CHECK(o.fd >= 0);
	CHECK_EQ(o.err, 0);
	if (o.fd >= 0) {
		CHECK(fcntl(o.fd, F_GETFL) & O_NONBLOCK);
		CHECK(fcntl(o.fd, F_GETFD) & FD_CLOEXEC);
		if (type == SOCK_STREAM) {
			int a = accept(lfd, NULL, NULL);

			CHECK(a >= 0);
			if (a >= 0)
				close(a);
		}
		close(o.fd);
	}
	close(lfd);
}

/* Whether "localhost" resolves to ::1 first and then 127.0.0.1. */
static bool localhost_is_v6_then_v4(void)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *a;
	bool v6_first = false, v4_later = false;

	if (getaddrinfo("localhost", "1", &hints, &res))
		return false;
	v6_first = res->ai_family == AF_INET6;
	for (a = res->ai_next; a; a = a->ai_next)
		v4_later |= a->ai_family == AF_INET;
	freeaddrinfo(res);
	return v6_first && v4_later;
}

static void test_second_address(void)
{
	int port, lfd;
	struct outcome o;

	if (!localhost_is_v6_then_v4()) {
		printf("skip: localhost does not resolve to ::1 then 127.0.0.1 here\n");
		return;
	}
	lfd = bound(SOCK_STREAM, 8, &port); /* 127.0.0.1 only: ::1 refuses */
	dial_run("localhost", port, SOCK_STREAM, 5000, &o);
	CHECK(o.fd >= 0);
	CHECK_EQ(o.err, 0);
	if (o.fd >= 0)
		close(o.fd);
	close(lfd);
}

static void test_refused(void)
{
	int port,
	        fd = bound(SOCK_STREAM, -1, &port); /* bound, not listening: the port stays ours */
	struct outcome o;

	dial_run("127.0.0.1", port, SOCK_STREAM, 5000, &o);
	CHECK_EQ(o.fd, -1);
	CHECK_EQ(o.err, -ECONNREFUSED);
	CHECK(strstr(o.why, "127.0.0.1") != NULL);
	close(fd);
}

/* A listener with backlog 0 and one connection waiting in its queue: the kernel drops further
 * SYNs, so a connect stays in progress. *filler is the connection filling the queue. */
static int full_listener(int *port, int *filler)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int lfd = bound(SOCK_STREAM, 0, port);

	a.sin_port = htons((uint16_t)*port);
	*filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_EQ(connect(*filler, (struct sockaddr *)&a, sizeof(a)), 0);
	return lfd;
}

static void test_deadline(void)
{
	int port, filler, lfd = full_listener(&port, &filler);
	struct outcome o;

	dial_run("127.0.0.1", port, SOCK_STREAM, 200, &o);
	CHECK_EQ(o.fd, -1);
	CHECK_EQ(o.err, -ETIMEDOUT);
	close(filler);
	close(lfd);
}

static void cancel_on_timer(uv_timer_t *t)
{
	dial_cancel(t->data);
	uv_close((uv_handle_t *)t, NULL);
}

/* Cancelled at once (while the name is looked up) or after @after_ms (while connecting). */
static void test_cancel(int after_ms)
{
	int port, filler, lfd = full_listener(&port, &filler);
	struct outcome o = {0};
	char why[DIAL_WHY] = "";
	uv_loop_t loop;
	uv_timer_t t;
	struct dial *d;

	CHECK_EQ(uv_loop_init(&loop), 0);
	d = dial_start(&loop, "127.0.0.1", port, SOCK_STREAM, 5000, on_dial, &o, why);
	CHECK(d != NULL);
	if (after_ms) {
		uv_timer_init(&loop, &t);
		t.data = d;
		uv_timer_start(&t, cancel_on_timer, (uint64_t)after_ms, 0);
	} else {
		dial_cancel(d);
	}
	CHECK_EQ(uv_run(&loop, UV_RUN_DEFAULT), 0); /* returns once all the dial held is closed */
	CHECK_EQ(uv_loop_close(&loop), 0);
	CHECK_EQ(o.calls, 0);
	close(filler);
	close(lfd);
}

int main(void)
{
	RUN(test_connects(SOCK_STREAM));
	RUN(test_connects(SOCK_DGRAM));
	RUN(test_second_address());
	RUN(test_refused());
	RUN(test_deadline());
	RUN(test_cancel(0));
	RUN(test_cancel(50));
	return harness_done();
}
