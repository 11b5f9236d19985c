/*
 * host: `relay host`'s main thread. It starts the streams (host/stream: one from the command
 * line's session, one per entry of the config file's "streams", one per rule), runs the local
 * ingest server and its REST API (host/ingest) when wanted, and waits for SIGINT/SIGTERM.
 *
 * Its loop is libuv's, shared with the ingest server (whose handles are its own): signals
 * (uv_signal_t: SIGINT and SIGTERM stop, SIGHUP reopens the log), a one-second uv_timer_t for
 * the API's rates and for freeing stopped streams, and a uv_async_t that the streams' threads
 * send when one gives up or ends. The streams' threads block these signals (host/stream.c), so
 * they reach this loop and never interrupt a stream's blocking step.
 *
 * A rule is practable's {id, stream, destination, token}: the local feed named "stream" goes to
 * the access URL "destination" with that token. Rules come from the config file or the API, and
 * each becomes a stream whose source is the feed.
 */
#define LOG_MODULE "host"
#include "host/host.h"
#include "host/ingest.h"
#include "host/stream.h"
#include "pkg/clock/clock.h"
#include "pkg/log/log.h"
#include "pkg/wsframe/wsframe.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#define STREAMS_MAX    64
#define DEFAULT_LISTEN "127.0.0.1:8888"
#define RULE_FIELD_MAX 1024

struct entry {
	struct host_stream *s;
	bool fatal; /* the command line's stream: its refused token ends the host */
	bool rule;
	char id[64];           /* rules: their id */
	char destination[512]; /* rules: the access URL */
	/* rates over the last second, for the API */
	uint64_t last_msgs, last_bytes;
	double msgs_per_s, bytes_per_s;
};

struct host {
	const struct host_opts *o;
	struct entry e[STREAMS_MAX];
	size_t n;
	struct host_stream *stopping[STREAMS_MAX]; /* asked to stop; freed once their thread ends */
	size_t n_stopping;
	struct host_ingest *ing;
	uv_loop_t loop;
	bool loop_ready;
	uv_signal_t sig[3]; /* SIGINT, SIGTERM, SIGHUP */
	uv_timer_t tick;
	uv_async_t done; /* a stream gave up or ended; sent from its thread */
	int ret;         /* the exit status once the loop stops */
	size_t checked;  /* --check: streams and rules checked */
};

/* ---- streams and rules ---- */

/* What the relay says on a stream forwarding a feed goes back to that feed's websockets. */
static void from_relay(void *arg, const char *feed_name, uint8_t opcode, const uint8_t *p, size_t n)
{
	host_ingest_from_relay(arg, feed_name, opcode, p, n);
}

static int add_stream(struct host *h, const struct host_opts *so, const char *rule_id,
                      char why[HOST_STREAM_WHY])
{
	struct entry *e;
	int ret;

	if (h->o->check) {
		h->checked++;
		return host_stream_check(so, why);
	}
	if (h->n == STREAMS_MAX) {
		snprintf(why, HOST_STREAM_WHY, "too many streams (at most %d)", STREAMS_MAX);
		return -ENOSPC;
	}
	e = &h->e[h->n];
	memset(e, 0, sizeof(*e));
	ret = host_stream_start(so, h->ing ? from_relay : NULL, h->ing, &h->done, &e->s, why);
	if (ret)
		return ret;
	if (rule_id) {
		e->rule = true;
		snprintf(e->id, sizeof(e->id), "%s", rule_id);
		snprintf(e->destination, sizeof(e->destination), "%s", so->session);
	}
	h->n++;
	return 0;
}

/* Stop a stream without waiting for it (an API call must not wait for a connection step). */
static void remove_entry(struct host *h, size_t i)
{
	struct host_stream *s = h->e[i].s;

	h->e[i] = h->e[--h->n];
	host_stream_request_stop(s);
	if (h->n_stopping == STREAMS_MAX)
		host_stream_stop(s);
	else
		h->stopping[h->n_stopping++] = s;
}

