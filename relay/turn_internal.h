/*
 * relay/turn internals shared by turn.c (listeners, requests), turn_alloc.c (allocations,
 * permissions, channels, relayed sockets), turn_stream.c (TCP and TLS framing), turn_auth.c
 * (nonces, REST credentials), turn_peer.c (which peers may be relayed to: pure) and
 * turn_thread.c (the TURN thread). Everything here runs on the TURN thread's loop only, except
 * turn_thread_call(), turn_thread_stop() and what relay_turn_configure()/relay_turn_start() do
 * before the thread starts (see turn_thread.c).
 */
#ifndef RELAY_TURN_INTERNAL_H
#define RELAY_TURN_INTERNAL_H

#include "relay/internal.h"
#include "relay/turn.h"
#include "pkg/buf/buf.h"
#include "pkg/stun/stun.h"

#include <netinet/in.h>
#include <openssl/ssl.h>
#include <uv.h>

#define TURN_SOFTWARE       "relay"
#define TURN_LIFETIME_S     600 /* allocation, default */
#define TURN_LIFETIME_MAX_S 3600
#define TURN_PERM_S         300
#define TURN_CHANNEL_S      600
#define TURN_NONCE_S        600 /* a nonce is stale this long after it was made */
#define TURN_MAX_PERMS      64  /* per allocation */
#define TURN_MAX_CHANNELS   64  /* per allocation */
#define TURN_USERNAME_MAX   160
#define TURN_STREAM_IN_MAX  (STUN_MAX_MSG + 4)
#define TURN_STREAM_OUT_MAX (512 * 1024) /* queued to a TCP/TLS client; past it frames drop */
/* TCP allocations (RFC 6062, turn_tcp.c). Each peer connection holds two sockets and up to
 * TURN_TCP_OUT_MAX + TURN_STREAM_OUT_MAX bytes queued, so an allocation's share is bounded by
 * the count: 32 is room for a TCP peer per ICE candidate pair and a few retries. */
#define TURN_TCP_CONNS_MAX 32
/* All TCP allocations' peer connections at once: each binds a data connection, a TCP/TLS
 * connection never evicted, so half of TURN_MAX_STREAMS stays for control connections. */
#define TURN_TCP_CONNS_TOTAL (TURN_MAX_STREAMS / 2)
#define TURN_TCP_TIMEOUT_MS  30000 /* RFC 6062: a Connect's bound, an unbound connection's life */
#define TURN_TCP_OUT_MAX     (256 * 1024) /* to a peer; past it the client is not read */
/* An output buffer larger than this is given back once its connection has nothing queued
 * (turn_stream.c, "the memory budget"). */
#define TURN_STREAM_OUT_KEEP (16 * 1024)
/* STUN answers and ConnectionAttempt indications go past the memory budget while their
 * connection's output buffer stays within this; a client with more unread is not reading. */
#define TURN_STREAM_CTRL_CAP (4 * 1024)
/* A partial frame's input buffer up to this size is taken past the memory budget: room for a
 * STUN request and for a ChannelData carrying one Ethernet-sized (1500-byte) datagram, so that a
 * full budget does not lock new or ordinary clients out (turn_stream.c, "the memory budget"). */
#define TURN_STREAM_IN_SMALL (2 * 1024)
#define TURN_RATE_SLOTS      4096
#define TURN_MAX_STREAMS     4096  /* TCP/TLS connections at once */
#define TURN_STREAM_IDLE_MS  60000 /* a TCP/TLS connection without an allocation */

enum turn_transport { TURN_UDP, TURN_TCP, TURN_TLS };

