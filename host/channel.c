/*
 * host/channel: private channels of a `connect` stream (issue 14, docs/connect.md). The stream's
 * relay link (link.c) is the host's control connection to POST /connect/{host}; for each
 * {"type":"connect","uri":"wss://.../connect/{host}?code=...","client":"..."} on it, a channel:
 * the websocket at that one-time uri, and a fresh TCP connection to the configured target,
 * joined by pkg/wsclient/bridge (lossless, bounded both ways, half-close). Both are started at
 * once; the bridge reads neither before both are up.
 *
 * Only the configured target (s->target) is ever dialled; the relay chooses nothing but which
 * channel to open, and its uri must be on the relay the stream is configured for (same host
 * and port as the access URL), so a relay cannot make the host open websockets elsewhere.
 */
#define LOG_MODULE "channel"
#include "host/internal.h"
#include "pkg/dial/dial.h"
#include "pkg/log/log.h"
#include "pkg/url/url.h"
#include "pkg/wsclient/bridge.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#define CHANNELS_MAX 64 /* per host: more connect messages are refused (logged) */

struct host_chan {
	struct host_stream *s;
	struct wsc_bridge *b; /* NULL once ended */
	struct dial *dial;    /* the target's connect under way, or NULL */
	struct host_chan *prev, *next;
	unsigned id;
	char client[64];
};

static _Atomic unsigned chan_next_id; /* channel numbers in the logs, across streams */

bool host__is_connect(const struct host_stream *s)
{
	return s->o.connect && *s->o.connect;
}

static void chan_free(struct host_chan *ch)
{
	struct host_stream *s = ch->s;

	if (ch->prev)
		ch->prev->next = ch->next;
	else
		s->chans = ch->next;
	if (ch->next)
		ch->next->prev = ch->prev;
	s->n_chans--;
	free(ch);
}

static void chan_ended(struct wsc_bridge *b, int code, const char *why, void *arg)
{
	struct host_chan *ch = arg;
	struct host_stream *s = ch->s;
	uint64_t to_ws, from_ws;

	wsc_bridge_counts(b, &to_ws, &from_ws);
	atomic_fetch_add(&s->bytes_out, to_ws);
	atomic_fetch_add(&s->bytes_in, from_ws);
	if (code == 1000)
		logt_info(s->name, "channel %u (%s) closed: %llu bytes out, %llu in", ch->id,
		          ch->client, (unsigned long long)to_ws, (unsigned long long)from_ws);
	else
		logt_notice(s->name, "channel %u (%s) ended: %s (%llu bytes out, %llu in)", ch->id,
		            ch->client, why, (unsigned long long)to_ws,
		            (unsigned long long)from_ws);
	ch->b = NULL;
	if (ch->dial) {
		dial_cancel(ch->dial);
		ch->dial = NULL;
	}
	chan_free(ch);
}

static void chan_free_handle(uv_handle_t *h)
{
	free(h);
}

/* The target answered (or not): the bridge's local end. */
static void chan_dialled(int fd, int err, const char *why, void *arg)
{
	struct host_chan *ch = arg;
	char msg[BRIDGE_WHY];
	uv_tcp_t *t;
	int r;

	(void)err;
	ch->dial = NULL; /* freed by pkg/dial after this */
	if (fd < 0) {
		snprintf(msg, sizeof(msg), "target: %.200s", why);
		wsc_bridge_close(ch->b, 1011, msg);
		return;
	}
	t = malloc(sizeof(*t));
	if (!t) {
		close(fd);
		wsc_bridge_close(ch->b, 1011, "out of memory");
		return;
	}
	uv_tcp_init(&ch->s->loop, t);
	r = uv_tcp_open(t, fd);
	if (r) {
		close(fd);
		uv_close((uv_handle_t *)t, chan_free_handle);
		snprintf(msg, sizeof(msg), "target: %s", uv_strerror(r));
		wsc_bridge_close(ch->b, 1011, msg);
		return;
	}
	uv_tcp_nodelay(t, 1);
	wsc_bridge_set_local(ch->b, (uv_stream_t *)t, (uv_stream_t *)t);
}

/* The uri must be a websocket on the relay of the stream's access URL. */
static bool chan_uri_ok(const struct host_stream *s, const char *uri)
{
	struct url u, a;

	if (url_parse(uri, &u) || url_parse(s->o.session, &a))
		return false;
	return (!strcmp(u.scheme, "ws") || !strcmp(u.scheme, "wss")) && u.tls == a.tls &&
	       !strcasecmp(u.host, a.host) && u.port == a.port && !strncmp(u.path, "/connect/", 9);
}

static void chan_open(struct host_stream *s, const char *uri, const char *client)
{
	struct host_chan *ch;
	char why[WSC_WHY];
	struct wsc_uv *c;

	if (s->n_chans >= CHANNELS_MAX) {
		logt_warn(s->name, "channel for '%s' refused: %d open already", client,
		          CHANNELS_MAX);
		return; /* the relay closes the client (1013) when we do not answer */
	}
	ch = calloc(1, sizeof(*ch));
	if (!ch || !(ch->b = wsc_bridge_new(&s->loop, chan_ended, ch))) {
		free(ch);
		logt_err(s->name, "channel for '%s': out of memory", client);
		return;
	}
	ch->s = s;
	ch->id = atomic_fetch_add(&chan_next_id, 1) + 1;
	snprintf(ch->client, sizeof(ch->client), "%s", client);
	ch->next = s->chans;
	if (s->chans)
		s->chans->prev = ch;
	s->chans = ch;
	s->n_chans++;
	c = wsc_uv_open(&s->loop, uri, s->tls, (int)s->o.timeout, BRIDGE_IN_MAX, BRIDGE_OUT_MAX,
	                &wsc_bridge_cbs, ch->b, why);
	if (!c) {
		wsc_bridge_close(ch->b, 1011, why);
		return;
	}
	wsc_bridge_set_ws(ch->b, c);
	ch->dial = dial_start(&s->loop, s->target.host, s->target.port, SOCK_STREAM,
	                      (int)s->o.timeout, chan_dialled, ch, why);
	if (!ch->dial) {
		wsc_bridge_close(ch->b, 1011, why);
		return;
	}
	logt_info(s->name, "channel %u for '%s': connecting to %s:%d", ch->id, ch->client,
	          s->target.host, s->target.port);
}

void host__channel_message(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n)
{
	json_error_t jerr;
	json_t *m = opcode == WS_TEXT ? json_loadb((const char *)p, n, 0, &jerr) : NULL;
	const char *type = json_string_value(json_object_get(m, "type"));
	const char *uri = json_string_value(json_object_get(m, "uri"));
	const char *client = json_string_value(json_object_get(m, "client"));

	if (!type || strcmp(type, "connect") != 0) {
		/* other messages are for later versions of the protocol */
		logt_debug(s->name, "control message ignored (%zu bytes)", n);
	} else if (!uri || !chan_uri_ok(s, uri)) {
		logt_warn(s->name, "connect message ignored: its uri is not a websocket at %s",
		          s->o.session);
	} else {
		chan_open(s, uri, client ? client : "?");
	}
	json_decref(m);
}

void host__channels_close(struct host_stream *s)
{
	while (s->chans)
		wsc_bridge_close(s->chans->b, 1001, "the host is stopping");
}
