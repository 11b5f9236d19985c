/*
 * host/stream: one stream. Threads: the stream's thread runs an epoll loop (the relay
 * websocket, the local device, an eventfd for queued messages, a timerfd for reconnection and
 * renewal, an eventfd to stop); the encoder thread (video only) captures, encodes and muxes
 * frames and hands each frame's bytes over through the queue (struct msgq, under its mutex); the
 * main thread pushes local feed messages through the same queue.
 *
 * Link states, per link (relay websocket, device, video source):
 *   DOWN --connect ok--> UP --error/close--> DOWN (retry at backoff, doubling to the cap, +-20 %)
 * Each change of state is logged once, not each attempt. A refused token (HTTP 4xx) is final.
 * Under back-pressure (the relay socket has no room) video frames are dropped, whole, until the
 * next keyframe, and counted.
 *
 * Renewal of a minted token is make-before-break: a second link is opened with a fresh token,
 * then the first is drained and closed, so nothing read from the device or encoded meanwhile is
 * lost.
 */
#include "host/stream.h"
#include "host/handover.h"
#include "host/ingest.h"
#include "host/video.h"
#include "pkg/clock/clock.h"
#include "pkg/config/config.h"
#include "pkg/log/log.h"
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
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#define QUEUE_MAX          256
#define QUEUE_MAX_BYTES    (8 << 20)
#define DEVICE_READ        (64 * 1024)
#define MESSAGE_MAX        (16 << 20)
#define NEVER              INT64_MAX
#define ENCODE_TIMES       4096
#define HANDOVER_SETTLE_NS (2 * 1000000LL) /* see settle() */
#define HANDOVER_WINDOW_NS \
	(2 * 1000000000LL) /* the new link repeats the old one's tail within it */

/* Messages for the relay from other threads (the encoder, the main thread's feed). Every field
 * guarded by @lock. */
struct msgq {
	pthread_mutex_t lock;
	struct qmsg {
		uint8_t *data;
		size_t len;
		uint8_t opcode;
		bool video, key;
	} m[QUEUE_MAX];
	size_t head, n, bytes;
	uint64_t video_dropped, feed_dropped;
};

struct link {
	const char *what;
	bool up, reported_down;
	int64_t backoff_ms, retry_ns;
};

enum dev_kind { DEV_NONE, DEV_TCP, DEV_UDP, DEV_SERIAL, DEV_EXEC, DEV_WS };

struct stream {
	struct host_opts o; /* own copy; read-only after start */
	char name[64], topic[128];
	stream_relay_fn on_relay;
	void *arg;
	int done_fd;
	pthread_t thread;
	bool thread_started;
	int ep, stop_fd, timer_fd, ev_fd;
	SSL_CTX *tls;
	struct wsc ws;
	struct link relay, device, video;
	int64_t renew_ns;        /* open a second link with a fresh token then; NEVER otherwise */
	struct host_handover hv; /* renewal: the new link's copies of what the old one delivered */
	struct ws_message from_relay, from_device;
	/* device */
	enum dev_kind dev;
	int dev_fd, dev_wfd; /* dev_wfd: where data for the device goes (the child's stdin) */
	pid_t child;
	speed_t dev_speed;
	tcflag_t dev_cflag; /* serial framing: data bits, parity, stop bits */
	char dev_host[256];
	int dev_port;
	struct wsc dws; /* DEV_WS */
	/* video */
	pthread_t enc_thread;
	bool enc_started;
	atomic_bool stop;
	struct video_opts vo;
	struct video_enc *enc; /* encoder thread only, after start */
	struct video_src *src; /* encoder thread only */
	int64_t encode_us[ENCODE_TIMES];
	size_t n_encoded; /* encode_us and n_encoded: encoder thread, read after join */
	bool skip_to_key;
	struct msgq q;
	/* for the API: counters written by the stream's threads, read by any */
	_Atomic uint64_t msgs_out, bytes_out, msgs_in, bytes_in, frames_sent, frames_dropped,
	        renewals, failed_attempts;
	atomic_bool failed, finished; /* finished: the stream's thread has ended */
	_Atomic(const char *) relay_state, device_state, video_state;
	pthread_mutex_t err_lock;
	char last_error[256]; /* guarded by err_lock */
};

#define S_WARN(s, fmt, ...)   log_warn("stream '%s': " fmt, (s)->name, __VA_ARGS__)
#define S_NOTICE(s, fmt, ...) log_notice("stream '%s': " fmt, (s)->name, __VA_ARGS__)

static void set_error(struct stream *s, const char *why)
{
	pthread_mutex_lock(&s->err_lock);
	snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	pthread_mutex_unlock(&s->err_lock);
}

static void link_down(struct stream *s, struct link *l, const char *why)
{
	unsigned char r;
	int64_t jitter;

	l->up = false;
	atomic_fetch_add(&s->failed_attempts, 1);
	if (!l->reported_down) {
		set_error(s,
		          why); /* before the log line: what the log says, the API already shows */
		S_WARN(s, "%s down: %s; retrying with backoff up to %lld ms", l->what, why,
		       (long long)s->o.backoff_max);
	}
	l->reported_down = true;
	RAND_bytes(&r, 1);
	jitter = l->backoff_ms * (r % 41 - 20) / 100;
	l->retry_ns = clock_mono_ns() + (l->backoff_ms + jitter) * 1000000;
	l->backoff_ms = l->backoff_ms * 2 > s->o.backoff_max ? s->o.backoff_max : l->backoff_ms * 2;
}

static void link_up(struct stream *s, struct link *l)
{
	S_NOTICE(s, "%s %s", l->what, l->reported_down ? "back up" : "up");
	l->up = true;
	l->reported_down = false;
	l->backoff_ms = s->o.backoff_min;
	l->retry_ns = NEVER;
}

static void wake(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* the counter saturates only if nobody reads it any more */
	}
}

/* ---- the queue ---- */

static void queue_put(struct stream *s, uint8_t opcode, const uint8_t *p, size_t n, bool video,
                      bool key)
{
	struct msgq *q = &s->q;
	uint8_t *copy = malloc(n ? n : 1);
	bool full;

	if (copy && n)
		memcpy(copy, p, n);
	pthread_mutex_lock(&q->lock);
	full = !copy || q->n == QUEUE_MAX || q->bytes + n > QUEUE_MAX_BYTES;
	if (full) {
		if (video)
			q->video_dropped++;
		else
			q->feed_dropped++;
	} else {
		struct qmsg *m = &q->m[(q->head + q->n) % QUEUE_MAX];

		*m = (struct qmsg){copy, n, opcode, video, key};
		q->n++;
		q->bytes += n;
	}
	pthread_mutex_unlock(&q->lock);
	if (full) {
		free(copy);
		return;
	}
	wake(s->ev_fd);
}

