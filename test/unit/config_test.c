/*
 * config_test: pkg/config against its contract (pkg/config/config.h), on a small table of its own.
 * Covers the value parsers, precedence (default < file < environment < flag), every usage error,
 * -h, positional arguments, running cfg_parse twice, cfg_release, cfg_read_secret_file and the
 * usage/Markdown output (which must never show a secret). Run it under ASan to catch leaks.
 */
#include "pkg/config/config.h"
#include "test/harness.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define PREFIX         "RTEST_"
#define SECRET_DEFAULT "default-secret-Zq9w"
#define SECRET_FILE    "file-secret-Kp3x"
#define SECRET_ENV     "env-secret-Vb7n"
#define SECRET_MAX     (64 * 1024)

struct topts {
	char *name;
	char *secret;
	int64_t port;
	bool verbose;
	int64_t idle_timeout;
	int64_t max_body;
	char *config;
	char *label;
	int64_t workers;
	char *peers;
};

#define F(field) offsetof(struct topts, field)

static const struct cfg_opt rows[] = {
        {"name", CFG_STRING, F(name), "relay", 0, 0, "instance name", NULL, 0},
        {"secret", CFG_SECRET, F(secret), SECRET_DEFAULT, 0, 0, "shared secret", NULL, 0},
        {"port", CFG_INT, F(port), "8080", 1, 65535, "listen port", NULL, 0},
        {"verbose", CFG_BOOL, F(verbose), NULL, 0, 0, "log more", NULL, 0},
        {"idle_timeout", CFG_DURATION, F(idle_timeout), "30s", 0, 0, "idle timeout", NULL, 0},
        {"max_body", CFG_SIZE, F(max_body), "1MiB", 0, 0, "largest body", NULL, 0},
        {"config", CFG_STRING, F(config), NULL, 0, 0, "JSON config file", NULL, CFG_NO_FILE},
        {"label", CFG_STRING, F(label), "none", 0, 0, "free label", PREFIX "OTHER_LABEL", 0},
        {"workers", CFG_INT, F(workers), "4", 1, 64, "worker count", NULL, CFG_NO_FLAG},
        {"peers", CFG_STRING, F(peers), NULL, 0, 0, "peer list", NULL, CFG_REPEAT},
};

static const struct cfg_table table = {
        .opts = rows,
        .n = sizeof(rows) / sizeof(rows[0]),
        .env_prefix = PREFIX,
        .config_key = "config",
};

static const char *const env_names[] = {
        PREFIX "NAME",         PREFIX "SECRET",   PREFIX "PORT",   PREFIX "VERBOSE",
        PREFIX "IDLE_TIMEOUT", PREFIX "MAX_BODY", PREFIX "CONFIG", PREFIX "OTHER_LABEL",
        PREFIX "WORKERS",      PREFIX "LABEL",    PREFIX "PEERS",
};

/* A NULL-terminated argument list, without argv[0]. */
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- helpers ---- */

static void clear_env(void)
{
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
}

static void check_has(const char *hay, const char *needle)
{
	bool ok = hay && strstr(hay, needle);

	CHECK(ok);
	if (!ok)
		fprintf(stderr, "  '%s' not found in '%s'\n", needle, hay ? hay : "(null)");
}

static void check_lacks(const char *hay, const char *needle)
{
	bool ok = hay && !strstr(hay, needle);

	CHECK(ok);
	if (!ok)
		fprintf(stderr, "  '%s' unexpectedly found in '%s'\n", needle,
		        hay ? hay : "(null)");
}

/* A new temporary file holding @len bytes of @data; returns its path (free with drop_temp()). */
static char *make_temp(const void *data, size_t len)
{
	char *path = strdup("/tmp/relay-config-test.XXXXXX");
	int fd = path ? mkstemp(path) : -1;
	bool ok = fd >= 0 && write(fd, data, len) == (ssize_t)len;

	if (fd >= 0)
		close(fd);
	CHECK(ok);
	return path;
}

static char *make_temp_str(const char *s)
{
	return make_temp(s, strlen(s));
}

static void drop_temp(char *path)
{
	if (path)
		unlink(path);
	free(path);
}

/* One cfg_parse() call with its own copy of argv (getopt permutes it). */
struct run {
	struct topts o;
	char err[CFG_ERR_MAX];
	enum cfg_result res;
	int first;
	int argc;
	char *argv[24];
};

