/*
 * host: `relay host` for one stream. Threads: the main thread runs one epoll loop (the
 * websocket, the local device, an eventfd from the encoder, a signalfd, a timerfd for
 * reconnection); the encoder thread (video only) draws, encodes and muxes frames and hands each
 * frame's bytes over under a mutex (struct chunks), then writes the eventfd.
 *
 * Link states, per link (relay websocket, local device):
 *   DOWN --connect ok--> UP --error/close--> DOWN (retry at backoff, doubling to the cap, +-20 %)
 * Each change of state is logged once, not each attempt. A refused token (HTTP 4xx) is final.
 * Under back-pressure (the relay socket has no room) video frames are dropped, whole, until the
 * next keyframe, and counted.
 */
#include "host/host.h"
#include "host/video.h"
#include "pkg/log/log.h"
#include "pkg/clock/clock.h"
#include "pkg/config/config.h"
#include "pkg/url/url.h"
#include "pkg/wsclient/wsclient.h"
#include "pkg/wsframe/wsframe.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <termios.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/log.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#define CHUNKS_MAX  64
#define DEVICE_READ (64 * 1024)
#define NEVER       INT64_MAX

/* Encoded frames waiting for the main thread. Every field guarded by @lock. */
struct chunks {
	pthread_mutex_t lock;
	uint8_t *data[CHUNKS_MAX];
	size_t len[CHUNKS_MAX];
	bool key[CHUNKS_MAX];
	size_t head, n;
	uint64_t dropped; /* frames dropped because the queue was full */
};

struct link {
	bool up, reported_down;
	int64_t backoff_ms, retry_ns;
};

struct host {
	const struct host_opts *o;
	SSL_CTX *tls;
	struct wsc ws;
	struct link relay, device;
	int dev_fd, ep, sig_fd, timer_fd, ev_fd;
	int dev_wfd; /* where data for the device goes: dev_fd, or the child's stdin */
	pid_t child; /* exec: devices */
	bool dev_udp, dev_exec, dev_serial;
	speed_t dev_speed;
	char dev_host[256];
	int dev_port;
	/* video */
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	struct video_enc *enc;
	struct chunks q;
	bool skip_to_key;
	int64_t renew_ns; /* reconnect with a fresh minted token then; NEVER otherwise */
	uint64_t frames_sent, frames_dropped;
	int64_t encode_us[4096]; /* last encode times; written by the encoder thread, read after
	                            join */
	size_t n_encoded;
	/* relay -> device message assembly */
	uint8_t *msg;
	size_t msg_len, msg_cap;
	bool done;
	int exit_code;
};

static void link_down(struct host *h, struct link *l, const char *what, const char *why)
{
	unsigned char r;
	int64_t jitter;

	l->up = false;
	if (!l->reported_down)
		log_warn("%s down: %s; retrying with backoff up to %llds", what, why,
		         (long long)(h->o->backoff_max / 1000));
	l->reported_down = true;
	RAND_bytes(&r, 1);
	jitter = l->backoff_ms * (r % 41 - 20) / 100;
	l->retry_ns = clock_mono_ns() + (l->backoff_ms + jitter) * 1000000;
	l->backoff_ms =
	        l->backoff_ms * 2 > h->o->backoff_max ? h->o->backoff_max : l->backoff_ms * 2;
}

static void link_up(struct host *h, struct link *l, const char *what)
{
	log_notice("%s %s", what, l->reported_down ? "back up" : "up");
	l->up = true;
	l->reported_down = false;
	l->backoff_ms = h->o->backoff_min;
	l->retry_ns = NEVER;
}

/* ---- the encoder thread ---- */

/* Called on the encoder thread with one frame's TS bytes. */
static void on_chunk(void *arg, const uint8_t *p, size_t n, bool key)
{
	struct host *h = arg;
	struct chunks *q = &h->q;
	uint8_t *copy = malloc(n);
	uint64_t one = 1;

	if (!copy)
		return;
	memcpy(copy, p, n);
	pthread_mutex_lock(&q->lock);
	if (q->n == CHUNKS_MAX) {
		q->dropped++;
		free(copy);
	} else {
		size_t i = (q->head + q->n) % CHUNKS_MAX;

		q->data[i] = copy;
		q->len[i] = n;
		q->key[i] = key;
		q->n++;
	}
	pthread_mutex_unlock(&q->lock);
	if (write(h->ev_fd, &one, sizeof(one)) < 0) {
		/* the counter saturates only if the main thread is gone */
	}
}

