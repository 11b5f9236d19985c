/*
 * relay/ws: websocket members of a topic. A connection arrives here already authorised (its
 * grant was redeemed in relay_confirm_upgrade). Messages are reassembled from fragments up to
 * max_message, published to the hub, and written to readers one frame per message, type and
 * boundaries kept (written by wswrite.c). Closing is asynchronous: relay_conn_close() marks,
 * WRITEABLE closes.
 *
 * Connection states: ESTABLISHED -> open -> (closing: code+reason set) -> CLOSED (pss freed).
 */
#define LOG_MODULE "ws"
#include "relay/internal.h"
#include "relay/cluster.h"
#include "relay/turn.h"
#include "pkg/log/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define CLOSE_GRACE_MS 2000
#define RX_KEEP        (64 * 1024) /* reassembly buffer kept between messages */
#define RX_FIRST       4096        /* a reassembly buffer's first size */

/* Milliseconds on the monotonic clock: pings, pongs and close deadlines are intervals, which a
 * step of the wall clock (NTP) must not stretch or cut. */
static int64_t mono_ms(void)
{
	return relay_mono_ns() / 1000000;
}

static void list_add(struct server *s, struct conn *c)
{
	c->prev = NULL;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
}

static void list_remove(struct server *s, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else if (s->conns == c)
		s->conns = c->next;
	else
		return; /* not listed */
	if (c->next)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
	s->nconns--;
}

void relay_conn_close(struct conn *c, int code, const char *reason)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_code = code;
	c->close_reason = reason;
	c->close_deadline_ms = mono_ms() + CLOSE_GRACE_MS;
	lws_callback_on_writable(c->wsi);
}

/* A peer that stopped reading never becomes writable, and one may never answer our close frame:
 * kill it when the deadline passes. */
static void kill_if_stuck(struct conn *c, int64_t now_ms)
{
	if (c->closing && now_ms > c->close_deadline_ms) {
		logt_info(c->tag, "%s: dropping the connection",
		          c->close_sent ? "no close frame back in time"
		                        : "close frame not sent in time");
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
	}
}

/* The reader's queue went from empty to non-empty: write it at the end of this loop pass. */
void relay_hub_wake(void *owner)
{
	struct conn *c = owner;

	if (c->ready)
		return;
	c->ready = true;
	c->ready_next = relay_srv.ready;
	relay_srv.ready = c;
}

static void ready_remove(struct conn *c)
{
	struct conn **pp = &relay_srv.ready;

	if (!c->ready)
		return;
	while (*pp != c)
		pp = &(*pp)->ready_next;
	*pp = c->ready_next;
	c->ready_next = NULL;
	c->ready = false;
}

/* Leave the topic: at CLOSED, or once our close frame went (nothing more is sent). */
void relay_ws_leave_topic(struct conn *c)
{
	const struct hub_counters *k;

	ready_remove(c);
	if (c->kind && c->kind->closed)
		c->kind->closed(c);
	if (!c->member)
		return;
	/* What is still queued is lost with the connection: it counts as dropped. */
	k = hub_member_counters(c->member);
	logt_info(
	        c->tag,
	        "left '%s': in %llu msgs, out %llu msgs in %llu writes, dropped %llu, refused %llu",
	        c->grant.topic, (unsigned long long)k->rx_msgs, (unsigned long long)k->tx_msgs,
	        (unsigned long long)c->writes,
	        (unsigned long long)(k->dropped + hub_queued(c->member)),
	        (unsigned long long)k->refused);
	if (c->grant.can_read)
		relay_cluster_reader(c->grant.topic, -1);
	hub_leave(c->member);
	c->member = NULL;
}

void relay_hub_overflow(void *owner)
{
	struct conn *c = owner;

	if (!c->closing)
		logt_info(c->tag, "queue full: closing slow reader");
	relay_conn_close(owner, LWS_CLOSE_STATUS_POLICY_VIOLATION, "reader too slow");
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

size_t relay_close_booking(const char *bid)
{
	size_t n = 0;

	for (struct conn *c = relay_srv.conns; c; c = c->next) {
		if (!c->closing && strcmp(c->grant.booking_id, bid) == 0) {
			relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "booking cancelled");
			n++;
		}
	}
	return n;
}

