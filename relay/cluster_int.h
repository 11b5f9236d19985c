/*
 * relay/cluster_int: what relay/cluster.c lends its sibling files (cluster_groups.c ...): the
 * command connection while the link is up, this process's nonce, and the hooks it calls.
 * Not for the rest of relay/.
 */
#ifndef RELAY_CLUSTER_INT_H
#define RELAY_CLUSTER_INT_H

#include "relay/internal.h"

#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#define CH_BIDS   "relay:bids"
#define CH_GROUPS "relay:groups"
#define CH_HOSTS  "relay:hosts"
#define CH_SIGNAL "relay:signal"
#define CH_MEET   "relay:meet"

/* The command connection, or NULL while the link is not up. */
redisAsyncContext *cluster_cmd(void);

/* True when @ac is the current command connection (an answer from an older one is ignored). */
bool cluster_is_cmd(const redisAsyncContext *ac);

/* A random number of this process: its own notes come back on the channels and are skipped. */
uint64_t cluster_nonce(void);

/* The server the cluster serves. */
struct server *cluster_server(void);

/* Drop the link and reconnect after a backoff (an answer that cannot be used). */
void cluster_link_fail(const char *why);

/* Count a Redis message or entry that could not be read (relay_cluster_bad_messages_total). */
void cluster_count_bad(void);

/* The deny/allow list (cluster_bids.c): at each link up, load Redis's list then write this
 * instance's back (loading: that load runs); a message on CH_BIDS; once a second while the link is up (retry failed
 * writes); when the link drops; at stop; its lines of /metrics. */
void cluster_bids_load(void);
bool cluster_bids_loading(void);
void cluster_bids_message(const redisReply *payload);
void cluster_bids_tick(void);
void cluster_bids_link_down(void);
void cluster_bids_free(void);
void cluster_bids_metrics(FILE *f);

/* At each link up: replace this instance's groups by those in Redis. */
void cluster_groups_load(void);

/* A message on CH_GROUPS. */
void cluster_groups_message(const redisReply *payload);

/* Once a second while the link is up: announce this instance's hosts (cluster_hosts.c). */
void cluster_hosts_tick(void);

/* Forget every remote host (at stop). */
void cluster_hosts_free(void);

/* A message on CH_HOSTS: 0, or -1 when it cannot be read. */
int cluster_hosts_message(const redisReply *payload);

/* Signaling across instances (cluster_signal.c): once a second (forgetting what was not heard
 * for 3 s; announcing only while the link is up), at stop,
 * a message on CH_SIGNAL (0, or -1 when it cannot be read). */
void cluster_signal_tick(void);
void cluster_signal_free(void);
int cluster_signal_message(const redisReply *payload);

/* PUBLISH @o (taken over, tagged with the nonce as "n") on @channel, bounded by redis_buffer:
 * 0, or -1 when it could not go (counted in *dropped). */
int cluster_publish_json(const char *channel, json_t *o, uint64_t *dropped);

/* Meetings across instances (cluster_meet.c), as for signaling. */
void cluster_meet_tick(void);
void cluster_meet_free(void);
int cluster_meet_message(const redisReply *payload);

#endif
