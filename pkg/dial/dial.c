/*
 * pkg/dial: see dial.h. One struct dial owns a lookup, a poll handle, a timer and the socket
 * being connected; it is freed once the lookup has come back and both handles have closed,
 * whichever of success, failure or cancel came first (uv_cancel() cannot stop a lookup already
 * running, so a cancelled dial may outlive its caller's interest until then).
 */
#include "pkg/dial/dial.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct dial {
	uv_loop_t *loop;
	uv_getaddrinfo_t gai;
	uv_timer_t timer;
	uv_poll_t *poll;           /* watches fd for writability, or NULL */
	struct addrinfo *ais, *ai; /* the addresses, and the one being tried */
	char host[128];
	int port;
	int fd;   /* the socket being connected, or -1 */
	int err;  /* the last address's failure (errno), 0 if none yet */
	int refs; /* the lookup while it runs, the timer and each poll handle until closed */
	int timeout_ms;
	bool resolving, done;
	dial_cb cb;
	void *arg;
};

static void release(struct dial *d)
{
	if (--d->refs)
		return;
	if (d->ais)
		uv_freeaddrinfo(d->ais);
	free(d);
}

static void timer_closed(uv_handle_t *h)
{
	release(h->data);
}

static void poll_closed(uv_handle_t *h)
{
	struct dial *d = h->data;

	free(h);
	release(d);
}

/* Stop watching and close the socket being connected, if any. A poll handle per socket: libuv
 * watches by fd, and the closed fd's number may come back for the next address. uv_close()
 * stops the watch at once, so the fd can be closed right after. */
static void drop_socket(struct dial *d, bool close_fd)
{
	if (d->poll)
		uv_close((uv_handle_t *)d->poll, poll_closed);
	d->poll = NULL;
	if (d->fd >= 0 && close_fd)
		close(d->fd);
	d->fd = -1;
}

/* Stop everything that can still call back; the last handle to close frees @d. */
static void finish(struct dial *d, bool close_fd)
{
	d->done = true;
	drop_socket(d, close_fd);
	if (d->resolving)
		uv_cancel((uv_req_t *)&d->gai); /* fails harmlessly once running */
	uv_close((uv_handle_t *)&d->timer, timer_closed);
}

/* @err (a negative errno) with "cannot connect to HOST:PORT: strerror(-err)", or @what if given. */
static void fail(struct dial *d, int err, const char *what)
{
	dial_cb cb = d->cb;
	void *arg = d->arg;
	char why[DIAL_WHY];

	if (what)
		snprintf(why, sizeof(why), "%s", what);
	else
		snprintf(why, sizeof(why), "cannot connect to %.100s:%d: %s", d->host, d->port,
		         strerror(-err));
	finish(d, true);
	cb(-1, err, why, arg);
}

static void succeed(struct dial *d, int fd)
{
	dial_cb cb = d->cb;
	void *arg = d->arg;

	d->fd = fd;
	finish(d, false); /* the fd is the caller's now */
	cb(fd, 0, "", arg);
}

static void try_address(struct dial *d);

/* The socket being connected is writable: connected, or failed (then the next address). */
static void on_poll(uv_poll_t *p, int status, int events)
{
	struct dial *d = p->data;
	socklen_t len = sizeof(int);
	int err = 0;

	(void)status;
	(void)events;
	if (d->done || p != d->poll)
		return;
	if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len))
		err = errno;
	if (!err) {
		int fd = d->fd;

		drop_socket(d, false);
		succeed(d, fd);
		return;
	}
	drop_socket(d, true);
	d->err = err;
	d->ai = d->ai->ai_next;
	try_address(d);
}

/* Watch @fd (connecting) for writability; 0 or -ENOMEM. */
static int watch(struct dial *d, int fd)
{
	uv_poll_t *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	if (uv_poll_init_socket(d->loop, p, fd)) {
		free(p);
		return -ENOMEM;
	}
	p->data = d;
	d->refs++;
	d->poll = p;
	d->fd = fd;
	uv_poll_start(p, UV_WRITABLE, on_poll);
	return 0;
}

