/*
 * relay/turn_thread: the TURN server's own thread and uv loop. Everything of relay/turn*.c runs
 * there once relay_turn_start() has set it up, so that a TURN flood costs the websocket loop
 * nothing. The two threads meet at two points only:
 *  - main -> TURN: turn_thread_call() runs a function on the TURN loop and waits for it (the
 *    public calls of relay/turn.h that read or change TURN state). The TURN thread never waits
 *    for the main thread, so the wait cannot deadlock.
 *  - TURN -> main: turn_thread_seen() queues a STUN Binding's USERNAME and source for
 *    relay_meet_udp_seen() (meet.c's state is the main loop's) when the USERNAME could be a
 *    meeting tag (its length); a uv_async_t on the main loop drains the bounded queue. Past
 *    the bound a Binding is dropped, counted and left unanswered: a flood of them must not
 *    grow memory, and a participant's STUN client retransmits a Binding that got no answer
 *    (one answered with success it would never send again, and its meeting would never
 *    learn its UDP address).
 *
 * The tags queued are capabilities (meet.c wipes its own copy when a participant leaves):
 * the queue and the drained batch are wiped once read.
 */
#define LOG_MODULE "turn"
#include "relay/turn_internal.h"
#include "pkg/log/log.h"

#include <assert.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* A call waiting to run on the TURN loop; on the caller's stack until done. */
struct turn_call {
	void (*fn)(void *);
	void *arg;
	bool done;
	struct turn_call *next;
};

/* A Binding with USERNAME, for the main loop. */
struct turn_seen {
	char tag[TURN_SEEN_TAG];
	size_t len;
	struct sockaddr_storage from;
};

static struct {
	uv_loop_t loop;
	bool loop_on; /* loop initialised (main thread's flag) */
	bool running; /* the thread runs (main thread's flag) */
	uv_thread_t thread;
	int nice;        /* --turn-nice, set before the thread starts */
	uv_async_t wake; /* on the TURN loop: calls are queued */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct turn_call *calls, **calls_tail; /* guarded by mu */

	struct server *s;
	uv_async_t seen_wake; /* on the main loop: Bindings are queued */
	bool seen_on;
	pthread_mutex_t seen_mu;
	struct turn_seen seen[TURN_SEEN_MAX]; /* guarded by seen_mu */
	size_t nseen;                         /* guarded by seen_mu */
	uint64_t seen_dropped;                /* guarded by seen_mu */
} th = {
        .mu = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER,
        .seen_mu = PTHREAD_MUTEX_INITIALIZER,
};

/* Drained on the main loop's thread: a copy, so that meet.c runs without the lock held. */
static struct turn_seen seen_batch[TURN_SEEN_MAX];

int turn_thread_init(char why[256])
{
	int err = uv_loop_init(&th.loop);

	if (err) {
		snprintf(why, 256, "cannot start the TURN event loop: %s", uv_strerror(err));
		return -EIO;
	}
	th.loop_on = true;
	th.calls = NULL;
	th.calls_tail = &th.calls;
	return 0;
}

uv_loop_t *turn_thread_loop(void)
{
	return &th.loop;
}

/* ---- main -> TURN ---- */

static void on_wake(uv_async_t *h)
{
	(void)h;
	for (;;) {
		struct turn_call *c;

		pthread_mutex_lock(&th.mu);
		c = th.calls;
		if (c) {
			th.calls = c->next;
			if (!th.calls)
				th.calls_tail = &th.calls;
		}
		pthread_mutex_unlock(&th.mu);
		if (!c)
			return;
		c->fn(c->arg);
		pthread_mutex_lock(&th.mu);
		c->done = true; /* c is the caller's: not touched after this */
		pthread_cond_broadcast(&th.cv);
		pthread_mutex_unlock(&th.mu);
	}
}

void turn_thread_call(void (*fn)(void *), void *arg)
{
	struct turn_call c = {.fn = fn, .arg = arg};

	if (!th.running) { /* before the thread starts, after it stops: the state is ours */
		fn(arg);
		return;
	}
	{
		/* from the TURN thread itself it would wait for its own loop: forever */
		uv_thread_t self = uv_thread_self();

		assert(!uv_thread_equal(&self, &th.thread));
		(void)self;
	}
	pthread_mutex_lock(&th.mu);
	*th.calls_tail = &c;
	th.calls_tail = &c.next;
	pthread_mutex_unlock(&th.mu);
	uv_async_send(&th.wake);
	pthread_mutex_lock(&th.mu);
	while (!c.done)
		pthread_cond_wait(&th.cv, &th.mu);
	pthread_mutex_unlock(&th.mu);
}

/* ---- TURN -> main ---- */

