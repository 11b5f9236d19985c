/*
 * relay serve: settings table -> struct relay_opts -> relay_run(). Every setting also comes from
 * RELAY_<KEY> in the environment or a JSON config file (--config); see docs/configuration.md.
 */
#include "cmd/cmd.h"
#include "pkg/log/log.h"
#include "relay/relay.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define O(f) offsetof(struct relay_opts, f)
#define MiB  (1024LL * 1024)
static const struct cfg_opt serve_opts[] = {
        {"config", CFG_STRING, O(config), NULL, 0, 0, "JSON config file with any of these settings",
         NULL, CFG_NO_FILE},
        {"listen", CFG_STRING, O(listen), "127.0.0.1:8443", 0, 0,
         "address and port: HOST:PORT, [V6]:PORT, :PORT", NULL, 0},
        {"audience", CFG_STRING, O(audience), NULL, 0, 0,
         "public access base URL that tokens must name (aud)", NULL, 0},
        {"url", CFG_STRING, O(url), NULL, 0, 0,
         "public websocket base put in returned uris (default: derived)", NULL, 0},
        {"secret", CFG_SECRET, O(secret), NULL, 0, 0,
         "HMAC secret for tokens (environment or file only)", NULL, CFG_NO_FLAG},
        {"secret_file", CFG_STRING, O(secret_file), NULL, 0, 0, "file holding the HMAC secret",
         NULL, 0},
        {"secret_previous", CFG_SECRET, O(secret_previous), NULL, 0, 0,
         "previous HMAC secret, still accepted during a rotation", NULL, CFG_NO_FLAG},
        {"secret_previous_file", CFG_STRING, O(secret_previous_file), NULL, 0, 0,
         "file holding the previous HMAC secret", NULL, 0},
        {"algorithm", CFG_STRING, O(algorithm), "HS256", 0, 0,
         "token algorithm: HS256/384/512, RS*, ES*", NULL, 0},
        {"jwt_key", CFG_STRING, O(jwt_key), NULL, 0, 0, "PEM public key file for RS*/ES* tokens",
         NULL, 0},
        {"cert", CFG_STRING, O(cert), NULL, 0, 0, "TLS certificate (PEM)", NULL, 0},
        {"key", CFG_STRING, O(key), NULL, 0, 0, "TLS private key (PEM)", NULL, 0},
        {"insecure_http", CFG_BOOL, O(insecure_http), "false", 0, 0,
         "serve plain HTTP/WS (behind a TLS proxy)", NULL, 0},
        {"state_dir", CFG_STRING, O(state_dir), "state", 0, 0,
         "directory for relay.db (the deny list)", NULL, 0},
        {"allow_no_booking_id", CFG_BOOL, O(allow_no_booking_id), "false", 0, 0,
         "accept tokens without booking_id", NULL, 0},
        {"trust_forwarded_for", CFG_BOOL, O(trust_forwarded_for), "false", 0, 0,
         "behind a proxy: rate-limit and report the last X-Forwarded-For address", NULL, 0},
        {"cors_origin", CFG_STRING, O(cors_origin), "*", 0, 0,
         "Access-Control-Allow-Origin of the API", NULL, 0},
        {"code_ttl", CFG_DURATION, O(code_ttl), "30s", 1000, 3600000,
         "how long an access code stays valid", NULL, 0},
        {"max_codes", CFG_INT, O(max_codes), "100000", 1, 10000000, "pending access codes at most",
         NULL, 0},
        {"skew", CFG_DURATION, O(skew), "5s", 0, 300000, "clock skew allowed on exp/nbf/iat", NULL,
         0},
        {"ping_interval", CFG_DURATION, O(ping_interval), "30s", 1000, 3600000,
         "idle time before a websocket ping", NULL, 0},
        {"ping_timeout", CFG_DURATION, O(ping_timeout), "30s", 1000, 3600000,
         "close a websocket that stays silent this long after a ping", NULL, 0},
        {"http_timeout", CFG_DURATION, O(http_timeout), "10s", 1000, 600000,
         "time allowed for an HTTP request to arrive", NULL, 0},
        {"max_message", CFG_SIZE, O(max_message), "4MiB", 1, 256 * MiB, "largest websocket message",
         NULL, 0},
        {"max_memory", CFG_SIZE, O(max_memory), "0", 0, 1024 * 1024 * MiB,
         "messages being received or queued, and TURN's TCP/TLS output, in all (0: a quarter of "
         "RAM, at least 64MiB)",
         NULL, 0},
        {"message_timeout", CFG_DURATION, O(message_timeout), "30s", 100, 3600000,
         "time allowed for a message's fragments to arrive, from its first", NULL, 0},
        {"queue_bytes", CFG_SIZE, O(queue_bytes), "16MiB", 1024, 1024 * MiB,
         "per-reader queue, bytes", NULL, 0},
        {"queue_messages", CFG_INT, O(queue_messages), "4096", 1, 1000000,
         "per-reader queue, messages", NULL, 0},
        {"queue_policy", CFG_STRING, O(queue_policy), "drop", 0, 0,
         "when a reader's queue is full: drop (oldest) or close", NULL, 0},
        {"max_connections", CFG_INT, O(max_connections), "20000", 1, 1000000,
         "websocket connections in total", NULL, 0},
        {"max_per_topic", CFG_INT, O(max_per_topic), "1000", 1, 1000000, "connections per topic",
         NULL, 0},
        {"max_topics", CFG_INT, O(max_topics), "10000", 1, 1000000, "topics at once", NULL, 0},
        {"max_header", CFG_SIZE, O(max_header), "32KiB", 4096, 65535,
         "HTTP request header bytes; more is answered 431", NULL, 0},
        {"access_rate", CFG_INT, O(access_rate), "20", 0, 1000000,
         "access calls per second per client address (0: no limit)", NULL, 0},
        {"access_burst", CFG_INT, O(access_burst), "40", 1, 1000000,
         "access calls allowed in a burst", NULL, 0},
        {"max_pending", CFG_INT, O(max_pending), "4096", 1, 1000000,
         "connections without a whole request head; past it the oldest is closed", NULL, 0},
        {"max_pending_per_address", CFG_INT, O(max_pending_per_address), "64", 0, 1000000,
         "connections without a whole request head per client address (0: no limit)", NULL, 0},
        {"signal_max_message", CFG_SIZE, O(signal_max_message), "64KiB", 64, 16 * MiB,
         "largest signaling message (/signal/REALM); larger ones get a too-large error", NULL, 0},
        {"signal_rate", CFG_INT, O(signal_rate), "50", 0, 1000000,
         "signaling messages per second per peer, twice that in a burst (0: no limit)", NULL, 0},
        {"signal_queue", CFG_SIZE, O(signal_queue), "1MiB", 4096, 1024 * MiB,
         "bytes queued for one signaling or meeting connection; a peer that falls further behind "
         "is closed (1008)",
         NULL, 0},
        {"discovery_ttl", CFG_DURATION, O(discovery_ttl), "5m", 1000, 86400000,
         "discovery: a group's TTL when it gives none (whole seconds)", NULL, 0},
        {"discovery_max_ttl", CFG_DURATION, O(discovery_max_ttl), "1h", 1000, 86400000,
         "discovery: the largest TTL a group may ask for (larger ones are cut to it)", NULL, 0},
        {"discovery_max_groups", CFG_INT, O(discovery_max_groups), "10000", 1, 1000000,
         "discovery: groups on this relay, in all apps (past it: 507)", NULL, 0},
        {"discovery_max_per_app", CFG_INT, O(discovery_max_per_app), "1000", 1, 1000000,
         "discovery: groups of one app (past it: 429)", NULL, 0},
        {"discovery_max_app_bytes", CFG_SIZE, O(discovery_max_app_bytes), "4MiB", 64 * 1024,
         1024 * MiB,
         "discovery: bytes of one app's groups, as GET /groups lists them (past it: 429)", NULL, 0},
        {"channel_timeout", CFG_DURATION, O(channel_timeout), "10s", 100, 600000,
         "time a host has to open a private channel for its client (then 1013)", NULL, 0},
        {"channel_queue", CFG_SIZE, O(channel_queue), "1MiB", 4096, 256 * MiB,
         "bytes queued per channel direction; past it the relay stops reading the sender", NULL, 0},
        {"metrics_listen", CFG_STRING, O(metrics_listen), NULL, 0, 0,
         "serve /metrics (and /healthz) on this HOST:PORT instead of the main listener", NULL, 0},
        {"stats_every", CFG_DURATION, O(stats_every), "5s", 100, 3600000,
         "interval of status reports on the stats topic", NULL, 0},
        {"web_dir", CFG_STRING, O(web_dir), "web", 0, 0, "folder of the dashboard's static files",
         NULL, 0},
        {"event_loop", CFG_STRING, O(event_loop), "libuv", 0, 0,
         "libuv (epoll: scales to many connections) or poll", NULL, 0},
        {"write_path", CFG_STRING, O(write_path), NULL, 0, 0,
         "fast (own framing, verified with libwebsockets 4.1) or lws (plain lws_write) "
         "(default: fast with libwebsockets 4.1, else lws)",
         NULL, 0},
        {"redis", CFG_STRING, O(redis), NULL, 0, 0,
         "share topics, codes, deny list and status with other instances: "
         "redis://[:PASSWORD@]HOST:PORT[/DB] (default: none, single instance)",
         NULL, 0},
        {"instance", CFG_STRING, O(instance), NULL, 0, 0,
         "this instance's name in a cluster (default: hostname:port)", NULL, 0},
        {"redis_buffer", CFG_SIZE, O(redis_buffer), "16MiB", 64 * 1024, 1024 * MiB,
         "bytes of topic messages on their way to Redis; past it they are dropped (counted)", NULL,
         0},
        {"turn_listen", CFG_STRING, O(turn_listen), NULL, 0, 0,
         "STUN/TURN over UDP and TCP on HOST:PORT (port 0: any, logged); off when unset", NULL, 0},
        {"turns_listen", CFG_STRING, O(turns_listen), NULL, 0, 0,
         "TURN over TLS on HOST:PORT, with --cert and --key", NULL, 0},
        {"turn_realm", CFG_STRING, O(turn_realm), NULL, 0, 0,
         "TURN realm (default: the audience's host)", NULL, 0},
        {"turn_external_ip", CFG_STRING, O(turn_external_ip), NULL, 0, 0,
         "public address put in relayed addresses, behind a 1:1 NAT (default: the bound one)", NULL,
         0},
        {"turn_relay_ports", CFG_STRING, O(turn_relay_ports), "49152-65535", 0, 0,
         "port range of relayed addresses (UDP; TCP too for TCP allocations): LOW-HIGH", NULL, 0},
        {"turn_secret_file", CFG_STRING, O(turn_secret_file), NULL, 0, 0,
         "file holding the TURN REST secret (default: derived from the HMAC secret; required "
         "with RS*/ES* tokens)",
         NULL, 0},
        {"turn_allow_peer", CFG_STRING, O(turn_allow_peer), NULL, 0, 0,
         "comma-separated CIDRs TURN may relay to despite the peer filter (e.g. 10.0.0.0/8 for a "
         "lab network); the relay's own addresses only when named (/32, /128)",
         NULL, CFG_REPEAT},
        {"turn_max_allocations_per_user", CFG_INT, O(turn_max_allocations_per_user), "10", 1,
         1000000, "TURN allocations per user (booking); past it 486", NULL, 0},
        {"turn_max_allocations", CFG_INT, O(turn_max_allocations), "1000", 1, 1000000,
         "TURN allocations in total; past it 508", NULL, 0},
        {"turn_bandwidth", CFG_SIZE, O(turn_bandwidth), "2MiB", 0, 1024 * MiB,
         "bytes per second relayed per allocation, each way (0: no limit)", NULL, 0},
        {"turn_packet_rate", CFG_INT, O(turn_packet_rate), "5000", 0, 10000000,
         "STUN/TURN packets per second per client address (0: no limit)", NULL, 0},
        {"turn_nice", CFG_INT, O(turn_nice), "10", 0, 19,
         "nice levels the TURN thread runs below the websocket thread: under a TURN flood the "
         "websockets keep their latency (0: equal terms)",
         NULL, 0},
        {"turn_socket_buffer", CFG_SIZE, O(turn_socket_buffer), "4MiB", 0, 256 * MiB,
         "kernel receive/send buffer of the TURN UDP listener, a quarter of it for each relayed "
         "socket (0: the kernel's default)",
         NULL, 0},
        {"log_level", CFG_STRING, O(log_level), "info", 0, 0, "error, warn, notice, info or debug",
         NULL, 0},
        {"log_format", CFG_STRING, O(log_format), "text", 0, 0, "text or json", NULL, 0},
        {"log_file", CFG_STRING, O(log_file), NULL, 0, 0,
         "log to this file (reopened on SIGHUP); default stderr", NULL, 0},
};
#undef O

