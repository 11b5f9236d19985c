/*
 * file/bench: the load generator behind `relay file bench` and `make bench`.
 *
 * Every message carries, in its first 20 bytes, the writer's sequence number (u64), the send
 * time (u64 CLOCK_MONOTONIC ns) and the writer id (u32), all little-endian; the rest is filler.
 * Readers check order per writer (a gap counts as drops, a step back as an error) and put the
 * latency in a 1 us histogram. Writers frame messages themselves, many per send(), masked with
 * an all-zero key (RFC 6455 requires a mask, not a secret one, and servers cannot tell).
 * Connections are joined one after another (before any load starts) with the asynchronous client
 * on the same libuv loop, which hands each open socket over (wsc_uv_detach()); then the loop
 * drives them all: each socket is a uv_poll_t, read and written by this file with its own framer
 * (a uv_tcp_t would add a copy and a write request per send). A timerfd, watched
 * by a uv_poll_t too, paces writers and prints progress.
 */
#define LOG_MODULE "bench"
#include "file/bench.h"
#include "pkg/wsclient/uv.h"
#include "pkg/wsclient/wsclient.h"
#include "pkg/jwt/jwt.h"
#include "pkg/clock/clock.h"
#include "pkg/secret/secret.h"
#include "pkg/url/url.h"
#include "pkg/wsframe/wsframe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#define HIST_US   1000000 /* latency histogram: 1 us buckets up to 1 s */
#define OUT_CHUNK (256 * 1024)
#define IN_MAX    (8 * 1024 * 1024)
/*
 * The pacing tick. libuv's timers count whole milliseconds, and a 1 ms tick would send paced
 * messages in bursts (5 at a time at 5,000 msg/s) and add up to 1 ms to their measured latency;
 * a timerfd watched by a uv_poll_t keeps the 200 us resolution the epoll loop had.
 */
#define TICK_NS       (200 * 1000)
#define DRAIN_IDLE_NS (2LL * 1000 * 1000 * 1000)

enum role { READER, WRITER, IDLE };

struct peer {
	struct wsc c;
	uv_poll_t poll; /* poll.data = this peer; initialised when joined */
	int events;     /* what poll watches now (UV_READABLE, UV_WRITABLE), 0 when stopped */
	bool polled;    /* poll initialised: uv_close() it before closing the socket */
	enum role role;
	uint32_t id;
	bool dead;
	/* writer */
	uint64_t sent;
	uint8_t *out;
	size_t out_len, out_off;
	/* reader */
	uint64_t *next_seq; /* per writer */
	uint64_t received, bytes, gaps;
};

struct bench {
	const struct bench_opts *o;
	SSL_CTX *tls;
	char topic[128];
	char *token;   /* for readers (read-only when minted); wiped */
	char *w_token; /* for writers and idle connections (write-only when minted); wiped */
	struct peer *peers;
	size_t npeers;
	uv_loop_t loop; /* loop.data = this bench */
	uv_poll_t tick; /* watches tick_fd */
	bool loop_ok, tick_polled;
	int tick_fd;
	int64_t t_start, t_stop, t_last_rx, next_progress;
	uint64_t sent_total, received_total, bytes_total, gaps_total, errors;
	uint32_t *hist;
	uint64_t over, max_us;
	uint8_t *filler;
	bool sending;
};

/* ---- tokens ---- */

static int mint(struct bench *b, char **scopes, size_t n_scopes, char **out, char why[WSC_WHY])
{
	return rjwt_mint_session(b->o->session, b->o->secret_file, b->o->audience, scopes, n_scopes,
	                         b->o->duration / 1000 + 3600, "bench", out, why);
}

/*
 * Tokens: a given one serves every connection (writers and idle connections then receive the
 * topic's traffic too, which costs the relay more); minted ones are read-only for readers and
 * write-only for writers and idle connections, which so receive nothing.
 */
