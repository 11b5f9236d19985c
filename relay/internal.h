/*
 * relay internals shared by serve.c (context, timers, shutdown), http.c (routing, responses),
 * access.c (tokens, codes, rate limit), admin.c (deny list, operations), static.c (pages),
 * status.c (reports) and ws.c (websocket topics). Everything here runs on the one lws service
 * thread.
 */
#ifndef RELAY_INTERNAL_H
#define RELAY_INTERNAL_H

#include "relay/relay.h"
#include "pkg/buf/buf.h"
#include "pkg/codes/codes.h"
#include "pkg/hub/hub.h"
#include "pkg/jwt/jwt.h"
#include "pkg/store/store.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <sys/socket.h>

#define RATE_SLOTS  4096 /* per-address token buckets (access.c) */
#define RATE_PROBE  8    /* slots an address may take, from its hash on */
#define RATE_ADDR   48
#define STATS_TOPIC "stats" /* reserved: the relay publishes status reports here */

#define RATE_WINDOW 5 /* seconds over which status reports give rates */

/* Counters sampled once a second, so rates cover the last RATE_WINDOW seconds. */
struct rate_window {
	uint64_t tx_msgs[RATE_WINDOW + 1], tx_bytes[RATE_WINDOW + 1];
	uint64_t rx_msgs[RATE_WINDOW + 1], rx_bytes[RATE_WINDOW + 1];
	unsigned next, filled;
};

/* Access and redemption outcomes, for /metrics. */
enum redeem_result {
	REDEEM_OK,
	REDEEM_UNKNOWN,
	REDEEM_OTHER_TOPIC,
	REDEEM_DENIED,
	REDEEM_FULL,
	REDEEM_N
};

struct metrics {
	uint64_t access[600];       /* by HTTP status of access calls (POST /session/...) */
	uint64_t redeem[REDEEM_N];  /* websocket upgrades by outcome */
	uint64_t bookings_denied;   /* POST /bids/deny calls that succeeded */
	uint64_t connections_total; /* websockets established */
	uint64_t budget_closed[2];  /* closed by the memory budget: [0] receiving, [1] queued */
	int64_t started_s;
};

struct conn;
struct server;

/*
 * Websocket endpoints beside /session: each kind is a path segment that is also the token's
 * prefix ("/connect/{topic}" for a token with prefix "connect"), with handlers of its own.
 * ws.c does what every websocket shares (redeeming the code, keep-alive, the close handshake
 * and its deadline, token expiry, deny) and hands the rest to the kind. A connection with
 * kind NULL is a /session topic member.
 */
struct relay_kind {
	const char *name; /* path segment and token prefix */
	/* Optional, at redemption: may @g's websocket open now? 0, or an HTTP status and *why. */
	int (*admit)(const struct grant *g, const char **why);
	/* Redeemed and listed: set up @c, or close it (relay_conn_close) and return 0. */
	int (*established)(struct server *s, struct conn *c);
	/* A piece of a message as lws delivers it (RFC 6455 fragments may be cut further). */
	void (*receive)(struct conn *c, const uint8_t *in, size_t len, bool first, bool final,
	                bool binary);
	/* LWS_CALLBACK_SERVER_WRITEABLE when no close frame or ping was due: 0, or -1 to hang up. */
	int (*writeable)(struct lws *wsi, struct conn *c);
	/* Closing (our close frame went) or closed: give back what @c holds. May be called twice. */
	void (*closed)(struct conn *c);
};

/* Refusals whose JSON "code" names the case rather than the status (http.c's error bodies). */
#define RELAY_WHY_PEER_CONNECTED "this peer id is connected in this realm already"
#define RELAY_WHY_MEETING_FULL   "this meeting has as many participants as it takes"
#define RELAY_WHY_NO_CODE        "too many pending access codes, try again"

extern const struct relay_kind relay_kind_channel; /* channel.c: /connect/{host} */
extern const struct relay_kind relay_kind_signal;  /* signal.c:  /signal/{realm} */
extern const struct relay_kind relay_kind_meet;    /* meet.c:    /meet/{id} */

