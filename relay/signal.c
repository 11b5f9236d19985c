/*
 * relay/signal: /signal/{realm}, WebRTC signaling (issue 13). Peers of a realm address each other
 * by id (the token's sub); the server writes "from", delivers in order per sender, announces
 * presence, and keeps a `peers` claim's restriction both ways. It never forwards media: only the
 * JSON that lets two peers connect directly (pkg/sigmsg parses and writes it).
 *
 * A peer:  access call (ticket: sub + peers claim, beside the code)
 *            -> redemption (admit: 409 while that id is connected)
 *            -> established (ticket taken, listed in its realm, welcome, join to others)
 *            -> open (receive: check, deliver; writeable: one queued frame)
 *            -> closed (unlisted, leave to others; at our close frame or at CLOSED)
 */
#define LOG_MODULE "signal"
#include "relay/signal.h"
#include "relay/cluster.h"
#include "pkg/log/log.h"
#include "pkg/sigmsg/sigmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define PEERS_CLAIM_MAX 4096 /* ids in a token's peers claim */
#define PEER_BUCKETS    16384
#define REALM_BUCKETS   1024
#define TICKET_BUCKETS  1024
#define TICKET_SLACK_MS 5000 /* a ticket outlives its code: redemption always finds it */

/* What the token said that a code's grant cannot carry, from the access call to the upgrade. */
struct ticket {
	struct ticket *next;      /* hash chain */
	struct ticket *fifo_next; /* by expiry: every ticket lives as long */
	uint64_t id;
	int64_t expires_ms; /* monotonic */
	char *sub;
	char **allow; /* sorted; NULL: no peers claim */
	size_t n_allow;
	bool gone; /* taken or dropped, still in the FIFO */
};

struct realm {
	struct realm *next; /* hash chain */
	struct peer *peers;
	size_t n;
	char name[GRANT_TOPIC];
};

struct peer {
	struct conn *c;
	struct realm *realm;
	struct peer *hnext;         /* PEER_BUCKETS chain */
	struct peer *rnext, *rprev; /* realm's list */
	char id[SIGMSG_ID_MAX + 1];
	char **allow; /* sorted; NULL: anyone in the realm */
	size_t n_allow;
	struct sig_out out;
	struct buf rx; /* a message arriving in fragments */
	bool rx_skip;  /* the message being received is too large or binary: skipped to its end */
	const char *rx_skip_code, *rx_skip_why;
	double tokens; /* rate limit: a bucket of signal_rate a second, twice that deep */
	int64_t tokens_ms;
	uint64_t delivered, refused;
};

static struct peer *peer_tab[PEER_BUCKETS];
static struct realm *realm_tab[REALM_BUCKETS];
static struct ticket *ticket_tab[TICKET_BUCKETS];
static struct ticket *fifo_head, *fifo_tail;
static size_t n_tickets;
static uint64_t next_ticket;

