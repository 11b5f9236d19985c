/*
 * relay/turn_peer: which peer addresses TURN relays to. By default none of the private,
 * loopback, link-local, multicast, reserved or unspecified ranges, and not the relay itself,
 * after unwrapping IPv4 written as IPv6 (::ffff:a.b.c.d, ::a.b.c.d, 64:ff9b::a.b.c.d), so a
 * client cannot reach the relay's own network (coturn CVE-2020-26262 and its IPv6 forms).
 * IPv6 forms that hand a packet to an IPv4 address chosen by the bits of the address without
 * being the same address are refused when that IPv4 would be: 6to4 (2002:V4::/48, a sit tunnel
 * sends to V4), Teredo (2001:0:SERVER::~CLIENT, both checked) and SIIT's IPv4-translated
 * ::ffff:0:a.b.c.d. The local-use NAT64 prefix 64:ff9b:1::/48 is refused as a whole: it is the
 * operator's own translator and where it puts the IPv4 depends on its prefix length.
 * The relay's own IPs are refused on every port, to UDP and TCP allocations alike: a UDP
 * allocation must not reach a resolver, NTP or SNMP bound to 0.0.0.0 on the relay's host.
 * --turn-allow-peer CIDRs win over every default, but open one of the relay's own addresses only
 * when they name it (a /32 or /128): a CIDR for the network the relay sits in does not open the
 * relay itself, nor does one covering a 6to4, Teredo or SIIT form whose IPv4 is the relay's.
 * turn_own_build() gathers those addresses (0.0.0.0/8 always). One exception comes first: a UDP
 * allocation may send to the relayed transport address of a live UDP allocation of this relay
 * (struct turn_live), a socket the relay owns, so that two clients of one relay reach each other.
 * The announced IP (--turn-external-ip) counts only where a datagram to it lands in our sockets
 * (turn_announced_lands()). On those IPs, which every user's relayed socket sends from, an
 * allocation's permissions are per transport address, not per IP (turn_perm_put()): B's
 * permission for A's relayed address lets in neither another user's nor a local process's
 * datagrams. Pure: no I/O.
 */
#include "relay/turn_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
static const uint8_t zero12[12];

void turn_ip16(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, v4mapped, 12);
		memcpy(out + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return;
	}
	memcpy(out, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
	if (memcmp(out, nat64, 12) == 0 || memcmp(out, zero12, 12) == 0)
		memcpy(out, v4mapped, 12); /* ::a.b.c.d (and so :: and ::1) and NAT64 */
}

uint16_t turn_port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

void turn_addr_text(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, turn_port_of(sa));
	} else {
		if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip,
			          sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, turn_port_of(sa));
	}
}

bool turn_addr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	uint8_t x[16], y[16];

	if (a->sa_family != b->sa_family || turn_port_of(a) != turn_port_of(b))
		return false;
	turn_ip16(a, x);
	turn_ip16(b, y);
	return memcmp(x, y, 16) == 0;
}

