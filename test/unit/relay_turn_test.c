/*
 * relay_turn_test: the pure parts of the built-in TURN server. relay/turn_peer.c (the peer
 * filter: default refusals, the IPv4-in-IPv6 forms unwrapped, --turn-allow-peer, the relay's own
 * addresses, CIDR lists) and relay/turn_auth.c (stateless nonces bound to time and address; REST
 * credentials: right, wrong, expired, hex, stale nonce, MESSAGE-INTEGRITY-SHA256), included.
 */
#include "relay/turn_auth.c"
#include "relay/turn_peer.c"
#include "test/harness.h"

#include <arpa/inet.h>
#include <ftw.h>

struct turn turn_srv;

static struct sockaddr_storage addr(const char *ip, int port)
{
	struct sockaddr_storage ss = {0};

	if (strchr(ip, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, ip, &in6->sin6_addr);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, ip, &in->sin_addr);
	}
	return ss;
}

/* @ss's IP as one of the relay's own (a /128). */
static struct turn_cidr self_net(const struct sockaddr_storage *ss)
{
	struct turn_cidr c = {.bits = 128};

	turn_ip16((const struct sockaddr *)ss, c.ip);
	return c;
}

static const char *refused_for(const char *ip, int port, const struct turn_cidr *allow, size_t n,
                               const struct turn_own *own)
{
	struct sockaddr_storage ss = addr(ip, port);

	return turn_peer_refused((struct sockaddr *)&ss, allow, n, own, NULL, NULL);
}

static void test_default_refusals(void)
{
	static const char *bad[] = {
	        "0.0.0.0",
	        "0.1.2.3",
	        "127.0.0.1",
	        "127.255.0.9",
	        "10.1.2.3",
	        "172.16.0.1",
	        "172.31.255.255",
	        "192.168.1.1",
	        "100.64.0.1",
	        "100.127.255.254",
	        "169.254.169.254",
	        "224.0.0.1",
	        "239.255.255.250",
	        "240.0.0.1",
	        "255.255.255.255",
	        "::",
	        "::1",
	        "fc00::1",
	        "fd12:3456::1",
	        "fe80::1",
	        "ff02::1",
	        "::ffff:127.0.0.1",
	        "::ffff:10.0.0.1",
	        "::127.0.0.1",
	        "::169.254.169.254",
	        "64:ff9b::127.0.0.1",
	        "64:ff9b::a9fe:a9fe",
	        "::ffff:0.0.0.0",
	        "64:ff9b:1::a00:1",          /* local-use NAT64: refused as a whole */
	        "64:ff9b:1:7f00:1::",        /* ...whatever prefix length the operator's has */
	        "2002:7f00:1::1",            /* 6to4 of 127.0.0.1 */
	        "2002:a9fe:a9fe::",          /* 6to4 of 169.254.169.254 */
	        "2002:c0a8:101:1::5",        /* 6to4 of 192.168.1.1 */
	        "2001:0:7f00:1::808:808",    /* Teredo, server 127.0.0.1 */
	        "2001:0:808:808::80ff:fffe", /* Teredo, client ~7f.00.00.01 = 127.0.0.1 */
	        "::ffff:0:127.0.0.1",        /* SIIT IPv4-translated */
	        "::ffff:0:a00:1",
	        "fec0::1",
	};
	static const char *good[] = {"8.8.8.8",
	                             "172.32.0.1",
	                             "100.128.0.1",
	                             "192.169.0.1",
	                             "2001:4860:4860::8888",
	                             "::ffff:8.8.8.8",
	                             "64:ff9b::808:808",
	                             "2002:808:808::1",           /* 6to4 of 8.8.8.8 */
	                             "2001:0:808:808::f7f7:f7f7", /* Teredo, public both */
	                             "::ffff:0:808:808",
	                             "11.0.0.1"};

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		const char *why = refused_for(bad[k], 3478, NULL, 0, NULL);

		CHECK(why != NULL);
		if (!why)
			printf("  %s was allowed\n", bad[k]);
	}
	for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
		const char *why = refused_for(good[k], 3478, NULL, 0, NULL);

		CHECK(why == NULL);
		if (why)
			printf("  %s refused: %s\n", good[k], why);
	}
	/* the filter ignores the port: CreatePermission's is ignored (RFC 8656 9); check_peer()
	 * answers 400 to ChannelBind and drops Send for port 0 */
	CHECK(refused_for("8.8.8.8", 0, NULL, 0, NULL) == NULL);
}

