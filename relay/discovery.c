/*
 * relay/discovery: Disco's group API (issue 13), made safe. Every call carries a token with
 * prefix "discovery" whose topic is the app id: an app sees and changes only its own groups
 * (groups are keyed by (app, id), so one app cannot even learn that another used an id). Only
 * a group's creator (token sub) or a moderator of its app (scope discovery:admin; relay:admin too)
 * changes or deletes it. Groups live in
 * pkg/store (SQLite, mirrored in memory) and expire TTL seconds after their last change: the
 * sweep runs once a second from serve.c's tick and tells signaling (relay_signal_group_expired).
 *
 *   POST   /group          write  body: a group    -> 201 "ID" (JSON string), Location
 *   GET    /groups         read   ?app-id=A        -> 200 {"ID": group, ...}
 *   GET    /groups/{id}    read                    -> 200 group | 404
 *   PATCH  /groups/{id}    write  body: fields     -> 200 group | 403 | 404
 *   DELETE /groups/{id}    write                   -> 204 | 403 | 404
 *
 * The JSON checks are pkg/group's (pure, fuzzed); this file decides who, when and how many.
 */
#define LOG_MODULE "discovery"
#include "relay/internal.h"
#include "relay/cluster.h"
#include "pkg/group/group.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#define ARG_MAX 256

/* Who calls, from a checked token. */
struct caller {
	char app[GROUP_APP_MAX + 1];
	char sub[STORE_OWNER_MAX + 1]; /* "" when the token has none */
	bool admin;
};

/* ---- who may call ---- */

/* An app-id query argument that is not @app: NULL, else the reason for a 403 (or 400). */
static const char *query_app_check(struct lws *wsi, const char *app, int *status)
{
	char arg[ARG_MAX];

	for (int i = 0;; i++) {
		if (lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) < 0) {
			if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0) {
				*status = 400;
				return "a query argument is too long";
			}
			return NULL;
		}
		/* Disco's own example asks ?app-id= (empty): no filter, so the token's app. */
		if (strncmp(arg, "app-id=", 7) == 0 && arg[7] && strcmp(arg + 7, app) != 0) {
			*status = 403;
			return "app-id is not the token's app (topic)";
		}
	}
}

/* Check the token for method @m into @who: NULL, else the reason with *status 401 or 403. */
static const char *authorise(struct server *s, struct lws *wsi, enum relay_method m,
                             struct caller *who, int *status)
{
	struct rjwt_claims cl;
	const char *why = relay_verify(s, wsi, &cl);
	const char *scope = m == M_GET ? "read" : "write";

	memset(who, 0, sizeof(*who));
	if (why) {
		*status = 401;
		return why;
	}
	*status = 403;
	/* discovery:admin moderates one app's groups; relay:admin (deny list, /status, every
	 * relay) is for the relay's operators and must not be what an app moderator is given. */
	who->admin = rjwt_has_scope(&cl, "discovery:admin") || rjwt_has_scope(&cl, "relay:admin");
	if (!cl.prefix || strcmp(cl.prefix, "discovery") != 0)
		why = "connection type (prefix) must be discovery";
	else if (!cl.topic || !*cl.topic || strlen(cl.topic) > GROUP_APP_MAX)
		why = "the token's topic must be the app id (1 to 128 bytes)";
	else if (!rjwt_has_scope(&cl, scope) && !who->admin)
		why = m == M_GET ? "token has no read scope" : "token has no write scope";
	else if (cl.sub && strlen(cl.sub) > STORE_OWNER_MAX)
		why = "sub too long";
	else if (cl.booking_id && *cl.booking_id &&
	         store_is_denied(s->store, cl.booking_id, relay_now_ms() / 1000))
		why = "booking denied"; /* as at every access call: a deny ends every use */
	if (!why) {
		snprintf(who->app, sizeof(who->app), "%s", cl.topic);
		snprintf(who->sub, sizeof(who->sub), "%s", cl.sub ? cl.sub : "");
		why = query_app_check(wsi, who->app, status);
	}
	rjwt_claims_release(&cl);
	return why;
}

