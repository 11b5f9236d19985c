/*
 * relay/turn: the STUN/TURN server on a thread and uv loop of its own (turn_thread.c). One UDP
 * socket and one TCP listener on --turn-listen (the same port), a TLS listener on
 * --turns-listen, a UDP socket per allocation (turn_alloc.c). Requests are handled here: Binding
 * without credentials, Allocate, Refresh, CreatePermission and ChannelBind with long-term
 * credentials (turn_auth.c); Send indications and ChannelData are relayed to peers the filter
 * allows (turn_peer.c). Every reply is a value: errors are answered as RFC 8489/8656 say,
 * malformed input is dropped and counted.
 */
#define LOG_MODULE "turn"
#include "relay/turn_internal.h"
#include "pkg/log/log.h"
#include "pkg/secret/secret.h"
#include "pkg/turncred/turncred.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

struct turn turn_srv;

static const char *const refusal_names[TR_N] = {
        [TR_BAD_REQUEST] = "bad_request",
        [TR_UNAUTHORIZED] = "unauthorized",
        [TR_EXPIRED] = "expired_credential",
        [TR_HEX] = "hex_credential",
        [TR_FORBIDDEN_PEER] = "forbidden_peer",
        [TR_UNKNOWN_ATTR] = "unknown_attribute",
        [TR_MISMATCH] = "allocation_mismatch",
        [TR_STALE_NONCE] = "stale_nonce",
        [TR_WRONG_CRED] = "wrong_credentials",
        [TR_TRANSPORT] = "unsupported_transport",
        [TR_FAMILY] = "address_family",
        [TR_USER_QUOTA] = "user_quota",
        [TR_CAPACITY] = "capacity",
        [TR_RATE] = "packet_rate",
        [TR_BANDWIDTH] = "bandwidth",
        [TR_NO_PERMISSION] = "no_permission",
        [TR_MALFORMED] = "malformed",
        [TR_DENIED] = "booking_denied",
        [TR_CONN_EXISTS] = "connection_exists",
        [TR_CONNECT_FAILED] = "connect_failed",
        [TR_UNBOUND] = "connection_unbound",
        [TR_STREAM_FULL] = "stream_queue_full",
        [TR_MEMORY] = "memory_budget",
        [TR_MEMORY_CLOSED] = "memory_budget_closed",
        [TR_UNALLOC_LARGE] = "large_frame_unallocated",
};

const uint8_t *turn_password_algorithms(size_t *len); /* turn_auth.c */

void turn_refuse_count(enum turn_refusal r)
{
	if (r < TR_N)
		turn_srv.m.refused[r]++;
}

/* ---- accessors (relay/turn.h) ---- */

bool relay_turn_on(void)
{
	return turn_srv.udp_on || turn_srv.tls_on;
}

int relay_turn_port(void)
{
	return turn_srv.udp_on ? turn_srv.port : 0;
}

int relay_turns_port(void)
{
	return turn_srv.tls_on ? turn_srv.tls_port : 0;
}

const char *relay_turn_secret(size_t *len)
{
	*len = turn_srv.secret_len;
	return relay_turn_on() ? turn_srv.secret : NULL;
}

const char *relay_turn_realm(void)
{
	return relay_turn_on() ? turn_srv.realm : "";
}

/* ---- sending ---- */

void turn_to_client(enum turn_transport t, struct turn_stream *st, const struct sockaddr *client,
                    const uint8_t *p, size_t len)
{
	if (t == TURN_UDP) {
		uv_buf_t b = uv_buf_init((char *)p, (unsigned int)len);

		uv_udp_try_send(&turn_srv.udp, &b, 1, client); /* full: dropped, as UDP may */
		return;
	}
	if (!st)
		return;
	/* RFC 8656 12.5: over TCP/TLS ChannelData is padded to a multiple of 4 bytes */
	if ((p[0] & 0xc0) == 0x40)
		turn_stream_send(st, p, len, (4 - len % 4) % 4, false);
	else /* only Data indications yield to the memory budget; answers must go */
		turn_stream_send(st, p, len, 0,
		                 ((p[0] << 8) | p[1]) != stun_type(STUN_DATA, STUN_INDICATION));
}

/* A request being answered. */
struct req {
	enum turn_transport t;
	struct turn_stream *st;
	const struct sockaddr *client;
	const struct stun_msg *m;
	const struct turn_auth *auth; /* set once authenticated: replies carry integrity */
	uint8_t out[1024];
	struct stun_builder b;
};

static void start_reply(struct req *r, uint8_t cls)
{
	stun_build(&r->b, r->out, sizeof(r->out), r->m->method, cls, r->m->tid);
	stun_add(&r->b, STUN_A_SOFTWARE, TURN_SOFTWARE, strlen(TURN_SOFTWARE));
}

static void send_reply(struct req *r)
{
	if (r->auth && r->auth->code == 0) {
		if (r->auth->sha256)
			stun_add_integrity_sha256(&r->b, r->auth->key, r->auth->key_len);
		else
			stun_add_integrity(&r->b, r->auth->key, r->auth->key_len);
	}
	stun_add_fingerprint(&r->b);
	if (stun_build_end(&r->b) > 0)
		turn_to_client(r->t, r->st, r->client, r->out, r->b.len);
}

static const char *reason_of(int code)
{
	switch (code) {
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 420:
		return "Unknown Attribute";
	case 437:
		return "Allocation Mismatch";
	case 438:
		return "Stale Nonce";
	case 440:
		return "Address Family not Supported";
	case 441:
		return "Wrong Credentials";
	case 442:
		return "Unsupported Transport Protocol";
	case 443:
		return "Peer Address Family Mismatch";
	case 446:
		return "Connection Already Exists";
	case 447:
		return "Connection Timeout or Failure";
	case 486:
		return "Allocation Quota Reached";
	case 508:
		return "Insufficient Capacity";
	default:
		return "Error";
	}
}

static void reply_error(struct req *r, int code, enum turn_refusal why)
{
	log_debug("method 0x%03x answered %d (%s)", r->m->method, code,
	          why < TR_N ? refusal_names[why] : "challenge");
	turn_refuse_count(why);
	start_reply(r, STUN_ERROR);
	stun_add_error(&r->b, code, reason_of(code));
	if (code == 401 || code == 438) {
		char nonce[64];
		size_t n;
		const uint8_t *algs = turn_password_algorithms(&n);

		turn_nonce_make(r->client, relay_mono_ms() / 1000, nonce);
		stun_add(&r->b, STUN_A_REALM, turn_srv.realm, strlen(turn_srv.realm));
		stun_add(&r->b, STUN_A_NONCE, nonce, strlen(nonce));
		stun_add(&r->b, STUN_A_PASSWORD_ALGORITHMS, algs, n);
		r->auth = NULL; /* no integrity on a challenge */
	}
	send_reply(r);
}