static void test_allow_list(void)
{
	struct turn_cidr allow[4];
	size_t n;
	char why[128];

	CHECK(turn_cidr_list_parse("127.0.0.1/32, 10.0.0.0/8,fd00::/8", allow, 4, &n, why) == 0);
	CHECK(n == 3);
	CHECK(refused_for("127.0.0.1", 5000, allow, n, NULL) == NULL);
	CHECK(refused_for("::ffff:127.0.0.1", 5000, allow, n, NULL) == NULL); /* unwrapped too */
	CHECK(refused_for("127.0.0.2", 5000, allow, n, NULL) != NULL);
	CHECK(refused_for("10.200.0.1", 5000, allow, n, NULL) == NULL);
	CHECK(refused_for("fd00::5", 5000, allow, n, NULL) == NULL);
	CHECK(refused_for("fe80::1", 5000, allow, n, NULL) != NULL);
	CHECK(refused_for("2002:7f00:1::1", 5000, allow, n, NULL) == NULL); /* 6to4 of allowed */
	CHECK(refused_for("2002:7f00:2::1", 5000, allow, n, NULL) != NULL);
	/* an IPv6 CIDR for mapped IPv4 covers the IPv4 address */
	CHECK(turn_cidr_list_parse("::ffff:192.168.0.0/112", allow, 4, &n, why) == 0);
	CHECK(refused_for("192.168.3.4", 1, allow, n, NULL) == NULL);
	CHECK(refused_for("192.169.3.4", 1, allow, n, NULL) == NULL); /* public anyway */
	CHECK(refused_for("192.168.3.4", 1, NULL, 0, NULL) != NULL);
	/* bad lists are refused with a reason */
	CHECK(turn_cidr_list_parse("127.0.0.1/33", allow, 4, &n, why) == -EINVAL);
	CHECK(strstr(why, "127.0.0.1/33") != NULL);
	CHECK(turn_cidr_list_parse("localhost", allow, 4, &n, why) == -EINVAL);
	CHECK(turn_cidr_list_parse("1.2.3.4,1.2.3.5,1.2.3.6,1.2.3.7,1.2.3.8", allow, 4, &n, why) ==
	      -EINVAL);
	CHECK(turn_cidr_list_parse("", allow, 4, &n, why) == 0 && n == 0);
	CHECK(turn_cidr_list_parse(NULL, allow, 4, &n, why) == 0 && n == 0);
}

static void test_own_addresses(void)
{
	struct turn_own own = {.nnet = 1};
	struct sockaddr_storage self = addr("203.0.113.7", 0);

	own.net[0] = self_net(&self);
	CHECK(refused_for("203.0.113.7", 3478, NULL, 0, &own) != NULL);
	CHECK(refused_for("203.0.113.7", 8443, NULL, 0, &own) != NULL);
	CHECK(refused_for("203.0.113.7", 50000, NULL, 0, &own) != NULL);
	CHECK(refused_for("::ffff:203.0.113.7", 50000, NULL, 0, &own) != NULL);
	CHECK(refused_for("203.0.113.7", 22, NULL, 0, &own) != NULL); /* every port */
	CHECK(refused_for("203.0.113.7", 53, NULL, 0, &own) != NULL); /* a resolver on 0.0.0.0 */
	CHECK(refused_for("203.0.113.7", 0, NULL, 0, &own) != NULL);  /* CreatePermission's */
	CHECK(refused_for("203.0.113.8", 50000, NULL, 0, &own) == NULL);
}

/* A TCP allocation's Connect reaches whatever listens on the relay's own IPs, a UDP allocation
 * whatever UDP service is bound to 0.0.0.0 there: refused on any port, in the IPv6 forms that
 * unwrap to them too; other hosts and --turn-allow-peer as before. */
static void test_own_addresses_tcp(void)
{
	struct turn_own own = {.nnet = 1};
	struct sockaddr_storage self = addr("203.0.113.7", 0), ss;
	struct turn_cidr allow[1];
	size_t n;
	char why[256];

	own.net[0] = self_net(&self);
	CHECK(refused_for("203.0.113.7", 9100, NULL, 0, &own) != NULL); /* metrics, UDP too */
	CHECK(refused_for("203.0.113.7", 161, NULL, 0, &own) != NULL);  /* SNMP, UDP too */
	static const char *bad[] = {"203.0.113.7", "::ffff:203.0.113.7", "2002:cb00:7107::1"};
	static const int ports[] = {22, 6379, 3478, 50000, 1};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		for (size_t j = 0; j < sizeof(ports) / sizeof(ports[0]); j++) {
			ss = addr(bad[k], ports[j]);
			CHECK(turn_peer_refused((struct sockaddr *)&ss, NULL, 0, &own, NULL,
			                        NULL) != NULL);
		}
	ss = addr("203.0.113.8", 22);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, NULL, 0, &own, NULL, NULL) == NULL);
	ss = addr("127.0.0.1", 22);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, NULL, 0, &own, NULL, NULL) != NULL);
	CHECK(turn_cidr_list_parse("203.0.113.7/32", allow, 1, &n, why) == 0 && n == 1);
	ss = addr("203.0.113.7", 22); /* the operator's explicit allowance wins, as for UDP */
	CHECK(turn_peer_refused((struct sockaddr *)&ss, allow, n, &own, NULL, NULL) == NULL);
}

/* A CIDR for a network the relay sits in does not open any port of the relay's own IPs; a CIDR
 * naming the relay's address does (every port of it). */
static void test_own_addresses_allowed(void)
{
	struct turn_own own = {.nnet = 1};
	struct sockaddr_storage self = addr("10.0.0.5", 0), ss;
	struct turn_cidr allow[2];
	size_t n;
	char why[128];

	own.net[0] = self_net(&self);
	CHECK(turn_cidr_list_parse("10.0.0.0/8", allow, 2, &n, why) == 0 && n == 1);
	CHECK(refused_for("10.0.0.5", 8443, allow, n, &own) != NULL);
	CHECK(refused_for("10.0.0.5", 50000, allow, n, &own) != NULL);
	CHECK(refused_for("::ffff:10.0.0.5", 3478, allow, n, &own) != NULL);
	CHECK(refused_for("10.0.0.5", 53, allow, n, &own) != NULL);   /* UDP too, every port */
	CHECK(refused_for("10.0.0.6", 8443, allow, n, &own) == NULL); /* a lab host */
	ss = addr("10.0.0.5", 22);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, allow, n, &own, NULL, NULL) != NULL);
	ss = addr("10.0.0.6", 22);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, allow, n, &own, NULL, NULL) == NULL);
	CHECK(turn_cidr_list_parse("10.0.0.0/8,10.0.0.5/32", allow, 2, &n, why) == 0 && n == 2);
	CHECK(refused_for("10.0.0.5", 8443, allow, n, &own) == NULL);
	ss = addr("10.0.0.5", 22);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, allow, n, &own, NULL, NULL) == NULL);
	CHECK(turn_cidr_list_parse("::ffff:10.0.0.5/128", allow, 2, &n, why) == 0 && n == 1);
	CHECK(refused_for("10.0.0.5", 8443, allow, n, &own) == NULL);
}