/* Refusals and drops, for /metrics (turn_refusal_names[] in turn.c). */
enum turn_refusal {
	TR_BAD_REQUEST,    /* 400 */
	TR_UNAUTHORIZED,   /* 401: no or wrong credentials */
	TR_EXPIRED,        /* 401: the REST username expired */
	TR_HEX,            /* 401: a hex HMAC sent as password */
	TR_FORBIDDEN_PEER, /* 403 */
	TR_UNKNOWN_ATTR,   /* 420 */
	TR_MISMATCH,       /* 437 */
	TR_STALE_NONCE,    /* 438 */
	TR_WRONG_CRED,     /* 441 */
	TR_TRANSPORT,      /* 442 */
	TR_FAMILY,         /* 440 / 443 */
	TR_USER_QUOTA,     /* 486 */
	TR_CAPACITY,       /* 508 */
	TR_RATE,           /* packets over --turn-packet-rate: dropped */
	TR_BANDWIDTH,      /* relayed bytes over --turn-bandwidth: dropped */
	TR_NO_PERMISSION,  /* data to or from a peer without permission: dropped */
	TR_MALFORMED,      /* unparseable packets: dropped */
	TR_DENIED,         /* allocations ended by /bids/deny, requests of a denied booking (403) */
	TR_CONN_EXISTS,    /* 446: Connect to a peer already connected */
	TR_CONNECT_FAILED, /* 447: Connect timed out or failed */
	TR_UNBOUND,        /* peer connections closed without a ConnectionBind in time */
	TR_STREAM_FULL,    /* frames to a TCP/TLS client whose queue is full (it does not read) */
	TR_MEMORY,         /* frames to a TCP/TLS client that --max-memory has no room for */
	TR_MEMORY_CLOSED,  /* TCP/TLS clients closed: --max-memory had no room for their frame */
	TR_UNALLOC_LARGE, /* TCP/TLS clients without an allocation closed: a partial frame > 2 KiB */
	TR_N
};

struct turn_metrics {
	uint64_t allocations_total, permissions_total, channels_total;
	uint64_t to_peer_pkts, to_peer_bytes, from_peer_pkts, from_peer_bytes;
	uint64_t bindings;
	uint64_t udp_pauses; /* UDP sockets stopped for the rest of a loop pass (turn_udp.c) */
	uint64_t tcp_conns_total, tcp_to_peer_bytes, tcp_from_peer_bytes; /* RFC 6062 */
	uint64_t tcp_pauses; /* a side not read: the other side's queue full, or bandwidth spent */
	uint64_t refused[TR_N];
};

/* A UDP socket's place in the list of those paused for the rest of a loop pass. */
struct turn_udp_pause {
	struct turn_udp_pause *next, **pprev;
	uv_udp_t *h;
	uv_udp_recv_cb cb;
	bool paused;
};

/* A TCP or TLS client connection (turn_stream.c). */
struct turn_stream {
	uv_tcp_t tcp;
	enum turn_transport transport;
	struct sockaddr_storage peer; /* the client */
	struct buf in;                /* bytes not yet a whole frame */
	struct buf out, inflight;     /* queued to write, and being written */
	size_t held;         /* in.cap + out.cap + inflight.cap as last counted in the budget */
	size_t held_unalloc; /* the same while it has no allocation: counted outside the budget */
	uv_write_t wr;
	bool writing, closing;
	SSL *ssl; /* TLS only */
	BIO *rbio, *wbio;
	struct turn_alloc *alloc;   /* at most one allocation per connection (5-tuple) */
	struct turn_tcp_conn *conn; /* once ConnectionBind made this a data connection (RFC 6062) */
	uv_shutdown_t sh;
	bool shut_wanted, shut_done; /* turn_stream_shutdown() */
	int64_t last_ms;             /* monotonic: last bytes in */
	struct turn_stream *next, *prev;
};

/* A permission is for an IP (RFC 8656 9), but on the relay's own live IPs (struct turn_live),
 * which every user of the relay sends from, for one transport address: @port is 0 elsewhere. */
struct turn_perm {
	uint8_t ip[16]; /* unwrapped (IPv4 as ::ffff:a.b.c.d) */
	uint16_t port;
	/* allowed only as a live relayed address (turn_peer_refused()'s by_live): a datagram from
	 * it is taken only while a live allocation holds the port (it may be another process's) */
	bool live_only;
	int64_t expires_ms;
};

struct turn_chan {
	uint16_t number;
	/* allowed only as a live relayed address of this relay (turn_live): re-checked per
	 * datagram, as its port may be another process's once that allocation is gone */
	bool live_only;
	/* a sockaddr_in or sockaddr_in6 (peers are one or the other): not a sockaddr_storage,
	 * whose 128 bytes times TURN_MAX_CHANNELS made most of an allocation's size */
	struct sockaddr_in6 peer;
	int64_t expires_ms;
};

