/*
 * host/link: a stream's relay link: join (access POST and upgrade), send, receive, reconnect,
 * and renewal. The stream's thread only.
 *
 * Renewal of a minted token is make-before-break: a second link is opened with a fresh token,
 * then the first is drained and closed, so nothing read from the device or encoded meanwhile is
 * lost; the new link skips its copies of what the old one delivered (host/handover).
 */
#define LOG_MODULE "link"
#include "host/internal.h"
#include "pkg/clock/clock.h"
#include "pkg/config/config.h"
#include "pkg/jwt/jwt.h"
#include "pkg/log/log.h"
#include "pkg/url/url.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

/* A close frame's payload: status 1000, normal closure (RFC 6455 section 7.4.1), big-endian. */
static const uint8_t close_normal[2] = {1000 >> 8, 1000 & 0xff};

#define CLOSE_DRAIN_NS     NS_PER_S        /* for a close: writing what is queued, then reading */
#define HANDOVER_SETTLE_NS (2 * NS_PER_MS) /* see settle() */
#define HANDOVER_WINDOW_NS (2 * NS_PER_S)  /* the new link repeats the old one's tail within it */

/* Watch the relay socket for input, and for room while output waits. */
static void relay_watch(struct host_stream *s)
{
	host__watch_set(s->ws_watch,
	                UV_READABLE | (host_outbuf_pending(&s->out) ? UV_WRITABLE : 0));
}

/* Resume reading a device paused for back-pressure once the link's buffer has drained. */
static void resume_device(struct host_stream *s)
{
	if (s->dev_paused && host_outbuf_pending(&s->out) <= RELAY_OUT_LOW) {
		s->dev_paused = false;
		host__device_watch(s);
	}
}

void host__relay_writable(struct host_stream *s)
{
	int ret;

	if (!s->relay.up)
		return;
	ret = host_outbuf_flush(&s->out, &s->ws, -1, clock_mono_ns());
	if (ret) {
		host__relay_disconnect(s, ret == -EPIPE ? "connection closed" : strerror(-ret));
		return;
	}
	relay_watch(s);
	resume_device(s);
}

/* The relay took nothing for --timeout while output waited. */
void host__relay_check_stall(struct host_stream *s, int64_t now_ns)
{
	if (s->relay.up && host_outbuf_pending(&s->out) &&
	    now_ns - s->out.progress_ns >= s->o.timeout * NS_PER_MS)
		host__relay_disconnect(s, "the relay stopped reading (write timed out)");
}

int host__send_relay(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n)
{
	int ret;

	if (!s->relay.up)
		return -ENOTCONN;
	ret = host_outbuf_put_frame(&s->out, opcode, p, n, clock_mono_ns());
	if (ret)
		return ret == -ENOBUFS ? ret : -ENOBUFS; /* out of memory: this message is lost */
	atomic_fetch_add(&s->msgs_out, 1);
	atomic_fetch_add(&s->bytes_out, n);
	host__relay_writable(s);
	return s->relay.up ? 0 : -ENOTCONN;
}

/* Write what is queued for the relay, waiting for room until @end_ns: only at a close. */
static void flush_by(struct host_stream *s, int64_t end_ns)
{
	while (host_outbuf_pending(&s->out)) {
		struct pollfd pfd = {.fd = s->ws.fd, .events = POLLOUT};
		int64_t left = (end_ns - clock_mono_ns()) / NS_PER_MS;

		if (left <= 0 || poll(&pfd, 1, (int)left) != 1 ||
		    host_outbuf_flush(&s->out, &s->ws, -1, clock_mono_ns()))
			break;
	}
}

static void unwatch_relay(struct host_stream *s)
{
	host__watch_free(s->ws_watch);
	s->ws_watch = NULL;
}

void host__relay_disconnect(struct host_stream *s, const char *why)
{
	if (!s->relay.up)
		return;
	unwatch_relay(s);
	wsc_close(&s->ws);
	host_outbuf_clear(&s->out);
	s->from_relay.open = false;
	atomic_store(&s->relay_state, "down");
	host__link_down(s, &s->relay, why);
	resume_device(s); /* its data is dropped until the link is back, as before */
}

