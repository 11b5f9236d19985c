/*
 * host: `relay host`, the lab-side agent. It only dials out: for one stream it obtains access,
 * keeps the websocket up (reconnecting with backoff and jitter, minting a fresh token each time
 * when it holds the secret), and bridges the topic to a local device and/or streams video.
 */
#ifndef RELAY_HOST_H
#define RELAY_HOST_H

#include <stdbool.h>
#include <stdint.h>

struct host_opts {
	char *session;          /* access URL: https://HOST/session/TOPIC */
	char *token;            /* the token itself (environment only) */
	char *token_file;       /* or a file holding it */
	char *secret_file;      /* or mint tokens with this HS256 secret... */
	char *audience;         /* ...for this audience (default: the URL's origin) */
	int64_t token_lifetime; /* ms, of minted tokens */
	char *video;            /* "" (none) or "test" */
	char *data;             /* "" (none), "tcp:HOST:PORT" or "udp:HOST:PORT" */
	int64_t width, height, fps, bitrate, gop;
	bool insecure;
	int64_t timeout;                  /* ms per connection step */
	int64_t backoff_min, backoff_max; /* ms */
};

/* Run until SIGINT/SIGTERM. 0 after a signal, 1 on a permanent failure, 2 for bad settings. */
int host_run(const struct host_opts *o);

#endif