/*
 * Keep-alive, done here rather than by lws's retry policy: lws re-arms a timer per connection in
 * a sorted list on every pong, O(connections) each, which stalled the loop for over a second
 * with 10,000 idle connections. One walk a second over our list costs microseconds.
 */
static void keep_alive(struct conn *c, int64_t now_ms)
{
	const struct relay_opts *o = relay_srv.o;

	if (c->rx_paused) { /* we do not read it (back-pressure): its silence is ours */
		c->last_rx_ms = now_ms;
		c->ping_sent_ms = 0;
		return;
	}
	if (c->ping_sent_ms && now_ms - c->ping_sent_ms > o->ping_timeout) {
		logt_info(c->tag, "no answer to a ping in %lld ms: dropping the connection",
		          (long long)o->ping_timeout);
		c->close_code = LWS_CLOSE_STATUS_GOINGAWAY;
		c->close_reason = "ping timeout";
		c->closing = true;
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_WS_PONG_CHECK_GET_PONG, LWS_TO_KILL_ASYNC);
	} else if (!c->ping_sent_ms && now_ms - c->last_rx_ms > o->ping_interval) {
		c->ping_due = true;
		lws_callback_on_writable(c->wsi);
	}
}

/* ---- the memory budget ---- */

/*
 * A peer can make the relay hold memory with messages it never finishes (up to max_message
 * each) and with readers that never read (up to queue_bytes each). --max-memory bounds the two
 * together. Reassembly buffers are counted as they grow (rx_held, exact, O(1) a frame); queues
 * once a second and when the budget is crossed (hub_held_bytes(), O(readers)): each is bounded
 * by queue_bytes already, and filling many takes longer than that. Crossing the budget closes
 * the connections holding the most, one walk over them each, until the rest fits: 1009 for a
 * message being received, 1013 (try again later) for a reader's queue. What a closed
 * connection held is given back at once, not at its close frame.
 *
 * TURN over TCP/TLS holds output for its clients on its own thread, and that counts against
 * the same budget, after websockets: TURN drops a frame (whole) rather than let its output plus
 * what websockets hold (reassembly, queues and channels, published by note_held() whenever it
 * is counted here) pass the budget, and websockets are never shed for what TURN holds (its
 * frames can be dropped; a websocket can only be closed). So the sum can pass the budget only
 * when websockets grow into what TURN already holds; TURN then takes nothing more until
 * the sum is back under (its clients read, or go). See relay/turn_stream.c.
 */
#define MEM_MIN (64u * 1024 * 1024) /* automatic budget: at least this */

void relay_ws_init(void)
{
	struct server *s = &relay_srv;
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t phys = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;

	if (s->o->max_memory) {
		s->mem_budget = (size_t)s->o->max_memory;
	} else {
		s->mem_budget = phys / 4 > MEM_MIN ? (size_t)(phys / 4) : MEM_MIN;
		if (s->mem_budget < (size_t)s->o->max_message)
			s->mem_budget = (size_t)s->o->max_message;
	}
	log_notice("memory budget for messages being received or queued: %zu MiB (%s)",
	           s->mem_budget >> 20, s->o->max_memory ? "--max-memory" : "a quarter of RAM");
}

/* Publish what websockets hold, for TURN's output (see above). */
static void note_held(void)
{
	struct server *s = &relay_srv;

	relay_turn_note_ws_held(s->rx_held + s->queue_held + relay_channel_held());
}

/* Bytes @c makes us hold; *@queued gets the part queued for it. */
static size_t holding(const struct conn *c, size_t *queued)
{
	*queued = c->member ? hub_queued_bytes(c->member) : 0;
	return c->rx.cap + *queued;
}

static void rx_release(struct conn *c)
{
	relay_srv.rx_held -= c->rx.cap;
	buf_release(&c->rx);
	c->rx_started_ms = 0;
	note_held();
}

