/*
 * relay/discovery: Disco's group API (/group, /groups, /groups/{id}; issue 13). A placeholder
 * until that issue lands: every call answers 501.
 */
#define LOG_MODULE "discovery"
#include "relay/internal.h"

int relay_discovery(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                    const char *path)
{
	(void)s, (void)m, (void)path;
	return relay_respond_error(wsi, c, 501, "not implemented yet");
}
