/*
 * relay/serve: sets up the one lws context (a single vhost on the configured address, TLS unless
 * --insecure-http), the hub, the code store, the deny-list store and the verifier; runs the loop;
 * shuts down on SIGTERM/SIGINT: refuse new work, close websockets with 1001, exit within 5 s.
 */
#define LOG_MODULE "serve"
#include "relay/internal.h"
#include "relay/cluster.h"
#include "relay/turn.h"
#include "pkg/clock/clock.h"
#include "pkg/log/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include <openssl/ssl.h>

#define TICK_US       (1000 * LWS_US_PER_MS)
#define STOP_POLL_US  (50 * LWS_US_PER_MS)
#define STOP_LIMIT_MS 4000
#define TIDY_EVERY_S  60
/* Give freed memory back once a burst of closes has settled: see trim_after_churn(). */
#define TRIM_MIN_CLOSES  100
#define TRIM_QUIET_MS    1000
#define TRIM_LONG_CLOSES 5000
#define TRIM_LONG_MS     5000

struct server relay_srv;

static volatile sig_atomic_t stop_requested;
static int64_t stop_started_ms;
static int64_t last_tidy_s;
static bool loop_done;
static uv_loop_t uv_loop; /* ours, lent to lws, when event_loop is libuv */
static bool use_uv;
static uv_prepare_t uv_flush_before; /* relay_ws_flush() before and after libuv's poll */
static uv_check_t uv_flush_after;
static bool flush_hooks_on;
static uint64_t closed_since_trim;          /* wsis destroyed since the last malloc_trim() */
static int64_t last_close_ms, last_trim_ms; /* monotonic */

int64_t relay_now_ms(void)
{
	return clock_real_ms();
}

int64_t relay_mono_ns(void)
{
	return clock_mono_ns();
}

/* ---- the one protocol: HTTP and websocket callbacks ---- */

static void begin_stop(void);

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
	switch (reason) {
	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		return relay_pending_filter((int)(intptr_t)in,
		                            relay_srv.o->insecure_http ||
		                                    lws_get_vhost(wsi) == relay_srv.metrics_vhost);
	case LWS_CALLBACK_WSI_CREATE:
		relay_pending_add(wsi);
		return relay_http_cb(wsi, reason, user, in, len);
	case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
		relay_pending_accepted(wsi);
		return relay_http_cb(wsi, reason, user, in, len);
	case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
	case LWS_CALLBACK_HTTP:
		relay_pending_done(wsi, true);
		return relay_http_cb(wsi, reason, user, in, len);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		relay_pending_done(wsi, true);
		/* CVE-2025-11677 (lws's NN-2025-0102, still in 4.1.6): for an Upgrade other than
		 * websocket/h2c on a keep-alive connection, lws answers 403, ends the transaction
		 * (freeing the header table that @in points into), then calls us anyway. Then the
		 * table is gone or reset: hang up without reading @in (lws closes at once). */
		if (lws_hdr_total_length(wsi, WSI_TOKEN_UPGRADE) <= 0) {
			log_info("upgrade after lws refused it (403): connection closed");
			return -1;
		}
		return relay_confirm_upgrade(wsi, user, in);
	case LWS_CALLBACK_ESTABLISHED:
		relay_pending_done(wsi, true); /* a websocket inside HTTP/2 skips CONFIRM_UPGRADE */
		return relay_ws_cb(wsi, reason, user, in, len);
	case LWS_CALLBACK_RECEIVE:
	case LWS_CALLBACK_RECEIVE_PONG:
	case LWS_CALLBACK_SERVER_WRITEABLE:
	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
	case LWS_CALLBACK_CLOSED:
		return relay_ws_cb(wsi, reason, user, in, len);
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* Idle TLS connections give their 34 KB of OpenSSL buffers back (16 KB read and
		 * write records each): memory per idle wss connection falls several-fold. */
		SSL_CTX_set_mode((SSL_CTX *)user, SSL_MODE_RELEASE_BUFFERS);
		return 0;
	case LWS_CALLBACK_WSI_DESTROY:
		relay_pending_done(wsi, false);
		closed_since_trim++;
		last_close_ms = relay_mono_ns() / 1000000;
		/* An upgrade that failed after CONFIRM: its grant must not outlive it. */
		if (relay_srv.handoff.wsi == wsi)
			OPENSSL_cleanse(&relay_srv.handoff, sizeof(relay_srv.handoff));
		return relay_http_cb(wsi, reason, user, in, len);
	case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
		if (stop_requested && !relay_srv.stopping)
			begin_stop();
		return 0;
	default:
		return relay_http_cb(wsi, reason, user, in, len);
	}
}

