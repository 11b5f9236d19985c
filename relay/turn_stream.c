/*
 * relay/turn_stream: TURN over TCP and TLS (RFC 8656 3.1). Bytes are framed into STUN messages
 * and ChannelData (padded to 4 bytes) by stun_stream_frame_len(); TLS runs through OpenSSL
 * memory BIOs so the loop never blocks on it. Input and output are bounded: a frame larger than
 * a STUN message closes the connection, and when a client does not read, or when the relay's
 * memory budget has no room, frames to it drop; a partial frame the budget has no room for
 * closes its connection.
 */
#define LOG_MODULE "turn"
#include "relay/turn_internal.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

int turn_tls_init(const char *cert, const char *key, char why[256])
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		snprintf(why, 256, "turns: cannot load certificate '%.80s' or key '%.80s': %s",
		         cert, key, ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	turn_srv.ssl_ctx = ctx;
	return 0;
}

/* ---- the memory budget ---- */

/*
 * Output to TCP/TLS clients counts against --max-memory (relay/ws.c, "the memory budget"), as
 * the capacity of each connection's two output buffers (queued and in flight: libuv writes from
 * ours), counted whenever a buffer grows or is given back. Websockets come first: TURN output
 * takes only what websockets leave (stream_held + ws_held <= mem_budget), and a Data indication,
 * ChannelData or peer bytes that would need more are dropped whole, as for a client that does
 * not read (a TLS record is never cut: the check is made before SSL_write, for the frame and its
 * records' overhead). STUN answers and ConnectionAttempt indications are not dropped for the
 * budget (else stalled clients would lock every new TCP/TLS client out, and TCP clients do not
 * retransmit) unless their connection's output buffer would pass TURN_STREAM_CTRL_CAP: such a
 * client is not reading. So TURN output holds at most the budget plus TURN_MAX_STREAMS * 2 *
 * TURN_STREAM_CTRL_CAP (two buffers a connection; 32 MiB in all). What
 * websockets hold is what the main thread last published (relay_turn_note_ws_held); they never
 * shed a connection for what TURN holds. A buffer grown by a burst is given back once its
 * connection has nothing queued, so an idle connection holds at most 2 * TURN_STREAM_OUT_KEEP.
 *
 * Input counts too: a connection's input buffer holds only the partial frame a client has not
 * finished sending (whole frames are handed on from the read), and is given back once the frame
 * is. Up to TURN_STREAM_IN_SMALL it is taken past the budget, as STUN answers are (a new
 * client's Allocate must get its 401); past that, a buffer the budget has no room for closes
 * the connection, since a partial frame cannot be dropped whole. So input holds at most the
 * budget's room plus TURN_MAX_STREAMS * TURN_STREAM_IN_SMALL (8 MiB), where 4096 connections
 * trickling 64 KiB frames held 256 MiB outside it before. Only connections with an allocation
 * (or data connections) take the budget's room: one without that sends a frame past
 * TURN_STREAM_IN_SMALL in pieces is closed (keep_partial), and what a connection without an
 * allocation holds (a partial request of up to TURN_STREAM_IN_SMALL, at most TURN_STREAM_CTRL_CAP
 * of unread answers: budget_fits) is counted apart (unalloc_held, in /metrics), not in the budget: else
 * clients without credentials, up to TURN_MAX_STREAMS of them, could fill it with small partial
 * requests and get allocated clients' frames dropped and connections closed.
 * Atomics without locks: the TURN thread is the only writer of stream_held, the main thread
 * the only writer of ws_held; each only reads the other's, relaxed (a bound, not a handshake).
 */
static _Atomic size_t stream_held;  /* TURN thread writes, any thread reads */
static _Atomic size_t ws_held;      /* main thread writes, TURN thread reads */
static _Atomic size_t unalloc_held; /* connections without an allocation: outside the budget */

size_t relay_turn_stream_held(void)
{
	return atomic_load_explicit(&stream_held, memory_order_relaxed);
}

size_t relay_turn_stream_unallocated(void)
{
	return atomic_load_explicit(&unalloc_held, memory_order_relaxed);
}