static uv_interface_address_t iface(const char *ip)
{
	uv_interface_address_t a;
	struct sockaddr_storage ss = addr(ip, 0);

	memset(&a, 0, sizeof(a));
	memcpy(&a.address, &ss,
	       ss.ss_family == AF_INET ? sizeof(a.address.address4) : sizeof(a.address.address6));
	return a;
}

/* Whether @ip is one of @own's (in one of its CIDRs). */
static bool own_has(const struct turn_own *own, const char *ip)
{
	struct sockaddr_storage ss = addr(ip, 0);
	uint8_t b[16];

	turn_ip16((struct sockaddr *)&ss, b);
	for (size_t k = 0; k < own->nnet; k++)
		if (turn_cidr_match(&own->net[k], b))
			return true;
	return false;
}

/* turn_own_build(): every listener's IP (TURN, TURNS, external, HTTP, metrics) once, the
 * machine's addresses when one of them is a wildcard, the ports, and TURN_OWN_MAX. */
static void test_own_build(void)
{
	struct sockaddr_storage ips[5] = {addr("203.0.113.7", 3478), addr("203.0.113.7", 5349),
	                                  addr("198.51.100.1", 0), addr("203.0.113.9", 8443),
	                                  addr("::1", 9100)};
	uv_interface_address_t ifs[3] = {iface("192.0.2.2"), iface("fd00::2"), iface("127.0.0.1")};
	struct turn_own own;

	CHECK(turn_own_build(&own, ips, 5, ifs, 3) == 0);
	CHECK(own.nnet == 4); /* 0.0.0.0/8 (::1 unwraps into it), 203.0.113.7 once */
	CHECK(own_has(&own, "203.0.113.7") && own_has(&own, "198.51.100.1"));
	CHECK(own_has(&own, "203.0.113.9") && own_has(&own, "::1"));
	CHECK(!own_has(&own, "192.0.2.2")); /* no wildcard: not the interfaces */
	CHECK(refused_for("203.0.113.9", 3478, NULL, 0, &own) != NULL); /* the HTTP listener's IP */
	CHECK(refused_for("203.0.113.9", 8443, NULL, 0, &own) != NULL);
	CHECK(refused_for("203.0.113.9", 22, NULL, 0, &own) != NULL);

	/* an empty slot (family 0) is skipped; ":8443" (0.0.0.0) and "[::]" mean every address */
	memset(&ips[1], 0, sizeof(ips[1]));
	ips[3] = addr("0.0.0.0", 8443);
	CHECK(turn_own_build(&own, ips, 4, ifs, 3) == 0);
	CHECK(own.nnet == 6 && own_has(&own, "192.0.2.2") && own_has(&own, "fd00::2"));
	CHECK(own_has(&own, "127.0.0.1") && own_has(&own, "203.0.113.7"));
	ips[3] = addr("203.0.113.9", 8443);
	ips[4] = addr("::", 9100);
	CHECK(turn_own_build(&own, ips, 5, ifs, 3) == 0);
	CHECK(own_has(&own, "192.0.2.2") && own_has(&own, "203.0.113.9"));
	CHECK(own_has(&own, "::") && !own_has(&own, "192.0.2.3")); /* ::, 0.0.0.0: always ours */

	/* past TURN_OWN_MAX: the rest counted as left out, what fits kept */
	uv_interface_address_t many[TURN_OWN_MAX + 3];
	char ip[32];

	for (int k = 0; k < TURN_OWN_MAX + 3; k++) {
		snprintf(ip, sizeof(ip), "192.0.2.%d", k + 1);
		many[k] = iface(ip);
	}
	CHECK(turn_own_build(&own, ips, 5, many, TURN_OWN_MAX + 3) == 7);
	CHECK(own.nnet == TURN_OWN_MAX);
}

/* 0.0.0.0/8 (and ::) is always the relay's own, whatever it listens on: Linux delivers 0.0.0.0
 * to this host, so --turn-allow-peer 0.0.0.0/0 must not open it (CVE-2020-26262). A wildcard
 * listener makes a loopback interface's whole network ours (it answers on 127.0.0.2 too);
 * other interfaces count by their address alone. */
