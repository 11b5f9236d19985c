/*
 * ttlmap: a bounded hash table of entries heard from elsewhere that expire when not heard again
 * within a time to live (relay/cluster_*.c keep what other instances announce each second this
 * way). Entries are the caller's structs, each beginning with a struct ttlmap_entry; the caller
 * hashes its key (ttlmap_hash) and says which entry holds it (match). Time is the caller's
 * monotonic clock in milliseconds, passed in: nothing here reads a clock. Not thread-safe.
 */
#ifndef RELAY_TTLMAP_H
#define RELAY_TTLMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ttlmap_entry {
	struct ttlmap_entry *next;
	int64_t seen_ms; /* when it was last heard (set by ttlmap_add, refreshed by the caller) */
};

struct ttlmap {
	/* set by the caller (a static initializer will do) */
	struct ttlmap_entry **b; /* @buckets list heads, all NULL at first */
	size_t buckets;
	size_t max;     /* entries at most: past it new ones are refused */
	int64_t ttl_ms; /* an entry not heard for longer than this is stale */
	bool (*match)(const struct ttlmap_entry *e, const void *key);
	/* NULL, or called with @e unlinked just before it is freed: @tell is true when it went
	 * stale or was removed with tell (the caller may tell its users it is gone). */
	void (*gone)(struct ttlmap_entry *e, bool tell);
	/* kept here */
	size_t n; /* entries held, stale ones not yet swept included */
};

/* A static initializer: @heads is the array of list heads (its size is the bucket count). */
#define TTLMAP_INIT(heads, max_entries, ttl, match_fn, gone_fn)                                    \
	{                                                                                          \
		.b = (heads), .buckets = sizeof(heads) / sizeof((heads)[0]), .max = (max_entries), \
		.ttl_ms = (ttl), .match = (match_fn), .gone = (gone_fn)                            \
	}

#define TTLMAP_HASH_INIT 2166136261u

/* FNV-1a of @len bytes of @s continuing from @h (start with TTLMAP_HASH_INIT). */
uint32_t ttlmap_hash(uint32_t h, const char *s, size_t len);

/* The link that points to the entry of @key in @hash's bucket, stale or not; when there is none,
 * the NULL link at the end of that bucket. For ttlmap_remove(). */
struct ttlmap_entry **ttlmap_find(struct ttlmap *m, uint32_t hash, const void *key);

/* True when @e was heard within ttl_ms of @now_ms. */
bool ttlmap_fresh(const struct ttlmap *m, const struct ttlmap_entry *e, int64_t now_ms);

/* The entry of @key when it is fresh at @now_ms, else NULL. */
struct ttlmap_entry *ttlmap_get(struct ttlmap *m, uint32_t hash, const void *key, int64_t now_ms);

/* A new zeroed entry of @size bytes (the caller's struct) first in @hash's bucket, heard at
 * @now_ms; NULL when max entries are held or memory ran out. The caller fills in its key. */
void *ttlmap_add(struct ttlmap *m, uint32_t hash, size_t size, int64_t now_ms);

/* Unlink the entry *@link points to, call gone(e, @tell) and free it. */
void ttlmap_remove(struct ttlmap *m, struct ttlmap_entry **link, bool tell);

/* Remove every entry stale at @now_ms, with tell. */
void ttlmap_sweep(struct ttlmap *m, int64_t now_ms);

/* Remove every entry, without tell (at stop). */
void ttlmap_clear(struct ttlmap *m);

/* Call @cb for each entry fresh at @now_ms: of every bucket (ttlmap_each), or only of @hash's
 * (ttlmap_each_in; the caller checks which are its own). @cb must not add or remove. */
void ttlmap_each(struct ttlmap *m, int64_t now_ms, void (*cb)(struct ttlmap_entry *e, void *arg),
                 void *arg);
void ttlmap_each_in(struct ttlmap *m, uint32_t hash, int64_t now_ms,
                    void (*cb)(struct ttlmap_entry *e, void *arg), void *arg);

#endif
