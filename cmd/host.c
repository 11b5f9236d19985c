/*
 * relay host: settings table -> struct host_opts -> host_run(). practable's host scripts set
 * RELAY_HOST_SESSION and RELAY_HOST_TOKEN; every setting also has a flag and RELAY_HOST_<KEY>.
 */
#include "cmd/cmd.h"
#include "host/host.h"
#include "pkg/log/log.h"

#include <stddef.h>
#include <stdio.h>

#define H(f) offsetof(struct host_opts, f)
static const struct cfg_opt host_opts[] = {
        {"session", CFG_STRING, H(session), NULL, 0, 0, "access URL: https://HOST/session/TOPIC",
         NULL, 0},
        {"token", CFG_SECRET, H(token), NULL, 0, 0, "the token itself (environment only)", NULL,
         CFG_NO_FLAG},
        {"token_file", CFG_STRING, H(token_file), NULL, 0, 0, "file holding the token", NULL, 0},
        {"secret_file", CFG_STRING, H(secret_file), NULL, 0, 0,
         "or mint a fresh HS256 token at every connection with this secret", NULL, 0},
        {"audience", CFG_STRING, H(audience), NULL, 0, 0,
         "audience of minted tokens (default: URL origin)", NULL, 0},
        {"token_lifetime", CFG_DURATION, H(token_lifetime), "1h", 5000, 31LL * 86400000,
         "lifetime of minted tokens (renewed a tenth early, at most 60 s, by reconnecting)", NULL,
         0},
        {"video", CFG_STRING, H(video), NULL, 0, 0,
         "video source: test (a moving pattern with a stamp)", NULL, 0},
        {"data", CFG_STRING, H(data), NULL, 0, 0,
         "local device: tcp:HOST:PORT, udp:HOST:PORT, serial:PATH:BAUD or exec:COMMAND", NULL, 0},
        {"width", CFG_INT, H(width), "640", 384, 4096, "video width", NULL, 0},
        {"height", CFG_INT, H(height), "480", 64, 4096, "video height", NULL, 0},
        {"fps", CFG_INT, H(fps), "25", 1, 60, "video frames per second", NULL, 0},
        {"bitrate", CFG_INT, H(bitrate), "1000000", 50000, 50000000, "video bits per second", NULL,
         0},
        {"gop", CFG_INT, H(gop), "25", 1, 600, "frames between keyframes", NULL, 0},
        {"insecure", CFG_BOOL, H(insecure), "false", 0, 0,
         "do not verify the relay's TLS certificate", NULL, 0},
        {"timeout", CFG_DURATION, H(timeout), "10s", 100, 600000, "limit for each connection step",
         NULL, 0},
        {"backoff_min", CFG_DURATION, H(backoff_min), "1s", 10, 3600000, "first reconnection delay",
         NULL, 0},
        {"backoff_max", CFG_DURATION, H(backoff_max), "30s", 10, 3600000,
         "longest reconnection delay", NULL, 0},
};
#undef H

static const struct cfg_table host_table = {host_opts, sizeof(host_opts) / sizeof(host_opts[0]),
                                            "RELAY_HOST_", NULL};

static const char synopsis[] =
        "usage: relay host --session URL (--token-file F | --secret-file F) [--video test] "
        "[--data tcp:HOST:PORT]\n\n"
        "Runs next to the experiment and only dials out: streams the test pattern as MPEG-TS\n"
        "(mpeg1video, for JSMpeg players) and bridges the topic to a local TCP or UDP device,\n"
        "reconnecting by itself. (Cameras, serial ports, H.264, config files and the local\n"
        "ingest endpoints are not built yet.)";

int cmd_host(int argc, char **argv)
{
	struct host_opts o = {0};
	int first, ret;

	ret = cmd_parse("host", synopsis, &host_table, &o, argc, argv, &first);
	if (ret < 0 && first < argc)
		ret = cmd_usage_error("host", "unexpected argument");
	if (ret < 0 && (!o.session || !*o.session))
		ret = cmd_usage_error("host", "--session (or RELAY_HOST_SESSION) is required");
	if (ret < 0 && o.backoff_min > o.backoff_max)
		ret = cmd_usage_error("host", "backoff_min must not exceed backoff_max");
	if (ret < 0) {
		log_init("notice", "text", NULL);
		ret = host_run(&o);
	}
	cfg_release(&host_table, &o);
	return ret;
}
