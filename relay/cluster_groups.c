/*
 * relay/cluster_groups: discovery groups shared through Redis (--redis). Each instance keeps
 * every group in its own store (SQLite, mirrored in memory), so reads are answered locally as
 * without Redis; Redis holds the authority: one key per group, relay:g:{len(app)}:{app}:{id}
 * (the length makes the name unambiguous), whose value is the record (JSON: app, id, owner,
 * expires, group) and whose expiry is the group's (PXAT), and each change is published on
 * relay:groups for the other instances to apply. At each link up an instance drops its own
 * groups and loads Redis's (SCAN + MGET): what changed while it was away is caught up and
 * nothing deleted elsewhere comes back. While the link is down, discovery.c refuses changes
 * (503) rather than diverge; reads go on from the local copy.
 */
#define LOG_MODULE "cluster"
#include "relay/cluster.h"
#include "relay/cluster_int.h"
#include "pkg/group/group.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX    (16 + STORE_APP_MAX + STORE_GID_MAX + 8)
#define SCAN_COUNT "500"

static struct {
	uint64_t applied, bad;
} k;

static int key_of(const char *app, const char *id, char out[KEY_MAX])
{
	int n = snprintf(out, KEY_MAX, "relay:g:%zu:%s:%s", strlen(app), app, id);

	return n > 0 && n < KEY_MAX ? n : -1;
}

/* The record for (@app, @id): put when @json is not NULL, else a deletion. New string or NULL. */
static char *record(const char *app, const char *id, const char *owner, int64_t expires,
                    const char *json)
{
	json_t *r = json_pack("{s:s, s:s}", "app", app, "id", id);
	char *text;

	if (!r)
		return NULL;
	if (json) {
		json_object_set_new(r, "owner", json_string(owner));
		json_object_set_new(r, "expires", json_integer(expires));
		json_object_set_new(r, "group", json_string(json));
	} else {
		json_object_set_new(r, "deleted", json_true());
	}
	text = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	return text;
}

/* PUBLISH "{nonce} {record}": one argument, so built here rather than by hiredis's format. */
static void publish(redisAsyncContext *ac, const char *rec)
{
	size_t len = strlen(rec);
	char *msg = malloc(len + 18);

	if (!msg) {
		log_err("group change not published: out of memory");
		return;
	}
	snprintf(msg, len + 18, "%016" PRIx64 " %s", cluster_nonce(), rec);
	redisAsyncCommand(ac, NULL, NULL, "PUBLISH %s %b", CH_GROUPS, msg, len + 17);
	free(msg);
}

void relay_cluster_group_put(const char *app, const char *id, const char *owner, int64_t expires_ms,
                             const char *json)
{
	redisAsyncContext *ac = cluster_cmd();
	char key[KEY_MAX];
	char *rec;

	if (!ac || key_of(app, id, key) < 0)
		return;
	rec = record(app, id, owner, expires_ms, json);
	if (!rec) {
		log_err("group '%s' of app '%s' not shared: out of memory", id, app);
		return;
	}
	redisAsyncCommand(ac, NULL, NULL, "SET %s %s PXAT %lld", key, rec, (long long)expires_ms);
	publish(ac, rec);
	free(rec);
}

void relay_cluster_group_delete(const char *app, const char *id)
{
	redisAsyncContext *ac = cluster_cmd();
	char key[KEY_MAX];
	char *rec;

	if (!ac || key_of(app, id, key) < 0)
		return;
	rec = record(app, id, NULL, 0, NULL);
	if (!rec) {
		log_err("deletion of group '%s' of app '%s' not shared: out of memory", id, app);
		return;
	}
	redisAsyncCommand(ac, NULL, NULL, "DEL %s", key);
	publish(ac, rec);
	free(rec);
}

bool relay_cluster_groups_frozen(void)
{
	return relay_cluster_on() && !cluster_cmd();
}

/* Apply the record @text (@len bytes) here. 0, or -EINVAL for a malformed one. */
static int apply(const char *text, size_t len)
{
	struct server *s = cluster_server();
	json_t *r = json_loadb(text, len, 0, NULL);
	const char *app = json_string_value(json_object_get(r, "app"));
	const char *id = json_string_value(json_object_get(r, "id"));
	const char *owner = json_string_value(json_object_get(r, "owner"));
	const char *group = json_string_value(json_object_get(r, "group"));
	json_int_t expires = json_integer_value(json_object_get(r, "expires"));
	int err = -EINVAL;

	if (!app || !id || !*app || strlen(app) > STORE_APP_MAX || !group_id_ok(id))
		goto out;
	if (json_is_true(json_object_get(r, "deleted"))) {
		err = store_group_delete(s->store, app, id);
		if (err == -EIO)
			log_err("cannot delete group '%s' of app '%s' here: state write failed", id,
			        app);
		err = 0;
		goto out;
	}
	if (!owner || !group || strlen(owner) > STORE_OWNER_MAX || expires <= 0)
		goto out;
	err = 0;
	if (expires <= relay_now_ms())
		goto out; /* expired on the way: the sweep would drop it at once */
	err = store_group_put(s->store, app, id, owner, (int64_t)expires, group);
	if (err)
		log_err("cannot store group '%s' of app '%s' here: %s", id, app,
		        err == -EIO ? "state write failed" : strerror(-err));
	err = 0;
out:
	json_decref(r);
	if (err)
		k.bad++;
	else
		k.applied++;
	return err;
}

