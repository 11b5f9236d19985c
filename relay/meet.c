/*
 * relay/meet: /meet/{id}, rendezvous by shared secret (issue 13; Discret's beacon). Peers that
 * hold the same secret open /meet/{hex SHA-256 of it} and learn each other's public addresses:
 * the TCP one of their websocket, and the UDP one once they send a STUN Binding request whose
 * USERNAME is the tag of their welcome (relay_meet_udp_seen: the STUN server, on its own thread,
 * queues the Binding and the main loop makes this call, so meetings stay single-threaded). The
 * secret never reaches the server; meetings never learn about each other.
 *
 * A participant: access call -> redemption (admit: 409 when MEET_MAX are in) -> established
 * (welcome with tag, "peer" both ways) -> (udp seen: "peer" again to the others) -> closed
 * ("left" to the others; the meeting ends with its last participant).
 */
#define LOG_MODULE "meet"
#include "relay/signal.h"
#include "relay/cluster.h"
#include "pkg/log/log.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define MEET_MAX      16 /* participants of one meeting */
#define MEET_ID_LEN   64 /* hex digits of a SHA-256 */
#define MEET_BUCKETS  1024
#define TAG_BYTES     16 /* random: the tag is what lets a UDP packet speak for a participant */
#define PEER_ID_BYTES 8
#define ADDR_STR      80

struct meeting {
	struct meeting *next; /* hash chain */
	struct part *parts;
	size_t n;
	char id[MEET_ID_LEN + 1];
};

struct part {
	struct conn *c;
	struct meeting *m;
	struct part *next, *prev; /* in m->parts */
	struct part *tnext;       /* tag hash chain */
	char tag[2 * TAG_BYTES + 1];
	char pid[2 * PEER_ID_BYTES + 1]; /* what the others call it */
	char tcp[ADDR_STR];
	char udp[ADDR_STR]; /* "" until a STUN Binding with the tag arrives */
	struct sig_out out;
};

static struct meeting *meet_tab[MEET_BUCKETS];
static struct part *tag_tab[MEET_BUCKETS];

static unsigned hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

static bool valid_id(const char *id)
{
	return strlen(id) == MEET_ID_LEN && strspn(id, "0123456789abcdef") == MEET_ID_LEN;
}

static struct meeting *meeting_find(const char *id)
{
	for (struct meeting *m = meet_tab[hash(id) % MEET_BUCKETS]; m; m = m->next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

static size_t meeting_size(const char *id)
{
	struct meeting *m = meeting_find(id);

	/* with those at other instances (heard of: two joins at two instances may both pass) */
	return (m ? m->n : 0) + relay_cluster_meet_count(id);
}

/* ---- addresses ---- */

/* "IP:PORT" ("[IP]:PORT" for IPv6; an IPv4-mapped address as IPv4) into @out. */
static void addr_string(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN];

	out[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		if (inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)))
			snprintf(out, len, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
		    inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, sizeof(ip)))
			snprintf(out, len, "%s:%u", ip, ntohs(in6->sin6_port));
		else if (inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)))
			snprintf(out, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
	}
}

/*
 * The participant's TCP address: its socket's peer. Behind a trusted proxy the socket is the
 * proxy's: the forwarded IP is given then, with port 0 (a proxy does not forward the port).
 */
static void tcp_address(struct conn *c, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd = lws_get_socket_fd(lws_get_network_wsi(c->wsi));

	if (relay_srv.o->trust_forwarded_for) {
		snprintf(out, len, strchr(c->remote, ':') ? "[%s]:0" : "%s:0", c->remote);
		return;
	}
	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(out, len, "%s:0", c->remote);
		return;
	}
	addr_string((const struct sockaddr *)&ss, out, len);
}

/* ---- messages ---- */

static char *dump(json_t *o, size_t *n)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (s)
		*n = strlen(s);
	return s;
}

static void send_json(struct part *p, json_t *o)
{
	size_t n = 0;

	sig_out_push(p->c, &p->out, dump(o, &n));
}

/* Tell @to about @about. */
static void send_peer(struct part *to, const struct part *about)
{
	send_json(to, json_pack("{s:s, s:s, s:s, s:s?}", "type", "peer", "peer", about->pid, "tcp",
	                        about->tcp, "udp", about->udp[0] ? about->udp : NULL));
}

