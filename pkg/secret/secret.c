/* secret: secrets read from files, wiped before they are freed. */
#include "pkg/secret/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <openssl/crypto.h>

void secret_free(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

/* Read at most @max + 1 bytes of @path into @buf; the length or -errno. */
static ssize_t read_at_most(const char *path, char *buf, size_t max)
{
	size_t len = 0;
	ssize_t r = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (len < max + 1 && (r = read(fd, buf + len, max + 1 - len)) > 0)
		len += (size_t)r;
	if (r < 0)
		r = -errno;
	close(fd);
	return r < 0 ? r : (ssize_t)len;
}

int secret_read_file(const char *path, char **out)
{
	char *buf = malloc(SECRET_MAX + 1);
	ssize_t n;
	size_t len;
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	n = read_at_most(path, buf, SECRET_MAX);
	if (n < 0) {
		ret = (int)n;
		goto out_free;
	}
	len = (size_t)n;
	if (len > SECRET_MAX) {
		ret = -EFBIG;
		goto out_free;
	}
	if (len && buf[len - 1] == '\n')
		len--;
	if (len && buf[len - 1] == '\r')
		len--;
	if (len == 0 || memchr(buf, '\0', len)) {
		ret = -ENODATA;
		goto out_free;
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
out_free:
	OPENSSL_cleanse(buf, SECRET_MAX + 1);
	free(buf);
	return ret;
}
