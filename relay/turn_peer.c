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
 * --turn-allow-peer CIDRs win over every default, but open one of the relay's own addresses only
 * when they name it (a /32 or /128): a CIDR for the network the relay sits in does not open the
 * relay's own ports. turn_own_build() gathers those addresses. Pure: no I/O.
 */
#include "relay/turn_internal.h"

#include <arpa/inet.h>
#include <errno.h>
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

static const char *refused_peer(const struct sockaddr *peer, const struct turn_cidr *allow,
                                size_t nallow, const struct turn_own *own, bool any_port);

/* The IPv4 address an IPv6 form embeds at @v4 (4 bytes, XORed with @x), with @port. */
static struct sockaddr_in embedded(const uint8_t *v4, uint8_t x, uint16_t port)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
	uint8_t b[4];

	for (int k = 0; k < 4; k++)
		b[k] = (uint8_t)(v4[k] ^ x);
	memcpy(&in.sin_addr, b, 4);
	return in;
}

/* For the IPv6 forms that tunnel or translate to an embedded IPv4 address: the reason when
 * that IPv4 address is refused, else NULL. */
static const char *tunnel_refused(const uint8_t ip[16], uint16_t port,
                                  const struct turn_cidr *allow, size_t nallow,
                                  const struct turn_own *own, bool any_port)
{
	static const uint8_t siit[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
	struct sockaddr_in a, b;

	if (ip[0] == 0x20 && ip[1] == 0x02) { /* 6to4 2002::/16 */
		a = embedded(ip + 2, 0, port);
		return refused_peer((struct sockaddr *)&a, allow, nallow, own, any_port)
		               ? "peer is 6to4 (2002::/16) of a refused IPv4 address"
		               : NULL;
	}
	if (ip[0] == 0x20 && ip[1] == 0x01 && ip[2] == 0 && ip[3] == 0) { /* Teredo 2001::/32 */
		a = embedded(ip + 4, 0, port);                            /* the server */
		b = embedded(ip + 12, 0xff, port); /* the client, obfuscated */
		return refused_peer((struct sockaddr *)&a, allow, nallow, own, any_port) ||
		                       refused_peer((struct sockaddr *)&b, allow, nallow, own,
		                                    any_port)
		               ? "peer is Teredo (2001::/32) with a refused IPv4 address"
		               : NULL;
	}
	if (memcmp(ip, siit, 12) == 0) { /* IPv4-translated ::ffff:0:0/96 */
		a = embedded(ip + 12, 0, port);
		return refused_peer((struct sockaddr *)&a, allow, nallow, own, any_port)
		               ? "peer is IPv4-translated (::ffff:0:0/96) of a refused IPv4 address"
		               : NULL;
	}
	return NULL;
}

const char *turn_peer_refused(const struct sockaddr *peer, const struct turn_cidr *allow,
                              size_t nallow, const struct turn_own *own)
{
	return refused_peer(peer, allow, nallow, own, false);
}

const char *turn_peer_refused_tcp(const struct sockaddr *peer, const struct turn_cidr *allow,
                                  size_t nallow, const struct turn_own *own)
{
	return refused_peer(peer, allow, nallow, own, true);
}

/* @any_port: the relay's own IPs are refused on every port, not only its listening ones. */
static const char *refused_peer(const struct sockaddr *peer, const struct turn_cidr *allow,
                                size_t nallow, const struct turn_own *own, bool any_port)
{
	const char *why;
	uint8_t ip[16];
	uint16_t port = turn_port_of(peer);
	bool allowed = false, named = false, ours = false;

	if (peer->sa_family != AF_INET && peer->sa_family != AF_INET6)
		return "peer address family unknown";
	turn_ip16(peer, ip);
	for (size_t k = 0; k < nallow; k++)
		if (turn_cidr_match(&allow[k], ip)) {
			allowed = true;
			named = named || allow[k].bits == 128;
		}
	for (size_t k = 0; own && k < own->nip && !ours; k++)
		ours = memcmp(own->ip[k], ip, 16) == 0;
	/* A CIDR opening a network the relay sits in (10.0.0.0/8 for the lab hosts) does not open
	 * the relay itself: one of its own addresses is opened only by its name (a /32 or /128). */
	if (allowed && (!ours || named))
		return NULL;
	if (port == 0)
		return "peer port 0";
	for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]) && !allowed; k++) {
		struct turn_cidr c;

		cidr_parse(refused[k].cidr, strlen(refused[k].cidr), &c);
		/* "::/128" and "::1/128" unwrap to 0.0.0.0 and 0.0.0.1: still caught by 0/8 */
		if (turn_cidr_match(&c, ip))
			return refused[k].why;
	}
	why = allowed ? NULL : tunnel_refused(ip, port, allow, nallow, own, any_port);
	if (why)
		return why;
	if (ours) {
		if (any_port)
			return "peer is one of the relay's own addresses (TCP allocation: any port)";
		if (port >= own->relay_lo && port <= own->relay_hi)
			return "peer is one of the relay's relayed addresses";
		for (size_t k = 0; k < own->nports; k++)
			if (own->ports[k] == port)
				return "peer is one of the relay's listening addresses";
	}
	return NULL;
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

/* Add @sa's IP to @own once: false when it is new and there is no room left. */
static bool own_add_ip(struct turn_own *own, const struct sockaddr *sa)
{
	uint8_t ip[16];

	turn_ip16(sa, ip);
	for (size_t k = 0; k < own->nip; k++)
		if (memcmp(own->ip[k], ip, 16) == 0)
			return true;
	if (own->nip == TURN_OWN_MAX)
		return false;
	memcpy(own->ip[own->nip++], ip, 16);
	return true;
}

size_t turn_own_build(struct turn_own *own, const struct sockaddr_storage *ips, size_t nips,
                      const uv_interface_address_t *ifs, size_t nifs, const uint16_t *ports,
                      size_t nports, uint16_t relay_lo, uint16_t relay_hi)
{
	size_t left_out = 0;
	bool wildcard = false;

	memset(own, 0, sizeof(*own));
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
		if (!own_add_ip(own, (const struct sockaddr *)&ifs[k].address))
			left_out++;
	for (size_t k = 0; k < nports; k++) {
		bool known = ports[k] == 0;

		for (size_t j = 0; j < own->nports && !known; j++)
			known = own->ports[j] == ports[k];
		if (!known && own->nports < sizeof(own->ports) / sizeof(own->ports[0]))
			own->ports[own->nports++] = ports[k];
	}
	own->relay_lo = relay_lo;
	own->relay_hi = relay_hi;
	return left_out;
}