bool turn_cidr_match(const struct turn_cidr *c, const uint8_t ip[16])
{
	unsigned full = c->bits / 8, rest = c->bits % 8;

	if (memcmp(c->ip, ip, full) != 0)
		return false;
	return rest == 0 || ((c->ip[full] ^ ip[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static int cidr_parse(const char *s, size_t n, struct turn_cidr *c)
{
	char text[64], *slash, *end;
	long bits;
	bool v4;

	if (n == 0 || n >= sizeof(text))
		return -EINVAL;
	memcpy(text, s, n);
	text[n] = '\0';
	slash = strchr(text, '/');
	if (slash)
		*slash = '\0';
	v4 = strchr(text, ':') == NULL;
	if (v4) {
		memcpy(c->ip, v4mapped, 12);
		if (inet_pton(AF_INET, text, c->ip + 12) != 1)
			return -EINVAL;
	} else if (inet_pton(AF_INET6, text, c->ip) != 1) {
		return -EINVAL;
	}
	bits = v4 ? 32 : 128;
	if (slash) {
		bits = strtol(slash + 1, &end, 10);
		if (*end || slash[1] == '\0' || bits < 0 || bits > (v4 ? 32 : 128))
			return -EINVAL;
	}
	c->bits = (unsigned)(v4 ? bits + 96 : bits);
	if (!v4) { /* an IPv6 CIDR naming IPv4 in one of the unwrapped forms matches as IPv4 */
		struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};

		memcpy(&in6.sin6_addr, c->ip, 16);
		turn_ip16((struct sockaddr *)&in6, c->ip);
	}
	return 0;
}

int turn_cidr_list_parse(const char *s, struct turn_cidr *out, size_t max, size_t *n, char why[128])
{
	*n = 0;
	while (s && *s) {
		size_t len = strcspn(s, ",");
		const char *p = s;

		while (len && *p == ' ')
			p++, len--;
		while (len && p[len - 1] == ' ')
			len--;
		if (*n == max) {
			snprintf(why, 128, "more than %zu CIDRs", max);
			return -EINVAL;
		}
		if (cidr_parse(p, len, &out[*n])) {
			snprintf(why, 128, "'%.*s' is not a CIDR (a.b.c.d/n or v6/n)",
			         (int)(len > 60 ? 60 : len), p);
			return -EINVAL;
		}
		(*n)++;
		s += strcspn(s, ",");
		if (*s == ',')
			s++;
	}
	return 0;
}

struct range {
	const char *cidr;
	const char *why;
};

static const struct range refused[] = {
        {"0.0.0.0/8", "peer in 0.0.0.0/8 (this network)"},
        {"127.0.0.0/8", "peer is loopback"},
        {"10.0.0.0/8", "peer is private (10/8)"},
        {"172.16.0.0/12", "peer is private (172.16/12)"},
        {"192.168.0.0/16", "peer is private (192.168/16)"},
        {"100.64.0.0/10", "peer is shared address space (100.64/10)"},
        {"169.254.0.0/16", "peer is link-local"},
        {"224.0.0.0/4", "peer is multicast"},
        {"240.0.0.0/4", "peer is reserved or broadcast (240/4)"},
        {"::/128", "peer is unspecified (::)"},
        {"::1/128", "peer is loopback (::1)"},
        {"fc00::/7", "peer is unique-local (fc00::/7)"},
        {"fe80::/10", "peer is link-local (fe80::/10)"},
        {"fec0::/10", "peer is site-local (fec0::/10)"},
        {"64:ff9b:1::/48", "peer is local-use NAT64 (64:ff9b:1::/48)"},
        {"ff00::/8", "peer is multicast (ff00::/8)"},
};

#define NREFUSED (sizeof(refused) / sizeof(refused[0]))

/* refused[] parsed once (a Send indication is checked per datagram). */
static struct turn_cidr refused_net[NREFUSED];
static pthread_once_t refused_once = PTHREAD_ONCE_INIT;

static void parse_refused(void)
{
	for (size_t k = 0; k < NREFUSED; k++)
		cidr_parse(refused[k].cidr, strlen(refused[k].cidr), &refused_net[k]);
}

static const char *refused_peer(const struct sockaddr *peer, const struct turn_cidr *allow,
                                size_t nallow, const struct turn_own *own);

/* The IPv4 address an IPv6 form embeds at @v4 (4 bytes, XORed with @x). */
static struct sockaddr_in embedded(const uint8_t *v4, uint8_t x)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	uint8_t b[4];

	for (int k = 0; k < 4; k++)
		b[k] = (uint8_t)(v4[k] ^ x);
	memcpy(&in.sin_addr, b, 4);
	return in;
}

/*
 * The IPv4 addresses an IPv6 form tunnels or translates to, into @out: 6to4's (2002:V4::/48, a
 * sit tunnel sends to V4), Teredo's server and client (2001::/32, the client obfuscated) or
 * SIIT's (::ffff:0:a.b.c.d). How many (0: none of these forms), and the reason to give when one
 * is refused in *@why.
 */
static size_t tunnel_v4(const uint8_t ip[16], struct sockaddr_in out[2], const char **why)
{
	static const uint8_t siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};

	if (ip[0] == 0x20 && ip[1] == 0x02) { /* 6to4 2002::/16 */
		out[0] = embedded(ip + 2, 0);
		*why = "peer is 6to4 (2002::/16) of a refused IPv4 address";
		return 1;
	}
	if (ip[0] == 0x20 && ip[1] == 0x01 && ip[2] == 0 && ip[3] == 0) { /* Teredo 2001::/32 */
		out[0] = embedded(ip + 4, 0);                             /* the server */
		out[1] = embedded(ip + 12, 0xff); /* the client, obfuscated */
		*why = "peer is Teredo (2001::/32) with a refused IPv4 address";
		return 2;
	}
	if (memcmp(ip, siit, 12) == 0) { /* IPv4-translated ::ffff:0:0/96 */
		out[0] = embedded(ip + 12, 0);
		*why = "peer is IPv4-translated (::ffff:0:0/96) of a refused IPv4 address";
		return 1;
	}
	return 0;
}

/*
 * The reason when @ip is one of the relay's own addresses, on whatever port, else NULL. A CIDR
 * opening a network the relay sits in (10.0.0.0/8 for the lab hosts) does not open the relay
 * itself: one of its own addresses is opened only by its name (a /32 or /128).
 */
static const char *own_refused(const uint8_t ip[16], const struct turn_cidr *allow, size_t nallow,
                               const struct turn_own *own)
{
	bool ours = false;

	for (size_t k = 0; own && k < own->nnet && !ours; k++)
		ours = turn_cidr_match(&own->net[k], ip);
	if (!ours)
		return NULL;
	for (size_t k = 0; k < nallow; k++)
		if (allow[k].bits == 128 && turn_cidr_match(&allow[k], ip))
			return NULL;
	return "peer is one of the relay's own addresses";
}

/*
 * For the IPv6 forms that tunnel or translate to an embedded IPv4 address: the reason when that
 * IPv4 address is refused (@own_only: when it is one of the relay's own, checked even where a
 * CIDR allowed @ip, so that ::/0 or 2002::/16 do not open the relay's own IPv4 through its 6to4
 * form), else NULL.
 */
static const char *tunnel_refused(const uint8_t ip[16], const struct turn_cidr *allow,
                                  size_t nallow, const struct turn_own *own, bool own_only)
{
	struct sockaddr_in v4[2];
	const char *why = NULL;
	size_t n = tunnel_v4(ip, v4, &why);

	for (size_t k = 0; k < n; k++) {
		const struct sockaddr *sa = (const struct sockaddr *)&v4[k];
		uint8_t b[16];

		turn_ip16(sa, b);
		if (own_only ? own_refused(b, allow, nallow, own) != NULL
		             : refused_peer(sa, allow, nallow, own) != NULL)
			return why;
	}
	return NULL;
}

/* Whether @a and @b are the same IP written the same way (family and bytes; ports ignored). */
static bool same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
		              &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
	return a->sa_family == AF_INET6 &&
	       memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
	              &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

bool turn_live_init(struct turn_live *live, const struct sockaddr *announced,
                    const struct sockaddr *bound, const uv_interface_address_t *ifs, size_t nifs)
{
	const struct sockaddr *ips[2] = {announced, bound};
	bool lands = !announced || !bound || turn_announced_lands(announced, bound, ifs, nifs);

	memset(live, 0, sizeof(*live));
	for (size_t k = lands ? 0 : 1; k < 2; k++) {
		/* a wildcard-bound socket counts at the announced address only (a wildcard listener
		 * needs --turn-external-ip): the host's other addresses are nobody's relayed
		 * address, and with a wildcard listener they are all the relay's own */
		if (!ips[k] || (ips[k]->sa_family != AF_INET && ips[k]->sa_family != AF_INET6) ||
		    turn_is_wildcard(ips[k]) ||
		    (live->nip && same_ip((struct sockaddr *)&live->ip[0], ips[k])))
			continue;
		memcpy(&live->ip[live->nip], ips[k],
		       ips[k]->sa_family == AF_INET ? sizeof(struct sockaddr_in)
		                                    : sizeof(struct sockaddr_in6));
		turn_ip16(ips[k], live->ip16[live->nip++]);
	}
	return lands;
}

bool turn_live_ip(const struct turn_live *live, const uint8_t ip[16])
{
	for (size_t k = 0; live && k < live->nip; k++)
		if (memcmp(live->ip16[k], ip, 16) == 0)
			return true;
	return false;
}

/* Whether a live UDP allocation's socket holds @port. */
static bool live_port(const struct turn_live *live, uint16_t port)
{
	return port != 0 && (live->ports[port / 64] >> (port % 64) & 1);
}

/* The entry of @perms for @ip and @port, or NULL. */
static struct turn_perm *perm_find(const struct turn_perm *perms, size_t n, const uint8_t ip[16],
                                   uint16_t port)
{
	for (size_t k = 0; k < n; k++)
		if (perms[k].port == port && memcmp(perms[k].ip, ip, 16) == 0)
			return (struct turn_perm *)&perms[k];
	return NULL;
}

int turn_perm_put(struct turn_perm *perms, size_t *n, size_t max, const struct turn_live *live,
                  const struct sockaddr *peer, bool live_only, int64_t expires_ms)
{
	struct turn_perm *p;
	uint8_t ip[16];
	uint16_t port;
	int added = 0;

	turn_ip16(peer, ip);
	/* every user of the relay sends from its own IPs: there a permission for the IP would let
	 * all of them (and every local process) in, so it is for the one address the client named */
	port = turn_live_ip(live, ip) ? turn_port_of(peer) : 0;
	p = perm_find(perms, *n, ip, port);
	if (!p) {
		if (*n == max)
			return -ENOSPC;
		p = &perms[(*n)++];
		memcpy(p->ip, ip, 16);
		p->port = port;
		added = 1;
	}
	p->live_only = live_only;
	p->expires_ms = expires_ms;
	return added;
}

bool turn_perm_allows(const struct turn_perm *perms, size_t n, const struct turn_live *live,
                      const struct sockaddr *peer, int64_t now_ms)
{
	const struct turn_perm *p;
	uint8_t ip[16];
	uint16_t port;

	turn_ip16(peer, ip);
	port = turn_live_ip(live, ip) ? turn_port_of(peer) : 0;
	p = perm_find(perms, n, ip, port);
	if (!p || p->expires_ms <= now_ms)
		return false;
	/* a relayed address whose allocation has ended is nobody's: another process (or a later
	 * allocation) may hold the port now */
	return !p->live_only || (live && live_port(live, port));
}

void turn_live_mark(struct turn_live *live, uint16_t port, bool on)
{
	uint64_t bit = 1ull << (port % 64);

	if (port == 0) /* never a bound socket's port */
		return;
	if (on)
		live->ports[port / 64] |= bit;
	else
		live->ports[port / 64] &= ~bit;
}

bool turn_live_has(const struct turn_live *live, const struct sockaddr *peer)
{
	uint16_t port = turn_port_of(peer);

	if (!live || !live_port(live, port))
		return false;
	for (size_t k = 0; k < live->nip; k++)
		if (same_ip((const struct sockaddr *)&live->ip[k], peer))
			return true;
	return false;
}

const char *turn_peer_refused(const struct sockaddr *peer, const struct turn_cidr *allow,
                              size_t nallow, const struct turn_own *own,
                              const struct turn_live *live, bool *by_live)
{
	if (by_live)
		*by_live = false;
	if (peer->sa_family != AF_INET && peer->sa_family != AF_INET6)
		return "peer address family unknown";
	/* before the default ranges: a relayed address is on loopback or a private network
	 * as often as not (127.0.0.1 in tests, 10.0.0.5 behind a 1:1 NAT) */
	if (turn_live_has(live, peer)) {
		if (by_live)
			*by_live = refused_peer(peer, allow, nallow, own) != NULL;
		return NULL;
	}
	return refused_peer(peer, allow, nallow, own);
}

static const char *refused_peer(const struct sockaddr *peer, const struct turn_cidr *allow,
                                size_t nallow, const struct turn_own *own)
{
	const char *why;
	uint8_t ip[16];
	bool allowed = false;

	if (peer->sa_family != AF_INET && peer->sa_family != AF_INET6)
		return "peer address family unknown";
	turn_ip16(peer, ip);
	for (size_t k = 0; k < nallow && !allowed; k++)
		allowed = turn_cidr_match(&allow[k], ip);
	if (allowed) { /* --turn-allow-peer wins over every default, not over the relay itself */
		why = tunnel_refused(ip, allow, nallow, own, true);
		return why ? why : own_refused(ip, allow, nallow, own);
	}
	pthread_once(&refused_once, parse_refused);
	for (size_t k = 0; k < NREFUSED; k++)
		/* "::/128" and "::1/128" unwrap to 0.0.0.0 and 0.0.0.1: still caught by 0/8 */
		if (turn_cidr_match(&refused_net[k], ip))
			return refused[k].why;
	why = tunnel_refused(ip, allow, nallow, own, false);
	return why ? why : own_refused(ip, allow, nallow, own);
}

bool turn_is_wildcard(const struct sockaddr *sa)
{
	static const uint8_t v4any[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0};
	uint8_t ip[16];

	turn_ip16(sa, ip);
	return memcmp(ip, v4any, 16) == 0 ||
	       (sa->sa_family == AF_INET6 &&
	        IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)sa)->sin6_addr));
}