/* Comprehension-required attributes we understand in requests and indications. */
static bool known_attr(uint16_t t)
{
	switch (t) {
	case STUN_A_MAPPED_ADDRESS:
	case STUN_A_USERNAME:
	case STUN_A_MESSAGE_INTEGRITY:
	case STUN_A_CHANNEL_NUMBER:
	case STUN_A_LIFETIME:
	case STUN_A_XOR_PEER_ADDRESS:
	case STUN_A_DATA:
	case STUN_A_REALM:
	case STUN_A_NONCE:
	case STUN_A_REQUESTED_ADDRESS_FAMILY:
	case STUN_A_REQUESTED_TRANSPORT:
	case STUN_A_DONT_FRAGMENT:
	case STUN_A_MESSAGE_INTEGRITY_SHA256:
	case STUN_A_PASSWORD_ALGORITHM:
	case STUN_A_XOR_MAPPED_ADDRESS:
	case STUN_A_PRIORITY:
	case STUN_A_USE_CANDIDATE:
	case STUN_A_EVEN_PORT: /* an even port, without reserving the next: see on_allocate() */
	case STUN_A_CONNECTION_ID:
		return true;
	default:
		return t >= 0x8000;
	}
}

/* 420 with UNKNOWN-ATTRIBUTES when @m has comprehension-required ones we do not know. */
static bool unknown_attrs(struct req *r)
{
	uint8_t list[2 * 8];
	size_t n = 0;

	for (size_t k = 0; k < r->m->n && n < sizeof(list); k++)
		if (!known_attr(r->m->a[k].type)) {
			list[n++] = (uint8_t)(r->m->a[k].type >> 8);
			list[n++] = (uint8_t)r->m->a[k].type;
		}
	if (!n)
		return false;
	log_debug("unknown comprehension-required attribute 0x%02x%02x", list[0], list[1]);
	if (r->m->cls == STUN_REQUEST) {
		turn_refuse_count(TR_UNKNOWN_ATTR);
		start_reply(r, STUN_ERROR);
		stun_add_error(&r->b, 420, reason_of(420));
		stun_add(&r->b, STUN_A_UNKNOWN_ATTRIBUTES, list, n);
		send_reply(r);
	}
	return true;
}

/* ---- authentication shared by the TURN requests ---- */

/*
 * Refusal log lines are bounded: the same refusal (reason and username or peer) once per 10 s,
 * and at most TURN_LOG_PER_S lines a second in all, so that a client retrying bad credentials or
 * a flood of forbidden peers cannot fill the disk (/metrics counts every one).
 */
#define TURN_LOG_PER_S  50
#define TURN_LOG_RECENT 64
static bool log_budget(const char *why, const char *subject)
{
	static struct {
		uint64_t key;
		int64_t at_s;
	} recent[TURN_LOG_RECENT];
	static int64_t second;
	static unsigned used, dropped;
	int64_t now = relay_mono_ms() / 1000;
	uint64_t key = 1469598103934665603ull ^ (uint64_t)(uintptr_t)why;
	size_t slot;

	for (const char *p = subject; *p; p++)
		key = (key ^ (uint8_t)*p) * 1099511628211ull;
	slot = (size_t)(key % TURN_LOG_RECENT);
	if (recent[slot].key == key && now - recent[slot].at_s < 10)
		return false;
	if (now != second) {
		if (dropped)
			log_info("%u more refusal line(s) not logged in the last second", dropped);
		second = now;
		used = dropped = 0;
	}
	if (used >= TURN_LOG_PER_S) {
		dropped++;
		return false;
	}
	used++;
	recent[slot].key = key;
	recent[slot].at_s = now;
	return true;
}

static void log_refusal(const struct req *r, const struct turn_auth *a)
{
	char addr[64];

	turn_addr_text(r->client, addr, sizeof(addr));
	if (a->refusal == TR_HEX) {
		/* once per username: a misconfigured client retries forever */
		if (strcmp(turn_srv.last_hex_user, a->username) == 0)
			return;
		snprintf(turn_srv.last_hex_user, sizeof(turn_srv.last_hex_user), "%s", a->username);
		log_notice(
		        "refused '%s' from %s: its password is the hex HMAC-SHA1, the REST scheme "
		        "(coturn use-auth-secret) wants it base64",
		        a->username, addr);
	} else if (a->refusal != TR_N && log_budget(a->why, a->username)) {
		log_info("refused %s from %s%s%s%s: %s",
		         a->code == 438 ? "a request" : "credentials", addr,
		         a->username[0] ? " ('" : "", a->username, a->username[0] ? "')" : "",
		         a->why);
	}
}

/* Authenticate @r into @a; on failure the error is answered and false returned. */
/*
 * A handler's credential goes with its stack frame: its long-term key is wiped on every way out
 * (GNU C's cleanup attribute on the handler's `struct turn_auth a`), as nothing keeps it past
 * the answer (turn_tcp.c copies what a deferred Connect answer needs, and wipes that).
 */
static void auth_wipe(struct turn_auth *a)
{
	OPENSSL_cleanse(a->key, sizeof(a->key));
}

static bool authenticate(struct req *r, struct turn_auth *a, const struct turn_alloc *al)
{
	turn_auth_check(r->m, r->client, relay_now_ms() / 1000, relay_mono_ms() / 1000, a);
	if (a->code) {
		log_refusal(r, a);
		reply_error(r, a->code, a->refusal);
		return false;
	}
	r->auth = a;
	if (al && strcmp(al->username, a->username) != 0) {
		reply_error(r, 441, TR_WRONG_CRED);
		return false;
	}
	return true;
}

/* Whole seconds @al has left, 0 once its time is up (its timer may not have run yet). */
static uint32_t seconds_left(const struct turn_alloc *al)
{
	int64_t ms = al->expires_ms - relay_mono_ms();

	return ms > 0 ? (uint32_t)(ms / 1000) : 0;
}

/* The lifetime to grant: RFC 8656 7.2's "desired lifetime", cut at the credential's expiry. */
static uint32_t lifetime_of(const struct stun_msg *m, int64_t cred_expiry_s)
{
	const struct stun_attr *a = stun_find(m, STUN_A_LIFETIME);
	uint32_t want = TURN_LIFETIME_S;
	int64_t left = cred_expiry_s - relay_now_ms() / 1000;

	if (a && stun_u32_decode(a, &want) == 0 && want == 0)
		return 0;
	if (want > TURN_LIFETIME_MAX_S)
		want = TURN_LIFETIME_MAX_S;
	if (want < TURN_LIFETIME_S)
		want = TURN_LIFETIME_S;
	if (left < (int64_t)want)
		want = left > 0 ? (uint32_t)left : 0;
	return want;
}

/* @peer in the relayed socket's family (IPv4 written as IPv6 becomes IPv4): 0 or -1. */
static int peer_for(const struct sockaddr *peer, struct sockaddr_storage *out)
{
	int family = turn_srv.listen_addr.ss_family;
	uint8_t ip[16];

	memset(out, 0, sizeof(*out));
	turn_ip16(peer, ip);
	if (family == AF_INET) {
		static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		struct sockaddr_in *in = (struct sockaddr_in *)out;

		if (memcmp(ip, v4mapped, 12) != 0)
			return -1;
		in->sin_family = AF_INET;
		in->sin_port = htons(turn_port_of(peer));
		memcpy(&in->sin_addr, ip + 12, 4);
		return 0;
	}
	if (peer->sa_family != AF_INET6)
		return -1;
	memcpy(out, peer, sizeof(struct sockaddr_in6));
	return 0;
}

