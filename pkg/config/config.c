/*
 * config: defaults, a JSON file (jansson), the environment and getopt_long flags, applied in
 * that order onto one options struct described by a struct cfg_table.
 */
#include "pkg/config/config.h"
#include "pkg/secret/secret.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define NAME_MAX_BYTES 96

/* ---- value parsers ---- */

int cfg_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

int cfg_parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/* Parse "<number><unit>" where the number may have a fraction; unit matched from @units. */
struct unit {
	const char *name;
	double scale;
};

static int parse_scaled(const char *s, const struct unit *units, size_t n, double bare,
                        int64_t *out)
{
	char *end;
	double v, scale = -1;

	size_t digits = strspn(s, "0123456789.");

	/* Plain decimals only: strtod alone would take "nan", "0x10" and "1e3". */
	if (digits == 0 || (s[digits] && !isalpha((unsigned char)s[digits])))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end != s + digits || !(v >= 0))
		return -EINVAL;
	if (!*end) {
		scale = bare;
	} else {
		for (size_t i = 0; i < n; i++)
			if (strcmp(end, units[i].name) == 0)
				scale = units[i].scale;
	}
	if (scale < 0 || v * scale > (double)INT64_MAX / 2)
		return -EINVAL;
	*out = (int64_t)(v * scale + 0.5);
	return 0;
}

int cfg_parse_duration_ms(const char *s, int64_t *out)
{
	static const struct unit units[] = {
	        {"ms", 1}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}, {"d", 86400e3},
	};
	return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), 1e3, out);
}

int cfg_parse_size(const char *s, int64_t *out)
{
	static const struct unit units[] = {
	        {"B", 1},
	        {"k", 1024.0},
	        {"K", 1024.0},
	        {"KB", 1024.0},
	        {"KiB", 1024.0},
	        {"M", 1048576.0},
	        {"MB", 1048576.0},
	        {"MiB", 1048576.0},
	        {"G", 1073741824.0},
	        {"GB", 1073741824.0},
	        {"GiB", 1073741824.0},
	};
	return parse_scaled(s, units, sizeof(units) / sizeof(units[0]), 1, out);
}

/* ---- secrets ---- */

void cfg_free_secret(char *s)
{
	secret_free(s);
}

int cfg_read_secret_file(const char *path, char **out)
{
	return secret_read_file(path, out);
}

/* ---- names ---- */

static void flag_name(const struct cfg_opt *o, char *out)
{
	size_t i;

	for (i = 0; o->key[i] && i < NAME_MAX_BYTES - 1; i++)
		out[i] = o->key[i] == '_' ? '-' : o->key[i];
	out[i] = '\0';
}

static void env_name(const struct cfg_table *t, const struct cfg_opt *o, char *out)
{
	size_t n;

	if (o->env) {
		snprintf(out, NAME_MAX_BYTES, "%s", o->env);
		return;
	}
	n = (size_t)snprintf(out, NAME_MAX_BYTES, "%s", t->env_prefix ? t->env_prefix : "");
	for (size_t i = 0; o->key[i] && n < NAME_MAX_BYTES - 1; i++)
		out[n++] = (char)toupper((unsigned char)o->key[i]);
	out[n] = '\0';
}

/* ---- storing values ---- */

static void *field(void *opts, const struct cfg_opt *o)
{
	return (char *)opts + o->offset;
}

static void store_string(void *opts, const struct cfg_opt *o, const char *s)
{
	char **p = field(opts, o);

	if (o->type == CFG_SECRET)
		cfg_free_secret(*p);
	else
		free(*p);
	*p = strdup(s);
}

static bool in_bounds(const struct cfg_opt *o, int64_t v)
{
	return (o->min == 0 && o->max == 0) || (v >= o->min && v <= o->max);
}

