/*
 * file/client: `relay file` connect/record/play/interactive (scripts load in file/script.c,
 * `relay file check` is file/check.c).
 *
 * One libuv loop: the websocket (pkg/wsclient's uv client: connecting never blocks the loop),
 * signals (SIGHUP reopens the recording, SIGINT/SIGTERM end the session), one timer armed at the
 * nearest deadline (script delays and condition timeouts, reconnection, the linger after the
 * script), and stdin in interactive mode.
 *
 * Script states (struct client.pstate), for the line at pc:
 *   RUN   -> execute lines until one must wait           (play_step)
 *   DELAY -> timer fires                      -> RUN      (on_timer)
 *   COND  -> COUNT matches or timeout         -> RUN      (on_message, on_timer)
 *   DONE  -> linger, then the session ends                (on_timer)
 * The script only advances while connected.
 */
#define LOG_MODULE "file"
#include "file/client.h"
#include "file/script.h"
#include "pkg/buf/buf.h"
#include "pkg/wsclient/uv.h"
#include "pkg/clock/clock.h"
#include "pkg/secret/secret.h"
#include "pkg/jwt/jwt.h"
#include "pkg/log/log.h"
#include "pkg/url/url.h"
#include "pkg/wsframe/wsframe.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define NEVER INT64_MAX
/* bytes waiting to go to the relay before a send is refused (the relay is not reading) */
#define OUT_MAX        (16 * 1024 * 1024)
#define STDIN_LINE_MAX 65536 /* a longer line is sent in pieces of this size */

/* ---- tokens ---- */

int file_token(const struct client_opts *o, char **out, char why[256])
{
	char *scopes[] = {(char *)"read", (char *)"write"};

	return rjwt_client_token(&(struct rjwt_source){o->token, o->token_file, o->secret_file,
	                                               o->audience, scopes, 2, 24 * 3600,
	                                               "relay-file"},
	                         o->session, out, why);
}

/* ---- the session ---- */

enum pstate { P_RUN, P_DELAY, P_COND, P_DONE };

struct client {
	const struct client_opts *o;
	SSL_CTX *tls;
	struct wsc_uv *c; /* NULL when there is no connection or attempt */
	bool connected, binary;
	int out_fd;
	uv_loop_t loop;
	uv_signal_t sig[3];
	uv_timer_t timer;
	uv_poll_t in_poll;
	/* script */
	struct file_script *script;
	size_t pc;
	int phase; /* of a SEND line: 0 start, 1 delay done, 2 condition done */
	enum pstate pstate;
	int64_t deadline_ns;
	int64_t matched;
	const regex_t *accept[FILE_FILTERS_MAX], *deny[FILE_FILTERS_MAX];
	size_t n_accept, n_deny;
	struct ws_message msg; /* a message being reassembled from fragments */
	/* reconnection */
	int64_t backoff_ms, reconnect_ns;
	bool reported_down;
	/* stdin */
	struct buf line; /* the line being read: STDIN_LINE_MAX, allocated at the start */
	bool stdin_open;
	bool loop_ready;
	bool done;
	int exit_code;
};

static void finish(struct client *cl, int code)
{
	cl->done = true;
	cl->exit_code = code;
	uv_stop(&cl->loop); /* uv_run() returns without waiting for more events */
}

/* ---- recording ---- */

