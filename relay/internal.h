/*
 * relay internals shared by serve.c (context, timers, shutdown), http.c (access API) and
 * ws.c (websocket topics). Everything here runs on the one lws service thread.
 */
#ifndef RELAY_INTERNAL_H
#define RELAY_INTERNAL_H

#include "relay/relay.h"
#include "pkg/codes/codes.h"
#include "pkg/hub/hub.h"
#include "pkg/jwt/jwt.h"
#include "pkg/store/store.h"

#include <libwebsockets.h>

#define RATE_SLOTS 4096

/* Per-connection state (lws's per-session data). Zeroed by lws at HTTP start and at upgrade. */
struct conn {
	/* HTTP phase */
	char *body; /* response body waiting for HTTP_WRITEABLE */
	size_t body_len;
	bool responded;
	int64_t content_length;

	/* websocket phase */
	struct conn *next, *prev; /* in server.conns */
	struct lws *wsi;
	struct hub_member *member;
	struct grant grant;
	uint64_t id;
	char tag[24];
	char remote[64];
	char user_agent[128];
	int64_t connected_at; /* seconds since the epoch */
	uint8_t *rx;          /* message being reassembled */
	size_t rx_len, rx_cap;
	bool rx_binary, rx_dropping;
	bool closing;
	int close_code;
	const char *close_reason;
	int64_t close_deadline_ms; /* killed after this if the close frame could not be sent */
	uint64_t writes;           /* lws_write calls, to see how many frames go per write */
};

/* A slot of the per-address access rate limiter (token bucket). */
struct rate_slot {
	char addr[48];
	double tokens;
	int64_t last_ms;
};

/* Grant handed from HTTP_CONFIRM_UPGRADE to ESTABLISHED of the same connection. */
struct handoff {
	struct lws *wsi;
	char code[CODE_LEN + 1];
	struct grant grant;
};

struct server {
	const struct relay_opts *o;
	struct lws_context *ctx;
	struct lws_vhost *vhost;
	struct hub *hub;
	struct codes *codes;
	struct store *store;
	struct rjwt_verifier verifier;
	struct rjwt_key keys[RJWT_MAX_KEYS];
	char public_url[512]; /* websocket base for returned uris, no trailing '/' */
	struct conn *conns;   /* live websocket connections */
	size_t nconns;
	uint64_t next_id;
	struct handoff handoff;
	struct rate_slot rate[RATE_SLOTS];
	lws_sorted_usec_list_t tick;
	lws_sorted_usec_list_t stop_timer;
	bool stopping;
	int exit_code;
};

extern struct server relay_srv;

int64_t relay_now_ms(void);
int64_t relay_mono_ns(void);

/* http.c */
int relay_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);
int relay_confirm_upgrade(struct lws *wsi, struct conn *c);

/* ws.c */
int relay_ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len);
/* Ask for @c to be closed with @code and @reason (a static string) at its next writable. */
void relay_conn_close(struct conn *c, int code, const char *reason);
/* Close every connection whose booking id is @bid; returns how many. */
size_t relay_close_booking(const char *bid);
/* Close connections whose token has expired; kill those stuck closing. Call every second. */
void relay_close_expired(int64_t now_ms);
void relay_close_all(int code, const char *reason);
void relay_hub_wake(void *owner);
void relay_hub_overflow(void *owner);

#endif
