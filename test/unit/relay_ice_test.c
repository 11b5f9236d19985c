/*
 * relay_ice_test: the pure parts of relay/ice.c, which is included to reach its statics: the
 * host taken from the audience, URLs with IPv6 literals bracketed (RFC 7064/7065), only the
 * listeners that are on, and the iceServers entry: username "<exp>:<user>", the credential under
 * the TURN server's secret (checked against pkg/turncred), a user that cannot be one refused,
 * and relay_ice_servers() from a grant. The TURN server is a stub whose state the tests set.
 */
#include "relay/ice.c"
#include "test/harness.h"
#include "test/unit/relay_stubs.h"

/* ---- what ice.c calls elsewhere in relay/ (a stub TURN server; the rest never reached) ---- */

struct server relay_srv;
static bool turn_on;
static int turn_port, turns_port;
static const char *turn_secret = "rest-secret";
static int64_t now_ms = 1700000000000;

bool relay_turn_on(void)
{
	return turn_on;
}

int relay_turn_port(void)
{
	return turn_port;
}

int relay_turns_port(void)
{
	return turns_port;
}

const char *relay_turn_secret(size_t *len)
{
	*len = strlen(turn_secret);
	return turn_on ? turn_secret : NULL;
}

int64_t relay_now_ms(void)
{
	return now_ms;
}

const char *relay_verify(struct server *s, struct lws *wsi, struct rjwt_claims *claims)
{
	(void)s, (void)wsi, (void)claims;
	return "not reached";
}

/* ---- helpers ---- */

static struct relay_opts opts;

static struct server *server(const char *audience)
{
	static struct server s;

	memset(&s, 0, sizeof(s));
	memset(&opts, 0, sizeof(opts));
	s.o = &opts;
	s.verifier.audience = audience;
	return &s;
}

/* The urls of @servers[0] joined with ' ' into @out. */
static const char *urls_of(json_t *servers, char *out, size_t len)
{
	json_t *urls = json_object_get(json_array_get(servers, 0), "urls"), *u;
	size_t i, n = 0;

	out[0] = '\0';
	json_array_foreach(urls, i, u)
	{
		n += (size_t)snprintf(out + n, len - n, "%s%s", i ? " " : "", json_string_value(u));
	}
	return out;
}

static const char *str_of(json_t *servers, const char *key)
{
	return json_string_value(json_object_get(json_array_get(servers, 0), key));
}

/* ---- tests ---- */

static void test_url_host(void)
{
	char h[64];

	CHECK(url_host("https://relay.example.org", h, sizeof(h)));
	CHECK_STR(h, "relay.example.org");
	CHECK(url_host("https://relay.example.org:8443/access?x=1", h, sizeof(h)));
	CHECK_STR(h, "relay.example.org");
	CHECK(url_host("https://[2001:db8::1]:8443/", h, sizeof(h)));
	CHECK_STR(h, "2001:db8::1");
	CHECK(url_host("https://user:pw@10.0.0.1:443", h, sizeof(h)));
	CHECK_STR(h, "10.0.0.1");
	CHECK(url_host("127.0.0.1:8443", h, sizeof(h)));
	CHECK_STR(h, "127.0.0.1");
	CHECK(!url_host("https://", h, sizeof(h)));
	CHECK(!url_host("https://[::1", h, sizeof(h)));
	CHECK(!url_host("https://:8443", h, sizeof(h)));
	CHECK(!url_host("https://a-host-name-longer-than-the-buffer-given-to-url-host-here.example",
	                h, 16));
}

static void test_off(void)
{
	struct server *s = server("https://relay.example.org");
	const char *why;

	turn_on = false;
	turn_port = turns_port = 0;
	CHECK(!ice_urls(s));
	CHECK(!servers_for(s, "b1", 1700000600, &why));
	CHECK(why && strstr(why, "TURN is off"));
	json_t *a = relay_ice_servers(s, &(struct grant){.booking_id = "b1", .exp = 1700000600});
	CHECK(json_is_array(a) && json_array_size(a) == 0);
	json_decref(a);
}