static void *encoder_main(void *arg)
{
	struct host *h = arg;
	struct timespec t0, at;
	int64_t period_ns = 1000000000LL / h->o->fps;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int64_t n = 0; !atomic_load(&h->stop); n++) {
		struct timespec wall;
		int64_t t = (int64_t)t0.tv_sec * 1000000000 + t0.tv_nsec + n * period_ns;

		at.tv_sec = t / 1000000000;
		at.tv_nsec = t % 1000000000;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
		t = clock_mono_ns();
		clock_gettime(CLOCK_REALTIME, &wall);
		if (video_enc_test_frame(h->enc, n,
		                         (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000)) {
			log_err("video encoding failed at frame %lld", (long long)n);
			break;
		}
		h->encode_us[h->n_encoded++ % 4096] = (clock_mono_ns() - t) / 1000;
	}
	return NULL;
}

/* ---- relay side ---- */

static void relay_disconnect(struct host *h, const char *why)
{
	if (!h->relay.up)
		return;
	epoll_ctl(h->ep, EPOLL_CTL_DEL, h->ws.fd, NULL);
	wsc_close(&h->ws);
	h->msg_len = 0;
	link_down(h, &h->relay, "relay link", why);
}

static void relay_connect(struct host *h)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &h->ws};
	char why[WSC_WHY], *token = NULL;
	char *scopes[] = {(char *)"read", (char *)"write"};
	int status = 0, ret = 0;

	h->relay.retry_ns = NEVER;
	/* minted: a fresh token at every connection, so renewal is reconnection */
	ret = wsc_token(h->o->token, h->o->token_file, h->o->session, h->o->secret_file,
	                h->o->audience, scopes, 2, h->o->token_lifetime / 1000, "relay-host",
	                &token, why);
	if (ret) {
		fprintf(stderr, "relay host: %s\n", why);
		h->done = true;
		h->exit_code = 1;
		return;
	}
	ret = wsc_join(&h->ws, h->o->session, token, h->tls, (int)h->o->timeout, &status, why);
	cfg_free_secret(token);
	if (ret && status >= 400 && status < 500 && status != 429) {
		fprintf(stderr, "relay host: %s\n", why);
		h->done = true;
		h->exit_code = 1;
		return;
	}
	if (ret) {
		link_down(h, &h->relay, "relay link", why);
		return;
	}
	epoll_ctl(h->ep, EPOLL_CTL_ADD, h->ws.fd, &ev);
	h->skip_to_key = true; /* a new viewer needs a keyframe first */
	link_up(h, &h->relay, "relay link");
	h->renew_ns = NEVER;
	if (!(h->o->token && *h->o->token) && !(h->o->token_file && *h->o->token_file)) {
		/* renew before the relay closes at exp: a tenth of the lifetime early, at most 60 s
		 */
		int64_t margin =
		        h->o->token_lifetime / 10 < 60000 ? h->o->token_lifetime / 10 : 60000;

		/* minted tokens start a second early (iat = now - 1), so they end a second early
		 * too */
		h->renew_ns = clock_mono_ns() + (h->o->token_lifetime - 1000 - margin) * 1000000;
	}
}

/* Video: send a frame unless the socket has no room; then skip to the next keyframe. */
static void send_video(struct host *h, uint8_t *p, size_t n, bool key)
{
	struct pollfd pfd = {.fd = h->ws.fd, .events = POLLOUT};

	if (!h->relay.up)
		return;
	if (h->skip_to_key && !key) {
		h->frames_dropped++;
		return;
	}
	if (poll(&pfd, 1, 0) != 1) {
		h->skip_to_key = true;
		h->frames_dropped++;
		return;
	}
	h->skip_to_key = false;
	if (wsc_send_frame(&h->ws, WS_BINARY, p, n, (int)h->o->timeout))
		relay_disconnect(h, "cannot send video");
	else
		h->frames_sent++;
}

