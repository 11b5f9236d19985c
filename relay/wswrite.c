/*
 * relay/wswrite: writing to websocket readers, and the close frame. Two ways (--write-path):
 *   lws   plain lws_write() from WRITEABLE, one message (or a ping) per callback, asked for
 *         with lws_callback_on_writable(); lws frames everything and closes the connection.
 *   fast  messages framed here (RFC 6455 section 5.2) into one raw write, writes outside
 *         WRITEABLE and our own close frame. It leans on how lws 4.1 buffers partial writes and
 *         closes, so it exists only when built against the libwebsockets it was verified with
 *         (4.1.x, WSWRITE_FAST below); any other version gets the lws way.
 * A websocket inside HTTP/2 (RFC 8441) is always written the lws way: lws frames it into the
 * stream and checks the peer's flow-control window once per WRITEABLE, so one write each.
 * Back-pressure (relay_hub_flow()): when every reader of a topic is backed up, the relay stops
 * reading from the topic's writers until one has drained.
 */
#define LOG_MODULE "ws"
#include "relay/internal.h"
#include "pkg/log/log.h"
#include "pkg/wsframe/wsframe.h"

#include <string.h>

/* The fast path was measured and checked against lws 4.1.6 (Debian 12); see the file comment. */
#if LWS_LIBRARY_VERSION_MAJOR == 4 && LWS_LIBRARY_VERSION_MINOR == 1
#define WSWRITE_FAST 1
#else
#define WSWRITE_FAST 0
#endif

static bool fast = WSWRITE_FAST; /* --write-path */

int relay_write_path_set(const char *name, char why[256])
{
	if (!name || !*name) {
		fast = WSWRITE_FAST;
		return 0;
	}
	if (strcmp(name, "lws") == 0) {
		fast = false;
		return 0;
	}
	if (strcmp(name, "fast") == 0 && WSWRITE_FAST) {
		fast = true;
		return 0;
	}
	if (strcmp(name, "fast") == 0)
		snprintf(why, 256,
		         "write_path fast needs libwebsockets 4.1 (built against %s): use lws",
		         LWS_LIBRARY_VERSION);
	else
		snprintf(why, 256, "write_path must be fast or lws, not '%.40s'", name);
	return -EINVAL;
}

const char *relay_write_path(void)
{
	return fast ? "fast" : "lws";
}

/* A websocket on its own connection (HTTP/1.1 upgrade), not a stream inside HTTP/2. */
static bool own_socket(struct lws *wsi)
{
	return lws_get_network_wsi(wsi) == wsi;
}

/*
 * lws closes @wsi itself after a protocol error from the peer (bad UTF-8, a bad opcode): it
 * prepares a close frame, sends it from WRITEABLE and waits for the peer's answer. lws 4.1
 * still calls our WRITEABLE meanwhile, but no data may follow a close frame (RFC 6455 section
 * 5.5.1): lws_get_close_length() is non-zero from the moment lws prepared the frame.
 */
static bool closed_by_lws(struct lws *wsi)
{
	return lws_get_close_length(wsi) != 0;
}

/* The oldest queued message, framed by lws; popped once written. */
static int write_one(struct lws *wsi, struct conn *c)
{
	struct hub_msg *m = hub_peek(c->member);

	if (lws_write(wsi, m->data, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) <
	    (int)m->len)
		return -1;
	c->writes++;
	hub_pop(c->member, relay_mono_ns());
	return 0;
}

/*
 * lws's close (lws_close_reason(), then lws closes): lws sends the frame from its own WRITEABLE,
 * then waits for the peer's. Inside HTTP/2 returning -1 from WRITEABLE starts it. On a
 * connection of its own with the libuv event loop, lws 4.1 loses the frame when the close
 * starts inside WRITEABLE (1006 instead of the code): the close starts after the loop pass
 * instead (close_queued(), from relay_ws_flush()), and the connection leaves its topic now.
 */
static int close_via_lws(struct lws *wsi, struct conn *c)
{
	size_t n = strlen(c->close_reason);

	lws_close_reason(wsi, (enum lws_close_status)c->close_code,
	                 (unsigned char *)c->close_reason, n > 123 ? 123 : n);
	if (!own_socket(wsi))
		return -1;
	relay_ws_leave_topic(c);
	relay_hub_flow(c, false); /* lws must read the peer's close frame */
	c->close_sent = true;
	relay_hub_wake(c); /* nothing else wakes it: it left the topic */
	return 0;
}