/* Free the streams whose threads have ended. */
static void reap(struct host *h)
{
	for (size_t i = h->n_stopping; i-- > 0;) {
		if (host_stream_finished(h->stopping[i])) {
			host_stream_stop(h->stopping[i]);
			h->stopping[i] = h->stopping[--h->n_stopping];
		}
	}
}

static struct entry *find_rule(struct host *h, const char *id, size_t *index)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->e[i].rule && strcmp(h->e[i].id, id) == 0) {
			*index = i;
			return &h->e[i];
		}
	}
	return NULL;
}

static const char *string_field(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && *s && strlen(s) < RULE_FIELD_MAX ? s : NULL;
}

/* A rule {id, stream, destination, token} (token_file or secret_file instead of token are
 * accepted too) as a stream's settings over the top-level ones. */
static int add_rule(struct host *h, json_t *rule, char why[HOST_STREAM_WHY])
{
	const char *id = string_field(rule, "id"), *feed = string_field(rule, "stream");
	const char *dest = string_field(rule, "destination"), *token = string_field(rule, "token");
	const char *token_file = string_field(rule, "token_file");
	const char *secret_file = string_field(rule, "secret_file");
	struct host_opts so;
	bool has_old;
	size_t old;
	int ret;

	if (!json_is_object(rule) || !id || !feed || !dest ||
	    !(token || token_file || secret_file) || strlen(id) >= sizeof(h->e[0].id)) {
		snprintf(why, HOST_STREAM_WHY,
		         "a rule needs \"id\" (under 64 characters), \"stream\", "
		         "\"destination\" and \"token\" (strings)");
		return -EINVAL;
	}
	ret = cfg_copy(&host_opts_table, &so, h->o, sizeof(so));
	if (!ret) {
		free(so.name);
		free(so.feed);
		free(so.session);
		free(so.token_file);
		free(so.secret_file);
		free(so.video);
		free(so.data);
		cfg_free_secret(so.token);
		so.name = strdup(id);
		so.feed = strdup(feed);
		so.session = strdup(dest);
		so.token = token ? strdup(token) : NULL;
		so.token_file = token_file ? strdup(token_file) : NULL;
		so.secret_file = secret_file ? strdup(secret_file) : NULL;
		so.video = so.data = NULL;
		if (!so.name || !so.feed || !so.session || (token && !so.token) ||
		    (token_file && !so.token_file) || (secret_file && !so.secret_file))
			ret = -ENOMEM;
	}
	if (ret) {
		snprintf(why, HOST_STREAM_WHY, "rule '%s': out of memory", id);
	} else {
		has_old = find_rule(h, id, &old) != NULL;
		ret = add_stream(h, &so, id, why);
		/* as practable: a rule with the same id replaces it, once the new one has started
		 */
		if (!ret && has_old && !h->o->check)
			remove_entry(h, old);
	}
	cfg_release(&host_opts_table, &so);
	if (!ret && !h->o->check)
		log_notice("rule '%s': feed '%s' to %s", id, feed, dest);
	return ret;
}

/* A stream object of the config file over the top-level settings. */
static int add_config_stream(struct host *h, json_t *obj, size_t index, char why[HOST_STREAM_WHY])
{
	static const char *const top_only[] = {"streams",   "rules",      "listen",  "config",
	                                       "log_level", "log_format", "log_file"};
	char source[64], err[CFG_ERR_MAX];
	struct host_opts so;
	int ret;

	snprintf(source, sizeof(source), "streams[%zu]", index);
	for (size_t i = 0; i < sizeof(top_only) / sizeof(top_only[0]); i++) {
		if (json_object_get(obj, top_only[i])) {
			snprintf(why, HOST_STREAM_WHY, "%s: '%s' belongs at the top level", source,
			         top_only[i]);
			return -EINVAL;
		}
	}
	ret = cfg_copy(&host_opts_table, &so, h->o, sizeof(so));
	free(so.name); /* a stream is named by its own object, or its topic */
	so.name = NULL;
	if (!ret && cfg_apply_json(&host_opts_table, &so, obj, source, err)) {
		snprintf(why, HOST_STREAM_WHY, "%.250s", err);
		ret = -EINVAL;
	}
	if (!ret)
		ret = add_stream(h, &so, NULL, why);
	cfg_release(&host_opts_table, &so);
	return ret;
}

