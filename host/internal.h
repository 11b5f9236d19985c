/*
 * host/internal.h: what the files of one stream share, not for cmd/ or host.c. A stream is
 * stream.c (its thread's uv loop, start and stop), link.c (the relay link: join, send,
 * receive, renew), device.c (the local device), encoder.c (the video thread) and msgq.c (the
 * queue from other threads to the stream's thread).
 *
 * Threads: the stream's thread runs the loop and owns everything not marked otherwise; the
 * encoder thread captures, encodes and muxes frames and hands each frame's bytes over through
 * the queue; the main thread pushes local feed messages through the same queue.
 */
#ifndef RELAY_HOST_INTERNAL_H
#define RELAY_HOST_INTERNAL_H

#include "host/devspec.h"
#include "host/handover.h"
#include "host/outbuf.h"
#include "host/stream.h"
#include "host/video.h"
#include "pkg/wsclient/uv.h"
#include "pkg/wsclient/wsclient.h"
#include "pkg/wsframe/wsframe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#define QUEUE_MAX       256
#define QUEUE_MAX_BYTES (8 << 20)
#define MESSAGE_MAX     (16 << 20)  /* a message from the relay or a websocket device */
#define NEVER           INT64_MAX   /* a deadline that never comes */
#define ENCODE_TIMES    4096        /* encode times kept for the median and p99 at stop */
#define RELAY_OUT_MAX   (32 << 20)  /* queued for the relay link: device reads pause well before */
#define RELAY_OUT_LOW   (1 << 20)   /* device reads pause above this, resume below */
#define VIDEO_OUT_MAX   (512 << 10) /* a video frame is dropped unless it fits under this */
#define DEVICE_OUT_MAX  (4 << 20)   /* queued for the device */
#define NS_PER_MS       1000000LL
#define NS_PER_S        1000000000LL

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
	bool awake; /* the stream's loop takes wake-ups (its async handles are open) */
};

struct host_stream;
struct rlink;

/* A poll handle on one fd of a stream (the relay socket, a device's fds), on the heap: libuv
 * closes a handle asynchronously, and a reconnection watches its new fd before the old handle's
 * close callback has run (which frees it). The stream's thread only. */
struct host_watch {
	uv_poll_t poll;
	struct host_stream *s;
	void (*fn)(struct host_stream *s, struct host_watch *w, int events); /* UV_READABLE... */
	int events; /* what is asked for now; 0: stopped */
};

/* A link's state and retry schedule (host/backoff.h). Relay and device links: the stream's
 * thread only; the video source: the encoder thread only. */
struct link {
	const char *what;
	bool up, reported_down;
	int64_t backoff_ms, retry_ns;
};

struct host_stream {
	struct host_opts o; /* own copy; read-only after start */
	char name[64], topic[128];
	host_stream_relay_fn on_relay;
	void *arg;
	uv_async_t *done; /* the caller's: sent from our threads */
	pthread_t thread;
	bool thread_started;
	/* the loop (stream.c): set up by host_stream_start(), then run by the stream's thread */
	uv_loop_t loop;
	bool loop_ready;
	uv_async_t stop_async, queue_async; /* sent from any thread while q.awake */
	uv_timer_t timer;                   /* the nearest deadline, set by arm before each wait */
	uv_prepare_t arm;
	SSL_CTX *tls;
	/* the relay link (link.c): stream thread only */
	struct rlink *link;      /* the current link: joining, or open (relay.up) */
	struct rlink *fresh;     /* renewal: the new link, joining or settling */
	struct rlink *old;       /* a link after our close frame, read until the relay's close */
	uv_timer_t hv_timer;     /* renewal's settling, then a closing link's deadline */
	bool stopping;           /* the stream ends once its links are closed */
	size_t out_queued;       /* what the link's queue held before the last wait */
	int64_t out_progress_ns; /* when it last shrank (or was empty): stalls */
	struct link relay, device;
	int64_t renew_ns;        /* open a second link with a fresh token then; NEVER otherwise */
	struct host_handover hv; /* renewal: the new link's copies of what the old one delivered */
	bool skip_to_key;        /* video: drop frames until the next keyframe */
	/* the device (device.c): stream thread only */
	struct host_devspec dev;
	int dev_fd, dev_wfd; /* dev_wfd: where data for the device goes (the child's stdin) */
	pid_t child;
	struct wsc dws;                            /* HOST_DEV_WS */
	struct host_outbuf dev_out;                /* bytes (or frames) for the device */
	struct host_watch *dev_watch, *dev_wwatch; /* dev_fd, and dev_wfd if it differs */
	bool dev_paused; /* not read while the relay link's buffer is full */
	/* connecting it (device.c), one step at a time on the loop, all within one deadline */
	struct dial *dev_dial;   /* tcp:/udp: its connect under way (pkg/dial), or NULL */
	struct wsc_uv *dev_ws;   /* HOST_DEV_WS: its handshake under way, or NULL */
	int64_t dev_deadline_ns; /* connecting gives up then; NEVER when not connecting */
	struct ws_message from_device;
	/* private channels (channel.c): a connect stream's relay link is the control connection */
	struct host_devspec target; /* the only address a channel ever dials */
	struct host_chan *chans;    /* open or opening channels */
	size_t n_chans;
	/* video (encoder.c) */
	pthread_t enc_thread;
	bool enc_started;
	atomic_bool stop;
	struct link video;          /* encoder thread only */
	struct host_video_opts vo;  /* read-only after start */
	struct host_video_enc *enc; /* encoder thread only, after start */
	struct host_video_src *src; /* encoder thread only */
	int64_t encode_us[ENCODE_TIMES];
	size_t n_encoded; /* encode_us and n_encoded: encoder thread, read after join */
	struct msgq q;
	/* for the API: counters written by the stream's threads, read by any */
	_Atomic uint64_t msgs_out, bytes_out, msgs_in, bytes_in, frames_sent, frames_dropped,
	        renewals, failed_attempts;
	atomic_bool failed, finished; /* finished: the stream's thread has ended */
	_Atomic(const char *) relay_state, device_state, video_state;
	pthread_mutex_t err_lock;
	char last_error[256]; /* guarded by err_lock */
};