/* After close_via_lws(): lws_close_free_wsi() by way of a synchronous timeout. */
static void close_queued(struct conn *c)
{
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
}

#if WSWRITE_FAST
/*
 * Write queued messages. Small messages are framed here (RFC 6455 section 5.2, unmasked) into
 * one buffer and handed to lws as raw bytes, many frames per system call: one send() per
 * message cannot reach the throughput the loopback allows (NOTES.md). A large message goes
 * alone through lws_write(), which frames it.
 */
#define BATCH_BYTES (64 * 1024)

static int write_batch(struct lws *wsi, struct conn *c)
{
	static uint8_t buf[LWS_PRE + BATCH_BYTES];
	uint8_t *p = buf + LWS_PRE;
	size_t len = 0, n = 0;
	struct hub_msg *m;
	int64_t now;

	while ((m = hub_peek_at(c->member, n)) &&
	       len + WSFRAME_MAX_HEADER + m->len <= BATCH_BYTES) {
		len += wsframe_header(p + len, m->binary ? WS_BINARY : WS_TEXT, true, m->len, NULL);
		memcpy(p + len, m->data, m->len);
		len += m->len;
		n++;
	}
	if (n == 0)
		return write_one(wsi, c);
	if (lws_write(wsi, p, len, LWS_WRITE_RAW) < (int)len)
		return -1;
	c->writes++;
	now = relay_mono_ns();
	while (n--)
		hub_pop(c->member, now);
	return 0;
}

/* Write what is queued until the socket blocks (at most MAX_BATCHES batches). */
static int write_batches(struct lws *wsi, struct conn *c)
{
	enum { MAX_BATCHES = 16 };

	for (int i = 0; c->member && i < MAX_BATCHES && hub_queued(c->member); i++) {
		if (write_batch(wsi, c))
			return -1;
		/* lws_send_pipe_choked() costs a poll(): ask only when there is more to write */
		if (hub_queued(c->member) && lws_send_pipe_choked(wsi))
			break;
	}
	return 0;
}

/*
 * Our own close frame (RFC 6455 section 5.5.1: 2-byte code, then the reason) as raw bytes.
 * lws_close_reason() plus returning -1 is lws's own way, but with the libuv event loop lws 4.1
 * tears the socket down without sending the frame.
 */
static int own_close(struct lws *wsi, struct conn *c)
{
	uint8_t buf[LWS_PRE + WSFRAME_MAX_HEADER + 2 + 123], *p = buf + LWS_PRE;
	size_t n = strlen(c->close_reason), h;

	if (n > 123)
		n = 123;
	h = wsframe_header(p, WS_CLOSE, true, n + 2, NULL);
	p[h] = (uint8_t)(c->close_code >> 8);
	p[h + 1] = (uint8_t)c->close_code;
	memcpy(p + h + 2, c->close_reason, n);
	if (lws_write(wsi, p, h + 2 + n, LWS_WRITE_RAW) < 0)
		return -1;
	c->close_sent = true; /* the deadline set with the close request still holds */
	relay_ws_leave_topic(c);
	relay_hub_flow(c, false); /* the peer's close frame must be read */
	return 0;
}

/*
 * Writing outside WRITEABLE. lws asks for writes from WRITEABLE only; for a websocket on its
 * own HTTP/1.1 connection a raw lws_write() at another time on the loop thread is safe as
 * long as lws holds none of our earlier output (lws_partial_buffered()): lws_issue_raw() then
 * sends at once, keeps whatever the socket did not take and asks for WRITEABLE itself, and
 * drains it before our next WRITEABLE. Inside HTTP/2 (flow control, a shared socket), while a
 * ping or close frame is due, once the peer sent its close frame (lws answers it from
 * WRITEABLE) or once lws is closing the connection itself, the write waits for WRITEABLE.
 *
 * Why: waiting costs per reader and message an epoll_wait wake-up and four epoll_ctl calls
 * (libuv 1.44's uv_poll_start() removes the socket from epoll and adds it back, once to add
 * POLLOUT and once to drop it), about a third of the relay's CPU with 100 readers (NOTES-perf).
 */
