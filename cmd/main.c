/*
 * relay: one binary, four commands. This file only dispatches: `relay CMD ARGS...` runs the
 * command's function, `relay help CMD` and `relay CMD --help` print its usage.
 */
#include "cmd/cmd.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifndef RELAY_VERSION
#define RELAY_VERSION "0.1.0-dev"
#endif

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct cmd cmds[] = {
        {"serve", cmd_serve, "run the relay: HTTPS access, WSS topics, deny list"},
        {"host", cmd_host, "run the lab agent that streams video and data out"},
        {"token", cmd_token, "mint a JWT (or `relay token verify` one)"},
        {"file", cmd_file, "test and maintenance client"},
        {"connect", cmd_connect, "open a private channel to a host's service (ssh ProxyCommand)"},
        {"version", cmd_version, "print the version"},
        {"help", cmd_help, "show help for relay or for one command"},
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

static const struct cmd *find_cmd(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(cmds[i].name, name) == 0)
			return &cmds[i];
	return NULL;
}

static void print_overview(FILE *out)
{
	fprintf(out, "usage: relay COMMAND [OPTIONS]\n\ncommands:\n");
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(out, "  %-9s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(out,
	        "\n`relay help COMMAND` or `relay COMMAND --help` shows a command's options.\n");
}

int cmd_usage_error(const char *cmd, const char *reason)
{
	fprintf(stderr, "relay %s: %s\n", cmd, reason);
	fprintf(stderr, "try 'relay %s --help'\n", cmd);
	return EXIT_USAGE;
}

int cmd_log_init(const char *cmd, const char *level, const char *format, const char *file)
{
	int err = log_init(level, format, file);

	if (!err)
		return -1;
	return cmd_usage_error(cmd, err == -EINVAL ? "bad log_level or log_format"
	                                           : "cannot open log_file");
}

int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("relay %s\n", RELAY_VERSION);
	return EXIT_OK;
}

int cmd_help(int argc, char **argv)
{
	const struct cmd *c;
	char *help_argv[] = {NULL, (char *)"--help", NULL};

	if (argc < 2) {
		print_overview(stdout);
		return EXIT_OK;
	}
	c = find_cmd(argv[1]);
	if (!c) {
		fprintf(stderr, "relay: unknown command '%s'\n", argv[1]);
		return EXIT_USAGE;
	}
	if (c->fn == cmd_help || c->fn == cmd_version) {
		printf("relay %s: %s\n", c->name, c->summary);
		return EXIT_OK;
	}
	help_argv[0] = argv[1];
	return c->fn(2, help_argv);
}

int main(int argc, char **argv)
{
	const struct cmd *c;

	if (argc < 2) {
		print_overview(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		print_overview(stdout);
		return EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0)
		return cmd_version(argc - 1, argv + 1);
	c = find_cmd(argv[1]);
	if (!c) {
		fprintf(stderr, "relay: unknown command '%s'\n", argv[1]);
		print_overview(stderr);
		return EXIT_USAGE;
	}
	return c->fn(argc - 1, argv + 1);
}