struct turn_alloc {
	struct turn_alloc *next, *prev; /* every allocation */
	struct turn_alloc *hnext;       /* hash chain by client 5-tuple */
	enum turn_transport transport;
	struct sockaddr_storage client; /* UDP: the client's address; else the stream's */
	struct turn_stream *stream;     /* TCP/TLS, else NULL */
	uv_udp_t relay; /* the relayed transport address's socket (a UDP allocation's only) */
	struct sockaddr_storage relayed;  /* as announced (--turn-external-ip applied) */
	char username[TURN_USERNAME_MAX]; /* "<expiry>:<user>" */
	const char *user;                 /* the user part (booking id), inside username */
	int64_t cred_expiry_s;            /* wall clock: the allocation ends then at the latest */
	uint8_t tid[STUN_TID];            /* of the Allocate, to answer a retransmission alike */
	int64_t expires_ms;               /* monotonic */
	struct turn_perm perms[TURN_MAX_PERMS];
	size_t nperms;
	struct turn_chan chans[TURN_MAX_CHANNELS];
	size_t nchans;
	double bw_tokens[2]; /* bytes allowed now: to peers, from peers */
	int64_t bw_last_ms[2];
	int64_t started_s;
	uint64_t pkts[2], bytes[2];
	struct turn_udp_pause pause;
	struct turn_tcp *tcp; /* a TCP allocation's listener and peer connections (turn_tcp.c) */
	bool closing;
};

/* Datagrams per recvmmsg() call on a UDP socket (see turn_udp.c). */
#define TURN_MMSG 8
/* Datagrams all TURN UDP sockets together may take from one loop pass (see turn_udp.c). */
#define TURN_PASS_DATAGRAMS 64

/* This relay's live relayed transport addresses: the IPs a UDP allocation's relayed address is
 * written with, and the ports live UDP allocations' sockets hold (a bit each, so that a Send
 * indication's check costs the same with 10 or 10,000 allocations). A peer there is a socket of
 * this relay: UDP allocations may send to it with no --turn-allow-peer (client to client). */
struct turn_live {
	/* the announced IP (--turn-external-ip, else the bound one) where a datagram to it lands
	 * in our sockets (turn_announced_lands()), and the bound one where it differs and is not
	 * a wildcard */
	struct sockaddr_storage ip[2];
	uint8_t ip16[2][16]; /* the same, unwrapped by turn_ip16() */
	size_t nip;
	uint64_t ports[65536 / 64]; /* bit p: a live UDP allocation's socket holds port p */
};

/* The TURN server's state (one, in turn.c). */
struct turn {
	struct server *s;
	const struct relay_opts *o;
	uv_loop_t *loop;
	uv_udp_t udp;
	uv_tcp_t tcp, tls;
	bool udp_on, tcp_on, tls_on, timer_on;
	struct sockaddr_storage listen_addr; /* --turn-listen as bound */
	struct sockaddr_storage tls_addr;    /* --turns-listen as bound */
	struct sockaddr_storage external;    /* address family/IP put in relayed addresses */
	bool has_external;
	int port, tls_port;
	int relay_lo, relay_hi, relay_next;
	SSL_CTX *ssl_ctx;
	char realm[256];
	char secret[256];
	size_t secret_len;
	uint8_t nonce_key[32];
	struct turn_cidr *allow;
	size_t nallow;
	struct turn_own *own;
	/* IPs from own_addresses(), ports marked by bind_relay() and turn_alloc_free() */
	struct turn_live live;
	uv_timer_t timer;
	struct turn_alloc *allocs;
	size_t nallocs;
	struct turn_alloc **hash;
	size_t hash_size;
	struct turn_stream *streams;
	size_t nstreams;
	struct rate_slot *rate;
	struct turn_metrics m;
	char last_hex_user[TURN_USERNAME_MAX]; /* the hex-credential log line is written once */
	uint8_t rx[65536 + 64];                /* every TCP/TLS read lands here */
	/* every UDP datagram lands here: libuv's recvmmsg gives each datagram a 64 KiB slot */
	uint8_t rxm[64 + TURN_MMSG * 65536];
	bool buffer_logged; /* the relayed sockets' granted buffer is logged once */
	struct turn_udp_pause udp_pause;
	uv_prepare_t pass;
	bool pass_on;
	unsigned pass_used;              /* datagrams taken in this loop pass */
	struct turn_udp_pause *paused;   /* sockets waiting for the next pass */
	int64_t budget_logged_ms;        /* monotonic: frames dropped for --max-memory, logged */
	int64_t budget_closed_logged_ms; /* monotonic: a client closed for --max-memory, logged */
	int64_t large_closed_logged_ms;  /* monotonic: one closed for TR_UNALLOC_LARGE, logged */
};