static bool queue_take(struct stream *s, struct qmsg *out)
{
	struct msgq *q = &s->q;
	bool got;

	pthread_mutex_lock(&q->lock);
	got = q->n > 0;
	if (got) {
		*out = q->m[q->head];
		q->head = (q->head + 1) % QUEUE_MAX;
		q->n--;
		q->bytes -= out->len;
	}
	pthread_mutex_unlock(&q->lock);
	return got;
}

void stream_push(struct stream *s, uint8_t opcode, const uint8_t *p, size_t n)
{
	queue_put(s, opcode, p, n, false, false);
}

/* ---- the encoder thread ---- */

/* Called on the encoder thread with one frame's bytes. */
static void on_chunk(void *arg, const uint8_t *p, size_t n, bool key)
{
	queue_put(arg, WS_BINARY, p, n, true, key);
}

/* Sleep until @t_ns (monotonic) in slices, so that a stop is noticed within 100 ms. */
static void sleep_until(struct stream *s, int64_t t_ns)
{
	while (!atomic_load(&s->stop)) {
		int64_t now = clock_mono_ns(), step = t_ns - now;
		struct timespec ts;

		if (step <= 0)
			return;
		if (step > 100000000)
			step = 100000000;
		now += step;
		ts.tv_sec = now / 1000000000;
		ts.tv_nsec = now % 1000000000;
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
	}
}

static int64_t wall_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The source: opened, and reopened with backoff when it fails (an unplugged camera). */
static void *encoder_main(void *arg)
{
	struct stream *s = arg;
	int64_t period_ns = 1000000000LL / s->o.fps, next = clock_mono_ns();
	char why[STREAM_WHY];

	for (int64_t n = 0; !atomic_load(&s->stop);) {
		if (!s->src) {
			sleep_until(s, s->video.retry_ns == NEVER ? 0 : s->video.retry_ns);
			if (atomic_load(&s->stop))
				break;
			if (video_src_open(s->o.video, &s->vo, &s->stop, &s->src, why)) {
				atomic_store(&s->video_state, "down");
				link_down(s, &s->video, why);
				continue;
			}
			atomic_store(&s->video_state, "up");
			link_up(s, &s->video);
			next = clock_mono_ns();
		}
		if (video_src_is_paced(s->src)) {
			sleep_until(s, next);
			next += period_ns;
		}
		int64_t t = clock_mono_ns();
		int ret = video_src_encode_next(s->src, s->enc, n, wall_ms(), why);

		if (ret == -EAGAIN)
			continue;
		if (ret) {
			video_src_free(s->src);
			s->src = NULL;
			if (!atomic_load(&s->stop)) {
				atomic_store(&s->video_state, "down");
				link_down(s, &s->video, why);
			}
			continue;
		}
		s->encode_us[s->n_encoded++ % ENCODE_TIMES] = (clock_mono_ns() - t) / 1000;
		n++;
	}
	return NULL;
}

/* ---- relay side ---- */

static void relay_readable(struct stream *s);
static void device_readable(struct stream *s);

static int send_relay(struct stream *s, uint8_t opcode, const uint8_t *p, size_t n)
{
	int ret = wsc_send_frame(&s->ws, opcode, p, n, (int)s->o.timeout);

	if (!ret) {
		atomic_fetch_add(&s->msgs_out, 1);
		atomic_fetch_add(&s->bytes_out, n);
	}
	return ret;
}

static void relay_disconnect(struct stream *s, const char *why)
{
	if (!s->relay.up)
		return;
	epoll_ctl(s->ep, EPOLL_CTL_DEL, s->ws.fd, NULL);
	wsc_close(&s->ws);
	s->from_relay.open = false;
	atomic_store(&s->relay_state, "down");
	link_down(s, &s->relay, why);
}

/* Give up for good: the relay refused this stream's token. */
static void refused(struct stream *s, const char *why)
{
	set_error(s, why);
	atomic_store(&s->relay_state, "refused");
	log_err("stream '%s': %s; giving up on this stream", s->name, why);
	atomic_store(&s->failed, true);
	wake(s->done_fd);
}

static bool token_is_minted(const struct stream *s)
{
	return !(s->o.token && *s->o.token) && !(s->o.token_file && *s->o.token_file);
}

/* Access and redeem on a new connection @c. 0, or -errno with *refusal set for a 4xx. */
static int join(struct stream *s, struct wsc *c, bool *refusal, char why[WSC_WHY])
{
	char *scopes[] = {(char *)"read", (char *)"write"}, *token = NULL;
	int status = 0, ret;

	*refusal = false;
	/* minted: a fresh token at every connection */
	ret = wsc_token(s->o.token, s->o.token_file, s->o.session, s->o.secret_file, s->o.audience,
	                scopes, 2, s->o.token_lifetime / 1000, "relay-host", &token, why);
	if (ret)
		return ret; /* an unreadable token file may be being replaced: try again later */
	ret = wsc_join(c, s->o.session, token, s->tls, (int)s->o.timeout, &status, why);
	cfg_free_secret(token);
	*refusal = ret && status >= 400 && status < 500 && status != 429;
	return ret;
}

static void schedule_renewal(struct stream *s)
{
	/* renew before the relay closes at exp: a tenth of the lifetime early, at most 60 s; minted
	 * tokens start a second early (iat = now - 1), so they end a second early too */
	int64_t margin = s->o.token_lifetime / 10 < 60000 ? s->o.token_lifetime / 10 : 60000;

	s->renew_ns = token_is_minted(s)
	                      ? clock_mono_ns() + (s->o.token_lifetime - 1000 - margin) * 1000000
	                      : NEVER;
}

static void relay_connect(struct stream *s)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->ws};
	char why[WSC_WHY];
	bool refusal;

	s->relay.retry_ns = NEVER;
	if (join(s, &s->ws, &refusal, why)) {
		if (refusal)
			refused(s, why);
		else
			link_down(s, &s->relay, why);
		return;
	}
	epoll_ctl(s->ep, EPOLL_CTL_ADD, s->ws.fd, &ev);
	s->skip_to_key = true; /* a new viewer needs a keyframe first */
	atomic_store(&s->relay_state, "up");
	link_up(s, &s->relay);
	schedule_renewal(s);
	if (s->ws.in_len)
		relay_readable(s); /* frames that came with the handshake's answer */
}

