/*
 * relay_channel_test: relay/channel.c's bookkeeping of hosts and their control connections,
 * with channel_access.c and channel_queue.c, all included. No socket: connections are bare
 * struct conn, closed by calling the kind's closed() as ws.c does. The cases are lifetimes: no
 * connection may keep a pointer to a host that was freed.
 */
#include "relay/channel.c"
#include "relay/channel_access.c"
#include "relay/channel_queue.c"
#include "test/harness.h"
#include "test/unit/relay_stubs.h"

/* ---- what channel.c calls elsewhere in relay/ ---- */

static struct relay_opts opts = {.channel_timeout = 10000, .channel_queue = 1 << 20};
struct server relay_srv = {.o = &opts};

void relay_conn_close(struct conn *c, int code, const char *reason)
{
	c->closing = true;
	c->close_code = code;
	c->close_reason = reason;
}

void relay_hub_flow(void *owner, bool paused)
{
	((struct conn *)owner)->rx_paused = paused;
}

/* Without --redis: no other instance holds a host. */
void relay_cluster_host_up(const char *host)
{
	(void)host;
}

void relay_cluster_host_down(const char *host)
{
	(void)host;
}

const char *relay_cluster_host_url(const char *host)
{
	(void)host;
	return NULL;
}

bool relay_access_not_post(struct lws *wsi, struct conn *c, enum relay_method m, int *ret)
{
	(void)wsi, (void)c, (void)m;
	*ret = 0;
	return true;
}

const char *relay_booking_refusal(struct server *s, const struct rjwt_claims *cl)
{
	(void)s, (void)cl;
	return NULL;
}

int relay_answer_code(struct server *s, struct lws *wsi, struct conn *c, struct grant *g,
                      enum relay_issue via, const char *base)
{
	(void)s, (void)wsi, (void)c, (void)g, (void)via, (void)base;
	return 0;
}

const char *relay_write_path(void)
{
	return "lws"; /* no socket here: pieces wait for WRITEABLE */
}

int64_t relay_now_ms(void)
{
	return 0;
}

int64_t relay_mono_ns(void)
{
	return 0;
}

const char *relay_verify(struct server *s, struct lws *wsi, struct rjwt_claims *claims)
{
	(void)s, (void)wsi, (void)claims;
	return "not in this test";
}

/* ---- cases ---- */

static void control_conn(struct conn *c, const char *tag, const char *host)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->tag, sizeof(c->tag), "%s", tag);
	snprintf(c->grant.topic, sizeof(c->grant.topic), "%s", host);
	snprintf(c->grant.prefix, sizeof(c->grant.prefix), "connect");
	snprintf(c->grant.scopes, sizeof(c->grant.scopes), "host");
	c->kind = &relay_kind_channel;
}

/*
 * The relay closes a host's control connection A (deny, expiry) and its close frame cannot go
 * yet (the peer does not read). The host reconnects: B takes over, then B closes before A is
 * gone, which frees the host. A must not point at it any more: its closed() and /status entry
 * would read freed memory.
 */
static void test_takeover_then_successor_closes_first(void)
{
	struct conn a, b;

	control_conn(&a, "a", "lab1");
	control_conn(&b, "b", "lab1");
	CHECK_EQ(relay_kind_channel.established(&relay_srv, &a), 0);
	CHECK(chan_host_online("lab1"));
	relay_conn_close(&a, LWS_CLOSE_STATUS_POLICY_VIOLATION, "booking cancelled");
	CHECK(!chan_host_online("lab1"));
	CHECK_EQ(relay_kind_channel.established(&relay_srv, &b), 0);
	CHECK(!b.closing); /* B took over */
	CHECK(chan_host_online("lab1"));
	relay_kind_channel.closed(&b);
	CHECK(!chan_host_online("lab1"));
	CHECK(hosts == NULL); /* nothing refers to lab1: freed */
	CHECK(a.kind_data == NULL);
	CHECK(relay_channel_json(&a) == NULL);
	relay_kind_channel.closed(&a); /* under ASan: a use after free when A still held it */
	CHECK(hosts == NULL);
}

/* The usual order: A gone first, then B; the host lives until B closes. */
static void test_takeover_then_predecessor_closes_first(void)
{
	struct conn a, b;

	control_conn(&a, "a", "lab2");
	control_conn(&b, "b", "lab2");
	relay_kind_channel.established(&relay_srv, &a);
	relay_conn_close(&a, LWS_CLOSE_STATUS_POLICY_VIOLATION, "token expired");
	relay_kind_channel.established(&relay_srv, &b);
	relay_kind_channel.closed(&a);
	CHECK(chan_host_online("lab2"));
	relay_kind_channel.closed(&b);
	CHECK(!chan_host_online("lab2"));
	CHECK(hosts == NULL);
}

/* A second control connection while the first is open is refused and never listed. */
static void test_second_control_refused(void)
{
	struct conn a, b;

	control_conn(&a, "a", "lab3");
	control_conn(&b, "b", "lab3");
	relay_kind_channel.established(&relay_srv, &a);
	relay_kind_channel.established(&relay_srv, &b);
	CHECK(b.closing);
	CHECK(b.kind_data == NULL);
	relay_kind_channel.closed(&b);
	CHECK(chan_host_online("lab3"));
	relay_kind_channel.closed(&a);
	CHECK(hosts == NULL);
}

int main(void)
{
	log_init("error", NULL, NULL);
	RUN(test_takeover_then_successor_closes_first());
	RUN(test_takeover_then_predecessor_closes_first());
	RUN(test_second_control_refused());
	return harness_done();
}