extern struct turn turn_srv;

/* ---- turn_peer.c: the peer address filter (pure) ---- */

struct turn_cidr {
	uint8_t ip[16]; /* IPv4 as ::ffff:a.b.c.d, bits counted in that form */
	unsigned bits;
};

#define TURN_OWN_MAX 64 /* the listening, external and (wildcard) interface addresses */
/* The relay's own addresses: a peer at one of these IPs (TURN, TURNS, --turn-external-ip, HTTP,
 * metrics) is refused on every port, but for struct turn_live's exception. */
struct turn_own {
	/* a listener's IP as a /128; 0.0.0.0/8 (and so ::) always; a loopback interface's whole
	 * network (127.0.0.0/8), as a wildcard socket answers on all of it */
	struct turn_cidr net[TURN_OWN_MAX];
	size_t nnet;
};

/* @sa's IP as 16 bytes with IPv4-mapped, IPv4-compatible and NAT64 (64:ff9b::/96) forms and
 * plain IPv4 all written as ::ffff:a.b.c.d. */
void turn_ip16(const struct sockaddr *sa, uint8_t out[16]);
/* Parse "CIDR[,CIDR...]" (IPv4 or IPv6, /bits optional). 0, or -EINVAL with @why. */
int turn_cidr_list_parse(const char *s, struct turn_cidr *out, size_t max, size_t *n,
                         char why[128]);
bool turn_cidr_match(const struct turn_cidr *c, const uint8_t ip[16]);
/*
 * NULL when the relay may send to @peer, else the reason (static) for a 403. The port is not
 * looked at but for @live: a UDP allocation's peer that is exactly (family, IP, port) one of
 * @live's addresses is allowed first, and *@by_live (when not NULL) says whether it is refused
 * otherwise; NULL @live for a TCP allocation (RFC 6062: it reaches no UDP socket). An @allow
 * CIDR opens one of the relay's @own addresses (on every port) only when it names that address
 * (/32 or /128).
 */
const char *turn_peer_refused(const struct sockaddr *peer, const struct turn_cidr *allow,
                              size_t nallow, const struct turn_own *own,
                              const struct turn_live *live, bool *by_live);
/*
 * Whether a datagram to the @announced IP (--turn-external-ip) on a relay port lands in the
 * relayed socket bound on the @bound IP (the TURN listener's) on that port: when they are the
 * same IP, when @bound is a wildcard (every relayed socket is bound on 0.0.0.0:p or [::]:p, and
 * a socket without SO_REUSEADDR/SO_REUSEPORT shuts every other bind of that port out), or when
 * @announced is not an address of this machine (a 1:1 NAT in front forwards it to @bound). Not
 * when it is one of this machine's other addresses: a local service there may hold the port.
 * @ifs is uv_interface_addresses()'s list (a loopback interface's whole network is this
 * machine's: 127.0.0.2 is local); NULL when it could not be read: then only the first two cases.
 */
bool turn_announced_lands(const struct sockaddr *announced, const struct sockaddr *bound,
                          const uv_interface_address_t *ifs, size_t nifs);
/* Empty @live, its IPs from the @announced relayed address (taken only where
 * turn_announced_lands() says so with @ifs) and the @bound one (ports ignored). false when
 * @announced was left out. */
bool turn_live_init(struct turn_live *live, const struct sockaddr *announced,
                    const struct sockaddr *bound, const uv_interface_address_t *ifs, size_t nifs);
/* A UDP allocation's socket holds @port (@on) or gave it back; port 0 is never live. */
void turn_live_mark(struct turn_live *live, uint16_t port, bool on);
/* Whether @peer is exactly one of @live's addresses on a live port (NULL @live: false). */
bool turn_live_has(const struct turn_live *live, const struct sockaddr *peer);
/* Whether the unwrapped @ip is one of @live's IPs, in any form (NULL @live: false). */
bool turn_live_ip(const struct turn_live *live, const uint8_t ip[16]);
/*
 * An allocation's permissions @perms[*@n] (of @max): install or refresh the one for @peer until
 * @expires_ms. With @live (a UDP allocation's; NULL for a TCP one), a peer on one of its IPs
 * gets a permission for its port alone, @live_only as turn_peer_refused() said. 1 when added, 0
 * when refreshed, -ENOSPC.
 */
