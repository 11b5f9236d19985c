/*
 * pkg/utf8: UTF-8 as RFC 3629 defines it (no overlong forms, no surrogates, nothing past
 * U+10FFFF), for websocket text (RFC 6455 section 8.1) and JSON log lines.
 */
#ifndef RELAY_PKG_UTF8_H
#define RELAY_PKG_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid sequence at @p (1 to 4, within @len bytes), or 0 when there is none. */
size_t utf8_seq_len(const uint8_t *p, size_t len);

/* true when all @len bytes at @p are valid UTF-8. */
bool utf8_valid(const uint8_t *p, size_t len);

#endif
