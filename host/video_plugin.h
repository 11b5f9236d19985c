/*
 * host/video_plugin: the interface between relay and its video plugin, relay-video.so
 * (host/video.c and what it needs, linked with libavcodec, libavformat, libavutil and
 * libswscale). relay links none of libav: those libraries map about 130 shared objects and
 * 22 MB of resident memory into every process, relay serve included. host/video_load.c
 * dlopen()s the plugin the first time a stream needs video and calls it through the one
 * symbol below, a table of host/video.h's encoder and source functions.
 *
 * Change HOST_VIDEO_PLUGIN_ABI whenever this table, host/video.h's structs or the meaning of
 * a call changes: a plugin of another ABI is refused, not called. The table also carries the
 * size of each struct passed across (struct host_video_opts: the others are opaque), which
 * host/video_load.c compares too, so that a struct changed without the number bumped is
 * still caught.
 */
#ifndef RELAY_HOST_VIDEO_PLUGIN_H
#define RELAY_HOST_VIDEO_PLUGIN_H

#include "host/video.h"

#include <stdint.h>

#define HOST_VIDEO_PLUGIN_ABI    2
#define HOST_VIDEO_PLUGIN_SYMBOL "relay_video_plugin"
#define HOST_VIDEO_PLUGIN_FILE   "relay-video.so"

struct host_video_plugin {
	uint32_t abi;       /* HOST_VIDEO_PLUGIN_ABI of the build that made the plugin */
	uint32_t size;      /* sizeof(struct host_video_plugin) there */
	uint32_t opts_size; /* sizeof(struct host_video_opts) there */
	int (*enc_new)(const struct host_video_opts *o, host_video_emit_fn emit, void *arg,
	               struct host_video_enc **out, char why[160]);
	int (*enc_test_frame)(struct host_video_enc *e, int64_t n, int64_t time_ms);
	void (*enc_free)(struct host_video_enc *e);
	int (*src_open)(const char *spec, const struct host_video_opts *o, const atomic_bool *stop,
	                struct host_video_src **out, char why[160]);
	bool (*src_is_paced)(const struct host_video_src *s);
	int (*src_encode_next)(struct host_video_src *s, struct host_video_enc *e, int64_t n,
	                       int64_t time_ms, char why[160]);
	void (*src_free)(struct host_video_src *s);
};

/* Defined by the plugin only (host/video_plugin.c); relay finds it with dlsym(). */
extern const struct host_video_plugin relay_video_plugin;

#endif