static struct lws_protocols protocols[] = {
        {"relay", callback, sizeof(struct conn), 65536, 0, NULL, 65536},
        {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- the end of a loop pass ---- */

/*
 * Readers that got messages are written to once per loop pass (relay_ws_flush()): after the
 * I/O callbacks (libuv's check phase), and after timers and idle work, before the loop sleeps
 * (its prepare phase). With lws's poll() loop, after each lws_service().
 */
static void flush_before_poll(uv_prepare_t *h)
{
	(void)h;
	relay_ws_flush();
}

static void flush_after_poll(uv_check_t *h)
{
	(void)h;
	relay_ws_flush();
}

/* libuv's init and start calls for prepare and check handles cannot fail. */
static void start_flush_hooks(void)
{
	uv_prepare_init(&uv_loop, &uv_flush_before);
	uv_check_init(&uv_loop, &uv_flush_after);
	uv_prepare_start(&uv_flush_before, flush_before_poll);
	uv_check_start(&uv_flush_after, flush_after_poll);
	flush_hooks_on = true;
}

static void stop_flush_hooks(void)
{
	if (!flush_hooks_on)
		return;
	uv_close((uv_handle_t *)&uv_flush_before, NULL);
	uv_close((uv_handle_t *)&uv_flush_after, NULL);
	flush_hooks_on = false;
}

/* ---- timers ---- */

/*
 * glibc keeps the memory of closed connections (lws's wsi and header tables, OpenSSL's state,
 * our per-connection data) in its heap, and only the top of the heap goes back by itself: after
 * 10,000 websockets opened and closed RSS stayed about 70 MB up and grew with each further
 * storm (bench/soak.sh; malloc_trim(0) took it back to the start). So once closes have settled
 * (a second without one) or during a long storm (every 5 s), hand free pages back.
 */
static void trim_after_churn(void)
{
	int64_t now = relay_mono_ns() / 1000000, t0;

	if (closed_since_trim < TRIM_MIN_CLOSES)
		return;
	if (now - last_close_ms < TRIM_QUIET_MS &&
	    (closed_since_trim < TRIM_LONG_CLOSES || now - last_trim_ms < TRIM_LONG_MS))
		return;
	t0 = relay_mono_ns();
	malloc_trim(0);
	log_debug("gave freed memory back after %llu closed connection(s) in %lld us",
	          (unsigned long long)closed_since_trim, (long long)(relay_mono_ns() - t0) / 1000);
	closed_since_trim = 0;
	last_trim_ms = now;
}

static void tick(lws_sorted_usec_list_t *sul)
{
	struct server *s = &relay_srv;
	int64_t now_s = relay_now_ms() / 1000;

	if (!s->ctx) /* lws's timer fired as destroy_context() ran the loop: nothing to reschedule on */
		return;
	codes_expire(s->codes, relay_mono_ms());
	relay_pending_expire();
	trim_after_churn();
	relay_close_expired(relay_now_ms());
	relay_sample_rates();
	relay_discovery_expire(s, relay_now_ms());
	relay_cluster_tick();
	if (now_s - last_tidy_s >= TIDY_EVERY_S) {
		int n;

		last_tidy_s = now_s;
		n = store_tidy(s->store, now_s);
		if (n < 0)
			log_err("cannot tidy the deny list: state write failed");
		else if (n > 0)
			log_debug("deny list: %d ended entries removed", n);
	}
	lws_sul_schedule(s->ctx, 0, sul, tick, TICK_US);
}

static void stats_tick(lws_sorted_usec_list_t *sul)
{
	if (!relay_srv.ctx) /* as in tick() */
		return;
	relay_publish_stats();
	lws_sul_schedule(relay_srv.ctx, 0, sul, stats_tick,
	                 relay_srv.o->stats_every * LWS_US_PER_MS);
}

static void stop_poll(lws_sorted_usec_list_t *sul)
{
	struct server *s = &relay_srv;

	if (s->nconns == 0 || relay_mono_ms() - stop_started_ms > STOP_LIMIT_MS) {
		loop_done = true;
		if (use_uv)
			uv_stop(&uv_loop);
		else
			lws_cancel_service(s->ctx);
		return;
	}
	lws_sul_schedule(s->ctx, 0, sul, stop_poll, STOP_POLL_US);
}

static void begin_stop(void)
{
	struct server *s = &relay_srv;

	log_notice("shutting down: closing %zu connection(s)", s->nconns);
	s->stopping = true;
	stop_started_ms = relay_mono_ms();
	relay_close_all(LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
	lws_sul_schedule(s->ctx, 0, &s->stop_timer, stop_poll, STOP_POLL_US);
}

/* ---- signals ---- */

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	if (relay_srv.ctx)
		lws_cancel_service(relay_srv.ctx);
}

static void on_hup(int sig)
{
	(void)sig;
	log_request_reopen();
}

static void install_signals(void)
{
	struct sigaction sa = {0};

	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* ---- lws's own log lines go to ours ---- */

static void lws_emit(int level, const char *line)
{
	size_t n = strlen(line);

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (strncmp(line, "Ran out of header data space", 28) == 0) /* the client's doing */
		log_info("a request head over %d bytes: connection closed (lws cannot answer it)",
		         LWS_HEADER_SPACE);
	else if (level & LLL_ERR)
		log__emit(LOG_LEVEL_ERR, "lws", NULL, "%.*s", (int)n, line);
	else if (log__level >= LOG_LEVEL_DEBUG)
		log__emit(LOG_LEVEL_DEBUG, "lws", NULL, "%.*s", (int)n, line);
}

/* ---- start-up checks ---- */

struct listen_addr {
	char host[128]; /* "" for every interface */
	int port;
	bool ipv6;
};

static int parse_listen(const char *s, struct listen_addr *a)
{
	const char *colon;
	char *end;
	long port;

	memset(a, 0, sizeof(*a));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(a->host))
			return -EINVAL;
		memcpy(a->host, s + 1, (size_t)(close - s - 1));
		a->ipv6 = true;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || (size_t)(colon - s) >= sizeof(a->host))
			return -EINVAL;
		memcpy(a->host, s, (size_t)(colon - s));
	}
	port = strtol(colon + 1, &end, 10); /* 0: any free port, logged once bound */
	if (*end || colon[1] == '\0' || port < 0 || port > 65535)
		return -EINVAL;
	a->port = (int)port;
	return 0;
}

