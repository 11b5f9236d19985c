/*
 * fuzz_discovery: the discovery group JSON checks (pkg/group) on arbitrary bytes. A body
 * group_parse() accepts holds only known fields of the right types within their limits; the
 * group built from it has every field, serialises, parses back, and builds to the same text
 * (a stored group always reloads); building it over itself (a PATCH) changes nothing. A body it
 * refuses gives a reason.
 */
#include "pkg/group/group.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_fields(const json_t *g)
{
	const char *key;
	const json_t *v;

	json_object_foreach((json_t *)g, key, v)
	{
		if (strcmp(key, "TTL") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				abort();
		} else if (strcmp(key, "Peers") == 0 || strcmp(key, "GenesisPeers") == 0) {
			if (!json_is_array(v) || json_array_size(v) > GROUP_PEERS_MAX)
				abort();
			for (size_t i = 0; i < json_array_size(v); i++)
				if (json_object_size(json_array_get(v, i)) != 3)
					abort();
		} else if (strcmp(key, "ID") == 0) {
			if (!group_id_ok(json_string_value(v)))
				abort();
		} else if (strcmp(key, "Name") != 0 && strcmp(key, "AppID") != 0 &&
		           strcmp(key, "PubKey") != 0) {
			abort(); /* an unknown field kept */
		} else if (!json_is_string(v) || json_string_length(v) > GROUP_STR_MAX) {
			abort();
		}
	}
}

static char *build_text(const json_t *base, const json_t *fields)
{
	json_t *g = group_build(base, fields, "id-1", "app", 1700000000, 300);
	char *s = g ? json_dumps(g, JSON_COMPACT) : NULL;

	if (!g || !s || json_object_size(g) != 8)
		abort();
	json_decref(g);
	return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[GROUP_WHY];
	json_t *fields = NULL, *again = NULL, *built;
	char *text, *text2, *text3;

	if (group_parse((const char *)data, size, &fields, why)) {
		if (fields || !why[0])
			abort();
		return 0;
	}
	check_fields(fields);
	text = build_text(NULL, fields);
	if (group_parse(text, strlen(text), &again, why))
		abort(); /* a stored group must reload */
	text2 = build_text(NULL, again);
	built = json_loads(text, 0, NULL);
	text3 = build_text(built, fields); /* the same fields again: a no-op patch */
	if (strcmp(text, text2) != 0 || strcmp(text, text3) != 0)
		abort();
	json_decref(built);
	json_decref(again);
	json_decref(fields);
	free(text);
	free(text2);
	free(text3);
	return 0;
}
