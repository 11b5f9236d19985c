/*
 * host/link: a stream's relay link: join (access POST and upgrade), send, receive, reconnect,
 * and renewal, all asynchronous on the stream's loop through pkg/wsclient/uv.h. The stream's
 * thread only.
 *
 * A link (struct rlink) has one of three places in the stream:
 *   s->link   the current link: joining, then open (s->relay.up)
 *   s->fresh  renewal: the new link, joining, then open and holding what it receives
 *   s->old    a link after our close frame: read until the relay's close, at most a second
 *
 * Renewal of a minted token is make-before-break: a second link is opened with a fresh token;
 * once it is open, both links are read for HANDOVER_SETTLE_NS (see on_settled), then the first
 * gets a close frame after what it has queued and is read until the relay's close, so nothing
 * read from the device or encoded meanwhile is lost. Meanwhile nothing new is sent, and the new
 * link holds what it receives; then it delivers that, skipping its copies of what the old one
 * delivered (host/handover). If the new link cannot be opened, the old one stays and renewal is
 * tried again at the backoff.
 */
#define LOG_MODULE "link"
#include "host/internal.h"
#include "pkg/clock/clock.h"
#include "pkg/config/config.h"
#include "pkg/jwt/jwt.h"
#include "pkg/log/log.h"
#include "pkg/wsclient/uv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A close frame's payload: status 1000, normal closure (RFC 6455 section 7.4.1), big-endian. */
static const uint8_t close_normal[2] = {1000 >> 8, 1000 & 0xff};

#define CLOSE_DRAIN_MS     1000           /* for a close: writing what is queued, then reading */
#define HANDOVER_SETTLE_MS 2              /* see on_settled() */
#define HANDOVER_WINDOW_NS (2 * NS_PER_S) /* the new link repeats the old one's tail within it */
#define HELD_MAX_BYTES     (8 << 20)      /* what a new link may hold during a handover */

/* A frame a renewed link received while the old one was being closed. */
struct held {
	struct held *next;
	struct ws_frame f;
	uint8_t p[];
};

struct rlink {
	struct host_stream *s;
	struct wsc_uv *c;
	bool open;
	struct ws_message msg; /* a message being reassembled */
	bool holding;          /* renewal: frames wait in held until the old link is closed */
	struct held *held, **held_tail;
	size_t held_bytes, held_msgs; /* held_msgs: complete data messages */
};

static void on_open(struct wsc_uv *c, void *arg);
static bool on_frame(struct wsc_uv *c, const struct ws_frame *f, const uint8_t *p, void *arg);
static void on_close(struct wsc_uv *c, int err, int status, const char *why, void *arg);

static const struct wsc_uv_cbs link_cbs = {on_open, on_frame, on_close};

/* ---- links ---- */

static void drop_held(struct rlink *rl)
{
	while (rl->held) {
		struct held *h = rl->held;

		rl->held = h->next;
		free(h);
	}
	rl->held_tail = &rl->held;
	rl->held_bytes = rl->held_msgs = 0;
}

/* Forget @rl; its connection is closed (what it queued still goes out) unless it has ended. */
static void rlink_free(struct rlink *rl)
{
	if (!rl)
		return;
	if (rl->c)
		wsc_uv_close(rl->c);
	drop_held(rl);
	wsframe_message_release(&rl->msg);
	free(rl);
}

/* A new link joining the stream's access URL with a fresh token (minted: one per connection).
 * NULL with @why when it cannot even start. */
static struct rlink *rlink_join(struct host_stream *s, char why[WSC_WHY])
{
	char *scopes[] = {(char *)"read", (char *)"write"}, *host_scope[] = {(char *)"host"};
	char *token = NULL;
	bool connect = host__is_connect(s); /* a control connection: scope host */
	struct rlink *rl;