static void drain_video(struct host *h)
{
	uint64_t ticks;

	if (read(h->ev_fd, &ticks, sizeof(ticks)) < 0) {
		/* nothing queued */
	}
	for (;;) {
		uint8_t *p;
		size_t n;
		bool key;

		pthread_mutex_lock(&h->q.lock);
		if (!h->q.n) {
			pthread_mutex_unlock(&h->q.lock);
			return;
		}
		p = h->q.data[h->q.head];
		n = h->q.len[h->q.head];
		key = h->q.key[h->q.head];
		h->q.head = (h->q.head + 1) % CHUNKS_MAX;
		h->q.n--;
		pthread_mutex_unlock(&h->q.lock);
		send_video(h, p, n, key);
		free(p);
	}
}

/* ---- device side ---- */

/* serial:PATH:BAUD, 8 data bits, no parity, 1 stop bit, raw. */
static int parse_serial(struct host *h, const char *spec)
{
	static const struct {
		long baud;
		speed_t speed;
	} speeds[] = {{1200, B1200},     {2400, B2400},     {4800, B4800},    {9600, B9600},
	              {19200, B19200},   {38400, B38400},   {57600, B57600},  {115200, B115200},
	              {230400, B230400}, {460800, B460800}, {921600, B921600}};
	const char *colon = strrchr(spec, ':');
	long baud;

	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(h->dev_host))
		return -EINVAL;
	baud = atol(colon + 1);
	for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++) {
		if (speeds[i].baud == baud) {
			memcpy(h->dev_host, spec, (size_t)(colon - spec));
			h->dev_speed = speeds[i].speed;
			h->dev_serial = true;
			return 0;
		}
	}
	return -EINVAL;
}

