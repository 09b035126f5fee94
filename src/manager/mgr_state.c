/* The manager's files: atomic writes, state.json load/save, /proc/PID/stat and boot id reads, tree removal. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <jansson.h>
#include "manager/manager.h"

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mgr_write_atomic(const char *path, const char *data, size_t len)
{
	char tmp[4096 + 8];
	int fd, rc;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	rc = write_all(fd, data, len);
	/* fsync before rename: after a host crash the file is old or new, not empty (ext4 delalloc). */
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0)
		unlink(tmp);
	return rc;
}

int mgr_read_file(const char *path, size_t max, char **out, size_t *lenp)
{
	size_t cap = max + 1, len = 0;
	char *buf;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	buf = malloc(cap + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	/* Read one byte past max, so an oversized file is told from one of exactly max bytes. */
	while (len < cap) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (rc == 0 && len > max)
		rc = -EFBIG;
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*out = buf;
	*lenp = len;
	return 0;
}

int mgr_state_save(const char *dir, const struct mgr_record *rec)
{
	char path[4096];
	json_t *j;
	char *text;
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/state.json", dir) >= sizeof(path))
		return -ENAMETOOLONG;
	j = mgr_record_to_json(rec);
	text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	rc = mgr_write_atomic(path, text, strlen(text));
	free(text);
	return rc;
}

int mgr_state_load(const char *dir, struct mgr_record *rec, struct mgr_err *err)
{
	char path[4096];
	json_error_t jerr;
	char *text;
	size_t len;
	json_t *j;
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/state.json", dir) >= sizeof(path)) {
		mgr_err_set(err, 500, "state.json: path too long");
		return -1;
	}
	rc = mgr_read_file(path, MGR_STATE_MAX, &text, &len);
	if (rc < 0) {
		mgr_err_set(err, 500, "state.json: %s", strerror(-rc));
		return -1;
	}
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	free(text);
	if (!j) {
		mgr_err_set(err, 500, "state.json: line %d: %s", jerr.line, jerr.text);
		return -1;
	}
	rc = mgr_record_from_json(j, rec, err);
	json_decref(j);
	if (rc < 0) {
		char why[MGR_MSG_MAX];

		memcpy(why, err->msg, sizeof(why));
		mgr_err_set(err, 500, "state.json: %s", why);
	}
	return rc;
}

int mgr_read_boot_id(char buf[MGR_BOOT_ID_LEN + 1])
{
	char *text;
	size_t len;
	int rc = mgr_read_file("/proc/sys/kernel/random/boot_id", 64, &text, &len);

	if (rc < 0)
		return rc;
	if (len < MGR_BOOT_ID_LEN) {
		free(text);
		return -EINVAL;
	}
	memcpy(buf, text, MGR_BOOT_ID_LEN);
	buf[MGR_BOOT_ID_LEN] = '\0';
	free(text);
	return 0;
}

int mgr_proc_stat(pid_t pid, char *state, uint64_t *starttime)
{
	char path[64], *text;
	size_t len;
	int rc;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	/* comm is at most 64 bytes and the other 50 fields are numbers: 4 KiB is plenty. */
	rc = mgr_read_file(path, 4096, &text, &len);
	if (rc < 0)
		return rc == -ENOENT ? -ESRCH : rc;
	rc = mgr_parse_proc_stat(text, len, state, starttime) < 0 ? -EINVAL : 0;
	free(text);
	return rc;
}

/* nftw has no user pointer; returning the failure stops the walk and is nftw's result. */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int mgr_rmtree(const char *path)
{
	int rc;

	/* FTW_PHYS: never follow a symlink out of the tree; FTW_MOUNT: never cross into a mount. */
	rc = nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (rc == -1)
		return errno == ENOENT ? 0 : -errno;
	return rc;
}
