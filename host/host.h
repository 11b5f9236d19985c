/*
 * host: `relay host`, the lab-side agent. It only dials out. Each stream obtains access, keeps
 * its websocket up (reconnecting with backoff and jitter, renewing minted tokens without a gap)
 * and carries video and/or data between the relay topic and the lab: a camera or the test
 * pattern (host/video), a local device, or a local feed posted to the ingest server
 * (host/ingest: practable's /ts/{name} and /ws/{name}, with a REST API for rules).
 */
#ifndef RELAY_HOST_H
#define RELAY_HOST_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "pkg/config/config.h"

/* Settings: the command line's, and each stream's in a config file (same keys). */
struct host_opts {
	char *name;             /* stream name, for logs and the API (default: the topic) */
	char *session;          /* access URL: https://HOST/session/TOPIC */
	char *token;            /* the token itself (environment only) */
	char *token_file;       /* or a file holding it */
	char *secret_file;      /* or mint tokens with this HS256 secret... */
	char *audience;         /* ...for this audience (default: the URL's origin) */
	int64_t token_lifetime; /* ms, of minted tokens */
	char *video;            /* "" (none), "test", "/dev/videoN", "v4l2:...", "lavfi:..." */
	char *codec, *format;   /* video codec and container (host/video.h) */
	char *data;             /* "" (none), "tcp:HOST:PORT", "udp:...", "serial:...", "ws://...",
	                           "exec:..." */
	char *feed;             /* "" or the name of a local ingest feed to forward */
	char *connect;          /* "" or tcp:HOST:PORT: private channels to this target (session:
	                           https://HOST/connect/ID), host/channel.c */
	int64_t width, height, fps, bitrate, gop;
	bool insecure;
	char *ca_file;                    /* trust this PEM file instead of the system's CAs */
	int64_t timeout;                  /* ms per connection step */
	int64_t backoff_min, backoff_max; /* ms */
	/* top level only */
	bool check;      /* check the settings and exit */
	char *config;    /* the JSON config file */
	char *listen;    /* local ingest server and API: "127.0.0.1:8888", or "" for none */
	json_t *streams; /* config file: array of stream objects (keys as above) */
	json_t *rules; /* config file: array of practable rules {id, stream, destination, token} */
	char *log_level, *log_format, *log_file; /* pkg/log; the file is reopened on SIGHUP */
};

/* The settings table (pkg/config): flags, RELAY_HOST_* variables and config file keys. */
extern const struct cfg_table host_opts_table;

/* Run until SIGINT/SIGTERM. 0 after a signal, 1 on a permanent failure, 2 for bad settings. */
int host_run(const struct host_opts *o);

#endif