/* Close @c, the largest holder, and give back what it holds now. */
static void shed(struct conn *c, size_t held, size_t queued)
{
	struct server *s = &relay_srv;
	bool receiving = c->rx.cap >= queued;

	logt_warn(c->tag, "memory budget of %zu bytes reached: closing, holding %zu bytes %s",
	          s->mem_budget, held, receiving ? "of a message being received" : "queued");
	s->m.budget_closed[receiving ? 0 : 1]++;
	if (receiving)
		relay_conn_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
		                 "message too large for the relay's memory now");
	else
		relay_conn_close(c, RELAY_CLOSE_TRY_AGAIN,
		                 "reader too far behind for the relay's memory");
	rx_release(c);
	s->queue_held -= queued < s->queue_held ? queued : s->queue_held;
	relay_ws_leave_topic(
	        c); /* a closing connection writes no more data: its queue can go now */
}

/*
 * Close the largest holders until what is held plus @more (bytes @grower is about to take)
 * fits the budget. What closing connections hold counts as given back: it goes with their
 * close frame, within CLOSE_GRACE_MS. Rare: each pass over the connections closes one.
 */
static void fit_budget(struct conn *grower, size_t more)
{
	struct server *s = &relay_srv;

	s->queue_held = hub_held_bytes(s->hub);
	for (;;) {
		struct conn *big = NULL;
		size_t most = 0, big_queued = 0, leaving = 0;

		for (struct conn *c = s->conns; c; c = c->next) {
			size_t queued, n = holding(c, &queued);

			if (c->closing) {
				leaving += n;
				continue;
			}
			if (c == grower)
				n += more;
			if (n > most) {
				most = n;
				big = c;
				big_queued = queued;
			}
		}
		if (!big || s->rx_held + s->queue_held + more <= s->mem_budget + leaving) {
			note_held();
			return;
		}
		if (big == grower)
			more = 0;
		shed(big, most, big_queued);
	}
}

/* A message whose first fragment came --message-timeout ago and is still incomplete. */
static bool message_overdue(const struct conn *c, int64_t now_ms)
{
	return c->rx_started_ms && now_ms - c->rx_started_ms > relay_srv.o->message_timeout;
}

void relay_close_expired(int64_t now_ms)
{
	struct server *s = &relay_srv;
	int64_t mono = mono_ms(); /* intervals; @now_ms (wall clock) is for the tokens' exp */

	for (struct conn *c = s->conns; c; c = c->next) {
		kill_if_stuck(c, mono);
		if (c->closing)
			continue;
		if (c->grant.exp < now_ms / 1000) {
			relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "token expired");
		} else if (message_overdue(c, mono)) {
			logt_info(c->tag, "message incomplete after %lld ms (%zu bytes): closing",
			          (long long)s->o->message_timeout, c->rx.len);
			relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			                 "message not completed in time");
			rx_release(c);
		} else {
			keep_alive(c, mono);
		}
	}
	/* Queues are counted here, once a second: see "the memory budget" above. */
	s->queue_held = hub_held_bytes(s->hub);
	note_held();
	if (s->rx_held + s->queue_held > s->mem_budget)
		fit_budget(NULL, 0);
}

void relay_close_all(int code, const char *reason)
{
	for (struct conn *c = relay_srv.conns; c; c = c->next)
		relay_conn_close(c, code, reason);
}

/* ---- establishing ---- */

const struct relay_kind *relay_kind_of(const char *name, size_t n)
{
	static const struct relay_kind *const kinds[] = {
	        &relay_kind_channel,
	        &relay_kind_signal,
	        &relay_kind_meet,
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strlen(kinds[i]->name) == n && memcmp(kinds[i]->name, name, n) == 0)
			return kinds[i];
	return NULL;
}

static const char *join_error(enum hub_join_error e)
{
	switch (e) {
	case HUB_JOIN_TOO_MANY_TOPICS:
		return "too many topics";
	case HUB_JOIN_TOPIC_FULL:
		return "topic full";
	default:
		return "out of memory";
	}
}

