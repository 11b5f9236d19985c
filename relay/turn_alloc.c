/*
 * relay/turn_alloc: allocations (RFC 8656 6), each with its relayed UDP socket on the loop, its
 * permissions and channel bindings, lifetimes on the monotonic clock and the credential's expiry
 * on the wall clock (an allocation never outlives the username that made it). UDP allocations
 * are found by the client's address in a hash; TCP/TLS ones hang off their connection.
 */
#define LOG_MODULE "turn"
#include "relay/turn_internal.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

static size_t hash_of(const struct sockaddr *sa, size_t size)
{
	uint8_t ip[16];
	uint64_t h = 1469598103934665603ull;

	turn_ip16(sa, ip);
	for (int k = 0; k < 16; k++)
		h = (h ^ ip[k]) * 1099511628211ull;
	h = (h ^ turn_port_of(sa)) * 1099511628211ull;
	return (size_t)(h % size);
}

struct turn_alloc *turn_alloc_find(enum turn_transport t, const struct sockaddr *client,
                                   const struct turn_stream *stream)
{
	struct turn *T = &turn_srv;

	if (t != TURN_UDP)
		return stream ? stream->alloc : NULL;
	for (struct turn_alloc *a = T->hash[hash_of(client, T->hash_size)]; a; a = a->hnext)
		if (turn_addr_equal((struct sockaddr *)&a->client, client))
			return a;
	return NULL;
}

size_t turn_alloc_count_user(const char *user)
{
	size_t n = 0;

	for (struct turn_alloc *a = turn_srv.allocs; a; a = a->next)
		n += strcmp(a->user, user) == 0;
	return n;
}

bool turn_bw_take(struct turn_alloc *al, int dir, size_t n, int64_t now_ms)
{
	double rate = (double)turn_srv.o->turn_bandwidth;

	if (rate <= 0)
		return true;
	if (now_ms > al->bw_last_ms[dir]) {
		al->bw_tokens[dir] += rate * (double)(now_ms - al->bw_last_ms[dir]) / 1000.0;
		if (al->bw_tokens[dir] > rate)
			al->bw_tokens[dir] = rate; /* a second's worth at most */
		al->bw_last_ms[dir] = now_ms;
	}
	if (al->bw_tokens[dir] < (double)n)
		return false;
	al->bw_tokens[dir] -= (double)n;
	return true;
}

/* ---- permissions and channels ---- */

/* The live relayed addresses a UDP allocation's permissions are per port on; a TCP one's are
 * per IP (the exception is not theirs: turn_peer_refused()). */
static const struct turn_live *perm_live(const struct turn_alloc *al)
{
	return al->tcp ? NULL : &turn_srv.live;
}

int turn_perm_add(struct turn_alloc *al, const struct sockaddr *peer, bool live_only,
                  int64_t now_ms)
{
	int added = turn_perm_put(al->perms, &al->nperms, TURN_MAX_PERMS, perm_live(al), peer,
	                          live_only, now_ms + TURN_PERM_S * 1000);

	if (added < 0)
		return added;
	turn_srv.m.permissions_total += (uint64_t)added;
	return 0;
}

bool turn_perm_has(const struct turn_alloc *al, const struct sockaddr *peer, int64_t now_ms)
{
	return turn_perm_allows(al->perms, al->nperms, perm_live(al), peer, now_ms);
}

int turn_chan_bind(struct turn_alloc *al, uint16_t number, const struct sockaddr *peer,
                   bool live_only, int64_t now_ms)
{
	struct turn_chan *c = NULL;

	for (size_t k = 0; k < al->nchans; k++) {
		bool same_number = al->chans[k].number == number;
		bool same_peer = turn_addr_equal((struct sockaddr *)&al->chans[k].peer, peer);

		if (same_number != same_peer)
			return -EINVAL; /* RFC 8656 11.2: bound otherwise */
		if (same_number)
			c = &al->chans[k];
	}
	if (!c) {
		if (al->nchans == TURN_MAX_CHANNELS)
			return -ENOSPC;
		c = &al->chans[al->nchans++];
		c->number = number;
		memcpy(&c->peer, peer,
		       peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                  : sizeof(struct sockaddr_in6));
		turn_srv.m.channels_total++;
	}
	c->live_only = live_only;
	c->expires_ms = now_ms + TURN_CHANNEL_S * 1000;
	return turn_perm_add(al, peer, live_only, now_ms);
}

