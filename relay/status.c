/*
 * relay/status: what operators see. The status report (GET /status and the reserved topic
 * "stats") lists every live connection with practable's fields plus traffic figures; /metrics
 * is the Prometheus text format (version 0.0.4). Nothing here holds a token or a secret: the
 * grant kept per connection has none.
 */
#define LOG_MODULE "status"
#include "relay/internal.h"
#include "relay/cluster.h"
#include "relay/turn.h"
#include "pkg/log/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* ---- rates ---- */

void relay_sample_rates(void)
{
	for (struct conn *c = relay_srv.conns; c; c = c->next) {
		struct rate_window *w = &c->rates;
		const struct hub_counters *k;

		if (!c->member)
			continue;
		k = hub_member_counters(c->member);
		w->tx_msgs[w->next] = k->tx_msgs;
		w->tx_bytes[w->next] = k->tx_bytes;
		w->rx_msgs[w->next] = k->rx_msgs;
		w->rx_bytes[w->next] = k->rx_bytes;
		w->next = (w->next + 1) % (RATE_WINDOW + 1);
		if (w->filled < RATE_WINDOW + 1)
			w->filled++;
	}
}

/* Per-second rate of the series @v over the samples held (newest minus oldest). */
static double rate_of(const struct rate_window *w, const uint64_t *v)
{
	unsigned newest = (w->next + RATE_WINDOW) % (RATE_WINDOW + 1);
	unsigned oldest = w->filled < RATE_WINDOW + 1 ? 0 : w->next;

	if (w->filled < 2)
		return 0;
	return (double)(v[newest] - v[oldest]) / (double)(w->filled - 1);
}

/* ---- the status report ---- */

