/*
 * host/stream: a stream's thread and its libuv loop, its start, stop and counters, and the link
 * states. The parts: host/internal.h.
 *
 * The loop (s->loop) is set up by host_stream_start() and then run by the stream's thread
 * alone. Its handles:
 *   relay links  pkg/wsclient/uv.h: each link's TCP handle and deadline timer (link.c)
 *   hv_timer     uv_timer_t   renewal: the new link's settling, then the old link's close
 *   dev_watch    uv_poll_t    the device (its fd; a child's stdout): readable unless paused,
 *                             writable while s->dev_out holds bytes (same fd)
 *   dev_wwatch   uv_poll_t    a child's stdin: writable while s->dev_out holds bytes
 *   queue_async  uv_async_t   the encoder or the main thread queued messages (msgq.c)
 *   stop_async   uv_async_t   host_stream_request_stop(): close the links, then the rest
 *   timer        uv_timer_t   the nearest deadline: reconnection, renewal, a peer that stopped
 *                             reading, a device's connect; milliseconds are fine for all of them
 *   (pkg/dial)   uv_poll_t    a device socket being connected, and a uv_timer_t for its deadline
 *   arm          uv_prepare_t sets the timer before each wait, as the deadlines move
 * The device's watches are poll handles rather than uv_tcp_t because a device may be a serial
 * port, a child's pipes or a websocket whose TLS pkg/wsclient reads and writes on the fd. They
 * live on the heap (host_watch): a reconnection watches its new fd while the old handle is still
 * closing. At the end the links are closed (1000), then the device and every handle, and the
 * loop runs until the close callbacks are done, so that uv_loop_close() finds nothing left.
 *
 * Link states, per link (relay websocket, device, video source):
 *   DOWN --connect ok--> UP --error/close--> DOWN (retry at backoff, doubling to the cap, +-20 %)
 * Each change of state is logged once, not each attempt. A refused token (HTTP 4xx) is final.
 * Reading and writing never wait: output for the relay goes through libuv's write queue,
 * bounded (pkg/wsclient/uv.h), output for the device through a bounded buffer (host/outbuf)
 * written when the fd has room; video that does not fit is dropped at frame granularity up to
 * the next keyframe (link.c), a device is not read while the relay's queue is full (device.c).
 * Connection steps are asynchronous too: the relay link's (join, renewal, close) and the
 * device's (lookup on libuv's thread pool, a non-blocking connect per address, a websocket's
 * handshake), each bounded by --timeout through the timer below or pkg/wsclient's own.
 */
#define LOG_MODULE "stream"
#include "host/backoff.h"
#include "host/ingest.h"
#include "host/internal.h"
#include "pkg/clock/clock.h"
#include "pkg/config/config.h"
#include "pkg/jwt/jwt.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

void host__set_error(struct host_stream *s, const char *why)
{
	pthread_mutex_lock(&s->err_lock);
	snprintf(s->last_error, sizeof(s->last_error), "%s", why);
	pthread_mutex_unlock(&s->err_lock);
}

void host__link_down(struct host_stream *s, struct link *l, const char *why)
{
	unsigned char r;

	l->up = false;
	atomic_fetch_add(&s->failed_attempts, 1);
	if (!l->reported_down) {
		host__set_error(
		        s, why); /* before the log line: what the log says, the API already shows */
		logt_warn(s->name, "%s down: %s; retrying with backoff up to %lld ms", l->what, why,
		          (long long)s->o.backoff_max);
	}
	l->reported_down = true;
	RAND_bytes(&r, 1);
	l->retry_ns = clock_mono_ns() + host_backoff_wait_ms(l->backoff_ms, r) * NS_PER_MS;
	l->backoff_ms = host_backoff_next(l->backoff_ms, s->o.backoff_max);
}

void host__link_up(struct host_stream *s, struct link *l)
{
	logt_notice(s->name, "%s %s", l->what, l->reported_down ? "back up" : "up");
	l->up = true;
	l->reported_down = false;
	l->backoff_ms = s->o.backoff_min;
	l->retry_ns = NEVER;
}