static void run(struct run *r, const char *const *args)
{
	memset(r, 0, sizeof(*r));
	r->argv[r->argc++] = strdup("config_test");
	for (size_t i = 0; args[i] && r->argc < 23; i++)
		r->argv[r->argc++] = strdup(args[i]);
	r->res = cfg_parse(&table, &r->o, r->argc, r->argv, &r->first, r->err);
}

static void run_done(struct run *r)
{
	cfg_release(&table, &r->o);
	for (int i = 0; i < r->argc; i++)
		free(r->argv[i]);
}

/* cfg_parse() must fail with CFG_USAGE and a one-line error holding @want1 and @want2. */
static void check_usage(const char *const *args, const char *want1, const char *want2)
{
	struct run r;

	run(&r, args);
	CHECK_EQ(r.res, CFG_USAGE);
	CHECK(strchr(r.err, '\n') == NULL);
	check_has(r.err, want1);
	if (want2)
		check_has(r.err, want2);
	run_done(&r);
}

/* ---- value parsers ---- */

static void test_parse_bool(void)
{
	static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes", "oN"};
	static const char *const no[] = {"false", "no", "off", "0", "FALSE", "No", "OFF"};
	static const char *const bad[] = {"", "2", "tru", "yess", " true", "true ", "y", "-1"};
	bool b;

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		b = false;
		CHECK_EQ(cfg_parse_bool(yes[i], &b), 0);
		CHECK(b);
	}
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		b = true;
		CHECK_EQ(cfg_parse_bool(no[i], &b), 0);
		CHECK(!b);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		b = true;
		CHECK_EQ(cfg_parse_bool(bad[i], &b), -EINVAL);
		CHECK(b); /* untouched */
	}
}

struct num_case {
	const char *in;
	int ret;
	int64_t want;
};

static void check_num_cases(int (*parse)(const char *, int64_t *), const struct num_case *c,
                            size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int64_t v = 12345;
		int ret = parse(c[i].in, &v);

		CHECK_EQ(ret, c[i].ret);
		CHECK_EQ(v, c[i].ret ? 12345 : c[i].want);
		if (ret != c[i].ret || (!ret && v != c[i].want))
			fprintf(stderr, "  input '%s'\n", c[i].in);
	}
}

#define CASES(parse, arr) check_num_cases(parse, arr, sizeof(arr) / sizeof(arr[0]))

static void test_parse_int(void)
{
	static const struct num_case cases[] = {
	        {"0", 0, 0},           {"42", 0, 42},
	        {"-7", 0, -7},         {"9223372036854775807", 0, INT64_MAX},
	        {"", -EINVAL, 0},      {"abc", -EINVAL, 0},
	        {"12abc", -EINVAL, 0}, {"12 ", -EINVAL, 0},
	        {"1.5", -EINVAL, 0},   {"99999999999999999999", -EINVAL, 0},
	        {" 5", -EINVAL, 0},
	};

	CASES(cfg_parse_int, cases);
}

static void test_parse_duration(void)
{
	static const struct num_case cases[] = {
	        {"250ms", 0, 250},     {"30s", 0, 30000},     {"1.5s", 0, 1500},
	        {"5m", 0, 300000},     {"1h", 0, 3600000},    {"2d", 0, 172800000},
	        {"10", 0, 10000},      {"0", 0, 0},           {"-1s", -EINVAL, 0},
	        {"", -EINVAL, 0},      {"5x", -EINVAL, 0},    {" 5s", -EINVAL, 0},
	        {"5 s", -EINVAL, 0},   {"s", -EINVAL, 0},     {"inf", -EINVAL, 0},
	        {"nan", -EINVAL, 0},   {"nanms", -EINVAL, 0}, {"0x10", -EINVAL, 0},
	        {"1e3ms", -EINVAL, 0},
	};

	CASES(cfg_parse_duration_ms, cases);
}

