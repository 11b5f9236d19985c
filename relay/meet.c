/*
 * relay/meet: /meet/{id}, rendezvous by shared secret (issue 13). A placeholder until that issue lands: the
 * access call answers 501 and a websocket of this kind (none can be redeemed) is closed.
 */
#define LOG_MODULE "meet"
#include "relay/internal.h"

int relay_meet_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                      const char *rest)
{
	(void)s, (void)m, (void)rest;
	return relay_respond_error(wsi, c, 501, "not implemented yet");
}

static int established(struct server *s, struct conn *c)
{
	(void)s;
	relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "not implemented yet");
	return 0;
}

static void receive(struct conn *c, const uint8_t *in, size_t len, bool first, bool final,
                    bool binary)
{
	(void)c, (void)in, (void)len, (void)first, (void) final, (void)binary;
}

static int writeable(struct lws *wsi, struct conn *c)
{
	(void)wsi, (void)c;
	return 0;
}

const struct relay_kind relay_kind_meet = {
        .name = "meet",
        .established = established,
        .receive = receive,
        .writeable = writeable,
        .closed = NULL,
};

void relay_meet_udp_seen(struct server *s, const char *tag, size_t len, const struct sockaddr *from)
{
	(void)s, (void)tag, (void)len, (void)from;
}