static void on_io(uv_poll_t *h, int status, int events)
{
	struct host_watch *w = h->data;

	if (status < 0) {
		/* an error on the fd (POLLERR): libuv stopped the handle; the read or write that
		 * follows reports the error, as a readable fd would */
		events = w->events | UV_READABLE;
		w->events = 0;
	}
	w->fn(w->s, w, events);
}

struct host_watch *host__watch_new(struct host_stream *s, int fd,
                                   void (*fn)(struct host_stream *s, struct host_watch *w,
                                              int events))
{
	struct host_watch *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	if (uv_poll_init(&s->loop, &w->poll, fd)) {
		free(w);
		return NULL;
	}
	w->poll.data = w;
	w->s = s;
	w->fn = fn;
	return w;
}

void host__watch_set(struct host_watch *w, int events)
{
	if (!w || events == w->events)
		return;
	if (events ? uv_poll_start(&w->poll, events, on_io) : uv_poll_stop(&w->poll))
		return; /* EBADF: the fd is being closed; what follows closes the watch */
	w->events = events;
}

static void free_watch(uv_handle_t *h)
{
	free(h->data);
}

void host__watch_free(struct host_watch *w)
{
	if (!w)
		return;
	uv_poll_stop(&w->poll); /* the fd may be closed from here on */
	uv_close((uv_handle_t *)&w->poll, free_watch);
}

void host__wake(struct host_stream *s, uv_async_t *h)
{
	pthread_mutex_lock(&s->q.lock);
	if (s->q.awake)
		uv_async_send(h);
	pthread_mutex_unlock(&s->q.lock);
}

static void on_timer(uv_timer_t *h)
{
	struct host_stream *s = h->data;
	int64_t now = clock_mono_ns();

	host__relay_check_stall(s, now);
	host__device_check_stall(s, now);
	if (s->relay.up && s->renew_ns <= now)
		host__renew(s);
	if (!s->relay.up && !s->link && s->relay.retry_ns <= now && !atomic_load(&s->failed) &&
	    !s->stopping)
		host__relay_connect(s);
	host__device_check_connect(s, now);
	if (s->dev.kind != HOST_DEV_NONE && !s->device.up && s->device.retry_ns <= now)
		host__device_connect(s);
}

/* Set the timer to the nearest deadline; before each wait (a uv_prepare_t), as the deadlines
 * move with whatever the last callbacks did. */
static void on_arm(uv_prepare_t *h)
{
	struct host_stream *s = h->data;
	int64_t next = NEVER, now = clock_mono_ns(), stall;

	if (!s->relay.up && s->relay.retry_ns < next)
		next = s->relay.retry_ns;
	if (s->dev.kind != HOST_DEV_NONE && !s->device.up && s->device.retry_ns < next)
		next = s->device.retry_ns;
	if (s->dev_deadline_ns < next)
		next = s->dev_deadline_ns;
	if (s->relay.up && s->renew_ns < next)
		next = s->renew_ns;
	/* output that waits: the peer has --timeout to take some of it */
	stall = host__relay_prepare(s, now);
	if (stall < next)
		next = stall;
	if (s->dev_wfd >= 0 && host_outbuf_pending(&s->dev_out) &&
	    s->dev_out.progress_ns + s->o.timeout * NS_PER_MS < next)
		next = s->dev_out.progress_ns + s->o.timeout * NS_PER_MS;
	if (next == NEVER) {
		uv_timer_stop(&s->timer);
		return;
	}
	/* the loop's clock is the one of this pass's start: a callback may have taken long */
	uv_update_time(&s->loop);
	uv_timer_start(&s->timer, on_timer,
	               next <= now ? 0 : (uint64_t)(next - now + NS_PER_MS - 1) / NS_PER_MS, 0);
}

static void close_handle(uv_handle_t *h)
{
	if (h->loop && !uv_is_closing(h)) /* initialised, and not closed yet */
		uv_close(h, NULL);
}

/* Close the stream's own handles: no wake-up is taken after this. The device's watches are
 * closed with the device, and the relay links' handles by pkg/wsclient once their last bytes
 * are out (wsc_uv_close()); the loop runs until all are closed. */