/* Video: send a frame unless the socket has no room; then skip to the next keyframe. */
static void send_video(struct stream *s, const uint8_t *p, size_t n, bool key)
{
	struct pollfd pfd = {.fd = s->ws.fd, .events = POLLOUT};

	if (!s->relay.up)
		return;
	if (s->skip_to_key && !key) {
		atomic_fetch_add(&s->frames_dropped, 1);
		return;
	}
	if (poll(&pfd, 1, 0) != 1) {
		s->skip_to_key = true;
		atomic_fetch_add(&s->frames_dropped, 1);
		return;
	}
	s->skip_to_key = false;
	if (send_relay(s, WS_BINARY, p, n))
		relay_disconnect(s, "cannot send video");
	else
		atomic_fetch_add(&s->frames_sent, 1);
}

static void feed_dropped(struct stream *s)
{
	pthread_mutex_lock(&s->q.lock);
	s->q.feed_dropped++;
	pthread_mutex_unlock(&s->q.lock);
}

static void drain_queue(struct stream *s)
{
	uint64_t ticks;
	struct qmsg m;

	if (read(s->ev_fd, &ticks, sizeof(ticks)) < 0) {
		/* nothing queued */
	}
	while (queue_take(s, &m)) {
		if (m.video)
			send_video(s, m.data, m.len, m.key);
		else if (!s->relay.up)
			feed_dropped(s); /* a live feed does not wait for the link */
		else if (send_relay(s, m.opcode, m.data, m.len))
			relay_disconnect(s, "cannot send feed data");
		free(m.data);
	}
}

/* ---- device side ---- */

/* "8N1": data bits 5 to 8, parity N(one), E(ven) or O(dd), 1 or 2 stop bits, as c_cflag bits. */
static bool parse_framing(const char *f, tcflag_t *cflag)
{
	static const tcflag_t sizes[] = {CS5, CS6, CS7, CS8};

	if (strlen(f) != 3 || f[0] < '5' || f[0] > '8' || !strchr("NEO", f[1]) ||
	    (f[2] != '1' && f[2] != '2'))
		return false;
	*cflag = sizes[f[0] - '5'] | (f[1] != 'N' ? PARENB : 0) | (f[1] == 'O' ? PARODD : 0) |
	         (f[2] == '2' ? CSTOPB : 0);
	return true;
}

