/*
 * host/device: a stream's local device (the --data spec, parsed by host/devspec): a TCP or UDP
 * socket, a serial port, a child process's stdin and stdout, or a websocket. What it says goes
 * to the relay, what the relay says goes to it. The stream's thread only.
 *
 * Connecting never waits on the loop: a socket is connected by pkg/dial (the name looked up on
 * libuv's thread pool, each address tried with a non-blocking connect()), a websocket's handshake
 * runs in pkg/wsclient/uv.h. pkg/dial hands over a plain fd rather than a uv_tcp_t: it then goes
 * on as every other device's fd does (read(), host_outbuf_flush(), a poll handle), where a
 * uv_tcp_t would own the fd and want a second read and write path beside the one serial ports
 * and pipes need. For the same reason an open websocket device is handed over (wsc_uv_detach())
 * to a struct wsc.
 */
#define LOG_MODULE "device"
#include "host/internal.h"
#include "host/outbuf.h"
#include "pkg/clock/clock.h"
#include "pkg/dial/dial.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>

#define DEVICE_READ (64 * 1024)

static int open_serial(struct host_stream *s, char why[WSC_WHY])
{
	struct termios t;
	int fd = open(s->dev.host, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0 || tcgetattr(fd, &t)) {
		snprintf(why, WSC_WHY, "cannot open serial port '%.100s': %s", s->dev.host,
		         strerror(errno));
		if (fd >= 0)
			close(fd);
		return -EIO;
	}
	cfmakeraw(&t); /* 8N1, no echo, no line editing, no flow control */
	t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
	t.c_cflag |= s->dev.cflag | CLOCAL | CREAD;
	if (s->dev.cflag & PARENB)
		t.c_iflag |= INPCK; /* check parity on input */
	cfsetispeed(&t, s->dev.speed);
	cfsetospeed(&t, s->dev.speed);
	if (tcsetattr(fd, TCSANOW, &t)) {
		snprintf(why, WSC_WHY, "cannot set up serial port '%.100s': %s", s->dev.host,
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
static int spawn_device(struct host_stream *s, char why[WSC_WHY])
{
	char *argv[] = {(char *)"sh", (char *)"-c", (char *)s->dev.command, NULL};
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
		snprintf(why, WSC_WHY, "cannot start '%.100s': %s", s->dev.command, strerror(ret));
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

/* Give up what connecting holds: the socket's dial, a websocket's handshake. */
static void stop_connecting(struct host_stream *s)
{
	dial_cancel(s->dev_dial);
	s->dev_dial = NULL;
	if (s->dev_ws)
		wsc_uv_close(s->dev_ws);
	s->dev_ws = NULL;
	s->dev_deadline_ns = NEVER;
}

static void device_opened(struct host_stream *s);

static void connect_failed(struct host_stream *s, const char *why)
{
	stop_connecting(s);
	atomic_store(&s->device_state, "down");
	host__link_down(s, &s->device, why);
}

static void on_dialled(int fd, int err, const char *why, void *arg)
{
	struct host_stream *s = arg;
	char msg[WSC_WHY];

	(void)err;
	s->dev_dial = NULL; /* freed by pkg/dial once this returns */
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "%s", why);
		connect_failed(s, msg);
		return;
	}
	s->dev_fd = s->dev_wfd = fd;
	device_opened(s);
}

/* tcp: and udp: devices: pkg/dial tries every address the name has, in getaddrinfo's order
 * (tcp:localhost:PORT to a device on 127.0.0.1 only, where ::1 sorts first), within one
 * --timeout, then on_dialled(). */
static int connect_socket(struct host_stream *s, char why[WSC_WHY])
{
	int type = s->dev.kind == HOST_DEV_UDP ? SOCK_DGRAM : SOCK_STREAM;
	char dwhy[DIAL_WHY];

	s->dev_dial = dial_start(&s->loop, s->dev.host, s->dev.port, type, (int)s->o.timeout,
	                         on_dialled, s, dwhy);
	if (!s->dev_dial) {
		snprintf(why, WSC_WHY, "%s", dwhy);
		return -EINVAL;
	}
	return 0;
}

/* The websocket device's handshake is done: it goes on as a plain non-blocking struct wsc,
 * read and written by device.c as any other device's fd. */
static void on_ws_open(struct wsc_uv *c, void *arg)
{
	struct host_stream *s = arg;
	int r = wsc_uv_detach(c, &s->dws);
	char why[WSC_WHY];

	if (r) {
		snprintf(why, WSC_WHY, "cannot set up the websocket device: %s", strerror(-r));
		connect_failed(s, why); /* closes c */
		return;
	}
	s->dev_ws = NULL; /* ended by the detach */
	/* its output buffer is written as far as the socket takes, and may move; not so the
	 * relay link's, which goes whole through a memory BIO (pkg/wsclient/uv.c) */
	if (s->dws.ssl)
		SSL_set_mode(s->dws.ssl,
		             SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	s->dev_fd = s->dev_wfd = s->dws.fd;
	device_opened(s);
}

static bool on_ws_frame(struct wsc_uv *c, const struct ws_frame *f, const uint8_t *p, void *arg)
{
	(void)c; /* never called: on_ws_open() detaches before any frame is read */
	(void)f;
	(void)p;
	(void)arg;
	return false;
}

static void on_ws_close(struct wsc_uv *c, int err, int status, const char *why, void *arg)
{
	struct host_stream *s = arg;

	(void)c;
	(void)err;
	(void)status;
	s->dev_ws = NULL; /* freed by pkg/wsclient */
	connect_failed(s, why);
}

static const struct wsc_uv_cbs ws_cbs = {on_ws_open, on_ws_frame, on_ws_close};

/* ws:// and wss:// devices: the handshake on the loop (pkg/wsclient/uv.h), then on_ws_open(). */
static int open_ws_device(struct host_stream *s, char why[WSC_WHY])
{
	s->dev_ws = wsc_uv_open(&s->loop, s->o.data, s->tls, (int)s->o.timeout, MESSAGE_MAX,
	                        DEVICE_OUT_MAX, &ws_cbs, s, why);
	return s->dev_ws ? 0 : -EIO;
}

void host__close_device(struct host_stream *s)
{
	stop_connecting(s);
	host__watch_free(s->dev_watch);
	host__watch_free(s->dev_wwatch);
	s->dev_watch = s->dev_wwatch = NULL;
	host_outbuf_clear(&s->dev_out);
	s->dev_paused = false;
	if (s->dev.kind == HOST_DEV_WS) {
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

static void device_down(struct host_stream *s, const char *why)
{
	host__close_device(s);
	atomic_store(&s->device_state, "down");
	host__link_down(s, &s->device, why);
}

/* The device's fd (its watch is @w) is ready for @events. */
static void on_device_io(struct host_stream *s, struct host_watch *w, int events)
{
	if (w == s->dev_wwatch) {
		host__device_writable(s); /* room, or an error the write reports */
		return;
	}
	if (events & UV_WRITABLE)
		host__device_writable(s);
	if ((events & (UV_READABLE | UV_DISCONNECT)) && s->dev_watch == w)
		host__device_readable(s);
}

/* Watch the device's fds: for input, and (a child's stdin) for room only while something waits
 * for it. false when libuv cannot. */
static bool watch_device(struct host_stream *s)
{
	s->dev_watch = host__watch_new(s, s->dev_fd, on_device_io);
	if (s->dev_wfd != s->dev_fd)
		s->dev_wwatch = host__watch_new(s, s->dev_wfd, on_device_io);
	host__watch_set(s->dev_watch, UV_READABLE);
	return s->dev_watch && (s->dev_wfd == s->dev_fd || s->dev_wwatch);
}

/* The device is open (s->dev_fd): watch it, and the link is up. */
static void device_opened(struct host_stream *s)
{
	stop_connecting(s);
	if (!watch_device(s)) {
		device_down(s, "cannot watch the device");
		return;
	}
	atomic_store(&s->device_state, "up");
	host__link_up(s, &s->device);
	if (s->dev.kind == HOST_DEV_WS && wsc_buffered(&s->dws))
		host__device_readable(s); /* frames that came with the handshake's answer */
}

void host__device_connect(struct host_stream *s)
{
	char why[WSC_WHY];
	int ret;

	s->device.retry_ns = NEVER;
	s->dev_deadline_ns = clock_mono_ns() + s->o.timeout * NS_PER_MS;
	switch (s->dev.kind) {
	case HOST_DEV_EXEC:
		ret = spawn_device(s, why);
		break;
	case HOST_DEV_SERIAL:
		ret = open_serial(s, why);
		break;
	case HOST_DEV_WS:
		ret = open_ws_device(s, why); /* the outcome comes later */
		break;
	default:
		ret = connect_socket(s, why); /* the outcome comes later */
		break;
	}
	if (ret)
		connect_failed(s, why);
	else if (s->dev.kind == HOST_DEV_EXEC || s->dev.kind == HOST_DEV_SERIAL)
		device_opened(s);
}

/* A device's lookup and connects (or a websocket's whole handshake) share one --timeout: a
 * switched-off device would otherwise keep the device link waiting for minutes; never the loop,
 * as nothing here waits. */
void host__device_check_connect(struct host_stream *s, int64_t now_ns)
{
	char why[WSC_WHY];

	if (s->dev_deadline_ns > now_ns)
		return;
	snprintf(why, WSC_WHY, "cannot connect to %.100s: %s", s->o.data, strerror(ETIMEDOUT));
	connect_failed(s, why);
}

/* Watch the device for what the loop needs now: input unless paused, room while output waits. */
void host__device_watch(struct host_stream *s)
{
	int in = s->dev_paused ? 0 : UV_READABLE;
	int out = host_outbuf_pending(&s->dev_out) ? UV_WRITABLE : 0;

	if (s->dev_fd < 0)
		return;
	if (s->dev_wfd == s->dev_fd) {
		host__watch_set(s->dev_watch, in | out);
	} else {
		host__watch_set(s->dev_watch, in);
		host__watch_set(s->dev_wwatch, out);
	}
}

/* Write what waits for the device, as far as it takes it now. */
void host__device_writable(struct host_stream *s)
{
	int ret;

	if (s->dev_wfd < 0)
		return;
	ret = host_outbuf_flush(&s->dev_out, s->dev.kind == HOST_DEV_WS ? &s->dws : NULL,
	                        s->dev_wfd, clock_mono_ns());
	if (ret) {
		device_down(s, ret == -EPIPE ? "the device closed its end" : strerror(-ret));
		return;
	}
	host__device_watch(s);
}

/* The device took nothing for --timeout while output waited: it stopped reading. */
void host__device_check_stall(struct host_stream *s, int64_t now_ns)
{
	if (s->dev_wfd >= 0 && host_outbuf_pending(&s->dev_out) &&
	    now_ns - s->dev_out.progress_ns >= s->o.timeout * NS_PER_MS)
		device_down(s, "the device stopped reading (write timed out)");
}

/*
 * What the relay says (written by a browser with write scope) goes to the device: queued in a
 * bounded buffer and written as the device takes it, so that a device that stops reading never
 * holds the stream; it is given --timeout to take something, or DEVICE_OUT_MAX bytes of room.
 */
void host__to_device(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n)
{
	int64_t now = clock_mono_ns();
	int ret;

	if (s->dev_wfd < 0)
		return;
	if (s->dev.kind == HOST_DEV_WS)
		ret = host_outbuf_put_frame(&s->dev_out, opcode, p, n, now);
	else
		ret = host_outbuf_put(&s->dev_out, p, n, now);
	if (ret) {
		device_down(s, ret == -ENOBUFS ? "the device stopped reading (its buffer is full)"
		                               : "out of memory");
		return;
	}
	host__device_writable(s);
}

static bool device_frame(void *arg, const struct ws_frame *f, const uint8_t *p)
{
	struct host_stream *s = arg;
	struct ws_message *m = &s->from_device;
	char why[HOST_STREAM_WHY];
	int r;

	if (!host__data_frame(&s->dev_out, f, p, "the websocket device", why, sizeof(why))) {
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
	if (r == 1 && s->relay.up)
		host__send_relay(s, m->opcode, m->p, m->len);
	return true;
}

/* What the device says goes to the relay: one binary message per read (a websocket device's
 * messages keep their type). */
void host__device_readable(struct host_stream *s)
{
	uint8_t buf[DEVICE_READ];
	ssize_t n;

	if (s->dev.kind == HOST_DEV_WS) {
		int r = wsc_read_frames(&s->dws, MESSAGE_MAX, device_frame, s);

		if (r < 0)
			device_down(s, r == -ECONNRESET
			                       ? "the websocket device closed"
			                       : "malformed frame from the websocket device");
		else if (host_outbuf_pending(&s->dev_out))
			host__device_writable(s); /* pongs */
		host__pause_device_if_full(s);
		return;
	}
	n = read(s->dev_fd, buf, sizeof(buf));
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		device_down(s, n == 0 ? "the device closed its end" : strerror(errno));
		return;
	}
	if (s->relay.up)
		host__send_relay(s, WS_BINARY, buf, (size_t)n);
	host__pause_device_if_full(s);
}

/* Back-pressure: the device is read no further while the relay link has more than
 * RELAY_OUT_LOW bytes waiting (host__relay_prepare resumes it), so nothing read is dropped. */
void host__pause_device_if_full(struct host_stream *s)
{
	if (s->dev_fd >= 0 && !s->dev_paused && host__relay_queued(s) > RELAY_OUT_LOW) {
		s->dev_paused = true;
		host__device_watch(s);
	}
}