/* Add @ip/@bits (ip16 form) to @own unless a CIDR there holds it: false when there is no room. */
static bool own_add(struct turn_own *own, const uint8_t ip[16], unsigned bits)
{
	struct turn_cidr c = {.bits = bits};

	for (size_t k = 0; k < own->nnet; k++)
		if (own->net[k].bits <= bits && turn_cidr_match(&own->net[k], ip))
			return true;
	if (own->nnet == TURN_OWN_MAX)
		return false;
	for (unsigned k = 0; k < 16; k++) /* the network's own address: host bits cleared */
		c.ip[k] = k < bits / 8    ? ip[k]
		          : k == bits / 8 ? (uint8_t)(ip[k] & (0xff << (8 - bits % 8)))
		                          : 0;
	own->net[own->nnet++] = c;
	return true;
}

static bool own_add_ip(struct turn_own *own, const struct sockaddr *sa)
{
	uint8_t ip[16];

	turn_ip16(sa, ip);
	return own_add(own, ip, 128);
}

/* The leading one bits of a netmask of @len bytes. */
static unsigned prefix_len(const uint8_t *mask, size_t len)
{
	unsigned bits = 0;

	for (size_t k = 0; k < len && mask[k] == 0xff; k++)
		bits += 8;
	if (bits < len * 8)
		for (uint8_t m = mask[bits / 8]; m & 0x80; m = (uint8_t)(m << 1))
			bits++;
	return bits;
}