/* The creator (a non-empty sub) or an admin may change @g. */
static bool may_change(const struct caller *who, const struct store_group *g)
{
	return who->admin || (who->sub[0] && strcmp(who->sub, g->owner) == 0);
}

/* ---- groups ---- */

/* The live group (@app, @id): one past its expiry but not yet swept is gone already. */
static const struct store_group *live_group(struct server *s, const char *app, const char *id)
{
	const struct store_group *g = store_group_get(s->store, app, id);

	return g && g->expires >= relay_now_ms() ? g : NULL;
}

/* TTL seconds for a group: the one asked for (0: the default), at most --discovery-max-ttl. */
static int64_t effective_ttl(struct server *s, const json_t *asked)
{
	int64_t max = (s->o->discovery_max_ttl + 999) / 1000;
	int64_t ttl = json_is_integer(asked) ? json_integer_value(asked) : 0;

	if (ttl <= 0)
		ttl = (s->o->discovery_ttl + 999) / 1000;
	return ttl > max ? max : ttl;
}

/* A random (version 4) UUID into @out. */
static int uuid4(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -EIO;
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
	return 0;
}

static void add_bytes(const struct store_group *g, void *arg)
{
	*(size_t *)arg += g->json_len;
}

/*
 * Whether @app's groups stay within --discovery-max-app-bytes once group @id is @len bytes.
 * It bounds what one GET /groups builds and holds for a reader: without it an app's writer
 * could make each listing up to --discovery-max-per-app groups of about 90 KB.
 */
static bool app_fits(struct server *s, const char *app, const char *id, size_t len)
{
	const struct store_group *old = store_group_get(s->store, app, id);
	size_t n = 0;

	store_group_list(s->store, app, add_bytes, &n);
	if (old)
		n -= old->json_len;
	return n + len <= (size_t)s->o->discovery_max_app_bytes;
}

/*
 * Build the group from @fields over @base and store it for @owner. 0, or an HTTP status with
 * *why. On success *text is the stored JSON (new string) when @text is not NULL.
 */
static int save(struct server *s, const struct caller *who, const char *id, const char *owner,
                const json_t *base, const json_t *fields, char **text, const char **why)
{
	int64_t now = relay_now_ms();
	const json_t *asked = json_object_get(fields, "TTL");
	int64_t ttl = effective_ttl(s, asked ? asked : json_object_get(base, "TTL"));
	json_t *g = group_build(base, fields, id, who->app, now / 1000, ttl);
	char *json = g ? json_dumps(g, JSON_COMPACT) : NULL;
	int err;

	json_decref(g);
	if (!json) {
		*why = "out of memory";
		return 503;
	}
	if (!app_fits(s, who->app, id, strlen(json))) {
		free(json);
		*why = "this app's groups would be too large (--discovery-max-app-bytes)";
		return 429;
	}
	err = store_group_put(s->store, who->app, id, owner, now + ttl * 1000, json);
	if (err) {
		log_err("cannot store group '%s' of app '%s': %s", id, who->app,
		        err == -EIO ? "state write failed" : strerror(-err));
		free(json);
		*why = "cannot write state";
		return 503;
	}
	relay_cluster_group_put(who->app, id, owner, now + ttl * 1000, json);
	if (text)
		*text = json;
	else
		free(json);
	return 0;
}

/* Parse the request body into @fields: NULL, else the reason for a 400 or 403 (*status). */
static const char *read_body(struct conn *c, const struct caller *who, json_t **fields,
                             char why[GROUP_WHY], int *status)
{
	const json_t *app;

	*status = 400;
	if (!c->req.len)
		return "a JSON body is required, framed by Content-Length";
	if (group_parse((const char *)c->req.p, c->req.len, fields, why))
		return why;
	app = json_object_get(*fields, "AppID");
	if (app && strcmp(json_string_value(app), who->app) != 0) {
		json_decref(*fields);
		*fields = NULL;
		*status = 403;
		return "AppID is not the token's app (topic)";
	}
	return NULL;
}

