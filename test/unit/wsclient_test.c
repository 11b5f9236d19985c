/*
 * wsclient_test: the parts of pkg/wsclient that need no server. Minted tokens name the access
 * URL's topic, and their default audience is the origin as an operator writes it (no port when
 * it is the scheme's default, which --audience https://relay.example.org expects); the
 * websocket accept key matches RFC 6455 section 1.3's example; tokens with control characters
 * are refused before anything is sent.
 */
#include "pkg/jwt/jwt.h"
#include "pkg/wsclient/wsclient.h"
#include "test/harness.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char secret_path[] = "/tmp/relay-wsclient-test-XXXXXX";

static void check_audience(const char *url, const char *want_aud)
{
	char *scopes[] = {(char *)"read"}, *token = NULL, why[WSC_WHY] = "";
	struct rjwt_claims c = {0};

	CHECK_EQ(wsc_mint(url, secret_path, NULL, scopes, 1, 60, "test", &token, why), 0);
	CHECK_EQ(token ? rjwt_decode_unverified(token, strlen(token), &c) : -1, 0);
	CHECK_EQ(c.n_aud, 1);
	CHECK_STR(c.n_aud ? c.aud[0] : NULL, want_aud);
	CHECK_STR(c.topic, "expt00");
	rjwt_claims_release(&c);
	free(token);
}

static void test_default_audience(void)
{
	check_audience("https://relay.example.org/session/expt00", "https://relay.example.org");
	check_audience("https://relay.example.org:443/session/expt00", "https://relay.example.org");
	check_audience("http://relay.example.org/session/expt00", "http://relay.example.org");
	check_audience("https://127.0.0.1:8443/session/expt00", "https://127.0.0.1:8443");
	check_audience("http://127.0.0.1:443/session/expt00", "http://127.0.0.1:443");
	check_audience("https://[::1]:8443/session/expt00", "https://[::1]:8443");
}

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
	int fd = mkstemp(secret_path);

	CHECK(fd >= 0 && write(fd, "wsclient-test-secret\n", 21) == 21);
	close(fd);
	RUN(test_default_audience());
	RUN(test_accept_key());
	RUN(test_token_control_characters());
	unlink(secret_path);
	return harness_done();
}
