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

struct token_turn_opts {
	char *config;
	char *secret; /* the relay's HMAC secret (environment or config file only) */
	char *secret_file;
	char *turn_secret_file; /* relay serve's --turn-secret-file: used as it is, not derived */
	char *user;             /* the part after "<expiry>:" */
	int64_t lifetime;       /* ms */
	bool print_secret;      /* print the REST secret instead (coturn's static-auth-secret) */
	bool json;              /* print the /ice answer's shape */
	char *urls;             /* for json: comma-separated "turn:host:port?transport=udp", ... */
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

/*
 * The TURN REST secret relay serve uses with the same settings: the contents of
 * @o->turn_secret_file, else turncred_derive() of the HMAC secret. *out is a new string (wipe and
 * free it with secret_free()). 0, or a negative errno with a one-line reason in @why.
 */
int token_turn_secret(const struct token_turn_opts *o, char **out, char why[200]);

/*
 * `relay token turn`: print to @out the REST username ("<now + lifetime>:<user>") and its
 * credential, one a line, or the /ice answer's JSON (@o->json), or only the REST secret
 * (@o->print_secret). 0, or a negative errno with a one-line reason in @why.
 */
int token_turn(const struct token_turn_opts *o, int64_t now, FILE *out, char why[200]);

#endif