static const struct cfg_table serve_table = {serve_opts, sizeof(serve_opts) / sizeof(serve_opts[0]),
                                             "RELAY_", "config"};

static const char synopsis[] =
        "usage: relay serve [OPTIONS]\n\n"
        "Runs the relay: POST a token to https://HOST/session/TOPIC for a websocket uri, then open it.\n"
        "Example:\n"
        "  RELAY_SECRET=... relay serve --listen 127.0.0.1:8443 --audience https://relay.example.org \\\n"
        "      --cert cert.pem --key key.pem --state-dir /var/lib/relay";

int cmd_serve(int argc, char **argv)
{
	struct relay_opts o = {0};
	int first, ret;

	if (argc > 1 && strcmp(argv[1], "--config-reference") == 0) {
		cfg_markdown(&serve_table, stdout);
		return EXIT_OK;
	}
	ret = cmd_parse("serve", synopsis, &serve_table, &o, argc, argv, &first);
	if (ret < 0 && first < argc)
		ret = cmd_usage_error("serve", "unexpected argument");
	if (ret < 0)
		ret = cmd_log_init("serve", o.log_level, o.log_format, o.log_file);
	if (ret < 0)
		ret = relay_run(&o);
	log_close();
	cfg_release(&serve_table, &o);
	return ret;
}