void relay_turn_note_ws_held(size_t bytes)
{
	atomic_store_explicit(&ws_held, bytes, memory_order_relaxed);
}

/* Bring @total up to date with buffers now of @now bytes, last counted as *@held. */
static void held_update(_Atomic size_t *total, size_t *held, size_t now)
{
	if (now > *held)
		atomic_fetch_add_explicit(total, now - *held, memory_order_relaxed);
	else if (now < *held)
		atomic_fetch_sub_explicit(total, *held - now, memory_order_relaxed);
	*held = now;
}

void turn_stream_held_update(size_t *held, size_t now)
{
	held_update(&stream_held, held, now);
}

/* Bring stream_held up to date with @st's buffers after one grew or was given back. */
static void account(struct turn_stream *st)
{
	size_t now = st->in.cap + st->out.cap + st->inflight.cap;
	bool budgeted = st->alloc || st->conn; /* see the budget's comment above */

	turn_stream_held_update(&st->held, budgeted ? now : 0);
	held_update(&unalloc_held, &st->held_unalloc, budgeted ? 0 : now);
}

bool turn_stream_budget_room(size_t grow)
{
	size_t budget, turn, ws;

	if (!grow || !turn_srv.s)
		return true;
	budget = turn_srv.s->mem_budget; /* fixed before the TURN thread started */
	turn = atomic_load_explicit(&stream_held, memory_order_relaxed);
	ws = atomic_load_explicit(&ws_held, memory_order_relaxed);
	return ws <= budget && turn <= budget - ws && grow <= budget - ws - turn;
}

/* Give back buffers a burst grew, once @st has nothing queued. */
static void shrink_idle(struct turn_stream *st)
{
	if (st->out.len)
		return;
	if (st->out.cap > TURN_STREAM_OUT_KEEP)
		buf_release(&st->out);
	if (!st->writing && st->inflight.cap > TURN_STREAM_OUT_KEEP)
		buf_release(&st->inflight);
	account(st);
}

static void log_budget_drop(size_t budget, size_t turn, size_t ws)
{
	if (!turn_log_due(&turn_srv.budget_logged_ms, 1000))
		return;
	log_warn("memory budget of %zu bytes reached: dropping frames to TCP/TLS clients (their "
	         "output holds %zu bytes, websockets %zu)",
	         budget, turn, ws);
}

/*
 * true when @n more bytes queued on @st fit the memory budget; else counted and logged. A
 * @control message fits while the output buffer stays within TURN_STREAM_CTRL_CAP, budget or
 * not: clients that do not read must not cost everyone else their 401s and Refresh answers. A
 * connection without an allocation is outside the budget (see above), so its queue is held to
 * TURN_STREAM_CTRL_CAP whatever the budget: it has only answers to read, and one that does not
 * read them must not grow its buffers where the budget does not see them.
 */
static bool budget_fits(struct turn_stream *st, size_t n, bool control)
{
	size_t cap = buf_reserved_cap(&st->out, n), grow = cap - st->out.cap, budget, turn, ws;

	if (!st->alloc && !st->conn && st->out.len + n > TURN_STREAM_CTRL_CAP) {
		turn_refuse_count(TR_STREAM_FULL);
		return false;
	}
	if (!grow || !turn_srv.s || (control && cap <= TURN_STREAM_CTRL_CAP))
		return true;
	budget = turn_srv.s->mem_budget; /* fixed before the TURN thread started */
	turn = atomic_load_explicit(&stream_held, memory_order_relaxed);
	ws = atomic_load_explicit(&ws_held, memory_order_relaxed);
	if (ws <= budget && turn <= budget - ws && grow <= budget - ws - turn)
		return true;
	turn_refuse_count(TR_MEMORY);
	log_budget_drop(budget, turn, ws);
	return false;
}

static void log_budget_close(const struct turn_stream *st, size_t need)
{
	char addr[64];

	if (!turn_log_due(&turn_srv.budget_closed_logged_ms, 1000))
		return;
	turn_addr_text((const struct sockaddr *)&st->peer, addr, sizeof(addr));
	log_warn("memory budget of %zu bytes reached: closing TCP/TLS client %s, whose partial "
	         "frame needs a %zu-byte buffer (TURN holds %zu bytes, websockets %zu)",
	         turn_srv.s->mem_budget, addr, need, relay_turn_stream_held(),
	         atomic_load_explicit(&ws_held, memory_order_relaxed));
}