static void test_own_build_networks(void)
{
	struct sockaddr_storage ips[2] = {addr("127.0.0.1", 3478), addr("127.0.0.1", 8443)};
	uv_interface_address_t ifs[3] = {iface("127.0.0.1"), iface("192.0.2.2"), iface("::1")};
	struct turn_cidr allow[2];
	struct turn_own own;
	size_t n;
	char why[128];

	CHECK(turn_own_build(&own, ips, 2, ifs, 3) == 0);
	CHECK(own_has(&own, "0.0.0.0") && own_has(&own, "0.1.2.3") && own_has(&own, "::"));
	CHECK(!own_has(&own, "127.0.0.2")); /* no wildcard: only the listener's address */
	CHECK(turn_cidr_list_parse("0.0.0.0/0", allow, 2, &n, why) == 0 && n == 1);
	CHECK(refused_for("0.0.0.0", 8443, allow, n, &own) != NULL);
	CHECK(refused_for("0.0.0.0", 3478, allow, n, &own) != NULL);
	CHECK(refused_for("::", 8443, allow, n, &own) != NULL);
	CHECK(refused_for("0.0.0.0", 53, allow, n, &own) != NULL); /* every port, UDP too */
	struct sockaddr_storage ss = addr("0.0.0.0", 22);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, allow, n, &own, NULL, NULL) != NULL);
	CHECK(refused_for("198.51.100.1", 8443, allow, n, &own) == NULL);
	CHECK(turn_cidr_list_parse("::/0", allow, 2, &n, why) == 0 && n == 1);
	CHECK(refused_for("::", 8443, allow, n, &own) != NULL);

	/* a wildcard listener: loopback's whole network (its netmask), others by address */
	ifs[0].is_internal = 1;
	inet_pton(AF_INET, "255.0.0.0", &ifs[0].netmask.netmask4.sin_addr);
	ifs[0].netmask.netmask4.sin_family = AF_INET;
	inet_pton(AF_INET, "255.255.255.0", &ifs[1].netmask.netmask4.sin_addr);
	ifs[1].netmask.netmask4.sin_family = AF_INET;
	ifs[2].is_internal = 1;
	ips[1] = addr("0.0.0.0", 8443);
	CHECK(turn_own_build(&own, ips, 2, ifs, 3) == 0);
	CHECK(own_has(&own, "127.0.0.2") && own_has(&own, "127.255.255.254"));
	CHECK(own_has(&own, "192.0.2.2") && !own_has(&own, "192.0.2.3"));
	CHECK(own_has(&own, "::1") && !own_has(&own, "128.0.0.1"));
	CHECK(turn_cidr_list_parse("127.0.0.0/8", allow, 2, &n, why) == 0 && n == 1);
	CHECK(refused_for("127.0.0.2", 8443, allow, n, &own) != NULL);
	CHECK(refused_for("127.0.0.2", 53, allow, n, &own) != NULL);
	CHECK(turn_cidr_list_parse("127.0.0.2/32", allow, 2, &n, why) == 0 && n == 1);
	CHECK(refused_for("127.0.0.2", 8443, allow, n, &own) == NULL); /* named: opened */
}

/* A tunnelled or translated form of the relay's own IPv4 reaches the relay: refused on the
 * relay's ports (TCP: any port) even when a CIDR allows the IPv6 address, unless the IPv4
 * address itself is named. */
static void test_own_tunnelled(void)
{
	struct turn_own own = {.nnet = 1};
	struct sockaddr_storage self = addr("203.0.113.5", 0), ss;
	struct turn_cidr allow[3];
	size_t n;
	char why[128];
	/* 6to4, SIIT, Teredo server, Teredo client (~203.0.113.5 = 34.ff.8e.fa) */
	static const char *forms[] = {"2002:cb00:7105::1", "::ffff:0:203.0.113.5",
	                              "2001:0:cb00:7105::808:808", "2001:0:808:808::34ff:8efa"};
	static const char *cidrs[] = {"::/0", "2002::/16", "2001::/32", "::ffff:0:0/96"};

	own.net[0] = self_net(&self);
	for (size_t c = 0; c < sizeof(cidrs) / sizeof(cidrs[0]); c++) {
		CHECK(turn_cidr_list_parse(cidrs[c], allow, 3, &n, why) == 0 && n == 1);
		for (size_t k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
			CHECK(refused_for(forms[k], 3478, allow, n, &own) != NULL);
			CHECK(refused_for(forms[k], 50000, allow, n, &own) != NULL);
			ss = addr(forms[k], 22);
			CHECK(turn_peer_refused((struct sockaddr *)&ss, allow, n, &own, NULL,
			                        NULL) != NULL);
		}
	}
	CHECK(turn_cidr_list_parse("::/0", allow, 3, &n, why) == 0 && n == 1);
	CHECK(refused_for("2002:cb00:7105::1", 22, allow, n, &own) != NULL);   /* every port */
	CHECK(refused_for("2002:cb00:7106::1", 3478, allow, n, &own) == NULL); /* another host */
	CHECK(refused_for("2001:0:808:808::f7f7:f7f7", 3478, allow, n, &own) == NULL);
	CHECK(turn_cidr_list_parse("::/0,203.0.113.5/32", allow, 3, &n, why) == 0 && n == 2);
	CHECK(refused_for("2002:cb00:7105::1", 3478, allow, n, &own) == NULL); /* named */
}

/* ---- credentials ---- */