/* stream.c (any of the stream's threads) */
void host__set_error(struct host_stream *s, const char *why);
void host__link_down(struct host_stream *s, struct link *l, const char *why);
void host__link_up(struct host_stream *s, struct link *l);
/* Watch @fd on the stream's loop for nothing yet (host__watch_set()); calls @fn with what it is
 * ready for. NULL when libuv refuses it (an fd it cannot poll) or out of memory. */
struct host_watch *host__watch_new(struct host_stream *s, int fd,
                                   void (*fn)(struct host_stream *s, struct host_watch *w,
                                              int events));
/* Ask for @events (UV_READABLE | UV_WRITABLE, or 0 to stop) on @w. */
void host__watch_set(struct host_watch *w, int events);
/* Stop watching (the fd may be closed right after) and free @w later. NULL is fine. */
void host__watch_free(struct host_watch *w);
/* The links are closed: close the device and every handle of the loop, which then ends. */
void host__stream_closed(struct host_stream *s);
/* Wake the stream's loop with @h (stop_async or queue_async), unless it has ended; any thread. */
void host__wake(struct host_stream *s, uv_async_t *h);

/* msgq.c (any thread, but take: the stream's thread) */
void host__queue_put(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n, bool video,
                     bool key);
bool host__queue_take(struct host_stream *s, struct qmsg *out);
void host__feed_dropped(struct host_stream *s);

/* encoder.c */
void host__on_chunk(void *arg, const uint8_t *p, size_t n, bool key); /* encoder thread */
void *host__encoder_main(void *arg);
void host__report_encoding(struct host_stream *s); /* after the encoder thread ended */

/* link.c (the stream's thread) */
void host__relay_connect(struct host_stream *s); /* start joining; the outcome comes later */
/* Queue a message for the relay: 0, -ENOBUFS when it does not fit (the caller counts the
 * loss), -ENOTCONN when the link is down. */
int host__send_relay(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n);
/* Bytes queued for the relay and not yet written. */
size_t host__relay_queued(const struct host_stream *s);
/* Before each wait: note the output's progress, resume a device paused for back-pressure, and
 * return when the relay will have stalled (NEVER when nothing waits). */
int64_t host__relay_prepare(struct host_stream *s, int64_t now_ns);
void host__relay_check_stall(struct host_stream *s, int64_t now_ns);
void host__drain_queue(struct host_stream *s);
void host__renew(struct host_stream *s);
/* The end of the stream: close the links (1000), then call host__stream_closed(). */
void host__relay_stop(struct host_stream *s);
/* The control frames of a websocket device: a ping's pong is queued in @out, a close is
 * reported with its reason in @why. true for a data frame. */
bool host__data_frame(struct host_outbuf *out, const struct ws_frame *f, const uint8_t *p,
                      const char *who, char *why, size_t len);

/* channel.c (the stream's thread) */
bool host__is_connect(const struct host_stream *s);
/* A message on the control connection: {"type":"connect","uri":...,"client":...}. */
void host__channel_message(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n);
/* Close every channel (1001): the stream is stopping. */
void host__channels_close(struct host_stream *s);

/* device.c (the stream's thread) */
/* Start connecting the device; the outcome (link up or down) comes later from the loop. */
void host__device_connect(struct host_stream *s);
/* Give up connecting once its deadline has passed. */
void host__device_check_connect(struct host_stream *s, int64_t now_ns);
void host__device_readable(struct host_stream *s);
void host__close_device(struct host_stream *s);
void host__to_device(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n);
void host__device_writable(struct host_stream *s);
void host__device_watch(struct host_stream *s);
void host__device_check_stall(struct host_stream *s, int64_t now_ns);
void host__pause_device_if_full(struct host_stream *s);

#endif