static int load_token(struct bench *b, char why[WSC_WHY])
{
	char *r[] = {(char *)"read"}, *w[] = {(char *)"write"};
	int ret;

	if (b->o->token_file && *b->o->token_file) {
		ret = secret_read_file(b->o->token_file, &b->token);
		if (ret)
			snprintf(why, WSC_WHY, "cannot read token file '%.200s'", b->o->token_file);
		else
			b->w_token = strdup(b->token);
		return ret ? ret : b->w_token ? 0 : -ENOMEM;
	}
	if (!b->o->secret_file || !*b->o->secret_file) {
		snprintf(why, WSC_WHY, "give --token-file or --secret-file");
		return -EINVAL;
	}
	ret = mint(b, r, 1, &b->token, why);
	return ret ? ret : mint(b, w, 1, &b->w_token, why);
}

/* ---- connections ---- */

static void on_io(uv_poll_t *h, int status, int events);

/*
 * Watch @p for @events (UV_READABLE, UV_WRITABLE; 0 stops). uv_poll_start() only on a change:
 * libuv 1.44 takes the socket out of epoll and puts it back on every call (two system calls,
 * docs/measured-notes.md). 0 or a negative errno from libuv.
 */
static int watch(struct peer *p, int events)
{
	int ret;

	if (events == p->events)
		return 0;
	ret = events ? uv_poll_start(&p->poll, events, on_io) : uv_poll_stop(&p->poll);
	if (!ret)
		p->events = events;
	return ret;
}

/* @p takes no further part (a send or receive failed, or it closed): nothing more is watched. */
static void retire(struct peer *p)
{
	p->dead = true;
	watch(p, 0);
}

/*
 * A writer watches writability only while bytes wait in its buffer: libuv's poll is
 * level-triggered (the epoll loop used EPOLLET), so a paced writer with nothing to send would
 * be woken on every loop pass. An unpaced one always has bytes waiting while sending.
 */
static void watch_writes(struct bench *b, struct peer *p)
{
	int events = UV_READABLE | (p->out_off < p->out_len ? UV_WRITABLE : 0);

	if (!p->dead && watch(p, events)) {
		b->errors++;
		retire(p);
	}
}

/* One join in progress: the asynchronous client's result, waited for on the bench's loop. */
struct joining {
	struct peer *p;
	bool done;
	int err;
	char *why;
};

/* Open: the socket is handed over to the peer's own reader and writer (wsc_uv_detach()). */
static void join_open(struct wsc_uv *c, void *arg)
{
	struct joining *j = arg;

	j->done = true;
	j->err = wsc_uv_detach(c, &j->p->c);
	if (j->err) {
		snprintf(j->why, WSC_WHY, "cannot take over the websocket: %s", strerror(-j->err));
		wsc_uv_close(c);
	}
}

static bool join_frame(struct wsc_uv *c, const struct ws_frame *f, const uint8_t *payload,
                       void *arg)
{
	/* not called: on_open detaches before any frame is handed over */
	(void)c;
	(void)f;
	(void)payload;
	(void)arg;
	return true;
}

static void join_end(struct wsc_uv *c, int err, int status, const char *why, void *arg)
{
	struct joining *j = arg;

	(void)c;
	(void)status;
	j->done = true;
	j->err = err ? err : -ECONNRESET;
	snprintf(j->why, WSC_WHY, "%s", why);
}

static const struct wsc_uv_cbs join_cbs = {join_open, join_frame, join_end};

/*
 * Join @p with the asynchronous client (pkg/wsclient/uv.h) on the bench's loop, one peer at a
 * time as before the load starts; the joined peers' sockets are watched already (pings).
 */