bool turn_thread_seen(const char *tag, size_t len, const struct sockaddr *from)
{
	bool wake = false, queued = true;

	if (len != sizeof(th.seen[0].tag))
		return true; /* not a participant's tag: nothing for meetings, answered as any */
	pthread_mutex_lock(&th.seen_mu);
	if (th.nseen == TURN_SEEN_MAX) {
		th.seen_dropped++;
		queued = false;
	} else {
		struct turn_seen *e = &th.seen[th.nseen++];

		memcpy(e->tag, tag, len);
		e->len = len;
		memcpy(&e->from, from,
		       from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
		                                   : sizeof(struct sockaddr_in));
		wake = th.nseen == 1; /* a wake-up is pending already otherwise */
	}
	pthread_mutex_unlock(&th.seen_mu);
	if (wake)
		uv_async_send(&th.seen_wake);
	return queued;
}

static void on_seen(uv_async_t *h)
{
	size_t n;

	(void)h;
	pthread_mutex_lock(&th.seen_mu);
	n = th.nseen;
	memcpy(seen_batch, th.seen, n * sizeof(th.seen[0]));
	OPENSSL_cleanse(th.seen, n * sizeof(th.seen[0]));
	th.nseen = 0;
	pthread_mutex_unlock(&th.seen_mu);
	for (size_t k = 0; k < n; k++)
		relay_meet_udp_seen(th.s, seen_batch[k].tag, seen_batch[k].len,
		                    (struct sockaddr *)&seen_batch[k].from);
	OPENSSL_cleanse(seen_batch, n * sizeof(seen_batch[0]));
}

uint64_t turn_thread_seen_dropped(void)
{
	uint64_t n;

	pthread_mutex_lock(&th.seen_mu);
	n = th.seen_dropped;
	pthread_mutex_unlock(&th.seen_mu);
	return n;
}

/* ---- start and stop ---- */

/*
 * Lower this thread's priority by @delta nice levels below the process's (Linux: setpriority
 * on a thread id changes that thread only). The websocket thread then wins the CPU whenever it
 * wakes while TURN is busy; TURN still gets every cycle the websockets leave. Raising niceness
 * needs no privilege; a failure only costs the priority, so it is logged and TURN runs on.
 */
static void lower_priority(int delta)
{
	int base, want;

	if (delta <= 0)
		return;
	errno = 0;
	base = getpriority(PRIO_PROCESS, 0);
	if (base == -1 && errno)
		base = 0;
	want = base + delta > 19 ? 19 : base + delta;
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), want))
		log_warn("TURN thread keeps the websocket thread's priority: setpriority(%d): %s",
		         want, strerror(errno));
}

static void run(void *arg)
{
	(void)arg;
	pthread_setname_np(pthread_self(), "relay-turn"); /* top -H, /proc/PID/task/TID/comm */
	lower_priority(th.nice);
	uv_run(&th.loop, UV_RUN_DEFAULT); /* until turn_thread_stop() closes every handle */
}

int turn_thread_run(struct server *s, uv_loop_t *main_loop, char why[256])
{
	sigset_t block, old;
	int err;

	th.s = s;
	th.nice = (int)s->o->turn_nice;
	th.nseen = 0;
	th.seen_dropped = 0;
	err = uv_async_init(main_loop, &th.seen_wake, on_seen);
	if (!err) {
		th.seen_on = true;
		err = uv_async_init(&th.loop, &th.wake, on_wake);
	}
	if (err) {
		snprintf(why, 256, "cannot start the TURN thread: %s", uv_strerror(err));
		return -EIO;
	}
	/* the stop signals are the main thread's (serve.c's handlers wake its loop) */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	err = uv_thread_create(&th.thread, run, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		uv_close((uv_handle_t *)&th.wake, NULL);
		snprintf(why, 256, "cannot start the TURN thread: %s", uv_strerror(err));
		return -EIO;
	}
	th.running = true;
	return 0;
}

static void (*stop_fn)(void);

static void close_wake(void *arg)
{
	(void)arg;
	stop_fn();
	uv_close((uv_handle_t *)&th.wake, NULL); /* from its own callback: allowed */
}

void turn_thread_stop(void (*close_all)(void))
{
	if (!th.loop_on)
		return;
	if (th.running) {
		/* the last call: the loop closes its handles and uv_run() returns */
		stop_fn = close_all;
		turn_thread_call(close_wake, NULL);
		uv_thread_join(&th.thread);
		th.running = false;
	} else {
		close_all(); /* start failed before the thread ran */
	}
	while (uv_loop_close(&th.loop) == UV_EBUSY)
		uv_run(&th.loop, UV_RUN_NOWAIT);
	th.loop_on = false;
	if (th.seen_on) {
		uv_close((uv_handle_t *)&th.seen_wake, NULL); /* closes as serve.c runs its loop */
		th.seen_on = false;
	}
	/* Bindings still queued are never delivered now: their tags go */
	pthread_mutex_lock(&th.seen_mu);
	OPENSSL_cleanse(th.seen, sizeof(th.seen));
	th.nseen = 0;
	pthread_mutex_unlock(&th.seen_mu);
}