/* Parse text @s into the field of @o; on error fill @err with @source named. */
static int store_text(void *opts, const struct cfg_opt *o, const char *s, const char *source,
                      char err[CFG_ERR_MAX])
{
	static const char *const kinds[] = {
	        [CFG_STRING] = "a string",
	        [CFG_SECRET] = "a string",
	        [CFG_INT] = "an integer",
	        [CFG_BOOL] = "true or false",
	        [CFG_DURATION] = "a duration such as 30s, 500ms or 1h",
	        [CFG_SIZE] = "a size such as 512, 64KiB or 4MiB",
	        [CFG_JSON] = "a JSON array or object (config file only)",
	};
	int64_t v = 0;
	bool b;
	int ret = 0;

	switch (o->type) {
	case CFG_STRING:
	case CFG_SECRET:
		store_string(opts, o, s);
		return *(char **)field(opts, o) ? 0 : -ENOMEM;
	case CFG_BOOL:
		ret = cfg_parse_bool(s, &b);
		if (!ret)
			*(bool *)field(opts, o) = b;
		break;
	case CFG_INT:
		ret = cfg_parse_int(s, &v);
		break;
	case CFG_DURATION:
		ret = cfg_parse_duration_ms(s, &v);
		break;
	case CFG_SIZE:
		ret = cfg_parse_size(s, &v);
		break;
	case CFG_JSON:
		ret = -EINVAL;
		break;
	}
	if (ret) {
		if (o->type == CFG_SECRET)
			s = "(hidden)";
		snprintf(err, CFG_ERR_MAX, "invalid value '%.64s' for '%s' (%s): expected %s", s,
		         o->key, source, kinds[o->type]);
		return -EINVAL;
	}
	if (o->type == CFG_BOOL)
		return 0;
	if (!in_bounds(o, v)) {
		snprintf(err, CFG_ERR_MAX,
		         "value '%.64s' for '%s' (%s) is out of range [%" PRId64 ", %" PRId64 "]%s",
		         s, o->key, source, o->min, o->max,
		         o->type == CFG_DURATION ? " ms"
		         : o->type == CFG_SIZE   ? " bytes"
		                                 : "");
		return -ERANGE;
	}
	*(int64_t *)field(opts, o) = v;
	return 0;
}

static const struct cfg_opt *find_opt(const struct cfg_table *t, const char *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->opts[i].key, key) == 0)
			return &t->opts[i];
	return NULL;
}

/* ---- layers ---- */

static int apply_defaults(const struct cfg_table *t, void *opts, char err[CFG_ERR_MAX])
{
	for (size_t i = 0; i < t->n; i++) {
		const struct cfg_opt *o = &t->opts[i];

		if (o->def && store_text(opts, o, o->def, "default", err))
			return -EINVAL;
	}
	return 0;
}

/* One JSON value as text for store_text(); numbers and booleans are accepted as such. */
static int json_value_text(json_t *v, char *buf, size_t cap)
{
	if (json_is_string(v))
		snprintf(buf, cap, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, cap, "%.17g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, cap, "%s", json_is_true(v) ? "true" : "false");
	else
		return -EINVAL;
	return 0;
}

/* One key of a config object. */
static int apply_key(const struct cfg_table *t, void *opts, const char *key, json_t *v,
                     const char *source, char err[CFG_ERR_MAX])
{
	const struct cfg_opt *o = find_opt(t, key);
	char text[4096];
	int ret;

	if (!o || (o->flags & CFG_NO_FILE)) {
		snprintf(err, CFG_ERR_MAX, "%.128s: unknown key '%.64s'", source, key);
		return -EINVAL;
	}
	if (o->type == CFG_JSON) {
		json_t **p = field(opts, o);

		if (!json_is_array(v) && !json_is_object(v)) {
			snprintf(err, CFG_ERR_MAX, "%.128s: key '%s' must be an array or object",
			         source, key);
			return -EINVAL;
		}
		json_decref(*p);
		*p = json_incref(v);
		return 0;
	}
	if (json_value_text(v, text, sizeof(text))) {
		snprintf(err, CFG_ERR_MAX, "%.128s: key '%s' must be a string, number or boolean",
		         source, key);
		return -EINVAL;
	}
	ret = store_text(opts, o, text, source, err);
	OPENSSL_cleanse(text, sizeof(text));
	return ret;
}

int cfg_apply_json(const struct cfg_table *t, void *opts, json_t *obj, const char *source,
                   char err[CFG_ERR_MAX])
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj)) {
		snprintf(err, CFG_ERR_MAX, "%.128s: must be an object", source);
		return -EINVAL;
	}
	json_object_foreach(obj, key, v)
	{
		int ret = apply_key(t, opts, key, v, source, err);

		if (ret)
			return ret;
	}
	return 0;
}