static void test_listeners_and_host(void)
{
	struct server *s = server("https://relay.example.org:8443");
	char buf[512], ext[] = "2001:db8::7", none[] = "";
	const char *why;
	json_t *a;

	turn_on = true;
	turn_port = 3478;
	turns_port = 0;
	a = servers_for(s, "b1", 1700000600, &why);
	CHECK(a && !why);
	CHECK_STR(urls_of(a, buf, sizeof(buf)),
	          "stun:relay.example.org:3478 turn:relay.example.org:3478?transport=udp "
	          "turn:relay.example.org:3478?transport=tcp");
	json_decref(a);

	turns_port = 5349;
	opts.turn_external_ip = ext;
	a = servers_for(s, "b1", 1700000600, &why);
	CHECK_STR(urls_of(a, buf, sizeof(buf)),
	          "stun:[2001:db8::7]:3478 turn:[2001:db8::7]:3478?transport=udp "
	          "turn:[2001:db8::7]:3478?transport=tcp turns:[2001:db8::7]:5349?transport=tcp");
	json_decref(a);

	turn_port = 0; /* only --turns-listen */
	opts.turn_external_ip = none;
	a = servers_for(s, "b1", 1700000600, &why);
	CHECK_STR(urls_of(a, buf, sizeof(buf)), "turns:relay.example.org:5349?transport=tcp");
	json_decref(a);
}

static void test_credential(void)
{
	struct server *s = server("https://relay.example.org");
	char want[TURNCRED_PASSWORD + 1];
	const char *why;
	json_t *a;

	turn_on = true;
	turn_port = 3478;
	turns_port = 0;
	a = servers_for(s, "bk-42", 1700000600, &why);
	CHECK_STR(str_of(a, "username"), "1700000600:bk-42");
	CHECK_EQ(turncred_password("rest-secret", 11, "1700000600:bk-42", 16, want), 0);
	CHECK_STR(str_of(a, "credential"), want);
	CHECK_EQ(json_object_size(json_array_get(a, 0)), 3);
	json_decref(a);

	CHECK(!servers_for(s, "a:b", 1700000600, &why));
	CHECK(why && strstr(why, "TURN user name"));
	CHECK(!servers_for(s, "", 1700000600, &why));
}

static void test_answer(void)
{
	char *body = answer(json_array(), 1700000600);

	CHECK_STR(body, "{\"iceServers\":[],\"expires\":1700000600}");
	free(body);
}

static void test_from_grant(void)
{
	struct server *s = server("https://relay.example.org");
	struct grant g = {.exp = 1700000600};
	json_t *a;

	turn_on = true;
	turn_port = 3478;
	snprintf(g.booking_id, sizeof(g.booking_id), "bk-1");
	snprintf(g.who, sizeof(g.who), "alice/jti-9");
	a = relay_ice_servers(s, &g);
	CHECK_STR(str_of(a, "username"), "1700000600:bk-1");
	json_decref(a);

	g.booking_id[0] = '\0'; /* no booking: the sub part of who */
	a = relay_ice_servers(s, &g);
	CHECK_STR(str_of(a, "username"), "1700000600:alice");
	json_decref(a);

	g.who[0] = '\0'; /* neither: no servers */
	a = relay_ice_servers(s, &g);
	CHECK_EQ(json_array_size(a), 0);
	json_decref(a);

	snprintf(g.booking_id, sizeof(g.booking_id), "bk-1");
	g.exp = now_ms / 1000; /* expired: a credential would be refused at once */
	a = relay_ice_servers(s, &g);
	CHECK_EQ(json_array_size(a), 0);
	json_decref(a);
}

int main(void)
{
	RUN(test_url_host());
	RUN(test_off());
	RUN(test_listeners_and_host());
	RUN(test_credential());
	RUN(test_answer());
	RUN(test_from_grant());
	return harness_done();
}
