/*
 * file_script_test: file/script.c (included: file/ is not in the unit tests' link). A script is
 * loaded whole with its regexes compiled; a malformed line, a bad regex, more than
 * FILE_FILTERS_MAX filters of a kind between resets and an unreadable file are refused with
 * the file and line named on stderr, and nothing is returned.
 */
#include "file/script.c"
#include "test/harness.h"

#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char path[] = "/tmp/relay-file-script-test-XXXXXX";

static void write_script(const char *text)
{
	FILE *f = fopen(path, "w");

	CHECK(f != NULL);
	if (!f)
		return;
	fputs(text, f);
	fclose(f);
}

static int load(const char *text, struct file_script **s)
{
	write_script(text);
	return file_script_load(path, s);
}

static void test_load(void)
{
	struct file_script *s = NULL;

	CHECK_EQ(load("#- quiet\nhello\n[10ms] later\n<'^pong',2,1s> after\n|+> ^keep\n|r>\n", &s),
	         0);
	CHECK(s != NULL);
	if (!s)
		return;
	CHECK_EQ(s->n, 6); /* the final newline ends the last line, it starts none */
	CHECK_EQ(s->lines[1].l.kind, PLAY_SEND);
	CHECK_EQ(s->lines[1].lineno, 2);
	CHECK(s->lines[3].has_re); /* the condition's regex, compiled */
	CHECK(regexec(&s->lines[3].re, "pong!", 0, NULL, 0) == 0);
	CHECK(regexec(&s->lines[3].re, "ping", 0, NULL, 0) != 0);
	CHECK(s->lines[4].has_re && s->lines[4].l.verb == PLAY_ACCEPT);
	CHECK(!s->lines[5].has_re); /* a reset has no pattern */
	file_script_free(s);
	file_script_free(NULL);
}

static void test_refused(void)
{
	struct file_script *s = (struct file_script *)1;
	char many[24 * (2 * FILE_FILTERS_MAX + 2)] = "";

	CHECK_EQ(load("ok\n<'^x',oops,1s> y\n", &s), -EINVAL);
	CHECK(s == NULL);
	CHECK_EQ(load("ok\n|+> [unclosed\n", &s), -EINVAL);
	for (int i = 0; i <= FILE_FILTERS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "|-> d%d\n", i);
	CHECK_EQ(load(many, &s), -EINVAL);
	/* a reset makes room for as many again */
	many[0] = '\0';
	for (int i = 0; i < 2 * FILE_FILTERS_MAX; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s|-> d%d\n",
		         i == FILE_FILTERS_MAX ? "|r>\n" : "", i);
	CHECK_EQ(load(many, &s), 0);
	CHECK_EQ(s ? s->n : 0, 2 * FILE_FILTERS_MAX + 1);
	file_script_free(s);
	CHECK_EQ(file_script_load("/nonexistent/relay.play", &s), -EIO);
	CHECK(s == NULL);
}

int main(void)
{
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	RUN(test_load());
	RUN(test_refused());
	unlink(path);
	return harness_done();
}
