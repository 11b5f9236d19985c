/* wsframe: RFC 6455 section 5.2 frame headers, section 5.4 messages, section 4.2.2 accept key. */
#include "pkg/wsframe/wsframe.h"
#include "pkg/utf8/utf8.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

static bool is_known_opcode(uint8_t op)
{
	return op <= WS_BINARY || (op >= WS_CLOSE && op <= WS_PONG);
}

int wsframe_parse(const uint8_t *p, size_t len, struct ws_frame *f)
{
	size_t need = 2;
	uint8_t len7;

	if (len < 2)
		return 0;
	f->fin = p[0] & 0x80;
	f->opcode = p[0] & 0x0f;
	f->masked = p[1] & 0x80;
	len7 = p[1] & 0x7f;
	if ((p[0] & 0x70) || !is_known_opcode(f->opcode))
		return -EPROTO;
	if ((f->opcode & 0x8) && (!f->fin || len7 > 125))
		return -EPROTO;
	need += len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
	need += f->masked ? 4 : 0;
	if (len < need)
		return 0;
	if (len7 == 126) {
		f->payload_len = (uint64_t)p[2] << 8 | p[3];
	} else if (len7 == 127) {
		f->payload_len = 0;
		for (int i = 0; i < 8; i++)
			f->payload_len = f->payload_len << 8 | p[2 + i];
		if (f->payload_len >> 63)
			return -EPROTO;
	} else {
		f->payload_len = len7;
	}
	if (f->masked)
		memcpy(f->mask, p + need - 4, 4);
	f->header_len = need;
	return (int)need;
}

int wsframe_next(const uint8_t *p, size_t len, size_t *off, struct ws_frame *f,
                 const uint8_t **payload)
{
	int h;

	if (len - *off < 2)
		return 0; /* also for an empty (possibly NULL) buffer */
	h = wsframe_parse(p + *off, len - *off, f);
	if (h <= 0)
		return h;
	if (f->payload_len > SIZE_MAX - (size_t)h - *off)
		return -EPROTO;
	if (len - *off - (size_t)h < f->payload_len)
		return 0;
	*payload = p + *off + h;
	*off += (size_t)h + (size_t)f->payload_len;
	return 1;
}

size_t wsframe_header(uint8_t *out, uint8_t opcode, bool fin, uint64_t payload_len,
                      const uint8_t *mask)
{
	size_t n;

	out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
	if (payload_len < 126) {
		out[1] = (uint8_t)payload_len;
		n = 2;
	} else if (payload_len <= 0xffff) {
		out[1] = 126;
		out[2] = (uint8_t)(payload_len >> 8);
		out[3] = (uint8_t)payload_len;
		n = 4;
	} else {
		out[1] = 127;
		for (int i = 0; i < 8; i++)
			out[2 + i] = (uint8_t)(payload_len >> (56 - 8 * i));
		n = 10;
	}
	if (mask) {
		out[1] |= 0x80;
		memcpy(out + n, mask, 4);
		n += 4;
	}
	return n;
}

void wsframe_accept_key(const char *key, size_t len, char out[WSFRAME_ACCEPT_LEN])
{
	static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
	unsigned char sha[SHA_DIGEST_LENGTH], buf[128];

	/* a key is 24 characters (16 bytes in base64); a longer one cannot match anything */
	len = len < sizeof(buf) - sizeof(guid) ? len : sizeof(buf) - sizeof(guid);
	memcpy(buf, key, len);
	memcpy(buf + len, guid, sizeof(guid) - 1);
	SHA1(buf, len + sizeof(guid) - 1, sha);
	EVP_EncodeBlock((unsigned char *)out, sha, sizeof(sha));
}

void wsframe_mask(uint8_t *p, size_t len, const uint8_t mask[4], uint64_t offset)
{
	for (size_t i = 0; i < len; i++)
		p[i] ^= mask[(offset + i) & 3];
}

int wsframe_message_add(struct ws_message *m, const struct ws_frame *f, const uint8_t *p,
                        size_t max)
{
	int ret;

	if ((f->opcode == WS_CONT) != m->open)
		return -EPROTO;
	if (f->opcode != WS_CONT) {
		m->data.len = 0;
		m->opcode = f->opcode;
		m->open = true;
	}
	m->data.max = max;
	if (f->payload_len > SIZE_MAX)
		return -EMSGSIZE;
	ret = buf_add(&m->data, p, (size_t)f->payload_len);
	if (ret)
		return ret == -ENOBUFS ? -EMSGSIZE : ret;
	if (!f->fin)
		return 0;
	m->open = false;
	return m->opcode == WS_TEXT && !utf8_valid(m->data.p, m->data.len) ? -EILSEQ : 1;
}

void wsframe_message_release(struct ws_message *m)
{
	buf_release(&m->data);
	memset(m, 0, sizeof(*m));
}