static bool can_write_now(const struct conn *c)
{
	return c->wsi && c->member && !c->closing && !c->ping_due && !c->peer_closed &&
	       own_socket(c->wsi) && !lws_partial_buffered(c->wsi) && !closed_by_lws(c->wsi);
}
#endif /* WSWRITE_FAST */

/*
 * Send the close frame, leave the topic, then wait for the peer's (WS_PEER_INITIATED_CLOSE
 * ends the connection) until close_deadline_ms (CLOSE_GRACE_MS after the close was asked for,
 * to send ours and hear theirs). Closing the socket at once would reset it if the peer's last
 * messages were still unread, and the peer could lose our close frame with them (1006 instead
 * of the code).
 */
static int send_close(struct lws *wsi, struct conn *c)
{
	if (!c->close_reason)
		return -1;
#if WSWRITE_FAST
	if (fast && own_socket(wsi))
		return own_close(wsi, c);
#endif
	return close_via_lws(wsi, c);
}

/* Write what is queued; ask for WRITEABLE when some is left. */
static int write_queued(struct lws *wsi, struct conn *c)
{
	int ret;

#if WSWRITE_FAST
	if (fast && own_socket(wsi))
		ret = write_batches(wsi, c);
	else
#endif
		ret = hub_queued(c->member) ? write_one(wsi, c) : 0;
	if (ret) {
		logt_info(c->tag, "write failed: closing");
		return -1;
	}
	if (c->member && hub_queued(c->member))
		lws_callback_on_writable(wsi);
	return 0;
}

/*
 * Every reader of @owner's topic is backed up (@paused) or one has drained: stop or resume
 * reading from this writer, so that TCP slows it down rather than the relay dropping what it
 * sent. lws 4.1 ignores rx flow control inside HTTP/2: such a writer is not slowed, and its
 * readers' queue limits apply as before.
 */
void relay_hub_flow(void *owner, bool paused)
{
	struct conn *c = owner;

	if (c->rx_paused == paused || !c->wsi)
		return;
	c->rx_paused = paused;
	logt_debug(c->tag, "%s reading: %s", paused ? "pausing" : "resuming",
	           paused ? "every reader is backed up" : "a reader drained");
	lws_rx_flow_control(c->wsi, paused ? 0 : 1);
}

int relay_ws_writeable(struct lws *wsi, struct conn *c)
{
	if (c->close_sent)
		return 0;
	if (c->closing)
		return send_close(wsi, c);
	if (closed_by_lws(wsi))
		return 0; /* what is queued is counted as dropped at CLOSED */
	if (c->ping_due) {
		uint8_t ping[LWS_PRE];

		c->ping_due = false;
		c->ping_sent_ms = relay_mono_ns() / 1000000;
		if (lws_write(wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0)
			return -1;
		if (!fast || !own_socket(wsi)) { /* one write per WRITEABLE: data next time */
			if (c->kind || (c->member && hub_queued(c->member)))
				lws_callback_on_writable(wsi);
			return 0;
		}
	}
	if (c->kind)
		return c->kind->writeable(wsi, c);
	if (!c->member)
		return 0;
	return write_queued(wsi, c);
}

static void write_now(struct conn *c)
{
	if (c->close_sent) {
		close_queued(c);
		return;
	}
#if WSWRITE_FAST
	if (fast && can_write_now(c)) {
		if (write_queued(c->wsi, c)) {
			/* The socket is unusable: no close frame, lws closes it on its next pass. */
			c->closing = true;
			c->close_reason = NULL;
			lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
		}
		return;
	}
#endif
	lws_callback_on_writable(c->wsi);
}

/*
 * Write to the readers woken since the last call. Called at the end of every loop pass, after
 * the callbacks that published, so that messages published together go in one write.
 */
void relay_ws_flush(void)
{
	struct conn *c;

	while ((c = relay_srv.ready)) {
		relay_srv.ready = c->ready_next;
		c->ready_next = NULL;
		c->ready = false;
		write_now(c);
	}
}
