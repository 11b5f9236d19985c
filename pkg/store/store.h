/*
 * store: the booking deny/allow list, which must survive a restart. The embedded backend keeps
 * it in SQLite (<state_dir>/relay.db), with the whole list mirrored in memory so that the access
 * path never touches the disk; a change is on disk before the call returns. A later backend
 * (Redis) implements the same functions. Not thread-safe: one event loop.
 *
 * Semantics, as practable's relay: deny(bid, exp) refuses the booking until exp and removes it
 * from the allow list; allow(bid, exp) undoes a deny and lists the booking as allowed until exp.
 * Bookings seen on access calls are listed as allowed in memory only (seen()).
 */
#ifndef RELAY_STORE_H
#define RELAY_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_BID_MAX 127 /* bytes of a booking id */

struct store;

enum store_list {
	STORE_DENIED,
	STORE_ALLOWED,
};

/*
 * Open (creating if needed) the store in directory @dir; NULL @dir keeps it in memory only
 * (tests). 0 or a negative errno, with a one-line reason in @why.
 */
int store_open(const char *dir, struct store **out, char why[256]);
void store_close(struct store *s);

/* Persist and apply. 0, -EINVAL (bid empty or too long), -EIO (the write failed: not applied). */
int store_deny(struct store *s, const char *bid, int64_t exp);
int store_allow(struct store *s, const char *bid, int64_t exp);

/* Note a booking seen on an access call (listed as allowed, not persisted). */
void store_seen(struct store *s, const char *bid, int64_t exp);

bool store_is_denied(const struct store *s, const char *bid, int64_t now);

/* Call @fn for each live entry of @which (exp >= now), in no particular order. */
void store_list(const struct store *s, enum store_list which, int64_t now,
                void (*fn)(const char *bid, int64_t exp, void *arg), void *arg);

/* Drop entries that expired before @now, in memory and on disk. Returns how many, or -EIO. */
int store_tidy(struct store *s, int64_t now);

/* True when the last write succeeded and the database answers (for /healthz). */
bool store_is_healthy(struct store *s);

#endif