/* serial:PATH:BAUD[:FRAMING], raw, framing 8N1 unless given (the path may hold colons). */
static int parse_serial(struct stream *s, const char *spec)
{
	static const struct {
		const char *baud;
		speed_t speed;
	} speeds[] = {{"1200", B1200},     {"2400", B2400},     {"4800", B4800},
	              {"9600", B9600},     {"19200", B19200},   {"38400", B38400},
	              {"57600", B57600},   {"115200", B115200}, {"230400", B230400},
	              {"460800", B460800}, {"921600", B921600}};
	const char *colon = strrchr(spec, ':'), *baud;
	size_t path_len;

	s->dev_cflag = CS8;
	if (colon && parse_framing(colon + 1, &s->dev_cflag)) {
		const char *end = colon;

		while (end > spec && end[-1] != ':')
			end--;
		colon = end > spec ? end - 1 : NULL;
	}
	if (!colon || colon == spec)
		return -EINVAL;
	baud = colon + 1;
	path_len = (size_t)(colon - spec);
	if (path_len >= sizeof(s->dev_host))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++) {
		size_t n = strlen(speeds[i].baud);

		if (strncmp(baud, speeds[i].baud, n) == 0 && (baud[n] == '\0' || baud[n] == ':')) {
			memcpy(s->dev_host, spec, path_len);
			s->dev_speed = speeds[i].speed;
			s->dev = DEV_SERIAL;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_device(struct stream *s)
{
	const char *d = s->o.data, *colon;
	char *end;
	long port;

	if (!d || !*d)
		return 0;
	if (strncmp(d, "exec:", 5) == 0) {
		s->dev = DEV_EXEC;
		return d[5] ? 0 : -EINVAL;
	}
	if (strncmp(d, "ws://", 5) == 0 || strncmp(d, "wss://", 6) == 0) {
		s->dev = DEV_WS;
		return 0;
	}
	if (strncmp(d, "serial:", 7) == 0)
		return parse_serial(s, d + 7);
	if (strncmp(d, "tcp:", 4) != 0 && strncmp(d, "udp:", 4) != 0)
		return -EINVAL;
	s->dev = d[0] == 'u' ? DEV_UDP : DEV_TCP;
	colon = strrchr(d + 4, ':');
	if (!colon || (size_t)(colon - d - 4) >= sizeof(s->dev_host) || colon == d + 4)
		return -EINVAL;
	memcpy(s->dev_host, d + 4, (size_t)(colon - d - 4));
	port = strtol(colon + 1, &end, 10);
	s->dev_port = (int)port;
	return !*end && port > 0 && port < 65536 ? 0 : -EINVAL;
}

static int open_serial(struct stream *s, char why[WSC_WHY])
{
	struct termios t;
	int fd = open(s->dev_host, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 || tcgetattr(fd, &t)) {
		snprintf(why, WSC_WHY, "cannot open serial port '%.100s': %s", s->dev_host,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	cfmakeraw(&t); /* 8N1, no echo, no line editing, no flow control */
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	t.c_cflag |= s->dev_cflag | CLOCAL | CREAD;
	if (s->dev_cflag & PARENB)
		t.c_iflag |= INPCK; /* check parity on input */
	cfsetispeed(&t, s->dev_speed);
	cfsetospeed(&t, s->dev_speed);
	if (tcsetattr(fd, TCSANOW, &t)) {
		snprintf(why, WSC_WHY, "cannot set up serial port '%.100s': %s", s->dev_host,
		         strerror(errno));
		close(fd);
		return -EIO;
	}
	s->dev_fd = s->dev_wfd = fd;
	return 0;
}

/* exec:COMMAND: /bin/sh -c COMMAND in a process group of its own (so that stopping it reaches
 * the command the shell forked too), with default signals; its stdout is read as the device,
 * its stdin written. */
static int spawn_device(struct stream *s, char why[WSC_WHY])
{
	char *argv[] = {(char *)"sh", (char *)"-c", (char *)s->o.data + 5, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	int in[2], out[2], ret;
	extern char **environ;

	if (pipe2(in, O_CLOEXEC))
		goto fail_pipe;
	if (pipe2(out, O_CLOEXEC)) {
		close(in[0]);
		close(in[1]);
		goto fail_pipe;
	}
	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGPIPE);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
	                                        POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	ret = posix_spawn(&s->child, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(in[0]);
	close(out[1]);
	if (ret) {
		close(in[1]);
		close(out[0]);
		s->child = 0;
		snprintf(why, WSC_WHY, "cannot start '%.100s': %s", s->o.data + 5, strerror(ret));
		return -ret;
	}
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	s->dev_fd = out[0];
	s->dev_wfd = in[1];
	return 0;
fail_pipe:
	snprintf(why, WSC_WHY, "cannot make pipes: %s", strerror(errno));
	return -EIO;
}

/* Connect @fd to @a by @deadline_ns (monotonic). 0 or -errno. */
static int connect_by(int fd, const struct addrinfo *a, int64_t deadline_ns)
{
	struct pollfd pfd = {.fd = fd, .events = POLLOUT};
	int64_t left_ms = (deadline_ns - clock_mono_ns()) / 1000000;
	socklen_t len = sizeof(int);
	int err = 0;

	if (!connect(fd, a->ai_addr, a->ai_addrlen))
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	if (left_ms <= 0 || poll(&pfd, 1, (int)left_ms) != 1)
		return -ETIMEDOUT;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		return -errno;
	return -err;
}

/* Every address the name has, in getaddrinfo's order (tcp:localhost:PORT to a device on
 * 127.0.0.1 only, where ::1 sorts first), all within one --timeout: a switched-off device
 * would otherwise hold the stream for minutes. */
static int connect_socket(struct stream *s, char why[WSC_WHY])
{
	struct addrinfo hints = {.ai_socktype = s->dev == DEV_UDP ? SOCK_DGRAM : SOCK_STREAM};
	struct addrinfo *res = NULL;
	int64_t deadline = clock_mono_ns() + s->o.timeout * 1000000;
	char port[8];
	int fd = -1, ret = -EHOSTUNREACH;

	snprintf(port, sizeof(port), "%d", s->dev_port);
	if (getaddrinfo(s->dev_host, port, &hints, &res)) {
		snprintf(why, WSC_WHY, "cannot resolve '%.100s'", s->dev_host);
		return -EINVAL;
	}
	for (const struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
		            a->ai_protocol);
		ret = fd < 0 ? -errno : connect_by(fd, a, deadline);
		if (ret && fd >= 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0) {
		snprintf(why, WSC_WHY, "cannot connect to %.100s: %s", s->o.data, strerror(-ret));
		return -EIO;
	}
	s->dev_fd = s->dev_wfd = fd;
	return 0;
}

static int open_ws_device(struct stream *s, char why[WSC_WHY])
{
	int status;

	if (wsc_ws_open(&s->dws, s->o.data, s->tls, (int)s->o.timeout, &status, why))
		return -EIO;
	if (wsc_nonblock(&s->dws)) {
		wsc_close(&s->dws);
		snprintf(why, WSC_WHY, "cannot set up the websocket device");
		return -EIO;
	}
	s->dev_fd = s->dev_wfd = s->dws.fd;
	return 0;
}

static void close_device(struct stream *s)
{
	if (s->dev_fd >= 0)
		epoll_ctl(s->ep, EPOLL_CTL_DEL, s->dev_fd, NULL);
	if (s->dev == DEV_WS) {
		wsc_close(&s->dws); /* closes dev_fd */
	} else {
		if (s->dev_fd >= 0)
			close(s->dev_fd);
		if (s->dev_wfd >= 0 && s->dev_wfd != s->dev_fd)
			close(s->dev_wfd);
	}
	s->dev_fd = s->dev_wfd = -1;
	s->from_device.open = false;
	if (s->child > 0) {
		/* the whole group: sh may have forked the command rather than exec'd it; SIGKILL
		 * cannot be ignored, and the device is restarted with the link anyway */
		kill(-s->child, SIGKILL);
		waitpid(s->child, NULL, 0);
		s->child = 0;
	}
}

static void device_down(struct stream *s, const char *why)
{
	close_device(s);
	atomic_store(&s->device_state, "down");
	link_down(s, &s->device, why);
}

static void device_connect(struct stream *s)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->dev_fd};
	char why[WSC_WHY];
	int ret;

	s->device.retry_ns = NEVER;
	switch (s->dev) {
	case DEV_EXEC:
		ret = spawn_device(s, why);
		break;
	case DEV_SERIAL:
		ret = open_serial(s, why);
		break;
	case DEV_WS:
		ret = open_ws_device(s, why);
		break;
	default:
		ret = connect_socket(s, why);
		break;
	}
	if (ret) {
		atomic_store(&s->device_state, "down");
		link_down(s, &s->device, why);
		return;
	}
	epoll_ctl(s->ep, EPOLL_CTL_ADD, s->dev_fd, &ev);
	atomic_store(&s->device_state, "up");
	link_up(s, &s->device);
	if (s->dev == DEV_WS && s->dws.in_len)
		device_readable(s); /* frames that came with the handshake's answer */
}

/* What the relay says (written by a browser with write scope) goes to the device. */
static void to_device(struct stream *s, uint8_t opcode, const uint8_t *p, size_t n)
{
	size_t off = 0;

	if (s->dev_wfd < 0)
		return;
	if (s->dev == DEV_WS) {
		if (wsc_send_frame(&s->dws, opcode, p, n, (int)s->o.timeout))
			device_down(s, "cannot write to the websocket device");
		return;
	}
	/* device fds are non-blocking: wait for room, but never longer than --timeout, so that a
	 * device that stops reading cannot hold the stream (or its stop) */
	while (off < n) {
		struct pollfd pfd = {.fd = s->dev_wfd, .events = POLLOUT};
		ssize_t w = write(s->dev_wfd, p + off, n - off);

		if (w < 0 && errno == EAGAIN) {
			if (poll(&pfd, 1, (int)s->o.timeout) == 1)
				continue;
			device_down(s, "the device stopped reading (write timed out)");
			return;
		}
		if (w <= 0) {
			device_down(s, w < 0 ? strerror(errno) : "the device closed its end");
			return;
		}
		off += (size_t)w;
	}
}

/* ---- websocket messages (relay and websocket devices) ---- */

/*
 * The control frames of a websocket we are the client of (the relay, a websocket device): a
 * ping is answered, a close is reported with its reason in @why. Returns true for a data frame.
 */
static bool data_frame(struct stream *s, struct wsc *c, const struct ws_frame *f, const uint8_t *p,
                       const char *who, char *why, size_t len)
{
	size_t n = (size_t)f->payload_len;

	why[0] = '\0';
	if (f->opcode == WS_PING)
		wsc_send_frame(c, WS_PONG, p, n, (int)s->o.timeout);
	else if (f->opcode == WS_CLOSE)
		snprintf(why, len, "closed by %s: %d %.*s", who, n >= 2 ? p[0] << 8 | p[1] : 1005,
		         n > 2 ? (int)(n - 2) : 0, (const char *)p + 2);
	return f->opcode != WS_PING && f->opcode != WS_CLOSE && f->opcode != WS_PONG;
}

/* A whole message from the relay: to the device and the feed's local websockets. */
static void deliver(struct stream *s, const struct ws_message *a)
{
	if (s->hv.state != HOST_HANDOVER_IDLE) {
		uint64_t h = host_handover_hash(a->opcode, a->p, a->len);

		if (s->hv.state == HOST_HANDOVER_RECORDING)
			host_handover_record(&s->hv, h);
		else if (host_handover_is_copy(&s->hv, h, clock_mono_ns()))
			return;
	}
	atomic_fetch_add(&s->msgs_in, 1);
	atomic_fetch_add(&s->bytes_in, a->len);
	to_device(s, a->opcode, a->p, a->len);
	if (s->on_relay && s->o.feed && *s->o.feed)
		s->on_relay(s->arg, s->o.feed, a->opcode, a->p, a->len);
}

static bool relay_frame(void *arg, const struct ws_frame *f, const uint8_t *p)
{
	struct stream *s = arg;
	char why[STREAM_WHY];

	if (!data_frame(s, &s->ws, f, p, "the relay", why, sizeof(why))) {
		if (why[0])
			relay_disconnect(s, why);
	} else {
		int r = wsframe_message_add(&s->from_relay, f, p, MESSAGE_MAX);

		if (r == 1)
			deliver(s, &s->from_relay);
		else if (r < 0)
			relay_disconnect(s, r == -EMSGSIZE ? "a message from the relay is too large"
			                                   : "malformed message from the relay");
	}
	return s->relay.up;
}

static void relay_readable(struct stream *s)
{
	int r = wsc_read_frames(&s->ws, MESSAGE_MAX, relay_frame, s);

	if (r < 0 && s->relay.up)
		relay_disconnect(s, r == -ECONNRESET ? "connection closed"
		                    : r == -EPROTO   ? "malformed frame from the relay"
		                                     : strerror(-r));
}

static bool device_frame(void *arg, const struct ws_frame *f, const uint8_t *p)
{
	struct stream *s = arg;
	struct ws_message *m = &s->from_device;
	char why[STREAM_WHY];
	int r;

	if (!data_frame(s, &s->dws, f, p, "the websocket device", why, sizeof(why))) {
		if (!why[0])
			return true;
		device_down(s, why);
		return false;
	}
	r = wsframe_message_add(m, f, p, MESSAGE_MAX);
	if (r < 0) {
		device_down(s, r == -EILSEQ     ? "the websocket device sent text that is not UTF-8"
		               : r == -EMSGSIZE ? "the websocket device sent a message too large"
		                                : "malformed message from the websocket device");
		return false;
	}
	if (r == 1 && s->relay.up && send_relay(s, m->opcode, m->p, m->len))
		relay_disconnect(s, "cannot send device data");
	return true;
}

/* What the device says goes to the relay: one binary message per read (a websocket device's
 * messages keep their type). */
static void device_readable(struct stream *s)
{
	uint8_t buf[DEVICE_READ];
	ssize_t n;

	if (s->dev == DEV_WS) {
		int r = wsc_read_frames(&s->dws, MESSAGE_MAX, device_frame, s);

		if (r < 0)
			device_down(s, r == -ECONNRESET
			                       ? "the websocket device closed"
			                       : "malformed frame from the websocket device");
		return;
	}
	n = read(s->dev_fd, buf, sizeof(buf));
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		device_down(s, n == 0 ? "the device closed its end" : strerror(errno));
		return;
	}
	if (s->relay.up && send_relay(s, WS_BINARY, buf, (size_t)n))
		relay_disconnect(s, "cannot send device data");
}

/* ---- renewal ---- */

/* The old link after its close frame: deliver what the relay still sends until its close. */
static bool drain_frame(void *arg, const struct ws_frame *f, const uint8_t *p)
{
	struct stream *s = arg;
	char why[STREAM_WHY];

	if (!data_frame(s, &s->ws, f, p, "the relay", why, sizeof(why)))
		return !why[0]; /* stop at the relay's close */
	if (wsframe_message_add(&s->from_relay, f, p, MESSAGE_MAX) == 1)
		deliver(s, &s->from_relay);
	return true;
}

/* Close the old link (1000) and read it until the relay's close, at most a second. */
static void close_old_link(struct stream *s)
{
	uint8_t bye[2] = {0x03, 0xe8};
	int64_t end = clock_mono_ns() + 1000000000;

	epoll_ctl(s->ep, EPOLL_CTL_DEL, s->ws.fd, NULL);
	if (!wsc_send_frame(&s->ws, WS_CLOSE, bye, 2, (int)s->o.timeout)) {
		for (int64_t left; (left = (end - clock_mono_ns()) / 1000000) > 0;) {
			struct pollfd pfd = {.fd = s->ws.fd, .events = POLLIN};

			if (poll(&pfd, 1, (int)left) != 1 ||
			    wsc_read_frames(&s->ws, MESSAGE_MAX, drain_frame, s) != 0)
				break;
		}
	}
	wsc_close(&s->ws);
}

/* The websocket uri of an access answer; a refusal's reason in @why. */
static int access_uri(struct stream *s, char *uri, size_t len, char why[WSC_WHY])
{
	char *scopes[] = {(char *)"read", (char *)"write"}, *token = NULL, body[4096];
	const char *u;
	json_t *o;
	int status, ret;

	ret = wsc_token(s->o.token, s->o.token_file, s->o.session, s->o.secret_file, s->o.audience,
	                scopes, 2, s->o.token_lifetime / 1000, "relay-host", &token, why);
	if (ret)
		return ret;
	status = wsc_post(s->o.session, token, s->tls, (int)s->o.timeout, body, sizeof(body), why);
	cfg_free_secret(token);
	if (status < 0)
		return status;
	if (status != 200) {
		snprintf(why, WSC_WHY, "access refused: HTTP %d", status);
		return -EACCES;
	}
	o = json_loads(body, 0, NULL);
	u = json_string_value(json_object_get(o, "uri"));
	ret = u && strlen(u) < len ? 0 : -EPROTO;
	if (ret)
		snprintf(why, WSC_WHY, "access answer has no uri");
	else
		snprintf(uri, len, "%s", u);
	json_decref(o);
	return ret;
}

/* Send the upgrade request for @uri on the open connection @c; its key in @key. */
static int send_upgrade(struct wsc *c, const char *uri, char key[32])
{
	unsigned char raw[16];
	struct url u;
	char req[2560];
	int n;

	if (url_parse(uri, &u))
		return -EINVAL;
	RAND_bytes(raw, sizeof(raw));
	EVP_EncodeBlock((unsigned char *)key, raw, sizeof(raw));
	n = snprintf(
	        req, sizeof(req),
	        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
	        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: relay-host\r\n\r\n",
	        u.path, u.host, u.port, key);
	if (n < 0 || (size_t)n >= sizeof(req))
		return -EINVAL;
	for (int off = 0; off < n;) {
		ssize_t w = wsc_send(c, req + off, (size_t)(n - off));

		if (w <= 0)
			return w == 0 ? -EPIPE : (int)w;
		off += (int)w;
	}
	return 0;
}

/* The upgrade's answer in c->in: 0 when complete and right (101, the accept for @key; the head
 * consumed), 1 when incomplete, -ECONNREFUSED otherwise. */
static int upgrade_answer(struct wsc *c, const char *key, char why[WSC_WHY])
{
	uint8_t *end = c->in_len >= 4 ? memmem(c->in, c->in_len, "\r\n\r\n", 4) : NULL;
	char want[WSC_ACCEPT_LEN], head[4096], *h;
	size_t n;
	int status = 0;

	if (!end) {
		snprintf(why, WSC_WHY, "no handshake answer in %zu bytes", sizeof(head));
		return c->in_len >= sizeof(head) ? -ECONNREFUSED : 1;
	}
	n = (size_t)(end - c->in) + 4;
	if (n >= sizeof(head)) {
		snprintf(why, WSC_WHY, "no handshake answer in %zu bytes", sizeof(head));
		return -ECONNREFUSED;
	}
	memcpy(head, c->in, n);
	head[n] = '\0';
	wsc_accept_key(key, strlen(key), want);
	h = strcasestr(head, "\r\nsec-websocket-accept:");
	if (h) {
		h += strlen("\r\nsec-websocket-accept:");
		h += strspn(h, " ");
	}
	if (sscanf(head, "HTTP/1.%*d %d", &status) != 1 || status != 101 || !h ||
	    strncmp(h, want, strlen(want)) != 0 || h[strlen(want)] != '\r') {
		snprintf(why, WSC_WHY, "websocket refused: HTTP %d", status);
		return -ECONNREFUSED;
	}
	wsc_consume(c, n);
	return 0;
}

/*
 * The renewal's join. The relay adds the new link to the topic's readers when it answers the
 * upgrade, so until that answer arrives what the old link receives is not on the new link: it is
 * delivered here as usual, and what the old link delivers after the answer is the handover's
 * overlap. Reading the old link up to the answer makes that overlap (nearly) exact, so the
 * matcher need not guess where the new link joined. pkg/wsclient's wsc_join cannot read another
 * connection while it waits, hence this copy of its steps (to move there with the client rework).
 */
static int renew_join(struct stream *s, struct wsc *c, char why[WSC_WHY])
{
	int64_t end = clock_mono_ns() + s->o.timeout * 1000000;
	char uri[2048], key[32];
	int ret = access_uri(s, uri, sizeof(uri), why);

	if (ret)
		return ret;
	ret = wsc_open(c, uri, s->tls, (int)s->o.timeout, why);
	if (ret)
		return ret;
	if (s->relay.up)
		relay_readable(s); /* what came during the access steps is not on the new link */
	ret = send_upgrade(c, uri, key);
	if (!ret)
		ret = wsc_nonblock(c);
	if (ret)
		snprintf(why, WSC_WHY, "cannot send the upgrade: %s", strerror(-ret));
	while (!ret) {
		struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN},
		                        {.fd = s->relay.up ? s->ws.fd : -1, .events = POLLIN}};
		int64_t left = (end - clock_mono_ns()) / 1000000;
		int answer = upgrade_answer(c, key, why);
		ssize_t r;

		if (answer <= 0) {
			if (!answer)
				return 0;
			ret = answer;
			break;
		}
		if (left <= 0 || poll(pfd, 2, (int)left) <= 0) {
			snprintf(why, WSC_WHY, "no handshake answer: timed out");
			ret = -ETIMEDOUT;
			break;
		}
		/* the new link first: once its answer is here, the old link's bytes are overlap */
		while ((r = wsc_fill(c, 65536)) > 0)
			;
		if (r != -EAGAIN) {
			snprintf(why, WSC_WHY, "no handshake answer: connection closed");
			ret = -ECONNRESET;
		} else if (pfd[1].revents && !memmem(c->in, c->in_len, "\r\n\r\n", 4)) {
			relay_readable(s);
		}
	}
	wsc_close(c);
	return ret;
}

