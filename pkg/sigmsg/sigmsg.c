/*
 * sigmsg: parse, check and write signaling messages (see sigmsg.h). JSON through jansson, with
 * duplicate keys refused: a frame whose "to" or "from" could be read two ways by two parsers is
 * not forwarded.
 */
#include "pkg/sigmsg/sigmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool sigmsg_valid_id(const char *id, size_t n)
{
	if (n == 0 || n > SIGMSG_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] < 0x20 || (unsigned char)id[i] > 0x7e)
			return false;
	return true;
}

static const char *const type_names[] = {
        [SIGMSG_OFFER] = "offer", [SIGMSG_ANSWER] = "answer",   [SIGMSG_CANDIDATE] = "candidate",
        [SIGMSG_BYE] = "bye",     [SIGMSG_MESSAGE] = "message",
};

static int type_of(const char *s)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
		if (strcmp(s, type_names[i]) == 0)
			return (int)i;
	return -1;
}

static int invalid(json_t *root, const char **why, const char *reason, json_t **ref)
{
	json_t *r = json_is_object(root) ? json_object_get(root, "ref") : NULL;

	*why = reason;
	*ref = r ? json_incref(r) : NULL;
	json_decref(root);
	return -EINVAL;
}

int sigmsg_parse(const uint8_t *p, size_t len, struct sigmsg *m, const char **why, json_t **ref)
{
	json_error_t err;
	json_t *root, *to, *type;
	int t;

	memset(m, 0, sizeof(*m));
	*ref = NULL;
	root = json_loadb((const char *)p, len, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		*why = json_error_code(&err) == json_error_out_of_memory ? "out of memory"
		                                                         : "not valid JSON";
		return json_error_code(&err) == json_error_out_of_memory ? -ENOMEM : -EINVAL;
	}
	if (!json_is_object(root))
		return invalid(root, why, "a message is a JSON object", ref);
	to = json_object_get(root, "to");
	if (!json_is_string(to) ||
	    !sigmsg_valid_id(json_string_value(to), json_string_length(to)) ||
	    strlen(json_string_value(to)) != json_string_length(to))
		return invalid(root, why, "\"to\" must be a peer id (1-128 printable characters)",
		               ref);
	type = json_object_get(root, "type");
	if (!json_is_string(type) || (t = type_of(json_string_value(type))) < 0)
		return invalid(root, why,
		               "\"type\" must be offer, answer, candidate, bye or message", ref);
	m->root = root;
	m->to = json_string_value(to);
	m->type = (enum sigmsg_type)t;
	m->ref = json_object_get(root, "ref");
	return 0;
}

void sigmsg_release(struct sigmsg *m)
{
	json_decref(m->root);
	memset(m, 0, sizeof(*m));
}

static char *dump(json_t *o, size_t *n)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (s)
		*n = strlen(s);
	return s;
}

char *sigmsg_deliver(struct sigmsg *m, const char *from, size_t *n)
{
	char *s;

	if (json_object_set_new(m->root, "from", json_string(from)))
		return NULL;
	s = json_dumps(m->root, JSON_COMPACT);
	if (s)
		*n = strlen(s);
	return s;
}

char *sigmsg_error(const char *code, const char *message, json_t *ref, size_t *n)
{
	json_t *o = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message);

	if (o && ref && json_object_set(o, "ref", ref)) {
		json_decref(o);
		return NULL;
	}
	return dump(o, n);
}

char *sigmsg_presence(const char *type, const char *id, size_t *n)
{
	return dump(json_pack("{s:s, s:s}", "type", type, "from", id), n);
}

char *sigmsg_welcome(const char *id, const char *const *peers, size_t n_peers, json_t *ice,
                     size_t *n)
{
	json_t *arr = json_array(), *o;

	for (size_t i = 0; arr && i < n_peers; i++)
		if (json_array_append_new(arr, json_string(peers[i]))) {
			json_decref(arr);
			arr = NULL;
		}
	if (!ice)
		ice = json_array();
	if (!arr || !ice) {
		json_decref(arr);
		json_decref(ice);
		return NULL;
	}
	o = json_pack("{s:s, s:s, s:o, s:o}", "type", "welcome", "id", id, "peers", arr,
	              "iceServers", ice);
	return dump(o, n);
}

char *sigmsg_group_expired(const char *id, size_t *n)
{
	return dump(json_pack("{s:s, s:s}", "type", "group-expired", "id", id), n);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void sigmsg_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; ids && i < n; i++)
		free(ids[i]);
	free(ids);
}

/* Sort and drop duplicates; returns the new count. */
static size_t sort_unique(char **ids, size_t n)
{
	size_t k = 0;

	if (n)
		qsort(ids, n, sizeof(*ids), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (k && strcmp(ids[k - 1], ids[i]) == 0) {
			free(ids[i]);
			continue;
		}
		ids[k++] = ids[i];
	}
	return k;
}

int sigmsg_peers_claim(const char *claims_json, size_t max, char ***ids, size_t *n)
{
	json_t *root = claims_json ? json_loads(claims_json, 0, NULL) : NULL, *arr, *v;
	char **out = NULL;
	size_t i, k = 0;
	int err = 0;

	*ids = NULL;
	*n = 0;
	arr = json_is_object(root) ? json_object_get(root, "peers") : NULL;
	if (!arr)
		goto out;
	if (!json_is_array(arr) || json_array_size(arr) > max) {
		err = -EINVAL;
		goto out;
	}
	out = calloc(json_array_size(arr) + 1, sizeof(*out));
	if (!out) {
		err = -ENOMEM;
		goto out;
	}
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) ||
		    !sigmsg_valid_id(json_string_value(v), json_string_length(v)) ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			err = -EINVAL;
			break;
		}
		if (!(out[k] = strdup(json_string_value(v)))) {
			err = -ENOMEM;
			break;
		}
		k++;
	}
	if (err) {
		sigmsg_ids_free(out, k);
		goto out;
	}
	*n = sort_unique(out, k);
	*ids = out;
out:
	json_decref(root);
	return err;
}

bool sigmsg_ids_have(char *const *ids, size_t n, const char *id)
{
	return bsearch(&id, ids, n, sizeof(*ids), cmp_str) != NULL;
}
