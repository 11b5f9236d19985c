/*
 * hub: topics and the fan-out between their members. A message published by a member with write
 * permission is queued, by reference, for every other member with read permission, in order.
 * Each reader's queue is bounded in messages and bytes; when full, policy DROP discards the
 * reader's oldest undelivered messages (counted), policy CLOSE asks the owner to close it.
 * Back-pressure keeps that for readers that lag behind the others: when every reader of a
 * topic but the publisher holds three quarters of either limit or more, the hub asks the owners
 * of the topic's writers to stop reading from their peers (flow) until a reader is down to a
 * quarter.
 * Messages published meanwhile are still queued (up to the limits): the hub cannot refuse them.
 * Queues take memory as they fill (out of memory while growing one counts as full).
 * The hub never touches sockets: it tells the owner through callbacks (wake, overflow).
 * This is the local hub; a Redis-backed hub will keep this interface and add a bridge that
 * publishes into and subscribes from Redis. Not thread-safe: call from the event loop only.
 */
#ifndef RELAY_HUB_H
#define RELAY_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A message shared by reference among readers. */
struct hub_msg {
	uint32_t refs;
	bool binary;
	size_t len;
	int64_t t_in_ns; /* when it was received (monotonic), for latency figures */
	uint8_t *data;   /* len bytes, with the headroom asked for in hub_msg_new() before it */
};

/* New message with @headroom bytes free before data (LWS_PRE). refs = 1. NULL on OOM. */
struct hub_msg *hub_msg_new(size_t len, size_t headroom);
void hub_msg_ref(struct hub_msg *m);
void hub_msg_unref(struct hub_msg *m);

enum hub_policy {
	HUB_DROP,  /* drop the oldest undelivered messages */
	HUB_CLOSE, /* close the slow reader */
};

struct hub_limits {
	size_t max_topics;
	size_t max_per_topic;
	size_t queue_msgs;  /* per reader */
	size_t queue_bytes; /* per reader */
	enum hub_policy policy;
};

struct hub_callbacks {
	/* @owner's queue went from empty to non-empty: ask for a writable callback. */
	void (*wake)(void *owner);
	/* @owner's queue overflowed under HUB_CLOSE: close it (after this returns). */
	void (*overflow)(void *owner);
	/*
	 * @owner (a member that may write) should stop (@paused) or resume reading from its
	 * peer: every reader of its topic is backed up. Called for every writer of the topic when
	 * that changes, and from hub_join() for a writer joining a paused topic. May be NULL.
	 */
	void (*flow)(void *owner, bool paused);
};

/* Per-member counters, also shown in status reports. */
struct hub_counters {
	uint64_t rx_msgs, rx_bytes; /* published by this member */
	uint64_t tx_msgs, tx_bytes; /* delivered to this member */
	uint64_t dropped;           /* queued for it but dropped (slow reader) */
	uint64_t refused;           /* published without write permission */
	int64_t last_rx_ns, last_tx_ns;
};

struct hub;
struct hub_member;

struct hub *hub_new(const struct hub_limits *lim, const struct hub_callbacks *cb);
/* All members must have left. */
void hub_free(struct hub *h);

enum hub_join_error {
	HUB_JOIN_OK = 0,
	HUB_JOIN_NOMEM,
	HUB_JOIN_TOO_MANY_TOPICS,
	HUB_JOIN_TOPIC_FULL,
};

/* Add @owner to @topic (created on first join). NULL with *err set on failure. */
struct hub_member *hub_join(struct hub *h, const char *topic, bool can_read, bool can_write,
                            void *owner, enum hub_join_error *err);
/* Remove a member, releasing its queue; the topic goes when its last member does. */
void hub_leave(struct hub_member *m);

/*
 * Publish @msg (takes one reference) from @from to the other readers of its topic.
 * Returns the number of readers it was queued for, or -EPERM (no write permission: counted
 * as refused and dropped).
 */
int hub_publish(struct hub_member *from, struct hub_msg *msg, int64_t now_ns);

/*
 * Publish @msg (takes one reference) from the relay itself to every reader of @topic (the
 * stats stream). Returns the number of readers, or -ENOENT when the topic has no members.
 */
int hub_publish_system(struct hub *h, const char *topic, struct hub_msg *msg);

/* True when @topic exists and has a member that may read. */
bool hub_has_readers(struct hub *h, const char *topic);

/* Counters summed over every member that ever joined (for /metrics; last_*_ns are not kept). */
const struct hub_counters *hub_totals(const struct hub *h);

/* Count a message received from a member without write permission (it is dropped unread). */
void hub_note_refused(struct hub_member *m);

/* The oldest queued message, borrowed until hub_pop(); NULL when the queue is empty. */
struct hub_msg *hub_peek(const struct hub_member *m);
/* The @i-th oldest queued message (0 is hub_peek()), borrowed; NULL past the end. */
struct hub_msg *hub_peek_at(const struct hub_member *m, size_t i);
/* Remove the oldest message after it was written, counting it as delivered. */
void hub_pop(struct hub_member *m, int64_t now_ns);
size_t hub_queued(const struct hub_member *m);
/* True while the writers of @m's topic are asked to pause (see hub_callbacks.flow). */
bool hub_topic_paused(const struct hub_member *m);

const struct hub_counters *hub_member_counters(const struct hub_member *m);
const char *hub_member_topic(const struct hub_member *m);
size_t hub_topic_count(const struct hub *h);
size_t hub_topic_members(const struct hub_member *m);

/* Bytes of the messages queued for @m. */
size_t hub_queued_bytes(const struct hub_member *m);
/*
 * Bytes of the messages queued for readers, each message counted about once: a reader's queue
 * holds the latest messages of its topic (the oldest are dropped first), so the longest queue
 * of a topic holds nearly all that its other queues hold. O(readers): call it rarely.
 */
size_t hub_held_bytes(const struct hub *h);

#endif
