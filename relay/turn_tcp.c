/*
 * relay/turn_tcp: TCP allocations (RFC 6062). A TCP allocation's relayed address is a listening
 * TCP socket in --turn-relay-ports. A peer connection is made by Connect (towards a peer the
 * client has a permission for) or accepted from such a peer and announced to the client with a
 * ConnectionAttempt indication; either way it waits up to TURN_TCP_TIMEOUT_MS for the client to
 * open a data connection and send ConnectionBind, after which that connection carries the bytes
 * both ways. TCP is lossless, so nothing is dropped: each direction's queue is bounded and the
 * sending side is not read while the other side's queue is full. --turn-bandwidth is applied the
 * same way: a side is not read for the rest of the second once the allocation spent its bytes
 * that way, and so is --max-memory: the queues to peers count in it as TURN's output to clients
 * does (turn_stream.c), and a side is not read while the budget has no room for what it would
 * queue. A half-close is passed on once the queued bytes are written; the two sockets close
 * together.
 */
#define LOG_MODULE "turn"
#include "relay/turn_internal.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

/* Bytes read from a peer at once: within one TLS record, so that what turn_stream_send() queues
 * for them stays within the room the client's queue was checked for. */
#define PEER_READ_MAX 16000
/* A client queue this full stops reading its peer (room left for a read and its TLS record). */
#define CLIENT_HIGH (TURN_STREAM_OUT_MAX - 4 * PEER_READ_MAX)
/* What one read of the client can add past TURN_TCP_OUT_MAX before reading stops: a 64 KiB read,
 * or with TLS that and a record held back from the read before. */
#define OUT_SLACK (2 * 65536)

enum conn_state { C_CONNECTING, C_UNBOUND, C_BOUND };

struct turn_tcp_conn {
	struct turn_tcp_conn *next, *prev; /* the allocation's */
	struct turn_tcp_conn *hnext;       /* in by_id[] */
	struct turn_alloc *al;
	uint32_t id;
	enum conn_state state;
	uv_tcp_t peer;
	uv_connect_t creq;
	uv_write_t wr;
	uv_shutdown_t sh;
	struct sockaddr_storage peer_addr;
	int64_t deadline_ms;   /* monotonic: the Connect's bound, then the ConnectionBind's */
	uint8_t tid[STUN_TID]; /* the Connect to answer, with the key it was signed with */
	uint8_t key[32];
	size_t key_len;
	bool sha256;
	struct turn_stream *client; /* the data connection, once bound */
	struct buf out, inflight;   /* to the peer */
	size_t held; /* out.cap + inflight.cap as last counted in the memory budget */
	/* a side is read unless it ended, the other side's queue is full, the allocation spent its
	 * --turn-bandwidth that way this second, or the memory budget has no room (the last two
	 * looked at again by turn_tcp_expire() each second) */
	bool reading, client_reading, peer_full, client_full, peer_bw, client_bw, peer_mem,
	        client_mem;
	bool writing, peer_eof, client_eof, shut_wanted, shut_done, closing;
	bool linked; /* numbered, in its allocation's list and by_id[] (conn_link()) */
};

struct turn_tcp {
	uv_tcp_t listener;             /* first: its close callback frees the whole */
	struct sockaddr_storage local; /* the listener's address as bound */
	struct turn_tcp_conn *conns;
	size_t n;
};

static size_t nconns; /* every allocation's, for /metrics */
/* Connections by id: ConnectionBind looks one up before it is authenticated, so the lookup
 * must not walk every allocation. Ids are random: their low bits spread them. */
#define ID_BUCKETS 4096
static struct turn_tcp_conn *by_id[ID_BUCKETS];
static uint8_t ports_used[65536 / 8]; /* our relayed TCP listeners (see reuse_port()) */

size_t turn_tcp_count(void)
{
	return nconns;
}

static bool port_used(int port)
{
	return ports_used[port / 8] & (1u << (port % 8));
}

static void port_mark(int port, bool used)
{
	if (used)
		ports_used[port / 8] |= (uint8_t)(1u << (port % 8));
	else
		ports_used[port / 8] &= (uint8_t) ~(1u << (port % 8));
}

/*
 * RFC 6062 5.2: a Connect's connection comes from the relayed address, where the allocation's
 * listener is. Linux lets a second socket bind a listening socket's port only when both set
 * SO_REUSEPORT, which would also let two of our listeners share a port and split its peers:
 * ports_used keeps every relayed TCP port to one allocation.
 */