static int open_serial(struct host *h, char why[160])
{
	struct termios t;
	int fd = open(h->dev_host, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 || tcgetattr(fd, &t)) {
		snprintf(why, 160, "cannot open serial port '%.100s': %s", h->dev_host,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	cfmakeraw(&t);
	cfsetispeed(&t, h->dev_speed);
	cfsetospeed(&t, h->dev_speed);
	t.c_cflag |= CLOCAL | CREAD;
	if (tcsetattr(fd, TCSANOW, &t)) {
		snprintf(why, 160, "cannot set up serial port '%.100s': %s", h->dev_host,
		         strerror(errno));
		close(fd);
		return -errno;
	}
	h->dev_fd = h->dev_wfd = fd;
	return 0;
}

static int parse_device(struct host *h)
{
	const char *d = h->o->data;
	const char *colon;

	if (!d || !*d)
		return 0;
	if (strncmp(d, "exec:", 5) == 0) {
		h->dev_exec = true;
		return d[5] ? 0 : -EINVAL;
	}
	if (strncmp(d, "serial:", 7) == 0)
		return parse_serial(h, d + 7);
	if (strncmp(d, "tcp:", 4) != 0 && strncmp(d, "udp:", 4) != 0)
		return -EINVAL;
	h->dev_udp = d[0] == 'u';
	colon = strrchr(d + 4, ':');
	if (!colon || (size_t)(colon - d - 4) >= sizeof(h->dev_host) || colon == d + 4)
		return -EINVAL;
	memcpy(h->dev_host, d + 4, (size_t)(colon - d - 4));
	h->dev_port = atoi(colon + 1);
	return h->dev_port > 0 && h->dev_port < 65536 ? 0 : -EINVAL;
}

static void close_device(struct host *h)
{
	if (h->dev_fd >= 0) {
		epoll_ctl(h->ep, EPOLL_CTL_DEL, h->dev_fd, NULL);
		close(h->dev_fd);
	}
	if (h->dev_wfd >= 0 && h->dev_wfd != h->dev_fd)
		close(h->dev_wfd);
	h->dev_fd = h->dev_wfd = -1;
	if (h->child > 0) {
		kill(h->child, SIGKILL); /* restarted with the link; SIGKILL cannot be ignored */
		waitpid(h->child, NULL, 0);
		h->child = 0;
	}
}

/* exec:COMMAND: /bin/sh -c COMMAND, its stdout read as the device, its stdin written. */
static int spawn_device(struct host *h, char why[160])
{
	char *argv[] = {(char *)"sh", (char *)"-c", (char *)h->o->data + 5, NULL};
	posix_spawn_file_actions_t fa;
	int in[2], out[2], ret;
	extern char **environ;

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
		snprintf(why, 160, "cannot make pipes: %s", strerror(errno));
		return -errno;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	ret = posix_spawn(&h->child, "/bin/sh", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	if (ret) {
		close(in[1]);
		close(out[0]);
		h->child = 0;
		snprintf(why, 160, "cannot start '%.100s': %s", h->o->data + 5, strerror(ret));
		return -ret;
	}
	h->dev_fd = out[0];
	h->dev_wfd = in[1];
	return 0;
}

static void device_down(struct host *h, const char *why)
{
	close_device(h);
	link_down(h, &h->device, "device link", why);
}

static void device_connect(struct host *h)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &h->dev_fd};
	char port[8], why[160];
	int fd = -1;

	h->device.retry_ns = NEVER;
	if (h->dev_exec || h->dev_serial) {
		if (h->dev_exec ? spawn_device(h, why) : open_serial(h, why)) {
			link_down(h, &h->device, "device link", why);
			return;
		}
		epoll_ctl(h->ep, EPOLL_CTL_ADD, h->dev_fd, &ev);
		link_up(h, &h->device, "device link");
		return;
	}
	hints.ai_socktype = h->dev_udp ? SOCK_DGRAM : SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", h->dev_port);
	if (getaddrinfo(h->dev_host, port, &hints, &res) == 0) {
		fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
		if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen)) {
			snprintf(why, sizeof(why), "cannot connect to %.100s: %s", h->o->data,
			         strerror(errno));
			close(fd);
			fd = -1;
		}
		freeaddrinfo(res);
	} else {
		snprintf(why, sizeof(why), "cannot resolve '%.100s'", h->dev_host);
	}
	if (fd < 0) {
		h->dev_fd = -1;
		link_down(h, &h->device, "device link", why);
		return;
	}
	h->dev_fd = h->dev_wfd = fd;
	epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev);
	link_up(h, &h->device, "device link");
}

/* What the device says goes to the relay as one binary message per read. */
static void device_readable(struct host *h)
{
	uint8_t buf[DEVICE_READ];
	ssize_t n = read(h->dev_fd, buf, sizeof(buf));

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		device_down(h, n == 0 ? "the device closed its end" : strerror(errno));
		return;
	}
	if (h->relay.up && wsc_send_frame(&h->ws, WS_BINARY, buf, (size_t)n, (int)h->o->timeout))
		relay_disconnect(h, "cannot send device data");
}

/* What the relay says (written by a browser with write scope) goes to the device. */
static void to_device(struct host *h, const uint8_t *p, size_t n)
{
	size_t off = 0;

	while (h->dev_wfd >= 0 && off < n) {
		ssize_t w = write(h->dev_wfd, p + off, n - off);

		if (w <= 0) {
			device_down(h, strerror(errno));
			return;
		}
		off += (size_t)w;
	}
}

/* ---- relay frames ---- */

static void on_frame(struct host *h, const struct ws_frame *f, const uint8_t *p)
{
	size_t n = (size_t)f->payload_len;

	if (f->opcode == WS_PING) {
		wsc_send_frame(&h->ws, WS_PONG, p, n, (int)h->o->timeout);
	} else if (f->opcode == WS_CLOSE) {
		char why[160];

		snprintf(why, sizeof(why), "closed by the relay: %d %.*s",
		         n >= 2 ? p[0] << 8 | p[1] : 1005, n > 2 ? (int)(n - 2) : 0,
		         (const char *)p + 2);
		relay_disconnect(h, why);
	} else if (f->opcode == WS_TEXT || f->opcode == WS_BINARY || f->opcode == WS_CONT) {
		if (f->opcode != WS_CONT)
			h->msg_len = 0;
		if (h->msg_len + n > h->msg_cap) {
			size_t cap = (h->msg_len + n) * 2;
			uint8_t *m = realloc(h->msg, cap);

			if (!m)
				return;
			h->msg = m;
			h->msg_cap = cap;
		}
		if (n)
			memcpy(h->msg + h->msg_len, p, n);
		h->msg_len += n;
		if (f->fin)
			to_device(h, h->msg, h->msg_len);
	}
}

