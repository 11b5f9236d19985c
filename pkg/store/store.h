/*
 * store: the booking deny/allow list, which must survive a restart. The embedded backend keeps
 * it in SQLite (<state_dir>/relay.db), with the whole list mirrored in memory so that the access
 * path never touches the disk; a change is on disk before the call returns. A later backend
 * (Redis) implements the same functions.
 *
 * Threads: a store has one owner thread (relay serve's main loop), which makes every call but
 * one. store_is_denied() alone is safe from any other thread (relay serve's TURN thread) while
 * the owner calls anything: it takes a lock that guards only the in-memory booking table, held
 * for a lookup or an update of that table, never across SQLite. So a deny check never waits for
 * a disk sync or SQLite's busy timeout. Every other function (deny, allow, batch, seen, list,
 * tidy, is_healthy, the group functions, open, close) is the owner's only; store_close() once no
 * other thread calls store_is_denied() any more.
 *
 * Semantics, as practable's relay: deny(bid, exp) refuses the booking until exp and removes it
 * from the allow list; allow(bid, exp) undoes a deny and lists the booking as allowed until exp.
 * Bookings seen on access calls are listed as allowed in memory only (seen()).
 *
 * Discovery groups (relay/discovery.c) live here too: one row per (app, id) with its creator, its
 * expiry and its JSON text, all mirrored in memory, written through to SQLite before a call
 * returns. The store does not read the JSON: it keeps the text it was given.
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

/*
 * Versions: every deny/allow entry carries the version of the change that made it (relay serve:
 * the wall-clock ms at the instance where it was made). A change is newer than an entry when its
 * version is greater; on equal versions a deny is newer than an allow, then the later exp.
 * Seen entries and rows written before versions existed hold version 0.
 */
bool store_newer(bool deny, int64_t exp, int64_t ver, bool held_deny, int64_t held_exp,
                 int64_t held_ver);

/* Versions are below 2^53 (a Lua number, as Redis's script reads them, holds them exactly):
 * store_merge() refuses a greater one, store_change() saturates there. */
#define STORE_VER_MAX ((INT64_C(1) << 53) - 1)

/* The highest version this store has made or seen (persisted: tidy keeps it when it drops the
 * rows holding it); store_saw_version() raises it (a version read from elsewhere). */
int64_t store_max_version(const struct store *s);
void store_saw_version(struct store *s, int64_t ver);

/* Whether a deny list was ever loaded into this state (relay serve: a whole link-up load from
 * Redis); store_set_loaded() records it (0 or -EIO). */
bool store_loaded(const struct store *s);
int store_set_loaded(struct store *s);

/* Until store_set_loaded(), when this state never had a deny list loaded: store_is_denied()
 * answers true for every booking (a fresh instance knows nothing of the cluster's denies). */
void store_gate(struct store *s);

/* Persist and apply, as store_change() with version 1 proposed. 0, -EINVAL (bid empty or too
 * long), -EIO (the write failed: not applied). */
int store_deny(struct store *s, const char *bid, int64_t exp);
int store_allow(struct store *s, const char *bid, int64_t exp);

/*
 * A change made here: applied whatever the entry holds, with version max(*@ver, the highest
 * version seen + 1) (so newer than what this store has seen, even if its clock is behind or
 * stepped back), capped at STORE_VER_MAX, written back in *@ver.
 * 0, -EINVAL, -EIO (not applied).
 */
int store_change(struct store *s, const char *bid, bool deny, int64_t exp, int64_t *ver);

/*
 * A change made elsewhere (version @ver): applied only if newer than @bid's entry (store_newer).
 * 1 applied, 0 not newer (nothing done), -EINVAL, -EIO: the disk write failed, and the change is
 * applied in memory anyway when @mem_anyway (a deny from another instance must hold here even
 * if this disk fails), not at all otherwise.
 */
int store_merge(struct store *s, const char *bid, bool deny, int64_t exp, int64_t ver,
                bool mem_anyway);

/* The version of @bid's entry; 0 when none. */
int64_t store_version(const struct store *s, const char *bid);

