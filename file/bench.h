/*
 * file/bench: `relay file bench`, the load generator. It speaks the access protocol (so it can
 * load any relay with the same protocol), opens readers, idle connections and writers on one
 * topic, sends timestamped messages at full speed or paced, and reports delivered messages/s,
 * MB/s, latency percentiles, drops (sequence gaps) and errors, plus the server's CPU time and
 * peak RSS when given its PID.
 */
#ifndef RELAY_FILE_BENCH_H
#define RELAY_FILE_BENCH_H

#include <stdbool.h>
#include <stdint.h>

struct bench_opts {
	char *session;     /* access URL: https://HOST:PORT/session/TOPIC */
	char *session_b;   /* every other reader's access URL (another instance), or NULL */
	char *token_file;  /* a token to use for every connection (needs read and write) */
	char *secret_file; /* or: mint tokens with this HS256 secret... */
	char *audience;    /* ...for this audience (default: the access URL's origin) */
	int64_t writers, readers, idle;
	int64_t size;     /* bytes per message, at least 24 */
	int64_t rate;     /* messages/s per writer; 0 = as fast as possible */
	int64_t duration; /* ms of sending */
	int64_t server_pid;
	int64_t timeout; /* ms for each connection step */
	char *ca_file;   /* trust this PEM file instead of the system's CAs */
	bool json, insecure;
};

/* Run the benchmark; prints progress on stderr and the summary on stdout. 0, or 1 on failure. */
int file_bench(const struct bench_opts *o);

#endif
