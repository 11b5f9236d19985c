/*
 * file/connect: `relay connect` (see connect.h). One uv loop: signals, and either one bridge
 * between stdin/stdout and a channel, or a listening socket whose connections each get a
 * bridge. A channel is a websocket joined through the access protocol with a `client` token;
 * the relay pairs it with a fresh connection from the host to its configured target.
 */
#define LOG_MODULE "connect"
#include "file/connect.h"
#include "pkg/config/config.h"
#include "pkg/jwt/jwt.h"
#include "pkg/log/log.h"
#include "pkg/wsclient/bridge.h"
#include "pkg/wsclient/uv.h"
#include "pkg/wsclient/wsclient.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pthread.h>
#include <uv.h>

#define CHANNELS_MAX 256 /* concurrent channels of --listen; more connections are refused */

struct chan {
	struct conn *cn;
	struct wsc_bridge *b;
	struct chan *prev, *next;
	unsigned id;
};

struct conn {
	const struct connect_opts *o;
	uv_loop_t loop;
	SSL_CTX *tls;
	uv_signal_t sig[3];
	uv_tcp_t listener;
	bool listening;
	struct chan *chans;
	size_t n_chans;
	unsigned next_id;
	bool stopping;
	int ret;
	char access_url[4096]; /* --session with ?role=client */
	pthread_t out_thread;  /* copying to a stdout that is a file */
	bool has_out_thread;
};

/* A token for a channel: the token, its file (read each time: it may be replaced) or one
 * minted with scope client. A new string (cfg_free_secret()) or NULL with @why. */
