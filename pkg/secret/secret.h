/*
 * secret: read a secret (a key, a token, a password) from a file, and wipe and free it. Below
 * pkg/config, pkg/jwt and the clients, so none of them needs another for this. Never logs.
 */
#ifndef RELAY_SECRET_H
#define RELAY_SECRET_H

#define SECRET_MAX (64 * 1024)

/*
 * Read a secret from @path: the whole file less one trailing newline (and CR), at most
 * SECRET_MAX bytes, no NUL. *out is a new string: wipe and free it with secret_free().
 * 0, -errno, -EFBIG (too large) or -ENODATA (empty or holding a NUL).
 */
int secret_read_file(const char *path, char **out);

/* Wipe and free a secret string (NULL is fine). */
void secret_free(char *s);

#endif
