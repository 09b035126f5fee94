/* Loader helpers without KVM: reading input files whole, and composing the guest command line. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "core/loader.h"

/* Largest kernel or initrd kiln reads (the guest could not hold more in the low 3 GiB anyway). */
#define LOADER_MAX_FILE (3ULL * GiB)

/* Linux's defaults: serial console, and exits that end kiln (reboot via the 8042, panic reboots at once). */
#define LINUX_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"

int loader_read_file(const char *path, uint8_t **buf, size_t *len, char *msg, size_t msglen)
{
	struct stat st;
	uint8_t *b = NULL;
	size_t got = 0;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = errno;
		snprintf(msg, msglen, "%s: %s", path, strerror(err));
		return -err;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(msg, msglen, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > LOADER_MAX_FILE) {
		snprintf(msg, msglen, "%s: too large (%lld bytes)", path, (long long)st.st_size);
		close(fd);
		return -EFBIG;
	}
	b = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!b) {
		close(fd);
		snprintf(msg, msglen, "%s: out of memory", path);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, b + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			snprintf(msg, msglen, "%s: read: %s", path, strerror(err));
			free(b);
			close(fd);
			return -err;
		}
		got += (size_t)n;
	}
	close(fd);
	*buf = b;
	*len = got;
	return 0;
}

char *loader_cmdline(const char *user, bool is_linux, const char *extra)
{
	const char *base = user ? user : (is_linux ? LINUX_DEFAULT_CMDLINE : "");
	const char *add = (is_linux && extra && *extra) ? extra : "";
	size_t n = strlen(base) + strlen(add) + 2;
	char *s = malloc(n);

	if (!s)
		return NULL;
	snprintf(s, n, "%s%s%s", base, (*base && *add) ? " " : "", add);
	return s;
}