const struct turn_chan *turn_chan_by_number(const struct turn_alloc *al, uint16_t number,
                                            int64_t now_ms)
{
	for (size_t k = 0; k < al->nchans; k++)
		if (al->chans[k].number == number)
			return al->chans[k].expires_ms > now_ms ? &al->chans[k] : NULL;
	return NULL;
}

static const struct turn_chan *chan_by_peer(const struct turn_alloc *al,
                                            const struct sockaddr *peer, int64_t now_ms)
{
	for (size_t k = 0; k < al->nchans; k++)
		if (al->chans[k].expires_ms > now_ms &&
		    turn_addr_equal((struct sockaddr *)&al->chans[k].peer, peer))
			return &al->chans[k];
	return NULL;
}

/* ---- relaying ---- */

void turn_to_peer(struct turn_alloc *al, const struct sockaddr *peer, const uint8_t *p, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)p, (unsigned int)len);

	if (al->tcp) {
		/* RFC 6062: a TCP allocation relays over its peer connections only (it has no UDP
		 * handle; a send on an unbound one would bind a port outside --turn-relay-ports) */
		turn_refuse_count(TR_BAD_REQUEST);
		return;
	}
	if (!turn_bw_take(al, 0, len, relay_mono_ms())) {
		turn_refuse_count(TR_BANDWIDTH);
		return;
	}
	if (uv_udp_try_send(&al->relay, &b, 1, peer) < 0)
		return; /* a full socket buffer drops the datagram, as the network would */
	al->pkts[0]++;
	al->bytes[0] += len;
	turn_srv.m.to_peer_pkts++;
	turn_srv.m.to_peer_bytes += len;
}

static void on_peer_data(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                         const struct sockaddr *peer, unsigned flags)
{
	static uint8_t out[STUN_HEADER + 24 + 4 + 65536 + 8];
	struct turn_alloc *al = h->data;
	int64_t now = relay_mono_ms();
	const struct turn_chan *ch;
	uint8_t *data = (uint8_t *)buf->base;
	size_t len = (size_t)nread;

	turn_udp_pass(&al->pause, nread, peer, flags);
	if (nread <= 0 || !peer || al->closing || (flags & UV_UDP_PARTIAL))
		return;
	/* before any of @al's bandwidth or counters: from the relay's own IPs (every user's
	 * relayed sockets, local processes) only the exact address @al permitted gets in */
	if (!turn_perm_has(al, peer, now)) {
		turn_refuse_count(TR_NO_PERMISSION);
		return;
	}
	if (!turn_bw_take(al, 1, len, now)) {
		turn_refuse_count(TR_BANDWIDTH);
		return;
	}
	al->pkts[1]++;
	al->bytes[1] += len;
	turn_srv.m.from_peer_pkts++;
	turn_srv.m.from_peer_bytes += len;
	ch = chan_by_peer(al, peer, now);
	if (ch && len <= 0xffff) {
		stun_channel_header(data - 4, ch->number, (uint16_t)len);
		turn_to_client(al->transport, al->stream, (struct sockaddr *)&al->client, data - 4,
		               len + 4);
	} else {
		struct stun_builder b;
		uint8_t tid[STUN_TID];

		RAND_bytes(tid, sizeof(tid));
		stun_build(&b, out, sizeof(out), STUN_DATA, STUN_INDICATION, tid);
		stun_add_addr(&b, STUN_A_XOR_PEER_ADDRESS, peer, true);
		stun_add(&b, STUN_A_DATA, data, len);
		if (stun_build_end(&b) > 0)
			turn_to_client(al->transport, al->stream, (struct sockaddr *)&al->client,
			               out, b.len);
	}
}

