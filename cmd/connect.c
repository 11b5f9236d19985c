/*
 * relay connect: the client end of a private channel (issue 14, docs/connect.md). The settings
 * table -> struct connect_opts -> file_connect().
 */
#include "cmd/cmd.h"
#include "file/connect.h"
#include "pkg/log/log.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define C(f) offsetof(struct connect_opts, f)
static const struct cfg_opt rows[] = {
        {"session", CFG_STRING, C(session), NULL, 0, 0,
         "access URL of the host: https://RELAY/connect/HOST", NULL, 0},
        {"token", CFG_SECRET, C(token), NULL, 0, 0, "the token itself (environment only)", NULL,
         CFG_NO_FLAG},
        {"token_file", CFG_STRING, C(token_file), NULL, 0, 0,
         "file holding the token (prefix connect, scope client)", NULL, 0},
        {"secret_file", CFG_STRING, C(secret_file), NULL, 0, 0,
         "or mint HS256 tokens (scope client) with this secret", NULL, 0},
        {"audience", CFG_STRING, C(audience), NULL, 0, 0,
         "audience of minted tokens (default: URL origin)", NULL, 0},
        {"listen", CFG_STRING, C(listen), NULL, 0, 0,
         "accept local TCP connections on ADDRESS:PORT, each its own channel (default: stdin and "
         "stdout are the channel)",
         NULL, 0},
        {"timeout", CFG_DURATION, C(timeout), "10s", 100, 600000, "limit for each connection step",
         NULL, 0},
        {"ca_file", CFG_STRING, C(ca_file), NULL, 0, 0,
         "trust only this PEM file's certificates for the relay (a private CA, a self-signed relay)",
         NULL, 0},
        {"insecure", CFG_BOOL, C(insecure), "false", 0, 0,
         "do not verify the relay's TLS certificate", NULL, 0},
        {"log_level", CFG_STRING, C(log_level), "warn", 0, 0,
         "error, warn, notice, info or debug (on stderr)", NULL, 0},
};
#undef C

static const struct cfg_table connect_table = {rows, sizeof(rows) / sizeof(rows[0]),
                                               "RELAY_CONNECT_", NULL};

static const char synopsis[] =
        "usage: relay connect --session https://RELAY/connect/HOST (--token-file F | "
        "--secret-file F) [--listen ADDRESS:PORT]\n\n"
        "Opens a private channel to a host's configured service (relay host --connect), e.g. its\n"
        "sshd: stdin and stdout are the channel (ssh -o ProxyCommand='relay connect --session\n"
        "https://RELAY/connect/%h --token-file ~/.relay/token' user@HOST), or with --listen each\n"
        "local TCP connection becomes its own channel.\n"
        "Exit status: 0 the channel ended cleanly (or a signal), 1 refused/unreachable/closed,\n"
        "2 bad settings.";

int cmd_connect(int argc, char **argv)
{
	struct connect_opts o = {0};
	int first, ret;

	if (argc > 1 && strcmp(argv[1], "--config-reference") == 0) {
		cfg_markdown(&connect_table, stdout);
		return EXIT_OK;
	}
	ret = cmd_parse("connect", synopsis, &connect_table, &o, argc, argv, &first);
	if (ret < 0 && first < argc)
		ret = cmd_usage_error("connect", "unexpected argument");
	if (ret < 0 && (!o.session || !*o.session))
		ret = cmd_usage_error("connect",
		                      "--session (or RELAY_CONNECT_SESSION) is required");
	if (ret < 0)
		ret = cmd_log_init("connect", o.log_level, "text", NULL);
	if (ret < 0)
		ret = file_connect(&o);
	log_close();
	cfg_release(&connect_table, &o);
	return ret;
}
