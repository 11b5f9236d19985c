/*
 * relay/channel: /connect/{host}, private channels (issue 14). A lab PC's agent holds one
 * control connection per host id (a token with prefix "connect" and scope "host"); a client
 * (scope "client") opens a websocket, the relay tells the host on its control connection where
 * to open the channel's other end (a one-time code bound to this channel), and from then on
 * relays every frame between the two websockets, in order, nothing dropped, nobody else seeing
 * it. A side whose queue fills stops the relay reading the other (TCP back-pressure), and a
 * side's close closes the other with the same code once what it sent is delivered.
 *
 * Three websocket roles, all of the kind "connect", told apart by the grant's scopes
 * (chan_role_of(), channel_access.c, which also answers the access call):
 *   "host"          the control connection: the relay writes {"type":"connect",...} on it
 *   "client"        a client's end of a new channel
 *   "channel:<id>"  the host's end of channel <id> (a code only the relay issues)
 * Channel states: waiting (client only, --channel-timeout for the host) -> paired -> draining
 * (one side gone: the other gets what is queued, then the same close) -> freed.
 */
#define LOG_MODULE "chan"
#include "relay/internal.h"
#include "relay/channel.h"
#include "relay/channel_queue.h"
#include "relay/cluster.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define CTL_QUEUE_MAX 256   /* connect messages waiting on one control connection */
#define WRITES_MAX    16    /* pieces written per WRITEABLE on a connection of its own */
#define DRAIN_MS      10000 /* a side gone: what is queued for the other must go in this */
/* What may still arrive after a pause: lws delivers the rest of one read (pt_serv_buf_size,
 * 256 KiB) at most; past 4 queues and this, pausing is not working (HTTP/2). */
#define PAUSE_SLACK (1024 * 1024)

enum tag { TAG_HOST = 1, TAG_CHANNEL };

/* A connect message waiting on the control connection; it holds a code: wiped when freed. */
struct ctl_msg {
	struct ctl_msg *next;
	size_t len;
	uint8_t data[]; /* LWS_PRE, then len bytes */
};

struct channel;

/* A host id with its control connection and channels; freed when it has neither. */
struct host {
	enum tag tag; /* first: conn.kind_data points at a host or a channel */
	struct host *next;
	char id[GRANT_TOPIC];
	struct conn *control;
	struct ctl_msg *out, *out_tail;
	size_t out_n;
	struct channel *channels;
	size_t nchannels;
};

struct channel {
	enum tag tag;
	struct channel *next; /* in host->channels */
	struct host *host;
	uint64_t id;
	char name[24];                  /* "ch<id>", for logs and /status */
	char client_label[GRANT_FIELD]; /* the client's booking id or sub */
	struct conn *client, *end;      /* end: the host's side, once it opened it */
	struct chan_queue to_end, to_client;
	bool paired;
	bool draining; /* one side is gone: the other closes once its queue is written */
	int close_code;
	const char *close_reason;     /* static, as relay_conn_close() wants */
	uint64_t out_client, out_end; /* payload bytes written to each side */
	lws_sorted_usec_list_t sul;   /* waiting: the host's deadline; draining: the drain's */
};

static struct host *hosts;
static struct {
	uint64_t next_id;
	uint64_t opened, paired, timed_out;
	size_t open;
	uint64_t bytes_to_host, bytes_to_client;
	size_t held; /* bytes queued in every channel */
} stats;

/* Drop what waits in @q, and its count in stats.held. */
static void queue_clear(struct chan_queue *q)
{
	stats.held -= q->held;
	chan_queue_clear(q);
}

/* ---- hosts and channels ---- */

static struct host *host_find(const char *id)
{
	for (struct host *h = hosts; h; h = h->next)
		if (strcmp(h->id, id) == 0)
			return h;
	return NULL;
}

static struct host *host_get(const char *id)
{
	struct host *h = host_find(id);

	if (h)
		return h;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->tag = TAG_HOST;
	snprintf(h->id, sizeof(h->id), "%s", id);
	h->next = hosts;
	hosts = h;
	return h;
}

static void ctl_clear(struct host *h)
{
	struct ctl_msg *m;

	while ((m = h->out)) {
		h->out = m->next;
		OPENSSL_cleanse(m->data + LWS_PRE, m->len);
		free(m);
	}
	h->out_tail = NULL;
	h->out_n = 0;
}