static void log_large_close(const struct turn_stream *st, long frame)
{
	char addr[64];

	if (!turn_log_due(&turn_srv.large_closed_logged_ms, 1000))
		return;
	turn_addr_text((const struct sockaddr *)&st->peer, addr, sizeof(addr));
	log_warn("closing TCP/TLS client %s: it has no allocation and is sending a %ld-byte frame "
	         "in pieces (over %d bytes)",
	         addr, frame, TURN_STREAM_IN_SMALL);
}

/* ---- closing ---- */

static void on_closed(uv_handle_t *h)
{
	struct turn_stream *st = h->data;

	buf_release(&st->in);
	buf_release(&st->out);
	buf_release(&st->inflight);
	account(st);
	if (st->ssl)
		SSL_free(st->ssl); /* frees both BIOs */
	free(st);
}

void turn_stream_close(struct turn_stream *st)
{
	struct turn *T = &turn_srv;

	if (st->closing)
		return;
	st->closing = true;
	if (st->conn)
		turn_tcp_client_closed(st);
	if (st->alloc)
		turn_alloc_free(st->alloc, "connection closed");
	if (st->prev)
		st->prev->next = st->next;
	else
		T->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	T->nstreams--;
	uv_close((uv_handle_t *)&st->tcp, on_closed);
}

/* ---- writing ---- */

static void start_write(struct turn_stream *st);
static void maybe_shutdown(struct turn_stream *st);

static void on_written(uv_write_t *w, int status)
{
	struct turn_stream *st = w->data;

	st->writing = false;
	st->inflight.len = 0;
	if (status < 0) {
		turn_stream_close(st);
		return;
	}
	if (st->closing)
		return;
	shrink_idle(st);
	start_write(st);
	if (!st->closing)
		maybe_shutdown(st);
	if (!st->closing && st->conn)
		turn_tcp_client_drained(st);
}

static void start_write(struct turn_stream *st)
{
	uv_buf_t b;

	if (st->writing || st->out.len == 0 || st->closing)
		return;
	b = turn_take_queued(&st->out, &st->inflight);
	st->wr.data = st;
	if (uv_write(&st->wr, (uv_stream_t *)&st->tcp, &b, 1, on_written)) {
		turn_stream_close(st);
		return;
	}
	st->writing = true;
}

/* Raw bytes for the socket (TLS records or plain frames). */
static int queue_raw(struct turn_stream *st, const uint8_t *p, size_t len)
{
	int err = buf_add(&st->out, p, len);

	account(st);
	if (err)
		return -ENOBUFS;
	start_write(st);
	return 0;
}

static void drain_tls(struct turn_stream *st)
{
	uint8_t tmp[16384];
	int n;

	while ((n = BIO_read(st->wbio, tmp, sizeof(tmp))) > 0)
		if (queue_raw(st, tmp, (size_t)n)) {
			turn_stream_close(st); /* a TLS record cut short cannot be dropped */
			return;
		}
}

/*
 * The most TLS adds to @n bytes of application data: per record of up to 16 KiB, a 5-byte
 * header and at most 96 more (TLS 1.2 CBC: IV, MAC up to SHA-384, padding; 1.3: type and tag).
 */
static size_t tls_overhead(size_t n)
{
	return (n / 16384 + 1) * (5 + 96);
}

bool turn_stream_fits(const struct turn_stream *st, size_t n)
{
	if (st->ssl)
		n += tls_overhead(n);
	return !st->closing && n <= buf_left(&st->out) &&
	       turn_stream_budget_room(buf_reserved_cap(&st->out, n) - st->out.cap);
}