/* Complete data messages in @c's buffer (frames not yet read). */
static size_t messages_buffered(const struct wsc *c)
{
	size_t n = 0;
	struct ws_frame f;

	for (size_t off = 0; off < c->in_len;) {
		int h = wsframe_parse(c->in + off, c->in_len - off, &f);

		if (h <= 0 || f.payload_len > c->in_len - off - (size_t)h)
			break;
		if (f.fin && !(f.opcode & 0x8))
			n++;
		off += (size_t)h + (size_t)f.payload_len;
	}
	return n;
}

/*
 * Right after the upgrade answer: which of the old link's next messages the new link also gets.
 * The relay writes at the end of its loop pass, so a message published in the pass that added
 * the new link reaches the old link just after the answer, yet only the old link. For
 * HANDOVER_SETTLE_NS both links are read (the old one delivering and recording as usual): every
 * message published meanwhile reaches both, so the old link's surplus over the new one's count
 * is the number of such early messages, forgotten from the record (they come first).
 */
static void settle(struct stream *s, struct wsc *fresh)
{
	int64_t end = clock_mono_ns() + HANDOVER_SETTLE_NS;
	size_t on_new;

	for (int64_t left; s->relay.up && (left = end - clock_mono_ns()) > 0;) {
		struct pollfd pfd = {.fd = s->ws.fd, .events = POLLIN};
		struct timespec ts = {0, (long)left};

		if (ppoll(&pfd, 1, &ts, NULL) == 1)
			relay_readable(s);
	}
	if (s->relay.up)
		relay_readable(s);
	while (wsc_fill(fresh, MESSAGE_MAX) > 0)
		;
	on_new = messages_buffered(fresh); /* all came after the answer: all were published since */
	if (s->hv.n > on_new)
		host_handover_forget_first(&s->hv, s->hv.n - on_new);
}