	if (rjwt_client_token(&(struct rjwt_source){s->o.token, s->o.token_file, s->o.secret_file,
	                                            s->o.audience, connect ? host_scope : scopes,
	                                            connect ? 1 : 2, s->o.token_lifetime / 1000,
	                                            "relay-host"},
	                      s->o.session, &token, why))
		return NULL; /* an unreadable token file may be being replaced: try again later */
	rl = calloc(1, sizeof(*rl));
	if (!rl) {
		snprintf(why, WSC_WHY, "out of memory");
	} else {
		rl->s = s;
		rl->held_tail = &rl->held;
		char url[4096];

		/* a control connection says its role: a client token is then refused as such */
		snprintf(url, sizeof(url), "%s%s", s->o.session,
		         !connect                    ? ""
		         : strchr(s->o.session, '?') ? "&role=host"
		                                     : "?role=host");
		rl->c = wsc_uv_join(&s->loop, url, token, s->tls, (int)s->o.timeout, MESSAGE_MAX,
		                    RELAY_OUT_MAX, &link_cbs, rl, why);
		if (!rl->c) {
			free(rl);
			rl = NULL;
		}
	}
	cfg_free_secret(token);
	return rl;
}

size_t host__relay_queued(const struct host_stream *s)
{
	return s->link && s->link->open ? wsc_uv_queued(s->link->c) : 0;
}

/* Resume reading a device paused for back-pressure once the link's queue has drained. */
static void resume_device(struct host_stream *s)
{
	if (s->dev_paused && !s->old && host__relay_queued(s) <= RELAY_OUT_LOW) {
		s->dev_paused = false;
		host__device_watch(s);
	}
}

int64_t host__relay_prepare(struct host_stream *s, int64_t now_ns)
{
	size_t queued = host__relay_queued(s);

	/* libuv does not tell how much of the queue left: a queue that shrank (or is empty)
	 * made progress */
	if (!queued || queued < s->out_queued)
		s->out_progress_ns = now_ns;
	s->out_queued = queued;
	resume_device(s);
	return queued ? s->out_progress_ns + s->o.timeout * NS_PER_MS : NEVER;
}

/* Forget a renewal's new link (joining, or open and settling: the handover timer is its). */
static void abandon_renewal(struct host_stream *s)
{
	if (!s->fresh)
		return;
	rlink_free(s->fresh);
	s->fresh = NULL;
	uv_timer_stop(&s->hv_timer);
	if (s->hv.state == HOST_HANDOVER_RECORDING)
		s->hv.state = HOST_HANDOVER_IDLE;
}

/* The current link is gone: the stream reconnects at the backoff. */
static void link_lost(struct host_stream *s, const char *why)
{
	rlink_free(s->link);
	s->link = NULL;
	s->out_queued = 0;
	if (!s->relay.up) {
		host__link_down(s, &s->relay, why); /* a join that failed */
		return;
	}
	atomic_store(&s->relay_state, "down");
	host__link_down(s, &s->relay, why);
	abandon_renewal(s); /* the reconnection mints a fresh token anyway */
	resume_device(s);   /* its data is dropped until the link is back, as before */
}

/* The relay took nothing for --timeout while output waited. */
void host__relay_check_stall(struct host_stream *s, int64_t now_ns)
{
	if (s->relay.up && host__relay_queued(s) &&
	    now_ns - s->out_progress_ns >= s->o.timeout * NS_PER_MS)
		link_lost(s, "the relay stopped reading (write timed out)");
}

/* Give up for good: the relay refused this stream's token. */
static void refused(struct host_stream *s, const char *why)
{
	rlink_free(s->link);
	s->link = NULL;
	host__set_error(s, why);
	atomic_store(&s->relay_state, "refused");
	logt_err(s->name, "%s; giving up on this stream", why);
	atomic_store(&s->failed, true);
	if (s->done)
		uv_async_send(s->done);
}

static bool token_is_minted(const struct host_stream *s)
{
	return !(s->o.token && *s->o.token) && !(s->o.token_file && *s->o.token_file) &&
	       !host__is_connect(s); /* one control connection per host: no second link */
}

static void schedule_renewal(struct host_stream *s)
{
	/* renew before the relay closes at exp: a tenth of the lifetime early, at most 60 s; minted
	 * tokens start a second early (iat = now - 1), so they end a second early too */
	int64_t margin = s->o.token_lifetime / 10 < 60000 ? s->o.token_lifetime / 10 : 60000;

	s->renew_ns = token_is_minted(s)
	                      ? clock_mono_ns() + (s->o.token_lifetime - 1000 - margin) * NS_PER_MS
	                      : NEVER;
}