static const uint8_t tid[STUN_TID] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* An Allocate from @client with @user/@pass, @nonce and an integrity of @alg (0: none). */
static size_t request(uint8_t *out, size_t cap, const char *user, const char *pass,
                      const char *nonce, int alg)
{
	struct stun_builder b;
	uint8_t key[32];
	int klen;
	const uint8_t transport[4] = {17, 0, 0, 0};

	stun_build(&b, out, cap, STUN_ALLOCATE, STUN_REQUEST, tid);
	stun_add(&b, STUN_A_REQUESTED_TRANSPORT, transport, 4);
	stun_add(&b, STUN_A_USERNAME, user, strlen(user));
	stun_add(&b, STUN_A_REALM, "example.org", 11);
	stun_add(&b, STUN_A_NONCE, nonce, strlen(nonce));
	if (alg == STUN_PWALG_SHA256) {
		size_t n;
		const uint8_t *algs = turn_password_algorithms(&n);
		const uint8_t sha[4] = {0, STUN_PWALG_SHA256, 0, 0};

		stun_add(&b, STUN_A_PASSWORD_ALGORITHMS, algs, n);
		stun_add(&b, STUN_A_PASSWORD_ALGORITHM, sha, 4);
		klen = stun_long_term_key(alg, user, strlen(user), "example.org", 11, pass,
		                          strlen(pass), key);
		stun_add_integrity_sha256(&b, key, (size_t)klen);
	} else if (alg == STUN_PWALG_MD5) {
		klen = stun_long_term_key(alg, user, strlen(user), "example.org", 11, pass,
		                          strlen(pass), key);
		stun_add_integrity(&b, key, (size_t)klen);
	}
	stun_add_fingerprint(&b);
	return (size_t)stun_build_end(&b);
}

static void check_auth(const char *user, const char *pass, const char *nonce, int alg,
                       const struct sockaddr *client, int64_t now, int code, enum turn_refusal r)
{
	uint8_t buf[512];
	size_t n = request(buf, sizeof(buf), user, pass, nonce, alg);
	struct stun_msg m;
	struct turn_auth a;

	CHECK(stun_parse(buf, n, &m) == 0);
	turn_auth_check(&m, client, now, now, &a);
	CHECK_EQ(a.code, code);
	if (code)
		CHECK_EQ((int)a.refusal, (int)r);
	else
		CHECK(a.expiry_s == 2000000000 &&
		      a.key_len == (alg == STUN_PWALG_SHA256 ? 32u : 16u));
}