static char *channel_token(const struct connect_opts *o, char why[RJWT_WHY])
{
	char *scopes[] = {(char *)"client"}, *token = NULL;

	if (rjwt_client_token(&(struct rjwt_source){o->token, o->token_file, o->secret_file,
	                                            o->audience, scopes, 1, 3600, "relay-connect"},
	                      o->session, &token, why))
		return NULL;
	return token;
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

static void stop_signals(struct conn *cn)
{
	for (size_t i = 0; i < 3; i++)
		if (!uv_is_closing((uv_handle_t *)&cn->sig[i]))
			uv_close((uv_handle_t *)&cn->sig[i], NULL);
}

static void unlink_chan(struct chan *ch)
{
	struct conn *cn = ch->cn;

	if (ch->prev)
		ch->prev->next = ch->next;
	else
		cn->chans = ch->next;
	if (ch->next)
		ch->next->prev = ch->prev;
	cn->n_chans--;
	free(ch);
}

static void on_end(struct wsc_bridge *b, int code, const char *why, void *arg)
{
	struct chan *ch = arg;
	struct conn *cn = ch->cn;
	uint64_t to_ws, from_ws;

	wsc_bridge_counts(b, &to_ws, &from_ws);
	if (!cn->listening) {
		/* stdin/stdout: the channel is the process */
		if (code != 1000 && !cn->stopping) {
			fprintf(stderr, "relay connect: %s\n", why);
			cn->ret = 1;
		}
		cn->stopping = true;
		stop_signals(cn);
	} else if (code != 1000 && !cn->stopping) {
		log_warn("channel %u ended: %s (%llu bytes sent, %llu received)", ch->id, why,
		         (unsigned long long)to_ws, (unsigned long long)from_ws);
	} else {
		log_info("channel %u ended (%llu bytes sent, %llu received)", ch->id,
		         (unsigned long long)to_ws, (unsigned long long)from_ws);
	}
	unlink_chan(ch);
}

/* A new channel for the local stream @in/@out (taken: closed on failure). 0 or -1 with the
 * reason in @why. */
static int open_channel(struct conn *cn, uv_stream_t *in, uv_stream_t *out, char why[WSC_WHY])
{
	struct chan *ch = calloc(1, sizeof(*ch));
	struct wsc_uv *c = NULL;
	char *token = NULL;

	if (ch)
		ch->b = wsc_bridge_new(&cn->loop, on_end, ch);
	if (!ch || !ch->b) {
		free(ch);
		snprintf(why, WSC_WHY, "out of memory");
		uv_close((uv_handle_t *)in, free_handle);
		if (out != in)
			uv_close((uv_handle_t *)out, free_handle);
		return -1;
	}
	ch->cn = cn;
	ch->id = ++cn->next_id;
	ch->next = cn->chans;
	if (cn->chans)
		cn->chans->prev = ch;
	cn->chans = ch;
	cn->n_chans++;
	token = channel_token(cn->o, why);
	if (token)
		c = wsc_uv_join(&cn->loop, cn->access_url, token, cn->tls, (int)cn->o->timeout,
		                BRIDGE_IN_MAX, BRIDGE_OUT_MAX, &wsc_bridge_cbs, ch->b, why);
	cfg_free_secret(token);
	wsc_bridge_set_local(ch->b, in, out);
	if (!c) {
		wsc_bridge_close(ch->b, 1011, why); /* frees @ch through on_end() */
		return -1;
	}
	wsc_bridge_set_ws(ch->b, c);
	return 0;
}

/* ---- --listen ---- */

static void on_connection(uv_stream_t *server, int status)
{
	struct conn *cn = server->data;
	uv_tcp_t *t;
	char why[WSC_WHY];

	if (status < 0) {
		log_warn("cannot accept a connection: %s", uv_strerror(status));
		return;
	}
	t = malloc(sizeof(*t));
	if (!t || uv_tcp_init(&cn->loop, t)) {
		free(t);
		return;
	}
	if (uv_accept(server, (uv_stream_t *)t)) {
		uv_close((uv_handle_t *)t, free_handle);
		return;
	}
	if (cn->n_chans >= CHANNELS_MAX) {
		log_warn("connection refused: %d channels are open already", CHANNELS_MAX);
		uv_close((uv_handle_t *)t, free_handle);
		return;
	}
	uv_tcp_nodelay(t, 1);
	if (open_channel(cn, (uv_stream_t *)t, (uv_stream_t *)t, why))
		log_warn("cannot open a channel: %s", why);
	else
		log_info("channel %u: a local connection", cn->next_id);
}

/* HOST:PORT (an IP literal; [v6]:PORT) -> a socket address. */
static int parse_listen(const char *spec, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	size_t n;
	char *end;
	long port;

	if (!colon || colon == spec)
		return -EINVAL;
	n = (size_t)(colon - spec);
	if (spec[0] == '[' && n >= 2 && spec[n - 1] == ']') {
		spec++;
		n -= 2;
	}
	if (n >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, n);
	host[n] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
		return 0;
	return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0 ? 0 : -EINVAL;
}

static int start_listen(struct conn *cn)
{
	struct sockaddr_storage ss;
	int namelen = sizeof(ss), r;
	char addr[64];

	if (parse_listen(cn->o->listen, &ss)) {
		fprintf(stderr,
		        "relay connect: --listen must be ADDRESS:PORT (an IP address), not '%s'\n",
		        cn->o->listen);
		return 2;
	}
	uv_tcp_init(&cn->loop, &cn->listener);
	cn->listener.data = cn;
	cn->listening = true;
	r = uv_tcp_bind(&cn->listener, (struct sockaddr *)&ss, 0);
	r = r ? r : uv_listen((uv_stream_t *)&cn->listener, 64, on_connection);
	r = r ? r : uv_tcp_getsockname(&cn->listener, (struct sockaddr *)&ss, &namelen);
	if (r) {
		fprintf(stderr, "relay connect: cannot listen on %s: %s\n", cn->o->listen,
		        uv_strerror(r));
		return 1;
	}
	if (ss.ss_family == AF_INET6)
		uv_ip6_name((struct sockaddr_in6 *)&ss, addr, sizeof(addr));
	else
		uv_ip4_name((struct sockaddr_in *)&ss, addr, sizeof(addr));
	/* on stderr, for scripts that asked for port 0 */
	log_notice("listening on %s port %d: each connection becomes a channel to %s", addr,
	           ntohs(((struct sockaddr_in *)&ss)->sin_port), cn->o->session);
	return 0;
}

/* ---- the loop ---- */

/* SIGINT, SIGTERM and SIGHUP (ssh sends it to its ProxyCommand at the end) end every channel. */
static void on_signal(uv_signal_t *sig, int signum)
{
	struct conn *cn = sig->data;

	(void)signum;
	cn->stopping = true;
	stop_signals(cn);
	if (cn->listening && !uv_is_closing((uv_handle_t *)&cn->listener))
		uv_close((uv_handle_t *)&cn->listener, NULL);
	while (cn->chans)
		wsc_bridge_close(cn->chans->b, 1000, "stopped by a signal");
}

static int setup(struct conn *cn)
{
	static const int signums[] = {SIGINT, SIGTERM, SIGHUP};
	char why[WSC_WHY];

	signal(SIGPIPE, SIG_IGN);
	/* the role: a host token given by mistake is refused as such */
	snprintf(cn->access_url, sizeof(cn->access_url), "%s%s", cn->o->session,
	         strchr(cn->o->session, '?') ? "&role=client" : "?role=client");
	cn->tls = wsc_tls_new_ca(!cn->o->insecure, cn->o->ca_file, why);
	if (!cn->tls) {
		fprintf(stderr, "relay connect: %s\n", why);
		return 2;
	}
	if (uv_loop_init(&cn->loop)) {
		fprintf(stderr, "relay connect: cannot set up the event loop\n");
		return 1;
	}
	for (size_t i = 0; i < 3; i++) {
		uv_signal_init(&cn->loop, &cn->sig[i]);
		cn->sig[i].data = cn;
		uv_signal_start(&cn->sig[i], on_signal, signums[i]);
	}
	return 0;
}

/* A copier thread between a file (a regular file, /dev/null) and one end of a socket pair:
 * libuv streams only pipes, sockets and terminals. Blocking reads and writes, on its own thread. */
struct copier {
	int from, to;
};

static void *copy_main(void *arg)
{
	struct copier *cp = arg;
	char buf[65536];
	ssize_t n;

	while ((n = read(cp->from, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
		for (ssize_t off = 0; n > 0 && off < n;) {
			ssize_t k = write(cp->to, buf + off, (size_t)(n - off));

			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0)
				goto out;
			off += k;
		}
	}
out:
	/* the end of file for the reader: shut the socket (it is not the process's own fd) */
	if (cp->to != STDOUT_FILENO)
		shutdown(cp->to, SHUT_WR);
	else
		close(cp->to);
	if (cp->from != STDIN_FILENO)
		close(cp->from);
	free(cp);
	return NULL;
}

/* For stdin (@fd 0) or stdout (1) when it is a file: a socket whose other end a thread copies
 * from or to it (stdout's is joined at the end, so that the file has everything). The fd for the
 * loop, or -1 with @why. */
static int via_thread(struct conn *cn, int fd, char why[WSC_WHY])
{
	struct copier *cp = malloc(sizeof(*cp));
	pthread_t t;
	int sv[2];

	if (!cp || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		free(cp);
		snprintf(why, WSC_WHY, "cannot copy fd %d: %s", fd, strerror(errno));
		return -1;
	}
	cp->from = fd == STDIN_FILENO ? fd : sv[1];
	cp->to = fd == STDIN_FILENO ? sv[1] : fd;
	if (pthread_create(&t, NULL, copy_main, cp)) {
		close(sv[0]);
		close(sv[1]);
		free(cp);
		snprintf(why, WSC_WHY, "cannot start a thread for fd %d", fd);
		return -1;
	}
	if (fd == STDOUT_FILENO) {
		cn->out_thread = t;
		cn->has_out_thread = true;
	} else {
		pthread_detach(t); /* may wait in read() for good: the exit ends it */
	}
	return sv[0];
}

/* A stream for stdin or stdout: the fd itself, or a socket to a copier thread for a file. */
static uv_stream_t *stdio_stream(struct conn *cn, int fd, char why[WSC_WHY])
{
	uv_handle_type t = uv_guess_handle(fd);
	int s;

	if (t == UV_TCP || t == UV_NAMED_PIPE || t == UV_TTY)
		return wsc_bridge_stream_of_fd(&cn->loop, fd, fd == STDIN_FILENO, why);
	s = via_thread(cn, fd, why);
	return s < 0 ? NULL : wsc_bridge_stream_of_fd(&cn->loop, s, fd == STDIN_FILENO, why);
}

static int start_stdio(struct conn *cn)
{
	char why[WSC_WHY];
	uv_stream_t *in = stdio_stream(cn, STDIN_FILENO, why), *out = NULL;

	if (in)
		out = stdio_stream(cn, STDOUT_FILENO, why);
	if (!out) {
		fprintf(stderr, "relay connect: stdin and stdout: %s\n", why);
		if (in)
			uv_close((uv_handle_t *)in, free_handle);
		return 2;
	}
	if (open_channel(cn, in, out, why)) {
		if (!cn->ret) /* on_end() has not said it */
			fprintf(stderr, "relay connect: %s\n", why);
		return 1;
	}
	return 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

int file_connect(const struct connect_opts *o)
{
	struct conn cn = {.o = o};
	int ret = setup(&cn);

	if (ret) {
		if (cn.tls)
			SSL_CTX_free(cn.tls);
		return ret;
	}
	ret = o->listen && *o->listen ? start_listen(&cn) : start_stdio(&cn);
	if (ret) {
		cn.stopping = true;
		while (cn.chans)
			wsc_bridge_close(cn.chans->b, 1000, "stopping");
		uv_walk(&cn.loop, close_any, NULL);
	}
	uv_run(&cn.loop, UV_RUN_DEFAULT);
	uv_walk(&cn.loop, close_any, NULL);
	uv_run(&cn.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&cn.loop))
		log_err("the event loop did not close");
	if (cn.has_out_thread)
		pthread_join(cn.out_thread,
		             NULL); /* its socket is closed: it ends after the rest */
	SSL_CTX_free(cn.tls);
	return ret ? ret : cn.ret;
}