static void test_parse_size(void)
{
	static const struct num_case cases[] = {
	        {"512", 0, 512},         {"64KiB", 0, 65536},    {"4MiB", 0, 4194304},
	        {"1GiB", 0, 1073741824}, {"1.5k", 0, 1536},      {"2K", 0, 2048},
	        {"3MB", 0, 3145728},     {"7B", 0, 7},           {"-1", -EINVAL, 0},
	        {"4XB", -EINVAL, 0},     {"", -EINVAL, 0},       {"KiB", -EINVAL, 0},
	        {"NaNKiB", -EINVAL, 0},  {"0x1p10", -EINVAL, 0},
	};

	CASES(cfg_parse_size, cases);
}

/* ---- precedence ---- */

static void test_defaults(void)
{
	struct run r;

	run(&r, ARGS(NULL));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_STR(r.err, "");
	CHECK_STR(r.o.name, "relay");
	CHECK_STR(r.o.secret, SECRET_DEFAULT);
	CHECK_EQ(r.o.port, 8080);
	CHECK(!r.o.verbose);
	CHECK_EQ(r.o.idle_timeout, 30000);
	CHECK_EQ(r.o.max_body, 1048576);
	CHECK(r.o.config == NULL);
	CHECK_STR(r.o.label, "none");
	CHECK_EQ(r.o.workers, 4);
	CHECK_EQ(r.first, r.argc);
	run_done(&r);
}

static const char full_file[] =
        "{\"name\": \"from-file\", \"secret\": \"" SECRET_FILE "\", "
        "\"port\": 9000, \"verbose\": true, \"idle_timeout\": \"1m\", "
        "\"max_body\": \"4MiB\", \"label\": \"file-label\", \"workers\": 8}";

static void check_file_values(const struct topts *o)
{
	CHECK_STR(o->name, "from-file");
	CHECK_STR(o->secret, SECRET_FILE);
	CHECK_EQ(o->port, 9000);
	CHECK(o->verbose);
	CHECK_EQ(o->idle_timeout, 60000);
	CHECK_EQ(o->max_body, 4194304);
	CHECK_STR(o->label, "file-label");
	CHECK_EQ(o->workers, 8);
}

static void test_file_over_default(void)
{
	char *path = make_temp_str(full_file);
	char *arg = NULL;
	struct run r;

	/* --config PATH */
	run(&r, ARGS("--config", path));
	CHECK_EQ(r.res, CFG_OK);
	check_file_values(&r.o);
	CHECK_STR(r.o.config, path);
	run_done(&r);

	/* --config=PATH */
	CHECK(asprintf(&arg, "--config=%s", path) > 0);
	run(&r, ARGS(arg));
	CHECK_EQ(r.res, CFG_OK);
	check_file_values(&r.o);
	CHECK_STR(r.o.config, path);
	run_done(&r);
	free(arg);

	/* RTEST_CONFIG=PATH */
	setenv(PREFIX "CONFIG", path, 1);
	run(&r, ARGS(NULL));
	CHECK_EQ(r.res, CFG_OK);
	check_file_values(&r.o);
	CHECK_STR(r.o.config, path);
	run_done(&r);
	clear_env();
	drop_temp(path);
}

static void test_config_flag_over_env(void)
{
	char *by_flag = make_temp_str("{\"port\": 9001}");
	char *by_env = make_temp_str("{\"port\": 9002}");
	struct run r;

	setenv(PREFIX "CONFIG", by_env, 1);
	run(&r, ARGS("--config", by_flag));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_EQ(r.o.port, 9001);
	CHECK_STR(r.o.config, by_flag);
	run_done(&r);
	clear_env();
	drop_temp(by_flag);
	drop_temp(by_env);
}

/* An abbreviated config flag (getopt accepts unique prefixes) still loads the file. */
static void test_config_flag_abbreviated(void)
{
	char *path = make_temp_str("{\"port\": 9003}");
	char arg[4200];
	struct run r;

	snprintf(arg, sizeof(arg), "--conf=%s", path);
	run(&r, ARGS(arg));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_EQ(r.o.port, 9003);
	run_done(&r);
	drop_temp(path);
}

/* JSON numbers and booleans stand for their text. */
static void test_file_json_types(void)
{
	char *path =
	        make_temp_str("{\"idle_timeout\": 1.5, \"max_body\": 2048, \"verbose\": false}");
	struct run r;

	run(&r, ARGS("--verbose", "--config", path));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_EQ(r.o.idle_timeout, 1500);
	CHECK_EQ(r.o.max_body, 2048);
	CHECK(r.o.verbose); /* the flag still wins over the file */
	run_done(&r);
	drop_temp(path);
}