static bool has_feeds(const struct host_opts *o)
{
	json_t *v;
	size_t i;

	if (o->feed && *o->feed)
		return true;
	json_array_foreach(o->streams, i, v)
	{
		if (string_field(v, "feed"))
			return true;
	}
	return false;
}

/* ---- the REST API ---- */

static json_t *rule_json(const struct entry *e)
{
	return json_pack("{s:s, s:s, s:s}", "id", e->id, "stream", host_stream_feed(e->s),
	                 "destination", e->destination);
}

static json_t *stream_json(const struct entry *e)
{
	struct host_stream_stats st;

	host_stream_stats(e->s, &st);
	return json_pack(
	        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
	        "s:I, s:I, s:f, s:f}",
	        "name", st.name, "topic", st.topic, "feed", st.feed, "relay", st.relay, "device",
	        st.device, "video", st.video, "last_error", st.last_error, "messages_out",
	        (json_int_t)st.msgs_out, "bytes_out", (json_int_t)st.bytes_out, "messages_in",
	        (json_int_t)st.msgs_in, "bytes_in", (json_int_t)st.bytes_in, "frames_sent",
	        (json_int_t)st.frames_sent, "frames_dropped", (json_int_t)st.frames_dropped,
	        "feed_dropped", (json_int_t)st.feed_dropped, "renewals", (json_int_t)st.renewals,
	        "failed_attempts", (json_int_t)st.failed_attempts, "messages_per_s", e->msgs_per_s,
	        "bytes_per_s", e->bytes_per_s);
}

static json_t *error_json(const char *code, const char *message)
{
	return json_pack("{s:s, s:s}", "code", code, "message", message);
}

static int list(struct host *h, bool rules, json_t **out)
{
	json_t *a = json_array();

	for (size_t i = 0; i < h->n; i++)
		if (!rules || h->e[i].rule)
			json_array_append_new(a,
			                      rules ? rule_json(&h->e[i]) : stream_json(&h->e[i]));
	*out = json_pack("{s:o}", rules ? "rules" : "streams", a);
	return 200;
}

/* The parsed body is about to be freed: wipe the token in it first (jansson would not). */
static void wipe_token(json_t *rule)
{
	char *t = (char *)json_string_value(json_object_get(rule, "token"));

	if (t)
		OPENSSL_cleanse(t, strlen(t));
}

static int post_rule(struct host *h, const char *body, json_t **out)
{
	json_error_t jerr;
	json_t *rule = json_loads(body, 0, &jerr);
	char why[HOST_STREAM_WHY];
	size_t i;
	int ret;

	if (!rule) {
		*out = error_json("bad-json", jerr.text);
		return 400;
	}
	ret = add_rule(h, rule, why);
	wipe_token(rule);
	if (ret) {
		json_decref(rule);
		*out = error_json(ret == -ENOSPC ? "too-many" : "bad-rule", why);
		return ret == -ENOSPC ? 409 : 400;
	}
	*out = rule_json(find_rule(h, json_string_value(json_object_get(rule, "id")), &i));
	json_decref(rule);
	return 201;
}

static int delete_rules(struct host *h, const char *id, json_t **out)
{
	size_t i;
	bool all = !id || strcmp(id, "all") == 0, found = false;

	for (i = h->n; i-- > 0;) {
		if (h->e[i].rule && (all || strcmp(h->e[i].id, id) == 0)) {
			log_notice("rule '%s' deleted", h->e[i].id);
			remove_entry(h, i);
			found = true;
		}
	}
	if (!found && !all) {
		*out = error_json("not-found", "no rule with that id");
		return 404;
	}
	return 204;
}

/*
 * /api/rules and practable's /api/destinations:
 *   GET  /api/rules | /api/destinations[/all]       the rules (tokens are never shown)
 *   POST /api/rules | /api/destinations             add or replace {id, stream, destination, token}
 *   DELETE /api/rules[/ID] | /api/destinations/ID|all
 *   GET  /api/streams                               every stream's state, counters and rates
 */
