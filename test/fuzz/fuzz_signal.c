/*
 * fuzz_signal: pkg/sigmsg on arbitrary bytes, as a signaling client or a token's payload could
 * send them. A frame is either refused with a reason, or accepted with a valid "to" and type;
 * an accepted frame delivered with the server's "from" parses back as an object whose "from"
 * is exactly that and whose "to" is unchanged. A peers claim, when accepted, is a sorted list
 * of distinct valid ids, never longer than asked.
 */
#include "pkg/sigmsg/sigmsg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_frame(const uint8_t *data, size_t size)
{
	struct sigmsg m;
	const char *why = NULL;
	json_t *ref = NULL, *back;
	size_t n = 0;
	char *out, *to;

	if (sigmsg_parse(data, size, &m, &why, &ref)) {
		if (!why)
			abort();
		free(sigmsg_error("bad-message", why, ref, &n));
		json_decref(ref);
		return;
	}
	if (!sigmsg_valid_id(m.to, strlen(m.to)) || m.type > SIGMSG_MESSAGE)
		abort();
	to = strdup(m.to);
	out = sigmsg_deliver(&m, "server-said", &n);
	if (out && to) {
		back = json_loadb(out, n, JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(back) ||
		    strcmp(json_string_value(json_object_get(back, "from")), "server-said") != 0 ||
		    strcmp(json_string_value(json_object_get(back, "to")), to) != 0)
			abort();
		json_decref(back);
	}
	free(out);
	free(to);
	sigmsg_release(&m);
}

static void check_claim(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), **ids;
	size_t n;

	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (sigmsg_peers_claim(s, 8, &ids, &n) == 0 && ids) {
		if (n > 8)
			abort();
		for (size_t i = 0; i < n; i++)
			if (!sigmsg_valid_id(ids[i], strlen(ids[i])) ||
			    (i && strcmp(ids[i - 1], ids[i]) >= 0) ||
			    !sigmsg_ids_have(ids, n, ids[i]))
				abort();
		sigmsg_ids_free(ids, n);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_frame(data, size);
	check_claim(data, size);
	return 0;
}
