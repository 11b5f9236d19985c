/*
 * Commands whose modules are not written yet: they say so and fail, rather than pretend.
 * Each moves to its own cmd/<name>.c when its issue lands.
 */
#include "cmd/cmd.h"

#include <stdio.h>
#include <string.h>

static int not_yet(const char *name, int argc, char **argv)
{
	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		printf("usage: relay %s [OPTIONS]\n\n(not implemented yet in this build)\n", name);
		return EXIT_OK;
	}
	fprintf(stderr, "relay %s: not implemented yet in this build\n", name);
	return EXIT_FAIL;
}

int cmd_host(int argc, char **argv)
{
	return not_yet("host", argc, argv);
}
