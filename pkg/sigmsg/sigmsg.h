/*
 * sigmsg: the signaling messages of /signal/{realm} (issue 13), pure: no sockets, no logging.
 * Parses and checks a client's frame {"to","type","data","ref"}, writes the frame the addressee
 * receives (the same object, "from" set by the server) and the server's own messages (welcome,
 * join/leave, error, group-expired). Peer ids are 1..SIGMSG_ID_MAX printable ASCII characters.
 */
#ifndef RELAY_SIGMSG_H
#define RELAY_SIGMSG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIGMSG_ID_MAX 128 /* bytes of a peer id */

enum sigmsg_type { SIGMSG_OFFER, SIGMSG_ANSWER, SIGMSG_CANDIDATE, SIGMSG_BYE, SIGMSG_MESSAGE };

/* A parsed client frame. @root owns everything; @to points into it. */
struct sigmsg {
	json_t *root;
	const char *to;
	enum sigmsg_type type;
	json_t *ref; /* borrowed from @root; NULL when absent */
};

/* true when @id (@n bytes) is a valid peer id: 1..SIGMSG_ID_MAX bytes of 0x20..0x7e. */
bool sigmsg_valid_id(const char *id, size_t n);

/*
 * Parse the frame @p (@len bytes) into @m. 0, or -EINVAL with a static reason in *why (not a
 * JSON object, "to" not a peer id, "type" not one of the five); -ENOMEM. On -EINVAL *ref is the
 * frame's "ref" when one could be read (a new reference, or NULL), for the error to echo.
 * Release @m with sigmsg_release() after 0.
 */
int sigmsg_parse(const uint8_t *p, size_t len, struct sigmsg *m, const char **why, json_t **ref);
void sigmsg_release(struct sigmsg *m);

/*
 * The frame the addressee receives: @m's object with "from" = @from, whatever "from" the
 * client wrote (compact JSON, a new string for free(); *n its length). NULL on OOM.
 */
char *sigmsg_deliver(struct sigmsg *m, const char *from, size_t *n);

/* {"type":"error","code":@code,"message":@message[,"ref":@ref]} (new string; NULL on OOM). */
char *sigmsg_error(const char *code, const char *message, json_t *ref, size_t *n);

/* {"type":@type,"from":@id}: "join" or "leave" (new string; NULL on OOM). */
char *sigmsg_presence(const char *type, const char *id, size_t *n);

/*
 * {"type":"welcome","id":@id,"peers":[@peers...],"iceServers":@ice} (new string; NULL on OOM).
 * Takes @ice over (a JSON array, or NULL for []).
 */
char *sigmsg_welcome(const char *id, const char *const *peers, size_t n_peers, json_t *ice,
                     size_t *n);

/* {"type":"group-expired","id":@id} (new string; NULL on OOM). */
char *sigmsg_group_expired(const char *id, size_t *n);

/*
 * The "peers" claim of a token's payload @claims_json (compact JSON): 0 with *ids (a new array
 * of new strings, sorted, duplicates removed; free with sigmsg_ids_free()) and *n, or *ids NULL
 * when the claim is absent (no restriction). -EINVAL when it is not an array of peer ids or has
 * more than @max entries; -ENOMEM.
 */
int sigmsg_peers_claim(const char *claims_json, size_t max, char ***ids, size_t *n);
void sigmsg_ids_free(char **ids, size_t n);
/* true when the sorted @ids (@n) holds @id. */
bool sigmsg_ids_have(char *const *ids, size_t n, const char *id);

#endif
