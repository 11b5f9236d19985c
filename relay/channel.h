/*
 * relay/channel: private channels (issue 14), in three files: channel_access.c answers
 * POST /connect/{host} and decides at the upgrade (roles, refusals); channel.c pairs a client's
 * websocket with the one its host opens and relays between them; channel_queue.c holds what
 * waits for one side. This header is what the first two share.
 */
#ifndef RELAY_CHANNEL_H
#define RELAY_CHANNEL_H

#include "relay/internal.h"

/* The roles of a /connect websocket, from its grant's scopes. */
enum chan_role {
	CHAN_NONE,
	CHAN_HOST,   /* "host": the control connection */
	CHAN_CLIENT, /* "client": a client's end of a new channel */
	CHAN_END, /* "channel:<id>": the host's end of channel <id> (a code only the relay issues) */
};

/* channel_access.c: the role of @g, and for CHAN_END the channel id into *@id. */
enum chan_role chan_role_of(const struct grant *g, uint64_t *id);
/* channel_access.c: "<public url>/connect/<host>?code=<code>" into @uri, wiping @code. */
void chan_uri(struct server *s, const char *host_id, char code[CODE_LEN + 1], char *uri,
              size_t len);
/* channel_access.c: relay_kind.admit of /connect (at the upgrade). */
int chan_admit(const struct grant *g, const char **why);

/* channel.c: host @host_id has a live control connection. */
bool chan_host_online(const char *host_id);
/* channel.c: channel @id of @host_id waits for its host's end (its client is still there). */
bool chan_waits_for_end(const char *host_id, uint64_t id);
/* channel.c: call @fn(host id, @arg) for each host with a live control connection here. */
void chan_each_host(void (*fn)(const char *host_id, void *arg), void *arg);

#endif
