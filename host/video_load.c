/*
 * host/video_load: host/video.h's encoder and source functions as relay links them: each
 * forwards to the video plugin (host/video_plugin.h), loaded the first time a stream opens an
 * encoder. relay serve, relay file and a relay host without video never map libav.
 *
 * Where the plugin is looked for: $RELAY_VIDEO_PLUGIN alone when it is set (a path chosen on
 * purpose is not quietly replaced by another file; read with secure_getenv(), so a relay run
 * with file capabilities or set-id ignores it; a value without a '/' is refused, since dlopen()
 * would search the library path for that name instead of opening the file checked); otherwise relay-video.so beside the running
 * executable (the build tree, a relocatable install), then in RELAY_PLUGIN_DIR (the Makefile's
 * $(PREFIX)/lib/relay, where make install puts it). The first file that exists is the one used:
 * one that fails to load is reported, not skipped in favour of an older one further on.
 * When there is none: -ENOSYS with the reason, which a stream reports before running without
 * its video (host/stream.c).
 */
#define LOG_MODULE "video"
#include "host/video.h"
#include "host/video_plugin.h"
#include "pkg/log/log.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef RELAY_PLUGIN_DIR
#define RELAY_PLUGIN_DIR "/usr/local/lib/relay"
#endif

#define WHY    160 /* host/video.h's why[160]: what a stream shows */
#define DETAIL 512 /* what the log says: whole paths */

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const struct host_video_plugin *plugin; /* set at most once, in load() */
static char load_why[WHY];                     /* when it was not: why */

/* The directory of the running executable, e.g. "build/release"'s absolute path. */
static bool exe_dir(char *dir, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", dir, size - 1);
	char *slash;

	if (n <= 0 || (size_t)n >= size - 1)
		return false;
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	if (!slash)
		return false;
	*slash = '\0'; /* "/relay" leaves "": the path below becomes "/relay-video.so" */
	return true;
}

/* 0 when @p is a table this relay can call; -ENOSYS with @why when it is from another build. */
static int check_table(const struct host_video_plugin *p, const char *path, char why[DETAIL])
{
	if (p->abi != HOST_VIDEO_PLUGIN_ABI || p->size < sizeof(*p)) {
		snprintf(
		        why, DETAIL,
		        "%s: plugin ABI %u (a table of %u bytes), this relay needs %u: from another "
		        "build",
		        path, p->abi, p->size, HOST_VIDEO_PLUGIN_ABI);
		return -ENOSYS;
	}
	/* the same ABI number with another layout of what crosses: a number nobody bumped */
	if (p->opts_size != sizeof(struct host_video_opts)) {
		snprintf(why, DETAIL,
		         "%s: plugin built with a struct host_video_opts of %u bytes, this relay's "
		         "is %zu: from another build",
		         path, p->opts_size, sizeof(struct host_video_opts));
		return -ENOSYS;
	}
	return 0;
}

/* Load @path and check its table. 0; -ENOENT when there is no such file (the caller tries the
 * next place); -ENOSYS with @why when the file is there but cannot be used. */
static int open_plugin(const char *path, char why[DETAIL])
{
	const struct host_video_plugin *p;
	void *lib;

	if (!strchr(path, '/')) {
		snprintf(
		        why, DETAIL,
		        "'%s' is not a path (no '/'), and dlopen() would look for it in the library "
		        "path: name the file, e.g. ./%s",
		        path, path);
		return -ENOSYS;
	}
	if (access(path, F_OK) != 0) {
		snprintf(why, DETAIL, "%s: %s", path, strerror(errno));
		return -ENOENT;
	}
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		/* dlerror() names the file, or the library it lacks */
		snprintf(why, DETAIL, "%s", dlerror());
		return -ENOSYS;
	}
	p = dlsym(lib, HOST_VIDEO_PLUGIN_SYMBOL);
	if (!p) {
		snprintf(why, DETAIL, "%s: no symbol %s: not a relay video plugin", path,
		         HOST_VIDEO_PLUGIN_SYMBOL);
	} else if (!check_table(p, path, why)) {
		plugin = p; /* stays loaded for the process's life */
		return 0;
	}
	dlclose(lib);
	return -ENOSYS;
}

static void load(void)
{
	const char *env = secure_getenv("RELAY_VIDEO_PLUGIN");
	char dir[PATH_MAX], here[PATH_MAX + sizeof(HOST_VIDEO_PLUGIN_FILE) + 1], why[DETAIL];
	const char *tried[2];
	size_t n = 0;
	int ret = -ENOENT;

	if (env && *env) {
		tried[n++] = env;
		ret = open_plugin(env, why);
	} else {
		if (exe_dir(dir, sizeof(dir))) {
			snprintf(here, sizeof(here), "%s/" HOST_VIDEO_PLUGIN_FILE, dir);
			tried[n++] = here;
			ret = open_plugin(here, why);
		}
		if (ret == -ENOENT) {
			tried[n++] = RELAY_PLUGIN_DIR "/" HOST_VIDEO_PLUGIN_FILE;
			ret = open_plugin(tried[n - 1], why);
		}
	}
	if (!ret) {
		log_info("video plugin %s loaded", tried[n - 1]);
		return;
	}
	if (ret == -ENOENT && !(env && *env)) /* the list, not the last path's ENOENT */
		snprintf(why, sizeof(why),
		         "tried %s%s%s, none there (RELAY_VIDEO_PLUGIN may name it)", tried[0],
		         n > 1 ? " and " : "", n > 1 ? tried[1] : "");
	log_err("no video: cannot load the video plugin%s: %s",
	        env && *env ? " (RELAY_VIDEO_PLUGIN)" : "", why);
	snprintf(load_why, WHY, "no video plugin: %.140s", why);
}

/* The plugin, loading it on the first call (stream threads call this too); NULL and @why. */
static const struct host_video_plugin *loaded(char why[WHY])
{
	pthread_once(&load_once, load);
	if (!plugin && why)
		snprintf(why, WHY, "%s", load_why);
	return plugin;
}

int host_video_enc_new(const struct host_video_opts *o, host_video_emit_fn emit, void *arg,
                       struct host_video_enc **out, char why[160])
{
	const struct host_video_plugin *p = loaded(why);

	*out = NULL;
	return p ? p->enc_new(o, emit, arg, out, why) : -ENOSYS;
}

/* An encoder or a source exists only once the plugin is loaded: these find it loaded. */
int host_video_enc_test_frame(struct host_video_enc *e, int64_t n, int64_t time_ms)
{
	return e ? loaded(NULL)->enc_test_frame(e, n, time_ms) : -EINVAL;
}

void host_video_enc_free(struct host_video_enc *e)
{
	if (e) /* a stream without video frees its NULL encoder: no reason to load anything */
		loaded(NULL)->enc_free(e);
}

int host_video_src_open(const char *spec, const struct host_video_opts *o, const atomic_bool *stop,
                        struct host_video_src **out, char why[160])
{
	const struct host_video_plugin *p = loaded(why);

	*out = NULL;
	return p ? p->src_open(spec, o, stop, out, why) : -ENOSYS;
}

bool host_video_src_is_paced(const struct host_video_src *s)
{
	return loaded(NULL)->src_is_paced(s);
}

int host_video_src_encode_next(struct host_video_src *s, struct host_video_enc *e, int64_t n,
                               int64_t time_ms, char why[160])
{
	return loaded(NULL)->src_encode_next(s, e, n, time_ms, why);
}

void host_video_src_free(struct host_video_src *s)
{
	if (s)
		loaded(NULL)->src_free(s);
}
