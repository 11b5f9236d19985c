/*
 * relay file: the test and maintenance client. `relay file bench` is the load generator;
 * the other modes (connect, record, play, check) are described in issue 6 and not built yet.
 */
#include "cmd/cmd.h"
#include "file/bench.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define B(f) offsetof(struct bench_opts, f)
static const struct cfg_opt bench_opts[] = {
	{ "session", CFG_STRING, B(session), NULL, 0, 0, "access URL: https://HOST:PORT/session/TOPIC", NULL, 0 },
	{ "token_file", CFG_STRING, B(token_file), NULL, 0, 0, "token for every connection (read and write)",
	  NULL, 0 },
	{ "secret_file", CFG_STRING, B(secret_file), NULL, 0, 0, "or mint HS256 tokens with this secret", NULL,
	  0 },
	{ "audience", CFG_STRING, B(audience), NULL, 0, 0, "audience of minted tokens (default: URL origin)",
	  NULL, 0 },
	{ "writers", CFG_INT, B(writers), "1", 0, 10000, "writing connections", NULL, 0 },
	{ "readers", CFG_INT, B(readers), "1", 0, 100000, "reading connections", NULL, 0 },
	{ "idle", CFG_INT, B(idle), "0", 0, 1000000, "idle connections held open (write-only: they receive nothing)", NULL, 0 },
	{ "size", CFG_SIZE, B(size), "1KiB", 24, 64 * 1024 * 1024, "bytes per message", NULL, 0 },
	{ "rate", CFG_INT, B(rate), "0", 0, 10000000, "messages/s per writer; 0 = as fast as possible", NULL,
	  0 },
	{ "duration", CFG_DURATION, B(duration), "5s", 100, 3600000, "how long to send", NULL, 0 },
	{ "server_pid", CFG_INT, B(server_pid), "0", 0, 4194304, "report this process's CPU time and RSS", NULL,
	  0 },
	{ "timeout", CFG_DURATION, B(timeout), "10s", 100, 600000, "limit for each connection step", NULL, 0 },
	{ "json", CFG_BOOL, B(json), "false", 0, 0, "print the summary as one JSON line", NULL, 0 },
	{ "insecure", CFG_BOOL, B(insecure), "false", 0, 0, "do not verify the relay's TLS certificate", NULL,
	  0 },
};
#undef B

static const struct cfg_table bench_table = { bench_opts, sizeof(bench_opts) / sizeof(bench_opts[0]),
					      "RELAY_BENCH_", NULL };

static const char bench_synopsis[] =
	"usage: relay file bench --session URL (--token-file F | --secret-file F) [OPTIONS]\n\n"
	"Loads a relay through its access protocol: readers, then idle connections, then writers on\n"
	"one topic; prints delivered messages/s, MB/s, latency percentiles, drops and errors.";

static int bench(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	int first, ret;

	ret = cmd_parse("file bench", bench_synopsis, &bench_table, &o, argc, argv, &first);
	if (ret < 0 && first < argc)
		ret = cmd_usage_error("file bench", "unexpected argument");
	if (ret < 0 && (!o.session || !*o.session))
		ret = cmd_usage_error("file bench", "--session is required");
	if (ret < 0)
		ret = file_bench(&o);
	cfg_release(&bench_table, &o);
	return ret;
}

int cmd_file(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "bench") == 0)
		return bench(argc - 1, argv + 1);
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: relay file bench [OPTIONS]   (load generator; see relay file bench --help)\n\n"
		       "The other modes (connect, record, play, check) are not built yet.\n");
		return EXIT_OK;
	}
	return cmd_usage_error("file", "expected a mode: bench");
}
