/*
 * token: mint and inspect relay JWTs from the command line (`relay token`), with the settings
 * and environment names practable's shell scripts use (RELAY_TOKEN_*).
 */
#ifndef RELAY_TOKEN_H
#define RELAY_TOKEN_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct token_mint_opts {
	char *config;
	char *audience;
	char *secret; /* HS*: the shared secret (environment or config file only) */
	char *secret_file;
	char *key; /* RS*, ES*: PEM private key file */
	char *algorithm;
	char *topic;
	char *booking_id;
	char *connection_type;
	char *scopes; /* "read,write,...": when set, replaces the scope_* settings */
	bool scope_read, scope_write, scope_admin;
	char *scope_other; /* extra scopes, comma separated */
	int64_t lifetime;  /* ms */
	char *not_before;  /* "10m" from now, or "@UNIX" absolute */
	char *sub, *iss, *jti;
};

struct token_verify_opts {
	char *audience;
	char *secret;
	char *secret_file;
	char *key; /* PEM public key file */
	char *algorithm;
	int64_t skew; /* ms */
};

/*
 * Mint a token from @o at time @now into *out (free with free()). On failure returns -EINVAL and
 * a one-line reason in @why (naming the missing or bad setting), or another negative errno.
 */
int token_mint(const struct token_mint_opts *o, int64_t now, char **out, char why[200]);

/*
 * Check @tok against @o at @now. Writes the claims as JSON to @claims_out (even for a refused
 * token when its payload decodes) and returns 0 when valid, 1 when refused with the reason in
 * @why, or -EINVAL for a bad setting (reason in @why).
 */
int token_verify(const struct token_verify_opts *o, const char *tok, int64_t now, FILE *claims_out,
                 char why[200]);

#endif
