/*
 * cmd: the `relay` command table. Each cmd_<name>() parses its own options and returns the exit
 * status: 0 ok, 1 failure, 2 usage error (with a one-line reason on stderr).
 */
#ifndef RELAY_CMD_H
#define RELAY_CMD_H

#include "pkg/config/config.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

int cmd_serve(int argc, char **argv);
int cmd_host(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_file(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_help(int argc, char **argv);

/* Print "relay <cmd>: <reason>" and a pointer to the help; returns EXIT_USAGE. */
int cmd_usage_error(const char *cmd, const char *reason);

/* Set up pkg/log from the log_* settings; -1 to go on, or EXIT_USAGE with the reason printed. */
int cmd_log_init(const char *cmd, const char *level, const char *format, const char *file);

/*
 * Parse @argv against @t into @opts, printing help (with @synopsis, then the table) on -h and a
 * usage error on bad input. Returns -1 to go on, or the exit status to return.
 */
int cmd_parse(const char *cmd, const char *synopsis, const struct cfg_table *t, void *opts,
              int argc, char **argv, int *first_arg);

/* Print the synopsis and the table's options. */
void cmd_print_help(const char *synopsis, const struct cfg_table *t);

#endif