/* Free @h if nothing refers to it any more. */
static void host_tidy(struct host *h)
{
	struct host **pp = &hosts;

	if (h->control || h->channels)
		return;
	while (*pp != h)
		pp = &(*pp)->next;
	*pp = h->next;
	ctl_clear(h);
	free(h);
}

static bool host_online(const struct host *h)
{
	return h && h->control && !h->control->closing;
}

static struct channel *channel_find(struct host *h, uint64_t id)
{
	for (struct channel *ch = h ? h->channels : NULL; ch; ch = ch->next)
		if (ch->id == id)
			return ch;
	return NULL;
}

/* Free @ch once neither side refers to it. */
static void channel_tidy(struct channel *ch)
{
	struct host *h = ch->host;
	struct channel **pp = &h->channels;

	if (ch->client || ch->end)
		return;
	lws_sul_cancel(&ch->sul);
	while (*pp != ch)
		pp = &(*pp)->next;
	*pp = ch->next;
	h->nchannels--;
	stats.open--;
	queue_clear(&ch->to_end);
	queue_clear(&ch->to_client);
	logt_info(ch->name,
	          "channel to '%s' done: %" PRIu64 " bytes to the host, %" PRIu64 " to the client",
	          h->id, ch->to_end.in_bytes, ch->to_client.in_bytes);
	free(ch);
	host_tidy(h);
}

bool chan_host_online(const char *host_id)
{
	return host_online(host_find(host_id));
}

void chan_each_host(void (*fn)(const char *host_id, void *arg), void *arg)
{
	for (const struct host *h = hosts; h; h = h->next)
		if (host_online(h))
			fn(h->id, arg);
}

bool chan_waits_for_end(const char *host_id, uint64_t id)
{
	const struct channel *ch = channel_find(host_find(host_id), id);

	return ch && !ch->end && ch->client && !ch->draining;
}

/* ---- the control connection ---- */

/* Queue a connect message for @ch on its host's control connection; 0 or -errno. */
static int tell_host(struct server *s, struct channel *ch)
{
	struct host *h = ch->host;
	struct grant g = h->control->grant; /* the host's token: its booking, expiry, deny */
	char code[CODE_LEN + 1], uri[768];
	struct ctl_msg *m;
	json_t *o;
	char *text;
	int err;

	if (h->out_n >= CTL_QUEUE_MAX)
		return -ENOBUFS;
	snprintf(g.scopes, sizeof(g.scopes), "channel:%" PRIu64, ch->id);
	err = codes_issue(s->codes, &g, relay_mono_ms(), code);
	OPENSSL_cleanse(&g, sizeof(g));
	if (err)
		return err;
	chan_uri(s, h->id, code, uri, sizeof(uri));
	o = json_pack("{s:s, s:s, s:s, s:s}", "type", "connect", "uri", uri, "client",
	              ch->client_label, "channel", ch->name);
	OPENSSL_cleanse(uri, sizeof(uri));
	text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text)
		return -ENOMEM;
	m = malloc(sizeof(*m) + LWS_PRE + strlen(text));
	if (m) {
		m->next = NULL;
		m->len = strlen(text);
		memcpy(m->data + LWS_PRE, text, m->len);
		if (h->out_tail)
			h->out_tail->next = m;
		else
			h->out = m;
		h->out_tail = m;
		h->out_n++;
		lws_callback_on_writable(h->control->wsi);
	}
	OPENSSL_cleanse(text, strlen(text));
	free(text);
	return m ? 0 : -ENOMEM;
}

static int control_established(struct server *s, struct conn *c)
{
	struct host *h = host_get(c->grant.topic);
	size_t again = 0;

	if (!h) {
		relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
		return 0;
	}
	if (host_online(h)) { /* two redeemed at once: the first keeps it */
		logt_info(c->tag, "host '%s' already has a control connection: refused", h->id);
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		                 "this host already has a control connection");
		return 0;
	}
	ctl_clear(h); /* messages for an earlier control connection carried its codes */
	/* A predecessor still closing lets go of @h now: if this one closed first, @h would be
	 * freed under it. */
	if (h->control) {
		logt_info(h->control->tag, "host '%s' control connection replaced while closing",
		          h->id);
		h->control->kind_data = NULL;
	}
	h->control = c;
	c->kind_data = h;
	/* Clients still waiting (the last control connection dropped before they were
	 * answered) are asked for again, with new codes: the host's deadline still runs. */
	for (struct channel *ch = h->channels; ch; ch = ch->next)
		if (!ch->paired && ch->client && !ch->client->closing && !ch->draining &&
		    !tell_host(s, ch))
			again++;
	relay_cluster_host_up(h->id); /* other instances send its clients here */
	logt_info(c->tag, "host '%s' connected from %s as %s%s", h->id, c->remote,
	          c->grant.who[0] ? c->grant.who : "anonymous",
	          again ? " (waiting channels asked for again)" : "");
	return 0;
}