static int reusable_socket(int family)
{
	int one = 1, fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static socklen_t sa_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

/* Logged at most once a minute: the cap protects TURN over TCP/TLS from authenticated users. */
static void log_total_cap(void)
{
	static int64_t logged_ms;

	if (!turn_log_due(&logged_ms, 60000))
		return;
	log_warn("%d TCP allocation connections in all (TURN_TCP_CONNS_TOTAL): refusing more",
	         TURN_TCP_CONNS_TOTAL);
}

static struct turn_tcp_conn *find(uint32_t id)
{
	for (struct turn_tcp_conn *c = by_id[id % ID_BUCKETS]; c; c = c->hnext)
		if (c->id == id)
			return c;
	return NULL;
}

/* ---- connections: made and closed ---- */

static void on_conn_closed(uv_handle_t *h)
{
	struct turn_tcp_conn *c = h->data;

	buf_release(&c->out);
	buf_release(&c->inflight);
	turn_stream_held_update(&c->held, 0);
	free(c);
}

static void conn_close(struct turn_tcp_conn *c, const char *why)
{
	struct turn_tcp *t = c->al->tcp;
	struct turn_stream *st = c->client;
	char addr[64];

	if (c->closing)
		return;
	c->closing = true;
	if (c->linked) {
		struct turn_tcp_conn **pp = &by_id[c->id % ID_BUCKETS];

		while (*pp != c)
			pp = &(*pp)->hnext;
		*pp = c->hnext;
		if (c->prev)
			c->prev->next = c->next;
		else if (t)
			t->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		if (t)
			t->n--;
		nconns--;
	}
	if (st) {
		st->conn = NULL;
		c->client = NULL;
		turn_stream_close(st);
	}
	turn_addr_text((struct sockaddr *)&c->peer_addr, addr, sizeof(addr));
	log_debug("tcp connection %08x of '%s' with %s closed: %s", c->id, c->al->user, addr, why);
	OPENSSL_cleanse(c->key, sizeof(c->key));
	uv_close((uv_handle_t *)&c->peer, on_conn_closed);
}

/* A new connection of @al with its (not yet open) peer handle, not yet numbered or linked (a
 * peer connecting in is checked first); NULL when out of memory. */
static struct turn_tcp_conn *conn_new(struct turn_alloc *al)
{
	struct turn_tcp_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	if (uv_tcp_init(turn_srv.loop, &c->peer)) {
		free(c);
		return NULL;
	}
	c->peer.data = c;
	c->al = al;
	buf_init(&c->out, TURN_TCP_OUT_MAX + OUT_SLACK);
	buf_init(&c->inflight, TURN_TCP_OUT_MAX + OUT_SLACK);
	return c;
}

/* Number @c and link it into its allocation's list and by_id[]. */
static void conn_link(struct turn_tcp_conn *c)
{
	struct turn_tcp *t = c->al->tcp;

	do /* unique among the server's connections, never 0 */
		RAND_bytes((uint8_t *)&c->id, sizeof(c->id));
	while (c->id == 0 || find(c->id));
	c->hnext = by_id[c->id % ID_BUCKETS];
	by_id[c->id % ID_BUCKETS] = c;
	c->next = t->conns;
	if (c->next)
		c->next->prev = c;
	t->conns = c;
	t->n++;
	nconns++;
	c->linked = true;
}

static void answer_connect(struct turn_tcp_conn *c, int code)
{
	struct turn_alloc *al = c->al;
	struct stun_builder b;
	uint8_t out[256];

	stun_build(&b, out, sizeof(out), STUN_CONNECT, code ? STUN_ERROR : STUN_SUCCESS, c->tid);
	stun_add(&b, STUN_A_SOFTWARE, TURN_SOFTWARE, strlen(TURN_SOFTWARE));
	if (code) {
		turn_refuse_count(TR_CONNECT_FAILED);
		stun_add_error(&b, code, "Connection Timeout or Failure");
	} else {
		stun_add_u32(&b, STUN_A_CONNECTION_ID, c->id);
	}
	if (c->sha256)
		stun_add_integrity_sha256(&b, c->key, c->key_len);
	else
		stun_add_integrity(&b, c->key, c->key_len);
	stun_add_fingerprint(&b);
	OPENSSL_cleanse(c->key, sizeof(c->key));
	if (stun_build_end(&b) > 0)
		turn_to_client(al->transport, al->stream, (struct sockaddr *)&al->client, out,
		               b.len);
}

static void on_connected(uv_connect_t *req, int status)
{
	struct turn_tcp_conn *c = req->data;
	char addr[64];

	if (c->closing) /* also UV_ECANCELED: closed while connecting */
		return;
	turn_addr_text((struct sockaddr *)&c->peer_addr, addr, sizeof(addr));
	if (status < 0) {
		log_debug("tcp connect of '%s' to %s failed: %s", c->al->user, addr,
		          uv_strerror(status));
		answer_connect(c, 447);
		conn_close(c, "connect failed");
		return;
	}
	c->state = C_UNBOUND;
	c->deadline_ms = relay_mono_ms() + TURN_TCP_TIMEOUT_MS;
	turn_srv.m.tcp_conns_total++;
	log_debug("tcp connection %08x of '%s' to %s made", c->id, c->al->user, addr);
	answer_connect(c, 0);
}

int turn_tcp_connect(struct turn_alloc *al, const struct sockaddr *peer, const uint8_t *tid,
                     const struct turn_auth *a)
{
	struct turn_tcp *t = al->tcp;
	struct turn_tcp_conn *c;
	int fd;

	for (c = t->conns; c; c = c->next)
		if (turn_addr_equal((struct sockaddr *)&c->peer_addr, peer))
			return 446; /* RFC 6062 5.2: made or being made */
	if (t->n >= TURN_TCP_CONNS_MAX)
		return 508;
	if (nconns >= TURN_TCP_CONNS_TOTAL) {
		log_total_cap();
		return 508;
	}
	c = conn_new(al);
	if (!c)
		return 508;
	conn_link(c);
	memcpy(&c->peer_addr, peer,
	       peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	                                  : sizeof(struct sockaddr_in6));
	memcpy(c->tid, tid, STUN_TID);
	memcpy(c->key, a->key, a->key_len);
	c->key_len = a->key_len;
	c->sha256 = a->sha256;
	c->state = C_CONNECTING;
	c->deadline_ms = relay_mono_ms() + TURN_TCP_TIMEOUT_MS;
	c->creq.data = c;
	fd = reusable_socket(t->local.ss_family);
	if (fd >= 0 && (bind(fd, (struct sockaddr *)&t->local, sa_len(&t->local)) ||
	                uv_tcp_open(&c->peer, fd))) {
		log_warn("cannot bind a tcp connection to the relayed address: %s",
		         strerror(errno));
		close(fd);
		fd = -1;
	}
	if (fd < 0 || uv_tcp_connect(&c->creq, &c->peer, peer, on_connected)) {
		conn_close(c, "cannot connect");
		return 447;
	}
	return 0;
}

/* ---- a peer connecting to the relayed address ---- */

static void connection_attempt(struct turn_tcp_conn *c)
{
	struct turn_alloc *al = c->al;
	struct stun_builder b;
	uint8_t out[128], tid[STUN_TID];

	RAND_bytes(tid, sizeof(tid));
	stun_build(&b, out, sizeof(out), STUN_CONNECTION_ATTEMPT, STUN_INDICATION, tid);
	stun_add(&b, STUN_A_SOFTWARE, TURN_SOFTWARE, strlen(TURN_SOFTWARE));
	stun_add_addr(&b, STUN_A_XOR_PEER_ADDRESS, (struct sockaddr *)&c->peer_addr, true);
	stun_add_u32(&b, STUN_A_CONNECTION_ID, c->id);
	stun_add_fingerprint(&b);
	if (stun_build_end(&b) > 0)
		turn_to_client(al->transport, al->stream, (struct sockaddr *)&al->client, out,
		               b.len);
}

static void on_peer_connection(uv_stream_t *srv, int status)
{
	struct turn_alloc *al = srv->data;
	struct turn_tcp_conn *c;
	int n = sizeof(c->peer_addr);

	if (status < 0 || al->closing || !al->tcp)
		return;
	/* always accepted (libuv stops listening until it is): refused ones are closed at once,
	 * before they are numbered (a stranger's connection costs no id search) */
	c = conn_new(al);
	if (!c) {
		log_warn("out of memory: tcp relay of '%s' stops accepting", al->user);
		return;
	}
	if (uv_accept(srv, (uv_stream_t *)&c->peer) ||
	    uv_tcp_getpeername(&c->peer, (struct sockaddr *)&c->peer_addr, &n))
		return conn_close(c, "accept failed");
	if (!turn_perm_has(al, (struct sockaddr *)&c->peer_addr, relay_mono_ms())) {
		turn_refuse_count(TR_NO_PERMISSION);
		return conn_close(c, "no permission for the peer");
	}
	if (al->tcp->n >= TURN_TCP_CONNS_MAX) {
		turn_refuse_count(TR_CAPACITY);
		return conn_close(c, "connections per allocation (TURN_TCP_CONNS_MAX)");
	}
	if (nconns >= TURN_TCP_CONNS_TOTAL) {
		turn_refuse_count(TR_CAPACITY);
		log_total_cap();
		return conn_close(c, "connections in all (TURN_TCP_CONNS_TOTAL)");
	}
	conn_link(c);
	c->state = C_UNBOUND;
	c->deadline_ms = relay_mono_ms() + TURN_TCP_TIMEOUT_MS;
	turn_srv.m.tcp_conns_total++;
	connection_attempt(c); /* the peer is not read until the client binds */
}

int turn_tcp_relay_open(struct turn_alloc *al)
{
	struct turn *T = &turn_srv;
	int span = T->relay_hi - T->relay_lo + 1, err = -EADDRINUSE, fd = -1;
	struct turn_tcp *t = calloc(1, sizeof(*t));
	socklen_t n;

	if (!t)
		return -ENOMEM;
	t->local = T->listen_addr;
	for (int tries = 0; tries < span && tries < 200; tries++) {
		int port = T->relay_lo + (T->relay_next++ % span);

		if (port_used(port))
			continue;
		if (t->local.ss_family == AF_INET)
			((struct sockaddr_in *)&t->local)->sin_port = htons((uint16_t)port);
		else
			((struct sockaddr_in6 *)&t->local)->sin6_port = htons((uint16_t)port);
		fd = reusable_socket(t->local.ss_family);
		if (fd < 0) {
			err = -EIO;
			break;
		}
		if (bind(fd, (struct sockaddr *)&t->local, sa_len(&t->local)) == 0 &&
		    listen(fd, 64) == 0) {
			err = 0;
			break;
		}
		err = errno == EADDRINUSE || errno == EACCES ? -EADDRINUSE : -EIO;
		close(fd);
		fd = -1;
		if (err != -EADDRINUSE)
			break;
	}
	if (err) {
		free(t);
		return err;
	}
	n = sizeof(t->local);
	getsockname(fd, (struct sockaddr *)&t->local, &n);
	if (uv_tcp_init(T->loop, &t->listener)) {
		close(fd);
		free(t);
		return -ENOMEM;
	}
	t->listener.data = al;
	al->tcp = t;
	port_mark(turn_port_of((struct sockaddr *)&t->local), true);
	if (uv_tcp_open(&t->listener, fd)) {
		close(fd);
		return -EIO; /* turn_alloc_new() closes the listener with the allocation */
	}
	/* uv_listen() on a socket that listens already only starts watching it */
	if (uv_listen((uv_stream_t *)&t->listener, 64, on_peer_connection))
		return -EIO;
	al->relayed = T->has_external ? T->external : t->local;
	if (al->relayed.ss_family == AF_INET)
		((struct sockaddr_in *)&al->relayed)->sin_port =
		        htons(turn_port_of((struct sockaddr *)&t->local));
	else
		((struct sockaddr_in6 *)&al->relayed)->sin6_port =
		        htons(turn_port_of((struct sockaddr *)&t->local));
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct turn_alloc *al = h->data;

	free((struct turn_tcp *)h);
	turn_alloc_release(al); /* a TCP allocation's last handle */
}

void turn_tcp_relay_close(struct turn_alloc *al)
{
	struct turn_tcp *t = al->tcp;

	if (!t)
		return;
	while (t->conns)
		conn_close(t->conns, "allocation ended");
	port_mark(turn_port_of((struct sockaddr *)&t->local), false);
	al->tcp = NULL;
	uv_close((uv_handle_t *)&t->listener, on_listener_closed);
}

static void flow(struct turn_tcp_conn *c);

/*
 * Whether the memory budget has room for what the next read of the client can grow the queue
 * to the peer by: a read is taken whatever it holds (OUT_SLACK: a 64 KiB read, with TLS a record
 * held back), so the check comes before it, for the buffer's doubling, not after.
 */
static bool client_room(const struct turn_tcp_conn *c)
{
	return turn_stream_budget_room(buf_reserved_cap(&c->out, OUT_SLACK) - c->out.cap);
}

void turn_tcp_expire(int64_t now_ms)
{
	for (struct turn_alloc *al = turn_srv.allocs; al; al = al->next) {
		struct turn_tcp_conn *next;

		for (struct turn_tcp_conn *c = al->tcp ? al->tcp->conns : NULL; c; c = next) {
			next = c->next;
			if (c->state == C_BOUND &&
			    (c->peer_bw || c->client_bw || c->peer_mem || c->client_mem)) {
				c->peer_bw = c->client_bw = false; /* a new second's bytes */
				c->peer_mem = false;               /* peer_alloc() looks again */
				c->client_mem = !client_room(c);
				flow(c);
			}
			if (c->state == C_BOUND || c->deadline_ms > now_ms)
				continue;
			if (c->state == C_CONNECTING) {
				answer_connect(c, 447);
				conn_close(c, "connect timed out");
			} else {
				turn_refuse_count(TR_UNBOUND);
				conn_close(c, "no ConnectionBind in time");
			}
		}
	}
}

/* ---- bound: the bytes ---- */

static void maybe_close(struct turn_tcp_conn *c)
{
	if (c->closing || !c->client_eof || !c->peer_eof)
		return;
	if (c->out.len || c->writing || (c->client && turn_stream_queued(c->client)))
		return;
	conn_close(c, "both sides closed");
}

static void on_peer_shut(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status; /* an error shows on the next read */
}

static void peer_shutdown(struct turn_tcp_conn *c)
{
	if (!c->shut_wanted || c->shut_done || c->out.len)
		return;
	c->shut_done = true;
	if (uv_shutdown(&c->sh, (uv_stream_t *)&c->peer, on_peer_shut))
		conn_close(c, "cannot shut the peer connection down");
}

static void peer_write(struct turn_tcp_conn *c);

static void on_peer_written(uv_write_t *w, int status)
{
	struct turn_tcp_conn *c = w->data;

	c->writing = false;
	c->inflight.len = 0;
	if (c->closing)
		return;
	if (status < 0)
		return conn_close(c, "write to the peer failed");
	peer_write(c);
	if (!c->out.len) { /* give back what a burst grew */
		if (c->out.cap > TURN_STREAM_OUT_KEEP)
			buf_release(&c->out);
		if (!c->writing && c->inflight.cap > TURN_STREAM_OUT_KEEP)
			buf_release(&c->inflight);
		turn_stream_held_update(&c->held, c->out.cap + c->inflight.cap);
	}
	if ((c->client_full && c->out.len < TURN_TCP_OUT_MAX / 2) ||
	    (c->client_mem && client_room(c))) {
		if (c->out.len < TURN_TCP_OUT_MAX / 2)
			c->client_full = false;
		c->client_mem = !client_room(c);
		flow(c);
	}
	peer_shutdown(c);
	maybe_close(c);
}

static void peer_write(struct turn_tcp_conn *c)
{
	uv_buf_t b;

	if (c->writing || c->out.len == 0 || c->closing)
		return;
	b = turn_take_queued(&c->out, &c->inflight);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->peer, &b, 1, on_peer_written))
		return conn_close(c, "write to the peer failed");
	c->writing = true;
}

