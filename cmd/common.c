/* cmd/common: option parsing and help shared by the commands. */
#include "cmd/cmd.h"

#include <stdio.h>

void cmd_print_help(const char *synopsis, const struct cfg_table *t)
{
	printf("%s\n\noptions:\n", synopsis);
	cfg_usage(t, stdout);
}

int cmd_parse(const char *cmd, const char *synopsis, const struct cfg_table *t, void *opts,
              int argc, char **argv, int *first_arg)
{
	char err[CFG_ERR_MAX];

	switch (cfg_parse(t, opts, argc, argv, first_arg, err)) {
	case CFG_OK:
		return -1;
	case CFG_HELP:
		cmd_print_help(synopsis, t);
		return EXIT_OK;
	case CFG_USAGE:
		break;
	}
	return cmd_usage_error(cmd, err);
}