/* Connect to d->ai or, failing that at once, to the next address. */
static void try_address(struct dial *d)
{
	int e;

	for (; d->ai; d->ai = d->ai->ai_next) {
		const struct addrinfo *a = d->ai;
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		                a->ai_protocol);

		if (fd < 0) {
			d->err = errno;
			continue;
		}
		if (!connect(fd, a->ai_addr, a->ai_addrlen)) { /* UDP, or TCP on loopback */
			succeed(d, fd);
			return;
		}
		if (errno != EINPROGRESS) {
			d->err = errno;
			close(fd);
			continue;
		}
		if (!watch(d, fd))
			return;
		d->err = ENOMEM;
		close(fd);
	}
	e = d->err ? d->err : EHOSTUNREACH;
	fail(d, -e, NULL);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct dial *d = req->data;

	d->resolving = false;
	if (d->done) { /* cancelled, or past the deadline, meanwhile */
		if (res)
			uv_freeaddrinfo(res);
		release(d);
		return;
	}
	d->refs--; /* the timer holds another: not the last */
	if (status < 0) {
		char what[DIAL_WHY];

		snprintf(what, sizeof(what), "cannot resolve '%.100s': %s", d->host,
		         uv_strerror(status));
		fail(d, -EHOSTUNREACH, what);
		return;
	}
	d->ais = d->ai = res;
	try_address(d);
}

static void on_deadline(uv_timer_t *t)
{
	struct dial *d = t->data;
	char what[DIAL_WHY];

	snprintf(what, sizeof(what), "cannot resolve '%.100s': %s", d->host, strerror(ETIMEDOUT));
	if (!d->done)
		fail(d, -ETIMEDOUT, d->resolving ? what : NULL);
}

/*
 * An IP literal's address, taken without the thread pool (AI_NUMERICHOST does no lookup): the
 * connect starts on the next loop pass, never from dial_start() itself.
 */
static void on_numeric(uv_timer_t *t)
{
	struct dial *d = t->data;

	uv_timer_start(&d->timer, on_deadline, d->timeout_ms > 0 ? (uint64_t)d->timeout_ms : 0, 0);
	try_address(d);
}

static bool start_numeric(struct dial *d, const char *service, int socktype)
{
	struct addrinfo hints = {.ai_socktype = socktype, .ai_flags = AI_NUMERICHOST}, *res = NULL;

	if (getaddrinfo(d->host, service, &hints, &res) || !res)
		return false; /* a name: looked up on the thread pool */
	d->ais = d->ai = res;
	uv_timer_init(d->loop, &d->timer);
	d->timer.data = d;
	d->refs = 1; /* the timer */
	uv_timer_start(&d->timer, on_numeric, 0, 0);
	return true;
}

struct dial *dial_start(uv_loop_t *loop, const char *host, int port, int socktype, int timeout_ms,
                        dial_cb cb, void *arg, char why[DIAL_WHY])
{
	struct addrinfo hints = {.ai_socktype = socktype};
	struct dial *d = calloc(1, sizeof(*d));
	char service[16];
	int r;

	if (!d) {
		snprintf(why, DIAL_WHY, "out of memory");
		return NULL;
	}
	d->loop = loop;
	snprintf(d->host, sizeof(d->host), "%s", host);
	d->port = port;
	d->fd = -1;
	d->cb = cb;
	d->arg = arg;
	d->gai.data = d;
	d->timeout_ms = timeout_ms;
	snprintf(service, sizeof(service), "%d", port);
	if (start_numeric(d, service, socktype))
		return d;
	r = uv_getaddrinfo(loop, &d->gai, on_resolved, host, service, &hints);
	if (r) {
		snprintf(why, DIAL_WHY, "cannot resolve '%.100s': %s", host, uv_strerror(r));
		free(d);
		return NULL;
	}
	uv_timer_init(loop, &d->timer);
	d->timer.data = d;
	d->refs = 2; /* the lookup and the timer */
	d->resolving = true;
	uv_timer_start(&d->timer, on_deadline, timeout_ms > 0 ? (uint64_t)timeout_ms : 0, 0);
	return d;
}

void dial_cancel(struct dial *d)
{
	if (d && !d->done)
		finish(d, true);
}