static bool frame_cb(void *arg, const struct ws_frame *f, const uint8_t *payload)
{
	struct host *h = arg;

	on_frame(h, f, payload);
	return h->relay.up;
}

static void relay_readable(struct host *h)
{
	int r = wsc_read_frames(&h->ws, 16 * 1024 * 1024, frame_cb, h);

	if (r < 0 && h->relay.up)
		relay_disconnect(h, r == -ECONNRESET ? "connection closed"
		                    : r == -EPROTO   ? "malformed frame from the relay"
		                                     : strerror(-r));
}

/* ---- the loop ---- */

static void arm_timer(struct host *h)
{
	int64_t next = NEVER, now = clock_mono_ns();
	struct itimerspec its = {0};

	if (!h->relay.up && h->relay.retry_ns < next)
		next = h->relay.retry_ns;
	if (h->o->data && *h->o->data && !h->device.up && h->device.retry_ns < next)
		next = h->device.retry_ns;
	if (h->relay.up && h->renew_ns < next)
		next = h->renew_ns;
	if (next == NEVER)
		return;
	next = next - now < 1 ? 1 : next - now;
	its.it_value.tv_sec = next / 1000000000;
	its.it_value.tv_nsec = next % 1000000000;
	timerfd_settime(h->timer_fd, 0, &its, NULL);
}

/* A fresh token before the current one expires: close this link (1000) and open another. */
static void renew(struct host *h)
{
	uint8_t bye[2] = {0x03, 0xe8};

	log_notice("renewing the token: reconnecting");
	wsc_send_frame(&h->ws, WS_CLOSE, bye, 2, (int)h->o->timeout);
	epoll_ctl(h->ep, EPOLL_CTL_DEL, h->ws.fd, NULL);
	wsc_close(&h->ws);
	h->relay.up = false;
	h->msg_len = 0;
	relay_connect(h);
}

static void on_timer(struct host *h)
{
	uint64_t n;
	int64_t now = clock_mono_ns();

	if (read(h->timer_fd, &n, sizeof(n)) < 0) {
		/* deadlines are checked below */
	}
	if (h->relay.up && h->renew_ns <= now)
		renew(h);
	if (!h->relay.up && h->relay.retry_ns <= now)
		relay_connect(h);
	if (h->o->data && *h->o->data && !h->device.up && h->device.retry_ns <= now)
		device_connect(h);
}

static void loop(struct host *h)
{
	struct epoll_event evs[8];

	while (!h->done) {
		int n;

		arm_timer(h);
		n = epoll_wait(h->ep, evs, 8, -1);
		for (int i = 0; i < n && !h->done; i++) {
			void *p = evs[i].data.ptr;

			if (p == &h->ws)
				relay_readable(h);
			else if (p == &h->dev_fd)
				device_readable(h);
			else if (p == &h->ev_fd)
				drain_video(h);
			else if (p == &h->timer_fd)
				on_timer(h);
			else if (p == &h->sig_fd)
				h->done = true;
		}
	}
}

static int watch(struct host *h, int fd, void *tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};

	return epoll_ctl(h->ep, EPOLL_CTL_ADD, fd, &ev);
}

