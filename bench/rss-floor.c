/*
 * bench/rss-floor: what the libraries `relay serve` is built on cost a process before relay
 * holds anything of its own. Links exactly relay serve's libraries (the Makefile's CORE_PKGS),
 * uses each the least relay serve does at start (one HMAC, a SQLite table, a JSON document, a
 * signed JWT, an lws context with relay's fd limit on a uv loop, TLS initialised) and prints
 * VmRSS after each step: "step kB" lines. With --hold it then waits for a signal, so that a
 * caller can read /proc/PID/smaps. Figures, not pass/fail (bench/rss-floor.sh).
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <jwt.h>
#include <libwebsockets.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define FD_LIMIT (20000 + 64) /* relay serve's: --max-connections' default plus its margin */

static long vm_rss_kb(void)
{
	char line[256];
	long kb = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = atol(line + 6);
	fclose(f);
	return kb;
}

static void step(const char *name)
{
	printf("%s %ld\n", name, vm_rss_kb());
}

static int use_sqlite(void)
{
	sqlite3 *db;
	int rc = sqlite3_open(":memory:", &db);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db,
		                  "CREATE TABLE deny(bid TEXT PRIMARY KEY, exp INTEGER);"
		                  "INSERT INTO deny VALUES('b', 1);"
		                  "SELECT bid, exp FROM deny;",
		                  NULL, NULL, NULL);
	/* kept open, as relay keeps its store */
	return rc == SQLITE_OK ? 0 : -EIO;
}

static int use_jwt(void)
{
	static const unsigned char key[32] = "0123456789abcdef0123456789abcde";
	jwt_t *j = NULL;
	char *s = NULL;

	if (jwt_new(&j) == 0 && jwt_add_grant(j, "aud", "http://127.0.0.1") == 0 &&
	    jwt_set_alg(j, JWT_ALG_HS256, key, sizeof(key)) == 0)
		s = jwt_encode_str(j);
	jwt_free(j);
	free(s);
	return s ? 0 : -EINVAL;
}

static struct lws_context *use_lws(uv_loop_t *loop)
{
	struct lws_context_creation_info info;
	void *foreign[1] = {loop};

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.foreign_loops = foreign;
	info.fd_limit_per_thread = FD_LIMIT;
	lws_set_log_level(0, NULL);
	return lws_create_context(&info);
}

int main(int argc, char **argv)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen;
	uv_loop_t loop;
	json_t *doc;

	step("linked");
	if (!HMAC(EVP_sha1(), "k", 1, (const unsigned char *)"m", 1, mac, &maclen))
		return 1;
	step("openssl");
	if (use_sqlite())
		return 1;
	step("sqlite");
	doc = json_loads("{\"iceServers\":[]}", 0, NULL);
	json_decref(doc);
	redisReaderFree(redisReaderCreate()); /* linked for --redis; mapped either way */
	if (!doc || use_jwt())
		return 1;
	step("jansson+jwt");
	if (uv_loop_init(&loop) || !use_lws(&loop))
		return 1;
	step("lws");
	fflush(stdout);
	if (argc > 1 && strcmp(argv[1], "--hold") == 0)
		pause();
	return 0;
}