static int join(struct bench *b, struct peer *p, char why[WSC_WHY])
{
	const char *token = p->role == READER ? b->token : b->w_token;
	const char *url = p->role == READER && p->id % 2 && b->o->session_b && *b->o->session_b
	                          ? b->o->session_b /* readers split over two instances */
	                          : b->o->session;
	struct joining j = {.p = p, .why = why};
	struct wsc_uv *c;
	int ret;

	c = wsc_uv_join(&b->loop, url, token, b->tls, (int)b->o->timeout,
	                (size_t)b->o->size + 65536, 65536, &join_cbs, &j, why);
	if (!c)
		return -EINVAL;
	/* the client's deadline ends every step, so this ends; on_open/on_close set done */
	while (!j.done)
		if (!uv_run(&b->loop, UV_RUN_ONCE) && !j.done) {
			snprintf(why, WSC_WHY, "the join ended without an answer");
			return -EIO; /* nothing left to wait for: a broken promise of pkg/wsclient */
		}
	if (j.err)
		return j.err;
	ret = uv_poll_init(&b->loop, &p->poll, p->c.fd);
	if (ret)
		return ret;
	p->poll.data = p;
	p->polled = true;
	return watch(p, UV_READABLE); /* writers add UV_WRITABLE when a send leaves bytes over */
}

static int open_all(struct bench *b, char why[WSC_WHY])
{
	size_t nw = (size_t)b->o->writers;
	int ret = 0;

	for (size_t i = 0; i < b->npeers && !ret; i++) {
		struct peer *p = &b->peers[i];

		p->next_seq = p->role == READER ? calloc(nw ? nw : 1, sizeof(uint64_t)) : NULL;
		if (p->role == READER && !p->next_seq)
			return -ENOMEM;
		ret = join(b, p, why);
		if (!ret && p->role == IDLE && (i + 1) % 1000 == 0)
			fprintf(stderr, "bench: %zu connections open\n", i + 1);
	}
	return ret;
}

/* ---- writing ---- */

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Append one message frame to @p's output buffer. */
static int append_message(struct bench *b, struct peer *p)
{
	static const uint8_t zero_mask[4];
	size_t size = (size_t)b->o->size, need = WSFRAME_MAX_HEADER + size;
	uint8_t *f;

	if (p->out_len + need > OUT_CHUNK + need) {
		return -ENOBUFS;
	}
	if (!p->out) {
		p->out = malloc(OUT_CHUNK + need);
		if (!p->out)
			return -ENOMEM;
	}
	f = p->out + p->out_len;
	f += wsframe_header(f, WS_BINARY, true, size, zero_mask);
	memcpy(f, b->filler, size);
	put_u64(f, p->sent);
	put_u64(f + 8, (uint64_t)clock_mono_ns());
	f[16] = (uint8_t)p->id;
	f[17] = (uint8_t)(p->id >> 8);
	f[18] = (uint8_t)(p->id >> 16);
	f[19] = (uint8_t)(p->id >> 24);
	p->out_len = (size_t)(f + size - p->out);
	p->sent++;
	b->sent_total++;
	return 0;
}

/* Send what is buffered; true when all of it went. */
static bool flush(struct bench *b, struct peer *p)
{
	while (p->out_off < p->out_len) {
		ssize_t r = wsc_send(&p->c, p->out + p->out_off, p->out_len - p->out_off);

		if (r == -EAGAIN)
			return false;
		if (r <= 0) {
			b->errors++;
			retire(p);
			return false;
		}
		p->out_off += (size_t)r;
	}
	p->out_len = p->out_off = 0;
	return true;
}

/* Unpaced: fill and send until the socket is full or time is up. */
static void write_unpaced(struct bench *b, struct peer *p)
{
	while (b->sending && !p->dead && flush(b, p)) {
		while (p->out_len < OUT_CHUNK)
			if (append_message(b, p))
				return;
	}
}

/* Paced: send what is due at @now. */
static void write_paced(struct bench *b, struct peer *p, int64_t now)
{
	uint64_t due = (uint64_t)((double)(now - b->t_start) * (double)b->o->rate / 1e9);

	if (!flush(b, p))
		return;
	while (p->sent < due && p->out_len < OUT_CHUNK)
		if (append_message(b, p))
			break;
	flush(b, p);
}

/* ---- reading ---- */

static void record_latency(struct bench *b, int64_t ns)
{
	uint64_t us = ns < 0 ? 0 : (uint64_t)ns / 1000;

	if (us >= HIST_US)
		b->over++;
	else
		b->hist[us]++;
	if (us > b->max_us)
		b->max_us = us;
}