/* Tell @arg (a participant here) about one at another instance. */
static void peer_remote(const char *pid, const char *tcp, const char *udp, void *arg)
{
	send_json(arg, json_pack("{s:s, s:s, s:s, s:s?}", "type", "peer", "peer", pid, "tcp", tcp,
	                         "udp", udp[0] ? udp : NULL));
}

static void send_error(struct part *p, const char *code, const char *message)
{
	send_json(p,
	          json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message));
}

/* ---- the access call and redemption ---- */

int relay_meet_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                      const char *rest)
{
	struct rjwt_claims cl;
	struct grant g = {0};
	int ret;

	if (relay_access_not_post(wsi, c, m, &ret))
		return ret;
	if (!valid_id(rest))
		return relay_respond_error(
		        wsi, c, 400,
		        "meeting id must be 64 lowercase hex digits (SHA-256 of the secret)");
	/* the meeting id stays out of the log */
	if (!relay_access_grant(s, wsi, c, rest, "meet", false, &cl, &g, &ret))
		return ret;
	rjwt_claims_release(&cl);
	if (meeting_size(rest) >= MEET_MAX)
		return relay_respond_error(wsi, c, 409, RELAY_WHY_MEETING_FULL);
	return relay_answer_code(s, wsi, c, &g, ISSUE_LOCAL, NULL);
}

static int admit(const struct grant *g, const char **why)
{
	if (meeting_size(g->topic) >= MEET_MAX) {
		*why = RELAY_WHY_MEETING_FULL;
		return 409;
	}
	return 0;
}

/* ---- the websocket ---- */

static void hex(const unsigned char *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static struct meeting *meeting_get(const char *id)
{
	struct meeting *m = meeting_find(id);
	unsigned h = hash(id) % MEET_BUCKETS;

	if (m || !(m = calloc(1, sizeof(*m))))
		return m;
	snprintf(m->id, sizeof(m->id), "%.64s", id);
	m->next = meet_tab[h];
	meet_tab[h] = m;
	return m;
}

static void meeting_drop_if_empty(struct meeting *m)
{
	struct meeting **pp = &meet_tab[hash(m->id) % MEET_BUCKETS];

	if (m->n)
		return;
	while (*pp && *pp != m)
		pp = &(*pp)->next;
	if (*pp)
		*pp = m->next;
	OPENSSL_cleanse(m->id, sizeof(m->id));
	free(m);
}

static int new_part(struct conn *c, struct part **out)
{
	unsigned char rnd[TAG_BYTES + PEER_ID_BYTES];
	struct part *p;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1 || !(p = calloc(1, sizeof(*p))))
		return -1;
	p->c = c;
	hex(rnd, TAG_BYTES, p->tag);
	hex(rnd + TAG_BYTES, PEER_ID_BYTES, p->pid);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	tcp_address(c, p->tcp, sizeof(p->tcp));
	*out = p;
	return 0;
}

static int established(struct server *s, struct conn *c)
{
	struct meeting *m = meeting_get(c->grant.topic);
	struct part *p = NULL;
	unsigned h;

	if (!m || new_part(c, &p)) {
		if (m)
			meeting_drop_if_empty(m);
		relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
		return 0;
	}
	if (meeting_size(m->id) >= MEET_MAX) { /* inside HTTP/2 admit() did not run */
		free(p);
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "meeting-full");
		return 0;
	}
	p->m = m;
	p->next = m->parts;
	if (m->parts)
		m->parts->prev = p;
	m->parts = p;
	m->n++;
	h = hash(p->tag) % MEET_BUCKETS;
	p->tnext = tag_tab[h];
	tag_tab[h] = p;
	c->kind_data = p;
	send_json(p, json_pack("{s:s, s:s, s:o}", "type", "welcome", "tag", p->tag, "iceServers",
	                       relay_ice_servers(s, &c->grant)));
	for (struct part *q = m->parts; q; q = q->next) {
		if (q == p)
			continue;
		send_peer(p, q);
		send_peer(q, p);
	}
	relay_cluster_meet_each(m->id, peer_remote, p);
	relay_cluster_meet_here(m->id, p->pid, p->tcp, p->udp);
	logt_info(c->tag, "meeting participant %s from %s (%zu in the meeting)", p->pid, p->tcp,
	          m->n);
	return 0;
}