static int apply_file(const struct cfg_table *t, void *opts, const char *path,
                      char err[CFG_ERR_MAX])
{
	char source[CFG_ERR_MAX / 2];
	json_error_t jerr;
	json_t *root;
	int ret;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, CFG_ERR_MAX, "cannot read config file '%.128s': %.120s (line %d)",
		         path, jerr.text, jerr.line);
		return -EINVAL;
	}
	snprintf(source, sizeof(source), "config file '%.100s'", path);
	if (!json_is_object(root)) {
		snprintf(err, CFG_ERR_MAX, "%s: top level must be an object", source);
		json_decref(root);
		return -EINVAL;
	}
	ret = cfg_apply_json(t, opts, root, source, err);
	json_decref(root);
	return ret;
}

static int apply_env(const struct cfg_table *t, void *opts, char err[CFG_ERR_MAX])
{
	char name[NAME_MAX_BYTES], source[NAME_MAX_BYTES + 16];

	for (size_t i = 0; i < t->n; i++) {
		const struct cfg_opt *o = &t->opts[i];
		const char *v;

		if (o->flags & CFG_NO_ENV)
			continue;
		env_name(t, o, name);
		v = getenv(name);
		if (!v || !*v)
			continue;
		snprintf(source, sizeof(source), "environment %s", name);
		if (store_text(opts, o, v, source, err))
			return -EINVAL;
	}
	return 0;
}

/* Build getopt_long's table: row i of @t is option value 1000 + i. */
static struct option *build_longopts(const struct cfg_table *t, char (*names)[NAME_MAX_BYTES])
{
	struct option *lo = calloc(t->n + 2, sizeof(*lo));
	size_t n = 0;

	if (!lo)
		return NULL;
	for (size_t i = 0; i < t->n; i++) {
		const struct cfg_opt *o = &t->opts[i];

		if (o->flags & CFG_NO_FLAG)
			continue;
		flag_name(o, names[i]);
		lo[n].name = names[i];
		lo[n].has_arg = o->type == CFG_BOOL ? optional_argument : required_argument;
		lo[n].val = 1000 + (int)i;
		n++;
	}
	lo[n].name = "help";
	lo[n].val = 'h';
	return lo;
}

/* One flag seen on the command line: row @row of the table, value @val (NULL: bare boolean). */
struct flag_val {
	size_t row;
	const char *val;
};

/* Describe a getopt error in @err. */
static void flag_error(char (*names)[NAME_MAX_BYTES], const char *bad, char err[CFG_ERR_MAX])
{
	if (optopt == 'h')
		snprintf(err, CFG_ERR_MAX, "option '--help' takes no value");
	else if (optopt && optopt < 1000)
		snprintf(err, CFG_ERR_MAX, "unknown option '-%c'", optopt);
	else if (optopt >= 1000)
		snprintf(err, CFG_ERR_MAX, "option '--%s' needs a value", names[optopt - 1000]);
	else
		snprintf(err, CFG_ERR_MAX, "unknown option '%.64s'", bad);
}

/*
 * Run getopt over @argv, collecting the flags into @out (capacity argc) without applying them,
 * so that the config file they name can be read first.
 */