static void on_message(struct bench *b, struct peer *p, const uint8_t *m, uint64_t len, int64_t now)
{
	uint64_t seq;
	uint32_t w;

	p->received++;
	p->bytes += len;
	b->received_total++;
	b->bytes_total += len;
	b->t_last_rx = now;
	if (len < 20) {
		b->errors++;
		return;
	}
	seq = get_u64(m);
	w = (uint32_t)m[16] | (uint32_t)m[17] << 8 | (uint32_t)m[18] << 16 | (uint32_t)m[19] << 24;
	if (w >= (uint64_t)b->o->writers || seq < p->next_seq[w]) {
		b->errors++; /* unknown writer, duplicate or out of order */
		return;
	}
	p->gaps += seq - p->next_seq[w];
	b->gaps_total += seq - p->next_seq[w];
	p->next_seq[w] = seq + 1;
	record_latency(b, now - (int64_t)get_u64(m + 8));
}

/* Answer a ping (the relay pings idle connections). */
static void pong(struct peer *p, const uint8_t *payload, uint64_t len)
{
	static const uint8_t zero_mask[4];
	uint8_t frame[WSFRAME_MAX_HEADER + 125];
	size_t n = wsframe_header(frame, WS_PONG, true, len, zero_mask);

	memcpy(frame + n, payload, (size_t)len);
	wsc_send(&p->c, frame, n + (size_t)len);
}

static void parse_frames(struct bench *b, struct peer *p, int64_t now)
{
	const uint8_t *payload;
	struct ws_frame f;
	size_t off = 0;
	int k;

	while ((k = wsframe_next(p->c.in.p, p->c.in.len, &off, &f, &payload)) > 0) {
		if ((f.opcode == WS_TEXT || f.opcode == WS_BINARY) && p->role == READER)
			on_message(b, p, payload, f.payload_len,
			           now); /* others may read too: ignored */
		else if (f.opcode == WS_PING)
			pong(p, payload, f.payload_len);
		else if (f.opcode == WS_CLOSE)
			retire(p);
	}
	wsc_consume(&p->c, off);
	if (k < 0) {
		/* counted once: the bytes stay bad, so the peer leaves the loop */
		b->errors++;
		retire(p);
	}
}

static void read_ready(struct bench *b, struct peer *p)
{
	/* room for one whole message of --size (up to 64 MiB) and what follows it */
	size_t max = (size_t)b->o->size + WSFRAME_MAX_HEADER + 65536 > IN_MAX
	                     ? (size_t)b->o->size + WSFRAME_MAX_HEADER + 65536
	                     : IN_MAX;

	while (!p->dead) {
		ssize_t r = wsc_fill(&p->c, max);

		if (r == -EAGAIN)
			break;
		if (r <= 0) {
			if (!p->dead)
				b->errors++;
			retire(p);
			break;
		}
		parse_frames(b, p, clock_mono_ns());
	}
}

/* ---- the loop ---- */

static void progress(struct bench *b, int64_t now)
{
	fprintf(stderr,
	        "bench: %.1fs sent %" PRIu64 " delivered %" PRIu64 " gaps %" PRIu64
	        " errors %" PRIu64 "\n",
	        (double)(now - b->t_start) / 1e9, b->sent_total, b->received_total, b->gaps_total,
	        b->errors);
}

static bool drained(const struct bench *b, int64_t now)
{
	uint64_t want = b->sent_total * (uint64_t)b->o->readers;

	return b->received_total + b->gaps_total >= want || now - b->t_last_rx > DRAIN_IDLE_NS;
}

