/*
 * host_devspec_test: the --data spec parser (host/devspec.h): every form, serial speeds and
 * framings, paths with colons, ports at and past their limits, and the refusals.
 */
#include "host/devspec.c"
#include "test/harness.h"

#ifndef RUN /* a harness that does not count test cases yet */
#define RUN(call) call
#endif

static void check_refused(const char *spec)
{
	struct host_devspec d;
	int r = host_devspec_parse(spec, &d);

	if (r != -EINVAL)
		fprintf(stderr, "'%s' was accepted\n", spec);
	CHECK_EQ(r, -EINVAL);
}

static void test_none(void)
{
	struct host_devspec d;

	CHECK_EQ(host_devspec_parse(NULL, &d), 0);
	CHECK_EQ(d.kind, HOST_DEV_NONE);
	CHECK_EQ(host_devspec_parse("", &d), 0);
	CHECK_EQ(d.kind, HOST_DEV_NONE);
}

static void test_sockets(void)
{
	struct host_devspec d;

	CHECK_EQ(host_devspec_parse("tcp:127.0.0.1:9000", &d), 0);
	CHECK_EQ(d.kind, HOST_DEV_TCP);
	CHECK_STR(d.host, "127.0.0.1");
	CHECK_EQ(d.port, 9000);
	CHECK_EQ(host_devspec_parse("udp:localhost:1", &d), 0);
	CHECK_EQ(d.kind, HOST_DEV_UDP);
	CHECK_STR(d.host, "localhost");
	CHECK_EQ(d.port, 1);
	CHECK_EQ(host_devspec_parse("tcp:::1:65535", &d), 0); /* the last colon ends the host */
	CHECK_STR(d.host, "::1");
	CHECK_EQ(d.port, 65535);
	check_refused("tcp:127.0.0.1:0");
	check_refused("tcp:127.0.0.1:65536");
	check_refused("tcp:127.0.0.1:80x");
	check_refused("tcp:127.0.0.1:+80");
	check_refused("tcp:127.0.0.1: 80");
	check_refused("tcp:127.0.0.1:");
	check_refused("tcp::80");
	check_refused("tcp:80");
	check_refused("sctp:127.0.0.1:80");
	check_refused("tcp:127.0.0.1:0080000");
}

static void test_long_host(void)
{
	char spec[300];

	snprintf(spec, sizeof(spec), "tcp:%0255d:80", 1); /* 255 characters: fits with its NUL */
	CHECK_EQ(host_devspec_parse(spec, &(struct host_devspec){0}), 0);
	snprintf(spec, sizeof(spec), "tcp:%0256d:80", 1);
	check_refused(spec);
}

static void test_serial(void)
{
	struct host_devspec d;

	CHECK_EQ(host_devspec_parse("serial:/dev/ttyUSB0:115200", &d), 0);
	CHECK_EQ(d.kind, HOST_DEV_SERIAL);
	CHECK_STR(d.host, "/dev/ttyUSB0");
	CHECK_EQ(d.speed, B115200);
	CHECK_EQ(d.cflag, CS8); /* 8N1 */
	CHECK_EQ(host_devspec_parse("serial:/dev/ttyS0:9600:7E2", &d), 0);
	CHECK_EQ(d.speed, B9600);
	CHECK_EQ(d.cflag, CS7 | PARENB | CSTOPB);
	CHECK_EQ(host_devspec_parse("serial:/dev/ttyS0:1200:5O1", &d), 0);
	CHECK_EQ(d.cflag, CS5 | PARENB | PARODD);
	CHECK_EQ(host_devspec_parse("serial:/dev/ttyS0:921600:8N2", &d), 0);
	CHECK_EQ(d.speed, B921600);
	CHECK_EQ(d.cflag, CS8 | CSTOPB);
	/* by-path names hold colons */
	CHECK_EQ(host_devspec_parse(
	                 "serial:/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0:9600:7E2", &d),
	         0);
	CHECK_STR(d.host, "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1:1.0");
	CHECK_EQ(d.speed, B9600);
	CHECK_EQ(host_devspec_parse("serial:/dev/serial/by-path/pci-0000:00:14.0:115200", &d), 0);
	CHECK_STR(d.host, "/dev/serial/by-path/pci-0000:00:14.0");
	check_refused("serial:/dev/ttyS0:12345");
	check_refused("serial:/dev/ttyS0:115200x");
	check_refused("serial:/dev/ttyS0:115200:9N1");
	check_refused("serial:/dev/ttyS0:115200:8X1");
	check_refused("serial:/dev/ttyS0:115200:8N3");
	check_refused("serial:/dev/ttyS0:8N1");
	check_refused("serial:/dev/ttyS0");
	check_refused("serial::9600");
	check_refused("serial");
}

static void test_exec_and_ws(void)
{
	struct host_devspec d;

	CHECK_EQ(host_devspec_parse("exec:cat -u", &d), 0);
	CHECK_EQ(d.kind, HOST_DEV_EXEC);
	CHECK_STR(d.command, "cat -u");
	check_refused("exec:");
	CHECK_EQ(host_devspec_parse("ws://127.0.0.1:8080/x", &d), 0);
	CHECK_EQ(d.kind, HOST_DEV_WS);
	CHECK_EQ(host_devspec_parse("wss://lab.example/x", &d), 0);
	CHECK_EQ(d.kind, HOST_DEV_WS);
	check_refused("http://127.0.0.1/");
}

static void test_framing_table(void)
{
	static const tcflag_t sizes[] = {CS5, CS6, CS7, CS8};
	char f[4] = "";

	/* every valid framing, and the bits it sets */
	for (int bits = 5; bits <= 8; bits++) {
		for (const char *par = "NEO"; *par; par++) {
			for (int stop = 1; stop <= 2; stop++) {
				tcflag_t c = 0;

				f[0] = (char)('0' + bits);
				f[1] = *par;
				f[2] = (char)('0' + stop);
				CHECK(parse_framing(f, &c));
				CHECK_EQ(c & CSIZE, sizes[bits - 5]);
				CHECK_EQ(!!(c & PARENB), *par != 'N');
				CHECK_EQ(!!(c & PARODD), *par == 'O');
				CHECK_EQ(!!(c & CSTOPB), stop == 2);
			}
		}
	}
	CHECK(!parse_framing("8n1", &(tcflag_t){0}));
	CHECK(!parse_framing("8N1 ", &(tcflag_t){0}));
	CHECK(!parse_framing("4N1", &(tcflag_t){0}));
}

int main(void)
{
	RUN(test_none());
	RUN(test_sockets());
	RUN(test_long_host());
	RUN(test_serial());
	RUN(test_exec_and_ws());
	RUN(test_framing_table());
	return harness_done();
}