static void close_all(struct host_stream *s)
{
	pthread_mutex_lock(&s->q.lock);
	s->q.awake = false;
	pthread_mutex_unlock(&s->q.lock);
	close_handle((uv_handle_t *)&s->stop_async);
	close_handle((uv_handle_t *)&s->queue_async);
	close_handle((uv_handle_t *)&s->timer);
	close_handle((uv_handle_t *)&s->arm);
	close_handle((uv_handle_t *)&s->hv_timer);
}

/* Run the loop until the handles closed by close_all() are closed, and release it. */
static void loop_end(struct host_stream *s)
{
	int ret;

	uv_run(&s->loop, UV_RUN_DEFAULT);
	ret = uv_loop_close(&s->loop);
	if (ret)
		logt_err(s->name, "its event loop did not close: %s", uv_strerror(ret));
	s->loop_ready = false;
}

/* The end of the stream: close the relay link (1000), then the rest (host__stream_closed). */
static void on_stop(uv_async_t *h)
{
	host__relay_stop(h->data);
}

void host__stream_closed(struct host_stream *s)
{
	host__channels_close(s);
	host__close_device(s);
	close_all(s);
}

static void on_queue(uv_async_t *h)
{
	host__drain_queue(h->data);
}

static void *stream_main(void *arg)
{
	struct host_stream *s = arg;

	host__relay_connect(s);
	if (s->dev.kind != HOST_DEV_NONE)
		host__device_connect(s);
	uv_run(&s->loop, UV_RUN_DEFAULT); /* until on_stop() closed every handle */
	loop_end(s);
	atomic_store(&s->finished, true);
	if (s->done)
		uv_async_send(s->done);
	return NULL;
}

static int check(struct host_stream *s, char why[HOST_STREAM_WHY])
{
	const struct host_opts *o = &s->o;

	if (!o->session || !*o->session || wsc_topic_of(o->session, s->topic, sizeof(s->topic))) {
		snprintf(why, HOST_STREAM_WHY,
		         "an access URL (session) such as https://HOST/session/TOPIC is "
		         "required");
		return -EINVAL;
	}
	snprintf(s->name, sizeof(s->name), "%.63s", o->name && *o->name ? o->name : s->topic);
	if (o->connect && *o->connect) {
		if (host_devspec_parse(o->connect, &s->target) || s->target.kind != HOST_DEV_TCP ||
		    (o->video && *o->video) || (o->data && *o->data) || (o->feed && *o->feed)) {
			snprintf(why, HOST_STREAM_WHY,
			         "stream '%.40s': connect must be tcp:HOST:PORT, alone (no video, "
			         "data or feed), not '%.60s'",
			         s->name, o->connect);
			return -EINVAL;
		}
	} else if ((!o->video || !*o->video) && (!o->data || !*o->data) &&
	           (!o->feed || !*o->feed)) {
		snprintf(why, HOST_STREAM_WHY,
		         "stream '%s': nothing to carry: give video, data, feed or connect",
		         s->name);
		return -EINVAL;
	}
	if (host_devspec_parse(o->data, &s->dev)) {
		snprintf(why, HOST_STREAM_WHY,
		         "stream '%.40s': data must be tcp:HOST:PORT, udp:HOST:PORT, "
		         "serial:PATH:BAUD[:8N1], ws://HOST:PORT/PATH or exec:COMMAND, not '%.60s'",
		         s->name, o->data);
		return -EINVAL;
	}
	if (!(o->token && *o->token) && !(o->token_file && *o->token_file) &&
	    !(o->secret_file && *o->secret_file)) {
		snprintf(why, HOST_STREAM_WHY,
		         "stream '%.40s': no token: give a token, a token file or a secret file",
		         s->name);
		return -EINVAL;
	}
	if (o->feed && *o->feed && !host_ingest_feed_name_ok(o->feed, strlen(o->feed))) {
		snprintf(why, HOST_STREAM_WHY,
		         "stream '%.40s': feed names are 1 to 63 of A-Z a-z 0-9 . _ -", s->name);
		return -EINVAL;
	}
	if (o->backoff_min > o->backoff_max) {
		snprintf(why, HOST_STREAM_WHY,
		         "stream '%s': backoff_min must not exceed backoff_max", s->name);
		return -EINVAL;
	}
	return 0;
}