/* The kind named @name (n bytes), or NULL (also for "session", which ws.c serves itself). */
const struct relay_kind *relay_kind_of(const char *name, size_t n);

/* Close code 1013 (IANA's registry for RFC 6455: "Try Again Later"), which lws 4.1 does not name. */
#define RELAY_CLOSE_TRY_AGAIN 1013

/* Request methods the routes tell apart. */
enum relay_method { M_OTHER, M_GET, M_POST, M_OPTIONS, M_PATCH, M_DELETE, M_PUT };

/* Per-connection state (lws's per-session data). Zeroed by lws at HTTP start and at upgrade. */
struct conn {
	/* HTTP phase */
	char *body; /* response body waiting for HTTP_WRITEABLE */
	size_t body_len;
	bool responded;
	bool is_access; /* POST /session/...: its status is counted in /metrics */
	bool is_file;   /* a static page is being sent (file_fd, file_left) */
	int file_fd;
	size_t file_left;
	int64_t content_length;
	struct buf req; /* the request body, for routes that read one (discovery) */

	/* websocket phase */
	const struct relay_kind *kind; /* NULL: a /session topic member */
	void *kind_data;               /* the kind's own state, owned by it */
	struct conn *next, *prev;      /* in server.conns */
	struct lws *wsi;
	struct hub_member *member;
	struct grant grant;
	uint64_t id;
	char tag[24];
	char remote[64];
	char user_agent[128];
	int64_t connected_at; /* seconds since the epoch */
	struct buf rx;        /* message being reassembled: at most max_message */
	bool rx_binary, rx_dropping;
	int64_t rx_started_ms; /* monotonic: first fragment of a message being reassembled; 0: none */
	bool closing;
	bool close_sent; /* our close frame went: waiting for the peer's (close_deadline_ms) */
	int close_code;
	const char *close_reason;
	int64_t close_deadline_ms; /* monotonic: killed after this if no close frame went */
	uint64_t writes;           /* lws_write calls, to see how many frames go per write */
	int64_t last_rx_ms;        /* monotonic: last frame from the peer (data or pong) */
	int64_t ping_sent_ms;      /* a ping awaits its pong since then; 0: none */
	bool ping_due;
	bool peer_closed; /* its close frame arrived: lws answers it from WRITEABLE */
	bool rx_paused;   /* not read from: every reader of its topic is backed up */
	bool ready;       /* in server.ready */
	struct conn *ready_next;
	struct rate_window rates; /* for status reports */
	/* The code in the peer's close frame (0: none), for kinds that pass it on. */
	int peer_close_code;
};

/* A slot of the per-address access rate limiter (token bucket). */
struct rate_slot {
	char addr[RATE_ADDR]; /* "" when free */
	double tokens;
	int64_t last_ms; /* monotonic */
};

/* Grant handed from HTTP_CONFIRM_UPGRADE to ESTABLISHED of the same connection. */
struct handoff {
	struct lws *wsi;
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
	struct conn *ready;   /* readers with messages to write at the end of this loop pass */
	size_t nconns;
	/* Memory a peer can make us hold (--max-memory): see "the memory budget" in ws.c. */
	size_t mem_budget; /* bytes */
	size_t rx_held;    /* reassembly buffers (rx.cap) of every connection, exact */
	size_t queue_held; /* queued for readers, per hub_held_bytes() at its last call */
	uint64_t next_id;
	struct handoff handoff;
	struct rate_slot rate[RATE_SLOTS];
	lws_sorted_usec_list_t tick;
	lws_sorted_usec_list_t stop_timer;
	struct lws_vhost *metrics_vhost; /* --metrics-listen, or NULL */
	struct metrics m;
	lws_sorted_usec_list_t stats_timer;
	bool stopping;
	int exit_code;
};

extern struct server relay_srv;

/* The wall clock: token times (exp, nbf, iat) and booking expiry only. */
int64_t relay_now_ms(void);
/* The monotonic clock: every interval (code TTLs, rate limits, deadlines). */
int64_t relay_mono_ns(void);

static inline int64_t relay_mono_ms(void)
{
	return relay_mono_ns() / 1000000;
}