static int api(void *arg, const char *method, const char *path, const char *body, json_t **out)
{
	struct host *h = arg;
	const char *rest = NULL;
	bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
	bool del = strcmp(method, "DELETE") == 0;

	if (strncmp(path, "/api/rules", 10) == 0)
		rest = path + 10;
	else if (strncmp(path, "/api/destinations", 17) == 0)
		rest = path + 17;
	if (strcmp(path, "/api/streams") == 0 || strcmp(path, "/api/streams/all") == 0) {
		if (get)
			return list(h, false, out);
	} else if (rest && (!*rest || strcmp(rest, "/all") == 0 || strcmp(rest, "/") == 0)) {
		if (get)
			return list(h, true, out);
		if (post && !*rest)
			return post_rule(h, body, out);
		if (del)
			return delete_rules(h, NULL, out);
	} else if (rest && rest[0] == '/' && !strchr(rest + 1, '/')) {
		if (del)
			return delete_rules(h, rest + 1, out);
	} else {
		*out = error_json("not-found", "no such API path");
		return 404;
	}
	*out = error_json("bad-method", "method not allowed here");
	return 405;
}

/* A message from a local client for feed @name goes to every stream forwarding it. */
static size_t feed(void *arg, const char *name, uint8_t opcode, const uint8_t *p, size_t n)
{
	struct host *h = arg;
	size_t taken = 0;

	for (size_t i = 0; i < h->n; i++) {
		if (strcmp(host_stream_feed(h->e[i].s), name) == 0) {
			host_stream_push(h->e[i].s, opcode, p, n);
			taken++;
		}
	}
	return taken;
}

/* ---- the main loop ---- */

static void on_tick(uv_timer_t *t)
{
	struct host *h = t->data;

	reap(h);
	for (size_t i = 0; i < h->n; i++) {
		struct entry *e = &h->e[i];
		struct host_stream_stats st;

		host_stream_stats(e->s, &st);
		e->msgs_per_s = (double)(st.msgs_out - e->last_msgs);
		e->bytes_per_s = (double)(st.bytes_out - e->last_bytes);
		e->last_msgs = st.msgs_out;
		e->last_bytes = st.bytes_out;
	}
}

/* A stream gave up or ended: free the ended ones; a refused command-line stream ends the host
 * (exit 1). */
static void on_done(uv_async_t *a)
{
	struct host *h = a->data;

	reap(h);
	for (size_t i = 0; i < h->n; i++) {
		if (h->e[i].fatal && host_stream_failed(h->e[i].s)) {
			h->ret = 1;
			uv_stop(&h->loop);
		}
	}
}

/* SIGHUP reopens the log file (logrotate); SIGINT and SIGTERM stop the host (exit 0). */
static void on_signal(uv_signal_t *sig, int signum)
{
	struct host *h = sig->data;

	if (signum != SIGHUP) {
		h->ret = 0;
		uv_stop(&h->loop);
		return;
	}
	log_request_reopen();
	log_notice("SIGHUP: log reopened"); /* now, not at the next event: the old file is let go */
}

static int setup(struct host *h, char why[HOST_STREAM_WHY])
{
	static const int signums[] = {SIGINT, SIGTERM, SIGHUP};
	int ret = uv_loop_init(&h->loop);

	signal(SIGPIPE, SIG_IGN);
	h->loop_ready = !ret;
	for (size_t i = 0; !ret && i < 3; i++) {
		ret = uv_signal_init(&h->loop, &h->sig[i]);
		h->sig[i].data = h;
		ret = ret ? ret : uv_signal_start(&h->sig[i], on_signal, signums[i]);
	}
	ret = ret ? ret : uv_timer_init(&h->loop, &h->tick);
	h->tick.data = h;
	ret = ret ? ret : uv_timer_start(&h->tick, on_tick, 1000, 1000);
	ret = ret ? ret : uv_async_init(&h->loop, &h->done, on_done);
	h->done.data = h;
	if (ret) {
		snprintf(why, HOST_STREAM_WHY, "cannot set up the event loop: %s",
		         uv_strerror(ret));
		return -EIO;
	}
	return 0;
}