static void test_credentials(void)
{
	struct sockaddr_storage c = addr("198.51.100.1", 40000),
	                        other = addr("198.51.100.1", 40001);
	const char *user = "2000000000:bk-1";
	char pw[TURNCRED_PASSWORD + 1], hex[TURNCRED_PASSWORD_HEX + 1], nonce[64], old[64];
	int64_t now = 1900000000;

	snprintf(turn_srv.realm, sizeof(turn_srv.realm), "example.org");
	snprintf(turn_srv.secret, sizeof(turn_srv.secret), "rest-secret");
	turn_srv.secret_len = strlen(turn_srv.secret);
	memset(turn_srv.nonce_key, 7, sizeof(turn_srv.nonce_key));
	turncred_password(turn_srv.secret, turn_srv.secret_len, user, strlen(user), pw);
	turncred_password_hex(turn_srv.secret, turn_srv.secret_len, user, strlen(user), hex);
	turn_nonce_make((struct sockaddr *)&c, now, nonce);
	turn_nonce_make((struct sockaddr *)&c, now - TURN_NONCE_S - 1, old);

	check_auth(user, pw, nonce, STUN_PWALG_MD5, (struct sockaddr *)&c, now, 0, TR_N);
	check_auth(user, pw, nonce, STUN_PWALG_SHA256, (struct sockaddr *)&c, now, 0, TR_N);
	check_auth(user, pw, nonce, 0, (struct sockaddr *)&c, now, 401, TR_N); /* first round */
	check_auth(user, "wrong", nonce, STUN_PWALG_MD5, (struct sockaddr *)&c, now, 401,
	           TR_UNAUTHORIZED);
	check_auth(user, hex, nonce, STUN_PWALG_MD5, (struct sockaddr *)&c, now, 401, TR_HEX);
	check_auth(user, pw, nonce, STUN_PWALG_MD5, (struct sockaddr *)&other, now, 438,
	           TR_STALE_NONCE); /* another address's nonce */
	check_auth(user, pw, old, STUN_PWALG_MD5, (struct sockaddr *)&c, now, 438, TR_STALE_NONCE);
	check_auth(user, pw, "made-up", STUN_PWALG_MD5, (struct sockaddr *)&c, now, 438,
	           TR_STALE_NONCE);
	/* the username expires: refused from then on (nonce made then, so it is fresh) */
	turn_nonce_make((struct sockaddr *)&c, 2000000000, nonce);
	check_auth(user, pw, nonce, STUN_PWALG_MD5, (struct sockaddr *)&c, 2000000000, 401,
	           TR_EXPIRED);
	check_auth("bk-1", pw, nonce, STUN_PWALG_MD5, (struct sockaddr *)&c, 2000000000, 401,
	           TR_UNAUTHORIZED); /* not "<expiry>:<user>" */
	/* the nonce's age is read on the monotonic clock, the credential's expiry on the wall
	 * clock: a nonce made at monotonic second 50 is fresh at 60 whatever the wall clock says */
	{
		uint8_t buf[512];
		size_t n;
		struct stun_msg m;
		struct turn_auth a;

		turn_nonce_make((struct sockaddr *)&c, 50, nonce);
		n = request(buf, sizeof(buf), user, pw, nonce, STUN_PWALG_MD5);
		CHECK(stun_parse(buf, n, &m) == 0);
		turn_auth_check(&m, (struct sockaddr *)&c, now, 60, &a);
		CHECK_EQ(a.code, 0);
		turn_auth_check(&m, (struct sockaddr *)&c, now, 50 + TURN_NONCE_S + 1, &a);
		CHECK_EQ(a.code, 438);
	}
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* A denied booking's credential (still before its expiry) allocates nothing more: 403. */
static void test_denied_booking(void)
{
	static struct server srv;
	struct sockaddr_storage c = addr("198.51.100.1", 40000);
	const char *user = "2000000000:bk-1";
	char pw[TURNCRED_PASSWORD + 1], nonce[64], dir[] = "/tmp/relay_turn_test.XXXXXX", why[256];
	int64_t now = 1900000000;

	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ(store_open(dir, &srv.store, why), 0);
	turn_srv.s = &srv;
	turncred_password(turn_srv.secret, turn_srv.secret_len, user, strlen(user), pw);
	turn_nonce_make((struct sockaddr *)&c, now, nonce);
	check_auth(user, pw, nonce, STUN_PWALG_MD5, (struct sockaddr *)&c, now, 0, TR_N);
	CHECK_EQ(store_deny(srv.store, "bk-1", 2000000000), 0);
	check_auth(user, pw, nonce, STUN_PWALG_MD5, (struct sockaddr *)&c, now, 403, TR_DENIED);
	check_auth(user, pw, nonce, STUN_PWALG_SHA256, (struct sockaddr *)&c, now, 403, TR_DENIED);
	check_auth("2000000000:bk-2", "wrong", nonce, STUN_PWALG_MD5, (struct sockaddr *)&c, now,
	           401, TR_UNAUTHORIZED); /* a deny is no reason to tell strangers */
	turn_srv.s = NULL;
	store_close(srv.store);
	CHECK_EQ(nftw(dir, remove_one, 8, FTW_DEPTH | FTW_PHYS), 0);
}

/* An interface address as uv_interface_addresses() lists it. */
static uv_interface_address_t iface_net(const char *ip, const char *mask, bool internal)
{
	uv_interface_address_t a = {.name = (char *)"test", .is_internal = internal};
	struct sockaddr_storage ss = addr(ip, 0), m = addr(mask, 0);

	memcpy(&a.address, &ss, sizeof(a.address));
	memcpy(&a.netmask, &m, sizeof(a.netmask));
	return a;
}

/* Live relayed addresses (struct turn_live): a bit per port, the ends and port 0 included. */
static void test_live_ports(void)
{
	static struct turn_live live;
	struct sockaddr_storage ip = addr("203.0.113.7", 0), ss;

	turn_live_init(&live, (struct sockaddr *)&ip, (struct sockaddr *)&ip, NULL, 0);
	CHECK(live.nip == 1); /* the same IP once */
	for (int port = 0; port < 65536; port++) {
		ss = addr("203.0.113.7", port);
		if (turn_live_has(&live, (struct sockaddr *)&ss))
			CHECK(!"live before any mark");
	}
	turn_live_mark(&live, 0, true); /* never a bound socket's port */
	ss = addr("203.0.113.7", 0);
	CHECK(!turn_live_has(&live, (struct sockaddr *)&ss));
	for (size_t k = 0; k < sizeof(live.ports) / sizeof(live.ports[0]); k++)
		CHECK(live.ports[k] == 0);
	static const int edges[] = {1, 63, 64, 65535};
	for (size_t k = 0; k < sizeof(edges) / sizeof(edges[0]); k++) {
		turn_live_mark(&live, (uint16_t)edges[k], true);
		ss = addr("203.0.113.7", edges[k]);
		CHECK(turn_live_has(&live, (struct sockaddr *)&ss));
		ss = addr("203.0.113.7", edges[k] - 1 == 0 ? 2 : edges[k] - 1);
		CHECK(edges[k] == 64 || !turn_live_has(&live, (struct sockaddr *)&ss));
	}
	ss = addr("203.0.113.8", 65535); /* another IP, a live port */
	CHECK(!turn_live_has(&live, (struct sockaddr *)&ss));
	ss = addr("::ffff:203.0.113.7", 65535); /* the same IPv4 written as IPv6: not ours */
	CHECK(!turn_live_has(&live, (struct sockaddr *)&ss));
	turn_live_mark(&live, 65535, false); /* released */
	ss = addr("203.0.113.7", 65535);
	CHECK(!turn_live_has(&live, (struct sockaddr *)&ss));
	ss = addr("203.0.113.7", 64); /* its neighbours in the word stay */
	CHECK(turn_live_has(&live, (struct sockaddr *)&ss));
	turn_live_mark(&live, 64, false);
	turn_live_mark(&live, 64, false); /* twice: still released */
	CHECK(!turn_live_has(&live, (struct sockaddr *)&ss));
	ss = addr("203.0.113.7", 63);
	CHECK(turn_live_has(&live, (struct sockaddr *)&ss));
	CHECK(!turn_live_has(NULL, (struct sockaddr *)&ss));
}

/* Which IPs a relayed address is written with: the announced one, the bound one where it
 * differs, never a wildcard. */
static void test_live_ips(void)
{
	static struct turn_live live;
	struct sockaddr_storage ext = addr("198.51.100.1", 0), bound = addr("10.0.0.5", 3478);
	struct sockaddr_storage any = addr("0.0.0.0", 3478), ss;
	uv_interface_address_t ifs[2] = {
	        iface_net("10.0.0.5", "255.255.255.0", false),
	        iface_net("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true)};

	CHECK(turn_live_init(&live, (struct sockaddr *)&ext, (struct sockaddr *)&bound, ifs, 2));
	turn_live_mark(&live, 50000, true);
	CHECK(live.nip == 2);
	ss = addr("198.51.100.1", 50000);
	CHECK(turn_live_has(&live, (struct sockaddr *)&ss));
	ss = addr("10.0.0.5", 50000);
	CHECK(turn_live_has(&live, (struct sockaddr *)&ss));
	CHECK(turn_live_init(&live, (struct sockaddr *)&ext, (struct sockaddr *)&any, NULL, 0));
	turn_live_mark(&live, 50000, true);
	CHECK(live.nip == 1);
	ss = addr("198.51.100.1", 50000);
	CHECK(turn_live_has(&live, (struct sockaddr *)&ss));
	ss = addr("0.0.0.0", 50000);
	CHECK(!turn_live_has(&live, (struct sockaddr *)&ss));
	ss = addr("127.0.0.1", 50000); /* another address of a wildcard socket's host */
	CHECK(!turn_live_has(&live, (struct sockaddr *)&ss));
	ext = addr("2001:db8::7", 0);
	bound = addr("::1", 3478);
	CHECK(turn_live_init(&live, (struct sockaddr *)&ext, (struct sockaddr *)&bound, ifs, 2));
	turn_live_mark(&live, 50000, true);
	ss = addr("2001:db8::7", 50000);
	CHECK(turn_live_has(&live, (struct sockaddr *)&ss));
	ss = addr("::1", 50000);
	CHECK(turn_live_has(&live, (struct sockaddr *)&ss));
	ss = addr("0.0.0.1", 50000); /* what ::1 unwraps to, written as IPv4: not ours */
	CHECK(!turn_live_has(&live, (struct sockaddr *)&ss));
}

/* The filter with live relayed addresses: one is allowed before the default ranges (loopback
 * here), the rest of the relay's own IP stays refused, and *by_live says which peers need the
 * exception (their channels are re-checked per datagram). */
static void test_live_filter(void)
{
	static struct turn_live live;
	struct turn_own own = {.nnet = 1};
	struct sockaddr_storage self = addr("127.0.0.1", 3478), ss;
	struct turn_cidr allow[1];
	size_t n;
	bool by_live = false;
	char why[128];

	own.net[0] = self_net(&self);
	turn_live_init(&live, (struct sockaddr *)&self, (struct sockaddr *)&self, NULL, 0);
	turn_live_mark(&live, 50000, true);
	ss = addr("127.0.0.1", 50000);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, NULL, 0, &own, &live, &by_live) == NULL);
	CHECK(by_live);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, NULL, 0, &own, &live, NULL) == NULL);
	/* a TCP allocation (no live addresses): refused */
	CHECK(turn_peer_refused((struct sockaddr *)&ss, NULL, 0, &own, NULL, &by_live) != NULL);
	CHECK(!by_live);
	static const int other[] = {50001, 3478, 53, 0};
	for (size_t k = 0; k < sizeof(other) / sizeof(other[0]); k++) {
		ss = addr("127.0.0.1", other[k]);
		CHECK(turn_peer_refused((struct sockaddr *)&ss, NULL, 0, &own, &live, NULL) !=
		      NULL);
	}
	static const char *wrapped[] = {"::ffff:127.0.0.1", "::127.0.0.1", "64:ff9b::127.0.0.1",
	                                "2002:7f00:1::1", "::ffff:0:127.0.0.1"};
	for (size_t k = 0; k < sizeof(wrapped) / sizeof(wrapped[0]); k++) {
		ss = addr(wrapped[k], 50000);
		CHECK(turn_peer_refused((struct sockaddr *)&ss, NULL, 0, &own, &live, NULL) !=
		      NULL);
	}
	/* a CIDR covering the relay's IP opens none of it; one naming it opens every port, and
	 * then a live address needs no exception */
	CHECK(turn_cidr_list_parse("127.0.0.0/8", allow, 1, &n, why) == 0 && n == 1);
	ss = addr("127.0.0.1", 50001);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, allow, n, &own, &live, NULL) != NULL);
	CHECK(turn_cidr_list_parse("127.0.0.1/32", allow, 1, &n, why) == 0 && n == 1);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, allow, n, &own, &live, NULL) == NULL);
	ss = addr("127.0.0.1", 50000);
	CHECK(turn_peer_refused((struct sockaddr *)&ss, allow, n, &own, &live, &by_live) == NULL);
	CHECK(!by_live);
	turn_live_mark(&live, 50000, false); /* the allocation ended */
	CHECK(turn_peer_refused((struct sockaddr *)&ss, NULL, 0, &own, &live, &by_live) != NULL);
	CHECK(!by_live);
}