/*
 * XOR-PEER-ADDRESS @a decoded, converted and filtered: 0, or the STUN error to answer. With
 * @any_port (CreatePermission: RFC 8656 9 ignores the port) port 0 is no error; *@live_only
 * (when not NULL) says the peer was allowed only as a live relayed address of this relay.
 */
static int check_peer(const struct req *r, const struct turn_alloc *al, const struct stun_attr *a,
                      bool any_port, struct sockaddr_storage *peer, enum turn_refusal *why,
                      bool *live_only)
{
	struct sockaddr_storage raw;
	const char *refused;

	if (!a || stun_addr_decode(a, r->m->tid, &raw) ||
	    (!any_port && turn_port_of((struct sockaddr *)&raw) == 0)) {
		*why = TR_BAD_REQUEST;
		return 400;
	}
	/* a TCP allocation's permissions also admit incoming peers: one for the relay's own IP
	 * is refused here, so no local service connects in either; nor is a relayed address
	 * ours for it, as it reaches TCP listeners only */
	refused = turn_peer_refused((struct sockaddr *)&raw, turn_srv.allow, turn_srv.nallow,
	                            turn_srv.own, al && al->tcp ? NULL : &turn_srv.live, live_only);
	if (refused) {
		char addr[64];

		turn_addr_text((struct sockaddr *)&raw, addr, sizeof(addr));
		if (log_budget(refused, addr))
			log_info("refused peer %s: %s", addr, refused);
		*why = TR_FORBIDDEN_PEER;
		return 403;
	}
	if (peer_for((struct sockaddr *)&raw, peer)) {
		*why = TR_FAMILY;
		return 443;
	}
	return 0;
}

/* ---- requests ---- */

static void on_binding(struct req *r)
{
	const struct stun_attr *u = stun_find(r->m, STUN_A_USERNAME);

	/* meet.c (main loop) must learn a participant's address: when the queue to it is full,
	 * no answer, so that the client's STUN retransmission tries again */
	if (u && r->t == TURN_UDP && !turn_thread_seen((const char *)u->v, u->len, r->client))
		return;
	turn_srv.m.bindings++;
	start_reply(r, STUN_SUCCESS);
	stun_add_addr(&r->b, STUN_A_XOR_MAPPED_ADDRESS, r->client, true);
	send_reply(r);
}

static void allocate_success(struct req *r, struct turn_alloc *al, uint32_t life)
{
	start_reply(r, STUN_SUCCESS);
	stun_add_addr(&r->b, STUN_A_XOR_RELAYED_ADDRESS, (struct sockaddr *)&al->relayed, true);
	stun_add_u32(&r->b, STUN_A_LIFETIME, life);
	stun_add_addr(&r->b, STUN_A_XOR_MAPPED_ADDRESS, r->client, true);
	send_reply(r);
}

static void on_allocate(struct req *r)
{
	struct turn *T = &turn_srv;
	struct turn_alloc *al = turn_alloc_find(r->t, r->client, r->st);
	const struct stun_attr *tr = stun_find(r->m, STUN_A_REQUESTED_TRANSPORT);
	const struct stun_attr *fam = stun_find(r->m, STUN_A_REQUESTED_ADDRESS_FAMILY);
	const struct stun_attr *even = stun_find(r->m, STUN_A_EVEN_PORT);
	struct turn_auth a __attribute__((cleanup(auth_wipe)));
	const char *why = NULL;
	uint32_t life;
	int code;

	if (!authenticate(r, &a, NULL))
		return;
	if (al) {
		/* a retransmission of the request that made it is answered alike */
		if (memcmp(al->tid, r->m->tid, STUN_TID) == 0 &&
		    strcmp(al->username, a.username) == 0)
			return allocate_success(r, al, seconds_left(al));
		return reply_error(r, 437, TR_MISMATCH);
	}
	if (!tr || tr->len != 4)
		return reply_error(r, 400, TR_BAD_REQUEST);
	if (tr->v[0] != IPPROTO_UDP && tr->v[0] != IPPROTO_TCP)
		return reply_error(r, 442, TR_TRANSPORT);
	/* RFC 6062 5.1: TCP relaying is asked for over TCP or TLS, and without these */
	if (tr->v[0] == IPPROTO_TCP &&
	    (r->t == TURN_UDP || even || stun_find(r->m, STUN_A_DONT_FRAGMENT)))
		return reply_error(r, 400, TR_BAD_REQUEST);
	if (even && (even->len != 1 || (even->v[0] & 0x80))) {
		/* reserving the next port (R bit) is not supported: as an unknown attribute */
		uint8_t t[2] = {STUN_A_EVEN_PORT >> 8, STUN_A_EVEN_PORT & 0xff};

		turn_refuse_count(TR_UNKNOWN_ATTR);
		start_reply(r, STUN_ERROR);
		stun_add_error(&r->b, 420, reason_of(420));
		stun_add(&r->b, STUN_A_UNKNOWN_ATTRIBUTES, t, 2);
		return send_reply(r);
	}
	if (fam && (fam->len != 4 || fam->v[0] != (T->listen_addr.ss_family == AF_INET ? 1 : 2)))
		return reply_error(r, 440, TR_FAMILY);
	if (turn_alloc_count_user(strchr(a.username, ':') + 1) >=
	    (size_t)T->o->turn_max_allocations_per_user) {
		if (log_budget("quota", a.username))
			log_info("refused an allocation for '%s': %lld allocations already (quota)",
			         strchr(a.username, ':') + 1,
			         (long long)T->o->turn_max_allocations_per_user);
		return reply_error(r, 486, TR_USER_QUOTA);
	}
	if (T->nallocs >= (size_t)T->o->turn_max_allocations) {
		if (log_budget("capacity", ""))
			log_notice("refused an allocation: %zu allocations in all "
			           "(--turn-max-allocations)",
			           T->nallocs);
		return reply_error(r, 508, TR_CAPACITY);
	}
	life = lifetime_of(r->m, a.expiry_s);
	if (life == 0)
		return reply_error(r, 400, TR_BAD_REQUEST); /* LIFETIME 0 on Allocate */
	al = turn_alloc_new(r->t, r->client, r->st, &a, even != NULL, tr->v[0] == IPPROTO_TCP,
	                    &code, &why);
	if (!al) {
		if (log_budget(why, ""))
			log_notice("refused an allocation: %s", why);
		return reply_error(r, code, TR_CAPACITY);
	}
	memcpy(al->tid, r->m->tid, STUN_TID);
	al->expires_ms = relay_mono_ms() + (int64_t)life * 1000;
	allocate_success(r, al, life);
}

static void on_refresh(struct req *r)
{
	struct turn_alloc *al = turn_alloc_find(r->t, r->client, r->st);
	struct turn_auth a __attribute__((cleanup(auth_wipe)));
	uint32_t life;

	if (!authenticate(r, &a, al))
		return;
	if (!al)
		return reply_error(r, 437, TR_MISMATCH);
	life = lifetime_of(r->m, al->cred_expiry_s);
	if (life == 0)
		turn_alloc_free(al, "refreshed with lifetime 0");
	else
		al->expires_ms = relay_mono_ms() + (int64_t)life * 1000;
	start_reply(r, STUN_SUCCESS);
	stun_add_u32(&r->b, STUN_A_LIFETIME, life);
	send_reply(r);
}