static void set_all_env(void)
{
	setenv(PREFIX "NAME", "from-env", 1);
	setenv(PREFIX "SECRET", SECRET_ENV, 1);
	setenv(PREFIX "PORT", "9100", 1);
	setenv(PREFIX "VERBOSE", "off", 1);
	setenv(PREFIX "IDLE_TIMEOUT", "250ms", 1);
	setenv(PREFIX "MAX_BODY", "64KiB", 1);
	setenv(PREFIX "OTHER_LABEL", "env-label", 1);
	setenv(PREFIX "WORKERS", "16", 1);
}

static void test_env_over_file(void)
{
	char *path = make_temp_str(full_file);
	struct run r;

	set_all_env();
	run(&r, ARGS("--config", path));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_STR(r.o.name, "from-env");
	CHECK_STR(r.o.secret, SECRET_ENV);
	CHECK_EQ(r.o.port, 9100);
	CHECK(!r.o.verbose);
	CHECK_EQ(r.o.idle_timeout, 250);
	CHECK_EQ(r.o.max_body, 65536);
	CHECK_STR(r.o.label, "env-label");
	CHECK_EQ(r.o.workers, 16);
	run_done(&r);
	clear_env();
	drop_temp(path);
}

/* A row with an explicit env name ignores the derived one; an empty variable is unset. */
static void test_env_names(void)
{
	struct run r;

	setenv(PREFIX "LABEL", "derived", 1);
	setenv(PREFIX "PORT", "", 1);
	run(&r, ARGS(NULL));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_STR(r.o.label, "none");
	CHECK_EQ(r.o.port, 8080);
	run_done(&r);
	clear_env();
}