/* F1 (review of relay to relay): --turn-external-ip counts as a live relayed IP only where a
 * datagram to it lands in a relayed socket: the listener's own IP, behind a wildcard listener,
 * or not this machine's (a NAT's). Another address of this machine (a secondary address, or
 * loopback's 127.0.0.2 beside a listener on 127.0.0.1) may have a local service on the port. */
static void test_announced_lands(void)
{
	static struct turn_live live;
	uv_interface_address_t ifs[4] = {
	        iface_net("127.0.0.1", "255.0.0.0", true),
	        iface_net("198.51.100.1", "255.255.255.0", false),
	        iface_net("198.51.100.2", "255.255.255.0", false),
	        iface_net("::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
	};
	struct sockaddr_storage one = addr("198.51.100.1", 3478), two = addr("198.51.100.2", 0);
	struct sockaddr_storage any = addr("0.0.0.0", 3478), nat = addr("203.0.113.7", 0);
	struct sockaddr_storage lo = addr("127.0.0.1", 3478), lo2 = addr("127.0.0.2", 0);
	struct sockaddr_storage ss;

#define LANDS(a, b, l, n) \
	turn_announced_lands((struct sockaddr *)&(a), (struct sockaddr *)&(b), l, n)
	CHECK(!LANDS(two, one, ifs, 4));   /* a secondary address, a specific listener */
	CHECK(LANDS(one, one, ifs, 4));    /* the listener's own */
	CHECK(LANDS(two, any, ifs, 4));    /* a wildcard listener: relayed sockets on 0.0.0.0:p */
	CHECK(LANDS(nat, one, ifs, 4));    /* not this machine's: a 1:1 NAT */
	CHECK(!LANDS(lo2, lo, ifs, 4));    /* loopback's network is this machine's */
	CHECK(LANDS(lo2, lo, ifs + 1, 2)); /* (without lo listed, it would be taken as a NAT's) */
	CHECK(!LANDS(nat, one, NULL, 0));  /* the interfaces unknown: only the sure cases */
	CHECK(LANDS(one, one, NULL, 0));
	CHECK(LANDS(nat, any, NULL, 0));
#undef LANDS
	/* left out, the listener's IP alone is live */
	CHECK(!turn_live_init(&live, (struct sockaddr *)&two, (struct sockaddr *)&one, ifs, 4));
	CHECK(live.nip == 1);
	turn_live_mark(&live, 50000, true);
	ss = addr("198.51.100.2", 50000);
	CHECK(!turn_live_has(&live, (struct sockaddr *)&ss));
	ss = addr("198.51.100.1", 50000);
	CHECK(turn_live_has(&live, (struct sockaddr *)&ss));
	CHECK(turn_live_init(&live, (struct sockaddr *)&nat, (struct sockaddr *)&one, ifs, 4));
	CHECK(live.nip == 2);
}

/* F2/F3: on the relay's own live IPs a permission is for one transport address. Every user's
 * relayed socket (and every local process) sends from that IP: B's permission for A's relayed
 * address must not let E's in, nor anything once A's port is no longer live. Elsewhere, and for
 * TCP allocations (no live addresses), permissions stay per IP (RFC 8656 9). */
static void test_perm_per_port(void)
{
	static struct turn_live live;
	struct turn_perm perms[4];
	size_t n = 0;
	struct sockaddr_storage self = addr("127.0.0.1", 3478), a = addr("127.0.0.1", 50000);
	struct sockaddr_storage e = addr("127.0.0.1", 50001), pub = addr("192.0.2.1", 1234), ss;
	const int64_t until = 1000;

#define PUT(l, p, lo)     turn_perm_put(perms, &n, 4, l, (struct sockaddr *)&(p), lo, until)
#define ALLOWS(l, p, now) turn_perm_allows(perms, n, l, (struct sockaddr *)&(p), now)
	turn_live_init(&live, (struct sockaddr *)&self, (struct sockaddr *)&self, NULL, 0);
	turn_live_mark(&live, 50000, true);
	turn_live_mark(&live, 50001, true);
	CHECK(PUT(&live, a, true) == 1);
	CHECK(ALLOWS(&live, a, 0));
	CHECK(!ALLOWS(&live, e, 0));   /* another user's relayed address on the same IP */
	ss = addr("127.0.0.1", 40000); /* a local process */
	CHECK(!ALLOWS(&live, ss, 0));
	ss = addr("::ffff:127.0.0.1", 50000); /* the same address, written as IPv6 */
	CHECK(ALLOWS(&live, ss, 0));
	ss = addr("::ffff:127.0.0.1", 50001);
	CHECK(!ALLOWS(&live, ss, 0));
	CHECK(PUT(&live, a, true) == 0 && n == 1); /* refreshed */
	/* a public peer: per IP */
	CHECK(PUT(&live, pub, false) == 1);
	ss = addr("192.0.2.1", 999);
	CHECK(ALLOWS(&live, ss, 0));
	CHECK(!ALLOWS(&live, pub, until)); /* expired */
	/* A's allocation ends: its port is nobody's, whatever B permitted */
	turn_live_mark(&live, 50000, false);
	CHECK(!ALLOWS(&live, a, 0));
	turn_live_mark(&live, 50000, true); /* a later allocation holds it again */
	CHECK(ALLOWS(&live, a, 0));
	/* one allowed by a --turn-allow-peer /32 naming the relay (not live only): the exact
	 * port still, but no live allocation needed there */
	ss = addr("127.0.0.1", 5353);
	CHECK(PUT(&live, ss, false) == 1 && n == 3);
	CHECK(ALLOWS(&live, ss, 0));
	ss = addr("127.0.0.1", 5354);
	CHECK(!ALLOWS(&live, ss, 0));
	CHECK(PUT(&live, e, true) == 1 && n == 4);
	CHECK(ALLOWS(&live, e, 0));
	ss = addr("127.0.0.1", 50002);
	CHECK(PUT(&live, ss, true) == -ENOSPC && n == 4);
	/* a TCP allocation's (NULL live): per IP */
	n = 0;
	CHECK(PUT(NULL, a, false) == 1);
	ss = addr("127.0.0.1", 40000);
	CHECK(ALLOWS(NULL, ss, 0));
#undef PUT
#undef ALLOWS
}

int main(void)
{
	RUN(test_default_refusals());
	RUN(test_allow_list());
	RUN(test_own_addresses());
	RUN(test_own_addresses_tcp());
	RUN(test_own_addresses_allowed());
	RUN(test_own_build());
	RUN(test_own_build_networks());
	RUN(test_own_tunnelled());
	RUN(test_live_ports());
	RUN(test_live_ips());
	RUN(test_live_filter());
	RUN(test_announced_lands());
	RUN(test_perm_per_port());
	RUN(test_credentials());
	RUN(test_denied_booking());
	return harness_done();
}
