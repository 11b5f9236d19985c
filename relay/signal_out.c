/*
 * relay/signal_out: the bounded output queue of a signaling or meeting connection. A slow
 * reader is closed, not fed with drops: a lost answer or candidate would break a negotiation
 * silently, while a closed connection tells the peer to come back.
 */
#define LOG_MODULE "signal"
#include "relay/signal.h"
#include "pkg/log/log.h"
#include "pkg/wsframe/wsframe.h"

#include <stdlib.h>
#include <string.h>

struct sig_omsg {
	struct sig_omsg *next;
	size_t len;
	unsigned char data[]; /* LWS_PRE headroom, then len bytes */
};

void sig_out_clear(struct sig_out *q)
{
	struct sig_omsg *o, *next;

	for (o = q->head; o; o = next) {
		next = o->next;
		free(o);
	}
	memset(q, 0, sizeof(*q));
}

void sig_out_push(struct conn *c, struct sig_out *q, char *s)
{
	struct sig_omsg *o;
	size_t n;

	if (c->closing) {
		free(s);
		return;
	}
	if (!s) {
		relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
		sig_out_clear(q);
		return;
	}
	n = strlen(s);
	if (q->bytes + n > (size_t)relay_srv.o->signal_queue) {
		free(s);
		logt_info(c->tag, "%zu bytes queued and more to come: closing slow reader",
		          q->bytes);
		relay_conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "reader too slow");
		sig_out_clear(q);
		return;
	}
	o = malloc(sizeof(*o) + LWS_PRE + n);
	if (!o) {
		free(s);
		relay_conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
		sig_out_clear(q);
		return;
	}
	o->next = NULL;
	o->len = n;
	memcpy(o->data + LWS_PRE, s, n);
	free(s);
	if (q->tail)
		q->tail->next = o;
	else
		q->head = o;
	q->tail = o;
	q->bytes += n;
	q->n++;
	lws_callback_on_writable(c->wsi);
}

static void pop(struct sig_out *q)
{
	struct sig_omsg *o = q->head;

	q->head = o->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= o->len;
	q->n--;
	free(o);
}

#define BATCH_BYTES (64 * 1024)

/*
 * Frame the oldest messages here (RFC 6455 section 5.2, unmasked) into one raw write, as
 * wswrite.c's fast path does for topics: one send() per small message is what limits a busy
 * realm (NOTES.md). Only on a connection of its own with --write-path fast (the lws 4.1 this
 * was verified with); 0 messages written means "write the oldest the lws way".
 */
static int write_batch(struct lws *wsi, struct sig_out *q, size_t *written)
{
	static uint8_t buf[LWS_PRE + BATCH_BYTES];
	uint8_t *p = buf + LWS_PRE;
	size_t len = 0, n = 0;

	*written = 0;
	if (strcmp(relay_write_path(), "fast") != 0 || lws_get_network_wsi(wsi) != wsi)
		return 0;
	for (struct sig_omsg *o = q->head; o && len + WSFRAME_MAX_HEADER + o->len <= BATCH_BYTES;
	     o = o->next, n++) {
		len += wsframe_header(p + len, WS_TEXT, true, o->len, NULL);
		memcpy(p + len, o->data + LWS_PRE, o->len);
		len += o->len;
	}
	if (n < 2)
		return 0;
	if (lws_write(wsi, p, len, LWS_WRITE_RAW) < (int)len)
		return -1;
	*written = n;
	while (n--)
		pop(q);
	return 0;
}

int sig_out_write(struct lws *wsi, struct conn *c, struct sig_out *q)
{
	struct sig_omsg *o = q->head;
	size_t n;

	if (!o)
		return 0;
	if (write_batch(wsi, q, &n) ||
	    (!n && lws_write(wsi, o->data + LWS_PRE, o->len, LWS_WRITE_TEXT) < (int)o->len)) {
		logt_info(c->tag, "write failed: closing");
		return -1;
	}
	c->writes++;
	if (!n)
		pop(q);
	if (q->head)
		lws_callback_on_writable(wsi);
	return 0;
}