static void on_create_permission(struct req *r)
{
	struct turn_alloc *al = turn_alloc_find(r->t, r->client, r->st);
	struct sockaddr_storage peers[16];
	bool live_only[16];
	size_t n = 0;
	struct turn_auth a __attribute__((cleanup(auth_wipe)));
	enum turn_refusal why;
	int64_t now = relay_mono_ms();

	if (!authenticate(r, &a, al))
		return;
	if (!al)
		return reply_error(r, 437, TR_MISMATCH);
	for (size_t k = 0; k < r->m->n; k++) {
		int code;

		if (r->m->a[k].type != STUN_A_XOR_PEER_ADDRESS)
			continue;
		if (n == sizeof(peers) / sizeof(peers[0]))
			return reply_error(r, 508, TR_CAPACITY);
		code = check_peer(r, al, &r->m->a[k], true, &peers[n], &why, &live_only[n]);
		n++;
		if (code)
			return reply_error(r, code, why);
	}
	if (n == 0)
		return reply_error(r, 400, TR_BAD_REQUEST);
	for (size_t k = 0; k < n; k++)
		if (turn_perm_add(al, (struct sockaddr *)&peers[k], live_only[k], now))
			return reply_error(r, 508, TR_CAPACITY);
	start_reply(r, STUN_SUCCESS);
	send_reply(r);
}

static void on_channel_bind(struct req *r)
{
	struct turn_alloc *al = turn_alloc_find(r->t, r->client, r->st);
	const struct stun_attr *cn = stun_find(r->m, STUN_A_CHANNEL_NUMBER);
	struct sockaddr_storage peer;
	struct turn_auth a __attribute__((cleanup(auth_wipe)));
	enum turn_refusal why;
	uint16_t number;
	bool live_only;
	int code, err;

	if (!authenticate(r, &a, al))
		return;
	if (!al)
		return reply_error(r, 437, TR_MISMATCH);
	if (!cn || cn->len != 4 || al->tcp) /* RFC 6062: no channels on a TCP allocation */
		return reply_error(r, 400, TR_BAD_REQUEST);
	number = (uint16_t)(cn->v[0] << 8 | cn->v[1]);
	if (number < STUN_CHANNEL_MIN || number > STUN_CHANNEL_MAX)
		return reply_error(r, 400, TR_BAD_REQUEST);
	code = check_peer(r, al, stun_find(r->m, STUN_A_XOR_PEER_ADDRESS), false, &peer, &why,
	                  &live_only);
	if (code)
		return reply_error(r, code, why);
	err = turn_chan_bind(al, number, (struct sockaddr *)&peer, live_only, relay_mono_ms());
	if (err)
		return reply_error(r, err == -EINVAL ? 400 : 508,
		                   err == -EINVAL ? TR_BAD_REQUEST : TR_CAPACITY);
	start_reply(r, STUN_SUCCESS);
	send_reply(r);
}

/* RFC 6062 5.2: a TCP connection from the relayed address to a permitted peer; answered by
 * turn_tcp.c once made (or not). */
static void on_connect(struct req *r)
{
	struct turn_alloc *al = turn_alloc_find(r->t, r->client, r->st);
	struct sockaddr_storage peer;
	struct turn_auth a __attribute__((cleanup(auth_wipe)));
	enum turn_refusal why;
	int code;

	if (!authenticate(r, &a, al))
		return;
	if (!al)
		return reply_error(r, 437, TR_MISMATCH);
	if (!al->tcp)
		return reply_error(r, 400, TR_BAD_REQUEST); /* not a TCP allocation */
	code = check_peer(r, al, stun_find(r->m, STUN_A_XOR_PEER_ADDRESS), false, &peer, &why,
	                  NULL);
	if (code)
		return reply_error(r, code, why);
	if (!turn_perm_has(al, (struct sockaddr *)&peer, relay_mono_ms()))
		return reply_error(r, 403, TR_NO_PERMISSION);
	code = turn_tcp_connect(al, (struct sockaddr *)&peer, r->m->tid, &a);
	if (code)
		reply_error(r, code,
		            code == 446   ? TR_CONN_EXISTS
		            : code == 447 ? TR_CONNECT_FAILED
		                          : TR_CAPACITY);
}

/* RFC 6062 5.4: a new TCP/TLS connection of the client becomes a peer connection's data
 * connection, under the credentials of the allocation that made the peer connection. */
static void on_connection_bind(struct req *r)
{
	const struct stun_attr *ci = stun_find(r->m, STUN_A_CONNECTION_ID);
	struct turn_alloc *al = NULL;
	struct turn_auth a __attribute__((cleanup(auth_wipe)));
	uint32_t id = 0;

	if (ci && stun_u32_decode(ci, &id) == 0)
		al = turn_tcp_unbound(id);
	/* nonces are bound to the client's address: a data connection comes from a new port and
	 * presents its control connection's nonce (a 438 here would hand the client a nonce for
	 * the data connection's address, which it then sends on the control one: coturn's uclient
	 * does, and its retried Connect goes to another peer). */
	if (al && r->t != TURN_UDP)
		r->client = (struct sockaddr *)&al->client;
	if (!authenticate(r, &a, al))
		return;
	if (r->t == TURN_UDP || !r->st || r->st->alloc || r->st->conn || !al)
		return reply_error(r, 400, TR_BAD_REQUEST); /* unknown, expired or bound id */
	start_reply(r, STUN_SUCCESS);
	send_reply(r);
	turn_tcp_bind(id, r->st);
}

static void on_send(struct req *r)
{
	struct turn_alloc *al = turn_alloc_find(r->t, r->client, r->st);
	const struct stun_attr *d = stun_find(r->m, STUN_A_DATA);
	struct sockaddr_storage peer;
	enum turn_refusal why;

	if (!al || !d) {
		turn_refuse_count(al ? TR_MALFORMED : TR_MISMATCH);
		return;
	}
	/* checked per datagram: a relayed address is allowed only while its allocation lives */
	if (check_peer(r, al, stun_find(r->m, STUN_A_XOR_PEER_ADDRESS), false, &peer, &why, NULL)) {
		turn_refuse_count(why);
		return;
	}
	if (!turn_perm_has(al, (struct sockaddr *)&peer, relay_mono_ms())) {
		turn_refuse_count(TR_NO_PERMISSION);
		return;
	}
	turn_to_peer(al, (struct sockaddr *)&peer, d->v, d->len);
}

