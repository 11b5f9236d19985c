/*
 * file/client: `relay file`, the test and maintenance client: connect to a topic through the
 * access protocol, record what arrives, play a .play script, send lines typed on stdin, and
 * `relay file check` for monitoring probes.
 */
#ifndef RELAY_FILE_CLIENT_H
#define RELAY_FILE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

struct client_opts {
	char *session;                    /* access URL: https://HOST/session/TOPIC */
	char *token;                      /* the token itself (environment only) */
	char *token_file;                 /* or a file holding it */
	char *secret_file;                /* or mint HS256 tokens with this secret... */
	char *audience;                   /* ...for this audience (default: the URL's origin) */
	char *file;                       /* record here; "" or "-" for stdout */
	char *mode;                       /* "text" or "binary" */
	char *play;                       /* .play script to run */
	char *ca_file;                    /* trust this PEM file instead of the system's CAs */
	bool interactive;                 /* send lines from stdin */
	bool insecure;                    /* do not verify the TLS certificate */
	bool once;                        /* no reconnection: exit when the connection ends */
	int64_t timeout;                  /* ms per connection step */
	int64_t backoff_min, backoff_max; /* ms between reconnection attempts */
	int64_t linger;                   /* ms to keep recording after the script ends */
};

/* Exit statuses shared with the command: scripts test them. */
enum client_exit {
	CLIENT_OK = 0,
	CLIENT_FAIL = 1,  /* unreachable, refused, closed */
	CLIENT_USAGE = 2, /* bad settings or a malformed .play file */
};

/* Connect, then record/play/send until the script ends, a signal, or a permanent failure. */
int file_client(const struct client_opts *o);

/* Access, redeem and a round trip through the topic, with timings. 0 pass, 1 fail. */
int file_check(const struct client_opts *o);

/* The largest message relay file reassembles or reads. */
#define FILE_MSG_MAX (64 * 1024 * 1024)

/*
 * The access token for @o: the token, its file, or one minted (read and write) for the URL's
 * topic. A new string in *out (free with secret_free()); 0 or -errno with @why.
 */
int file_token(const struct client_opts *o, char **out, char why[256]);

#endif