int turn_stream_send(struct turn_stream *st, const uint8_t *p, size_t len, size_t pad, bool control)
{
	static const uint8_t zeros[4];
	size_t n = len + pad + (st->ssl ? tls_overhead(len + pad) : 0);

	if (st->closing)
		return -EPIPE;
	/* whole frames only: a frame that does not fit is dropped, never cut */
	if (n > buf_left(&st->out)) {
		turn_refuse_count(TR_STREAM_FULL);
		return -ENOBUFS;
	}
	if (!budget_fits(st, n, control))
		return -ENOMEM;
	if (st->ssl) {
		uint8_t frame[4 + 65536 + 4];

		memcpy(frame, p, len);
		memcpy(frame + len, zeros, pad);
		if (!SSL_is_init_finished(st->ssl) ||
		    SSL_write(st->ssl, frame, (int)(len + pad)) <= 0)
			return -EPIPE;
		drain_tls(st);
		return 0;
	}
	if (buf_reserve(&st->out, len + pad)) /* then neither add below can fail */
		return -ENOMEM;
	buf_add(&st->out, p, len);
	return queue_raw(st, zeros, pad); /* accounts, and writes the frame whole */
}

size_t turn_stream_queued(const struct turn_stream *st)
{
	return st->out.len + (st->writing ? st->inflight.len : 0);
}

static void on_shut(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status; /* an error shows as one on the next read or write */
}

/* uv_shutdown() goes after the writes already handed to libuv: only once nothing waits in out */
static void maybe_shutdown(struct turn_stream *st)
{
	if (!st->shut_wanted || st->shut_done || st->out.len)
		return;
	st->shut_done = true;
	if (uv_shutdown(&st->sh, (uv_stream_t *)&st->tcp, on_shut))
		turn_stream_close(st);
}

void turn_stream_shutdown(struct turn_stream *st)
{
	if (st->closing || st->shut_wanted)
		return;
	st->shut_wanted = true;
	if (st->ssl && SSL_is_init_finished(st->ssl)) {
		SSL_shutdown(st->ssl); /* queues close_notify; the peer's is not awaited */
		ERR_clear_error();
		drain_tls(st);
	}
	if (!st->closing)
		maybe_shutdown(st);
}

/* ---- reading ---- */

/*
 * Hand every whole frame at the front of @p to turn_packet(): the bytes taken (all of them once
 * a ConnectionBind made this a data connection: what follows is the peer's), or -1 when the
 * connection was closed (a frame that is not STUN or ChannelData, or by what a frame did).
 */
static long take_frames(struct turn_stream *st, const uint8_t *p, size_t len)
{
	size_t off = 0;

	while (!st->closing) {
		long n = stun_stream_frame_len(p + off, len - off);

		if (n < 0 || n > TURN_STREAM_IN_MAX) {
			turn_refuse_count(TR_MALFORMED);
			turn_stream_close(st);
			return -1;
		}
		if (n == 0 || (size_t)n > len - off)
			return (long)off;
		turn_packet(st->transport, st, (struct sockaddr *)&st->peer, p + off, (size_t)n);
		off += (size_t)n;
		if (st->conn && !st->closing) {
			if (len > off)
				turn_tcp_from_client(st, p + off, len - off);
			return st->closing ? -1 : (long)len;
		}
	}
	return -1;
}

/* The length of the frame whose first bytes are st->in then @p (@len bytes); 0 while its
 * header is incomplete. */
static long partial_frame_len(const struct turn_stream *st, const uint8_t *p, size_t len)
{
	uint8_t h[8];
	size_t n = 0;

	for (size_t k = 0; k < st->in.len && n < sizeof(h); k++)
		h[n++] = st->in.p[k];
	for (size_t k = 0; k < len && n < sizeof(h); k++)
		h[n++] = p[k];
	return stun_stream_frame_len(h, n);
}

/*
 * Keep @len more bytes of a partial frame in st->in (the memory budget: see its comment). false
 * when the connection was closed. A connection with no allocation that is not a data connection
 * has only small requests to send (Allocate, Binding, ConnectionBind): a frame of more than
 * TURN_STREAM_IN_SMALL coming in pieces closes it at once, budget or not, else clients without
 * credentials could fill the budget with partial frames and get allocated clients closed.
 */
