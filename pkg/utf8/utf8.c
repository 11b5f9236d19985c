#include "pkg/utf8/utf8.h"

size_t utf8_seq_len(const uint8_t *p, size_t len)
{
	uint8_t c = len ? p[0] : 0x80;
	size_t n;
	uint32_t cp, min;

	if (c < 0x80)
		return len ? 1 : 0;
	if ((c & 0xe0) == 0xc0)
		n = 2, cp = c & 0x1f, min = 0x80;
	else if ((c & 0xf0) == 0xe0)
		n = 3, cp = c & 0x0f, min = 0x800;
	else if ((c & 0xf8) == 0xf0)
		n = 4, cp = c & 0x07, min = 0x10000;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t k = 1; k < n; k++) {
		if ((p[k] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[k] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool utf8_valid(const uint8_t *p, size_t len)
{
	for (size_t i = 0, n; i < len; i += n)
		if (!(n = utf8_seq_len(p + i, len - i)))
			return false;
	return true;
}