/* A read only when its bytes fit the client's queue and the memory budget; else none (libuv
 * then calls on_peer_read() with UV_ENOBUFS): nothing read is ever dropped. */
static void peer_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct turn_tcp_conn *c = h->data;
	bool fits = c->client && turn_stream_fits(c->client, PEER_READ_MAX);

	(void)suggested;
	*buf = uv_buf_init((char *)turn_srv.rx + 64, fits ? PEER_READ_MAX : 0);
}

static void peer_read(struct turn_tcp_conn *c, bool on);

static void on_peer_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct turn_tcp_conn *c = s->data;
	struct turn_alloc *al = c->al;

	if (c->closing || nread == 0)
		return;
	if (nread == UV_ENOBUFS) { /* peer_alloc() found no room */
		c->peer_mem = true;
		turn_srv.m.tcp_pauses++;
		return flow(c);
	}
	if (nread == UV_EOF) {
		peer_read(c, false);
		c->peer_eof = true;
		turn_stream_shutdown(c->client); /* after what is queued to it */
		return maybe_close(c);
	}
	if (nread < 0)
		return conn_close(c, "peer connection lost");
	if (turn_stream_send(c->client, (const uint8_t *)buf->base, (size_t)nread, 0, false))
		/* peer_alloc() checked: only websockets growing since can have taken the room */
		return conn_close(c, "client data connection full or over the memory budget");
	if (c->closing)
		return;
	al->bytes[1] += (uint64_t)nread;
	turn_srv.m.from_peer_bytes += (uint64_t)nread;
	turn_srv.m.tcp_from_peer_bytes += (uint64_t)nread;
	c->peer_full = turn_stream_queued(c->client) >= CLIENT_HIGH;
	c->peer_bw = !turn_bw_take(al, 1, (size_t)nread, relay_mono_ms());
	if (c->peer_full || c->peer_bw) {
		turn_srv.m.tcp_pauses++;
		flow(c);
	}
}

