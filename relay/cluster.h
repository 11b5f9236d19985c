/*
 * relay/cluster: several `relay serve` instances sharing topics, one-time codes, the deny list
 * and status reports through Redis (--redis). Two hiredis connections on the relay's uv loop:
 * one for commands (PUBLISH, SET, GETDEL, HSET), one subscribed to the channels of the topics
 * this instance has readers of and to the control channels. Nothing here blocks the loop, and
 * everything is a no-op without --redis. See docs/scale-out.md.
 */
#ifndef RELAY_CLUSTER_H
#define RELAY_CLUSTER_H

#include "relay/internal.h"

#include <stdio.h>
#include <uv.h>

/* Parse the settings and start connecting (without --redis: nothing). 0, or -EINVAL with @why. */
int relay_cluster_start(struct server *s, uv_loop_t *loop, int port, char why[256]);
/* Close the connections and free everything (the loop then runs their close callbacks). */
void relay_cluster_stop(void);
/* --redis was given. */
bool relay_cluster_on(void);
/* This instance's name (--instance or hostname:port); "" without --redis. */
const char *relay_cluster_instance(void);
/* NULL when Redis is off or reachable, else why not (for /healthz). */
const char *relay_cluster_trouble(void);

/* This instance's state never finished a link-up load of the deny list (a fresh state dir):
 * access calls are answered 503 until it has (docs/scale-out.md). */
bool relay_cluster_unloaded(void);

/* Once a second: publish this instance's report, unsubscribe from topics left without readers. */
void relay_cluster_tick(void);

/* Topics */
/* A reader of @topic joined (+1) or left (-1) here: subscribe while there is one. */
void relay_cluster_reader(const char *topic, int delta);
/* A message published here on @topic: send it to the other instances (bounded, drops counted). */
void relay_cluster_publish(const char *topic, const struct hub_msg *m);

/* Codes */
/*
 * Issue a code for @g, kept in Redis (redeemable at any instance). -ENOTCONN while Redis is
 * unreachable (the caller issues a local code then), -EIO when the random source fails.
 */
int relay_cluster_issue(const struct grant *g, char code[CODE_LEN + 1]);
/*
 * At the upgrade (relay_redeem): the code @code (@len bytes) for @topic at a @kind endpoint is
 * not in the local table. 0: it may be in Redis, the upgrade goes on and the claim is made at
 * ESTABLISHED (relay_cluster_claiming); -ENOENT: refuse it now.
 */
int relay_cluster_defer(struct lws *wsi, const char *code, size_t len, const char *topic,
                        const char *kind);
/*
 * At ESTABLISHED of @c: true when its code is being claimed from Redis; @c reads nothing until
 * the answer, then relay_ws_admit() admits it or it is closed with 1008.
 */
bool relay_cluster_claiming(struct conn *c);

/* Deny list */
/* A deny or allow was applied here with version @ver (store_change()): tell the other instances
 * and keep it in Redis (or, unlinked, at the next link up). */
void relay_cluster_bid(bool deny, const char *bid, int64_t exp, int64_t ver);
/* The wall clock in ms as Redis's clock says (its TIME, read at each link up and every minute;
 * the offset kept while unlinked, 0 before the first link up or without --redis): the version
 * proposed for a deny/allow change. */
int64_t relay_cluster_now_ms(void);

/* Discovery groups (cluster_groups.c) */
/* Group (@app, @id) was created or changed here: keep it in Redis, tell the other instances. */
void relay_cluster_group_put(const char *app, const char *id, const char *owner, int64_t expires_ms,
                             const char *json);
/* Group (@app, @id) was deleted here. */
void relay_cluster_group_delete(const char *app, const char *id);
/* True when groups must not change now: --redis is set and the link is down. */
bool relay_cluster_groups_frozen(void);
void relay_cluster_groups_metrics(FILE *f);

/* Private channel hosts (cluster_hosts.c) */
/* The public URL of the other instance holding @host's control connection, or NULL. */
const char *relay_cluster_host_url(const char *host);
/* @host's control connection opened or closed here: tell the other instances. */
void relay_cluster_host_up(const char *host);
void relay_cluster_host_down(const char *host);

/* Signaling peers (cluster_signal.c) */
/* Local peer @id of @realm joined (claim @allow, NULL for none) or left: tell the others. */
void relay_cluster_signal_join(const char *realm, const char *id, char *const *allow,
                               size_t n_allow);
void relay_cluster_signal_leave(const char *realm, const char *id);
/* True when @id is a peer of @realm at another instance; its claim in *allow (if @allow). */
bool relay_cluster_signal_peer(const char *realm, const char *id, char *const **allow,
                               size_t *n_allow);
/* Every peer of @realm at other instances. */
void relay_cluster_signal_each(const char *realm,
                               void (*cb)(const char *id, char *const *allow, size_t n, void *arg),
                               void *arg);
/* The frame @frame ("from" written here) for @to, a peer of @realm elsewhere: 0 or -1 (counted). */
int relay_cluster_signal_send(const char *realm, const char *to, const char *frame);
void relay_cluster_signal_metrics(FILE *f);

/* What signal.c offers cluster_signal.c */
/* Join or leave (@type) of a peer at another instance, to the local peers that may see it. */
void relay_signal_remote_presence(const char *realm, const char *id, char *const *allow,
                                  size_t n_allow, const char *type);
/* A frame from another instance for @to, if @to is a peer here. */
void relay_signal_remote_frame(const char *realm, const char *to, const char *frame);
/* Another instance holds @id of @realm: close the local connection (peer-connected). */
void relay_signal_conflict(const char *realm, const char *id);
bool relay_signal_is_local(const char *realm, const char *id);
void relay_signal_each_local(void (*cb)(const char *realm, const char *id, char *const *allow,
                                        size_t n, void *arg),
                             void *arg);

/* Meetings (cluster_meet.c) */
/* Local participant @pid of meeting @meeting is here (addresses @tcp, @udp or "") or left. */
void relay_cluster_meet_here(const char *meeting, const char *pid, const char *tcp,
                             const char *udp);
void relay_cluster_meet_left(const char *meeting, const char *pid);
/* Participants of @meeting at other instances. */
size_t relay_cluster_meet_count(const char *meeting);
void relay_cluster_meet_each(const char *meeting,
                             void (*cb)(const char *pid, const char *tcp, const char *udp,
                                        void *arg),
                             void *arg);
/* What meet.c offers: a participant elsewhere appeared or changed (@tcp set) or left (NULL). */
void relay_meet_remote(const char *meeting, const char *pid, const char *tcp, const char *udp);
void relay_meet_each_local(void (*cb)(const char *meeting, const char *pid, const char *tcp,
                                      const char *udp, void *arg),
                           void *arg);

/* Reports */
/* GET /status?scope=cluster: every instance's latest report (new reference). */
json_t *relay_cluster_status(void);
/* The cluster's lines of /metrics (nothing without --redis). */
void relay_cluster_metrics(FILE *f);

#endif