static bool keep_partial(struct turn_stream *st, const uint8_t *p, size_t len)
{
	size_t cap = buf_reserved_cap(&st->in, len);
	long frame = st->alloc || st->conn ? 0 : partial_frame_len(st, p, len);

	if (frame > TURN_STREAM_IN_SMALL) {
		turn_refuse_count(TR_UNALLOC_LARGE);
		log_large_close(st, frame);
		turn_stream_close(st);
		return false;
	}
	if (cap > TURN_STREAM_IN_SMALL && cap > st->in.cap &&
	    !turn_stream_budget_room(cap - st->in.cap)) {
		turn_refuse_count(TR_MEMORY_CLOSED);
		log_budget_close(st, cap);
		turn_stream_close(st);
		return false;
	}
	if (buf_add(&st->in, p, len)) {
		turn_stream_close(st);
		return false;
	}
	account(st);
	return true;
}

/* Bytes that complete the header, then the frame, begun in st->in; -1 when it is no frame. */
static long partial_need(const struct turn_stream *st)
{
	long n = stun_stream_frame_len(st->in.p, st->in.len);

	if (n < 0 || n > TURN_STREAM_IN_MAX)
		return -1;
	return n == 0 ? 4 - (long)st->in.len : n - (long)st->in.len;
}

/*
 * Bytes from the client: a partial frame kept from before is completed first (only as many
 * bytes as it lacks are copied), whole frames are handed on from @p itself, and a partial one
 * at the end is kept. So st->in holds at most one frame, and nothing once it is handed on.
 */
static void stream_in(struct turn_stream *st, const uint8_t *p, size_t len)
{
	while (len && !st->closing) {
		long n;

		if (st->conn) { /* after ConnectionBind: the peer's bytes */
			turn_tcp_from_client(st, p, len);
			return;
		}
		if (!st->in.len) {
			n = take_frames(st, p, len); /* all of them once it is a data connection */
			if (n >= 0 && (size_t)n < len)
				keep_partial(st, p + n, len - (size_t)n);
			return;
		}
		n = partial_need(st);
		if (n > 0) {
			n = (size_t)n > len ? (long)len : n;
			if (!keep_partial(st, p, (size_t)n))
				return;
			p += n, len -= (size_t)n;
			n = partial_need(st);
		}
		if (n < 0) {
			turn_refuse_count(TR_MALFORMED);
			turn_stream_close(st);
			return;
		}
		if (n > 0)
			continue; /* the header is complete now, or more is to come */
		if (take_frames(st, st->in.p, st->in.len) < 0)
			return;
		buf_release(&st->in); /* the frame is handed on: its buffer given back */
		account(st);
	}
}

static void tls_in(struct turn_stream *st, const uint8_t *p, size_t len)
{
	uint8_t tmp[16384];
	int n = 0;

	if (BIO_write(st->rbio, p, (int)len) != (int)len) {
		turn_stream_close(st);
		return;
	}
	if (!SSL_is_init_finished(st->ssl)) {
		n = SSL_do_handshake(st->ssl);
		drain_tls(st);
		if (n <= 0) {
			int e = SSL_get_error(st->ssl, n);

			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				ERR_clear_error();
				log_info("turns: handshake failed");
				turn_stream_close(st);
			}
			return;
		}
	}
	while (!st->closing && (n = SSL_read(st->ssl, tmp, sizeof(tmp))) > 0)
		stream_in(st, tmp, (size_t)n);
	if (!st->closing) {
		int e = SSL_get_error(st->ssl, n);

		drain_tls(st);
		if (e == SSL_ERROR_ZERO_RETURN && st->conn && !st->closing) {
			turn_tcp_client_eof(
			        st); /* close_notify on a data connection: half-closed */
			return;
		}
		if (e == SSL_ERROR_ZERO_RETURN ||
		    (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)) {
			ERR_clear_error();
			turn_stream_close(st);
		}
	}
}

static void stream_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	*buf = uv_buf_init((char *)turn_srv.rx + 64, sizeof(turn_srv.rx) - 64);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct turn_stream *st = s->data;

	if (st->closing)
		return;
	if (nread == UV_EOF && st->conn) {
		turn_tcp_client_eof(st); /* half-closed: the other way may go on */
		return;
	}
	if (nread < 0) {
		turn_stream_close(st);
		return;
	}
	if (nread == 0)
		return;
	st->last_ms = relay_mono_ms();
	if (st->ssl)
		tls_in(st, (const uint8_t *)buf->base, (size_t)nread);
	else
		stream_in(st, (const uint8_t *)buf->base, (size_t)nread);
}