static int control_writeable(struct lws *wsi, struct host *h)
{
	struct ctl_msg *m = h->out;

	if (!m)
		return 0;
	if (lws_write(wsi, m->data + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len)
		return -1;
	h->out = m->next;
	if (!h->out)
		h->out_tail = NULL;
	h->out_n--;
	OPENSSL_cleanse(m->data + LWS_PRE, m->len);
	free(m);
	if (h->out)
		lws_callback_on_writable(wsi);
	return 0;
}

static void control_closed(struct conn *c, struct host *h)
{
	logt_info(c->tag, "host '%s' control connection closed", h->id);
	if (h->control != c)
		return; /* not expected: a successor detaches it (control_established) */
	h->control = NULL;
	relay_cluster_host_down(h->id);
	ctl_clear(h);
	host_tidy(h);
}

/* ---- channels ---- */

static void host_silent(lws_sorted_usec_list_t *sul)
{
	struct channel *ch = lws_container_of(sul, struct channel, sul);

	if (ch->paired || !ch->client)
		return;
	stats.timed_out++;
	logt_info(ch->name, "host '%s' did not open the channel in %lld ms: closing the client",
	          ch->host->id, (long long)relay_srv.o->channel_timeout);
	relay_conn_close(ch->client, RELAY_CLOSE_TRY_AGAIN, "host did not answer");
}

static void drain_overdue(lws_sorted_usec_list_t *sul)
{
	struct channel *ch = lws_container_of(sul, struct channel, sul);
	struct conn *left = ch->client ? ch->client : ch->end;

	if (!left || left->closing)
		return;
	logt_info(ch->name, "queue not written in %d ms after the other side closed: closing",
	          DRAIN_MS);
	relay_conn_close(left, ch->close_code, ch->close_reason);
}

static int client_established(struct server *s, struct conn *c)
{
	struct host *h = host_find(c->grant.topic);
	struct channel *ch;
	int err;

	if (!host_online(h)) {
		relay_conn_close(c, RELAY_CLOSE_TRY_AGAIN, "the host is not connected");
		return 0;
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch) {
		relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
		return 0;
	}
	ch->tag = TAG_CHANNEL;
	ch->host = h;
	ch->id = ++stats.next_id;
	snprintf(ch->name, sizeof(ch->name), "ch%" PRIu64, ch->id);
	snprintf(ch->client_label, sizeof(ch->client_label), "%s",
	         c->grant.booking_id[0] ? c->grant.booking_id : c->grant.who);
	ch->client = c;
	ch->next = h->channels;
	h->channels = ch;
	h->nchannels++;
	stats.open++;
	stats.opened++;
	c->kind_data = ch;
	err = tell_host(s, ch);
	if (err) {
		logt_warn(ch->name, "cannot ask host '%s' for a channel: %s", h->id,
		          err == -ENOBUFS  ? "too many waiting"
		          : err == -ENOSPC ? "too many pending codes"
		                           : strerror(-err));
		relay_conn_close(c, RELAY_CLOSE_TRY_AGAIN, "host busy, try again");
		return 0;
	}
	lws_sul_schedule(s->ctx, 0, &ch->sul, host_silent, s->o->channel_timeout * 1000);
	logt_info(ch->name, "client %s (%s) from %s asks host '%s' for a channel", c->tag,
	          ch->client_label[0] ? ch->client_label : "anonymous", c->remote, h->id);
	return 0;
}

static int end_established(struct conn *c, uint64_t id)
{
	struct channel *ch = channel_find(host_find(c->grant.topic), id);

	if (!ch || ch->end || !ch->client || ch->draining) {
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		                 "channel closed or already opened");
		return 0;
	}
	lws_sul_cancel(&ch->sul);
	ch->end = c;
	ch->paired = true;
	c->kind_data = ch;
	stats.paired++;
	logt_info(ch->name, "paired: client %s, host %s", ch->client->tag, c->tag);
	if (chan_queue_peek(&ch->to_end))
		lws_callback_on_writable(c->wsi);
	return 0;
}