static int write_all(int fd, const void *p, size_t n)
{
	const char *b = p;

	while (n) {
		ssize_t r = write(fd, b, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -errno;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static int open_output(struct client *cl)
{
	const char *f = cl->o->file;
	int fd;

	if (!f || !*f || strcmp(f, "-") == 0) {
		cl->out_fd = STDOUT_FILENO;
		return 0;
	}
	fd = open(f, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (cl->out_fd > STDOUT_FILENO)
		close(cl->out_fd);
	cl->out_fd = fd;
	return 0;
}

/* "[2026-11-23T10:00:00.123456789Z] text\n", as practable's recordings. */
static void record_line(struct client *cl, const char *text, size_t len)
{
	char head[64];
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(head, sizeof(head), "[%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(head + n, sizeof(head) - n, ".%09ldZ] ", ts.tv_nsec);
	if (write_all(cl->out_fd, head, n) || write_all(cl->out_fd, text, len) ||
	    write_all(cl->out_fd, "\n", 1))
		log_err("cannot write the recording: %s", strerror(errno));
}

static bool matches(const regex_t *re, const char *text)
{
	return regexec(re, text, 0, NULL, 0) == 0;
}

/* practable's filter: everything passes until a pattern is set; deny wins over accept. */
static bool passes(const struct client *cl, const char *text)
{
	if (!cl->n_accept && !cl->n_deny)
		return true;
	for (size_t i = 0; i < cl->n_deny; i++)
		if (matches(cl->deny[i], text))
			return false;
	for (size_t i = 0; i < cl->n_accept; i++)
		if (matches(cl->accept[i], text))
			return true;
	return false;
}

/* ---- sending ---- */

static void disconnect(struct client *cl, const char *why);

static int send_frame(struct client *cl, uint8_t op, const void *data, size_t len)
{
	return wsc_uv_send(cl->c, op, data, len);
}

static void send_message(struct client *cl, const char *text, size_t len)
{
	if (!cl->connected)
		return;
	/* a full output buffer: the relay is not reading; drop the link, reconnect */
	if (send_frame(cl, cl->binary ? WS_BINARY : WS_TEXT, text, len))
		disconnect(cl, "cannot send: the relay is not reading");
}

/* ---- the script ---- */

static void apply_filter(struct client *cl, const struct file_script_line *sl)
{
	if (sl->l.verb == PLAY_RESET) {
		cl->n_accept = cl->n_deny = 0;
	} else if (sl->l.verb == PLAY_ACCEPT) {
		cl->accept[cl->n_accept++] =
		        &sl->re; /* parse_all() kept them under FILE_FILTERS_MAX */
	} else if (sl->l.verb == PLAY_DENY) {
		cl->deny[cl->n_deny++] = &sl->re;
	}
}

static void wait_until(struct client *cl, enum pstate st, int64_t ms)
{
	cl->pstate = st;
	cl->deadline_ns = clock_mono_ns() + ms * 1000000;
}

/* Execute script lines until one has to wait. */
static void play_step(struct client *cl)
{
	while (cl->script && cl->connected && cl->pstate == P_RUN && cl->pc < cl->script->n) {
		const struct file_script_line *sl = &cl->script->lines[cl->pc];
		const struct play_line *l = &sl->l;

		switch (l->kind) {
		case PLAY_BLANK:
			break;
		case PLAY_COMMENT:
			if (l->echo && !cl->binary) /* a raw recording holds messages only */
				record_line(cl, l->msg.p, l->msg.len);
			break;
		case PLAY_FILTER:
			apply_filter(cl, sl);
			break;
		case PLAY_WAIT:
			cl->pc++;
			wait_until(cl, P_DELAY, l->delay_ms);
			return;
		case PLAY_SEND:
			if (cl->phase == 0 && l->delay_ms > 0) {
				cl->phase = 1;
				wait_until(cl, P_DELAY, l->delay_ms);
				return;
			}
			if (l->has_condition && cl->phase < 2) {
				cl->phase = 2;
				cl->matched = 0;
				wait_until(cl, P_COND, l->timeout_ms);
				return;
			}
			send_message(cl, l->msg.p, l->msg.len);
			cl->phase = 0;
			break;
		}
		cl->pc++;
	}
	if (cl->script && cl->pstate == P_RUN && cl->pc == cl->script->n) {
		wait_until(cl, P_DONE, cl->o->linger);
		log_notice("script played");
	}
}

/* ---- receiving ---- */

static char *as_text(struct client *cl, const uint8_t *p, size_t len, bool binary)
{
	char *t;

	(void)cl;
	if (!binary) {
		t = malloc(len + 1);
		if (t) {
			if (len)
				memcpy(t, p, len);
			t[len] = '\0';
		}
		return t;
	}
	t = malloc(4 * ((len + 2) / 3) + 1);
	if (t)
		EVP_EncodeBlock((unsigned char *)t, p, (int)len);
	return t;
}

static void on_message(struct client *cl, const uint8_t *p, size_t len, bool binary)
{
	char *text = as_text(cl, p, len, binary);

	if (!text) {
		log_err("out of memory");
		return;
	}
	if (cl->pstate == P_COND) {
		const struct file_script_line *sl = &cl->script->lines[cl->pc];

		if (matches(&sl->re, text) && ++cl->matched >= sl->l.count) {
			cl->pstate = P_RUN;
			play_step(cl);
		}
	}
	if (cl->binary) {
		if (write_all(cl->out_fd, p, len))
			log_err("cannot write the recording: %s", strerror(errno));
	} else if (passes(cl, text)) {
		record_line(cl, text, strlen(text));
	}
	free(text);
}

static void on_frame(struct client *cl, const struct ws_frame *f, const uint8_t *payload)
{
	size_t len = (size_t)f->payload_len;

	switch (f->opcode) {
	case WS_PING:
		if (send_frame(cl, WS_PONG, payload, len))
			disconnect(cl, "cannot answer a ping");
		return;
	case WS_PONG:
		return;
	case WS_CLOSE: {
		char why[160];
		int code = len >= 2 ? payload[0] << 8 | payload[1] : 1005;

		snprintf(why, sizeof(why), "closed by the relay: %d %.*s", code,
		         len > 2 ? (int)(len - 2) : 0, (const char *)payload + 2);
		send_frame(cl, WS_CLOSE, payload, len >= 2 ? 2 : 0);
		disconnect(cl, why);
		return;
	}
	default:
		switch (wsframe_message_add(&cl->msg, f, payload, FILE_MSG_MAX)) {
		case 0:
			return;
		case 1:
			on_message(cl, cl->msg.p, cl->msg.len, cl->msg.opcode == WS_BINARY);
			return;
		case -EMSGSIZE:
			disconnect(cl, "message too large");
			return;
		default:
			disconnect(cl, "malformed message from the relay");
			return;
		}
	}
}

static bool frame_cb(struct wsc_uv *c, const struct ws_frame *f, const uint8_t *payload, void *arg)
{
	struct client *cl = arg;

	(void)c;
	on_frame(cl, f, payload);
	return cl->connected;
}

/* ---- connecting ---- */

static bool permanent(int status)
{
	return status == 400 || status == 401 || status == 403 || status == 404 || status == 405;
}

static void schedule_reconnect(struct client *cl)
{
	unsigned char r;
	int64_t jitter;

	RAND_bytes(&r, 1);
	jitter = cl->backoff_ms * (r % 41 - 20) / 100; /* +-20 % */
	cl->reconnect_ns = clock_mono_ns() + (cl->backoff_ms + jitter) * 1000000;
	cl->backoff_ms =
	        cl->backoff_ms * 2 > cl->o->backoff_max ? cl->o->backoff_max : cl->backoff_ms * 2;
}

/* A connection attempt failed (@status: the HTTP status of a refusal, or 0). */
static void connect_failed(struct client *cl, int status, const char *why)
{
	if (permanent(status) || cl->o->once) {
		fprintf(stderr, "relay file: %s\n", why);
		finish(cl, CLIENT_FAIL);
		return;
	}
	if (!cl->reported_down)
		log_warn("%s; retrying with backoff up to %llds", why,
		         (long long)(cl->o->backoff_max / 1000));
	cl->reported_down = true;
	schedule_reconnect(cl);
}

static void on_open(struct wsc_uv *c, void *arg)
{
	struct client *cl = arg;

	(void)c;
	cl->connected = true;
	cl->backoff_ms = cl->o->backoff_min;
	log_notice("%s to %s", cl->reported_down ? "reconnected" : "connected", cl->o->session);
	cl->reported_down = false;
	if (cl->pstate == P_RUN)
		play_step(cl);
}

/* An established link is gone: end the session (--once) or reconnect after the backoff. */
static void link_lost(struct client *cl, const char *why)
{
	if (cl->o->once) {
		fprintf(stderr, "relay file: %s\n", why);
		finish(cl, CLIENT_FAIL);
		return;
	}
	log_warn("%s; reconnecting", why);
	cl->reported_down = true;
	schedule_reconnect(cl);
}

static void on_end(struct wsc_uv *c, int err, int status, const char *why, void *arg)
{
	struct client *cl = arg;
	bool was_connected = cl->connected;

	(void)c;
	(void)err;
	cl->c = NULL; /* freed by pkg/wsclient */
	cl->connected = false;
	cl->msg.open = false;
	if (cl->done)
		return;
	if (!was_connected)
		connect_failed(cl, status, why);
	else
		link_lost(cl, why);
}

static const struct wsc_uv_cbs client_cbs = {on_open, frame_cb, on_end};

static void connect_now(struct client *cl)
{
	char why[WSC_WHY], *token = NULL;

	cl->reconnect_ns = NEVER;
	if (file_token(cl->o, &token, why) == 0)
		cl->c = wsc_uv_join(&cl->loop, cl->o->session, token, cl->tls, (int)cl->o->timeout,
		                    FILE_MSG_MAX, OUT_MAX, &client_cbs, cl, why);
	secret_free(token);
	if (!cl->c)
		connect_failed(cl, 0, why);
}

static void disconnect(struct client *cl, const char *why)
{
	if (!cl->connected)
		return;
	wsc_uv_close(cl->c); /* what is queued (a close frame) still goes out */
	cl->c = NULL;
	cl->connected = false;
	cl->msg.open = false;
	if (!cl->done)
		link_lost(cl, why);
}

/* ---- stdin, signals, timers ---- */

static void read_stdin(struct client *cl)
{
	struct buf *b = &cl->line;
	ssize_t r = read(STDIN_FILENO, b->p + b->len, buf_room(b));
	uint8_t *nl;

	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		uv_poll_stop(&cl->in_poll);
		cl->stdin_open = false;
		if (b->len) /* a last line without its newline */
			send_message(cl, (const char *)b->p, b->len);
		b->len = 0;
		if (!cl->script)
			finish(cl, CLIENT_OK); /* end of input ends an interactive session */
		return;
	}
	b->len += (size_t)r;
	while ((nl = memchr(b->p, '\n', b->len))) {
		size_t n = (size_t)(nl - b->p);

		send_message(cl, (const char *)b->p, n && b->p[n - 1] == '\r' ? n - 1 : n);
		buf_consume(b, n + 1);
	}
	if (!buf_left(b)) {
		send_message(cl, (const char *)b->p, b->len); /* a very long line goes as it is */
		b->len = 0;
	}
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct client *cl = h->data;

	if (signum == SIGHUP) {
		if (open_output(cl))
			log_err("cannot reopen '%s': %s", cl->o->file, strerror(errno));
		return;
	}
	finish(cl, CLIENT_OK);
}

static void on_stdin(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	read_stdin(h->data);
}

static void arm_timer(struct client *cl);

static void on_timer(uv_timer_t *t)
{
	struct client *cl = t->data;
	int64_t now = clock_mono_ns();

	if (!cl->connected && !cl->c && cl->reconnect_ns <= now)
		connect_now(cl);
	if (cl->pstate != P_RUN && cl->deadline_ns <= now && cl->connected) {
		if (cl->pstate == P_DONE) {
			finish(cl, CLIENT_OK);
			return;
		}
		if (cl->pstate == P_COND)
			log_info("condition on line %d timed out after %d of %lld matches: sending",
			         cl->script->lines[cl->pc].lineno, (int)cl->matched,
			         (long long)cl->script->lines[cl->pc].l.count);
		cl->pstate = P_RUN;
		play_step(cl);
	}
	/* timers run before libuv waits for I/O: set the next deadline now, not after the wait */
	arm_timer(cl);
}

static void arm_timer(struct client *cl)
{
	int64_t next = cl->connected || cl->c ? NEVER : cl->reconnect_ns, now = clock_mono_ns();

	if (cl->script && cl->pstate != P_RUN && cl->connected && cl->deadline_ns < next)
		next = cl->deadline_ns;
	if (next == NEVER) {
		uv_timer_stop(&cl->timer);
		return;
	}
	next -= now;
	/* whole milliseconds, rounded up: never a wake-up before the deadline */
	uv_timer_start(&cl->timer, on_timer, next > 0 ? (uint64_t)(next + 999999) / 1000000 : 0, 0);
}

static int setup(struct client *cl)
{
	static const int signums[3] = {SIGHUP, SIGINT, SIGTERM};

	signal(SIGPIPE, SIG_IGN);
	if (uv_loop_init(&cl->loop))
		return -ENOMEM;
	cl->loop_ready = true;
	uv_timer_init(&cl->loop, &cl->timer);
	cl->timer.data = cl;
	for (int i = 0; i < 3; i++) {
		uv_signal_init(&cl->loop, &cl->sig[i]);
		cl->sig[i].data = cl;
		uv_signal_start(&cl->sig[i], on_signal, signums[i]);
	}
	if (cl->o->interactive) {
		buf_init(&cl->line, STDIN_LINE_MAX);
		if (buf_reserve(&cl->line, STDIN_LINE_MAX))
			return -ENOMEM;
		cl->stdin_open = uv_poll_init(&cl->loop, &cl->in_poll, STDIN_FILENO) == 0;
		if (!cl->stdin_open) {
			fprintf(stderr,
			        "relay file: stdin cannot be watched (a regular file?): pipe it instead\n");
			return -EINVAL;
		}
		cl->in_poll.data = cl;
		uv_poll_start(&cl->in_poll, UV_READABLE, on_stdin);
	}
	return 0;
}

static void close_handle(uv_handle_t *h)
{
	if (h->loop && !uv_is_closing(h))
		uv_close(h, NULL);
}

static void teardown(struct client *cl)
{
	if (cl->connected) {
		uint8_t bye[2] = {0x03, 0xe8}; /* 1000 normal closure */

		send_frame(cl, WS_CLOSE, bye, 2);
	}
	if (cl->c)
		wsc_uv_close(cl->c); /* the close frame goes out before the socket closes */
	cl->c = NULL;
	cl->connected = false;
	if (cl->loop_ready) {
		close_handle((uv_handle_t *)&cl->timer);
		for (int i = 0; i < 3; i++)
			close_handle((uv_handle_t *)&cl->sig[i]);
		if (cl->o->interactive)
			close_handle((uv_handle_t *)&cl->in_poll);
		uv_run(&cl->loop, UV_RUN_DEFAULT); /* until the connection's handles are closed */
		uv_loop_close(&cl->loop);
	}
	if (cl->out_fd > STDOUT_FILENO)
		close(cl->out_fd);
	if (cl->tls)
		SSL_CTX_free(cl->tls);
	file_script_free(cl->script);
	wsframe_message_release(&cl->msg);
	buf_release(&cl->line);
}

static void loop(struct client *cl)
{
	while (!cl->done) {
		arm_timer(cl);
		uv_run(&cl->loop, UV_RUN_ONCE);
	}
}

int file_client(const struct client_opts *o)
{
	struct client cl = {.o = o, .out_fd = STDOUT_FILENO};
	char why[WSC_WHY];
	int ret;

	cl.binary = strcmp(o->mode, "binary") == 0;
	cl.backoff_ms = o->backoff_min;
	cl.pstate = P_RUN;
	if (o->play && *o->play && file_script_load(o->play, &cl.script))
		return CLIENT_USAGE;
	cl.tls = wsc_tls_new_ca(!o->insecure, o->ca_file, why);
	if (!cl.tls) {
		fprintf(stderr, "relay file: %s\n", why);
		file_script_free(cl.script);
		return CLIENT_USAGE;
	}
	ret = open_output(&cl);
	if (ret) {
		fprintf(stderr, "relay file: cannot open '%s': %s\n", o->file, strerror(-ret));
		file_script_free(cl.script);
		SSL_CTX_free(cl.tls);
		return CLIENT_FAIL;
	}
	if (setup(&cl)) {
		teardown(&cl);
		return CLIENT_FAIL;
	}
	connect_now(&cl);
	loop(&cl);
	teardown(&cl);
	return cl.exit_code;
}