void cluster_groups_message(const redisReply *payload)
{
	unsigned long long origin;
	char *end;

	if (payload->type != REDIS_REPLY_STRING || payload->len < 18 || payload->str[16] != ' ') {
		k.bad++;
		return;
	}
	origin = strtoull(payload->str, &end, 16);
	if (end != payload->str + 16) {
		k.bad++;
		return;
	}
	if (origin != cluster_nonce())
		apply(payload->str + 17, payload->len - 17);
}

/* ---- the load at link up ---- */

struct names {
	char (*app)[STORE_APP_MAX + 1];
	char (*id)[STORE_GID_MAX + 1];
	size_t n, cap;
};

static void collect(const struct store_group *g, void *arg)
{
	struct names *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		void *a = realloc(l->app, cap * sizeof(*l->app));

		if (a)
			l->app = a;
		void *b = a ? realloc(l->id, cap * sizeof(*l->id)) : NULL;

		if (!b)
			return;
		l->id = b;
		l->cap = cap;
	}
	memcpy(l->app[l->n], g->app, sizeof(l->app[0]));
	memcpy(l->id[l->n], g->id, sizeof(l->id[0]));
	l->n++;
}

/* Drop every group held here: Redis's set replaces it. */
static void drop_local(struct server *s)
{
	struct names l = {0};
	bool batch = store_batch_begin(s->store) == 0;

	store_group_list(s->store, NULL, collect, &l);
	for (size_t i = 0; i < l.n; i++)
		store_group_delete(s->store, l.app[i], l.id[i]);
	if (batch && store_batch_end(s->store))
		log_err("cannot drop this instance's groups before loading redis's: state write failed");
	free(l.app);
	free(l.id);
}

static void on_mget(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	struct server *s = cluster_server();
	bool batch;

	(void)priv;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || !cluster_is_cmd(ac))
		return;
	batch = store_batch_begin(s->store) == 0;
	for (size_t i = 0; i < reply->elements; i++)
		if (reply->element[i]->type == REDIS_REPLY_STRING) /* nil: expired meanwhile */
			apply(reply->element[i]->str, reply->element[i]->len);
	if (batch && store_batch_end(s->store))
		log_err("cannot write the groups from redis here: state write failed");
}

static void on_scan(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply *reply = r;
	const redisReply *cursor, *keys;

	(void)priv;
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    !cluster_is_cmd(ac))
		return;
	cursor = reply->element[0];
	keys = reply->element[1];
	if (cursor->type != REDIS_REPLY_STRING || keys->type != REDIS_REPLY_ARRAY)
		return;
	if (keys->elements) {
		size_t n = keys->elements + 1;
		const char **argv = calloc(n, sizeof(*argv));
		size_t *lens = calloc(n, sizeof(*lens));

		if (argv && lens) {
			argv[0] = "MGET";
			lens[0] = 4;
			for (size_t i = 0; i < keys->elements; i++) {
				argv[i + 1] = keys->element[i]->str;
				lens[i + 1] = keys->element[i]->len;
			}
			redisAsyncCommandArgv(ac, on_mget, NULL, (int)n, argv, lens);
		} else {
			log_err("groups from redis not loaded: out of memory");
		}
		free(argv);
		free(lens);
	}
	if (strcmp(cursor->str, "0") != 0)
		redisAsyncCommand(ac, on_scan, NULL, "SCAN %s MATCH relay:g:* COUNT " SCAN_COUNT,
		                  cursor->str);
}

void cluster_groups_load(void)
{
	redisAsyncContext *ac = cluster_cmd();

	if (!ac)
		return;
	drop_local(cluster_server());
	redisAsyncCommand(ac, on_scan, NULL, "SCAN 0 MATCH relay:g:* COUNT " SCAN_COUNT);
}

void relay_cluster_groups_metrics(FILE *f)
{
	fprintf(f,
	        "# HELP relay_cluster_group_changes_total Group changes from other instances "
	        "applied here.\n# TYPE relay_cluster_group_changes_total counter\n"
	        "relay_cluster_group_changes_total %llu\n"
	        "# HELP relay_cluster_group_changes_bad_total Malformed group changes from redis "
	        "ignored.\n# TYPE relay_cluster_group_changes_bad_total counter\n"
	        "relay_cluster_group_changes_bad_total %llu\n",
	        (unsigned long long)k.applied, (unsigned long long)k.bad);
}