static void on_tick(struct bench *b, int64_t now)
{
	if (b->sending && now >= b->t_stop) {
		b->sending = false;
		b->t_last_rx = now;
		for (size_t i = 0; i < b->npeers; i++) {
			struct peer *p = &b->peers[i];

			if (p->role == WRITER && !p->dead) {
				flush(b, p); /* what was framed before the stop still goes */
				watch_writes(b, p);
			}
		}
	}
	for (size_t i = 0; b->sending && i < b->npeers; i++) {
		struct peer *p = &b->peers[i];

		if (p->role != WRITER || p->dead)
			continue;
		if (b->o->rate)
			write_paced(b, p, now);
		else
			write_unpaced(b, p);
		watch_writes(b, p);
	}
	if (now >= b->next_progress) {
		progress(b, now);
		b->next_progress = now + 1000000000LL;
	}
}

static void on_tick_io(uv_poll_t *h, int status, int events)
{
	struct bench *b = h->loop->data;
	uint64_t ticks;

	(void)status; /* a timerfd does not fail once armed; a spurious wake-up does no harm */
	(void)events;
	if (read(b->tick_fd, &ticks, sizeof(ticks)) < 0) {
		/* spurious: nothing to do */
	}
	on_tick(b, clock_mono_ns());
	if (!b->sending && drained(b, clock_mono_ns()))
		uv_stop(h->loop);
}

static void on_io(uv_poll_t *h, int status, int events)
{
	struct peer *p = h->data;
	struct bench *b = h->loop->data;

	if (status < 0) {
		/* libuv has stopped watching (EPOLLERR); receiving says what happened */
		p->events = 0;
		read_ready(b, p);
		if (!p->dead) {
			b->errors++;
			retire(p);
		}
		return;
	}
	if (events & UV_READABLE)
		read_ready(b, p);
	if (p->role != WRITER || p->dead || !(events & UV_WRITABLE))
		return;
	if (b->sending && !b->o->rate)
		write_unpaced(b, p);
	else
		flush(b, p); /* what was framed before the stop still goes */
	watch_writes(b, p);
}

static int run_loop(struct bench *b)
{
	struct itimerspec its = {{0, TICK_NS}, {0, TICK_NS}};
	int ret;

	b->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (b->tick_fd < 0 || timerfd_settime(b->tick_fd, 0, &its, NULL))
		return -errno;
	ret = uv_poll_init(&b->loop, &b->tick, b->tick_fd);
	if (ret)
		return ret;
	b->tick_polled = true;
	ret = uv_poll_start(&b->tick, UV_READABLE, on_tick_io);
	if (ret)
		return ret;
	b->t_start = clock_mono_ns();
	b->t_stop = b->t_start + b->o->duration * 1000000;
	b->t_last_rx = b->t_start;
	b->next_progress = b->t_start + 1000000000LL;
	b->sending = true;
	/* until on_tick_io() sees the sending over and the messages in (or none for 2 s) */
	uv_run(&b->loop, UV_RUN_DEFAULT);
	return 0;
}

/* ---- server figures from /proc ---- */

struct proc_figures {
	double cpu_s;
	long hwm_kb, rss_kb;
	bool ok;
};

static void read_proc(int64_t pid, struct proc_figures *f)
{
	char path[64], line[512];
	unsigned long ut = 0, st = 0;
	FILE *fp;

	memset(f, 0, sizeof(*f));
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
	fp = fopen(path, "r");
	if (!fp)
		return;
	if (fscanf(fp, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) ==
	    2)
		f->ok = true;
	fclose(fp);
	f->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%lld/status", (long long)pid);
	fp = fopen(path, "r");
	while (fp && fgets(line, sizeof(line), fp)) {
		sscanf(line, "VmHWM: %ld", &f->hwm_kb);
		sscanf(line, "VmRSS: %ld", &f->rss_kb);
	}
	if (fp)
		fclose(fp);
}

/* ---- report ---- */

static uint64_t percentile(const struct bench *b, double q)
{
	uint64_t n = b->over, want, acc = 0;

	for (size_t i = 0; i < HIST_US; i++)
		n += b->hist[i];
	if (!n)
		return 0;
	want = (uint64_t)((double)n * q + 0.5);
	if (want == 0)
		want = 1;
	for (size_t i = 0; i < HIST_US; i++) {
		acc += b->hist[i];
		if (acc >= want)
			return i;
	}
	return b->max_us;
}

