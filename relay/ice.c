/*
 * relay/ice: POST /ice, the WebRTC configuration (STUN/TURN servers and REST credentials) for a
 * token (issue 12). A placeholder until that issue lands: 501, and no servers.
 */
#define LOG_MODULE "ice"
#include "relay/internal.h"

int relay_ice_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m)
{
	(void)s, (void)m;
	return relay_respond_error(wsi, c, 501, "not implemented yet");
}

json_t *relay_ice_servers(struct server *s, const struct grant *g)
{
	(void)s, (void)g;
	return json_array();
}