void host__relay_connect(struct host_stream *s)
{
	char why[WSC_WHY];

	s->relay.retry_ns = NEVER; /* the join's outcome sets the next attempt */
	s->link = rlink_join(s, why);
	if (!s->link)
		host__link_down(s, &s->relay, why);
}

/* ---- sending ---- */

int host__send_relay(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n)
{
	int ret;

	if (!s->relay.up || !s->link || !s->link->open)
		return -ENOTCONN;
	ret = wsc_uv_send(s->link->c, opcode, p, n);
	if (ret == -ENOTCONN)
		return ret;
	if (ret)
		return -ENOBUFS; /* not reading, or out of memory: this message is lost */
	atomic_fetch_add(&s->msgs_out, 1);
	atomic_fetch_add(&s->bytes_out, n);
	return 0;
}

/* Video: a frame is queued only if it fits under VIDEO_OUT_MAX (a bound on latency as much as
 * on memory); otherwise it is dropped, and so is every frame up to the next keyframe. */
static void send_video(struct host_stream *s, const uint8_t *p, size_t n, bool key)
{
	if (!s->relay.up)
		return;
	if (s->skip_to_key && !key) {
		atomic_fetch_add(&s->frames_dropped, 1);
		return;
	}
	if (host__relay_queued(s) + n + WSFRAME_MAX_HEADER > VIDEO_OUT_MAX ||
	    host__send_relay(s, WS_BINARY, p, n)) {
		s->skip_to_key = true;
		atomic_fetch_add(&s->frames_dropped, 1);
		return;
	}
	s->skip_to_key = false;
	atomic_fetch_add(&s->frames_sent, 1);
}

void host__drain_queue(struct host_stream *s)
{
	struct qmsg m;

	if (s->old)
		return; /* a handover: what is queued goes on the new link once the old is closed */
	while (host__queue_take(s, &m)) {
		if (m.video)
			send_video(s, m.data, m.len, m.key);
		else if (host__send_relay(s, m.opcode, m.data, m.len))
			host__feed_dropped(s); /* a live feed does not wait for the link */
		free(m.data);
	}
}

/* ---- receiving ---- */

/*
 * The control frames of a websocket we are the client of (a websocket device): a ping is
 * answered, a close is reported with its reason in @why. Returns true for a data frame.
 */
bool host__data_frame(struct host_outbuf *out, const struct ws_frame *f, const uint8_t *p,
                      const char *who, char *why, size_t len)
{
	size_t n = (size_t)f->payload_len;

	why[0] = '\0';
	if (f->opcode == WS_PING) /* queued: the reader writes after its pass (a lost pong is
	                           * the peer's ping timeout, not ours) */
		host_outbuf_put_frame(out, WS_PONG, p, n, clock_mono_ns());
	else if (f->opcode == WS_CLOSE)
		snprintf(why, len, "closed by %s: %d %.*s", who, n >= 2 ? p[0] << 8 | p[1] : 1005,
		         n > 2 ? (int)(n - 2) : 0, (const char *)p + 2);
	return f->opcode != WS_PING && f->opcode != WS_CLOSE && f->opcode != WS_PONG;
}

/* A whole message from the relay: to the device and the feed's local websockets. */
static void deliver(struct host_stream *s, const struct ws_message *a)
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
	if (host__is_connect(s)) {
		host__channel_message(s, a->opcode, a->p, a->len);
		return;
	}
	host__to_device(s, a->opcode, a->p, a->len);
	if (s->on_relay && s->o.feed && *s->o.feed)
		s->on_relay(s->arg, s->o.feed, a->opcode, a->p, a->len);
}

static void old_closed(struct host_stream *s);