int turn_perm_put(struct turn_perm *perms, size_t *n, size_t max, const struct turn_live *live,
                  const struct sockaddr *peer, bool live_only, int64_t expires_ms);
/* Whether @perms let @peer in or out at @now_ms: for a peer on one of @live's IPs, a permission
 * for its port, and for one installed @live_only that port still live. */
bool turn_perm_allows(const struct turn_perm *perms, size_t n, const struct turn_live *live,
                      const struct sockaddr *peer, int64_t now_ms);
/* true for 0.0.0.0 and :: (in any of the forms turn_ip16() unwraps). */
bool turn_is_wildcard(const struct sockaddr *sa);
/*
 * Fill @own from the addresses the relay listens on or announces, @ips (family 0: none), and
 * this machine's interface addresses @ifs (taken only when one of @ips is a wildcard: such a
 * listener answers on all of them; an internal (loopback) one as its whole network, from its
 * netmask). 0.0.0.0/8 is always ours: Linux delivers 0.0.0.0 (and ::, which unwraps to it) to
 * this host. Each CIDR is kept once; the number left out for TURN_OWN_MAX is returned (0: all
 * fit).
 */
size_t turn_own_build(struct turn_own *own, const struct sockaddr_storage *ips, size_t nips,
                      const uv_interface_address_t *ifs, size_t nifs);
/* The port of an AF_INET/AF_INET6 sockaddr. */
uint16_t turn_port_of(const struct sockaddr *sa);
/* "a.b.c.d:port" / "[v6]:port" into @out. */
void turn_addr_text(const struct sockaddr *sa, char *out, size_t len);
bool turn_addr_equal(const struct sockaddr *a, const struct sockaddr *b);

/* ---- turn_auth.c ---- */

/* A nonce for @client at wall-clock second @now_s into @out (NUL-terminated, < 64 bytes). */
void turn_nonce_make(const struct sockaddr *client, int64_t now_s, char out[64]);
/* 0 when @nonce (@len bytes) was made for @client less than TURN_NONCE_S ago; -ESTALE when it
 * is ours but old or for another address; -EINVAL when malformed. */
int turn_nonce_check(const char *nonce, size_t len, const struct sockaddr *client, int64_t now_s);

/* The outcome of checking a request's long-term credentials. */
struct turn_auth {
	int code; /* 0: authenticated; else 400/401/403 (denied booking)/438 */
	enum turn_refusal refusal;
	const char *why; /* static, for the log */
	bool sha256;     /* answer with MESSAGE-INTEGRITY-SHA256 */
	char username[TURN_USERNAME_MAX];
	int64_t expiry_s;
	uint8_t key[32];
	size_t key_len;
};

/*
 * Check @m's USERNAME, REALM, NONCE and integrity from @client into @a: the credential's expiry
 * and the deny list against @now_s (wall clock), the nonce's age against @mono_s (the monotonic
 * clock, as turn_nonce_make() was given: a step of the wall clock must not void or stretch it).
 */
void turn_auth_check(const struct stun_msg *m, const struct sockaddr *client, int64_t now_s,
                     int64_t mono_s, struct turn_auth *a);

/* ---- turn_alloc.c ---- */

struct turn_alloc *turn_alloc_find(enum turn_transport t, const struct sockaddr *client,
                                   const struct turn_stream *stream);
/* A new allocation with a relayed socket bound; NULL with the STUN error in *code. */
struct turn_alloc *turn_alloc_new(enum turn_transport t, const struct sockaddr *client,
                                  struct turn_stream *stream, const struct turn_auth *a, bool even,
                                  bool tcp, int *code, const char **why);
void turn_alloc_free(struct turn_alloc *al, const char *why);
/* Free @al once its last handle is closed: its key wiped. */
void turn_alloc_release(struct turn_alloc *al);
size_t turn_alloc_count_user(const char *user);
/* Install or refresh a permission for @peer's IP (on the relay's live IPs, for its port;
 * @live_only: allowed only as a live relayed address): 0 or -ENOSPC. */
int turn_perm_add(struct turn_alloc *al, const struct sockaddr *peer, bool live_only,
                  int64_t now_ms);
bool turn_perm_has(const struct turn_alloc *al, const struct sockaddr *peer, int64_t now_ms);
/* ChannelBind: 0, -EINVAL (number or peer bound otherwise: 400), -ENOSPC. @live_only: the
 * peer was allowed only as a live relayed address (struct turn_chan). */