static enum cfg_result collect_flags(const struct cfg_table *t, int argc, char **argv,
                                     struct flag_val *out, size_t *n, int *first_arg,
                                     char err[CFG_ERR_MAX])
{
	char(*names)[NAME_MAX_BYTES] = calloc(t->n + 1, NAME_MAX_BYTES);
	struct option *lo = names ? build_longopts(t, names) : NULL;
	enum cfg_result ret = CFG_OK;
	int c;

	*n = 0;
	if (!lo) {
		free(names);
		snprintf(err, CFG_ERR_MAX, "out of memory");
		return CFG_USAGE;
	}
	optind = 0; /* full reinitialisation, so cfg_parse() may run more than once */
	opterr = 0;
	while (ret == CFG_OK && (c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (c == 'h') {
			ret = CFG_HELP;
		} else if (c == '?' || c == ':') {
			flag_error(names, argv[optind - 1], err);
			ret = CFG_USAGE;
		} else {
			out[*n].row = (size_t)(c - 1000);
			out[(*n)++].val = optarg;
		}
	}
	*first_arg = optind;
	free(lo);
	free(names);
	return ret;
}

/*
 * The value of a CFG_REPEAT row's flag at @fv[@i]: every value that row's flags were given,
 * joined with ',' (malloc'd), when it is the row's last flag; NULL otherwise (or out of memory:
 * *@oom), so that only the last one stores.
 */
static char *joined_flags(const struct flag_val *fv, size_t n, size_t i, bool *oom)
{
	size_t len = 0;
	char *out;

	*oom = false;
	for (size_t k = i + 1; k < n; k++)
		if (fv[k].row == fv[i].row)
			return NULL;
	for (size_t k = 0; k <= i; k++)
		if (fv[k].row == fv[i].row)
			len += strlen(fv[k].val) + 1;
	out = malloc(len);
	*oom = !out;
	for (size_t k = 0, at = 0; out && k <= i; k++) {
		if (fv[k].row != fv[i].row)
			continue;
		at += (size_t)sprintf(out + at, "%s%s", at ? "," : "", fv[k].val);
	}
	return out;
}

static int apply_flags(const struct cfg_table *t, void *opts, const struct flag_val *fv, size_t n,
                       char err[CFG_ERR_MAX])
{
	char flag[NAME_MAX_BYTES], source[NAME_MAX_BYTES + 8];

	for (size_t i = 0; i < n; i++) {
		const struct cfg_opt *o = &t->opts[fv[i].row];
		char *list = NULL;
		bool oom = false;
		int ret;

		flag_name(o, flag);
		snprintf(source, sizeof(source), "flag --%s", flag);
		if ((o->flags & CFG_REPEAT) && o->type == CFG_STRING && fv[i].val) {
			list = joined_flags(fv, n, i, &oom);
			if (oom) {
				snprintf(err, CFG_ERR_MAX, "out of memory");
				return -ENOMEM;
			}
			if (!list)
				continue; /* a later --flag of the row stores them all */
		}
		ret = store_text(opts, o,
		                 list        ? list
		                 : fv[i].val ? fv[i].val
		                             : "true",
		                 source, err);
		free(list);
		if (ret)
			return -EINVAL;
	}
	return 0;
}

/* The config file: the last config flag given, else its environment variable. */
static const char *config_path(const struct cfg_table *t, const struct flag_val *fv, size_t n)
{
	const struct cfg_opt *o = t->config_key ? find_opt(t, t->config_key) : NULL;
	const char *path = NULL;
	char name[NAME_MAX_BYTES];

	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (&t->opts[fv[i].row] == o)
			path = fv[i].val;
	if (!path) {
		env_name(t, o, name);
		path = getenv(name);
	}
	return path;
}

enum cfg_result cfg_parse(const struct cfg_table *t, void *opts, int argc, char **argv,
                          int *first_arg, char err[CFG_ERR_MAX])
{
	struct flag_val *fv = calloc((size_t)argc + 1, sizeof(*fv));
	enum cfg_result ret;
	const char *file;
	size_t n = 0;

	err[0] = '\0';
	*first_arg = argc;
	if (!fv) {
		snprintf(err, CFG_ERR_MAX, "out of memory");
		return CFG_USAGE;
	}
	ret = collect_flags(t, argc, argv, fv, &n, first_arg, err);
	if (ret == CFG_OK && apply_defaults(t, opts, err))
		ret = CFG_USAGE;
	file = ret == CFG_OK ? config_path(t, fv, n) : NULL;
	if (file && *file && apply_file(t, opts, file, err))
		ret = CFG_USAGE;
	if (ret == CFG_OK && (apply_env(t, opts, err) || apply_flags(t, opts, fv, n, err)))
		ret = CFG_USAGE;
	free(fv);
	return ret;
}

void cfg_release(const struct cfg_table *t, void *opts)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct cfg_opt *o = &t->opts[i];
		char **p = field(opts, o);

		if (o->type == CFG_SECRET)
			cfg_free_secret(*p);
		else if (o->type == CFG_STRING)
			free(*p);
		else if (o->type == CFG_JSON)
			json_decref(*(json_t **)p);
		else
			continue;
		*p = NULL;
	}
}