static void on_channel_data(enum turn_transport t, struct turn_stream *st,
                            const struct sockaddr *client, const uint8_t *p, size_t len)
{
	struct turn_alloc *al = turn_alloc_find(t, client, st);
	const struct turn_chan *ch;
	const uint8_t *data;
	size_t dlen;
	uint16_t number;

	if (stun_channel_parse(p, len, &number, &data, &dlen)) {
		turn_refuse_count(TR_MALFORMED);
		return;
	}
	if (!al) {
		turn_refuse_count(TR_MISMATCH);
		return;
	}
	ch = turn_chan_by_number(al, number, relay_mono_ms());
	if (!ch) {
		turn_refuse_count(TR_NO_PERMISSION);
		return;
	}
	if (ch->live_only && !turn_live_has(&turn_srv.live, (struct sockaddr *)&ch->peer)) {
		/* bound to a relayed address whose allocation has ended: the port is not ours */
		turn_refuse_count(TR_FORBIDDEN_PEER);
		return;
	}
	turn_to_peer(al, (struct sockaddr *)&ch->peer, data, dlen);
}

void turn_packet(enum turn_transport t, struct turn_stream *st, const struct sockaddr *client,
                 const uint8_t *p, size_t len)
{
	struct turn *T = &turn_srv;
	struct stun_msg m;
	struct req r;
	char addr[64];

	if (T->o->turn_packet_rate > 0) {
		turn_addr_text(client, addr, sizeof(addr));
		if (!relay_rate_allows(T->rate, TURN_RATE_SLOTS, addr, relay_mono_ms(),
		                       T->o->turn_packet_rate, T->o->turn_packet_rate)) {
			turn_refuse_count(TR_RATE);
			return;
		}
	}
	if (len >= 4 && (p[0] & 0xc0) == 0x40)
		return on_channel_data(t, st, client, p, len);
	if (stun_parse(p, len, &m) || (t == TURN_UDP && m.len != len) ||
	    (m.fp >= 0 && !stun_check_fingerprint(&m))) {
		turn_refuse_count(TR_MALFORMED);
		return;
	}
	memset(&r, 0, offsetof(struct req, out));
	r.t = t;
	r.st = st;
	r.client = client;
	r.m = &m;
	if (m.cls == STUN_SUCCESS || m.cls == STUN_ERROR)
		return; /* we send no requests */
	if (unknown_attrs(&r))
		return;
	if (m.cls == STUN_INDICATION) {
		if (m.method == STUN_SEND)
			on_send(&r);
		return;
	}
	switch (m.method) {
	case STUN_BINDING:
		return on_binding(&r);
	case STUN_ALLOCATE:
		return on_allocate(&r);
	case STUN_REFRESH:
		return on_refresh(&r);
	case STUN_CREATE_PERMISSION:
		return on_create_permission(&r);
	case STUN_CHANNEL_BIND:
		return on_channel_bind(&r);
	case STUN_CONNECT:
		return on_connect(&r);
	case STUN_CONNECTION_BIND:
		return on_connection_bind(&r);
	default:
		return reply_error(&r, 400, TR_BAD_REQUEST);
	}
}

/* ---- the UDP listener ---- */

static void on_udp(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                   unsigned flags)
{
	(void)h;
	if (nread <= 0 ||
	    !from) /* also the UV_UDP_MMSG_FREE call: turn_udp_alloc's buffer is static */
		return;
	if (flags & UV_UDP_PARTIAL) {
		turn_refuse_count(TR_MALFORMED);
		return;
	}
	turn_packet(TURN_UDP, NULL, from, (const uint8_t *)buf->base, (size_t)nread);
}

/* ---- once a second ---- */

static void on_timer(uv_timer_t *t)
{
	(void)t;
	turn_tcp_expire(relay_mono_ms());
	turn_alloc_expire(relay_mono_ms(), relay_now_ms() / 1000);
	turn_stream_expire(relay_mono_ms());
}

/* ---- start and stop ---- */

static int parse_hostport(const char *s, struct sockaddr_storage *ss)
{
	char host[128];
	const char *colon;
	char *end;
	long port;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		n = (size_t)(close - s - 1);
		colon = close + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - s);
	}
	if (n >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, n);
	host[n] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || colon[1] == '\0' || port < 0 || port > 65535)
		return -EINVAL;
	if (n == 0)
		snprintf(host, sizeof(host), "0.0.0.0");
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return -EINVAL;
}

/*
 * The REST secret from @path, read as `relay token turn` and coturn read it (the whole file less
 * trailing blanks and line ends): a secret longer than our buffer is refused, never cut, or every
 * credential minted from the whole file would fail as a wrong password with nothing saying why.
 */
static int read_secret(const char *path, char why[256])
{
	struct turn *T = &turn_srv;
	char *sec = NULL;
	size_t n;
	int err = secret_read_file(path, &sec);

	if (err) {
		snprintf(why, 256, "cannot read turn_secret_file '%.150s': %s", path,
		         err == -EFBIG ? "file too large" : strerror(-err));
		return err;
	}
	n = strlen(sec);
	while (n && (sec[n - 1] == '\n' || sec[n - 1] == '\r' || sec[n - 1] == ' '))
		n--;
	if (n == 0 || n >= sizeof(T->secret)) {
		snprintf(why, 256, "turn_secret_file '%.150s' %s", path,
		         n ? "holds a secret over 255 bytes (use a shorter one)" : "is empty");
		secret_free(sec);
		return -EINVAL;
	}
	memcpy(T->secret, sec, n);
	T->secret[n] = '\0';
	T->secret_len = n;
	secret_free(sec);
	return 0;
}

static int load_secret(struct server *s, char why[256])
{
	const struct relay_opts *o = s->o;
	struct turn *T = &turn_srv;

	if (o->turn_secret_file && *o->turn_secret_file)
		return read_secret(o->turn_secret_file, why);
	if (!rjwt_alg_is_hmac(s->verifier.alg)) {
		snprintf(why, 256,
		         "TURN with %s tokens needs --turn-secret-file (there is no shared "
		         "secret to derive it from)",
		         o->algorithm);
		return -EINVAL;
	}
	if (turncred_derive(s->keys[0].data, s->keys[0].len, T->secret)) {
		snprintf(why, 256, "cannot derive the TURN secret");
		return -EIO;
	}
	T->secret_len = strlen(T->secret);
	return 0;
}

/* The audience's host: "https://relay.example.org:8443/x" -> "relay.example.org". */
static void default_realm(const char *aud, char *out, size_t len)
{
	const char *h = strstr(aud, "://");
	size_t n;

	h = h ? h + 3 : aud;
	if (*h == '[') {
		n = strcspn(h + 1, "]");
		snprintf(out, len, "%.*s", (int)n, h + 1);
		return;
	}
	n = strcspn(h, ":/");
	snprintf(out, len, "%.*s", (int)n, h);
}

static int parse_ports(const char *s, int *lo, int *hi)
{
	char *end;
	long a = strtol(s, &end, 10), b;

	if (*end != '-')
		return -EINVAL;
	b = strtol(end + 1, &end, 10);
	if (*end || a < 1 || b > 65535 || a > b)
		return -EINVAL;
	*lo = (int)a;
	*hi = (int)b;
	return 0;
}

static int bound_port(uv_handle_t *h, bool udp, struct sockaddr_storage *ss)
{
	int n = sizeof(*ss);

	if (udp ? uv_udp_getsockname((uv_udp_t *)h, (struct sockaddr *)ss, &n)
	        : uv_tcp_getsockname((uv_tcp_t *)h, (struct sockaddr *)ss, &n))
		return 0;
	return turn_port_of((struct sockaddr *)ss);
}