/* Bind once ourselves so a taken port or a bad address gives a clear message. */
static int probe_bind(const struct listen_addr *a, char why[256])
{
	struct sockaddr_storage ss = {0};
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	int fd, one = 1, ret = 0;
	socklen_t len;

	if (a->ipv6) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)a->port);
		len = sizeof(*in6);
		if (inet_pton(AF_INET6, a->host, &in6->sin6_addr) != 1)
			ret = -EINVAL;
	} else {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)a->port);
		len = sizeof(*in4);
		if (a->host[0] && inet_pton(AF_INET, a->host, &in4->sin_addr) != 1)
			ret = -EINVAL;
	}
	if (ret) {
		snprintf(why, 256, "listen address '%s' is not an IP literal", a->host);
		return ret;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&ss, len)) {
		ret = -errno;
		snprintf(why, 256, "cannot listen on '%s:%d': %s", a->host, a->port,
		         strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static int load_keys(struct server *s, char why[256])
{
	const struct relay_opts *o = s->o;
	int alg = rjwt_alg_parse(o->algorithm);
	char kwhy[160];

	if (alg < 0) {
		snprintf(why, 256, "unknown algorithm '%.20s'", o->algorithm);
		return -EINVAL;
	}
	if (rjwt_key_load(alg, o->secret, o->secret_file, o->jwt_key, &s->keys[0], kwhy)) {
		snprintf(why, 256, "%s", kwhy);
		return -EINVAL;
	}
	if (rjwt_alg_is_hmac(alg) &&
	    ((o->secret_previous && *o->secret_previous) ||
	     (o->secret_previous_file && *o->secret_previous_file)) &&
	    rjwt_key_load(alg, o->secret_previous, o->secret_previous_file, NULL, &s->keys[1],
	                  kwhy)) {
		snprintf(why, 256, "previous secret: %s", kwhy);
		return -EINVAL;
	}
	s->verifier.alg = (enum rjwt_alg)alg;
	for (int k = 0; k < RJWT_MAX_KEYS; k++) {
		s->verifier.key[k] = s->keys[k].data;
		s->verifier.key_len[k] = s->keys[k].len;
	}
	s->verifier.audience = o->audience;
	s->verifier.skew = o->skew / 1000;
	return 0;
}

static void derive_public_url(struct server *s, const struct listen_addr *a)
{
	const struct relay_opts *o = s->o;
	size_t n;

	if (o->url && *o->url) {
		snprintf(s->public_url, sizeof(s->public_url), "%s", o->url);
	} else {
		snprintf(s->public_url, sizeof(s->public_url), "%s://%s%s%s:%d",
		         o->insecure_http ? "ws" : "wss", a->ipv6 ? "[" : "",
		         a->host[0] ? a->host : "localhost", a->ipv6 ? "]" : "", a->port);
	}
	n = strlen(s->public_url);
	while (n && s->public_url[n - 1] == '/')
		s->public_url[--n] = '\0';
}

static int check_settings(const struct relay_opts *o, char why[256])
{
	if (!o->audience || !*o->audience)
		snprintf(why, 256,
		         "no audience: set --audience (the public access base URL tokens name)");
	else if (!o->insecure_http && (!o->cert || !*o->cert || !o->key || !*o->key))
		snprintf(
		        why, 256,
		        "no TLS certificate: give --cert and --key, or --insecure-http behind a TLS proxy");
	else if (!o->insecure_http && access(o->cert, R_OK))
		snprintf(why, 256, "cannot read certificate '%.200s': %s", o->cert,
		         strerror(errno));
	else if (!o->insecure_http && access(o->key, R_OK))
		snprintf(why, 256, "cannot read TLS key '%.200s': %s", o->key, strerror(errno));
	else if (strcmp(o->event_loop, "libuv") != 0 && strcmp(o->event_loop, "poll") != 0)
		snprintf(why, 256, "event_loop must be libuv or poll, not '%.40s'", o->event_loop);
	else if (strcmp(o->queue_policy, "drop") != 0 && strcmp(o->queue_policy, "close") != 0)
		snprintf(why, 256, "queue_policy must be drop or close, not '%.40s'",
		         o->queue_policy);
	else if (relay_write_path_set(o->write_path, why))
		return -EINVAL;
	else if (((o->turn_listen && *o->turn_listen) || (o->turns_listen && *o->turns_listen)) &&
	         strcmp(o->event_loop, "libuv") != 0)
		snprintf(why, 256, "turn_listen and turns_listen need event_loop libuv");
	else if (o->max_message > o->queue_bytes)
		snprintf(why, 256, "max_message (%lld) must not exceed queue_bytes (%lld)",
		         (long long)o->max_message, (long long)o->queue_bytes);
	else if (o->max_memory && o->max_memory < o->max_message)
		snprintf(why, 256,
		         "max_memory (%lld) must be 0 (automatic) or at least max_message (%lld)",
		         (long long)o->max_memory, (long long)o->max_message);
	else
		return 0;
	return -EINVAL;
}

/* ---- context ---- */

/* A second, plain-HTTP listener for /metrics and /healthz only (--metrics-listen). */
static int metrics_vhost(struct server *s)
{
	struct lws_context_creation_info info;
	struct listen_addr a;

	if (!s->o->metrics_listen || !*s->o->metrics_listen)
		return 0;
	parse_listen(s->o->metrics_listen, &a); /* checked in relay_run() */
	memset(&info, 0, sizeof(info));
	info.port = a.port;
	info.iface = a.host[0] ? a.host : NULL;
	info.protocols = protocols;
	info.vhost_name = "metrics";
	if (!a.ipv6)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	s->metrics_vhost = lws_create_vhost(s->ctx, &info);
	if (!s->metrics_vhost)
		return -EIO;
	log_notice("metrics listening on http://%s%s%s:%d", a.ipv6 ? "[" : "",
	           a.host[0] ? a.host : "*", a.ipv6 ? "]" : "",
	           lws_get_vhost_listen_port(s->metrics_vhost));
	return 0;
}

/*
 * --listen HOST:0 (tests: no free-port guess): take the port the kernel chose, also into an
 * audience that names port 0 ("https://127.0.0.1:0"), since tokens must name the real one.
 */
static void adopt_bound_port(struct server *s, struct listen_addr *a)
{
	static char audience[512];
	const char *aud = s->o->audience, *host = strstr(aud, "://");
	size_t end;

	if (a->port)
		return;
	a->port = lws_get_vhost_listen_port(s->vhost);
	host = host ? host + 3 : aud;
	end = (size_t)(host - aud) + strcspn(host, "/");
	if (end >= 2 && end < sizeof(audience) - 6 && strncmp(aud + end - 2, ":0", 2) == 0) {
		snprintf(audience, sizeof(audience), "%.*s%d%s", (int)(end - 1), aud, a->port,
		         aud + end);
		s->verifier.audience = audience;
	}
}

static const lws_retry_bo_t no_validity; /* secs_since_valid_ping/hangup 0: off */

static int create_context(struct server *s, const struct listen_addr *a)
{
	const struct relay_opts *o = s->o;
	struct lws_context_creation_info info;
	void *foreign[1] = {&uv_loop};

	memset(&info, 0, sizeof(info));
	info.port = a->port;
	info.iface = a->host[0] ? a->host : NULL;
	info.protocols = protocols;
	/* lws closes a request whose head outgrows this space without a word, so it gets lws
	 * 4.1's most (a header table lives only while a request head is read); --max-header is
	 * checked on the parsed headers and answered 431 (relay_headers_too_large()). */
	info.max_http_header_data = LWS_HEADER_SPACE;
	/* lws 4.1 gives each connection a header table at accept, before its first byte (and
	 * before the TLS handshake), until its head is parsed. A pool smaller than the connection
	 * limit let 64 idle sockets make everyone else wait unread (issue 11): so one per possible
	 * connection, nobody waits. A table is malloc()ed when taken and freed when given back, and
	 * only the bytes a client sends are touched; relay/pending.c bounds how many the not yet
	 * answered hold (--max-pending, --max-pending-per-address). */
	info.max_http_header_pool = 0;
	info.max_http_header_pool2 = (unsigned int)(o->max_connections + 64);
	/* lws reads every socket into this one buffer: 4 KiB by default, which would cut a busy
	 * writer's input into a few messages per read and so a few frames per write to readers. */
	info.pt_serv_buf_size = 256 * 1024;
	info.timeout_secs = (unsigned int)(o->http_timeout / 1000 + 1);
	/* A plain connection's whole head (and a TLS one's handshake) is held to the same deadline
	 * as a TLS head after its handshake: lws's vhost default is 10 s whatever http_timeout says. */
	info.timeout_secs_ah_idle = info.timeout_secs;
	/* Keep-alive is ours (keep_alive() in ws.c): a policy of zeros keeps lws from re-arming a
	 * validity timer on every frame, an O(connections) insert into its sorted timer list. */
	info.retry_and_idle_policy = &no_validity;
	info.fd_limit_per_thread = (unsigned int)(o->max_connections + 64);
	info.vhost_name = "relay";
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	if (use_uv) {
		/* epoll: cost per event, not per connection (poll() rescans every socket) */
		info.options |= LWS_SERVER_OPTION_LIBUV;
		info.foreign_loops = foreign;
	}
	if (!a->ipv6)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	if (!o->insecure_http) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.ssl_cert_filepath = o->cert;
		info.ssl_private_key_filepath = o->key;
	}
	s->ctx = lws_create_context(&info);
	if (!s->ctx)
		return -EIO;
	s->vhost = lws_create_vhost(s->ctx, &info);
	if (!s->vhost)
		return -EIO;
	return metrics_vhost(s);
}

static int open_parts(struct server *s, char why[256])
{
	const struct relay_opts *o = s->o;
	struct hub_limits lim = {
	        .max_topics = (size_t)o->max_topics,
	        .max_per_topic = (size_t)o->max_per_topic,
	        .queue_msgs = (size_t)o->queue_messages,
	        .queue_bytes = (size_t)o->queue_bytes,
	        .policy = strcmp(o->queue_policy, "close") == 0 ? HUB_CLOSE : HUB_DROP,
	};
	struct hub_callbacks cb = {relay_hub_wake, relay_hub_overflow, relay_hub_flow};
	int ret;

	ret = store_open(o->state_dir && *o->state_dir ? o->state_dir : NULL, &s->store, why);
	if (ret)
		return ret;
	if (relay_pending_init(o)) {
		snprintf(why, 256, "out of memory");
		return -ENOMEM;
	}
	s->hub = hub_new(&lim, &cb);
	s->codes = codes_new((size_t)o->max_codes, o->code_ttl);
	if (!s->hub || !s->codes) {
		snprintf(why, 256, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* With our own libuv loop, lws's handles close only while the loop runs. */
static void destroy_context(struct server *s)
{
	if (s->ctx)
		lws_context_destroy(s->ctx);
	s->ctx = NULL;
	if (!use_uv)
		return;
	stop_flush_hooks();
	while (uv_loop_close(&uv_loop) == UV_EBUSY)
		uv_run(&uv_loop, UV_RUN_NOWAIT);
	use_uv = false;
}

static void close_parts(struct server *s)
{
	relay_cluster_stop(); /* before the loop closes: its handles close on it */
	relay_turn_stop();    /* its handles close as destroy_context() runs the loop */
	destroy_context(s);
	relay_pending_release();
	hub_free(s->hub);
	codes_free(s->codes);
	store_close(s->store);
	for (int k = 0; k < RJWT_MAX_KEYS; k++)
		rjwt_key_release(&s->keys[k]);
}

int relay_run(const struct relay_opts *o)
{
	struct server *s = &relay_srv;
	struct listen_addr addr, maddr;
	char why[256];
	int ret;

	memset(s, 0, sizeof(*s));
	s->o = o;
	if (o->metrics_listen && *o->metrics_listen && parse_listen(o->metrics_listen, &maddr)) {
		fprintf(stderr, "relay serve: invalid metrics_listen '%s': expected HOST:PORT\n",
		        o->metrics_listen);
		return 2;
	}
	if (parse_listen(o->listen, &addr)) {
		fprintf(stderr,
		        "relay serve: invalid listen address '%s': expected HOST:PORT or [V6]:PORT\n",
		        o->listen);
		return 2;
	}
	if (check_settings(o, why) || load_keys(s, why) || relay_turn_configure(s, why)) {
		fprintf(stderr, "relay serve: %s\n", why);
		close_parts(s);
		return 2;
	}
	s->m.started_s = relay_now_ms() / 1000;
	ret = probe_bind(&addr, why);
	if (!ret && o->metrics_listen && *o->metrics_listen)
		ret = probe_bind(&maddr, why);
	if (!ret)
		ret = open_parts(s, why);
	if (ret) {
		log_err("%s", why);
		close_parts(s);
		return 1;
	}
	lws_set_log_level(LLL_ERR | LLL_WARN | LLL_NOTICE, lws_emit);
	install_signals();
	use_uv = strcmp(o->event_loop, "libuv") == 0;
	if (use_uv && uv_loop_init(&uv_loop)) {
		log_err("cannot start the libuv event loop");
		close_parts(s);
		return 1;
	}
	if (create_context(s, &addr)) {
		log_err("cannot start listener on %s (see the lws lines above)", o->listen);
		close_parts(s);
		return 1;
	}
	relay_ws_init();
	adopt_bound_port(s, &addr);
	derive_public_url(s, &addr);
	if (use_uv && relay_turn_start(s, &uv_loop, why)) {
		log_err("%s", why);
		close_parts(s);
		return 1;
	}
	log_notice(
	        "relay listening on %s://%s%s%s:%d (audience %s, websocket base %s, write path %s)",
	        o->insecure_http ? "http" : "https", addr.ipv6 ? "[" : "",
	        addr.host[0] ? addr.host : "*", addr.ipv6 ? "]" : "", addr.port,
	        s->verifier.audience, s->public_url, relay_write_path());
	if (relay_cluster_start(s, use_uv ? &uv_loop : NULL, addr.port, why)) {
		log_err("%s", why);
		close_parts(s);
		return 2;
	}
	if (use_uv)
		start_flush_hooks();
	lws_sul_schedule(s->ctx, 0, &s->tick, tick, TICK_US);
	lws_sul_schedule(s->ctx, 0, &s->stats_timer, stats_tick, o->stats_every * LWS_US_PER_MS);
	if (use_uv)
		uv_run(&uv_loop, UV_RUN_DEFAULT); /* until stop_poll() stops it */
	while (!use_uv && !loop_done && lws_service(s->ctx, 0) >= 0)
		relay_ws_flush();
	log_notice("stopped");
	close_parts(s);
	return 0;
}