/*
 * Group the deny/allow writes made until store_batch_end() into one transaction: one disk sync
 * for many entries (loading a list), not one each. A write inside a batch is on disk once the
 * batch ends. 0, or -EIO (store_batch_end: the transaction failed and was rolled back; what
 * is in memory stays applied).
 */
int store_batch_begin(struct store *s);
int store_batch_end(struct store *s);

/* Note a booking seen on an access call (listed as allowed, not persisted). */
void store_seen(struct store *s, const char *bid, int64_t exp);

/* The one function safe from another thread (see above): memory only, a short lock. */
bool store_is_denied(const struct store *s, const char *bid, int64_t now);
/* The expiry of @bid's live deny (unix seconds, >= @now), or 0 when it is not denied. */
int64_t store_denied_until(const struct store *s, const char *bid, int64_t now);

/*
 * Call @fn for each live entry of @which (exp >= now), in no particular order; @bid is borrowed
 * for that call only. Owner thread only: the walk reads the booking table without the lock.
 * @fn must not change the booking table: no store_deny(), store_allow(), store_seen(),
 * store_tidy() or store_close() from it (any of them may rebuild the table, freeing the entry
 * being walked and @bid, or put an entry where the walk has already passed or will pass
 * again). Reading is allowed: store_is_denied() (the walk holds no lock), store_list(),
 * store_is_healthy(), and so are the group functions (a table of their own). Collect what to
 * change and change it after store_list() returns.
 */
void store_list(const struct store *s, enum store_list which, int64_t now,
                void (*fn)(const char *bid, int64_t exp, void *arg), void *arg);

/* Call @fn for each live deny and allow entry (not seen ones) with its version; the rules of
 * store_list() apply. */
void store_each(const struct store *s, int64_t now,
                void (*fn)(const char *bid, bool deny, int64_t exp, int64_t ver, void *arg),
                void *arg);

/* Drop entries that expired before @now, in memory and on disk. Returns how many, or -EIO. */
int store_tidy(struct store *s, int64_t now);

/* True when the last write succeeded and the database answers (for /healthz). */
bool store_is_healthy(struct store *s);

/* ---- discovery groups ---- */

#define STORE_APP_MAX   128 /* bytes of an app id */
#define STORE_GID_MAX   64  /* bytes of a group id */
#define STORE_OWNER_MAX 128 /* bytes of a creator (token sub) */

/* A group as held in memory: borrowed from the store until its next change. */
struct store_group {
	char app[STORE_APP_MAX + 1];
	char id[STORE_GID_MAX + 1];
	char owner[STORE_OWNER_MAX + 1];
	int64_t expires; /* ms since the epoch (wall clock: it must survive a restart) */
	char *json;      /* NUL-terminated */
	size_t json_len;
	struct store_group *next; /* hash chain: the store's */
};

/*
 * Create or replace the group (@app, @id) with creator @owner, expiry @expires and text @json.
 * 0, -EINVAL (an id empty or too long), -ENOMEM, -EIO (the write failed: nothing changed).
 */
int store_group_put(struct store *s, const char *app, const char *id, const char *owner,
                    int64_t expires, const char *json);

/* The group (@app, @id), or NULL; borrowed until the next change to the store. */
const struct store_group *store_group_get(const struct store *s, const char *app, const char *id);

/* Remove (@app, @id). 0, -ENOENT (not there), -EIO (the write failed: still there). */
int store_group_delete(struct store *s, const char *app, const char *id);

/* Groups of @app, or of every app when @app is NULL. */
size_t store_group_count(const struct store *s, const char *app);

/* Call @fn for each group of @app (NULL: every app), in no particular order; @fn must not
 * change the store. */
void store_group_list(const struct store *s, const char *app,
                      void (*fn)(const struct store_group *g, void *arg), void *arg);

/*
 * Remove every group whose expiry is before @now (ms since the epoch), calling @fn(app, id,
 * @arg) for each after it is gone. Returns how many, or -EIO (the disk write failed: they stay).
 */
int store_group_expire(struct store *s, int64_t now,
                       void (*fn)(const char *app, const char *id, void *arg), void *arg);

#endif