/* The encoder's settings from the stream's (the codec, format, size and rate). */
static void video_opts_of(struct host_stream *s)
{
	const struct host_opts *o = &s->o;

	s->vo = (struct host_video_opts){.width = (int)o->width,
	                                 .height = (int)o->height,
	                                 .fps = (int)o->fps,
	                                 .bitrate = o->bitrate,
	                                 .gop = (int)o->gop,
	                                 .codec = o->codec,
	                                 .format = o->format};
}

/* The loop and its fixed handles, set up here and run by the stream's thread from then on. */
static int loop_init(struct host_stream *s)
{
	if (uv_loop_init(&s->loop))
		return -EIO;
	s->loop_ready = true; /* from here on, loop_end() releases what was set up */
	if (uv_async_init(&s->loop, &s->stop_async, on_stop) ||
	    uv_async_init(&s->loop, &s->queue_async, on_queue) ||
	    uv_timer_init(&s->loop, &s->timer) || uv_timer_init(&s->loop, &s->hv_timer) ||
	    uv_prepare_init(&s->loop, &s->arm) || uv_prepare_start(&s->arm, on_arm))
		return -EIO;
	s->stop_async.data = s->queue_async.data = s->timer.data = s->arm.data = s;
	s->hv_timer.data = s;
	s->q.awake = true; /* no other thread runs yet */
	return 0;
}

static int setup(struct host_stream *s, char why[HOST_STREAM_WHY])
{
	const struct host_opts *o = &s->o;
	char vwhy[160], twhy[WSC_WHY];

	s->tls = wsc_tls_new_ca(!o->insecure, o->ca_file, twhy);
	if (!s->tls) {
		snprintf(why, HOST_STREAM_WHY, "stream '%.30s': %.200s", s->name, twhy);
		return -EINVAL;
	}
	if (loop_init(s)) {
		snprintf(why, HOST_STREAM_WHY, "stream '%s': cannot set up its event loop",
		         s->name);
		return -EIO;
	}
	if (o->video && *o->video) {
		int ret;

		video_opts_of(s);
		ret = host_video_enc_new(&s->vo, host__on_chunk, s, &s->enc, vwhy);
		if (ret == -ENOSYS) {
			/* no video on this machine (no plugin, no encoder): the stream's data still
			 * goes; its video stays down and says why */
			host__set_error(s, vwhy);
			logt_err(s->name, "video unavailable, the stream runs without it: %s",
			         vwhy);
			atomic_store(&s->video_state, "down");
		} else if (ret) {
			snprintf(why, HOST_STREAM_WHY, "stream '%.30s': %.110s", s->name, vwhy);
			return -EINVAL;
		}
	}
	return 0;
}

static void init(struct host_stream *s)
{
	s->dev_fd = s->dev_wfd = -1;
	s->dev_deadline_ns = NEVER;
	s->dws.fd = -1;
	pthread_mutex_init(&s->q.lock, NULL);
	pthread_mutex_init(&s->err_lock, NULL);
	s->relay = (struct link){"relay link", false, false, 0, NEVER};
	s->device = (struct link){"device link", false, false, 0, NEVER};
	s->video = (struct link){"video source", false, false, 0, NEVER};
	s->relay_state = "down";
	s->device_state = "none";
	s->video_state = "none";
	s->renew_ns = NEVER;
	buf_init(&s->dev_out.buf, DEVICE_OUT_MAX);
}

/* A new stream with its own copy of @o, checked; NULL with *@ret and @why set otherwise (a
 * stream that failed its check is returned for host_stream_stop() to free). */
static struct host_stream *prepare(const struct host_opts *o, int *ret, char why[HOST_STREAM_WHY])
{
	struct host_stream *s = calloc(1, sizeof(*s));

	if (!s) {
		snprintf(why, HOST_STREAM_WHY, "out of memory");
		*ret = -ENOMEM;
		return NULL;
	}
	init(s);
	*ret = cfg_copy(&host_opts_table, &s->o, o, sizeof(s->o));
	if (*ret)
		snprintf(why, HOST_STREAM_WHY, "out of memory");
	else
		*ret = check(s, why);
	return s;
}

/* A thread of the stream, with the signals of the caller's loop blocked (they are inherited):
 * they go to that loop, and never interrupt a connection step or the encoder's sleep here. */
