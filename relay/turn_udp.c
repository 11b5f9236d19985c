/*
 * relay/turn_udp: the UDP sockets of the TURN server (the listener and each allocation's relayed
 * socket) as the loop reads them: batched reads and kernel buffers large enough that a burst
 * does not overflow between two loop passes.
 */
#define LOG_MODULE "turn"
#include "relay/turn_internal.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

int turn_udp_init(uv_loop_t *loop, uv_udp_t *h)
{
	/* recvmmsg: up to TURN_MMSG datagrams per system call. libuv falls back to recvmsg by
	 * itself where the kernel lacks it. */
	return uv_udp_init_ex(loop, h, AF_UNSPEC | UV_UDP_RECVMMSG);
}

void turn_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	/* One buffer for all sockets: the loop reads one socket at a time and every datagram is
	 * handled before the next read. libuv's recvmmsg splits it into 64 KiB slots (so the
	 * length is a multiple of that), calls back once per datagram with UV_UDP_MMSG_CHUNK and
	 * then once with UV_UDP_MMSG_FREE (nread 0): nothing to free here. The 64 bytes in front
	 * are the headroom for a ChannelData header written in place before the first slot's data;
	 * a later slot's header overwrites the tail of the slot before, already handled. */
	*buf = uv_buf_init((char *)turn_srv.rxm + 64, sizeof(turn_srv.rxm) - 64);
}

/* Ask for @bytes of buffer @opt (SO_RCVBUF/SO_SNDBUF), past net.core.[rw]mem_max with
 * @force_opt when the process has CAP_NET_ADMIN; the size granted (the kernel doubles the
 * request for its bookkeeping), or -errno. */
static int set_buffer(int fd, int opt, int force_opt, int64_t bytes, bool *forced)
{
	int v = bytes > 0x3fffffff ? 0x3fffffff : (int)bytes, got = 0;
	socklen_t n = sizeof(got);

	*forced = setsockopt(fd, SOL_SOCKET, force_opt, &v, sizeof(v)) == 0;
	if (!*forced && setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)))
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, opt, &got, &n))
		return -errno;
	return got;
}

void turn_udp_buffers(uv_udp_t *h, int64_t bytes, const char *what)
{
	uv_os_fd_t fd;
	bool rforced, sforced;
	int r, w;

	if (bytes <= 0 || uv_fileno((uv_handle_t *)h, &fd))
		return;
	r = set_buffer(fd, SO_RCVBUF, SO_RCVBUFFORCE, bytes, &rforced);
	w = set_buffer(fd, SO_SNDBUF, SO_SNDBUFFORCE, bytes, &sforced);
	if (!what)
		return;
	if (r < 0 || w < 0)
		log_warn("%s: cannot set its buffers to %lld bytes: %s", what, (long long)bytes,
		         strerror(r < 0 ? -r : -w));
	else
		log_info("%s: receive buffer %d bytes, send buffer %d (asked %lld%s)", what, r, w,
		         (long long)bytes,
		         rforced && sforced
		                 ? ", past net.core.rmem_max/wmem_max with CAP_NET_ADMIN"
		                 : "; capped by net.core.rmem_max/wmem_max without CAP_NET_ADMIN");
}

/*
 * The loop pass budget. libuv reads up to 32 datagrams from a readable socket before it moves
 * on, so with many allocations busy one pass could handle hundreds of datagrams before it
 * reaches a websocket that waits to be written. Past TURN_PASS_DATAGRAMS in a pass, each
 * socket that has more is stopped at the end of its current batch (stopping inside a recvmmsg
 * batch would drop the rest of it) and started again by the prepare handle, before the next
 * poll: the kernel buffer keeps what arrives meanwhile, and websockets get their turn.
 */

int turn_udp_recv_start(uv_udp_t *h, struct turn_udp_pause *p, uv_udp_recv_cb cb)
{
	p->h = h;
	p->cb = cb;
	return uv_udp_recv_start(h, turn_udp_alloc, cb);
}

void turn_udp_forget(struct turn_udp_pause *p)
{
	if (!p->paused)
		return;
	*p->pprev = p->next;
	if (p->next)
		p->next->pprev = p->pprev;
	p->paused = false;
}

void turn_udp_pass(struct turn_udp_pause *p, ssize_t nread, const struct sockaddr *from,
                   unsigned flags)
{
	struct turn *T = &turn_srv;

	if (nread > 0 && from)
		T->pass_used++;
	if (T->pass_used < TURN_PASS_DATAGRAMS || p->paused || (flags & UV_UDP_MMSG_CHUNK) ||
	    !T->pass_on)
		return;
	uv_udp_recv_stop(p->h);
	p->paused = true;
	p->next = T->paused;
	p->pprev = &T->paused;
	if (T->paused)
		T->paused->pprev = &p->next;
	T->paused = p;
	T->m.udp_pauses++;
}

static void on_pass(uv_prepare_t *h)
{
	struct turn *T = &turn_srv;

	(void)h;
	T->pass_used = 0;
	while (T->paused) {
		struct turn_udp_pause *p = T->paused;

		turn_udp_forget(p);
		uv_udp_recv_start(p->h, turn_udp_alloc, p->cb);
	}
}

void turn_udp_pass_init(uv_loop_t *loop)
{
	struct turn *T = &turn_srv;

	uv_prepare_init(loop, &T->pass);
	uv_prepare_start(&T->pass, on_pass);
	uv_unref((uv_handle_t *)&T->pass); /* it must not keep the loop alive */
	T->pass_on = true;
}

void turn_udp_pass_close(void)
{
	struct turn *T = &turn_srv;

	while (T->paused)
		turn_udp_forget(T->paused);
	if (T->pass_on)
		uv_close((uv_handle_t *)&T->pass, NULL);
	T->pass_on = false;
}
