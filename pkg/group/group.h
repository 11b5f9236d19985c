/*
 * group: Disco's discovery group JSON, checked and normalised (issue 13). A group is
 *   {"ID","Name","AppID","PubKey","LastUpdated","TTL",
 *    "Peers":[{"NetAddr","PubKeyHex","Moniker"}],"GenesisPeers":[...]}
 * as Disco (mosaicnetworks/disco) and its Babble clients write it. Pure: no I/O, no logging,
 * no clock; the caller (relay/discovery.c) decides ids, owners, times and limits.
 */
#ifndef RELAY_GROUP_H
#define RELAY_GROUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GROUP_ID_MAX    64   /* bytes of an ID (a UUID is 36) */
#define GROUP_APP_MAX   128  /* bytes of an AppID */
#define GROUP_STR_MAX   1024 /* bytes of Name, PubKey and each peer field */
#define GROUP_PEERS_MAX 256  /* entries of Peers, and of GenesisPeers */
#define GROUP_WHY       128

/* True when @id (NUL-terminated) is 1 to GROUP_ID_MAX bytes of [A-Za-z0-9._~:-]: safe in a path. */
bool group_id_ok(const char *id);

/*
 * Parse a request body (@n bytes at @p, need not be NUL-terminated) into the fields it gives:
 * a JSON object; ID, Name, AppID and PubKey strings, TTL an integer >= 0, Peers and GenesisPeers
 * arrays (or null) of peer objects whose NetAddr, PubKeyHex and Moniker are strings. Each within
 * the limits above. LastUpdated and unknown names are accepted and dropped (the server sets the
 * one and keeps no others). A new object in *out holding only the known fields given, or
 * -EINVAL with the reason in @why (malformed JSON or a field out of shape: a 400).
 */
int group_parse(const char *p, size_t n, json_t **out, char why[GROUP_WHY]);

/*
 * The whole group: @fields (from group_parse) over @base (a stored group, or NULL), then ID
 * @id, AppID @app, LastUpdated @last_updated and TTL @ttl. Every field is present (strings ""
 * and arrays [] by default). A new object, or NULL without memory.
 */
json_t *group_build(const json_t *base, const json_t *fields, const char *id, const char *app,
                    int64_t last_updated, int64_t ttl);

#endif