int turn_chan_bind(struct turn_alloc *al, uint16_t number, const struct sockaddr *peer,
                   bool live_only, int64_t now_ms);
const struct turn_chan *turn_chan_by_number(const struct turn_alloc *al, uint16_t number,
                                            int64_t now_ms);
/* Send @len bytes to @peer from the relayed socket (bandwidth and counters applied). */
void turn_to_peer(struct turn_alloc *al, const struct sockaddr *peer, const uint8_t *p, size_t len);
/* Expire what is due (once a second). */
void turn_alloc_expire(int64_t now_ms, int64_t now_s);
/* true when @al may relay @n more bytes in @dir (0: to peers, 1: from peers) now. */
bool turn_bw_take(struct turn_alloc *al, int dir, size_t n, int64_t now_ms);

/* ---- turn.c ---- */

/* Handle a whole STUN message or ChannelData @p from @client over @t (@stream for TCP/TLS). */
void turn_packet(enum turn_transport t, struct turn_stream *stream, const struct sockaddr *client,
                 const uint8_t *p, size_t len);
/* Send @p to the client of @t/@stream/@client (ChannelData padded over streams). */
void turn_to_client(enum turn_transport t, struct turn_stream *stream,
                    const struct sockaddr *client, const uint8_t *p, size_t len);
void turn_refuse_count(enum turn_refusal r);
/* true at most once every @every_ms for the stamp *@last_ms (monotonic): for log lines a flood
 * would repeat. */
static inline bool turn_log_due(int64_t *last_ms, int64_t every_ms)
{
	int64_t now = relay_mono_ms();

	if (*last_ms && now - *last_ms < every_ms)
		return false;
	*last_ms = now;
	return true;
}

/* ---- turn_tcp.c: TCP allocations (RFC 6062) ---- */

/* Open @al's relayed TCP listener in --turn-relay-ports and set al->relayed: 0, -EADDRINUSE
 * (the range is full), -ENOMEM or -EIO. */
int turn_tcp_relay_open(struct turn_alloc *al);
/* Close @al's listener and every peer connection with their client data connections; once the
 * listener is closed, @al is released (turn_alloc_release()). */
void turn_tcp_relay_close(struct turn_alloc *al);
/* Connect @al to @peer (checked and permitted): 0 when under way (the answer to @tid follows
 * with @a's key), else the STUN error to answer now (446, 447, 508). */
int turn_tcp_connect(struct turn_alloc *al, const struct sockaddr *peer, const uint8_t *tid,
                     const struct turn_auth *a);
/* The allocation of the connection @id waiting for its ConnectionBind, or NULL. */
struct turn_alloc *turn_tcp_unbound(uint32_t id);
/* After the ConnectionBind success answer on @st: @st carries connection @id's bytes. */
void turn_tcp_bind(uint32_t id, struct turn_stream *st);
/* From a data connection @st (st->conn set): bytes, its EOF, its output drained, its end. */
void turn_tcp_from_client(struct turn_stream *st, const uint8_t *p, size_t len);
void turn_tcp_client_eof(struct turn_stream *st);
void turn_tcp_client_drained(struct turn_stream *st);
void turn_tcp_client_closed(struct turn_stream *st);
/* Connects past their bound (447) and unbound connections past theirs (closed). */
void turn_tcp_expire(int64_t now_ms);
size_t turn_tcp_count(void);

/* ---- turn_stream.c ---- */

/* ---- turn_udp.c: UDP sockets on the loop (batched reads, buffer sizes) ---- */

/* uv_udp_init() with recvmmsg batching where libuv offers it. */
int turn_udp_init(uv_loop_t *loop, uv_udp_t *h);
/* The alloc_cb of every TURN UDP socket: turn_srv.rxm, 64 bytes of headroom in front. */
void turn_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
/* Set a bound socket's receive and send buffers to `bytes` (0: the kernel's default); log what
 * the kernel granted when `what` is not NULL. */
void turn_udp_buffers(uv_udp_t *h, int64_t bytes, const char *what);
/* uv_udp_recv_start() with turn_udp_alloc, remembered in @p for turn_udp_pass(). */
int turn_udp_recv_start(uv_udp_t *h, struct turn_udp_pause *p, uv_udp_recv_cb cb);
/* First thing in every recv_cb: counts the datagram against the loop pass's budget and, past
 * it and between batches, stops reading @p's socket until the next pass. */