static int start_thread(pthread_t *t, void *(*fn)(void *), struct host_stream *s)
{
	sigset_t set, old;
	int ret;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	ret = pthread_create(t, NULL, fn, s) ? -EAGAIN : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

int host_stream_start(const struct host_opts *o, host_stream_relay_fn fn, void *arg,
                      uv_async_t *done, struct host_stream **out, char why[HOST_STREAM_WHY])
{
	int ret;
	struct host_stream *s = prepare(o, &ret, why);

	*out = NULL;
	if (!s)
		return ret;
	s->on_relay = fn;
	s->arg = arg;
	s->done = done;
	if (!ret)
		ret = setup(s, why);
	s->relay.backoff_ms = s->device.backoff_ms = s->video.backoff_ms = s->o.backoff_min;
	if (!ret && s->enc) {
		atomic_store(&s->video_state, "down");
		ret = start_thread(&s->enc_thread, host__encoder_main, s);
		s->enc_started = !ret;
	}
	if (!ret) {
		ret = start_thread(&s->thread, stream_main, s);
		s->thread_started = !ret;
	}
	if (ret) {
		if (ret == -EAGAIN)
			snprintf(why, HOST_STREAM_WHY, "stream '%s': cannot start its threads",
			         s->name);
		host_stream_stop(s);
		return ret;
	}
	if (s->dev.kind != HOST_DEV_NONE)
		atomic_store(&s->device_state, "down");
	*out = s;
	return 0;
}

int host_stream_check(const struct host_opts *o, char why[HOST_STREAM_WHY])
{
	int ret;
	struct host_stream *s = prepare(o, &ret, why);

	if (!s)
		return ret;
	if (!ret && o->video && *o->video) {
		struct host_video_enc *e = NULL;
		char vwhy[160];

		video_opts_of(s); /* as setup() would open them */
		if (host_video_enc_new(&s->vo, host__on_chunk, s, &e, vwhy)) {
			snprintf(why, HOST_STREAM_WHY, "stream '%.30s': %.110s", s->name, vwhy);
			ret = -EINVAL;
		}
		host_video_enc_free(e);
	}
	host_stream_stop(s);
	return ret;
}

void host_stream_request_stop(struct host_stream *s)
{
	atomic_store(&s->stop, true);
	if (s->thread_started)
		host__wake(s, &s->stop_async);
}

bool host_stream_finished(const struct host_stream *s)
{
	return !s->thread_started || atomic_load(&s->finished);
}

void host_stream_stop(struct host_stream *s)
{
	struct qmsg m;

	if (!s)
		return;
	host_stream_request_stop(s);
	if (s->thread_started)
		pthread_join(s->thread, NULL);
	if (s->enc_started) {
		pthread_join(s->enc_thread, NULL);
		host__report_encoding(s);
	}
	if (s->thread_started)
		logt_notice(
		        s->name, "stopping: %llu video frames sent, %llu dropped",
		        (unsigned long long)atomic_load(&s->frames_sent),
		        (unsigned long long)(atomic_load(&s->frames_dropped) + s->q.video_dropped));
	if (s->loop_ready) { /* set up, but its thread never ran it */
		close_all(s);
		loop_end(s);
	}
	host_video_src_free(s->src);
	host_video_enc_free(s->enc);
	host__close_device(s);
	while (host__queue_take(s, &m))
		free(m.data);
	pthread_mutex_destroy(&s->q.lock);
	pthread_mutex_destroy(&s->err_lock);
	if (s->tls)
		SSL_CTX_free(s->tls);
	wsframe_message_release(&s->from_device);
	host_outbuf_release(&s->dev_out);
	cfg_release(&host_opts_table, &s->o);
	free(s);
}

const char *host_stream_name(const struct host_stream *s)
{
	return s->name;
}

const char *host_stream_feed(const struct host_stream *s)
{
	return s->o.feed ? s->o.feed : "";
}

bool host_stream_failed(const struct host_stream *s)
{
	return atomic_load(&s->failed);
}

void host_stream_stats(struct host_stream *s, struct host_stream_stats *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", s->name);
	snprintf(out->feed, sizeof(out->feed), "%s", host_stream_feed(s));
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
