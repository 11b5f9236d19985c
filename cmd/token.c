/*
 * relay token: mint a JWT on stdout, or `relay token verify [TOKEN]` (TOKEN or stdin) to print
 * its claims and say whether it is valid. Settings from flags, RELAY_TOKEN_* or a JSON file.
 */
#include "cmd/cmd.h"
#include "token/token.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#define M(f) offsetof(struct token_mint_opts, f)
static const struct cfg_opt mint_opts[] = {
        {"config", CFG_STRING, M(config), NULL, 0, 0, "JSON file with any of these settings", NULL,
         CFG_NO_FILE},
        {"audience", CFG_STRING, M(audience), NULL, 0, 0, "aud: the relay's access base URL", NULL,
         0},
        {"topic", CFG_STRING, M(topic), NULL, 0, 0, "topic the token grants", NULL, 0},
        {"lifetime", CFG_DURATION, M(lifetime), NULL, 1000, 3650LL * 86400000,
         "validity, e.g. 3600 (s) or 1h", NULL, 0},
        {"scopes", CFG_STRING, M(scopes), NULL, 0, 0,
         "comma-separated scopes; replaces the scope-* settings", NULL, 0},
        {"scope_read", CFG_BOOL, M(scope_read), "true", 0, 0, "add the read scope", NULL, 0},
        {"scope_write", CFG_BOOL, M(scope_write), "true", 0, 0, "add the write scope", NULL, 0},
        {"scope_admin", CFG_BOOL, M(scope_admin), "false", 0, 0, "add the relay:admin scope", NULL,
         0},
        {"scope_other", CFG_STRING, M(scope_other), NULL, 0, 0, "extra scopes, comma separated",
         NULL, 0},
        {"booking_id", CFG_STRING, M(booking_id), "relay-token-cli", 0, 0, "booking_id claim", NULL,
         0},
        {"connection_type", CFG_STRING, M(connection_type), "session", 0, 0,
         "prefix claim (connection type)", NULL, 0},
        {"not_before", CFG_STRING, M(not_before), NULL, 0, 0,
         "nbf: a delay such as 10m, or @UNIXTIME", NULL, 0},
        {"algorithm", CFG_STRING, M(algorithm), "HS256", 0, 0,
         "HS256/384/512, RS256/384/512, ES256/384/512", NULL, 0},
        {"secret", CFG_SECRET, M(secret), NULL, 0, 0,
         "HMAC secret (environment or config file only)", NULL, CFG_NO_FLAG},
        {"secret_file", CFG_STRING, M(secret_file), NULL, 0, 0, "file holding the HMAC secret",
         NULL, 0},
        {"key", CFG_STRING, M(key), NULL, 0, 0, "PEM private key file for RS*/ES*", NULL, 0},
        {"sub", CFG_STRING, M(sub), NULL, 0, 0, "sub claim", NULL, 0},
        {"iss", CFG_STRING, M(iss), NULL, 0, 0, "iss claim", NULL, 0},
        {"jti", CFG_STRING, M(jti), NULL, 0, 0, "jti claim", NULL, 0},
};
#undef M

#define V(f) offsetof(struct token_verify_opts, f)
static const struct cfg_opt verify_opts[] = {
        {"audience", CFG_STRING, V(audience), NULL, 0, 0, "required aud (unchecked when empty)",
         NULL, 0},
        {"algorithm", CFG_STRING, V(algorithm), "HS256", 0, 0, "the algorithm the token must use",
         NULL, 0},
        {"secret", CFG_SECRET, V(secret), NULL, 0, 0, "HMAC secret (environment only)", NULL,
         CFG_NO_FLAG},
        {"secret_file", CFG_STRING, V(secret_file), NULL, 0, 0, "file holding the HMAC secret",
         NULL, 0},
        {"key", CFG_STRING, V(key), NULL, 0, 0, "PEM public key file for RS*/ES*", NULL, 0},
        {"skew", CFG_DURATION, V(skew), "5s", 0, 3600000, "clock skew allowed on exp/nbf/iat", NULL,
         0},
};
#undef V

#define T(f) offsetof(struct token_turn_opts, f)
static const struct cfg_opt turn_opts[] = {
        {"config", CFG_STRING, T(config), NULL, 0, 0, "JSON file with any of these settings", NULL,
         CFG_NO_FILE},
        {"user", CFG_STRING, T(user), NULL, 0, 0,
         "user part of the REST username (relay serve uses the booking_id)", NULL, 0},
        {"lifetime", CFG_DURATION, T(lifetime), "1h", 1000, 3650LL * 86400000,
         "validity of the credential, e.g. 3600 (s) or 1h", NULL, 0},
        {"secret", CFG_SECRET, T(secret), NULL, 0, 0,
         "the relay's HMAC secret (environment or config file only)", NULL, CFG_NO_FLAG},
        {"secret_file", CFG_STRING, T(secret_file), NULL, 0, 0,
         "file holding the relay's HMAC secret", NULL, 0},
        {"turn_secret_file", CFG_STRING, T(turn_secret_file), NULL, 0, 0,
         "relay serve's --turn-secret-file, when it has one (else derived from the secret)", NULL,
         0},
        {"print_secret", CFG_BOOL, T(print_secret), "false", 0, 0,
         "print the REST secret (coturn's static-auth-secret) and nothing else", NULL, 0},
        {"json", CFG_BOOL, T(json), "false", 0, 0,
         "print the answer of POST /ice instead of two lines", NULL, 0},
        {"urls", CFG_STRING, T(urls), NULL, 0, 0,
         "for --json: comma-separated STUN/TURN URLs (turn:HOST:PORT?transport=udp,...)", NULL, 0},
};
#undef T