int cfg_copy(const struct cfg_table *t, void *dst, const void *src, size_t size)
{
	int ret = 0;

	memcpy(dst, src, size);
	for (size_t i = 0; i < t->n; i++) {
		const struct cfg_opt *o = &t->opts[i];
		void *p = field(dst, o);

		if (o->type == CFG_JSON) {
			json_incref(*(json_t **)p);
		} else if ((o->type == CFG_STRING || o->type == CFG_SECRET) && *(char **)p) {
			*(char **)p = strdup(*(char **)p);
			if (!*(char **)p)
				ret = -ENOMEM;
		}
	}
	return ret;
}

/* ---- documentation ---- */

static const char *type_hint(enum cfg_type type)
{
	switch (type) {
	case CFG_STRING:
	case CFG_SECRET:
		return "S";
	case CFG_INT:
		return "N";
	case CFG_BOOL:
		return "[=BOOL]";
	case CFG_DURATION:
		return "DUR";
	case CFG_SIZE:
		return "SIZE";
	case CFG_JSON:
		return "JSON";
	}
	return "";
}

void cfg_usage(const struct cfg_table *t, FILE *out)
{
	char flag[NAME_MAX_BYTES], env[NAME_MAX_BYTES], left[2 * NAME_MAX_BYTES];

	for (size_t i = 0; i < t->n; i++) {
		const struct cfg_opt *o = &t->opts[i];

		flag_name(o, flag);
		env_name(t, o, env);
		if (o->flags & CFG_NO_FLAG)
			snprintf(left, sizeof(left), "  (no flag)");
		else
			snprintf(left, sizeof(left), "  --%s%s%s", flag,
			         o->type == CFG_BOOL ? "" : " ", type_hint(o->type));
		fprintf(out, "%-32s %s%s", left, o->help,
		        o->flags & CFG_REPEAT ? " (repeatable)" : "");
		if (o->def && o->type != CFG_SECRET)
			fprintf(out, " [default: %s]", o->def);
		if (!(o->flags & CFG_NO_ENV))
			fprintf(out, " (env %s)", env);
		fputc('\n', out);
	}
	fprintf(out, "  %-30s show this help\n", "-h, --help");
}

void cfg_markdown(const struct cfg_table *t, FILE *out)
{
	char flag[NAME_MAX_BYTES], env[NAME_MAX_BYTES];

	fprintf(out, "| config key | flag | environment | default | meaning |\n");
	fprintf(out, "| --- | --- | --- | --- | --- |\n");
	for (size_t i = 0; i < t->n; i++) {
		const struct cfg_opt *o = &t->opts[i];

		flag_name(o, flag);
		env_name(t, o, env);
		fprintf(out, "| %s%s%s | ", o->flags & CFG_NO_FILE ? "" : "`",
		        o->flags & CFG_NO_FILE ? "—" : o->key, o->flags & CFG_NO_FILE ? "" : "`");
		if (o->flags & CFG_NO_FLAG)
			fprintf(out, "— | ");
		else
			fprintf(out, "`--%s` | ", flag);
		if (o->flags & CFG_NO_ENV)
			fprintf(out, "— | ");
		else
			fprintf(out, "`%s` | ", env);
		fprintf(out, "%s%s%s | %s%s |\n", o->def && o->type != CFG_SECRET ? "`" : "",
		        o->def && o->type != CFG_SECRET ? o->def : "—",
		        o->def && o->type != CFG_SECRET ? "`" : "", o->help,
		        o->flags & CFG_REPEAT ? " (flag repeatable)" : "");
	}
}