struct summary {
	double secs, msgs_per_s, mb_per_s;
	uint64_t p50, p99, max;
	uint64_t drops; /* expected - received, from sequence gaps and messages never seen */
	struct proc_figures before, after, after_idle;
	double idle_open_s;
};

static void report(const struct bench *b, const struct summary *s)
{
	const struct bench_opts *o = b->o;
	double cpu = s->after.cpu_s - s->before.cpu_s;

	if (o->json) {
		printf("{\"writers\":%" PRId64 ",\"readers\":%" PRId64 ",\"idle\":%" PRId64
		       ",\"size\":%" PRId64 ",\"rate\":%" PRId64
		       ",\"seconds\":%.3f,\"sent\":%" PRIu64 ",\"delivered\":%" PRIu64
		       ",\"drops\":%" PRIu64 ",\"errors\":%" PRIu64
		       ",\"msgs_per_s\":%.0f,\"mb_per_s\":%.1f"
		       ",\"p50_us\":%" PRIu64 ",\"p99_us\":%" PRIu64 ",\"max_us\":%" PRIu64,
		       o->writers, o->readers, o->idle, o->size, o->rate, s->secs, b->sent_total,
		       b->received_total, s->drops, b->errors, s->msgs_per_s, s->mb_per_s, s->p50,
		       s->p99, s->max);
		if (s->after.ok)
			printf(",\"server_cpu_s\":%.2f,\"server_peak_rss_kb\":%ld,\"server_rss_kb\":%ld",
			       cpu, s->after.hwm_kb, s->after.rss_kb);
		if (o->idle && s->after_idle.ok)
			printf(",\"idle_rss_delta_kb\":%ld,\"idle_open_s\":%.2f",
			       s->after_idle.rss_kb - s->before.rss_kb, s->idle_open_s);
		printf("}\n");
		return;
	}
	printf("writers %" PRId64 ", readers %" PRId64 ", idle %" PRId64 ", size %" PRId64
	       " B, rate %s\n",
	       o->writers, o->readers, o->idle, o->size, o->rate ? "paced" : "unpaced");
	if (o->rate)
		printf("rate         %" PRId64 " msg/s per writer\n", o->rate);
	printf("sent         %" PRIu64 " messages in %.2f s\n", b->sent_total,
	       (double)o->duration / 1000);
	printf("delivered    %" PRIu64 " (%.0f msg/s, %.1f MB/s)\n", b->received_total,
	       s->msgs_per_s, s->mb_per_s);
	printf("drops        %" PRIu64 "\nerrors       %" PRIu64 "\n", s->drops, b->errors);
	printf("latency      p50 %" PRIu64 " us, p99 %" PRIu64 " us, max %" PRIu64 " us\n", s->p50,
	       s->p99, s->max);
	if (s->after.ok)
		printf("server       cpu %.2f s, peak rss %ld KiB, rss %ld KiB\n", cpu,
		       s->after.hwm_kb, s->after.rss_kb);
	if (o->idle && s->after_idle.ok)
		printf("idle         %" PRId64
		       " connections opened in %.2f s, server rss +%ld KiB\n",
		       o->idle, s->idle_open_s, s->after_idle.rss_kb - s->before.rss_kb);
}

/* ---- setup and teardown ---- */