static int create(struct server *s, struct lws *wsi, struct conn *c, const struct caller *who)
{
	char why[GROUP_WHY], id[GROUP_ID_MAX + 1], location[GROUP_ID_MAX + 16];
	json_t *fields, *idv;
	const char *err;
	int status;
	char *body;

	err = read_body(c, who, &fields, why, &status);
	if (err)
		return relay_respond_error(wsi, c, status, err);
	idv = json_object_get(fields, "ID");
	if (idv)
		snprintf(id, sizeof(id), "%s", json_string_value(idv));
	else if (uuid4(id)) {
		json_decref(fields);
		return relay_respond_error(wsi, c, 503, "no randomness");
	}
	relay_discovery_expire(s, relay_now_ms()); /* an expired namesake goes first */
	if (store_group_get(s->store, who->app, id)) {
		status = 409, err = "a group with this ID exists";
	} else if (store_group_count(s->store, who->app) >= (size_t)s->o->discovery_max_per_app) {
		status = 429, err = "too many groups for this app (--discovery-max-per-app)";
	} else if (store_group_count(s->store, NULL) >= (size_t)s->o->discovery_max_groups) {
		status = 507, err = "too many groups on this relay (--discovery-max-groups)";
	} else {
		status = save(s, who, id, who->sub, NULL, fields, NULL, &err);
	}
	json_decref(fields);
	if (status)
		return relay_respond_error(wsi, c, status, err);
	log_info("group '%s' of app '%s' created by '%.60s'", id, who->app, who->sub);
	idv = json_string(id);
	body = idv ? json_dumps(idv, JSON_ENCODE_ANY) : NULL;
	json_decref(idv);
	snprintf(location, sizeof(location), "/groups/%s", id);
	return relay_respond_created(wsi, c, location, body);
}

struct listing {
	struct buf out;
	int64_t now;
	bool failed;
};

static void list_one(const struct store_group *g, void *arg)
{
	struct listing *l = arg;
	char key[GROUP_ID_MAX + 8];
	int n;

	if (g->expires < l->now || l->failed)
		return;
	/* Ids are checked to need no escaping (group_id_ok). */
	n = snprintf(key, sizeof(key), "%s\"%s\":", l->out.len > 1 ? "," : "", g->id);
	l->failed = buf_add(&l->out, key, (size_t)n) || buf_add(&l->out, g->json, g->json_len);
}

static int list(struct server *s, struct lws *wsi, struct conn *c, const struct caller *who)
{
	struct listing l = {.now = relay_now_ms()};

	buf_init(&l.out, SIZE_MAX);
	l.failed = buf_add(&l.out, "{", 1) != 0;
	store_group_list(s->store, who->app, list_one, &l);
	if (l.failed || buf_add(&l.out, "}", 2)) { /* with its NUL */
		buf_release(&l.out);
		return relay_respond_error(wsi, c, 503, "out of memory");
	}
	return relay_respond(wsi, c, 200, (char *)l.out.p);
}

static int get(struct server *s, struct lws *wsi, struct conn *c, const struct caller *who,
               const char *id)
{
	const struct store_group *g = live_group(s, who->app, id);
	char *body;

	if (!g)
		return relay_respond_error(wsi, c, 404, "no such group");
	body = strdup(g->json);
	if (!body)
		return relay_respond_error(wsi, c, 503, "out of memory");
	return relay_respond(wsi, c, 200, body);
}

