/*
 * relay file: the test and maintenance client. `relay file [connect]` records, plays and sends;
 * `relay file check` is a monitoring probe; `relay file bench` is the load generator.
 * Settings use practable's client names (RELAY_CLIENT_SESSION, _TOKEN, _FILE, _MODE, _PLAYFILE).
 */
#include "cmd/cmd.h"
#include "file/bench.h"
#include "file/client.h"
#include "pkg/log/log.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define B(f) offsetof(struct bench_opts, f)
static const struct cfg_opt bench_opts[] = {
        {"session", CFG_STRING, B(session), NULL, 0, 0,
         "access URL: https://HOST:PORT/session/TOPIC", NULL, 0},
        {"session_b", CFG_STRING, B(session_b), NULL, 0, 0,
         "every other reader joins here instead (another instance of a cluster)", NULL, 0},
        {"token_file", CFG_STRING, B(token_file), NULL, 0, 0,
         "token for every connection (read and write)", NULL, 0},
        {"secret_file", CFG_STRING, B(secret_file), NULL, 0, 0,
         "or mint HS256 tokens with this secret", NULL, 0},
        {"audience", CFG_STRING, B(audience), NULL, 0, 0,
         "audience of minted tokens (default: URL origin)", NULL, 0},
        {"writers", CFG_INT, B(writers), "1", 0, 10000, "writing connections", NULL, 0},
        {"readers", CFG_INT, B(readers), "1", 0, 100000, "reading connections", NULL, 0},
        {"idle", CFG_INT, B(idle), "0", 0, 1000000,
         "idle connections held open (write-only: they receive nothing)", NULL, 0},
        {"size", CFG_SIZE, B(size), "1KiB", 24, 64 * 1024 * 1024, "bytes per message", NULL, 0},
        {"rate", CFG_INT, B(rate), "0", 0, 10000000,
         "messages/s per writer; 0 = as fast as possible", NULL, 0},
        {"duration", CFG_DURATION, B(duration), "5s", 100, 3600000, "how long to send", NULL, 0},
        {"server_pid", CFG_INT, B(server_pid), "0", 0, 4194304,
         "report this process's CPU time and RSS", NULL, 0},
        {"timeout", CFG_DURATION, B(timeout), "10s", 100, 600000, "limit for each connection step",
         NULL, 0},
        {"json", CFG_BOOL, B(json), "false", 0, 0, "print the summary as one JSON line", NULL, 0},
        {"ca_file", CFG_STRING, B(ca_file), NULL, 0, 0,
         "trust only this PEM file's certificates for the relay (a private CA, a self-signed relay)",
         NULL, 0},
        {"insecure", CFG_BOOL, B(insecure), "false", 0, 0,
         "do not verify the relay's TLS certificate", NULL, 0},
};
#undef B

static const struct cfg_table bench_table = {bench_opts, sizeof(bench_opts) / sizeof(bench_opts[0]),
                                             "RELAY_BENCH_", NULL};

static const char bench_synopsis[] =
        "usage: relay file bench --session URL (--token-file F | --secret-file F) [OPTIONS]\n\n"
        "Loads a relay through its access protocol: readers, then idle connections, then writers on\n"
        "one topic; prints delivered messages/s, MB/s, latency percentiles, drops and errors.";