static int established(struct server *s, struct conn *c)
{
	uint64_t id = 0;

	switch (chan_role_of(&c->grant, &id)) {
	case CHAN_HOST:
		return control_established(s, c);
	case CHAN_CLIENT:
		return client_established(s, c);
	case CHAN_END:
		return end_established(c, id);
	default:
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "not a channel grant");
		return 0;
	}
}

/* The other side of @c on @ch (NULL before pairing or once gone). */
static struct conn *other(const struct channel *ch, const struct conn *c)
{
	return c == ch->client ? ch->end : ch->client;
}

/* What waits for @c on @ch. */
static struct chan_queue *queue_for(struct channel *ch, const struct conn *c)
{
	return c == ch->client ? &ch->to_client : &ch->to_end;
}

static size_t limit(void)
{
	return (size_t)relay_srv.o->channel_queue;
}

/*
 * The relay's memory budget (--max-memory, see ws.c) is taken: messages being reassembled and
 * queued for topic readers, plus channel queues. A channel does not shed anyone to fit: it
 * stops reading its sender (lossless), and topic members see only their own part.
 */
static bool over_budget(void)
{
	const struct server *s = &relay_srv;

	return s->rx_held + s->queue_held + stats.held > s->mem_budget;
}

/* A websocket on its own connection, not a stream inside HTTP/2 (one write per WRITEABLE). */
static bool own_socket(struct lws *wsi)
{
	return lws_get_network_wsi(wsi) == wsi;
}

/*
 * @c's queue @q passed what a pause lets through: 4 queues, or, for a stream inside HTTP/2
 * (which a pause does not hold back), a read's worth while the memory budget is taken.
 */
static bool unpausable_overflow(const struct conn *c, const struct chan_queue *q)
{
	if (q->held >= 4 * limit() + PAUSE_SLACK)
		return true;
	return q->held >= PAUSE_SLACK && over_budget() && !own_socket(c->wsi);
}

/*
 * Whether @to may be written now, from another connection's RECEIVE rather than from its own
 * WRITEABLE: the conditions of wswrite.c's fast path (can_write_now(), --write-path fast; see
 * there for why lws 4.1 allows it). Waiting for WRITEABLE costs each piece a loop pass, an
 * epoll_wait and four epoll_ctl calls (libuv re-adds the socket to add POLLOUT and to drop it):
 * on the round trip of a small message, twice (bench/connect.sh, docs/benchmarks.md).
 */
static bool can_write_now(const struct conn *to)
{
	return to->wsi && !to->closing && !to->close_sent && !to->ping_due && !to->peer_closed &&
	       strcmp(relay_write_path(), "fast") == 0 && own_socket(to->wsi) &&
	       !lws_partial_buffered(to->wsi) && lws_get_close_length(to->wsi) == 0;
}

static int write_queued(struct lws *wsi, struct conn *c, struct channel *ch, struct chan_queue *q);