static int patch(struct server *s, struct lws *wsi, struct conn *c, const struct caller *who,
                 const char *id)
{
	const struct store_group *g = live_group(s, who->app, id);
	char why[GROUP_WHY], owner[STORE_OWNER_MAX + 1];
	json_t *fields, *base;
	const char *err;
	char *text = NULL;
	int status;

	if (!g)
		return relay_respond_error(wsi, c, 404, "no such group");
	if (!may_change(who, g))
		return relay_respond_error(wsi, c, 403, "only the group's creator changes it");
	err = read_body(c, who, &fields, why, &status);
	if (err)
		return relay_respond_error(wsi, c, status, err);
	base = json_loadb(g->json, g->json_len, 0, NULL);
	snprintf(owner, sizeof(owner), "%s", g->owner); /* g goes with the put */
	status = base ? save(s, who, id, owner, base, fields, &text, &err) : 503;
	if (!base)
		err = "stored group unreadable";
	json_decref(base);
	json_decref(fields);
	if (status)
		return relay_respond_error(wsi, c, status, err);
	return relay_respond(wsi, c, 200, text);
}

static int delete (struct server *s, struct lws *wsi, struct conn *c, const struct caller *who,
                   const char *id)
{
	const struct store_group *g = live_group(s, who->app, id);
	int err;

	if (!g)
		return relay_respond_error(wsi, c, 404, "no such group");
	if (!may_change(who, g))
		return relay_respond_error(wsi, c, 403, "only the group's creator deletes it");
	err = store_group_delete(s->store, who->app, id);
	if (err) {
		log_err("cannot delete group '%s' of app '%s': state write failed", id, who->app);
		return relay_respond_error(wsi, c, 503, "cannot write state");
	}
	relay_cluster_group_delete(who->app, id);
	log_info("group '%s' of app '%s' deleted by '%.60s'%s", id, who->app, who->sub,
	         who->admin ? " (admin)" : "");
	return relay_respond(wsi, c, 204, NULL);
}

/* ---- routing ---- */

/* The method @path allows for @m: NULL, else the reason for a 405 (or 404). */
static const char *method_check(const char *path, enum relay_method m, int *status)
{
	*status = 405;
	if (strcmp(path, "/group") == 0)
		return m == M_POST ? NULL : "use POST";
	if (strcmp(path, "/groups") == 0)
		return m == M_GET ? NULL : "use GET (POST /group creates)";
	if (!group_id_ok(path + 8)) {
		*status = 404;
		return "no such group";
	}
	return m == M_GET || m == M_PATCH || m == M_DELETE ? NULL : "use GET, PATCH or DELETE";
}

const char *relay_discovery_refusal(struct server *s, struct lws *wsi, enum relay_method m,
                                    const char *path, int *status)
{
	struct caller who;
	const char *why = method_check(path, m, status);

	return why ? why : authorise(s, wsi, m, &who, status);
}

int relay_discovery(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                    const char *path)
{
	struct caller who;
	const char *why;
	int status;

	why = method_check(path, m, &status);
	if (!why)
		why = authorise(s, wsi, m, &who, &status);
	if (why)
		return relay_respond_error(wsi, c, status, why);
	/* With --redis, Redis holds the groups: a change made while it is unreachable would be
	 * undone by the reload at the next link up, so it is refused instead. */
	if (m != M_GET && relay_cluster_groups_frozen())
		return relay_respond_error(wsi, c, 503,
		                           "redis unreachable: groups cannot change now");
	if (strcmp(path, "/group") == 0)
		return create(s, wsi, c, &who);
	if (strcmp(path, "/groups") == 0)
		return list(s, wsi, c, &who);
	if (m == M_GET)
		return get(s, wsi, c, &who, path + 8);
	if (m == M_PATCH)
		return patch(s, wsi, c, &who, path + 8);
	return delete (s, wsi, c, &who, path + 8);
}

static void expired(const char *app, const char *id, void *arg)
{
	log_info("group '%s' of app '%s' expired", id, app);
	relay_signal_group_expired(arg, app, id);
}

void relay_discovery_expire(struct server *s, int64_t now_ms)
{
	if (store_group_expire(s->store, now_ms, expired, s) < 0)
		log_err("cannot expire discovery groups: state write failed");
}
