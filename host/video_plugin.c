/*
 * host/video_plugin: the table relay-video.so exports (host/video_plugin.h). Built only into
 * the plugin, whose objects are compiled with -fvisibility=hidden: this is its one visible
 * symbol, so its copies of host/video.h's functions never interpose on relay's loader.
 */
#define LOG_MODULE "video"
#include "host/video_plugin.h"

__attribute__((visibility("default"))) const struct host_video_plugin relay_video_plugin = {
        .abi = HOST_VIDEO_PLUGIN_ABI,
        .size = sizeof(struct host_video_plugin),
        .opts_size = sizeof(struct host_video_opts),
        .enc_new = host_video_enc_new,
        .enc_test_frame = host_video_enc_test_frame,
        .enc_free = host_video_enc_free,
        .src_open = host_video_src_open,
        .src_is_paced = host_video_src_is_paced,
        .src_encode_next = host_video_src_encode_next,
        .src_free = host_video_src_free,
};