static const struct cfg_table mint_table = {mint_opts, sizeof(mint_opts) / sizeof(mint_opts[0]),
                                            "RELAY_TOKEN_", "config"};
static const struct cfg_table verify_table = {
        verify_opts, sizeof(verify_opts) / sizeof(verify_opts[0]), "RELAY_TOKEN_", NULL};

static const struct cfg_table turn_table = {turn_opts, sizeof(turn_opts) / sizeof(turn_opts[0]),
                                            "RELAY_TOKEN_", "config"};

static const char mint_synopsis[] =
        "usage: relay token [OPTIONS]\n"
        "       relay token verify [OPTIONS] [TOKEN]\n"
        "       relay token turn [OPTIONS]\n\n"
        "Mints a JWT for relay on stdout. Example:\n"
        "  RELAY_TOKEN_SECRET=... relay token --audience https://relay.example.org --topic expt00 --lifetime 1h";
static const char verify_synopsis[] =
        "usage: relay token verify [OPTIONS] [TOKEN]\n\n"
        "Prints the token's claims (TOKEN, or stdin) as JSON and checks it: exit 0 valid, 1 invalid.";

static const char turn_synopsis[] =
        "usage: relay token turn [OPTIONS]\n\n"
        "Prints a TURN REST username and credential (one a line), valid with relay serve's TURN\n"
        "server and a coturn sharing its secret; --json prints the answer of POST /ice instead,\n"
        "--print-secret the REST secret (coturn: --use-auth-secret --static-auth-secret=...).\n"
        "Example:\n"
        "  relay token turn --secret-file relay.secret --user lab1 --lifetime 1h";

static int mint(int argc, char **argv)
{
	struct token_mint_opts o = {0};
	char why[200], *tok = NULL;
	int first, ret;

	ret = cmd_parse("token", mint_synopsis, &mint_table, &o, argc, argv, &first);
	if (ret < 0 && first < argc)
		ret = cmd_usage_error("token",
		                      "unexpected argument (did you mean 'relay token verify'?)");
	if (ret < 0) {
		ret = token_mint(&o, (int64_t)time(NULL), &tok, why) ? EXIT_FAIL : EXIT_OK;
		if (ret == EXIT_OK)
			printf("%s\n", tok);
		else
			fprintf(stderr, "relay token: %s\n", why);
	}
	if (tok) {
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
	}
	cfg_release(&mint_table, &o);
	return ret;
}

/* The token from the argument or the first line of stdin, at most 16 KiB. */
static char *read_token(const char *arg)
{
	char buf[16384];
	size_t n;

	if (arg)
		return strdup(arg);
	n = fread(buf, 1, sizeof(buf) - 1, stdin);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return strdup(buf);
}

static int verify(int argc, char **argv)
{
	struct token_verify_opts o = {0};
	char why[200], *tok = NULL;
	int first, ret;

	ret = cmd_parse("token verify", verify_synopsis, &verify_table, &o, argc, argv, &first);
	if (ret < 0 && argc - first > 1)
		ret = cmd_usage_error("token verify", "give at most one token");
	if (ret < 0) {
		tok = read_token(first < argc ? argv[first] : NULL);
		ret = tok ? token_verify(&o, tok, (int64_t)time(NULL), stdout, why) : -1;
		if (ret == 0) {
			fprintf(stderr, "valid\n");
		} else if (ret == 1) {
			fprintf(stderr, "invalid: %s\n", why);
		} else {
			fprintf(stderr, "relay token verify: %s\n", tok ? why : "out of memory");
			ret = EXIT_FAIL;
		}
	}
	if (tok) {
		OPENSSL_cleanse(tok, strlen(tok));
		free(tok);
	}
	cfg_release(&verify_table, &o);
	return ret;
}

static int turn(int argc, char **argv)
{
	struct token_turn_opts o = {0};
	char why[200];
	int first, ret;

	ret = cmd_parse("token turn", turn_synopsis, &turn_table, &o, argc, argv, &first);
	if (ret < 0 && first < argc)
		ret = cmd_usage_error("token turn", "unexpected argument");
	if (ret < 0) {
		ret = token_turn(&o, (int64_t)time(NULL), stdout, why) ? EXIT_FAIL : EXIT_OK;
		if (ret != EXIT_OK)
			fprintf(stderr, "relay token turn: %s\n", why);
	}
	cfg_release(&turn_table, &o);
	return ret;
}

int cmd_token(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--config-reference") == 0) {
		cfg_markdown(&mint_table, stdout);
		return EXIT_OK;
	}
	if (argc > 1 && strcmp(argv[1], "verify") == 0)
		return verify(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "turn") == 0)
		return turn(argc - 1, argv + 1);
	return mint(argc, argv);
}