/* Give up for good: the relay refused this stream's token. */
static void refused(struct host_stream *s, const char *why)
{
	host__set_error(s, why);
	atomic_store(&s->relay_state, "refused");
	logt_err(s->name, "%s; giving up on this stream", why);
	atomic_store(&s->failed, true);
	if (s->done)
		uv_async_send(s->done);
}

static bool token_is_minted(const struct host_stream *s)
{
	return !(s->o.token && *s->o.token) && !(s->o.token_file && *s->o.token_file);
}

/* Access and redeem on a new connection @c. 0, or -errno with *refusal set for a 4xx. */
static int join(struct host_stream *s, struct wsc *c, bool *refusal, char why[WSC_WHY])
{
	char *scopes[] = {(char *)"read", (char *)"write"}, *token = NULL;
	int status = 0, ret;

	*refusal = false;
	/* minted: a fresh token at every connection */
	ret = rjwt_client_token(&(struct rjwt_source){s->o.token, s->o.token_file, s->o.secret_file,
	                                              s->o.audience, scopes, 2,
	                                              s->o.token_lifetime / 1000, "relay-host"},
	                        s->o.session, &token, why);
	if (ret)
		return ret; /* an unreadable token file may be being replaced: try again later */
	ret = wsc_join(c, s->o.session, token, s->tls, (int)s->o.timeout, &status, why);
	cfg_free_secret(token);
	*refusal = ret && status >= 400 && status < 500 && status != 429;
	return ret;
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

/* The relay socket is ready for @events (its watch is @w). */
static void on_relay_io(struct host_stream *s, struct host_watch *w, int events)
{
	if (events & UV_WRITABLE)
		host__relay_writable(s);
	if ((events & (UV_READABLE | UV_DISCONNECT)) && s->relay.up && s->ws_watch == w)
		host__relay_readable(s);
}

/* Watch the link's (new) socket for input; false when libuv cannot (the link is closed). */
static bool watch_relay(struct host_stream *s)
{
	s->ws_watch = host__watch_new(s, s->ws.fd, on_relay_io);
	host__watch_set(s->ws_watch, UV_READABLE);
	return s->ws_watch;
}

void host__relay_connect(struct host_stream *s)
{
	char why[WSC_WHY];
	bool refusal;

	s->relay.retry_ns = NEVER;
	if (join(s, &s->ws, &refusal, why)) {
		if (refusal)
			refused(s, why);
		else
			host__link_down(s, &s->relay, why);
		return;
	}
	if (!watch_relay(s)) {
		wsc_close(&s->ws);
		host__link_down(s, &s->relay, "cannot watch the relay socket");
		return;
	}
	host_outbuf_clear(&s->out);
	s->skip_to_key = true; /* a new viewer needs a keyframe first */
	atomic_store(&s->relay_state, "up");
	host__link_up(s, &s->relay);
	schedule_renewal(s);
	if (wsc_buffered(&s->ws))
		host__relay_readable(s); /* frames that came with the handshake's answer */
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
	if (host_outbuf_pending(&s->out) + n + WSFRAME_MAX_HEADER > VIDEO_OUT_MAX ||
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

	while (host__queue_take(s, &m)) {
		if (m.video)
			send_video(s, m.data, m.len, m.key);
		else if (host__send_relay(s, m.opcode, m.data, m.len))
			host__feed_dropped(s); /* a live feed does not wait for the link */
		free(m.data);
	}
}

/*
 * The control frames of a websocket we are the client of (the relay, a websocket device): a
 * ping is answered, a close is reported with its reason in @why. Returns true for a data frame.
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
	host__to_device(s, a->opcode, a->p, a->len);
	if (s->on_relay && s->o.feed && *s->o.feed)
		s->on_relay(s->arg, s->o.feed, a->opcode, a->p, a->len);
}

static bool relay_frame(void *arg, const struct ws_frame *f, const uint8_t *p)
{
	struct host_stream *s = arg;
	char why[HOST_STREAM_WHY];

	if (!host__data_frame(&s->out, f, p, "the relay", why, sizeof(why))) {
		if (why[0])
			host__relay_disconnect(s, why);
	} else {
		int r = wsframe_message_add(&s->from_relay, f, p, MESSAGE_MAX);

		if (r == 1)
			deliver(s, &s->from_relay);
		else if (r < 0)
			host__relay_disconnect(s, r == -EMSGSIZE
			                                  ? "a message from the relay is too large"
			                                  : "malformed message from the relay");
	}
	return s->relay.up;
}

void host__relay_readable(struct host_stream *s)
{
	int r = wsc_read_frames(&s->ws, MESSAGE_MAX, relay_frame, s);

	if (r < 0 && s->relay.up)
		host__relay_disconnect(s, r == -ECONNRESET ? "connection closed"
		                          : r == -EPROTO   ? "malformed frame from the relay"
		                                           : strerror(-r));
	else if (s->relay.up && host_outbuf_pending(&s->out))
		host__relay_writable(s); /* pongs */
}

/* The old link after its close frame: deliver what the relay still sends until its close. */
static bool drain_frame(void *arg, const struct ws_frame *f, const uint8_t *p)
{
	struct host_stream *s = arg;
	char why[HOST_STREAM_WHY];

	if (!host__data_frame(&s->out, f, p, "the relay", why, sizeof(why)))
		return !why[0]; /* stop at the relay's close */
	if (wsframe_message_add(&s->from_relay, f, p, MESSAGE_MAX) == 1)
		deliver(s, &s->from_relay);
	return true;
}

/* Close the old link (1000) and read it until the relay's close, at most a second. */
static void close_old_link(struct host_stream *s)
{
	int64_t end = clock_mono_ns() + CLOSE_DRAIN_NS;

	unwatch_relay(s);
	/* what is queued goes first, then the close frame */
	if (!host_outbuf_put_frame(&s->out, WS_CLOSE, close_normal, 2, clock_mono_ns()))
		flush_by(s, end);
	if (!host_outbuf_pending(&s->out)) {
		for (int64_t left; (left = (end - clock_mono_ns()) / NS_PER_MS) > 0;) {
			struct pollfd pfd = {.fd = s->ws.fd, .events = POLLIN};

			if (poll(&pfd, 1, (int)left) != 1 ||
			    wsc_read_frames(&s->ws, MESSAGE_MAX, drain_frame, s) != 0)
				break;
		}
	}
	wsc_close(&s->ws);
	host_outbuf_clear(&s->out);
}

/* The websocket uri of an access answer; a refusal's reason in @why. */
static int access_uri(struct host_stream *s, char *uri, size_t len, char why[WSC_WHY])
{
	char *scopes[] = {(char *)"read", (char *)"write"}, *token = NULL, body[4096];
	const char *u;
	json_t *o;
	int status, ret;

	ret = rjwt_client_token(&(struct rjwt_source){s->o.token, s->o.token_file, s->o.secret_file,
	                                              s->o.audience, scopes, 2,
	                                              s->o.token_lifetime / 1000, "relay-host"},
	                        s->o.session, &token, why);
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
	uint8_t *end = c->in.len >= 4 ? memmem(c->in.p, c->in.len, "\r\n\r\n", 4) : NULL;
	char want[WSC_ACCEPT_LEN], head[4096], *h;
	size_t n;
	int status = 0;

	if (!end) {
		snprintf(why, WSC_WHY, "no handshake answer in %zu bytes", sizeof(head));
		return c->in.len >= sizeof(head) ? -ECONNREFUSED : 1;
	}
	n = (size_t)(end - c->in.p) + 4;
	if (n >= sizeof(head)) {
		snprintf(why, WSC_WHY, "no handshake answer in %zu bytes", sizeof(head));
		return -ECONNREFUSED;
	}
	memcpy(head, c->in.p, n);
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
static int renew_join(struct host_stream *s, struct wsc *c, char why[WSC_WHY])
{
	int64_t end = clock_mono_ns() + s->o.timeout * NS_PER_MS;
	char uri[2048], key[32];
	int ret = access_uri(s, uri, sizeof(uri), why);

	if (ret)
		return ret;
	ret = wsc_open(c, uri, s->tls, (int)s->o.timeout, why);
	if (ret)
		return ret;
	if (s->relay.up)
		host__relay_readable(
		        s); /* what came during the access steps is not on the new link */
	ret = send_upgrade(c, uri, key);
	if (!ret)
		ret = wsc_nonblock(c);
	if (ret)
		snprintf(why, WSC_WHY, "cannot send the upgrade: %s", strerror(-ret));
	while (!ret) {
		struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN},
		                        {.fd = s->relay.up ? s->ws.fd : -1, .events = POLLIN}};
		int64_t left = (end - clock_mono_ns()) / NS_PER_MS;
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
		while ((r = wsc_fill(c, MESSAGE_MAX)) > 0)
			;
		if (r != -EAGAIN) {
			snprintf(why, WSC_WHY, "no handshake answer: connection closed");
			ret = -ECONNRESET;
		} else if (pfd[1].revents && !memmem(c->in.p, c->in.len, "\r\n\r\n", 4)) {
			host__relay_readable(s);
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

	for (size_t off = 0; off < c->in.len;) {
		int h = wsframe_parse(c->in.p + off, c->in.len - off, &f);

		if (h <= 0 || f.payload_len > c->in.len - off - (size_t)h)
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
static void settle(struct host_stream *s, struct wsc *fresh)
{
	int64_t end = clock_mono_ns() + HANDOVER_SETTLE_NS;
	size_t on_new;

	for (int64_t left; s->relay.up && (left = end - clock_mono_ns()) > 0;) {
		struct pollfd pfd = {.fd = s->ws.fd, .events = POLLIN};
		struct timespec ts = {0, (long)left};

		if (ppoll(&pfd, 1, &ts, NULL) == 1)
			host__relay_readable(s);
	}
	if (s->relay.up)
		host__relay_readable(s);
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
void host__renew(struct host_stream *s)
{
	struct wsc fresh = {.fd = -1};
	char why[WSC_WHY];

	if (renew_join(s, &fresh, why)) {
		logt_warn(s->name, "cannot renew the token yet (%s); keeping the current link",
		          why);
		s->renew_ns = clock_mono_ns() + s->relay.backoff_ms * NS_PER_MS;
		return;
	}
	host_handover_record_start(&s->hv);
	settle(s, &fresh);
	if (s->relay.up)
		close_old_link(s);
	host_handover_match_start(&s->hv, clock_mono_ns() + HANDOVER_WINDOW_NS);
	s->ws = fresh;
	s->from_relay.open = false;
	host_outbuf_clear(&s->out);
	if (!watch_relay(s)) {
		/* as if the fresh link went down at once: reconnect at the backoff */
		s->relay.up = true; /* the fresh link is the link now, and it is lost */
		host__relay_disconnect(s, "cannot watch the relay socket");
		return;
	}
	if (!s->relay.up) {
		/* the old link went down meanwhile: the fresh one simply takes over */
		atomic_store(&s->relay_state, "up");
		host__link_up(s, &s->relay);
	}
	atomic_fetch_add(&s->renewals, 1);
	logt_notice(s->name, "%s", "token renewed on a new link without a gap");
	schedule_renewal(s);
	if (wsc_buffered(&s->ws))
		host__relay_readable(s);
}

void host__relay_close(struct host_stream *s)
{
	if (!s->relay.up)
		return;
	if (!host_outbuf_put_frame(&s->out, WS_CLOSE, close_normal, 2, clock_mono_ns()))
		flush_by(s, clock_mono_ns() + CLOSE_DRAIN_NS);
	unwatch_relay(s);
	wsc_close(&s->ws);
	host_outbuf_clear(&s->out);
	s->relay.up = false;
}