/*
 * At TURN_MAX_STREAMS, the oldest connection that holds no allocation gives way to the new one
 * (as relay/pending.c does for HTTP): refusing the newcomer instead would let anyone who keeps
 * that many idle sockets open lock every other client out of TURN over TCP and TLS.
 */
static bool evict_oldest_idle(const struct turn_stream *newcomer)
{
	struct turn_stream *victim = NULL;

	for (struct turn_stream *st = turn_srv.streams; st; st = st->next) /* newest first */
		if (st != newcomer && !st->alloc && !st->conn && !st->closing)
			victim = st;
	if (!victim)
		return false;
	turn_stream_close(victim);
	return true;
}

void turn_stream_on_connection(uv_stream_t *srv, int status)
{
	struct turn *T = &turn_srv;
	bool tls = srv == (uv_stream_t *)&T->tls;
	struct turn_stream *st;
	int n = sizeof(st->peer);

	if (status < 0)
		return;
	st = calloc(1, sizeof(*st));
	if (!st || uv_tcp_init(T->loop, &st->tcp)) {
		free(st);
		return;
	}
	st->tcp.data = st;
	st->transport = tls ? TURN_TLS : TURN_TCP;
	buf_init(&st->in, TURN_STREAM_IN_MAX);
	buf_init(&st->out, TURN_STREAM_OUT_MAX);
	buf_init(&st->inflight, TURN_STREAM_OUT_MAX);
	st->last_ms = relay_mono_ms();
	st->next = T->streams;
	if (T->streams)
		T->streams->prev = st;
	T->streams = st;
	T->nstreams++;
	if (T->nstreams > TURN_MAX_STREAMS)
		evict_oldest_idle(st);
	if (uv_accept(srv, (uv_stream_t *)&st->tcp) ||
	    uv_tcp_getpeername(&st->tcp, (struct sockaddr *)&st->peer, &n) ||
	    T->nstreams > TURN_MAX_STREAMS) {
		turn_stream_close(st);
		return;
	}
	uv_tcp_nodelay(&st->tcp, 1);
	if (tls) {
		st->ssl = SSL_new(T->ssl_ctx);
		st->rbio = BIO_new(BIO_s_mem());
		st->wbio = BIO_new(BIO_s_mem());
		if (!st->ssl || !st->rbio || !st->wbio) {
			BIO_free(st->rbio);
			BIO_free(st->wbio);
			turn_stream_close(st);
			return;
		}
		SSL_set_bio(st->ssl, st->rbio, st->wbio);
		SSL_set_accept_state(st->ssl);
	}
	if (uv_read_start((uv_stream_t *)&st->tcp, stream_alloc, on_read))
		turn_stream_close(st);
}

void turn_stream_read(struct turn_stream *st, bool on)
{
	if (st->closing)
		return;
	if (!on)
		uv_read_stop((uv_stream_t *)&st->tcp);
	else if (uv_read_start((uv_stream_t *)&st->tcp, stream_alloc, on_read))
		turn_stream_close(st);
}

int turn_stream_listen(uv_tcp_t *srv, const struct sockaddr *addr, bool tls, char why[256])
{
	int err = uv_tcp_init(turn_srv.loop, srv);

	if (err)
		return err;
	err = uv_tcp_bind(srv, addr, 0);
	if (!err)
		err = uv_listen((uv_stream_t *)srv, 128, turn_stream_on_connection);
	if (err) {
		if (tls)
			snprintf(why, 256, "cannot listen for TURN over TLS on '%s': %s",
			         turn_srv.o->turns_listen, uv_strerror(err));
		uv_close((uv_handle_t *)srv, NULL);
	}
	return err;
}

void turn_stream_expire(int64_t now_ms)
{
	struct turn_stream *next;

	for (struct turn_stream *st = turn_srv.streams; st; st = next) {
		next = st->next;
		if (!st->alloc && !st->conn && now_ms - st->last_ms > TURN_STREAM_IDLE_MS)
			turn_stream_close(st);
	}
}