static unsigned hash2(const char *a, const char *b)
{
	unsigned h = 2166136261u; /* FNV-1a over a, NUL, b */

	for (const char *p = a; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ 0) * 16777619u;
	for (const char *p = b; p && *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

/* ---- tickets ---- */

static void ticket_free(struct ticket *t)
{
	sigmsg_ids_free(t->allow, t->n_allow);
	free(t->sub);
	free(t);
}

static void ticket_unhash(struct ticket *t)
{
	struct ticket **pp = &ticket_tab[t->id % TICKET_BUCKETS];

	while (*pp && *pp != t)
		pp = &(*pp)->next;
	if (*pp)
		*pp = t->next;
	t->gone = true;
	n_tickets--;
}

/* Forget tickets past their time (a code never redeemed); free those taken. */
static void tickets_expire(int64_t now_ms)
{
	struct ticket *t;

	while ((t = fifo_head) && (t->gone || t->expires_ms < now_ms)) {
		fifo_head = t->fifo_next;
		if (!fifo_head)
			fifo_tail = NULL;
		if (!t->gone)
			ticket_unhash(t);
		ticket_free(t);
	}
}

static struct ticket *ticket_find(uint64_t id)
{
	for (struct ticket *t = ticket_tab[id % TICKET_BUCKETS]; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

/* A new ticket holding @sub and @allow (taken over); 0 when full or out of memory. */
static uint64_t ticket_add(struct server *s, const char *sub, char **allow, size_t n_allow)
{
	struct ticket *t;
	int64_t now = relay_mono_ms();

	tickets_expire(now);
	if (n_tickets >= (size_t)s->o->max_codes || !(t = calloc(1, sizeof(*t))))
		goto fail;
	if (!(t->sub = strdup(sub))) {
		free(t);
		goto fail;
	}
	t->id = ++next_ticket;
	t->expires_ms = now + s->o->code_ttl + TICKET_SLACK_MS;
	t->allow = allow;
	t->n_allow = n_allow;
	t->next = ticket_tab[t->id % TICKET_BUCKETS];
	ticket_tab[t->id % TICKET_BUCKETS] = t;
	if (fifo_tail)
		fifo_tail->fifo_next = t;
	else
		fifo_head = t;
	fifo_tail = t;
	n_tickets++;
	return t->id;
fail:
	sigmsg_ids_free(allow, n_allow);
	return 0;
}

/* ---- realms and peers ---- */

static struct realm *realm_find(const char *name)
{
	for (struct realm *r = realm_tab[hash2(name, NULL) % REALM_BUCKETS]; r; r = r->next)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

static struct realm *realm_get(const char *name)
{
	struct realm *r = realm_find(name);
	unsigned h = hash2(name, NULL) % REALM_BUCKETS;

	if (r || !(r = calloc(1, sizeof(*r))))
		return r;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->next = realm_tab[h];
	realm_tab[h] = r;
	return r;
}

static void realm_drop_if_empty(struct realm *r)
{
	struct realm **pp = &realm_tab[hash2(r->name, NULL) % REALM_BUCKETS];

	if (r->n)
		return;
	while (*pp && *pp != r)
		pp = &(*pp)->next;
	if (*pp)
		*pp = r->next;
	free(r);
}

static struct peer *peer_find(const char *realm, const char *id)
{
	for (struct peer *p = peer_tab[hash2(realm, id) % PEER_BUCKETS]; p; p = p->hnext)
		if (strcmp(p->id, id) == 0 && strcmp(p->realm->name, realm) == 0)
			return p;
	return NULL;
}

static void peer_link(struct realm *r, struct peer *p)
{
	unsigned h = hash2(r->name, p->id) % PEER_BUCKETS;

	p->realm = r;
	p->hnext = peer_tab[h];
	peer_tab[h] = p;
	p->rprev = NULL;
	p->rnext = r->peers;
	if (r->peers)
		r->peers->rprev = p;
	r->peers = p;
	r->n++;
}

static void peer_unlink(struct peer *p)
{
	struct peer **pp = &peer_tab[hash2(p->realm->name, p->id) % PEER_BUCKETS];

	while (*pp && *pp != p)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = p->hnext;
	if (p->rprev)
		p->rprev->rnext = p->rnext;
	else
		p->realm->peers = p->rnext;
	if (p->rnext)
		p->rnext->rprev = p->rprev;
	p->realm->n--;
}

/* @a's claim lets it see @b's id. */
static bool allows(const struct peer *a, const char *id)
{
	return !a->allow || sigmsg_ids_have(a->allow, a->n_allow, id);
}

/* @a and a peer @id at another instance, whose claim is @allow, may see each other. */
static bool may_see_remote(const struct peer *a, const char *id, char *const *allow, size_t n)
{
	return strcmp(a->id, id) != 0 && allows(a, id) &&
	       (!allow || sigmsg_ids_have(allow, n, a->id));
}

/* @id is connected to @realm here or at another instance. */
static bool connected(const char *realm, const char *id)
{
	return peer_find(realm, id) || relay_cluster_signal_peer(realm, id, NULL, NULL);
}

/* @a and @b may address and see each other: both claims must allow it. */
static bool may_see(const struct peer *a, const struct peer *b)
{
	return a != b && allows(a, b->id) && allows(b, a->id);
}

static void send_to(struct peer *p, char *s)
{
	sig_out_push(p->c, &p->out, s);
}

static void send_error(struct peer *p, const char *code, const char *message, json_t *ref)
{
	size_t n = 0;

	p->refused++;
	send_to(p, sigmsg_error(code, message, ref, &n));
}

/* Tell every peer that may see @p that it joined or left (@type). */
static void announce(struct peer *p, const char *type)
{
	for (struct peer *q = p->realm->peers; q; q = q->rnext) {
		size_t n = 0;

		if (may_see(p, q))
			send_to(q, sigmsg_presence(type, p->id, &n));
	}
}

/* ---- the access call and redemption ---- */

/* The peer id and peers claim of @cl into a ticket; NULL, or the reason for a 403 (*status). */
static const char *ticket_for(struct server *s, const struct rjwt_claims *cl, uint64_t *ticket,
                              int *status)
{
	char **allow;
	size_t n_allow;
	int err;

	*status = 403;
	if (!cl->sub || !sigmsg_valid_id(cl->sub, strlen(cl->sub)))
		return "the token's sub (the peer id) must be 1-128 printable characters";
	err = sigmsg_peers_claim(cl->json, PEERS_CLAIM_MAX, &allow, &n_allow);
	if (err == -EINVAL)
		return "the token's peers claim must be an array of peer ids (at most 4096)";
	*status = 503;
	if (err)
		return "out of memory";
	*ticket = ticket_add(s, cl->sub, allow, n_allow);
	return *ticket ? NULL : "too many pending access codes, try again";
}

static void ticket_drop(uint64_t id)
{
	struct ticket *t = ticket_find(id);

	if (t)
		ticket_unhash(t);
}

int relay_signal_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                        const char *rest)
{
	struct rjwt_claims cl;
	struct grant g = {0};
	char code[CODE_LEN + 1];
	const char *why;
	int status;

	if (relay_access_not_post(wsi, c, m, &status))
		return status;
	if (!relay_valid_topic(rest))
		return relay_respond_error(wsi, c, 400,
		                           "realm must be 1-127 characters of A-Z a-z 0-9 - . _ ~");
	if (!relay_access_grant(s, wsi, c, rest, "signal", true, &cl, &g, &status))
		return status;
	if (cl.sub && connected(rest, cl.sub)) {
		why = RELAY_WHY_PEER_CONNECTED;
		status = 409;
	} else {
		why = ticket_for(s, &cl, &g.ticket, &status);
	}
	rjwt_claims_release(&cl);
	if (why) {
		log_info("signal access to '%s' refused: %s", rest, why);
		return relay_respond_error(wsi, c, status, why);
	}
	if (relay_issue_code(s, &g, ISSUE_LOCAL, code)) {
		ticket_drop(g.ticket); /* nobody can redeem it */
		return relay_respond_error(wsi, c, 503, RELAY_WHY_NO_CODE);
	}
	return relay_answer_issued(s, wsi, c, &g, NULL, code);
}

static int admit(const struct grant *g, const char **why)
{
	struct ticket *t = ticket_find(g->ticket);

	if (!t) {
		*why = "code unknown, used or expired";
		return 401;
	}
	if (connected(g->topic, t->sub)) {
		*why = RELAY_WHY_PEER_CONNECTED;
		return 409;
	}
	return 0;
}

/* ---- the websocket ---- */

struct idlist {
	const struct peer *p;
	const char **ids;
	size_t k, cap;
	bool oom;
};

static void idlist_add(struct idlist *l, const char *id)
{
	const char **more;

	if (l->k == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 16;
		more = realloc(l->ids, l->cap * sizeof(*more));
		if (!more) {
			l->oom = true;
			return;
		}
		l->ids = more;
	}
	l->ids[l->k++] = id;
}

static void welcome_remote(const char *id, char *const *allow, size_t n, void *arg)
{
	struct idlist *l = arg;

	if (may_see_remote(l->p, id, allow, n))
		idlist_add(l, id);
}

/* The peers @p may see, here and at the other instances. */
static void send_welcome(struct server *s, struct peer *p)
{
	struct idlist l = {.p = p};
	size_t n = 0;

	for (struct peer *q = p->realm->peers; q; q = q->rnext)
		if (may_see(p, q))
			idlist_add(&l, q->id);
	relay_cluster_signal_each(p->realm->name, welcome_remote, &l);
	send_to(p,
	        l.oom ? NULL
	              : sigmsg_welcome(p->id, l.ids, l.k, relay_ice_servers(s, &p->c->grant), &n));
	free(l.ids);
}

static int established(struct server *s, struct conn *c)
{
	struct ticket *t = ticket_find(c->grant.ticket);
	struct realm *r;
	struct peer *p;

	if (!t) { /* inside HTTP/2 the upgrade was not checked by admit() */
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "access expired");
		return 0;
	}
	if (connected(c->grant.topic, t->sub)) {
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "peer-connected");
		ticket_unhash(t);
		return 0;
	}
	r = realm_get(c->grant.topic);
	p = r ? calloc(1, sizeof(*p)) : NULL;
	if (!p) {
		if (r)
			realm_drop_if_empty(r);
		relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
		return 0;
	}
	p->c = c;
	snprintf(p->id, sizeof(p->id), "%s", t->sub);
	p->allow = t->allow; /* taken from the ticket */
	p->n_allow = t->n_allow;
	t->allow = NULL;
	t->n_allow = 0;
	ticket_unhash(t);
	buf_init(&p->rx, (size_t)s->o->signal_max_message);
	p->tokens = 2.0 * (double)s->o->signal_rate;
	p->tokens_ms = relay_mono_ms();
	c->kind_data = p;
	peer_link(r, p);
	send_welcome(s, p);
	announce(p, "join");
	relay_cluster_signal_join(r->name, p->id, p->allow, p->n_allow);
	logt_info(c->tag, "signaling peer '%s' joined realm '%s' from %s (%zu peers)", p->id,
	          r->name, c->remote, r->n);
	return 0;
}

/* One message may go now (the peer's token bucket). */
static bool rate_take(struct peer *p)
{
	int64_t rate = relay_srv.o->signal_rate, now = relay_mono_ms();
	double burst = 2.0 * (double)rate;

	if (rate <= 0)
		return true;
	if (now > p->tokens_ms) {
		p->tokens += (double)(now - p->tokens_ms) * (double)rate / 1000.0;
		if (p->tokens > burst)
			p->tokens = burst;
		p->tokens_ms = now;
	}
	if (p->tokens < 1.0)
		return false;
	p->tokens -= 1.0;
	return true;
}

/* A whole message from @p: check it and deliver it, or answer with an error. */
static void on_message(struct peer *p, const uint8_t *in, size_t len)
{
	struct sigmsg m;
	struct peer *to = NULL;
	char *const *allow;
	size_t n_allow;
	char *frame;
	json_t *ref = NULL;
	const char *why;
	size_t n = 0;
	bool allowed = rate_take(p); /* every message counts, bad ones too */
	int err = sigmsg_parse(in, len, &m, &why, &ref);

	if (err) {
		if (allowed)
			send_error(p, "bad-message", why, ref);
		else
			send_error(p, "rate-limited", "too many messages: see signal_rate", ref);
		json_decref(ref);
		return;
	}
	if (!allowed) {
		send_error(p, "rate-limited", "too many messages: see signal_rate", m.ref);
	} else if (!p->c->grant.can_write) {
		send_error(p, "forbidden", "the token has no write scope", m.ref);
	} else if (!(to = peer_find(p->realm->name, m.to)) &&
	           relay_cluster_signal_peer(p->realm->name, m.to, &allow, &n_allow) &&
	           may_see_remote(p, m.to, allow, n_allow)) {
		/* at another instance: "from" written here, where the sender is known */
		frame = sigmsg_deliver(&m, p->id, &n);
		if (frame && relay_cluster_signal_send(p->realm->name, m.to, frame) == 0)
			p->delivered++;
		free(frame);
	} else if (!to || !may_see(p, to)) {
		/* The same answer for a hidden peer as for an absent one: nothing leaks. */
		send_error(p, "unknown-peer", "no such peer in this realm", m.ref);
	} else {
		p->delivered++;
		send_to(to, sigmsg_deliver(&m, p->id, &n));
	}
	sigmsg_release(&m);
}

static void skip_message(struct peer *p, const char *code, const char *why)
{
	p->rx_skip = true;
	p->rx_skip_code = code;
	p->rx_skip_why = why;
	p->rx.len = 0;
}

static void receive(struct conn *c, const uint8_t *in, size_t len, bool first, bool final,
                    bool binary)
{
	struct peer *p = c->kind_data;
	size_t max = (size_t)relay_srv.o->signal_max_message;

	if (!p)
		return;
	if (first) {
		p->rx.len = 0;
		p->rx_skip = false;
		if (binary)
			skip_message(p, "bad-message", "messages are JSON text frames");
	}
	if (!p->rx_skip && len > max - p->rx.len)
		skip_message(p, "too-large", "message over signal_max_message bytes");
	if (!p->rx_skip && !(first && final) && buf_add(&p->rx, in, len))
		skip_message(p, "too-large", "message over signal_max_message bytes");
	if (!final)
		return;
	if (p->rx_skip && !rate_take(p))
		send_error(p, "rate-limited", "too many messages: see signal_rate", NULL);
	else if (p->rx_skip)
		send_error(p, p->rx_skip_code, p->rx_skip_why, NULL);
	else if (first)
		on_message(p, in, len); /* one frame: no copy */
	else
		on_message(p, p->rx.p, p->rx.len);
	p->rx.len = 0;
	if (p->rx.cap > 4096)
		buf_release(&p->rx); /* one large message must not pin its buffer */
}

static int writeable(struct lws *wsi, struct conn *c)
{
	struct peer *p = c->kind_data;

	return p ? sig_out_write(wsi, c, &p->out) : 0;
}

static void closed(struct conn *c)
{
	struct peer *p = c->kind_data;
	struct realm *r;

	if (!p)
		return;
	c->kind_data = NULL;
	r = p->realm;
	peer_unlink(p);
	announce(p, "leave");
	relay_cluster_signal_leave(r->name, p->id);
	logt_info(c->tag, "signaling peer '%s' left realm '%s': delivered %llu, refused %llu",
	          p->id, r->name, (unsigned long long)p->delivered, (unsigned long long)p->refused);
	realm_drop_if_empty(r);
	sig_out_clear(&p->out);
	buf_release(&p->rx);
	sigmsg_ids_free(p->allow, p->n_allow);
	free(p);
}

const struct relay_kind relay_kind_signal = {
        .name = "signal",
        .established = established,
        .receive = receive,
        .writeable = writeable,
        .closed = closed,
        .admit = admit,
};

void relay_signal_group_expired(struct server *s, const char *app, const char *id)
{
	struct realm *r = realm_find(app);

	(void)s;
	for (struct peer *p = r ? r->peers : NULL; p; p = p->rnext) {
		size_t n = 0;

		send_to(p, sigmsg_group_expired(id, &n));
	}
}

/* ---- other instances (cluster_signal.c) ---- */

void relay_signal_remote_presence(const char *realm, const char *id, char *const *allow,
                                  size_t n_allow, const char *type)
{
	struct realm *r = realm_find(realm);

	for (struct peer *q = r ? r->peers : NULL; q; q = q->rnext) {
		size_t n = 0;

		if (may_see_remote(q, id, allow, n_allow))
			send_to(q, sigmsg_presence(type, id, &n));
	}
}

void relay_signal_remote_frame(const char *realm, const char *to, const char *frame)
{
	struct peer *p = peer_find(realm, to);
	char *copy;

	if (!p)
		return; /* left meanwhile */
	copy = strdup(frame);
	send_to(p, copy);
}

void relay_signal_conflict(const char *realm, const char *id)
{
	struct peer *p = peer_find(realm, id);

	if (!p)
		return;
	logt_info(p->c->tag, "signaling peer '%s' of realm '%s' is connected at another instance",
	          id, realm);
	relay_conn_close(p->c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "peer-connected");
}

bool relay_signal_is_local(const char *realm, const char *id)
{
	return peer_find(realm, id) != NULL;
}

void relay_signal_each_local(void (*cb)(const char *realm, const char *id, char *const *allow,
                                        size_t n, void *arg),
                             void *arg)
{
	for (size_t i = 0; i < PEER_BUCKETS; i++)
		for (struct peer *p = peer_tab[i]; p; p = p->hnext)
			cb(p->realm->name, p->id, p->allow, p->n_allow, arg);
}

json_t *relay_signal_json(const struct conn *c)
{
	const struct peer *p = c->kind_data;

	if (!p)
		return NULL;
	/* delivered: messages this peer sent that reached another peer; refused: that did not */
	return json_pack("{s:s, s:s, s:s, s:I, s:I}", "kind", "signal", "realm", p->realm->name,
	                 "peer", p->id, "delivered", (json_int_t)p->delivered, "refused",
	                 (json_int_t)p->refused);
}