/*
 * Make before break: open a second link with a fresh token; once it is up, close the old one
 * (1000) and read it until the relay's close, so that nothing sent before is lost; the new
 * link then skips its copies of the messages the old one delivered after the new one joined
 * (host/handover). If the new link cannot be opened, keep the old one and try again at the
 * backoff.
 */
static void renew(struct stream *s)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->ws};
	struct wsc fresh = {.fd = -1};
	char why[WSC_WHY];

	if (renew_join(s, &fresh, why)) {
		S_WARN(s, "cannot renew the token yet (%s); keeping the current link", why);
		s->renew_ns = clock_mono_ns() + s->relay.backoff_ms * 1000000;
		return;
	}
	host_handover_record_start(&s->hv);
	settle(s, &fresh);
	if (s->relay.up)
		close_old_link(s);
	host_handover_match_start(&s->hv, clock_mono_ns() + HANDOVER_WINDOW_NS);
	s->ws = fresh;
	s->from_relay.open = false;
	epoll_ctl(s->ep, EPOLL_CTL_ADD, s->ws.fd, &ev);
	if (!s->relay.up) {
		/* the old link went down meanwhile: the fresh one simply takes over */
		atomic_store(&s->relay_state, "up");
		link_up(s, &s->relay);
	}
	atomic_fetch_add(&s->renewals, 1);
	S_NOTICE(s, "%s", "token renewed on a new link without a gap");
	schedule_renewal(s);
	if (s->ws.in_len)
		relay_readable(s);
}

