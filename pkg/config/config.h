/*
 * config: table-driven settings. One table per command describes every setting once; from it
 * come the defaults, the JSON config file keys, the environment variables, the command-line
 * flags, the usage text and the reference docs. Precedence: flag > environment > file > default.
 *
 * Naming, from a table key such as "state_dir": JSON key "state_dir", flag "--state-dir",
 * environment variable "<prefix>STATE_DIR" (e.g. RELAY_STATE_DIR), unless the row names one.
 */
#ifndef RELAY_CONFIG_H
#define RELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

enum cfg_type {
	CFG_STRING,   /* char *, owned; freed by cfg_release() */
	CFG_SECRET,   /* char *, owned; wiped by cfg_release(); never printed */
	CFG_INT,      /* int64_t, within [min, max] */
	CFG_BOOL,     /* bool: true/false/yes/no/on/off/1/0 */
	CFG_DURATION, /* int64_t milliseconds: "250ms", "30s", "5m", "1h", "2d"; a bare number is
	                 seconds */
	CFG_SIZE, /* int64_t bytes: "512", "64KiB", "4MiB", "1GiB" (also k/K/KB/M/MB/G/GB, binary)
	           */
	CFG_JSON, /* json_t *, an array or object from the config file only (the row must carry
	             CFG_NO_FLAG | CFG_NO_ENV); a new reference, dropped by cfg_release() */
};

enum cfg_flags {
	CFG_NO_FILE = 1 << 0, /* not accepted from the config file */
	CFG_NO_ENV = 1 << 1,  /* not read from the environment */
	CFG_NO_FLAG = 1 << 2, /* no command-line flag */
	/* a CFG_STRING list: the flag may be given more than once, its values joined with ','
	 * (as one would list them in the environment or the file) */
	CFG_REPEAT = 1 << 3,
};

struct cfg_opt {
	const char *key; /* snake_case name */
	enum cfg_type type;
	size_t offset; /* offsetof() the field in the options struct */
	const char
	        *def; /* default as text, parsed like any other value; NULL: none (0/false/NULL) */
	int64_t min, max; /* for INT, DURATION (ms) and SIZE (bytes); both 0: no bounds */
	const char *help; /* one line */
	const char *env;  /* explicit environment name, or NULL to derive it from prefix + key */
	int flags;        /* enum cfg_flags */
};

struct cfg_table {
	const struct cfg_opt *opts;
	size_t n;
	const char *env_prefix; /* e.g. "RELAY_" */
	const char *config_key; /* key of the CFG_STRING row naming a config file, or NULL */
};

#define CFG_ERR_MAX 320

/* Outcome of cfg_parse(): a usage error carries a one-line reason in @err. */
enum cfg_result {
	CFG_OK = 0,
	CFG_HELP = 1,   /* -h/--help was given */
	CFG_USAGE = -2, /* bad flag, value, file or key: see err */
};

/*
 * Fill @opts (a zeroed struct) from defaults, the config file, the environment and @argv, in
 * rising precedence. argv[0] is the command name; parsing stops at "--". On return *first_arg
 * is the index in @argv of the first positional argument (getopt permutes them to the end).
 * On CFG_USAGE, @err holds one line naming the key and where the bad value came from.
 * Call cfg_release() afterwards in every case.
 */
enum cfg_result cfg_parse(const struct cfg_table *t, void *opts, int argc, char **argv,
                          int *first_arg, char err[CFG_ERR_MAX]);

/*
 * Apply the keys of the JSON object @obj to @opts, as a config file would (unknown keys are
 * refused; @source names it in errors). For settings objects nested in a config file, e.g. one
 * per stream, applied over a copy of the top-level settings.
 */
int cfg_apply_json(const struct cfg_table *t, void *opts, json_t *obj, const char *source,
                   char err[CFG_ERR_MAX]);

/* Deep-copy @src to @dst (strings duplicated, JSON referenced). 0 or -ENOMEM; either way
 * cfg_release(@dst) afterwards. */
int cfg_copy(const struct cfg_table *t, void *dst, const void *src, size_t size);

/* Free and wipe what cfg_parse() allocated in @opts. */
void cfg_release(const struct cfg_table *t, void *opts);

/* Print the flags, environment names, defaults and help of @t. */
void cfg_usage(const struct cfg_table *t, FILE *out);

/* Print @t as a Markdown table (key, flag, environment, default, meaning) for the docs. */
void cfg_markdown(const struct cfg_table *t, FILE *out);

/* Parsers behind the table, usable on their own; 0 or -EINVAL. */
int cfg_parse_bool(const char *s, bool *out);
int cfg_parse_int(const char *s, int64_t *out);
int cfg_parse_duration_ms(const char *s, int64_t *out);
int cfg_parse_size(const char *s, int64_t *out);

/* secret_read_file() and secret_free() (pkg/secret) under the names config's callers use. */
int cfg_read_secret_file(const char *path, char **out);
void cfg_free_secret(char *s);

#endif