static void peer_read(struct turn_tcp_conn *c, bool on)
{
	if (c->closing || on == c->reading || (on && c->peer_eof))
		return;
	c->reading = on;
	if (!on)
		uv_read_stop((uv_stream_t *)&c->peer);
	else if (uv_read_start((uv_stream_t *)&c->peer, peer_alloc, on_peer_read))
		conn_close(c, "cannot read the peer connection");
}

/* Read each side or not, as its flags say. */
static void flow(struct turn_tcp_conn *c)
{
	bool client_on = !c->client_eof && !c->client_full && !c->client_bw && !c->client_mem;

	if (c->closing || c->state != C_BOUND)
		return;
	peer_read(c, !c->peer_eof && !c->peer_full && !c->peer_bw && !c->peer_mem);
	if (!c->closing && c->client && client_on != c->client_reading) {
		c->client_reading = client_on;
		turn_stream_read(c->client, client_on);
	}
}

struct turn_alloc *turn_tcp_unbound(uint32_t id)
{
	struct turn_tcp_conn *c = find(id);

	return c && !c->closing && c->state == C_UNBOUND ? c->al : NULL;
}

void turn_tcp_bind(uint32_t id, struct turn_stream *st)
{
	struct turn_tcp_conn *c = find(id);

	if (!c || c->closing || c->state != C_UNBOUND || st->closing)
		return;
	c->state = C_BOUND;
	c->client = st;
	c->client_reading = true; /* the stream reads already */
	st->conn = c;
	uv_tcp_nodelay(&c->peer, 1);
	log_debug("tcp connection %08x of '%s' bound", c->id, c->al->user);
	c->client_mem = !client_room(c); /* its first read too */
	peer_read(c, true);
	flow(c);
}

