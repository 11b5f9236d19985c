/*
 * group: checks on a group's fields in one table, then the merge that builds the stored form.
 * Unknown names are dropped rather than refused: Disco's Go decoder ignores them too, and a
 * client that sends "InitialPeers" (Disco's older name) should not fail.
 */
#include "pkg/group/group.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

enum kind { STR, INT, PEERS, SKIP };

static const struct field {
	const char *name;
	enum kind kind;
	size_t max; /* bytes of a string */
} fields[] = {
        {"ID", STR, GROUP_ID_MAX},
        {"Name", STR, GROUP_STR_MAX},
        {"AppID", STR, GROUP_APP_MAX},
        {"PubKey", STR, GROUP_STR_MAX},
        {"TTL", INT, 0},
        {"Peers", PEERS, 0},
        {"GenesisPeers", PEERS, 0},
        {"LastUpdated", SKIP, 0},
};

static const char *const peer_fields[] = {"NetAddr", "PubKeyHex", "Moniker"};

bool group_id_ok(const char *id)
{
	size_t n = strlen(id);

	return n > 0 && n <= GROUP_ID_MAX &&
	       strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._~:-") ==
	               n;
}

/* A peer reduced to its three string fields (absent ones ""), or NULL with @why. */
static json_t *peer_parse(const json_t *in, const char *list, size_t i, char why[GROUP_WHY])
{
	json_t *out;

	if (!json_is_object(in)) {
		snprintf(why, GROUP_WHY, "%s[%zu] must be an object", list, i);
		return NULL;
	}
	out = json_object();
	for (size_t k = 0; out && k < sizeof(peer_fields) / sizeof(peer_fields[0]); k++) {
		const json_t *v = json_object_get(in, peer_fields[k]);

		if (v && !json_is_null(v) &&
		    (!json_is_string(v) || json_string_length(v) > GROUP_STR_MAX)) {
			snprintf(why, GROUP_WHY, "%s[%zu].%s must be a string of at most %d bytes",
			         list, i, peer_fields[k], GROUP_STR_MAX);
			json_decref(out);
			return NULL;
		}
		if (json_object_set_new(
		            out, peer_fields[k],
		            json_string(json_is_string(v) ? json_string_value(v) : ""))) {
			snprintf(why, GROUP_WHY, "out of memory");
			json_decref(out);
			return NULL;
		}
	}
	if (!out)
		snprintf(why, GROUP_WHY, "out of memory");
	return out;
}

static json_t *peers_parse(const json_t *in, const char *name, char why[GROUP_WHY])
{
	json_t *out;

	if (json_is_null(in))
		return json_array(); /* Go writes a nil slice as null */
	if (!json_is_array(in) || json_array_size(in) > GROUP_PEERS_MAX) {
		snprintf(why, GROUP_WHY, "%s must be an array of at most %d peers", name,
		         GROUP_PEERS_MAX);
		return NULL;
	}
	out = json_array();
	for (size_t i = 0; out && i < json_array_size(in); i++) {
		json_t *p = peer_parse(json_array_get(in, i), name, i, why);

		if (!p || json_array_append_new(out, p)) {
			json_decref(out);
			return NULL;
		}
	}
	if (!out)
		snprintf(why, GROUP_WHY, "out of memory");
	return out;
}

/* The checked value of field @f from @v (a new reference), or NULL with @why. */
static json_t *field_parse(const struct field *f, const json_t *v, char why[GROUP_WHY])
{
	switch (f->kind) {
	case STR:
		if (!json_is_string(v) || json_string_length(v) > f->max) {
			snprintf(why, GROUP_WHY, "%s must be a string of at most %zu bytes",
			         f->name, f->max);
			return NULL;
		}
		if (strcmp(f->name, "ID") == 0 && !group_id_ok(json_string_value(v))) {
			snprintf(why, GROUP_WHY, "ID must be 1 to %d of [A-Za-z0-9._~:-]",
			         GROUP_ID_MAX);
			return NULL;
		}
		return json_string(json_string_value(v));
	case INT:
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(why, GROUP_WHY, "%s must be a whole number of seconds, 0 or more",
			         f->name);
			return NULL;
		}
		return json_integer(json_integer_value(v));
	case PEERS:
		return peers_parse(v, f->name, why);
	case SKIP:
		break;
	}
	return NULL;
}

int group_parse(const char *p, size_t n, json_t **out, char why[GROUP_WHY])
{
	json_error_t err;
	json_t *in = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err), *g = NULL;

	*out = NULL;
	why[0] = '\0';
	if (!in) {
		snprintf(why, GROUP_WHY, "malformed JSON: %.80s", err.text);
		return -EINVAL;
	}
	if (!json_is_object(in)) {
		snprintf(why, GROUP_WHY, "a group must be a JSON object");
		goto out;
	}
	g = json_object();
	for (size_t i = 0; g && i < sizeof(fields) / sizeof(fields[0]); i++) {
		const json_t *v = json_object_get(in, fields[i].name);
		json_t *val;

		if (!v || fields[i].kind == SKIP)
			continue;
		val = field_parse(&fields[i], v, why);
		if (!val || json_object_set_new(g, fields[i].name, val)) {
			if (!why[0])
				snprintf(why, GROUP_WHY, "out of memory");
			json_decref(g);
			g = NULL;
		}
	}
	if (!g && !why[0])
		snprintf(why, GROUP_WHY, "out of memory");
out:
	json_decref(in);
	*out = g;
	return g ? 0 : -EINVAL;
}

/* @name from @fields, else from @base, else @def (a new reference). */
static json_t *pick(const json_t *base, const json_t *fields_in, const char *name, json_t *def)
{
	json_t *v = fields_in ? json_object_get(fields_in, name) : NULL;

	if (!v && base)
		v = json_object_get(base, name);
	if (!v)
		return def;
	json_decref(def);
	return json_deep_copy(v);
}

json_t *group_build(const json_t *base, const json_t *fields_in, const char *id, const char *app,
                    int64_t last_updated, int64_t ttl)
{
	/* Disco's field order, which its clients print. */
	return json_pack("{s:s, s:o, s:s, s:o, s:I, s:I, s:o, s:o}", "ID", id, "Name",
	                 pick(base, fields_in, "Name", json_string("")), "AppID", app, "PubKey",
	                 pick(base, fields_in, "PubKey", json_string("")), "LastUpdated",
	                 (json_int_t)last_updated, "TTL", (json_int_t)ttl, "Peers",
	                 pick(base, fields_in, "Peers", json_array()), "GenesisPeers",
	                 pick(base, fields_in, "GenesisPeers", json_array()));
}