/* ---- the loop ---- */

static void arm_timer(struct stream *s)
{
	int64_t next = NEVER, now = clock_mono_ns();
	struct itimerspec its = {0};

	if (!s->relay.up && s->relay.retry_ns < next)
		next = s->relay.retry_ns;
	if (s->dev != DEV_NONE && !s->device.up && s->device.retry_ns < next)
		next = s->device.retry_ns;
	if (s->relay.up && s->renew_ns < next)
		next = s->renew_ns;
	if (next == NEVER)
		return;
	next = next - now < 1 ? 1 : next - now;
	its.it_value.tv_sec = next / 1000000000;
	its.it_value.tv_nsec = next % 1000000000;
	timerfd_settime(s->timer_fd, 0, &its, NULL);
}

static void on_timer(struct stream *s)
{
	int64_t now = clock_mono_ns();
	uint64_t n;

	if (read(s->timer_fd, &n, sizeof(n)) < 0) {
		/* deadlines are checked below */
	}
	if (s->relay.up && s->renew_ns <= now)
		renew(s);
	if (!s->relay.up && s->relay.retry_ns <= now && !atomic_load(&s->failed))
		relay_connect(s);
	if (s->dev != DEV_NONE && !s->device.up && s->device.retry_ns <= now)
		device_connect(s);
}

static void *stream_main(void *arg)
{
	struct stream *s = arg;
	struct epoll_event evs[8];
	bool done = false;

	relay_connect(s);
	if (s->dev != DEV_NONE)
		device_connect(s);
	while (!done) {
		int n;

		arm_timer(s);
		n = epoll_wait(s->ep, evs, 8, -1);
		for (int i = 0; i < n && !done; i++) {
			void *p = evs[i].data.ptr;

			if (p == &s->ws)
				relay_readable(s);
			else if (p == &s->dev_fd)
				device_readable(s);
			else if (p == &s->ev_fd)
				drain_queue(s);
			else if (p == &s->timer_fd)
				on_timer(s);
			else if (p == &s->stop_fd)
				done = true;
		}
	}
	if (s->relay.up) {
		uint8_t bye[2] = {0x03, 0xe8}; /* 1000 normal closure */

		wsc_send_frame(&s->ws, WS_CLOSE, bye, 2, (int)s->o.timeout);
		epoll_ctl(s->ep, EPOLL_CTL_DEL, s->ws.fd, NULL);
		wsc_close(&s->ws);
		s->relay.up = false;
	}
	atomic_store(&s->finished, true);
	wake(s->done_fd);
	return NULL;
}

/* ---- start and stop ---- */

static int watch(struct stream *s, int fd, void *tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};

	return epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev);
}

static int check(struct stream *s, char why[STREAM_WHY])
{
	const struct host_opts *o = &s->o;

	if (!o->session || !*o->session || wsc_topic_of(o->session, s->topic, sizeof(s->topic))) {
		snprintf(why, STREAM_WHY,
		         "an access URL (session) such as https://HOST/session/TOPIC is "
		         "required");
		return -EINVAL;
	}
	snprintf(s->name, sizeof(s->name), "%.63s", o->name && *o->name ? o->name : s->topic);
	if ((!o->video || !*o->video) && (!o->data || !*o->data) && (!o->feed || !*o->feed)) {
		snprintf(why, STREAM_WHY, "stream '%s': nothing to carry: give video, data or feed",
		         s->name);
		return -EINVAL;
	}
	if (parse_device(s)) {
		snprintf(why, STREAM_WHY,
		         "stream '%.40s': data must be tcp:HOST:PORT, udp:HOST:PORT, "
		         "serial:PATH:BAUD[:8N1], ws://HOST:PORT/PATH or exec:COMMAND, not '%.60s'",
		         s->name, o->data);
		return -EINVAL;
	}
	if (!(o->token && *o->token) && !(o->token_file && *o->token_file) &&
	    !(o->secret_file && *o->secret_file)) {
		snprintf(why, STREAM_WHY,
		         "stream '%.40s': no token: give a token, a token file or a secret file",
		         s->name);
		return -EINVAL;
	}
	if (o->feed && *o->feed && !ingest_feed_name_ok(o->feed, strlen(o->feed))) {
		snprintf(why, STREAM_WHY,
		         "stream '%.40s': feed names are 1 to 63 of A-Z a-z 0-9 . _ -", s->name);
		return -EINVAL;
	}
	if (o->backoff_min > o->backoff_max) {
		snprintf(why, STREAM_WHY, "stream '%s': backoff_min must not exceed backoff_max",
		         s->name);
		return -EINVAL;
	}
	return 0;
}

static void video_opts_of(struct stream *s)
{
	const struct host_opts *o = &s->o;

	s->vo = (struct video_opts){.width = (int)o->width,
	                            .height = (int)o->height,
	                            .fps = (int)o->fps,
	                            .bitrate = o->bitrate,
	                            .gop = (int)o->gop,
	                            .codec = o->codec,
	                            .format = o->format};
}

static int setup(struct stream *s, char why[STREAM_WHY])
{
	const struct host_opts *o = &s->o;
	char vwhy[160];

	s->ep = epoll_create1(EPOLL_CLOEXEC);
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	s->ev_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->tls = wsc_tls_new(!o->insecure);
	if (s->ep < 0 || s->stop_fd < 0 || s->timer_fd < 0 || s->ev_fd < 0 || !s->tls ||
	    watch(s, s->stop_fd, &s->stop_fd) || watch(s, s->timer_fd, &s->timer_fd) ||
	    watch(s, s->ev_fd, &s->ev_fd)) {
		snprintf(why, STREAM_WHY, "stream '%s': cannot set up its event loop", s->name);
		return -EIO;
	}
	if (o->video && *o->video) {
		s->vo = (struct video_opts){(int)o->width, (int)o->height, (int)o->fps, o->bitrate,
		                            (int)o->gop,   o->codec,       o->format};
		if (video_enc_new(&s->vo, on_chunk, s, &s->enc, vwhy)) {
			snprintf(why, STREAM_WHY, "stream '%.30s': %.110s", s->name, vwhy);
			return -EINVAL;
		}
	}
	return 0;
}

