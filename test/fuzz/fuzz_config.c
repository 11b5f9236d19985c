/*
 * fuzz_config: the value parsers behind every setting (bool, int, duration, size) on arbitrary
 * NUL-terminated text. Nothing may crash; accepted durations and sizes are never negative.
 */
#include "pkg/config/config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	int64_t v;
	bool b;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	cfg_parse_bool(s, &b);
	cfg_parse_int(s, &v);
	if (cfg_parse_duration_ms(s, &v) == 0 && v < 0)
		abort();
	if (cfg_parse_size(s, &v) == 0 && v < 0)
		abort();
	free(s);
	return 0;
}
