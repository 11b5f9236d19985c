/*
 * host_video_load_test: how relay finds its video plugin (host/video_load.c, included to reach
 * its statics), without libav: freeing a stream's NULL encoder or source loads nothing; a
 * missing file is -ENOENT (the next place is tried), a file that is no plugin, a name without a
 * '/' (dlopen() would search the library path), a table of another ABI or with another size
 * of struct host_video_opts is -ENOSYS with the reason; $RELAY_VIDEO_PLUGIN naming no file
 * makes the encoder -ENOSYS with the path in why, decided once for the process.
 */
#include "host/video_load.c"
#include "test/harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void test_free_null_loads_nothing(void)
{
	host_video_enc_free(NULL);
	host_video_src_free(NULL);
	CHECK(plugin == NULL);
	CHECK_EQ(load_why[0], '\0'); /* load() has not run */
}

static void test_exe_dir(void)
{
	char dir[PATH_MAX];

	CHECK(exe_dir(dir, sizeof(dir)));
	CHECK(dir[0] == '/');
	CHECK(strlen(dir) >= 5 && strcmp(dir + strlen(dir) - 5, "/test") == 0); /* build/V/test */
}

static void test_open_plugin(void)
{
	char why[DETAIL];

	CHECK_EQ(open_plugin("/nonexistent/relay-video.so", why), -ENOENT);
	CHECK(strstr(why, "/nonexistent/relay-video.so: No such file or directory") != NULL);
	/* exists, but dlopen() refuses it (a position-independent executable) */
	CHECK_EQ(open_plugin("/proc/self/exe", why), -ENOSYS);
	CHECK(why[0] != '\0');
	/* a bare name: refused before dlopen() could find some relay-video.so on the library path */
	CHECK_EQ(open_plugin("relay-video.so", why), -ENOSYS);
	CHECK(strstr(why, "'relay-video.so' is not a path") != NULL);
	CHECK(plugin == NULL);
}

static void test_check_table(void)
{
	struct host_video_plugin t = {.abi = HOST_VIDEO_PLUGIN_ABI,
	                              .size = sizeof(t),
	                              .opts_size = sizeof(struct host_video_opts)};
	char why[DETAIL] = "";

	CHECK_EQ(check_table(&t, "p.so", why), 0);
	t.abi = HOST_VIDEO_PLUGIN_ABI + 1;
	CHECK_EQ(check_table(&t, "p.so", why), -ENOSYS);
	CHECK(strstr(why, "p.so: plugin ABI 3") != NULL);
	t.abi = HOST_VIDEO_PLUGIN_ABI;
	t.size = sizeof(t) - sizeof(void *); /* an older, shorter table */
	CHECK_EQ(check_table(&t, "p.so", why), -ENOSYS);
	/* the ABI number not bumped, but struct host_video_opts grew */
	t.size = sizeof(t);
	t.opts_size = sizeof(struct host_video_opts) - sizeof(int);
	CHECK_EQ(check_table(&t, "p.so", why), -ENOSYS);
	CHECK(strstr(why, "struct host_video_opts of") != NULL);
}

static void test_env_names_no_file(void)
{
	struct host_video_opts o = {.width = 640, .height = 480, .fps = 25, .gop = 25};
	struct host_video_enc *e = (struct host_video_enc *)&o; /* must come back NULL */
	struct host_video_src *s = (struct host_video_src *)&o;
	atomic_bool stop = false;
	char why[160] = "";

	setenv("RELAY_VIDEO_PLUGIN", "/nonexistent/relay-video.so", 1);
	CHECK_EQ(host_video_enc_new(&o, NULL, NULL, &e, why), -ENOSYS);
	CHECK(e == NULL);
	CHECK(strstr(why, "/nonexistent/relay-video.so: No such file or directory") != NULL);
	/* once for the process: a plugin put there later is not picked up, the reason stays */
	unsetenv("RELAY_VIDEO_PLUGIN");
	why[0] = '\0';
	CHECK_EQ(host_video_src_open("test", &o, &stop, &s, why), -ENOSYS);
	CHECK(s == NULL);
	CHECK(strstr(why, "/nonexistent/relay-video.so") != NULL);
}

int main(void)
{
	RUN(test_free_null_loads_nothing()); /* first: nothing has loaded yet */
	RUN(test_exe_dir());
	RUN(test_open_plugin());
	RUN(test_check_table());
	RUN(test_env_names_no_file());
	return harness_done();
}
