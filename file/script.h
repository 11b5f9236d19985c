/*
 * file/script: load a .play script (pkg/play parses each line) and compile its regexes, all
 * before anything is sent, so a script with a mistake in it sends nothing. Used by `relay file
 * --play`; playing it is file/client.c's job.
 */
#ifndef RELAY_FILE_SCRIPT_H
#define RELAY_FILE_SCRIPT_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>

#include "pkg/play/play.h"

/* accept or deny filters in force at once (between resets) */
#define FILE_FILTERS_MAX 64

struct file_script_line {
	struct play_line l;
	regex_t re; /* condition or filter pattern */
	bool has_re;
	int lineno;
};

struct file_script {
	char *text; /* the file; the lines' views point into it */
	struct file_script_line *lines;
	size_t n;
};

/*
 * Load and check the .play file @path: parse every line and compile every regex. On error prints
 * "FILE:LINE:COL: expected ..." (or the regex's error) on stderr and returns -EINVAL, or -EIO
 * when the file cannot be read, -ENOMEM. A new script in *out: free with file_script_free().
 */
int file_script_load(const char *path, struct file_script **out);
void file_script_free(struct file_script *s);

#endif