static void test_flag_over_env(void)
{
	struct run r;

	set_all_env();
	setenv(PREFIX "VERBOSE", "no", 1);
	run(&r, ARGS("--name=from-flag", "--port", "9200", "--verbose", "--idle-timeout", "2h",
	             "--max-body=1GiB", "--label", "flag-label", "--secret=flag-secret"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_STR(r.o.name, "from-flag");
	CHECK_EQ(r.o.port, 9200);
	CHECK(r.o.verbose);
	CHECK_EQ(r.o.idle_timeout, 7200000);
	CHECK_EQ(r.o.max_body, 1073741824);
	CHECK_STR(r.o.label, "flag-label");
	CHECK_STR(r.o.secret, "flag-secret");
	CHECK_EQ(r.o.workers, 16); /* no flag: the environment stands */
	CHECK_EQ(r.first, r.argc);
	run_done(&r);
	clear_env();
}

static void test_bool_flag(void)
{
	struct run r;

	setenv(PREFIX "VERBOSE", "true", 1);
	run(&r, ARGS("--verbose=false"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK(!r.o.verbose);
	run_done(&r);
	clear_env();

	run(&r, ARGS("--verbose=yes"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK(r.o.verbose);
	run_done(&r);

	/* The last flag wins. */
	run(&r, ARGS("--port=1", "--port=2"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_EQ(r.o.port, 2);
	run_done(&r);
}

/* ---- errors ---- */

static void test_flag_errors(void)
{
	check_usage(ARGS("--bogus"), "unknown option", "--bogus");
	check_usage(ARGS("-x"), "unknown option", "-x");
	check_usage(ARGS("--port"), "--port", "needs a value");
	check_usage(ARGS("--port=70000"), "'port'", "flag --port");
	check_usage(ARGS("--port", "0"), "[1, 65535]", "flag --port");
	check_usage(ARGS("--port=12ab"), "'port'", "flag --port");
	check_usage(ARGS("--verbose=maybe"), "'verbose'", "flag --verbose");
	check_usage(ARGS("--idle-timeout=5x"), "'idle_timeout'", "flag --idle-timeout");
	check_usage(ARGS("--max-body", "4XB"), "'max_body'", "flag --max-body");
	/* A CFG_NO_FLAG row has no flag. */
	check_usage(ARGS("--workers=5"), "unknown option", "--workers");
}

static void test_env_errors(void)
{
	setenv(PREFIX "PORT", "abc", 1);
	check_usage(ARGS(NULL), "'port'", "environment " PREFIX "PORT");
	clear_env();

	setenv(PREFIX "WORKERS", "65", 1);
	check_usage(ARGS(NULL), "environment " PREFIX "WORKERS", "[1, 64]");
	clear_env();

	setenv(PREFIX "IDLE_TIMEOUT", "-1s", 1);
	check_usage(ARGS(NULL), "'idle_timeout'", "environment " PREFIX "IDLE_TIMEOUT");
	clear_env();
}

/* A config file holding @json must be refused with an error naming the file and @want. */
static void check_bad_file(const char *json, const char *want)
{
	char *path = make_temp_str(json);

	check_usage(ARGS("--config", path), path, want);
	drop_temp(path);
}

static void test_file_errors(void)
{
	check_bad_file("{\"nope\": 1}", "unknown key 'nope'");
	check_bad_file("{\"config\": \"/x\"}", "unknown key 'config'"); /* CFG_NO_FILE */
	check_bad_file("{ \"port\": ", "cannot read config file");
	check_bad_file("", "cannot read config file");
	check_bad_file("{\"port\": 1, \"port\": 2}", "cannot read config file");
	check_bad_file("[1, 2]", "top level must be an object");
	check_bad_file("{\"port\": {\"a\": 1}}", "'port'");
	check_bad_file("{\"name\": [\"a\"]}", "'name'");
	check_bad_file("{\"name\": null}", "'name'");
	check_bad_file("{\"port\": 0}", "[1, 65535]");
	check_bad_file("{\"port\": \"abc\"}", "'port'");
	check_usage(ARGS("--config=/nonexistent/relay-config-test.json"), "cannot read config file",
	            "/nonexistent/relay-config-test.json");
}

static void check_help(const char *const *args)
{
	struct run r;

	run(&r, args);
	CHECK_EQ(r.res, CFG_HELP);
	run_done(&r);
}

static void test_help(void)
{
	check_help(ARGS("-h"));
	check_help(ARGS("--help"));
	check_help(ARGS("--port=1", "--help", "--port=2"));
	check_usage(ARGS("--help=1"), "option", NULL); /* --help takes no value */
}

/* ---- arguments and repeated use ---- */

static void test_positional(void)
{
	struct run r;

	run(&r, ARGS("a", "--port=1", "b", "--verbose", "c"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_EQ(r.o.port, 1);
	CHECK(r.o.verbose);
	CHECK_EQ(r.argc, 6);
	CHECK_EQ(r.first, 3);
	if (r.first == 3) {
		CHECK_STR(r.argv[3], "a");
		CHECK_STR(r.argv[4], "b");
		CHECK_STR(r.argv[5], "c");
	}
	run_done(&r);

	/* "--" ends the options. */
	run(&r, ARGS("--port=2", "--", "--verbose"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_EQ(r.o.port, 2);
	CHECK(!r.o.verbose);
	CHECK_EQ(r.first, 3);
	CHECK_STR(r.argv[r.first], "--verbose");
	run_done(&r);
}

static void test_twice(void)
{
	struct run r;

	run(&r, ARGS("--port=1", "pos", "--name", "first"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_EQ(r.first, 4);
	run_done(&r);

	run(&r, ARGS("--port=2"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_EQ(r.o.port, 2);
	CHECK_STR(r.o.name, "relay");
	CHECK_EQ(r.first, r.argc);
	run_done(&r);

	/* After stopping part-way through argv. */
	check_usage(ARGS("--bogus", "--port=3"), "--bogus", NULL);
	run(&r, ARGS("--port=4", "x"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_EQ(r.o.port, 4);
	CHECK_EQ(r.first, 2);
	run_done(&r);
}

static void test_release(void)
{
	struct run r;

	run(&r, ARGS("--config=", "--name=n", "--secret=s"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK(r.o.name && r.o.secret && r.o.config && r.o.label);
	cfg_release(&table, &r.o);
	CHECK(r.o.name == NULL);
	CHECK(r.o.secret == NULL);
	CHECK(r.o.config == NULL);
	CHECK(r.o.label == NULL);
	CHECK_EQ(r.o.port, 8080); /* other fields stay */
	run_done(&r);             /* a second release is harmless */
}

/* ---- secret files ---- */

static void check_secret(const void *data, size_t len, int want_ret, const char *want)
{
	char *path = make_temp(data, len);
	char *s = NULL;
	int ret = cfg_read_secret_file(path, &s);

	CHECK_EQ(ret, want_ret);
	if (want)
		CHECK_STR(s, want);
	else
		CHECK(s == NULL);
	cfg_free_secret(s);
	drop_temp(path);
}

static void test_secret_file(void)
{
	char *big = malloc(SECRET_MAX + 2);
	char *s = NULL;

	check_secret("abc", 3, 0, "abc");
	check_secret("abc\n", 4, 0, "abc");
	check_secret("abc\r\n", 5, 0, "abc");
	check_secret("abc\n\n", 5, 0, "abc\n"); /* only one newline goes */
	check_secret(" a b ", 5, 0, " a b ");
	check_secret("", 0, -ENODATA, NULL);
	check_secret("\n", 1, -ENODATA, NULL);
	check_secret("\r\n", 2, -ENODATA, NULL);
	check_secret("a\0b", 3, -ENODATA, NULL);
	CHECK_EQ(cfg_read_secret_file("/nonexistent/relay-secret", &s), -ENOENT);
	CHECK(s == NULL);
	cfg_free_secret(NULL);

	if (!big) {
		CHECK(big != NULL);
		return;
	}
	memset(big, 'k', SECRET_MAX + 1);
	big[SECRET_MAX + 1] = '\0';
	check_secret(big, SECRET_MAX + 1, -EFBIG, NULL);
	big[SECRET_MAX] = '\0';
	check_secret(big, SECRET_MAX, 0, big);
	free(big);
}

/* ---- usage and docs ---- */

static char *capture(void (*print)(const struct cfg_table *, FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	CHECK(f != NULL);
	if (!f)
		return NULL;
	print(&table, f);
	fclose(f);
	return buf;
}

static void check_doc_common(const char *out)
{
	static const char *const wants[] = {
	        "--name",
	        "--secret",
	        "--port",
	        "--verbose",
	        "--idle-timeout",
	        "--max-body",
	        "--config",
	        "--label",
	        PREFIX "NAME",
	        PREFIX "SECRET",
	        PREFIX "PORT",
	        PREFIX "VERBOSE",
	        PREFIX "IDLE_TIMEOUT",
	        PREFIX "MAX_BODY",
	        PREFIX "CONFIG",
	        PREFIX "OTHER_LABEL",
	        PREFIX "WORKERS",
	        "8080",
	        "30s",
	        "listen port",
	};

	for (size_t i = 0; i < sizeof(wants) / sizeof(wants[0]); i++)
		check_has(out, wants[i]);
	check_lacks(out, "--workers");
	check_lacks(out, PREFIX "LABEL");
	check_lacks(out, SECRET_DEFAULT);
	check_lacks(out, SECRET_ENV);
}

static void test_usage(void)
{
	char *out;

	/* A secret set in the environment must not leak into the text either. */
	setenv(PREFIX "SECRET", SECRET_ENV, 1);
	out = capture(cfg_usage);
	check_doc_common(out);
	check_has(out, "--help");
	free(out);

	out = capture(cfg_markdown);
	check_doc_common(out);
	check_has(out, "`--port`");
	check_has(out, "`" PREFIX "OTHER_LABEL`");
	check_has(out, "| config key |");
	free(out);
	clear_env();
}

/* A CFG_REPEAT row: every --flag's value, joined with ','; the flags replace the environment's. */
static void test_repeat(void)
{
	struct run r;
	char *out;

	run(&r, ARGS("--peers", "10.0.0.0/8", "--port=5", "--peers=192.168.0.0/16", "--name", "a",
	             "--name", "b", "--peers", "2000::/3"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_STR(r.o.peers, "10.0.0.0/8,192.168.0.0/16,2000::/3");
	CHECK_STR(r.o.name, "b"); /* a row without CFG_REPEAT: the last flag wins */
	CHECK_EQ(r.o.port, 5);
	run_done(&r);

	setenv(PREFIX "PEERS", "1.2.3.0/24", 1);
	run(&r, ARGS("--peers", "10.0.0.0/8"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_STR(r.o.peers, "10.0.0.0/8");
	run_done(&r);
	run(&r, ARGS("--port=6"));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_STR(r.o.peers, "1.2.3.0/24");
	run_done(&r);
	clear_env();

	run(&r, ARGS("--peers="));
	CHECK_EQ(r.res, CFG_OK);
	CHECK_STR(r.o.peers, "");
	run_done(&r);

	out = capture(cfg_usage);
	check_has(out, "peer list (repeatable)");
	free(out);
	out = capture(cfg_markdown);
	check_has(out, "peer list (flag repeatable)");
	free(out);
}

/* CFG_JSON rows, cfg_apply_json() for nested objects and cfg_copy() for per-item settings. */
struct jopts {
	char *name;
	json_t *items;
	int64_t port;
};

static const struct cfg_opt jrows[] = {
        {"name", CFG_STRING, offsetof(struct jopts, name), "base", 0, 0, "name", NULL, 0},
        {"items", CFG_JSON, offsetof(struct jopts, items), NULL, 0, 0, "items", NULL,
         CFG_NO_FLAG | CFG_NO_ENV},
        {"port", CFG_INT, offsetof(struct jopts, port), "80", 1, 65535, "port", NULL, 0},
};
static const struct cfg_table jtable = {jrows, 3, PREFIX, NULL};

static void test_json_rows(void)
{
	json_t *root =
	        json_loads("{\"name\": \"top\", \"items\": [{\"name\": \"a\", \"port\": 81}, "
	                   "{\"port\": 0}, {\"nope\": 1}, 7]}",
	                   0, NULL);
	struct jopts top = {0}, item;
	char err[CFG_ERR_MAX];

	CHECK_EQ(cfg_apply_json(&jtable, &top, root, "test", err), 0);
	CHECK_STR(top.name, "top");
	CHECK(json_is_array(top.items));
	CHECK_EQ(json_array_size(top.items), 4);
	CHECK_EQ(top.port, 0); /* no defaults applied: only the object's keys */

	/* item 0: inherits nothing it overrides, keeps what it does not */
	CHECK_EQ(cfg_copy(&jtable, &item, &top, sizeof(item)), 0);
	CHECK_EQ(cfg_apply_json(&jtable, &item, json_array_get(top.items, 0), "item 0", err), 0);
	CHECK_STR(item.name, "a");
	CHECK_EQ(item.port, 81);
	CHECK(item.items == top.items); /* referenced, not copied */
	cfg_release(&jtable, &item);
	CHECK_STR(top.name, "top"); /* the copy owned its own strings */

	CHECK_EQ(cfg_copy(&jtable, &item, &top, sizeof(item)), 0);
	CHECK(cfg_apply_json(&jtable, &item, json_array_get(top.items, 1), "item 1", err) < 0);
	check_has(err, "item 1");
	check_has(err, "[1, 65535]");
	CHECK(cfg_apply_json(&jtable, &item, json_array_get(top.items, 2), "item 2", err) < 0);
	check_has(err, "unknown key 'nope'");
	CHECK(cfg_apply_json(&jtable, &item, json_array_get(top.items, 3), "item 3", err) < 0);
	check_has(err, "item 3: must be an object");
	cfg_release(&jtable, &item);

	/* a JSON row takes only arrays and objects */
	json_decref(root);
	root = json_loads("{\"items\": \"x\"}", 0, NULL);
	CHECK(cfg_apply_json(&jtable, &top, root, "test", err) < 0);
	check_has(err, "'items' must be an array or object");
	json_decref(root);
	cfg_release(&jtable, &top);
	CHECK(top.items == NULL && top.name == NULL);
}

int main(void)
{
	clear_env();
	RUN(test_parse_bool());
	RUN(test_parse_int());
	RUN(test_parse_duration());
	RUN(test_parse_size());
	RUN(test_defaults());
	RUN(test_file_over_default());
	RUN(test_config_flag_over_env());
	RUN(test_config_flag_abbreviated());
	RUN(test_file_json_types());
	RUN(test_env_over_file());
	RUN(test_env_names());
	RUN(test_flag_over_env());
	RUN(test_bool_flag());
	RUN(test_flag_errors());
	RUN(test_env_errors());
	RUN(test_file_errors());
	RUN(test_help());
	RUN(test_positional());
	RUN(test_twice());
	RUN(test_repeat());
	RUN(test_release());
	RUN(test_secret_file());
	RUN(test_usage());
	RUN(test_json_rows());
	return harness_done();
}