/* http.c: routing and responses */
enum relay_method relay_method_of(struct lws *wsi);
int relay_http_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);
int relay_confirm_upgrade(struct lws *wsi, struct conn *c, const char *protocol);
/* Answer with @status and @body (taken over, may be NULL for no body), written at WRITEABLE. */
int relay_respond_type(struct lws *wsi, struct conn *c, int status, const char *type, char *body);
/* 201 with a Location header (@location copied) and a JSON @body (taken over). */
int relay_respond_created(struct lws *wsi, struct conn *c, const char *location, char *body);
/* The same with type application/json. */
int relay_respond(struct lws *wsi, struct conn *c, int status, char *body);
/* The same with the error body {"code": ..., "message": @message}. */
int relay_respond_error(struct lws *wsi, struct conn *c, int status, const char *message);
/* Add "Connection: close" to an HTTP/1 answer's headers (every one: see http.c). 0 or -1. */
int relay_add_connection_close(struct lws *wsi, unsigned char **p, unsigned char *end);
/* Header space given to lws: the most it takes (its size field is 16 bits). */
#define LWS_HEADER_SPACE 65535
/* true when the request's headers exceed --max-header (answer 431). */
bool relay_headers_too_large(struct lws *wsi);

/* access.c */
/* The client's address, from X-Forwarded-For when trust_forwarded_for is set. */
void relay_client_addr(struct lws *wsi, char *out, size_t len);
/*
 * The address a trusted proxy appended to the X-Forwarded-For value @xff (its last entry) into
 * @out; false when that entry is empty, too long or not an IP literal.
 */
bool relay_forwarded_addr(const char *xff, char *out, size_t len);
/* true when the client's address may make one more access call now (its token bucket). */
bool relay_rate_check(struct server *s, struct lws *wsi);
/*
 * The token bucket of @addr in @tab (@n slots) at @now_ms (monotonic): true when a call may
 * proceed, taking one token; @rate tokens a second refill it up to @burst; @rate 0 is no limit.
 */
bool relay_rate_allows(struct rate_slot *tab, size_t n, const char *addr, int64_t now_ms,
                       int64_t rate, int64_t burst);
/*
 * Verify the request's token into @claims (release them with rjwt_claims_release()). NULL when
 * it is valid, else the reason (static) for a 401; nothing to release then.
 */
const char *relay_verify(struct server *s, struct lws *wsi, struct rjwt_claims *claims);
bool relay_has_stats_scope(const struct rjwt_claims *cl);
/* Topics are URL-safe: RFC 3986 unreserved characters, 1..GRANT_TOPIC-1 bytes. */
bool relay_valid_topic(const char *t);
/*
 * Fill @g from checked claims for @topic at the endpoint whose token prefix is @prefix; NULL
 * when allowed, else the reason (static) for a 403.
 */
const char *relay_grant_from(struct server *s, const struct rjwt_claims *cl, const char *topic,
                             const char *prefix, struct grant *g);
/*
 * The booking checks of every grant: a booking_id (unless allowed without), not too long, not
 * denied. NULL, or the reason (static) for a 403.
 */
const char *relay_booking_refusal(struct server *s, const struct rjwt_claims *cl);
/*
 * {"uri": "<public url>/<kind>/<topic>?code=<code>"} (new string, NULL on OOM), wiping the
 * copies made of @code and @code itself.
 */
char *relay_uri_body(struct server *s, const char *kind, const char *topic,
                     char code[CODE_LEN + 1]);
/*
 * The steps every access call (POST /session/ /connect/ /signal/ /meet/) shares. First: true
 * when @m is not POST, answered (426 for GET: a websocket client that skipped the access call;
 * 405 otherwise) with the result in *@ret.
 */
bool relay_access_not_post(struct lws *wsi, struct conn *c, enum relay_method m, int *ret);
/*
 * Then: verify the token (401) and grant @g for @topic at @prefix (relay_grant_from; 403, logged
 * with the topic when @show_topic). true when granted, the claims in @cl to release; false when
 * answered, the result in *@ret and nothing to release.
 */
bool relay_access_grant(struct server *s, struct lws *wsi, struct conn *c, const char *topic,
                        const char *prefix, bool show_topic, struct rjwt_claims *cl,
                        struct grant *g, int *ret);