/* The addresses of this machine an interface address @a stands for, as a CIDR into @c: a
 * loopback one (is_internal) as its whole network, as Linux answers on all of 127.0.0.0/8
 * though the interface lists only 127.0.0.1. false for another family. */
static bool if_net(const uv_interface_address_t *a, struct turn_cidr *c)
{
	const struct sockaddr *sa = (const struct sockaddr *)&a->address;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return false;
	turn_ip16(sa, c->ip);
	c->bits = 128;
	if (a->is_internal && sa->sa_family == AF_INET)
		c->bits = 96 + prefix_len((const uint8_t *)&a->netmask.netmask4.sin_addr, 4);
	else if (a->is_internal && memcmp(c->ip, v4mapped, 12) != 0) /* not unwrapped to IPv4 */
		c->bits = prefix_len((const uint8_t *)&a->netmask.netmask6.sin6_addr, 16);
	if (c->bits == 96 || c->bits == 0) /* no netmask given: the address alone */
		c->bits = 128;
	return true;
}

/* An interface address, a loopback one as its whole network (if_net()). */
static bool own_add_if(struct turn_own *own, const uv_interface_address_t *a)
{
	struct turn_cidr c;

	return !if_net(a, &c) || own_add(own, c.ip, c.bits);
}

bool turn_announced_lands(const struct sockaddr *announced, const struct sockaddr *bound,
                          const uv_interface_address_t *ifs, size_t nifs)
{
	uint8_t ip[16];

	if (same_ip(announced, bound) || turn_is_wildcard(bound))
		return true;
	if (!ifs) /* whether it is this machine's is not known: not trusted */
		return false;
	turn_ip16(announced, ip);
	for (size_t k = 0; k < nifs; k++) {
		struct turn_cidr c;

		if (if_net(&ifs[k], &c) && turn_cidr_match(&c, ip))
			return false; /* this machine's, and our sockets are not bound on it */
	}
	return true; /* a NAT's, forwarding to the bound IP */
}

size_t turn_own_build(struct turn_own *own, const struct sockaddr_storage *ips, size_t nips,
                      const uv_interface_address_t *ifs, size_t nifs)
{
	struct turn_cidr this_net;
	size_t left_out = 0;
	bool wildcard = false;

	memset(own, 0, sizeof(*own));
	/* 0.0.0.0/8, and :: that unwraps into it: Linux delivers 0.0.0.0 to this host */
	cidr_parse("0.0.0.0/8", strlen("0.0.0.0/8"), &this_net);
	own_add(own, this_net.ip, this_net.bits);
	for (size_t k = 0; k < nips; k++) {
		const struct sockaddr *sa = (const struct sockaddr *)&ips[k];

		if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
			continue;
		if (turn_is_wildcard(sa))
			wildcard = true;
		else if (!own_add_ip(own, sa))
			left_out++;
	}
	/* a wildcard listener answers on every address of this machine */
	for (size_t k = 0; wildcard && k < nifs; k++)
		if (!own_add_if(own, &ifs[k]))
			left_out++;
	return left_out;
}