/* A frame of @rl (the current or the old link): false when @rl is gone. */
static bool link_frame(struct rlink *rl, const struct ws_frame *f, const uint8_t *p)
{
	struct host_stream *s = rl->s;
	size_t n = (size_t)f->payload_len;
	char why[HOST_STREAM_WHY];
	int r;

	if (f->opcode == WS_PING)
		wsc_uv_send(rl->c, WS_PONG, p, n); /* a lost pong is the relay's ping timeout */
	if (f->opcode == WS_PING || f->opcode == WS_PONG)
		return true;
	if (f->opcode == WS_CLOSE) {
		if (rl == s->old) {
			old_closed(s); /* the relay's answer: everything before it was read */
			return false;
		}
		snprintf(why, sizeof(why), "closed by the relay: %d %.*s",
		         n >= 2 ? p[0] << 8 | p[1] : 1005, n > 2 ? (int)(n - 2) : 0,
		         (const char *)p + 2);
		link_lost(s, why);
		return false;
	}
	r = wsframe_message_add(&rl->msg, f, p, MESSAGE_MAX);
	if (r == 1)
		deliver(s, &rl->msg);
	if (r >= 0)
		return true;
	if (rl == s->old) {
		old_closed(s);
		return false;
	}
	link_lost(s, r == -EMSGSIZE ? "a message from the relay is too large"
	                            : "malformed message from the relay");
	return false;
}

/* Keep a frame of a renewed link until the old link is closed; false when it cannot be kept. */
static bool hold(struct rlink *rl, const struct ws_frame *f, const uint8_t *p)
{
	size_t n = (size_t)f->payload_len;
	struct held *h;

	if (rl->held_bytes + n > HELD_MAX_BYTES || !(h = malloc(sizeof(*h) + n)))
		return false;
	h->next = NULL;
	h->f = *f;
	memcpy(h->p, p, n);
	*rl->held_tail = h;
	rl->held_tail = &h->next;
	rl->held_bytes += n;
	if (f->fin && !(f->opcode & 0x8))
		rl->held_msgs++;
	return true;
}

/* The renewal failed: keep the current link and try again at the backoff. */
static void renewal_failed(struct host_stream *s, const char *why)
{
	abandon_renewal(s);
	logt_warn(s->name, "cannot renew the token yet (%s); keeping the current link", why);
	s->renew_ns = clock_mono_ns() + s->relay.backoff_ms * NS_PER_MS;
}

static bool on_frame(struct wsc_uv *c, const struct ws_frame *f, const uint8_t *p, void *arg)
{
	struct rlink *rl = arg;

	(void)c;
	if (!rl->holding)
		return link_frame(rl, f, p);
	if (hold(rl, f, p))
		return true;
	if (rl == rl->s->fresh)
		renewal_failed(rl->s, "too much arrived during the handover");
	else
		link_lost(rl->s, "too much arrived during the handover");
	return false;
}

/* ---- renewal ---- */

static void stop_step(struct host_stream *s);

/* The old link is closed: the new one delivers what it held, skipping its copies of what the
 * old one delivered, and sending resumes. */
static void finish_handover(struct host_stream *s)
{
	struct rlink *rl = s->link;

	if (!rl || !rl->holding) { /* the new link was lost meanwhile */
		if (s->hv.state == HOST_HANDOVER_RECORDING)
			s->hv.state = HOST_HANDOVER_IDLE;
		return;
	}
	host_handover_match_start(&s->hv, clock_mono_ns() + HANDOVER_WINDOW_NS);
	rl->holding = false;
	atomic_fetch_add(&s->renewals, 1);
	logt_notice(s->name, "%s", "token renewed on a new link without a gap");
	schedule_renewal(s);
	while (s->link == rl && rl->held) {
		struct held *h = rl->held;

		rl->held = h->next;
		link_frame(rl, &h->f, h->p); /* may lose the link (then rl is freed) */
		free(h);
	}
	if (s->link == rl)
		drop_held(rl);
	resume_device(s);
	host__drain_queue(s);
}

/* The old link answered our close, failed, or ran out of time. */
static void old_closed(struct host_stream *s)
{
	uv_timer_stop(&s->hv_timer);
	rlink_free(s->old);
	s->old = NULL;
	if (s->stopping)
		stop_step(s);
	else
		finish_handover(s);
}

static void on_close_deadline(uv_timer_t *t)
{
	old_closed(t->data); /* the relay did not answer the close in time */
}

/* Close the current link (1000) after what it has queued and read it until the relay's close
 * (old_closed()), at most CLOSE_DRAIN_MS. false when it cannot take the close frame: then it
 * is closed at once. */