/* Where a kind's codes are issued: where relay_redeem looks for them. */
enum relay_issue {
	ISSUE_LOCAL,   /* this instance's table only (/signal, /meet, a /connect to a local host) */
	ISSUE_CLUSTER, /* Redis, this instance's table while Redis is unreachable (/session) */
	ISSUE_REDIS,   /* Redis only (a /connect client sent to the instance of its host) */
};
/* Issue a code for @g (its prefix is the kind) into @code; 0, or -errno logged. */
int relay_issue_code(struct server *s, const struct grant *g, enum relay_issue via,
                     char code[CODE_LEN + 1]);
/*
 * Answer with the issued @code: note @g's booking as seen, 200 {"uri": "<@base, or the public
 * URL when NULL>/<prefix>/<topic>?code=<code>"}. Wipes @code and @g.
 */
int relay_answer_issued(struct server *s, struct lws *wsi, struct conn *c, struct grant *g,
                        const char *base, char code[CODE_LEN + 1]);
/* relay_issue_code, then relay_answer_issued; 503 RELAY_WHY_NO_CODE when no code is issued. */
int relay_answer_code(struct server *s, struct lws *wsi, struct conn *c, struct grant *g,
                      enum relay_issue via, const char *base);
/* POST /session/{topic}: answer with a code's uri, or the refusal. */
int relay_access_session(struct server *s, struct lws *wsi, struct conn *c, const char *topic);
/*
 * Redeem the access code of a websocket request into @g. Returns 0, or the HTTP status of the
 * refusal with a static reason in *why. Counted in /metrics.
 */
int relay_redeem(struct lws *wsi, struct grant *g, const char **why);

/*
 * Endpoints of the issues being built, each in its own file; each answers the request
 * (relay_respond...) and returns its result. @rest is the path after the prefix.
 */
/* channel.c: POST /connect/{host} */
int relay_channel_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                         const char *rest);
/* channel.c: the channel fields of a /connect websocket's status entry (new), or NULL. */
json_t *relay_channel_json(const struct conn *c);
/* channel.c: bytes queued in every channel (their part of --max-memory). */
size_t relay_channel_held(void);
/* channel.c: the channel metrics, in Prometheus text. */
void relay_channel_metrics(FILE *f);
/* signal.c: POST /signal/{realm} */
int relay_signal_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                        const char *rest);
/* signal.c: a discovery group of @app expired: tell its peers in the realm named @app. */
void relay_signal_group_expired(struct server *s, const char *app, const char *id);
/* signal.c, meet.c: the fields of a /signal or /meet websocket's status entry (new), or NULL. */
json_t *relay_signal_json(const struct conn *c);
json_t *relay_meet_json(const struct conn *c);
/* meet.c: POST /meet/{id} */
int relay_meet_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                      const char *rest);
/*
 * meet.c: a STUN Binding request with USERNAME @tag (@len bytes) came from @from (the TURN
 * server's UDP listener queues it, turn_thread.c calls this on the main loop): a meeting
 * participant's UDP address is known.
 */
void relay_meet_udp_seen(struct server *s, const char *tag, size_t len,
                         const struct sockaddr *from);
/* discovery.c: /group, /groups, /groups/{id} (@path whole; the body in c->req) */
int relay_discovery(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m,
                    const char *path);
#define DISCOVERY_MAX_BODY (64 * 1024) /* bytes of a request body; more is a 413 */
/* discovery.c: at the request's head, before a body is read: NULL, or why not with *@status. */
const char *relay_discovery_refusal(struct server *s, struct lws *wsi, enum relay_method m,
                                    const char *path, int *status);
/* discovery.c: drop groups expired before @now_ms (wall clock) and tell signaling. */
void relay_discovery_expire(struct server *s, int64_t now_ms);
/* ice.c: POST /ice */
int relay_ice_access(struct server *s, struct lws *wsi, struct conn *c, enum relay_method m);
/*
 * ice.c: the WebRTC iceServers for a connection with grant @g (a new JSON array; [] when TURN
 * is off), for the welcome messages of signaling and meetings.
 */