static void init(struct stream *s)
{
	s->ep = s->stop_fd = s->timer_fd = s->ev_fd = s->dev_fd = s->dev_wfd = -1;
	s->ws.fd = s->dws.fd = -1;
	pthread_mutex_init(&s->q.lock, NULL);
	pthread_mutex_init(&s->err_lock, NULL);
	s->relay = (struct link){"relay link", false, false, 0, NEVER};
	s->device = (struct link){"device link", false, false, 0, NEVER};
	s->video = (struct link){"video source", false, false, 0, NEVER};
	s->relay_state = "down";
	s->device_state = "none";
	s->video_state = "none";
	s->renew_ns = NEVER;
}

/* A new stream with its own copy of @o, checked; NULL with *@ret and @why set otherwise (a
 * stream that failed its check is returned for stream_stop() to free). */
static struct stream *prepare(const struct host_opts *o, int *ret, char why[STREAM_WHY])
{
	struct stream *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(why, STREAM_WHY, "out of memory");
		*ret = -ENOMEM;
		return NULL;
	}
	init(s);
	*ret = cfg_copy(&host_opts_table, &s->o, o, sizeof(s->o));
	if (*ret)
		snprintf(why, STREAM_WHY, "out of memory");
	else
		*ret = check(s, why);
	return s;
}

int stream_start(const struct host_opts *o, stream_relay_fn fn, void *arg, int done_fd,
                 struct stream **out, char why[STREAM_WHY])
{
	int ret;
	struct stream *s = prepare(o, &ret, why);

	*out = NULL;
	if (!s)
		return ret;
	s->on_relay = fn;
	s->arg = arg;
	s->done_fd = done_fd;
	if (!ret)
		ret = setup(s, why);
	s->relay.backoff_ms = s->device.backoff_ms = s->video.backoff_ms = s->o.backoff_min;
	if (!ret && s->enc) {
		atomic_store(&s->video_state, "down");
		ret = pthread_create(&s->enc_thread, NULL, encoder_main, s) ? -EAGAIN : 0;
		s->enc_started = !ret;
	}
	if (!ret) {
		ret = pthread_create(&s->thread, NULL, stream_main, s) ? -EAGAIN : 0;
		s->thread_started = !ret;
	}
	if (ret) {
		if (ret == -EAGAIN)
			snprintf(why, STREAM_WHY, "stream '%s': cannot start its threads", s->name);
		stream_stop(s);
		return ret;
	}
	if (s->dev != DEV_NONE)
		atomic_store(&s->device_state, "down");
	*out = s;
	return 0;
}

int stream_check(const struct host_opts *o, char why[STREAM_WHY])
{
	int ret;
	struct stream *s = prepare(o, &ret, why);

	if (!s)
		return ret;
	if (!ret && o->video && *o->video) {
		struct video_enc *e = NULL;
		char vwhy[160];

		video_opts_of(s); /* the codec, format and size, as setup() would open them */
		if (video_enc_new(&s->vo, on_chunk, s, &e, vwhy)) {
			snprintf(why, STREAM_WHY, "stream '%.30s': %.110s", s->name, vwhy);
			ret = -EINVAL;
		}
		video_enc_free(e);
	}
	stream_stop(s);
	return ret;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Encode time per frame (capture/draw + encode + mux), median and p99 over the last frames. */
static void report_encoding(struct stream *s)
{
	size_t n = s->n_encoded < ENCODE_TIMES ? s->n_encoded : ENCODE_TIMES;

	if (!n)
		return;
	qsort(s->encode_us, n, sizeof(s->encode_us[0]), cmp_i64);
	S_NOTICE(s, "video: %zu frames encoded, encode time median %lld us, p99 %lld us",
	         s->n_encoded, (long long)s->encode_us[n / 2],
	         (long long)s->encode_us[(n * 99) / 100]);
}

void stream_request_stop(struct stream *s)
{
	atomic_store(&s->stop, true);
	if (s->thread_started)
		wake(s->stop_fd);
}

bool stream_finished(const struct stream *s)
{
	return !s->thread_started || atomic_load(&s->finished);
}

void stream_stop(struct stream *s)
{
	struct qmsg m;

	if (!s)
		return;
	stream_request_stop(s);
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	if (s->enc_started) {
		pthread_join(s->enc_thread, NULL);
		report_encoding(s);
	}
	if (s->thread_started)
		S_NOTICE(
		        s, "stopping: %llu video frames sent, %llu dropped",
		        (unsigned long long)atomic_load(&s->frames_sent),
		        (unsigned long long)(atomic_load(&s->frames_dropped) + s->q.video_dropped));
	video_src_free(s->src);
	video_enc_free(s->enc);
	if (s->ws.fd >= 0)
		wsc_close(&s->ws);
	close_device(s);
	while (queue_take(s, &m))
		free(m.data);
	pthread_mutex_destroy(&s->q.lock);
	pthread_mutex_destroy(&s->err_lock);
	if (s->tls)
		SSL_CTX_free(s->tls);
	for (int i = 0, fds[] = {s->ep, s->stop_fd, s->timer_fd, s->ev_fd}; i < 4; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	wsframe_message_release(&s->from_relay);
	wsframe_message_release(&s->from_device);
	cfg_release(&host_opts_table, &s->o);
	free(s);
}

const char *stream_name(const struct stream *s)
{
	return s->name;
}

const char *stream_feed(const struct stream *s)
{
	return s->o.feed ? s->o.feed : "";
}

bool stream_failed(const struct stream *s)
{
	return atomic_load(&s->failed);
}

void stream_stats(struct stream *s, struct stream_stats *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", s->name);
	snprintf(out->feed, sizeof(out->feed), "%s", stream_feed(s));
	snprintf(out->topic, sizeof(out->topic), "%s", s->topic);
	out->relay = atomic_load(&s->relay_state);
	out->device = atomic_load(&s->device_state);
	out->video = atomic_load(&s->video_state);
	pthread_mutex_lock(&s->err_lock);
	snprintf(out->last_error, sizeof(out->last_error), "%s", s->last_error);
	pthread_mutex_unlock(&s->err_lock);
	out->msgs_out = atomic_load(&s->msgs_out);
	out->bytes_out = atomic_load(&s->bytes_out);
	out->msgs_in = atomic_load(&s->msgs_in);
	out->bytes_in = atomic_load(&s->bytes_in);
	out->frames_sent = atomic_load(&s->frames_sent);
	out->renewals = atomic_load(&s->renewals);
	out->failed_attempts = atomic_load(&s->failed_attempts);
	pthread_mutex_lock(&s->q.lock);
	out->frames_dropped = atomic_load(&s->frames_dropped) + s->q.video_dropped;
	out->feed_dropped = s->q.feed_dropped;
	pthread_mutex_unlock(&s->q.lock);
}
