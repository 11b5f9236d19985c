/*
 * relay host: the settings table (host/opts.c) -> struct host_opts -> host_run(). One stream
 * from the command line, or many (and rules) from a config file.
 */
#include "cmd/cmd.h"
#include "host/host.h"
#include "pkg/log/log.h"

#include <stdio.h>
#include <string.h>

static const char synopsis[] =
        "usage: relay host --session URL (--token-file F | --secret-file F) [--video SRC] "
        "[--data DEVICE] [--feed NAME]\n"
        "       relay host --config FILE\n\n"
        "Runs next to the experiment and only dials out: streams video (the test pattern or a\n"
        "camera, mpeg1video in MPEG-TS for JSMpeg or H.264 for WebCodecs) and bridges a topic to\n"
        "a local device, reconnecting by itself. With a config file it runs several streams and\n"
        "a local ingest server (practable's /ts/NAME and /ws/NAME) with a REST API for rules.";

int cmd_host(int argc, char **argv)
{
	struct host_opts o = {0};
	int first, ret;

	if (argc > 1 && strcmp(argv[1], "--config-reference") == 0) {
		cfg_markdown(&host_opts_table, stdout);
		return EXIT_OK;
	}
	ret = cmd_parse("host", synopsis, &host_opts_table, &o, argc, argv, &first);
	if (ret < 0 && first < argc)
		ret = cmd_usage_error("host", "unexpected argument");
	/* --check (often run as another user) must not create the service's log file */
	if (ret < 0)
		ret = cmd_log_init("host", o.log_level, o.log_format, o.check ? NULL : o.log_file);
	if (ret < 0)
		ret = host_run(&o);
	log_close();
	cfg_release(&host_opts_table, &o);
	return ret;
}
