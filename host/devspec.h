/*
 * host/devspec: the --data device spec of a stream, parsed (no I/O): tcp:HOST:PORT,
 * udp:HOST:PORT, serial:PATH:BAUD[:FRAMING], ws://... or wss://..., exec:COMMAND.
 */
#ifndef RELAY_HOST_DEVSPEC_H
#define RELAY_HOST_DEVSPEC_H

#include <termios.h>

enum host_dev_kind {
	HOST_DEV_NONE,
	HOST_DEV_TCP,
	HOST_DEV_UDP,
	HOST_DEV_SERIAL,
	HOST_DEV_EXEC,
	HOST_DEV_WS
};

struct host_devspec {
	enum host_dev_kind kind;
	char host[256];      /* TCP/UDP: the host name or address; serial: the port's path */
	int port;            /* TCP/UDP */
	speed_t speed;       /* serial */
	tcflag_t cflag;      /* serial framing: data bits, parity, stop bits (c_cflag bits) */
	const char *command; /* exec: the command, borrowed from the spec */
};

/*
 * Parse @spec (NULL or "": HOST_DEV_NONE) into @d. 0, or -EINVAL when it is none of the forms
 * above (an unknown speed or framing, a port outside 1-65535, a host or path that does not fit).
 */
int host_devspec_parse(const char *spec, struct host_devspec *d);

#endif