void turn_udp_pass(struct turn_udp_pause *p, ssize_t nread, const struct sockaddr *from,
                   unsigned flags);
/* Before closing a socket: out of the paused list. */
void turn_udp_forget(struct turn_udp_pause *p);
/* The pass handle: started with the server, closed with it. */
void turn_udp_pass_init(uv_loop_t *loop);
void turn_udp_pass_close(void);

/*
 * Swap the bytes queued in @out into @inflight for one uv_write() and return them: the old
 * in-flight buffer, written by now, takes what comes next (TCP/TLS clients and TCP peers both
 * write this way, so a buffer is never written while it grows).
 */
static inline uv_buf_t turn_take_queued(struct buf *out, struct buf *inflight)
{
	struct buf t = *inflight;

	*inflight = *out;
	*out = t;
	out->len = 0;
	return uv_buf_init((char *)inflight->p, (unsigned int)inflight->len);
}

int turn_stream_listen(uv_tcp_t *srv, const struct sockaddr *addr, bool tls, char why[256]);
/* Queue @p (and @pad zero bytes) on @st: 0, or -ENOBUFS when its queue is full and -ENOMEM when
 * the memory budget has no room for it (dropped whole, and counted, either way). A @control
 * message (a STUN answer, a ConnectionAttempt) is not held to the budget while its connection's
 * output buffer stays within TURN_STREAM_CTRL_CAP. */
int turn_stream_send(struct turn_stream *st, const uint8_t *p, size_t len, size_t pad,
                     bool control);
void turn_stream_close(struct turn_stream *st);
/* The memory budget (turn_stream.c): true when TURN's output buffers may grow by @grow bytes;
 * count buffers of @now bytes, last counted as *@held (turn_tcp.c's queues to peers). */
bool turn_stream_budget_room(size_t grow);
void turn_stream_held_update(size_t *held, size_t now);
/* true when @n bytes (TLS overhead added) fit @st's queue and the memory budget now. */
bool turn_stream_fits(const struct turn_stream *st, size_t n);
/* Bytes queued to @st and not yet handed to the kernel. */
size_t turn_stream_queued(const struct turn_stream *st);
/* Stop or resume reading @st (back-pressure of a data connection). */
void turn_stream_read(struct turn_stream *st, bool on);
/* Half-close @st once what is queued is written (TLS: close_notify first). */
void turn_stream_shutdown(struct turn_stream *st);
/* uv_listen() callback of the TCP and TLS listeners. */
void turn_stream_on_connection(uv_stream_t *srv, int status);
void turn_stream_expire(int64_t now_ms);
int turn_tls_init(const char *cert, const char *key, char why[256]);

/* ---- turn_thread.c: the TURN thread and its loop ---- */

/* The one USERNAME length passed on to meet.c: its tags are 16 random bytes in hex
 * (relay/meet.c, TAG_BYTES). */
#define TURN_SEEN_TAG 32
#define TURN_SEEN_MAX 256 /* Bindings queued for the main loop; past it they are dropped */

/* Initialise the TURN loop (main thread, before any handle goes on it): 0 or -EIO with @why. */
int turn_thread_init(char why[256]);
uv_loop_t *turn_thread_loop(void);
/* Start the thread running the TURN loop at @s->o->turn_nice; Bindings are posted to @main_loop
 * for @s: 0 or -EIO. */
int turn_thread_run(struct server *s, uv_loop_t *main_loop, char why[256]);
/* Main thread: run @fn(@arg) on the TURN loop and return once it has run (directly when the
 * thread does not run). @fn must not wait for the main thread. Never from the TURN thread
 * (it would wait for its own loop forever): asserted. */
void turn_thread_call(void (*fn)(void *), void *arg);
/* Main thread: run @close_all on the TURN loop (it closes every handle but the thread's own),
 * join the thread, close the loop. The loop's state is the main thread's afterwards. */
void turn_thread_stop(void (*close_all)(void));
/* TURN thread: pass a Binding's USERNAME @tag from @from to relay_meet_udp_seen() on the main
 * loop when it has a tag's length (TURN_SEEN_TAG; others are not passed on). False only when
 * the queue is full: the Binding is dropped and counted, and must not be answered (the
 * client's retransmission is its next chance). */
bool turn_thread_seen(const char *tag, size_t len, const struct sockaddr *from);
uint64_t turn_thread_seen_dropped(void);

#endif