void turn_tcp_from_client(struct turn_stream *st, const uint8_t *p, size_t len)
{
	struct turn_tcp_conn *c = st->conn;
	struct turn_alloc *al;

	if (!c || c->closing || len == 0)
		return;
	al = c->al;
	/* taken whatever the budget says (it was read; client_room() looked before): counted */
	if (buf_add(&c->out, p, len))
		return conn_close(c, "peer queue full"); /* reading stops well before */
	turn_stream_held_update(&c->held, c->out.cap + c->inflight.cap);
	al->bytes[0] += len;
	turn_srv.m.to_peer_bytes += len;
	turn_srv.m.tcp_to_peer_bytes += len;
	peer_write(c);
	if (c->closing)
		return;
	c->client_full = c->out.len >= TURN_TCP_OUT_MAX;
	c->client_bw = !turn_bw_take(al, 0, len, relay_mono_ms());
	c->client_mem = !client_room(c); /* room for another read */
	if (c->client_full || c->client_bw || c->client_mem) {
		turn_srv.m.tcp_pauses++;
		flow(c);
	}
}

void turn_tcp_client_eof(struct turn_stream *st)
{
	struct turn_tcp_conn *c = st->conn;

	if (!c || c->closing || c->client_eof)
		return;
	c->client_eof = true;
	c->shut_wanted = true;
	flow(c); /* libuv stopped reading at the EOF already */
	peer_shutdown(c);
	maybe_close(c);
}

void turn_tcp_client_drained(struct turn_stream *st)
{
	struct turn_tcp_conn *c = st->conn;

	if (!c || c->closing)
		return;
	if ((c->peer_full && turn_stream_queued(st) < CLIENT_HIGH / 2) || c->peer_mem) {
		c->peer_full = c->peer_mem = false; /* peer_alloc() looks at the budget again */
		flow(c);
	}
	maybe_close(c);
}

void turn_tcp_client_closed(struct turn_stream *st)
{
	struct turn_tcp_conn *c = st->conn;

	st->conn = NULL;
	if (c) {
		c->client = NULL;
		conn_close(c, "client data connection closed");
	}
}
