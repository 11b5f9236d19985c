/*
 * relay_stubs.h: the stubs relay unit tests share for relay/http.c's answers, which no test
 * reads (an endpoint's answer is checked end to end): the body is freed, the result is 0.
 * Include after the relay source under test; a test that needs other stubs defines its own.
 */
#ifndef TEST_UNIT_RELAY_STUBS_H
#define TEST_UNIT_RELAY_STUBS_H

#include "relay/internal.h"

#include <stdlib.h>

int relay_respond(struct lws *wsi, struct conn *c, int status, char *body)
{
	(void)wsi, (void)c, (void)status;
	free(body);
	return 0;
}

int relay_respond_error(struct lws *wsi, struct conn *c, int status, const char *message)
{
	(void)wsi, (void)c, (void)status, (void)message;
	return 0;
}

#endif
