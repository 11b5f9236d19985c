/*
 * host/opts: the settings of `relay host`, one table (pkg/config) for the command line, the
 * RELAY_HOST_* variables, the config file's top level and each of its streams. practable's host
 * scripts set RELAY_HOST_SESSION and RELAY_HOST_TOKEN.
 */
#define LOG_MODULE "host" /* nothing here logs */
#include "host/host.h"

#include <stddef.h>

#define H(f) offsetof(struct host_opts, f)
static const struct cfg_opt rows[] = {
        {"config", CFG_STRING, H(config), NULL, 0, 0,
         "JSON config file: settings, \"streams\" and \"rules\" (configs/host.example.json)", NULL,
         CFG_NO_FILE},
        {"check", CFG_BOOL, H(check), "false", 0, 0,
         "check the settings, config file, streams and rules, then exit (0 when good)", NULL,
         CFG_NO_FILE | CFG_NO_ENV},
        {"name", CFG_STRING, H(name), NULL, 0, 0,
         "stream name for logs and the API (default: topic)", NULL, 0},
        {"session", CFG_STRING, H(session), NULL, 0, 0,
         "access URL: https://HOST/session/TOPIC (or /connect/ID)", NULL, 0},
        {"token", CFG_SECRET, H(token), NULL, 0, 0, "the token itself (environment or config file)",
         NULL, CFG_NO_FLAG},
        {"token_file", CFG_STRING, H(token_file), NULL, 0, 0, "file holding the token", NULL, 0},
        {"secret_file", CFG_STRING, H(secret_file), NULL, 0, 0,
         "or mint a fresh HS256 token at every connection with this secret", NULL, 0},
        {"audience", CFG_STRING, H(audience), NULL, 0, 0,
         "audience of minted tokens (default: URL origin)", NULL, 0},
        {"token_lifetime", CFG_DURATION, H(token_lifetime), "1h", 5000, 31LL * 86400000,
         "lifetime of minted tokens (renewed on a second link before they expire)", NULL, 0},
        {"video", CFG_STRING, H(video), NULL, 0, 0,
         "video source: test, /dev/videoN (v4l2:/dev/videoN) or lavfi:GRAPH", NULL, 0},
        {"codec", CFG_STRING, H(codec), "mpeg1", 0, 0, "video codec: mpeg1 or h264", NULL, 0},
        {"format", CFG_STRING, H(format), NULL, 0, 0,
         "video container: ts (mpeg1 default), annexb (h264 default) or fmp4", NULL, 0},
        {"data", CFG_STRING, H(data), NULL, 0, 0,
         "local device: tcp:HOST:PORT, udp:HOST:PORT, serial:PATH:BAUD[:8N1], ws://HOST:PORT/PATH or "
         "exec:COMMAND",
         NULL, 0},
        {"feed", CFG_STRING, H(feed), NULL, 0, 0,
         "forward the local ingest feed of this name (/ts/NAME, /ws/NAME)", NULL, 0},
        {"connect", CFG_STRING, H(connect), NULL, 0, 0,
         "private channels (docs/connect.md): each client's channel gets a fresh connection to "
         "this tcp:HOST:PORT (session: https://RELAY/connect/ID)",
         NULL, 0},
        {"width", CFG_INT, H(width), "640", 384, 4096, "video width", NULL, 0},
        {"height", CFG_INT, H(height), "480", 64, 4096, "video height", NULL, 0},
        {"fps", CFG_INT, H(fps), "25", 1, 60, "video frames per second", NULL, 0},
        {"bitrate", CFG_INT, H(bitrate), "1000000", 50000, 50000000, "video bits per second", NULL,
         0},
        {"gop", CFG_INT, H(gop), "25", 1, 600, "frames between keyframes", NULL, 0},
        {"ca_file", CFG_STRING, H(ca_file), NULL, 0, 0,
         "trust only this PEM file's certificates for the relay (a private CA, a self-signed relay)",
         NULL, 0},
        {"insecure", CFG_BOOL, H(insecure), "false", 0, 0,
         "do not verify the relay's TLS certificate", NULL, 0},
        {"timeout", CFG_DURATION, H(timeout), "10s", 100, 600000, "limit for each connection step",
         NULL, 0},
        {"backoff_min", CFG_DURATION, H(backoff_min), "1s", 10, 3600000, "first reconnection delay",
         NULL, 0},
        {"backoff_max", CFG_DURATION, H(backoff_max), "30s", 10, 3600000,
         "longest reconnection delay", NULL, 0},
        {"listen", CFG_STRING, H(listen), "", 0, 0,
         "local ingest server and REST API, e.g. 127.0.0.1:8888 (default: on only with a config "
         "file)",
         NULL, 0},
        {"streams", CFG_JSON, H(streams), NULL, 0, 0,
         "config file: array of streams, each an object of the keys above", NULL,
         CFG_NO_FLAG | CFG_NO_ENV},
        {"rules", CFG_JSON, H(rules), NULL, 0, 0,
         "config file: array of practable rules {id, stream, destination, token}", NULL,
         CFG_NO_FLAG | CFG_NO_ENV},
        {"log_level", CFG_STRING, H(log_level), "notice", 0, 0,
         "error, warn, notice, info or debug", NULL, 0},
        {"log_format", CFG_STRING, H(log_format), "text", 0, 0, "text or json", NULL, 0},
        {"log_file", CFG_STRING, H(log_file), NULL, 0, 0,
         "log to this file (reopened on SIGHUP); default stderr", NULL, 0},
};
#undef H

const struct cfg_table host_opts_table = {rows, sizeof(rows) / sizeof(rows[0]), "RELAY_HOST_",
                                          "config"};
