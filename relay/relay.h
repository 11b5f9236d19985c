/*
 * relay: `relay serve`. One libwebsockets context, one thread: the HTTPS access API
 * (POST /session/{topic}, /bids/...), websocket topics with fan-out, and the deny list.
 */
#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H

#include <stdbool.h>
#include <stdint.h>

struct relay_opts {
	char *config;
	char *listen;   /* "127.0.0.1:8443", "[::1]:8443", ":8443" (all interfaces) */
	char *audience; /* public access base URL that tokens must name */
	char *url;      /* public websocket base for returned uris; "" derives it */
	char *secret;   /* HS*: the shared secret */
	char *secret_file;
	char *secret_previous; /* accepted too, during a rotation */
	char *secret_previous_file;
	char *jwt_key; /* RS*, ES*: PEM public key file */
	char *algorithm;
	char *cert, *key; /* TLS certificate and key (PEM files) */
	bool insecure_http;
	char *state_dir;
	bool allow_no_booking_id;
	bool trust_forwarded_for; /* behind a proxy: the client is X-Forwarded-For's last entry */
	char *cors_origin;
	char *log_level, *log_format, *log_file;
	char *queue_policy;                  /* "drop" or "close" */
	char *event_loop;                    /* "libuv" or "poll" */
	char *write_path;                    /* "fast", "lws" or NULL (fast with lws 4.1) */
	char *metrics_listen;                /* separate address for /metrics and /healthz, or "" */
	char *web_dir;                       /* static files: <web_dir>/dashboard */
	int64_t stats_every;                 /* ms between reports on the stats topic */
	int64_t code_ttl;                    /* ms */
	int64_t skew;                        /* ms */
	int64_t ping_interval, ping_timeout; /* ms */
	int64_t http_timeout;                /* ms */
	int64_t max_message, queue_bytes;    /* bytes */
	int64_t max_memory;                  /* bytes being reassembled or queued; 0: automatic */
	int64_t message_timeout;             /* ms from a message's first fragment to its last */
	int64_t queue_messages;
	int64_t max_connections, max_per_topic, max_topics;
	int64_t max_header;                /* bytes of HTTP headers */
	int64_t access_rate, access_burst; /* access calls per second per client address */
	int64_t max_codes;
	int64_t max_pending;             /* connections without a whole request head, in all */
	int64_t max_pending_per_address; /* ...from one client address (0: no limit) */
	int64_t signal_max_message;      /* bytes of a signaling message */
	int64_t signal_rate;             /* signaling messages per second per peer (0: no limit) */
	int64_t signal_queue;            /* bytes queued for one signaling or meeting connection */
	int64_t discovery_ttl, discovery_max_ttl; /* ms: a group's default and largest TTL */
	int64_t discovery_max_groups, discovery_max_per_app;
	/* JSON bytes of one app's groups (bounds what GET /groups builds) */
	int64_t discovery_max_app_bytes;
	int64_t channel_timeout; /* ms a host has to open a channel for its client */
	int64_t channel_queue;   /* bytes queued per channel direction before pausing */
	char *redis;             /* redis://... to share state with other instances, or NULL */
	char *instance;          /* name in the cluster; NULL: hostname:port */
	int64_t redis_buffer;    /* bytes on their way to Redis at most */
	/* STUN/TURN (relay/turn*.c); off when both listen addresses are unset or "" */
	char *turn_listen;      /* UDP and TCP, "127.0.0.1:3478"; port 0 picks one (logged) */
	char *turns_listen;     /* TLS over TCP with cert/key */
	char *turn_realm;       /* "" or NULL: the audience's host */
	char *turn_external_ip; /* put in XOR-RELAYED-ADDRESS (1:1 NAT); NULL: the bound address */
	char *turn_relay_ports; /* "49152-65535" */
	char *turn_secret_file; /* REST secret; NULL: turncred_derive() of the HS secret */
	char *turn_allow_peer;  /* comma-separated CIDRs exempt from the peer filter, or NULL */
	int64_t turn_max_allocations_per_user; /* 486 past it */
	int64_t turn_max_allocations;          /* 508 past it */
	int64_t turn_bandwidth;                /* bytes/s per allocation, each way (0: no limit) */
	int64_t turn_packet_rate;              /* packets/s per client address (0: no limit) */
	int64_t turn_socket_buffer; /* UDP listener's SO_RCVBUF/SO_SNDBUF (0: kernel's) */
	int64_t turn_nice;          /* the TURN thread's niceness above the main thread's (0-19) */
};

/*
 * Run the relay until SIGTERM/SIGINT. Returns 0 after a clean shutdown, 1 when it cannot start
 * (the reason logged once), 2 for a bad setting (reason on stderr).
 */
int relay_run(const struct relay_opts *o);

#endif