static json_t *time_json(int64_t unix_s)
{
	char buf[32];
	struct tm tm;
	time_t t = (time_t)unix_s;

	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

static json_t *scopes_json(const char *scopes)
{
	json_t *a = json_array();
	const char *p = scopes;

	while (a && *p) {
		size_t n = strcspn(p, ",");

		json_array_append_new(a, json_stringn(p, n));
		p += n + (p[n] == ',');
	}
	return a;
}

/* One direction: practable's {last, fps, size} plus totals. @last_ns 0 means never. */
static json_t *direction_json(uint64_t msgs, uint64_t bytes, double msg_rate, double byte_rate,
                              int64_t last_ns, int64_t now_ns)
{
	double since = last_ns ? (double)(now_ns - last_ns) / 1e9 : -1;
	char last[32];

	if (since < 0)
		snprintf(last, sizeof(last), "never");
	else
		snprintf(last, sizeof(last), "%.3fs", since);
	return json_pack("{s:s, s:f, s:f, s:I, s:I, s:f, s:f}", "last", last, "fps", msg_rate,
	                 "size", msgs ? (double)bytes / (double)msgs : 0.0, "messages",
	                 (json_int_t)msgs, "bytes", (json_int_t)bytes, "bytes_per_s", byte_rate,
	                 "since_last_s", since);
}

static json_t *conn_json(const struct conn *c, int64_t now_ns, json_t *turn)
{
	json_t *turn_n = json_object_get(turn, c->grant.booking_id);
	const struct hub_counters *k = hub_member_counters(c->member);
	const struct rate_window *w = &c->rates;
	json_t *stats;

	/* tx: from the relay to this client; rx: from this client to the relay (as practable). */
	stats = json_pack("{s:o, s:o, s:I, s:I, s:I}", "tx",
	                  direction_json(k->tx_msgs, k->tx_bytes, rate_of(w, w->tx_msgs),
	                                 rate_of(w, w->tx_bytes), k->last_tx_ns, now_ns),
	                  "rx",
	                  direction_json(k->rx_msgs, k->rx_bytes, rate_of(w, w->rx_msgs),
	                                 rate_of(w, w->rx_bytes), k->last_rx_ns, now_ns),
	                  "dropped", (json_int_t)k->dropped, "refused", (json_int_t)k->refused,
	                  "queued", (json_int_t)hub_queued(c->member));
	json_t *o = json_pack(
	        "{s:s, s:b, s:b, s:o, s:o, s:o, s:s, s:o, s:s, s:s, s:s, s:o, s:I}", "topic",
	        c->grant.topic, "can_read", c->grant.can_read, "can_write", c->grant.can_write,
	        "connected", time_json(c->connected_at), "connected_at", time_json(c->connected_at),
	        "expires_at", time_json(c->grant.exp), "remote_addr", c->remote, "scopes",
	        scopes_json(c->grant.scopes), "user_agent", c->user_agent, "booking_id",
	        c->grant.booking_id, "id", c->tag, "stats", stats, "turn_allocations",
	        (json_int_t)(turn_n ? json_integer_value(turn_n) : 0));

	if (o && relay_cluster_on()) /* which instance of the cluster holds it */
		json_object_set_new(o, "instance", json_string(relay_cluster_instance()));
	return o;
}

/*
 * A /connect, /signal or /meet websocket: the fields every entry has, then the kind's own
 * (@extra, taken; channel.c, signal.c, meet.c).
 */
static json_t *kind_conn_json(const struct conn *c, json_t *extra)
{
	json_t *o;

	if (!extra)
		return NULL;
	o = json_pack("{s:s, s:b, s:b, s:o, s:o, s:o, s:s, s:o, s:s, s:s, s:s}", "topic",
	              c->grant.topic, "can_read", true, "can_write", true, "connected",
	              time_json(c->connected_at), "connected_at", time_json(c->connected_at),
	              "expires_at", time_json(c->grant.exp), "remote_addr", c->remote, "scopes",
	              scopes_json(c->grant.scopes), "user_agent", c->user_agent, "booking_id",
	              c->grant.booking_id, "id", c->tag);
	if (o)
		json_object_update(o, extra);
	json_decref(extra);
	return o;
}

/*
 * A booking's TURN allocations, an entry of their own (the report stays one array): a booking
 * with allocations and no websocket is seen too. tx: relayed to the client (from its peers); rx:
 * from the client (to its peers), as for the other entries.
 */
static json_t *turn_entry_json(const char *bid, json_t *b)
{
#define N(k) json_integer_value(json_object_get(b, k))
	json_t *o = json_pack("{s:s, s:s, s:I, s:{s:{s:I, s:I}, s:{s:I, s:I}}}", "kind", "turn",
	                      "booking_id", bid, "allocations", N("allocations"), "stats", "tx",
	                      "messages", N("from_peer_packets"), "bytes", N("from_peer_bytes"),
	                      "rx", "messages", N("to_peer_packets"), "bytes", N("to_peer_bytes"));
#undef N

	return o;
}

json_t *relay_status_json(void)
{
	json_t *a = json_array();
	json_t *turn = relay_turn_status_json(); /* allocations per booking */
	json_t *turn_b = relay_turn_bookings_json();
	int64_t now_ns = relay_mono_ns();
	const char *bid;
	json_t *b;

	for (struct conn *c = relay_srv.conns; a && c; c = c->next)
		if (c->member)
			json_array_append_new(a, conn_json(c, now_ns, turn));
		else if (c->closing)
			continue;
		else if (c->kind == &relay_kind_channel)
			json_array_append_new(a, kind_conn_json(c, relay_channel_json(c)));
		else if (c->kind == &relay_kind_signal)
			json_array_append_new(a, kind_conn_json(c, relay_signal_json(c)));
		else if (c->kind == &relay_kind_meet)
			json_array_append_new(a, kind_conn_json(c, relay_meet_json(c)));
	json_object_foreach(turn_b, bid, b) if (a)
	        json_array_append_new(a, turn_entry_json(bid, b));
	json_decref(turn_b);
	json_decref(turn);
	return a;
}

/*
 * Building the report costs time in proportion to the connections (about 30 us each): it is
 * only built when someone reads the stats topic.
 */
void relay_publish_stats(void)
{
	json_t *a;
	char *s;
	struct hub_msg *m;

	if (!hub_has_readers(relay_srv.hub, STATS_TOPIC))
		return;
	a = relay_status_json();
	s = a ? json_dumps(a, JSON_COMPACT) : NULL;
	m = s ? hub_msg_new(strlen(s), LWS_PRE) : NULL;

	if (m) {
		memcpy(m->data, s, m->len);
		m->t_in_ns = relay_mono_ns();
		hub_publish_system(relay_srv.hub, STATS_TOPIC, m);
	}
	free(s);
	json_decref(a);
}

/* ---- Prometheus ---- */

static void metric(FILE *f, const char *name, const char *type, const char *help, double v)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static void process_metrics(FILE *f)
{
	struct rusage ru;
	long rss_pages = 0;
	FILE *st = fopen("/proc/self/statm", "r");

	if (st && fscanf(st, "%*d %ld", &rss_pages) != 1)
		rss_pages = 0;
	if (st)
		fclose(st);
	getrusage(RUSAGE_SELF, &ru);
	metric(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
	       (double)rss_pages * (double)sysconf(_SC_PAGESIZE));
	metric(f, "process_cpu_seconds_total", "counter",
	       "User and system CPU time spent in seconds.",
	       (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	metric(f, "process_start_time_seconds", "gauge",
	       "Start time of the process since the epoch.", (double)relay_srv.m.started_s);
}

static void labelled(FILE *f, const char *name, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
}

static void access_metrics(FILE *f, const struct metrics *m)
{
	static const char *const redeem_names[REDEEM_N] = {"ok", "unknown", "other_topic", "denied",
	                                                   "full"};

	labelled(f, "relay_access_requests_total",
	         "Access calls (POST /session/TOPIC) by HTTP status.");
	for (int st = 100; st < 600; st++)
		if (m->access[st])
			fprintf(f, "relay_access_requests_total{status=\"%d\"} %llu\n", st,
			        (unsigned long long)m->access[st]);
	labelled(f, "relay_code_redemptions_total",
	         "Websocket upgrades with an access code, by outcome.");
	for (int i = 0; i < REDEEM_N; i++)
		fprintf(f, "relay_code_redemptions_total{result=\"%s\"} %llu\n", redeem_names[i],
		        (unsigned long long)m->redeem[i]);
}

/* Connections not yet authenticated (relay/pending.c) and the memory budget (ws.c). */
static void memory_metrics(FILE *f, const struct server *s)
{
	metric(f, "relay_connections_pending", "gauge",
	       "Connections accepted whose first request head has not arrived whole.",
	       (double)relay_pending_count());
	metric(f, "relay_memory_budget_bytes", "gauge",
	       "Budget for messages being received or queued, and TURN's TCP/TLS output and "
	       "unfinished input frames (--max-memory).",
	       (double)s->mem_budget);
	metric(f, "relay_memory_receiving_bytes", "gauge",
	       "Reassembly buffers of messages being received.", (double)s->rx_held);
	metric(f, "relay_memory_queued_bytes", "gauge",
	       "Bytes queued for readers (as last counted, at most a second ago).",
	       (double)s->queue_held);
	labelled(f, "relay_memory_budget_closures_total",
	         "Connections closed to keep within the memory budget, by what they held.");
	fprintf(f, "relay_memory_budget_closures_total{held=\"receiving\"} %llu\n",
	        (unsigned long long)s->m.budget_closed[0]);
	fprintf(f, "relay_memory_budget_closures_total{held=\"queued\"} %llu\n",
	        (unsigned long long)s->m.budget_closed[1]);
}

char *relay_metrics_text(void)
{
	const struct server *s = &relay_srv;
	const struct hub_counters *t = hub_totals(s->hub);
	struct {
		char *p;
		size_t len;
		FILE *f;
	} out = {0};

	out.f = open_memstream(&out.p, &out.len);
	if (!out.f)
		return NULL;
	metric(out.f, "relay_connections", "gauge", "Websocket connections open now.",
	       (double)s->nconns);
	metric(out.f, "relay_topics", "gauge", "Topics with at least one connection.",
	       (double)hub_topic_count(s->hub));
	metric(out.f, "relay_codes_pending", "gauge", "Access codes issued and not yet redeemed.",
	       (double)codes_count(s->codes));
	metric(out.f, "relay_connections_total", "counter", "Websocket connections established.",
	       (double)s->m.connections_total);
	metric(out.f, "relay_messages_received_total", "counter", "Messages received from writers.",
	       (double)t->rx_msgs);
	metric(out.f, "relay_bytes_received_total", "counter",
	       "Payload bytes received from writers.", (double)t->rx_bytes);
	metric(out.f, "relay_messages_delivered_total", "counter", "Messages written to readers.",
	       (double)t->tx_msgs);
	metric(out.f, "relay_bytes_delivered_total", "counter", "Payload bytes written to readers.",
	       (double)t->tx_bytes);
	metric(out.f, "relay_messages_dropped_total", "counter",
	       "Messages dropped for readers whose queue was full or that closed.",
	       (double)t->dropped);
	metric(out.f, "relay_messages_refused_total", "counter",
	       "Messages from connections without write scope.", (double)t->refused);
	metric(out.f, "relay_bookings_denied_total", "counter",
	       "Bookings denied through /bids/deny.", (double)s->m.bookings_denied);
	access_metrics(out.f, &s->m);
	relay_channel_metrics(out.f);
	relay_cluster_metrics(out.f);
	relay_turn_metrics(out.f);
	memory_metrics(out.f, s);
	process_metrics(out.f);
	fclose(out.f);
	return out.p;
}