static bool close_current(struct host_stream *s)
{
	struct rlink *rl = s->link;

	s->link = NULL;
	if (wsc_uv_send(rl->c, WS_CLOSE, close_normal, 2)) {
		rlink_free(rl);
		return false;
	}
	s->old = rl;
	uv_timer_start(&s->hv_timer, on_close_deadline, CLOSE_DRAIN_MS, 0);
	return true;
}

/*
 * The new link has been open for HANDOVER_SETTLE_MS, both links read meanwhile (the old one
 * delivering and recording as usual, the new one holding). The relay writes at the end of its
 * loop pass, so a message published in the pass that added the new link reaches the old link
 * just after the upgrade answer, yet only the old link; every message published later reaches
 * both. So the old link's surplus over the new one's count is the number of such early
 * messages, forgotten from the record (they come first). Then the old link is closed, with
 * nothing new sent meanwhile (the device paused, the queue left alone): what it had queued
 * reaches the relay before anything sent on the new link.
 */
static void on_settled(uv_timer_t *t)
{
	struct host_stream *s = t->data;
	struct rlink *fresh = s->fresh;

	if (s->hv.n > fresh->held_msgs)
		host_handover_forget_first(&s->hv, s->hv.n - fresh->held_msgs);
	s->fresh = NULL;
	if (!close_current(s)) {
		s->link = fresh; /* the old link is gone already: nothing to wait for */
		finish_handover(s);
		return;
	}
	s->link = fresh;
	s->out_queued = 0;
	if (s->dev_fd >= 0 && !s->dev_paused) {
		s->dev_paused = true;
		host__device_watch(s);
	}
}

/*
 * Make before break: open a second link with a fresh token (on_open() goes on); the current
 * link keeps working meanwhile.
 */
void host__renew(struct host_stream *s)
{
	char why[WSC_WHY];

	s->renew_ns = NEVER; /* the renewal's outcome sets the next one */
	if (s->fresh || s->old)
		return;
	s->fresh = rlink_join(s, why);
	if (!s->fresh)
		renewal_failed(s, why);
}

/* ---- a link's end ---- */

static void on_open(struct wsc_uv *c, void *arg)
{
	struct rlink *rl = arg;
	struct host_stream *s = rl->s;

	(void)c;
	rl->open = true;
	if (rl == s->fresh) {
		/* from here on the relay sends to both links: see on_settled() */
		host_handover_record_start(&s->hv);
		rl->holding = true;
		uv_timer_start(&s->hv_timer, on_settled, HANDOVER_SETTLE_MS, 0);
		return;
	}
	s->out_queued = 0;
	s->skip_to_key = true; /* a new viewer needs a keyframe first */
	atomic_store(&s->relay_state, "up");
	host__link_up(s, &s->relay);
	schedule_renewal(s);
	host__drain_queue(s);
}

static void on_close(struct wsc_uv *c, int err, int status, const char *why, void *arg)
{
	struct rlink *rl = arg;
	struct host_stream *s = rl->s;

	(void)c;
	rl->c = NULL; /* the library frees it */
	if (rl == s->old) {
		old_closed(s);
	} else if (rl == s->fresh) {
		renewal_failed(s, why);
	} else if (!rl->open && err == -EACCES && status >= 400 && status < 500 && status != 429 &&
	           !(status == 409 && host__is_connect(s))) {
		/* final; but a control connection's 409 is retried: the relay may still hold
		 * our previous one */
		refused(s, why);
	} else {
		link_lost(s, err == -ECONNRESET && rl->open ? "connection closed" : why);
	}
}

/* The stream is ending: close the links one after the other, then tell stream.c. */
static void stop_step(struct host_stream *s)
{
	if (s->old)
		return; /* old_closed() comes back here */
	abandon_renewal(s);
	s->relay.up = false; /* nothing more is sent */
	if (s->link && s->link->open && close_current(s))
		return;
	rlink_free(s->link); /* a join under way */
	s->link = NULL;
	host__stream_closed(s);
}

void host__relay_stop(struct host_stream *s)
{
	s->stopping = true;
	stop_step(s);
}