json_t *relay_ice_servers(struct server *s, const struct grant *g);

/* admin.c: each answers the request (relay_respond...) and returns its result */
/* /bids/deny and /bids/allow: @list for GET, else a change; @deny picks the list. */
int relay_bids(struct server *s, struct lws *wsi, struct conn *c, bool list, bool deny);
int relay_get_status(struct server *s, struct lws *wsi, struct conn *c);
int relay_get_metrics(struct lws *wsi, struct conn *c);
int relay_get_healthz(struct server *s, struct lws *wsi, struct conn *c);

/* pending.c: connections whose first request head has not arrived whole (loop thread only) */
/* Allocate the tables for --max-pending; 0 or -ENOMEM. */
int relay_pending_init(const struct relay_opts *o);
void relay_pending_release(void);
/* FILTER_NETWORK_CONNECTION: 1 refuses @fd (over the per-address cap; a 429 is written first
 * when @plain), 0 admits it. */
int relay_pending_filter(int fd, bool plain);
/* A wsi was made (WSI_CREATE: an accepted connection or an HTTP/2 stream): track it until its
 * head arrives, closing the oldest pending one if --max-pending are already held. */
void relay_pending_add(struct lws *wsi);
/* SERVER_NEW_CLIENT_INSTANTIATED: count it against its client address. */
void relay_pending_accepted(struct lws *wsi);
/* @wsi's request head arrived (@head; its connection's then too) or it is destroyed. */
void relay_pending_done(struct lws *wsi, bool head);
/* Close the connections whose head is late (http_timeout after their start). Once a second. */
void relay_pending_expire(void);
size_t relay_pending_count(void);

/* static.c: pages under web_dir */
bool relay_is_static(const char *path);
/* Start sending @path; 0 (answer under way), -ENOENT (no such page), -1 (connection error). */
int relay_static_start(struct lws *wsi, struct conn *c, const char *path);
int relay_static_write(struct lws *wsi, struct conn *c);
void relay_static_close(struct conn *c);

/* status.c */
/* The status report: one JSON object per live connection (new reference). */
json_t *relay_status_json(void);
/* Prometheus text exposition of the relay's counters (new string, free()). */
char *relay_metrics_text(void);
/* Sample every connection's counters (call once a second). */
void relay_sample_rates(void);
/* Publish the status report to the reserved topic "stats", if anyone reads it. */
void relay_publish_stats(void);

/* ws.c */
/* Resolve the memory budget (--max-memory, 0: from physical memory) and log it. */
void relay_ws_init(void);
int relay_ws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len);
/* @c's grant is known (redeemed): hand it to its kind, or join its topic. 0, or -1 to hang up. */
int relay_ws_admit(struct conn *c);
/* Ask for @c to be closed with @code and @reason (a static string) at its next writable. */
void relay_conn_close(struct conn *c, int code, const char *reason);
/* Close every connection whose booking id is @bid; returns how many. */
size_t relay_close_booking(const char *bid);
/*
 * Once a second: close connections whose token has expired, kill those stuck closing, ping
 * idle ones and drop those that do not answer.
 */
void relay_close_expired(int64_t now_ms);
void relay_close_all(int code, const char *reason);
void relay_hub_wake(void *owner);
void relay_hub_overflow(void *owner);
/* Leave the topic: at CLOSED, or once our close frame went (nothing more is sent). */
void relay_ws_leave_topic(struct conn *c);

/* wswrite.c: writing to readers */
/* Choose the write path: "fast", "lws", or NULL/"" for the default; -EINVAL with @why. */
int relay_write_path_set(const char *name, char why[256]);
/* The write path in use: "fast" or "lws". */
const char *relay_write_path(void);
/* hub callback: stop or resume reading from a writer (back-pressure). */
void relay_hub_flow(void *owner, bool paused);
/* LWS_CALLBACK_SERVER_WRITEABLE of a websocket: close frame, ping or queued messages. */
int relay_ws_writeable(struct lws *wsi, struct conn *c);
/* Write to the readers that got messages during this loop pass (call at the end of each). */
void relay_ws_flush(void);

#endif