static int setup(struct host *h, char why[160])
{
	const struct host_opts *o = h->o;
	struct video_opts vo = {(int)o->width, (int)o->height, (int)o->fps, o->bitrate,
	                        (int)o->gop};
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	h->ep = epoll_create1(EPOLL_CLOEXEC);
	h->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	h->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	h->ev_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	h->tls = wsc_tls_new(!o->insecure);
	if (h->ep < 0 || h->sig_fd < 0 || h->timer_fd < 0 || h->ev_fd < 0 || !h->tls ||
	    watch(h, h->sig_fd, &h->sig_fd) || watch(h, h->timer_fd, &h->timer_fd) ||
	    watch(h, h->ev_fd, &h->ev_fd)) {
		snprintf(why, 160, "cannot set up the event loop");
		return -EIO;
	}
	if (o->video && *o->video) {
		av_log_set_level(AV_LOG_ERROR);
		if (video_enc_new(&vo, on_chunk, h, &h->enc, why))
			return -EINVAL;
		if (pthread_create(&h->thread, NULL, encoder_main, h)) {
			snprintf(why, 160, "cannot start the encoder thread");
			return -EIO;
		}
		h->thread_started = true;
	}
	return 0;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Encode time per frame (draw + encode + mux), median and p99 over the last 4096 frames. */
static void report_encoding(struct host *h)
{
	size_t n = h->n_encoded < 4096 ? h->n_encoded : 4096;

	if (!n)
		return;
	qsort(h->encode_us, n, sizeof(h->encode_us[0]), cmp_i64);
	log_notice("video: %zu frames encoded, encode time median %lld us, p99 %lld us",
	           h->n_encoded, (long long)h->encode_us[n / 2],
	           (long long)h->encode_us[(n * 99) / 100]);
}

static void teardown(struct host *h)
{
	if (h->thread_started) {
		atomic_store(&h->stop, true);
		pthread_join(h->thread, NULL);
		report_encoding(h);
	}
	video_enc_free(h->enc);
	if (h->relay.up) {
		uint8_t bye[2] = {0x03, 0xe8}; /* 1000 normal closure */

		wsc_send_frame(&h->ws, WS_CLOSE, bye, 2, (int)h->o->timeout);
		wsc_close(&h->ws);
	}
	close_device(h);
	for (size_t i = 0; i < h->q.n; i++)
		free(h->q.data[(h->q.head + i) % CHUNKS_MAX]);
	pthread_mutex_destroy(&h->q.lock);
	if (h->tls)
		SSL_CTX_free(h->tls);
	for (int i = 0, fds[] = {h->ep, h->sig_fd, h->timer_fd, h->ev_fd}; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(h->msg);
}

int host_run(const struct host_opts *o)
{
	struct host h = {.o = o,
	                 .dev_fd = -1,
	                 .dev_wfd = -1,
	                 .ep = -1,
	                 .sig_fd = -1,
	                 .timer_fd = -1,
	                 .ev_fd = -1};
	char why[160] = "";

	pthread_mutex_init(&h.q.lock, NULL);
	h.ws.fd = -1;
	h.relay.backoff_ms = h.device.backoff_ms = o->backoff_min;
	h.relay.retry_ns = h.device.retry_ns = h.renew_ns = NEVER;
	if ((!o->video || !*o->video) && (!o->data || !*o->data)) {
		fprintf(stderr,
		        "relay host: nothing to do: give --video test and/or --data tcp:HOST:PORT\n");
		return 2;
	}
	if (o->video && *o->video && strcmp(o->video, "test") != 0) {
		fprintf(stderr, "relay host: --video %s: only 'test' is supported in this build\n",
		        o->video);
		return 2;
	}
	if (parse_device(&h)) {
		fprintf(stderr,
		        "relay host: --data must be tcp:HOST:PORT, udp:HOST:PORT, serial:PATH:BAUD or "
		        "exec:COMMAND, not '%s'\n",
		        o->data);
		return 2;
	}
	if (setup(&h, why)) {
		fprintf(stderr, "relay host: %s\n", why);
		teardown(&h);
		return 1;
	}
	relay_connect(&h);
	if (o->data && *o->data)
		device_connect(&h);
	loop(&h);
	log_notice("stopping: %llu video frames sent, %llu dropped",
	           (unsigned long long)h.frames_sent,
	           (unsigned long long)(h.frames_dropped + h.q.dropped));
	teardown(&h);
	return h.exit_code;
}