static void describe_peer(struct lws *wsi, struct conn *c)
{
	relay_client_addr(wsi, c->remote, sizeof(c->remote));
	if (lws_hdr_copy(wsi, c->user_agent, sizeof(c->user_agent), WSI_TOKEN_HTTP_USER_AGENT) < 0)
		c->user_agent[0] = '\0';
	/* Printable ASCII only: it goes into logs and JSON reports. */
	for (char *p = c->user_agent; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

/* A websocket inside HTTP/2 (RFC 8441) skips relay_confirm_upgrade(): its checks are here. */
static int redeem_inside_h2(struct lws *wsi, struct grant *g, const char **why)
{
	if (relay_headers_too_large(wsi)) {
		*why = "request headers too large (see --max-header)";
		return 431;
	}
	return relay_redeem(wsi, g, why);
}

static int on_established(struct lws *wsi, struct conn *c)
{
	struct server *s = &relay_srv;
	const char *why;
	int status;

	memset(c, 0, sizeof(*c));
	c->wsi = wsi;
	c->id = ++s->next_id;
	snprintf(c->tag, sizeof(c->tag), "c%llu", (unsigned long long)c->id);
	c->connected_at = relay_now_ms() / 1000;
	buf_init(&c->rx, (size_t)s->o->max_message);
	c->last_rx_ms = mono_ms();
	describe_peer(wsi, c);
	/* Listed from the start, refused or not: relay_close_expired() enforces every close
	 * deadline, and a refused stream whose close frame cannot go must not be held forever. */
	list_add(s, c);
	if (s->handoff.wsi == wsi && lws_get_network_wsi(wsi) == wsi) {
		c->grant = s->handoff.grant; /* redeemed at the HTTP/1.1 upgrade, just now */
		OPENSSL_cleanse(&s->handoff, sizeof(s->handoff));
	} else if ((status = redeem_inside_h2(wsi, &c->grant, &why))) {
		/* Inside HTTP/2 the upgrade has already been answered: refuse with a close frame.
		 */
		logt_info(c->tag, "websocket refused (%d): %s", status, why);
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
		return 0;
	}
	if (relay_cluster_claiming(c))
		return 0; /* its code is claimed from Redis first: relay_ws_admit() follows */
	return relay_ws_admit(c);
}

int relay_ws_admit(struct conn *c)
{
	struct server *s = &relay_srv;
	enum hub_join_error err;

	s->m.connections_total++;
	c->kind = relay_kind_of(c->grant.prefix, strlen(c->grant.prefix));
	if (c->kind)
		return c->kind->established(s, c);
	c->member =
	        hub_join(s->hub, c->grant.topic, c->grant.can_read, c->grant.can_write, c, &err);
	if (!c->member) {
		logt_warn(c->tag, "cannot join '%s': %s", c->grant.topic, join_error(err));
		relay_conn_close(c, RELAY_CLOSE_TRY_AGAIN, join_error(err));
		return 0;
	}
	if (c->grant.can_read)
		relay_cluster_reader(c->grant.topic, 1);
	logt_info(c->tag, "joined '%s' from %s as %s (%s%s)", c->grant.topic, c->remote,
	          c->grant.who[0] ? c->grant.who : "anonymous", c->grant.can_read ? "r" : "",
	          c->grant.can_write ? "w" : "");
	return 0;
}

/* ---- receiving ---- */

/*
 * Room for @n more bytes of the message being reassembled; false when there is none (then @c
 * may already be closing: it held the most under the memory budget). RX_FIRST bytes at first,
 * then doubling, but never past max_message (the buffer's max): a message of max_message bytes
 * must not take twice that. The growth is counted in rx_held before it is taken.
 */
static bool rx_grow(struct conn *c, size_t n)
{
	struct server *s = &relay_srv;
	size_t left = buf_left(&c->rx), grow;

	if (n > left)
		return false; /* too_large() refused it already */
	if (!c->rx.cap && n < RX_FIRST)
		n = RX_FIRST < left ? RX_FIRST : left;
	grow = buf_reserved_cap(&c->rx, n) - c->rx.cap;
	if (!grow)
		return true;
	if (s->rx_held + s->queue_held + grow > s->mem_budget)
		fit_budget(c, grow);
	if (c->closing || buf_reserve(&c->rx, n))
		return false;
	s->rx_held += grow;
	note_held();
	return true;
}

static void publish(struct conn *c, const uint8_t *data, size_t len, bool binary)
{
	struct hub_msg *m = hub_msg_new(len, LWS_PRE);
	int64_t now = relay_mono_ns();

	if (!m) {
		relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
		return;
	}
	if (len)
		memcpy(m->data, data, len);
	m->binary = binary;
	m->t_in_ns = now;
	relay_cluster_publish(c->grant.topic, m); /* to the other instances, if any */
	hub_publish(c->member, m, now);
}

/*
 * True when the message will pass @max bytes: @so_far received before this piece of @len, and
 * what the frame's header announced is still to come. lws hands a frame over in pieces as its
 * bytes arrive, so this refuses a header claiming up to 2^63-1 bytes at its first bytes (RFC
 * 6455 section 7.4.1: 1009), not after @max of them.
 */
static bool too_large(struct lws *wsi, size_t so_far, size_t len, size_t max)
{
	return len > max - so_far || lws_remaining_packet_payload(wsi) > max - so_far - len;
}

static void on_receive(struct lws *wsi, struct conn *c, const uint8_t *in, size_t len)
{
	bool first = lws_is_first_fragment(wsi), final = lws_is_final_fragment(wsi);
	size_t max = (size_t)relay_srv.o->max_message;

	if (c->kind) {
		if (!c->closing)
			c->kind->receive(c, in, len, first, final, lws_frame_is_binary(wsi));
		return;
	}
	if (c->closing || !c->member)
		return;
	if (first) {
		c->rx.len = 0;
		c->rx_binary = lws_frame_is_binary(wsi);
		c->rx_dropping = !c->grant.can_write;
	}
	if (c->rx_dropping) {
		if (final)
			hub_note_refused(c->member);
		return;
	}
	if (too_large(wsi, first ? 0 : c->rx.len, len, max)) {
		logt_info(c->tag, "message over %zu bytes: closing", max);
		relay_conn_close(c, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
		return;
	}
	if (first && final) {
		publish(c, in, len, c->rx_binary); /* the common case: no reassembly copy */
		return;
	}
	if (first)
		c->rx_started_ms = mono_ms(); /* --message-timeout runs from here */
	if (!rx_grow(c, len) || buf_add(&c->rx, in, len)) {
		relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
		return;
	}
	if (!final)
		return;
	c->rx_started_ms = 0;
	publish(c, c->rx.p, c->rx.len, c->rx_binary);
	if (c->rx.cap > RX_KEEP) /* one large message must not pin its buffer for good */
		rx_release(c);
}

static void on_closed(struct conn *c)
{
	if (!c->wsi)
		return; /* never established */
	relay_ws_leave_topic(c);
	list_remove(&relay_srv, c);
	rx_release(c);
	OPENSSL_cleanse(&c->grant, sizeof(c->grant));
	c->wsi = NULL;
}

int relay_ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_ESTABLISHED:
		return on_established(wsi, c);
	case LWS_CALLBACK_RECEIVE:
		c->last_rx_ms = mono_ms();
		c->ping_sent_ms = 0;
		on_receive(wsi, c, in, len);
		return 0;
	case LWS_CALLBACK_RECEIVE_PONG:
		c->last_rx_ms = mono_ms();
		c->ping_sent_ms = 0;
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return relay_ws_writeable(wsi, c);
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		c->peer_closed = true;
		if (len >= 2)
			c->peer_close_code =
			        ((const uint8_t *)in)[0] << 8 | ((const uint8_t *)in)[1];
		/* the answer to our close frame ends the connection; else lws answers it */
		return c->close_sent ? -1 : 0;
	case LWS_CALLBACK_CLOSED:
		on_closed(c);
		return 0;
	default:
		return 0;
	}
}