static void set_port(struct sockaddr_storage *ss, int port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

/* Bound sockets for UDP and TCP on one port (with port 0 the kernel's TCP choice is tried for
 * UDP a few times): 0, or -errno. */
static int bind_pair(struct sockaddr_storage *addr, int *ufd, int *tfd)
{
	socklen_t len = addr->ss_family == AF_INET ? sizeof(struct sockaddr_in)
	                                           : sizeof(struct sockaddr_in6);
	bool any = turn_port_of((struct sockaddr *)addr) == 0;
	int one = 1, err = 0;

	for (int tries = 0; tries < 20; tries++) {
		struct sockaddr_storage ss = *addr;
		socklen_t n = sizeof(ss);

		*tfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		*ufd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (*tfd < 0 || *ufd < 0 ||
		    setsockopt(*tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
		    bind(*tfd, (struct sockaddr *)&ss, len) ||
		    getsockname(*tfd, (struct sockaddr *)&ss, &n) ||
		    bind(*ufd, (struct sockaddr *)&ss, len)) {
			err = -errno;
			if (*tfd >= 0)
				close(*tfd);
			if (*ufd >= 0)
				close(*ufd);
			if (any && err == -EADDRINUSE)
				continue;
			return err;
		}
		*addr = ss;
		return 0;
	}
	return err;
}

static int listen_plain(struct turn *T, char why[256])
{
	int ufd, tfd, err = bind_pair(&T->listen_addr, &ufd, &tfd);

	if (err) {
		snprintf(why, 256, "cannot listen for TURN on '%s': %s", T->o->turn_listen,
		         strerror(-err));
		return err;
	}
	T->port = turn_port_of((struct sockaddr *)&T->listen_addr);
	turn_udp_init(T->loop, &T->udp);
	uv_tcp_init(T->loop, &T->tcp);
	T->udp_on = T->tcp_on = true;
	err = uv_udp_open(&T->udp, ufd);
	if (err)
		close(ufd);
	if (uv_tcp_open(&T->tcp, tfd)) {
		close(tfd);
		err = -EIO;
	}
	if (!err)
		err = uv_listen((uv_stream_t *)&T->tcp, 128, turn_stream_on_connection);
	if (!err) {
		turn_udp_buffers(&T->udp, T->o->turn_socket_buffer, "UDP listener");
		err = turn_udp_recv_start(&T->udp, &T->udp_pause, on_udp);
	}
	if (err) {
		snprintf(why, 256, "cannot listen for TURN on '%s': %s", T->o->turn_listen,
		         uv_strerror(err));
		return -EIO;
	}
	return 0;
}

/*
 * The HTTP or metrics listener's address ("127.0.0.1:8443", "[::1]:8443", ":8443" for every
 * interface) into @ss. relay_run() checked it; should it not parse here, it counts as a
 * wildcard, which refuses more rather than less.
 */
static void listener_addr(const char *listen, struct sockaddr_storage *ss)
{
	if (!listen || !*listen)
		return;
	if (parse_hostport(listen, ss))
		uv_ip4_addr("0.0.0.0", 0, (struct sockaddr_in *)ss);
}

/* --turn-external-ip is another address of this machine than the specific IP the relayed
 * sockets are bound on: a datagram to it on a relay port reaches whatever local socket holds
 * that port there, not ours, so it is no live relayed address (turn_announced_lands()). */
static void external_not_live(const struct turn *T)
{
	char ext[64], bound[64];

	uv_ip_name((const struct sockaddr *)&T->external, ext, sizeof(ext));
	uv_ip_name((const struct sockaddr *)&T->listen_addr, bound, sizeof(bound));
	log_warn("--turn-external-ip %s is an address of this machine, but relayed sockets are "
	         "bound on the TURN listener's IP (%s): datagrams to it do not reach them, so "
	         "clients of this relay cannot relay to each other (and outside peers reach "
	         "relayed ports only through a local DNAT); listen on that IP or on a wildcard "
	         "(docs/turn.md, Safety)",
	         ext, bound);
}

/*
 * The relay's own addresses for the peer filter: 0.0.0.0/8 always, every listener's IP (TURN,
 * TURNS, HTTP, metrics) and --turn-external-ip; a wildcard listener makes every address of the
 * machine ours (loopback's whole network), as a peer at any of them would be the relay talking
 * to itself (a TURN loop, or TURN reaching its own HTTP port). Read once at start: addresses
 * beyond TURN_OWN_MAX are logged; they are not refused as our own. The IPs of relayed
 * addresses go in T->live, whose ports bind_relay() marks.
 */
static int own_addresses(struct turn *T)
{
	struct turn_own *own = calloc(1, sizeof(*own));
	struct sockaddr_storage ips[5] = {T->listen_addr, T->tls_addr, T->external};
	uv_interface_address_t *ifs = NULL;
	int nifs = 0;
	bool wildcard = false;
	size_t left_out;

	if (!own)
		return -ENOMEM;
	listener_addr(T->o->listen, &ips[3]);
	listener_addr(T->o->metrics_listen, &ips[4]);
	for (int k = 0; k < 5; k++)
		wildcard = wildcard ||
		           (ips[k].ss_family && turn_is_wildcard((struct sockaddr *)&ips[k]));
	/* --turn-external-ip: whether it is this machine's decides whether it is live */
	if ((wildcard || T->has_external) && uv_interface_addresses(&ifs, &nifs)) {
		log_warn("cannot list this machine's addresses: peers at them are not refused as "
		         "ours, and --turn-external-ip is taken as live only when it is the "
		         "listener's IP");
		ifs = NULL, nifs = 0;
	}
	left_out = turn_own_build(own, ips, 5, wildcard ? ifs : NULL, wildcard ? (size_t)nifs : 0);
	if (left_out)
		log_warn("over %d addresses of this relay: %zu are not refused as ours",
		         TURN_OWN_MAX, left_out);
	T->own = own;
	if (!turn_live_init(&T->live,
	                    (struct sockaddr *)(T->has_external ? &T->external : &T->listen_addr),
	                    (struct sockaddr *)&T->listen_addr, ifs, (size_t)nifs))
		external_not_live(T);
	if (ifs)
		uv_free_interface_addresses(ifs, nifs);
	return 0;
}

static int configure(struct server *s, char why[256])
{
	const struct relay_opts *o = s->o;
	struct turn *T = &turn_srv;
	char cwhy[128];

	if (o->turn_listen && *o->turn_listen && parse_hostport(o->turn_listen, &T->listen_addr)) {
		snprintf(why, 256, "invalid turn_listen '%.100s': expected IP:PORT or [V6]:PORT",
		         o->turn_listen);
		return -EINVAL;
	}
	if (o->turns_listen && *o->turns_listen) {
		if (parse_hostport(o->turns_listen, &T->tls_addr)) {
			snprintf(why, 256, "invalid turns_listen '%.100s': expected IP:PORT",
			         o->turns_listen);
			return -EINVAL;
		}
		if (!o->cert || !*o->cert || !o->key || !*o->key) {
			snprintf(why, 256, "turns_listen needs --cert and --key");
			return -EINVAL;
		}
		if (!T->listen_addr.ss_family)
			T->listen_addr = T->tls_addr, set_port(&T->listen_addr, 0);
	}
	if (o->turn_external_ip && *o->turn_external_ip) {
		char text[160];

		snprintf(text, sizeof(text), "%s:0", o->turn_external_ip);
		if (strchr(o->turn_external_ip, ':'))
			snprintf(text, sizeof(text), "[%s]:0", o->turn_external_ip);
		if (parse_hostport(text, &T->external) ||
		    T->external.ss_family != T->listen_addr.ss_family) {
			snprintf(why, 256,
			         "invalid turn_external_ip '%.60s': an IP of the listener's family",
			         o->turn_external_ip);
			return -EINVAL;
		}
		T->has_external = true;
	} else if (turn_is_wildcard((struct sockaddr *)&T->listen_addr)) {
		snprintf(why, 256,
		         "TURN on a wildcard address needs --turn-external-ip (the address "
		         "clients reach relayed ports at)");
		return -EINVAL;
	}
	if (parse_ports(o->turn_relay_ports, &T->relay_lo, &T->relay_hi)) {
		snprintf(why, 256, "invalid turn_relay_ports '%.60s': expected LOW-HIGH",
		         o->turn_relay_ports);
		return -EINVAL;
	}
	T->allow = calloc(64, sizeof(*T->allow));
	if (!T->allow || turn_cidr_list_parse(o->turn_allow_peer, T->allow, 64, &T->nallow, cwhy)) {
		snprintf(why, 256, "invalid turn_allow_peer: %s",
		         T->allow ? cwhy : "out of memory");
		return -EINVAL;
	}
	if (o->turn_realm && *o->turn_realm)
		snprintf(T->realm, sizeof(T->realm), "%s", o->turn_realm);
	else
		default_realm(s->verifier.audience, T->realm, sizeof(T->realm));
	return load_secret(s, why);
}

int relay_turn_configure(struct server *s, char why[256])
{
	struct turn *T = &turn_srv;
	const struct relay_opts *o = s->o;

	memset(T, 0, offsetof(struct turn, rx));
	if ((!o->turn_listen || !*o->turn_listen) && (!o->turns_listen || !*o->turns_listen))
		return 0;
	T->s = s;
	T->o = o;
	return configure(s, why);
}

int relay_turn_start(struct server *s, uv_loop_t *loop, char why[256])
{
	struct turn *T = &turn_srv;
	const struct relay_opts *o = s->o;
	bool plain = o->turn_listen && *o->turn_listen;
	bool tls = o->turns_listen && *o->turns_listen;
	char addr[64];
	int err;

	if (!plain && !tls)
		return 0;
	/* everything is set up here on the main thread, before the TURN thread runs its loop */
	err = turn_thread_init(why);
	if (err)
		return err;
	T->loop = turn_thread_loop();
	T->hash_size = (size_t)o->turn_max_allocations * 2 + 1;
	T->hash = calloc(T->hash_size, sizeof(*T->hash));
	T->rate = calloc(TURN_RATE_SLOTS, sizeof(*T->rate));
	if (!T->hash || !T->rate || RAND_bytes(T->nonce_key, sizeof(T->nonce_key)) != 1) {
		snprintf(why, 256, "out of memory");
		return -ENOMEM;
	}
	T->relay_next = (int)(relay_mono_ns() % (T->relay_hi - T->relay_lo + 1));
	if (plain && (err = listen_plain(T, why)))
		return err;
	if (tls) {
		err = turn_tls_init(o->cert, o->key, why);
		if (!err)
			err = turn_stream_listen(&T->tls, (struct sockaddr *)&T->tls_addr, true,
			                         why);
		if (err)
			return err;
		T->tls_on = true;
		T->tls_port = bound_port((uv_handle_t *)&T->tls, false, &T->tls_addr);
	}
	if (own_addresses(T)) {
		snprintf(why, 256, "out of memory");
		return -ENOMEM;
	}
	uv_timer_init(T->loop, &T->timer);
	uv_timer_start(&T->timer, on_timer, 1000, 1000);
	T->timer_on = true;
	turn_udp_pass_init(T->loop);
	if (plain) {
		turn_addr_text((struct sockaddr *)&T->listen_addr, addr, sizeof(addr));
		log_notice("turn listening on udp+tcp %s (realm '%s', relay ports %d-%d)", addr,
		           T->realm, T->relay_lo, T->relay_hi);
	}
	if (tls) {
		turn_addr_text((struct sockaddr *)&T->tls_addr, addr, sizeof(addr));
		log_notice("turns listening on tls %s (realm '%s')", addr, T->realm);
	}
	return turn_thread_run(s, loop, why);
}

/* On the TURN loop (or the main thread when it never ran): close every handle. */
static void close_all(void)
{
	struct turn *T = &turn_srv;

	while (T->allocs)
		turn_alloc_free(T->allocs, "server stopping");
	while (T->streams)
		turn_stream_close(T->streams);
	turn_udp_pass_close();
	if (T->udp_on)
		uv_close((uv_handle_t *)&T->udp, NULL);
	if (T->tcp_on)
		uv_close((uv_handle_t *)&T->tcp, NULL);
	if (T->tls_on)
		uv_close((uv_handle_t *)&T->tls, NULL);
	if (T->timer_on)
		uv_close((uv_handle_t *)&T->timer, NULL);
	T->udp_on = T->tcp_on = T->tls_on = T->timer_on = false;
}

void relay_turn_stop(void)
{
	struct turn *T = &turn_srv;

	if (T->loop)
		turn_thread_stop(close_all); /* joined: what follows is the main thread's */
	T->loop = NULL;
	free(T->hash);
	free(T->rate);
	free(T->allow);
	free(T->own);
	T->hash = NULL;
	T->rate = NULL;
	T->allow = NULL;
	T->own = NULL;
	if (T->ssl_ctx)
		SSL_CTX_free(T->ssl_ctx);
	T->ssl_ctx = NULL;
	OPENSSL_cleanse(T->secret, sizeof(T->secret));
	OPENSSL_cleanse(T->nonce_key, sizeof(T->nonce_key));
}

/* ---- deny, metrics, status ---- */

struct end_bookings {
	const char *const *bids;
	size_t nbids, n;
};

static void end_bookings(void *arg)
{
	struct end_bookings *e = arg;
	struct turn_alloc *next;

	for (struct turn_alloc *al = turn_srv.allocs; al; al = next) {
		next = al->next;
		for (size_t i = 0; i < e->nbids; i++) {
			if (strcmp(al->user, e->bids[i]) == 0) {
				turn_alloc_free(al, "booking denied");
				turn_refuse_count(TR_DENIED);
				e->n++;
				break;
			}
		}
	}
}

/* Many bookings in one round trip to the TURN thread (a cluster's link-up load). */
size_t relay_turn_end_bookings(const char *const *bids, size_t n)
{
	struct end_bookings e = {.bids = bids, .nbids = n};

	if (!relay_turn_on() || !n)
		return 0;
	turn_thread_call(end_bookings, &e);
	return e.n;
}

size_t relay_turn_end_booking(const char *bid)
{
	return relay_turn_end_bookings(&bid, 1);
}

static void metric(FILE *f, const char *name, const char *type, const char *help, double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %.0f\n", name, help, name, type, name, v);
}

/* The counters as the TURN loop has them, copied for the main thread. */
struct metrics_copy {
	struct turn_metrics m;
	size_t allocs, perms, chans, tcp_conns;
};

static void copy_metrics(void *arg)
{
	struct metrics_copy *c = arg;

	c->m = turn_srv.m;
	c->allocs = turn_srv.nallocs;
	c->tcp_conns = turn_tcp_count();
	for (const struct turn_alloc *al = turn_srv.allocs; al; al = al->next)
		c->perms += al->nperms, c->chans += al->nchans;
}

void relay_turn_metrics(FILE *f)
{
	struct metrics_copy c = {0};
	const struct turn_metrics *m = &c.m;

	if (!relay_turn_on())
		return;
	turn_thread_call(copy_metrics, &c);
	metric(f, "relay_turn_allocations", "gauge", "TURN allocations now.", (double)c.allocs);
	metric(f, "relay_turn_permissions", "gauge", "TURN permissions now.", (double)c.perms);
	metric(f, "relay_turn_channels", "gauge", "TURN channel bindings now.", (double)c.chans);
	metric(f, "relay_turn_allocations_total", "counter", "TURN allocations made.",
	       (double)m->allocations_total);
	metric(f, "relay_turn_permissions_total", "counter", "TURN permissions installed.",
	       (double)m->permissions_total);
	metric(f, "relay_turn_channels_total", "counter", "TURN channels bound.",
	       (double)m->channels_total);
	metric(f, "relay_turn_bindings_total", "counter", "STUN Binding requests answered.",
	       (double)m->bindings);
	metric(f, "relay_turn_udp_pauses_total", "counter",
	       "TURN UDP sockets left for the next loop pass (the per-pass datagram budget was spent).",
	       (double)m->udp_pauses);
	metric(f, "relay_turn_bindings_dropped_total", "counter",
	       "STUN Bindings with USERNAME dropped unanswered because the queue to the main loop "
	       "(meetings) was full; the client retransmits.",
	       (double)turn_thread_seen_dropped());
	metric(f, "relay_turn_to_peer_packets_total", "counter", "Datagrams relayed to peers.",
	       (double)m->to_peer_pkts);
	metric(f, "relay_turn_to_peer_bytes_total", "counter", "Bytes relayed to peers.",
	       (double)m->to_peer_bytes);
	metric(f, "relay_turn_from_peer_packets_total", "counter", "Datagrams relayed from peers.",
	       (double)m->from_peer_pkts);
	metric(f, "relay_turn_from_peer_bytes_total", "counter", "Bytes relayed from peers.",
	       (double)m->from_peer_bytes);
	metric(f, "relay_turn_tcp_connections", "gauge",
	       "TURN TCP peer connections now (RFC 6062), bound or waiting for ConnectionBind.",
	       (double)c.tcp_conns);
	metric(f, "relay_turn_tcp_connections_total", "counter",
	       "TURN TCP peer connections made or accepted (RFC 6062).",
	       (double)m->tcp_conns_total);
	metric(f, "relay_turn_tcp_to_peer_bytes_total", "counter",
	       "Bytes relayed to peers over TCP connections (also in relay_turn_to_peer_bytes_total).",
	       (double)m->tcp_to_peer_bytes);
	metric(f, "relay_turn_tcp_from_peer_bytes_total", "counter",
	       "Bytes relayed from peers over TCP connections (also in "
	       "relay_turn_from_peer_bytes_total).",
	       (double)m->tcp_from_peer_bytes);
	metric(f, "relay_turn_tcp_pauses_total", "counter",
	       "Times one side of a TURN TCP connection was not read while the other side's queue "
	       "was full or --turn-bandwidth was spent (back-pressure).",
	       (double)m->tcp_pauses);
	metric(f, "relay_turn_stream_buffered_bytes", "gauge",
	       "Output and partial-frame input buffers of TURN over TCP/TLS (capacity, in flight "
	       "included) of connections with an allocation, counted against --max-memory after "
	       "websockets.",
	       (double)relay_turn_stream_held());
	metric(f, "relay_turn_stream_unallocated_bytes", "gauge",
	       "The same for TCP/TLS connections without an allocation (partial requests of at most "
	       "2 KiB, STUN answers), bounded per connection and outside --max-memory.",
	       (double)relay_turn_stream_unallocated());
	fprintf(f, "# HELP relay_turn_refused_total TURN requests refused and packets dropped, by "
	           "reason (stream_queue_full: frames to a TCP/TLS client whose queue is full; "
	           "memory_budget: frames to a TCP/TLS client dropped because --max-memory has no "
	           "room left by websockets; memory_budget_closed: TCP/TLS clients closed because "
	           "--max-memory had no room for the partial frame they were sending; "
	           "large_frame_unallocated: TCP/TLS clients without an allocation closed for "
	           "sending a frame over 2 KiB in pieces).\n# TYPE "
	           "relay_turn_refused_total counter\n");
	for (int k = 0; k < TR_N; k++)
		fprintf(f, "relay_turn_refused_total{reason=\"%s\"} %llu\n", refusal_names[k],
		        (unsigned long long)m->refused[k]);
}

/* On the TURN loop: a new object the main thread takes over (nothing else holds it). */
static void status_json(void *arg)
{
	json_t *o = arg;

	for (const struct turn_alloc *al = turn_srv.allocs; o && al; al = al->next) {
		json_t *n = json_object_get(o, al->user);

		json_object_set_new(o, al->user, json_integer(n ? json_integer_value(n) + 1 : 1));
	}
}

json_t *relay_turn_status_json(void)
{
	json_t *o = json_object();

	if (o && relay_turn_on())
		turn_thread_call(status_json, o);
	return o;
}

static void add(json_t *o, const char *key, uint64_t n)
{
	json_object_set_new(
	        o, key, json_integer(json_integer_value(json_object_get(o, key)) + (json_int_t)n));
}

static void bookings_json(void *arg)
{
	json_t *o = arg;

	for (const struct turn_alloc *al = turn_srv.allocs; al; al = al->next) {
		json_t *b = json_object_get(o, al->user);

		if (!b && json_object_set_new(o, al->user, b = json_object()) < 0)
			continue;
		add(b, "allocations", 1);
		add(b, "to_peer_packets", al->pkts[0]);
		add(b, "to_peer_bytes", al->bytes[0]);
		add(b, "from_peer_packets", al->pkts[1]);
		add(b, "from_peer_bytes", al->bytes[1]);
	}
}

/* Per booking: allocations and the bytes relayed each way, for /status's "turn" entries. */
json_t *relay_turn_bookings_json(void)
{
	json_t *o = json_object();

	if (o && relay_turn_on())
		turn_thread_call(bookings_json, o);
	return o;
}
