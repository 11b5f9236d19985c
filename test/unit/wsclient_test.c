/*
 * wsclient_test: the parts of pkg/wsclient that need no server (minting moved to jwt_test). The
 * websocket accept key matches RFC 6455 section 1.3's example; tokens with control characters
 * are refused before anything is sent.
 */
#include "pkg/wsclient/wsclient.h"
#include "test/harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_accept_key(void)
{
	char out[WSC_ACCEPT_LEN];

	wsc_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
	CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_token_control_characters(void)
{
	char body[64], why[WSC_WHY] = "";

	CHECK_EQ(wsc_post("http://127.0.0.1:9/session/x", "a\r\nX-Injected: yes", NULL, 100, body,
	                  sizeof(body), why),
	         -EINVAL);
	CHECK(strstr(why, "control characters") != NULL);
}

int main(void)
{
	test_accept_key();
	test_token_control_characters();
	return harness_done();
}