static int bench(int argc, char **argv)
{
	struct bench_opts o = {0};
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

#define C(f) offsetof(struct client_opts, f)
static const struct cfg_opt client_opts[] = {
        {"session", CFG_STRING, C(session), NULL, 0, 0, "access URL: https://HOST/session/TOPIC",
         NULL, 0},
        {"token", CFG_SECRET, C(token), NULL, 0, 0, "the token itself (environment only)", NULL,
         CFG_NO_FLAG},
        {"token_file", CFG_STRING, C(token_file), NULL, 0, 0, "file holding the token", NULL, 0},
        {"secret_file", CFG_STRING, C(secret_file), NULL, 0, 0,
         "or mint tokens with this HS256 secret", NULL, 0},
        {"audience", CFG_STRING, C(audience), NULL, 0, 0,
         "audience of minted tokens (default: URL origin)", NULL, 0},
        {"file", CFG_STRING, C(file), "-", 0, 0, "record received messages here (- for stdout)",
         NULL, 0},
        {"mode", CFG_STRING, C(mode), "text", 0, 0,
         "text (timestamped lines) or binary (raw bytes)", NULL, 0},
        {"play", CFG_STRING, C(play), NULL, 0, 0, "play this .play script", "RELAY_CLIENT_PLAYFILE",
         0},
        {"interactive", CFG_BOOL, C(interactive), "false", 0, 0, "send lines read from stdin", NULL,
         0},
        {"once", CFG_BOOL, C(once), "false", 0, 0,
         "do not reconnect: exit 1 when the connection ends", NULL, 0},
        {"linger", CFG_DURATION, C(linger), "0", 0, 86400000,
         "keep recording this long after the script", NULL, 0},
        {"timeout", CFG_DURATION, C(timeout), "10s", 100, 600000, "limit for each connection step",
         NULL, 0},
        {"backoff_min", CFG_DURATION, C(backoff_min), "1s", 10, 3600000, "first reconnection delay",
         NULL, 0},
        {"backoff_max", CFG_DURATION, C(backoff_max), "30s", 10, 3600000,
         "longest reconnection delay", NULL, 0},
        {"ca_file", CFG_STRING, C(ca_file), NULL, 0, 0,
         "trust only this PEM file's certificates for the relay (a private CA, a self-signed relay)",
         NULL, 0},
        {"insecure", CFG_BOOL, C(insecure), "false", 0, 0,
         "do not verify the relay's TLS certificate", NULL, 0},
};
#undef C

static const struct cfg_table client_table = {
        client_opts, sizeof(client_opts) / sizeof(client_opts[0]), "RELAY_CLIENT_", NULL};

static const char client_synopsis[] =
        "usage: relay file [connect] --session URL [--token-file F | --secret-file F] [OPTIONS]\n"
        "       relay file check --session URL [--token-file F | --secret-file F]\n"
        "       relay file bench --session URL ... (see relay file bench --help)\n\n"
        "Connects to a topic through the access protocol; records what arrives (--file, --mode),\n"
        "plays a .play script (--play, see docs/file.md) and sends stdin lines (--interactive).\n"
        "Exit status: 0 ok, 1 unreachable/refused/closed, 2 bad settings or script.";

static int client(const char *name, int argc, char **argv, bool check)
{
	struct client_opts o = {0};
	int first, ret;

	ret = cmd_parse(name, client_synopsis, &client_table, &o, argc, argv, &first);
	if (ret < 0 && first < argc)
		ret = cmd_usage_error(name, "unexpected argument");
	if (ret < 0 && (!o.session || !*o.session))
		ret = cmd_usage_error(name, "--session (or RELAY_CLIENT_SESSION) is required");
	if (ret < 0 && strcmp(o.mode, "text") != 0 && strcmp(o.mode, "binary") != 0)
		ret = cmd_usage_error(name, "--mode must be text or binary");
	if (ret < 0 && o.backoff_min > o.backoff_max)
		ret = cmd_usage_error(name, "backoff_min must not exceed backoff_max");
	if (ret < 0) {
		log_init("notice", "text", NULL);
		ret = check ? file_check(&o) : file_client(&o);
	}
	cfg_release(&client_table, &o);
	return ret;
}

int cmd_file(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "bench") == 0)
		return bench(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return client("file check", argc - 1, argv + 1, true);
	if (argc > 1 && strcmp(argv[1], "connect") == 0)
		return client("file", argc - 1, argv + 1, false);
	return client("file", argc, argv, false);
}