static void receive(struct conn *c, const uint8_t *in, size_t len, bool first, bool final,
                    bool binary)
{
	struct part *p = c->kind_data;

	(void)in, (void)len, (void)first, (void)binary;
	if (p && final)
		send_error(p, "bad-message", "a meeting takes no messages: just listen");
}

static int writeable(struct lws *wsi, struct conn *c)
{
	struct part *p = c->kind_data;

	return p ? sig_out_write(wsi, c, &p->out) : 0;
}

static void closed(struct conn *c)
{
	struct part *p = c->kind_data, **pp;
	struct meeting *m;

	if (!p)
		return;
	c->kind_data = NULL;
	m = p->m;
	for (pp = &tag_tab[hash(p->tag) % MEET_BUCKETS]; *pp && *pp != p; pp = &(*pp)->tnext)
		;
	if (*pp)
		*pp = p->tnext;
	if (p->prev)
		p->prev->next = p->next;
	else
		m->parts = p->next;
	if (p->next)
		p->next->prev = p->prev;
	m->n--;
	for (struct part *q = m->parts; q; q = q->next)
		send_json(q, json_pack("{s:s, s:s}", "type", "left", "peer", p->pid));
	relay_cluster_meet_left(m->id, p->pid);
	meeting_drop_if_empty(m);
	sig_out_clear(&p->out);
	OPENSSL_cleanse(p->tag, sizeof(p->tag));
	free(p);
}

const struct relay_kind relay_kind_meet = {
        .name = "meet",
        .established = established,
        .receive = receive,
        .writeable = writeable,
        .closed = closed,
        .admit = admit,
};

void relay_meet_udp_seen(struct server *s, const char *tag, size_t len, const struct sockaddr *from)
{
	char t[2 * TAG_BYTES + 1], udp[ADDR_STR];
	struct part *p;

	(void)s;
	if (len != 2 * TAG_BYTES)
		return;
	memcpy(t, tag, len);
	t[len] = '\0';
	for (p = tag_tab[hash(t) % MEET_BUCKETS]; p; p = p->tnext)
		if (CRYPTO_memcmp(p->tag, t, len) == 0)
			break;
	/* the tag is a capability: the copy goes before any return (none is made before it) */
	OPENSSL_cleanse(t, sizeof(t));
	if (!p)
		return;
	addr_string(from, udp, sizeof(udp));
	if (!udp[0] || strcmp(udp, p->udp) == 0)
		return;
	memcpy(p->udp, udp, sizeof(udp));
	logt_info(p->c->tag, "meeting participant %s: udp %s", p->pid, p->udp);
	for (struct part *q = p->m->parts; q; q = q->next)
		if (q != p)
			send_peer(q, p);
	relay_cluster_meet_here(p->m->id, p->pid, p->tcp, p->udp);
}

/* ---- other instances (cluster_meet.c) ---- */

void relay_meet_remote(const char *meeting, const char *pid, const char *tcp, const char *udp)
{
	struct meeting *m = meeting_find(meeting);

	for (struct part *q = m ? m->parts : NULL; q; q = q->next)
		if (tcp)
			peer_remote(pid, tcp, udp, q);
		else
			send_json(q, json_pack("{s:s, s:s}", "type", "left", "peer", pid));
}

void relay_meet_each_local(void (*cb)(const char *meeting, const char *pid, const char *tcp,
                                      const char *udp, void *arg),
                           void *arg)
{
	for (size_t i = 0; i < MEET_BUCKETS; i++)
		for (struct meeting *m = meet_tab[i]; m; m = m->next)
			for (struct part *p = m->parts; p; p = p->next)
				cb(m->id, p->pid, p->tcp, p->udp, arg);
}

json_t *relay_meet_json(const struct conn *c)
{
	const struct part *p = c->kind_data;

	if (!p)
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "kind", "meet", "meeting", p->m->id, "peer",
	                 p->pid, "tcp", p->tcp, "udp", p->udp);
}
