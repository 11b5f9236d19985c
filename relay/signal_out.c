/*
 * relay/signal_out: the bounded output queue of a signaling or meeting connection. A slow
 * reader is closed, not fed with drops: a lost answer or candidate would break a negotiation
 * silently, while a closed connection tells the peer to come back.
 */
#define LOG_MODULE "signal"
#include "relay/signal.h"
#include "pkg/log/log.h"

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

int sig_out_write(struct lws *wsi, struct conn *c, struct sig_out *q)
{
	struct sig_omsg *o = q->head;

	if (!o)
		return 0;
	if (lws_write(wsi, o->data + LWS_PRE, o->len, LWS_WRITE_TEXT) < (int)o->len) {
		logt_info(c->tag, "write failed: closing");
		return -1;
	}
	c->writes++;
	q->head = o->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= o->len;
	q->n--;
	free(o);
	if (q->head)
		lws_callback_on_writable(wsi);
	return 0;
}
