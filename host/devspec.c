/* host/devspec: the device spec parser (see devspec.h). Pure: no I/O, no allocation. */
#define LOG_MODULE "device" /* nothing here logs: the caller does, with context */
#include "host/devspec.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* "8N1": data bits 5 to 8, parity N(one), E(ven) or O(dd), 1 or 2 stop bits, as c_cflag bits. */
static bool parse_framing(const char *f, tcflag_t *cflag)
{
	static const tcflag_t sizes[] = {CS5, CS6, CS7, CS8};

	if (strlen(f) != 3 || f[0] < '5' || f[0] > '8' || !strchr("NEO", f[1]) ||
	    (f[2] != '1' && f[2] != '2'))
		return false;
	*cflag = sizes[f[0] - '5'] | (f[1] != 'N' ? PARENB : 0) | (f[1] == 'O' ? PARODD : 0) |
	         (f[2] == '2' ? CSTOPB : 0);
	return true;
}

/* serial:PATH:BAUD[:FRAMING], raw, framing 8N1 unless given (the path may hold colons). */
static int parse_serial(const char *spec, struct host_devspec *d)
{
	static const struct {
		const char *baud;
		speed_t speed;
	} speeds[] = {{"1200", B1200},     {"2400", B2400},     {"4800", B4800},
	              {"9600", B9600},     {"19200", B19200},   {"38400", B38400},
	              {"57600", B57600},   {"115200", B115200}, {"230400", B230400},
	              {"460800", B460800}, {"921600", B921600}};
	const char *colon = strrchr(spec, ':'), *baud;
	size_t path_len;

	d->cflag = CS8;
	if (colon && parse_framing(colon + 1, &d->cflag)) {
		const char *end = colon;

		while (end > spec && end[-1] != ':')
			end--;
		colon = end > spec ? end - 1 : NULL;
	}
	if (!colon || colon == spec)
		return -EINVAL;
	baud = colon + 1;
	path_len = (size_t)(colon - spec);
	if (path_len >= sizeof(d->host))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++) {
		size_t n = strlen(speeds[i].baud);

		if (strncmp(baud, speeds[i].baud, n) == 0 && (baud[n] == '\0' || baud[n] == ':')) {
			memcpy(d->host, spec, path_len);
			d->host[path_len] = '\0';
			d->speed = speeds[i].speed;
			d->kind = HOST_DEV_SERIAL;
			return 0;
		}
	}
	return -EINVAL;
}

/* A decimal port, 1 to 65535, digits only. */
static int parse_port(const char *p)
{
	int port = 0;

	if (!*p || strlen(p) > 5)
		return -EINVAL;
	for (; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		port = port * 10 + (*p - '0');
	}
	return port > 0 && port < 65536 ? port : -EINVAL;
}

int host_devspec_parse(const char *spec, struct host_devspec *d)
{
	const char *colon;

	memset(d, 0, sizeof(*d));
	if (!spec || !*spec)
		return 0;
	if (strncmp(spec, "exec:", 5) == 0) {
		d->kind = HOST_DEV_EXEC;
		d->command = spec + 5;
		return spec[5] ? 0 : -EINVAL;
	}
	if (strncmp(spec, "ws://", 5) == 0 || strncmp(spec, "wss://", 6) == 0) {
		d->kind = HOST_DEV_WS;
		return 0;
	}
	if (strncmp(spec, "serial:", 7) == 0)
		return parse_serial(spec + 7, d);
	if (strncmp(spec, "tcp:", 4) != 0 && strncmp(spec, "udp:", 4) != 0)
		return -EINVAL;
	d->kind = spec[0] == 'u' ? HOST_DEV_UDP : HOST_DEV_TCP;
	colon = strrchr(spec + 4, ':');
	if (!colon || (size_t)(colon - spec - 4) >= sizeof(d->host) || colon == spec + 4)
		return -EINVAL;
	memcpy(d->host, spec + 4, (size_t)(colon - spec - 4));
	d->port = parse_port(colon + 1);
	return d->port > 0 ? 0 : -EINVAL;
}