/* Bind a relayed socket in --turn-relay-ports: 0, or -EADDRINUSE when the range is full. */
static int bind_relay(struct turn_alloc *al, bool even)
{
	struct turn *T = &turn_srv;
	int span = T->relay_hi - T->relay_lo + 1, err = UV_EADDRINUSE;
	struct sockaddr_storage ss = T->listen_addr;

	if (turn_udp_init(T->loop, &al->relay))
		return -ENOMEM;
	al->relay.data = al;
	for (int tries = 0; tries < span && tries < 200; tries++) {
		int port = T->relay_lo + (T->relay_next++ % span);

		if (even && (port & 1))
			continue;
		if (ss.ss_family == AF_INET)
			((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
		else
			((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
		err = uv_udp_bind(&al->relay, (struct sockaddr *)&ss, 0);
		if (err != UV_EADDRINUSE && err != UV_EACCES)
			break;
	}
	if (!err) {
		/* a quarter of the listener's: one allocation's share of a burst */
		turn_udp_buffers(&al->relay, T->o->turn_socket_buffer / 4,
		                 T->buffer_logged ? NULL : "relayed sockets");
		T->buffer_logged = true;
		/* the data lands at rxm + 64: the ChannelData header goes in front of it in place */
		err = turn_udp_recv_start(&al->relay, &al->pause, on_peer_data);
	}
	if (err)
		return err == UV_EADDRINUSE ? -EADDRINUSE : -EIO;
	al->relayed = T->has_external ? T->external : ss;
	if (al->relayed.ss_family == AF_INET)
		((struct sockaddr_in *)&al->relayed)->sin_port =
		        htons(turn_port_of((struct sockaddr *)&ss));
	else
		((struct sockaddr_in6 *)&al->relayed)->sin6_port =
		        htons(turn_port_of((struct sockaddr *)&ss));
	/* no other socket holds this port on our IP (bound without SO_REUSEADDR): a datagram to
	 * the relayed address lands here until turn_alloc_free() */
	turn_live_mark(&T->live, turn_port_of((struct sockaddr *)&ss), true);
	return 0;
}

void turn_alloc_release(struct turn_alloc *al)
{
	free(al);
}

static void on_relay_closed(uv_handle_t *h)
{
	turn_alloc_release(h->data);
}

struct turn_alloc *turn_alloc_new(enum turn_transport t, const struct sockaddr *client,
                                  struct turn_stream *stream, const struct turn_auth *a, bool even,
                                  bool tcp, int *code, const char **why)
{
	struct turn *T = &turn_srv;
	struct turn_alloc *al = calloc(1, sizeof(*al));
	char caddr[64], raddr[64];
	int err;

	if (!al) {
		*code = 508;
		*why = "out of memory";
		return NULL;
	}
	al->transport = t;
	memcpy(&al->client, client,
	       client->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	                                    : sizeof(struct sockaddr_in6));
	al->stream = stream;
	snprintf(al->username, sizeof(al->username), "%s", a->username);
	al->user = strchr(al->username, ':') + 1; /* turncred_expiry() checked the form */
	al->cred_expiry_s = a->expiry_s;
	al->started_s = relay_now_ms() / 1000;
	al->bw_tokens[0] = al->bw_tokens[1] = (double)T->o->turn_bandwidth;
	al->bw_last_ms[0] = al->bw_last_ms[1] = relay_mono_ms();
	/* RFC 6062: a TCP allocation has no UDP handle (its listener's close frees it) */
	err = tcp ? turn_tcp_relay_open(al) : bind_relay(al, even);
	if (err) {
		bool listener = al->tcp != NULL;

		turn_tcp_relay_close(al); /* frees al once its listener is closed */
		*code = 508;
		*why = err == -EADDRINUSE ? "no free relay port" : "cannot open a relay socket";
		/* an initialised handle is in the loop's list until closed, whatever failed after;
		 * its loop field is set by uv_udp_init() only, al being zeroed by calloc() */
		if (!listener && al->relay.loop)
			uv_close((uv_handle_t *)&al->relay, on_relay_closed);
		else if (!listener)
			turn_alloc_release(al);
		return NULL;
	}
	al->next = T->allocs;
	if (T->allocs)
		T->allocs->prev = al;
	T->allocs = al;
	T->nallocs++;
	if (t == TURN_UDP) {
		size_t h = hash_of(client, T->hash_size);

		al->hnext = T->hash[h];
		T->hash[h] = al;
	} else {
		stream->alloc = al;
	}
	T->m.allocations_total++;
	turn_addr_text(client, caddr, sizeof(caddr));
	turn_addr_text((struct sockaddr *)&al->relayed, raddr, sizeof(raddr));
	log_info("allocation for '%s' from %s (%s) relayed at %s%s, credential until %lld",
	         al->user, caddr,
	         t == TURN_UDP   ? "udp"
	         : t == TURN_TCP ? "tcp"
	                         : "tls",
	         tcp ? "tcp:" : "", raddr, (long long)al->cred_expiry_s);
	return al;
}

void turn_alloc_free(struct turn_alloc *al, const char *why)
{
	struct turn *T = &turn_srv;
	char caddr[64];

	if (al->closing)
		return;
	al->closing = true;
	if (al->prev)
		al->prev->next = al->next;
	else
		T->allocs = al->next;
	if (al->next)
		al->next->prev = al->prev;
	T->nallocs--;
	if (al->transport == TURN_UDP) {
		struct turn_alloc **pp =
		        &T->hash[hash_of((struct sockaddr *)&al->client, T->hash_size)];

		while (*pp && *pp != al)
			pp = &(*pp)->hnext;
		if (*pp)
			*pp = al->hnext;
	} else if (al->stream) {
		al->stream->alloc = NULL;
	}
	turn_addr_text((struct sockaddr *)&al->client, caddr, sizeof(caddr));
	log_info("allocation for '%s' from %s ended (%s) after %llds: %llu packets %llu bytes to "
	         "peers, %llu packets %llu bytes from peers",
	         al->user, caddr, why, (long long)(relay_now_ms() / 1000 - al->started_s),
	         (unsigned long long)al->pkts[0], (unsigned long long)al->bytes[0],
	         (unsigned long long)al->pkts[1], (unsigned long long)al->bytes[1]);
	turn_udp_forget(&al->pause);
	if (al->tcp) {
		turn_tcp_relay_close(al); /* frees al once its listener is closed */
	} else {
		/* no longer ours to send to: the port may be another process's next */
		turn_live_mark(&T->live, turn_port_of((struct sockaddr *)&al->relayed), false);
		uv_close((uv_handle_t *)&al->relay, on_relay_closed);
	}
}

static void prune(struct turn_alloc *al, int64_t now_ms)
{
	size_t j = 0;

	for (size_t k = 0; k < al->nperms; k++)
		if (al->perms[k].expires_ms > now_ms)
			al->perms[j++] = al->perms[k];
	al->nperms = j;
	j = 0;
	for (size_t k = 0; k < al->nchans; k++)
		if (al->chans[k].expires_ms > now_ms)
			al->chans[j++] = al->chans[k];
	al->nchans = j;
}

void turn_alloc_expire(int64_t now_ms, int64_t now_s)
{
	struct turn_alloc *next;

	for (struct turn_alloc *al = turn_srv.allocs; al; al = next) {
		next = al->next;
		if (al->cred_expiry_s <= now_s)
			turn_alloc_free(al, "credential expired");
		else if (al->expires_ms <= now_ms)
			turn_alloc_free(al, "lifetime over");
		else
			prune(al, now_ms);
	}
}