static int start_ingest(struct host *h, char why[HOST_STREAM_WHY])
{
	const struct host_opts *o = h->o;
	struct host_ingest_hooks hooks = {h, feed, api};
	int ret;
	const char *addr = o->listen && *o->listen ? o->listen : NULL;

	if (addr && strcmp(addr, "none") == 0)
		return 0;
	if (!addr && ((o->config && *o->config) || has_feeds(o) || json_array_size(o->rules)))
		addr = DEFAULT_LISTEN;
	if (!addr)
		return 0;
	if (o->check)
		return host_ingest_check_listen(addr, why);
	ret = host_ingest_new(&h->loop, addr, &hooks, &h->ing, why);
	if (ret)
		return ret;
	log_notice("ingest server listening on %s (port %d): POST /ts/NAME, websockets /ws/NAME, "
	           "API /api/rules and /api/streams",
	           addr, host_ingest_port(h->ing));
	return 0;
}

/* Streams from the command line, the config file and its rules. */
static int start_streams(struct host *h, char why[HOST_STREAM_WHY])
{
	const struct host_opts *o = h->o;
	json_t *v;
	size_t i;

	if (o->streams && !json_is_array(o->streams)) {
		snprintf(why, HOST_STREAM_WHY, "\"streams\" must be an array of objects");
		return -EINVAL;
	}
	if (o->rules && !json_is_array(o->rules)) {
		snprintf(why, HOST_STREAM_WHY, "\"rules\" must be an array of objects");
		return -EINVAL;
	}
	if (o->session && *o->session) {
		if (add_stream(h, o, NULL, why))
			return -EINVAL;
		/* alone on the command line, a refused token ends the host (exit 1) */
		h->e[0].fatal = !o->check && !(o->config && *o->config);
	}
	json_array_foreach(o->streams, i, v)
	{
		if (add_config_stream(h, v, i, why))
			return -EINVAL;
	}
	json_array_foreach(o->rules, i, v)
	{
		char rwhy[HOST_STREAM_WHY];

		if (add_rule(h, v, rwhy)) {
			snprintf(why, HOST_STREAM_WHY, "rules[%zu]: %.100s", i, rwhy);
			return -EINVAL;
		}
	}
	if (!h->n && !h->ing && !h->checked) {
		snprintf(
		        why, HOST_STREAM_WHY,
		        "nothing to do: give --session with --video, --data, --feed or --connect, or "
		        "a --config file with streams or rules");
		return -EINVAL;
	}
	return 0;
}

static void close_one(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void teardown(struct host *h)
{
	/* ask every stream first, so that their connection steps end together */
	while (h->n)
		remove_entry(h, h->n - 1);
	while (h->n_stopping)
		host_stream_stop(h->stopping[--h->n_stopping]);
	host_ingest_free(h->ing);
	if (h->loop_ready) {
		int ret;

		/* every handle, then the loop until their close callbacks have run */
		uv_walk(&h->loop, close_one, NULL);
		uv_run(&h->loop, UV_RUN_DEFAULT);
		ret = uv_loop_close(&h->loop);
		if (ret)
			log_err("the main event loop did not close: %s", uv_strerror(ret));
	}
}

int host_run(const struct host_opts *o)
{
	struct host h = {.o = o};
	char why[HOST_STREAM_WHY] = "";
	int ret;

	ret = setup(&h, why) ? 1 : 0;
	if (!ret && (ret = start_ingest(&h, why)) != 0)
		ret = ret == -EINVAL ? 2 : 1; /* a bad or taken listen address, or no resources */
	if (!ret && start_streams(&h, why))
		ret = 2;
	if (!ret && o->check) {
		printf("relay host: settings good: %zu streams and rules\n", h.checked);
	} else if (!ret) {
		uv_run(&h.loop, UV_RUN_DEFAULT); /* until a signal or a refused stream stops it */
		ret = h.ret;
		log_notice("stopping");
	} else {
		fprintf(stderr, "relay host: %s\n", why);
	}
	teardown(&h);
	return ret;
}