/* Write what @to's queue @q holds (just received, nothing older waiting) at once. */
static void write_through(struct channel *ch, struct conn *to, struct chan_queue *q)
{
	if (write_queued(to->wsi, to, ch, q)) {
		/* The socket is unusable: no close frame, lws closes it on its next pass. */
		to->closing = true;
		to->close_reason = NULL;
		lws_set_timeout(to->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
	}
}

static void receive(struct conn *c, const uint8_t *in, size_t len, bool first, bool final,
                    bool binary)
{
	struct channel *ch = c->kind_data;
	struct conn *to;
	struct chan_queue *q;
	bool was_empty;
	int err;

	if (!ch || ch->tag != TAG_CHANNEL || ch->draining)
		return; /* the control connection says nothing; a draining side has no reader */
	to = other(ch, c);
	q = c == ch->client ? &ch->to_end : &ch->to_client;
	was_empty = !chan_queue_peek(q);
	stats.held -= q->held;
	err = chan_queue_add(q, in, len, first, final, binary);
	stats.held += q->held;
	if (err) {
		relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
		return;
	}
	if (unpausable_overflow(c, q)) {
		/* Pausing did not hold the sender back: lws 4.1 ignores rx flow control inside
		 * HTTP/2. Memory stays bounded: the channel ends visibly rather than grow. */
		logt_warn(ch->name, "%s: queue of %zu bytes despite the pause: closing", c->tag,
		          q->held);
		relay_conn_close(c, RELAY_CLOSE_TRY_AGAIN, "channel queue full (HTTP/2)");
		return;
	}
	if (to && was_empty && can_write_now(to))
		write_through(ch, to, q);
	if (q->held >= limit() || over_budget())
		relay_hub_flow(c, true); /* resumed when @to has written half of it */
	if (to && chan_queue_peek(q))
		lws_callback_on_writable(to->wsi);
}

static int write_piece(struct lws *wsi, struct chan_piece *p)
{
	int flags =
	        p->first ? (p->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) : LWS_WRITE_CONTINUATION;

	if (!p->final)
		flags |= LWS_WRITE_NO_FIN;
	return lws_write(wsi, p->data + LWS_PRE, p->len, (enum lws_write_protocol)flags) <
	                       (int)p->len
	               ? -1
	               : 0;
}

/* Write pieces of @q to @c (more than one only on a socket of its own); 0 or -1. */
static int write_queued(struct lws *wsi, struct conn *c, struct channel *ch, struct chan_queue *q)
{
	struct chan_piece *p;
	uint64_t *count = c == ch->client ? &ch->out_client : &ch->out_end;

	for (int i = 0; (p = chan_queue_peek(q)) && i < WRITES_MAX; i++) {
		if (i &&
		    (!own_socket(wsi) || lws_partial_buffered(wsi) || lws_send_pipe_choked(wsi)))
			break;
		if (write_piece(wsi, p)) {
			logt_info(c->tag, "write failed: closing");
			return -1;
		}
		c->writes++;
		*count += p->len;
		*(c == ch->client ? &stats.bytes_to_client : &stats.bytes_to_host) += p->len;
		stats.held -= q->held;
		chan_queue_pop(q);
		stats.held += q->held;
	}
	return 0;
}

static int channel_writeable(struct lws *wsi, struct conn *c, struct channel *ch)
{
	struct chan_queue *q = queue_for(ch, c);
	struct conn *from = other(ch, c);

	if (write_queued(wsi, c, ch, q))
		return -1;
	/* Under the memory budget a channel resumes only once its queue is empty: each then
	 * holds at most a read's worth, and none waits for a resume that nothing would bring. */
	if (from && from->rx_paused && !from->closing && q->held <= limit() / 2 &&
	    (!over_budget() || !chan_queue_peek(q)))
		relay_hub_flow(from, false);
	if (chan_queue_peek(q))
		lws_callback_on_writable(wsi);
	else if (ch->draining)
		relay_conn_close(c, ch->close_code, ch->close_reason);
	return 0;
}

static int writeable(struct lws *wsi, struct conn *c)
{
	struct host *h = c->kind_data;

	if (!h)
		return 0;
	if (h->tag == TAG_HOST)
		return control_writeable(wsi, h);
	return channel_writeable(wsi, c, c->kind_data);
}

/*
 * The code to pass on when @c closes: ours when the relay closed it, else the peer's. What a
 * close frame may not carry (RFC 6455 section 7.4.1) is mapped: no code in the peer's frame
 * (1005) becomes 1000; no close frame at all (1006: reset, vanished, a failed write) 1001.
 */
static int passed_code(const struct conn *c, const char **reason)
{
	int code = c->peer_close_code;

	*reason = "closed by the other side";
	if (c->closing && c->close_reason) {
		*reason = c->close_reason;
		return c->close_code;
	}
	if (c->closing || !c->peer_closed || code == 1006 || code == 1015) {
		*reason = "the other side went away";
		return 1001;
	}
	if (code == 0 || code == 1005)
		return 1000;
	return code < 1000 || code >= 5000 ? 1001 : code;
}

static void channel_closed(struct conn *c, struct channel *ch)
{
	struct conn *left = other(ch, c);
	const char *reason;
	int code = passed_code(c, &reason);

	if (c == ch->client)
		ch->client = NULL;
	else
		ch->end = NULL;
	queue_clear(queue_for(ch, c)); /* nobody to read it */
	if (left && !ch->draining) {
		ch->draining = true;
		ch->close_code = code;
		ch->close_reason = reason;
		logt_info(ch->name, "%s closed (%d): closing %s after its queue", c->tag, code,
		          left->tag);
		relay_hub_flow(left, false); /* what it sends now is dropped: let lws read it */
		if (chan_queue_peek(queue_for(ch, left))) {
			lws_sul_schedule(relay_srv.ctx, 0, &ch->sul, drain_overdue,
			                 (lws_usec_t)DRAIN_MS * 1000);
			lws_callback_on_writable(left->wsi);
		} else {
			relay_conn_close(left, code, ch->close_reason);
		}
	}
	channel_tidy(ch);
}

static void closed(struct conn *c)
{
	struct host *h = c->kind_data;

	if (!h)
		return;
	c->kind_data = NULL;
	if (h->tag == TAG_HOST)
		control_closed(c, h);
	else
		channel_closed(c, (struct channel *)h);
}

/* ---- reports ---- */

json_t *relay_channel_json(const struct conn *c)
{
	const struct host *h = c->kind_data;
	const struct channel *ch = c->kind_data;
	bool is_client;

	if (!h)
		return NULL;
	if (h->tag == TAG_HOST)
		return json_pack("{s:s, s:s, s:I, s:I}", "kind", "connect", "role", "host",
		                 "channels", (json_int_t)h->nchannels, "waiting_messages",
		                 (json_int_t)h->out_n);
	is_client = c == ch->client;
	/* tx: from the relay to this side; rx: from this side (as for topic members) */
	return json_pack(
	        "{s:s, s:s, s:s, s:s, s:b, s:{s:{s:I}, s:{s:I}, s:I, s:b}}", "kind", "connect",
	        "role", is_client ? "client" : "channel-host", "channel", ch->name, "client",
	        ch->client_label, "paired", ch->paired, "stats", "tx", "bytes",
	        (json_int_t)(is_client ? ch->out_client : ch->out_end), "rx", "bytes",
	        (json_int_t)(is_client ? ch->to_end.in_bytes : ch->to_client.in_bytes),
	        "queued_bytes", (json_int_t)(is_client ? ch->to_client.held : ch->to_end.held),
	        "paused", c->rx_paused);
}

size_t relay_channel_held(void)
{
	return stats.held;
}

void relay_channel_metrics(FILE *f)
{
	size_t nhosts = 0, held = stats.held;

	for (const struct host *h = hosts; h; h = h->next)
		nhosts += h->control != NULL;
	fprintf(f,
	        "# HELP relay_channel_hosts Hosts with a control connection (/connect).\n"
	        "# TYPE relay_channel_hosts gauge\nrelay_channel_hosts %zu\n"
	        "# HELP relay_channels Private channels open now (waiting or paired).\n"
	        "# TYPE relay_channels gauge\nrelay_channels %zu\n"
	        "# HELP relay_channel_queued_bytes Bytes queued in channels, both ways.\n"
	        "# TYPE relay_channel_queued_bytes gauge\nrelay_channel_queued_bytes %zu\n",
	        nhosts, stats.open, held);
	fprintf(f,
	        "# HELP relay_channels_total Private channels by outcome.\n"
	        "# TYPE relay_channels_total counter\n"
	        "relay_channels_total{state=\"opened\"} %" PRIu64 "\n"
	        "relay_channels_total{state=\"paired\"} %" PRIu64 "\n"
	        "relay_channels_total{state=\"host_silent\"} %" PRIu64 "\n",
	        stats.opened, stats.paired, stats.timed_out);
	fprintf(f,
	        "# HELP relay_channel_bytes_total Payload bytes written through channels.\n"
	        "# TYPE relay_channel_bytes_total counter\n"
	        "relay_channel_bytes_total{to=\"host\"} %" PRIu64 "\n"
	        "relay_channel_bytes_total{to=\"client\"} %" PRIu64 "\n",
	        stats.bytes_to_host, stats.bytes_to_client);
}

const struct relay_kind relay_kind_channel = {
        .name = "connect",
        .admit = chan_admit,
        .established = established,
        .receive = receive,
        .writeable = writeable,
        .closed = closed,
};
