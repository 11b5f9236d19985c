/*
 * token/turn: TURN REST credentials on the command line (`relay token turn`), from the secret
 * relay serve uses: its --turn-secret-file, else the key derived from the relay's HMAC secret
 * (pkg/turncred), so that a shell script, or a coturn given --print-secret, agrees with /ice.
 */
#include "token/token.h"
#include "pkg/jwt/jwt.h"
#include "pkg/secret/secret.h"
#include "pkg/turncred/turncred.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* Drop trailing blanks and line ends, as relay serve does with its --turn-secret-file. */
static void trim_end(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = '\0';
}

int token_turn_secret(const struct token_turn_opts *o, char **out, char why[200])
{
	struct rjwt_key key = {0};
	char derived[TURNCRED_SECRET_HEX + 1];
	int ret;

	*out = NULL;
	if (o->turn_secret_file && *o->turn_secret_file) {
		ret = secret_read_file(o->turn_secret_file, out);
		if (ret) {
			snprintf(why, 200, "cannot read turn_secret_file '%.120s': %s",
			         o->turn_secret_file, strerror(-ret));
			return ret;
		}
		trim_end(*out);
		if (**out)
			return 0;
		secret_free(*out);
		*out = NULL;
		snprintf(why, 200, "turn_secret_file '%.120s' is empty", o->turn_secret_file);
		return -ENODATA;
	}
	if (rjwt_key_load(RJWT_HS256, o->secret, o->secret_file, NULL, &key, why))
		return -EINVAL;
	ret = turncred_derive(key.data, key.len, derived);
	rjwt_key_release(&key);
	if (ret) {
		snprintf(why, 200, "cannot derive the REST secret (OpenSSL)");
		return ret;
	}
	*out = strdup(derived);
	OPENSSL_cleanse(derived, sizeof(derived));
	if (!*out) {
		snprintf(why, 200, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* The comma-separated @urls as a JSON array of the non-empty items (new reference). */
static json_t *url_array(const char *urls)
{
	json_t *a = json_array();

	while (a && urls && *urls) {
		size_t n = strcspn(urls, ",");

		if (n)
			json_array_append_new(a, json_stringn(urls, n));
		urls += n + (urls[n] == ',');
	}
	return a;
}

/* {"iceServers":[{"urls":[...],"username":...,"credential":...}],"expires":N} on @out. */
static int print_json(const struct token_turn_opts *o, const char *user, const char *cred,
                      int64_t expiry, FILE *out)
{
	json_t *v = json_pack("{s:[{s:o,s:s,s:s}],s:I}", "iceServers", "urls", url_array(o->urls),
	                      "username", user, "credential", cred, "expires", (json_int_t)expiry);
	int ret = v ? json_dumpf(v, out, JSON_COMPACT | JSON_PRESERVE_ORDER) : -1;

	fputc('\n', out);
	json_decref(v);
	return ret ? -ENOMEM : 0;
}

int token_turn(const struct token_turn_opts *o, int64_t now, FILE *out, char why[200])
{
	char user[TURNCRED_USER_MAX + 32], cred[TURNCRED_PASSWORD + 1], *secret = NULL;
	int64_t expiry = now + o->lifetime / 1000;
	int ret;

	if (!o->print_secret && (!o->user || !*o->user)) {
		snprintf(why, 200, "no user: set --user (the part after '<expiry>:')");
		return -EINVAL;
	}
	if (!o->print_secret && o->json && (!o->urls || !*o->urls)) {
		snprintf(why, 200, "--json needs --urls (e.g. turn:relay.example.org:3478)");
		return -EINVAL;
	}
	if (!o->print_secret && turncred_username(expiry, o->user, user, sizeof(user))) {
		snprintf(why, 200,
		         "bad user '%.60s': 1 to %d printable ASCII characters without ':'",
		         o->user, TURNCRED_USER_MAX);
		return -EINVAL;
	}
	ret = token_turn_secret(o, &secret, why);
	if (ret)
		return ret;
	if (o->print_secret) {
		fprintf(out, "%s\n", secret);
		goto out;
	}
	ret = turncred_password(secret, strlen(secret), user, strlen(user), cred);
	if (ret) {
		snprintf(why, 200, "cannot compute the credential (OpenSSL)");
		goto out;
	}
	if (o->json)
		ret = print_json(o, user, cred, expiry, out);
	else
		fprintf(out, "%s\n%s\n", user, cred);
	OPENSSL_cleanse(cred, sizeof(cred));
out:
	secret_free(secret);
	return ret;
}