static int setup(struct bench *b, char why[WSC_WHY])
{
	const struct bench_opts *o = b->o;
	const char *slash = strrchr(o->session, '/');
	size_t n = 0;
	int ret;

	if (!slash || !slash[1] || strlen(slash + 1) >= sizeof(b->topic) || strchr(slash, '?')) {
		snprintf(why, WSC_WHY, "--session must be an access URL ending in /session/TOPIC");
		return -EINVAL;
	}
	snprintf(b->topic, sizeof(b->topic), "%s", slash + 1);
	b->npeers = (size_t)(o->readers + o->idle + o->writers);
	b->peers = calloc(b->npeers, sizeof(*b->peers));
	b->hist = calloc(HIST_US, sizeof(*b->hist));
	b->filler = malloc((size_t)o->size);
	b->tls = wsc_tls_new_ca(!o->insecure, o->ca_file, why);
	if (!b->tls)
		return -EINVAL;
	if (!b->peers || !b->hist || !b->filler) {
		snprintf(why, WSC_WHY, "out of memory");
		return -ENOMEM;
	}
	ret = uv_loop_init(&b->loop);
	if (ret) {
		snprintf(why, WSC_WHY, "cannot start an event loop: %s", uv_strerror(ret));
		return ret;
	}
	b->loop_ok = true;
	b->loop.data = b;
	memset(b->filler, 'x', (size_t)o->size);
	for (int64_t i = 0; i < o->readers; i++)
		b->peers[n++] = (struct peer){.role = READER, .id = (uint32_t)i, .c.fd = -1};
	for (int64_t i = 0; i < o->idle; i++)
		b->peers[n++] = (struct peer){.role = IDLE, .id = (uint32_t)i, .c.fd = -1};
	for (int64_t i = 0; i < o->writers; i++)
		b->peers[n++] = (struct peer){.role = WRITER, .id = (uint32_t)i, .c.fd = -1};
	return load_token(b, why);
}

/* libuv's handles are closed (and the loop run until they are) before their sockets. */
static void close_loop(struct bench *b)
{
	if (!b->loop_ok)
		return;
	for (size_t i = 0; b->peers && i < b->npeers; i++)
		if (b->peers[i].polled)
			uv_close((uv_handle_t *)&b->peers[i].poll, NULL);
	if (b->tick_polled)
		uv_close((uv_handle_t *)&b->tick, NULL);
	uv_run(&b->loop, UV_RUN_DEFAULT);
	uv_loop_close(&b->loop);
}

static void teardown(struct bench *b)
{
	close_loop(b);
	for (size_t i = 0; b->peers && i < b->npeers; i++) {
		wsc_close(&b->peers[i].c);
		free(b->peers[i].out);
		free(b->peers[i].next_seq);
	}
	free(b->peers);
	free(b->hist);
	free(b->filler);
	secret_free(b->token);
	secret_free(b->w_token);
	if (b->tls)
		SSL_CTX_free(b->tls);
	if (b->tick_fd >= 0)
		close(b->tick_fd);
}

static void summarise(const struct bench *b, struct summary *s)
{
	double secs = (double)(b->t_last_rx - b->t_start) / 1e9;
	uint64_t want = b->sent_total * (uint64_t)b->o->readers;

	s->secs = secs > 0 ? secs : 1e-9;
	s->msgs_per_s = (double)b->received_total / s->secs;
	s->mb_per_s = (double)b->bytes_total / s->secs / 1e6;
	s->p50 = percentile(b, 0.50);
	s->p99 = percentile(b, 0.99);
	s->max = b->max_us;
	s->drops = want > b->received_total ? want - b->received_total : 0;
}

int file_bench(const struct bench_opts *o)
{
	struct bench b = {.o = o, .tick_fd = -1};
	struct summary s = {0};
	char why[WSC_WHY] = "";
	int64_t t0;
	int ret;

	ret = setup(&b, why);
	read_proc(o->server_pid, &s.before);
	t0 = clock_mono_ns();
	if (!ret)
		ret = open_all(&b, why);
	s.idle_open_s = (double)(clock_mono_ns() - t0) / 1e9;
	read_proc(o->server_pid, &s.after_idle);
	if (!ret) {
		fprintf(stderr, "bench: %zu connections open, sending for %.1f s\n", b.npeers,
		        (double)o->duration / 1000);
		ret = run_loop(&b);
	}
	read_proc(o->server_pid, &s.after);
	if (!ret) {
		summarise(&b, &s);
		report(&b, &s);
	} else {
		fprintf(stderr, "relay file bench: %s\n", why[0] ? why : strerror(-ret));
	}
	teardown(&b);
	return ret ? 1 : 0;
}
