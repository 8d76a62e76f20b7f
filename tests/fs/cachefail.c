/* cachefail.c — an LD_PRELOAD shim for tests only: makes writes under one directory fail with
 * a chosen errno while a trigger file exists, so that test_offline.py can give imapfs's disk
 * cache the errors a tmpfs cannot (EIO, EDQUOT) and take them away again.
 *
 *   IMAPFS_TEST_FAIL_DIR      absolute path: the calls below fail only for files under it
 *   IMAPFS_TEST_FAIL_TRIGGER  a file holding an errno number (e.g. "5"), and optionally the
 *                             word "write"; while it exists and holds one, the calls fail
 *
 * Failed: creating (open/openat with O_CREAT or O_TMPFILE, mkdir/mkdirat; not with "write":
 * then files are made and the bytes do not go in, as with a block quota), writing
 * (write/pwrite/pwrite64), syncing (fsync/fdatasync) and renaming (rename/renameat) — what
 * fs/bodycache.c and fs/state.c use to store.  Reading, unlinking and everything outside the
 * directory (the scratch files in $TMPDIR, /dev/fuse, sockets) pass untouched.  Built by
 * tests/fs/meson.build; never installed.
 */
/* open and open64 (and the others) are interposed each under its own name: no redirects */
#undef _FILE_OFFSET_BITS
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_mkdir)(const char *, mode_t);
static int (*real_mkdirat)(int, const char *, mode_t);

static const char *fail_dir, *trigger;

__attribute__((constructor)) static void init(void)
{
	real_open = dlsym(RTLD_NEXT, "open");
	real_openat = dlsym(RTLD_NEXT, "openat");
	real_write = dlsym(RTLD_NEXT, "write");
	real_pwrite = dlsym(RTLD_NEXT, "pwrite");
	real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
	real_fsync = dlsym(RTLD_NEXT, "fsync");
	real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
	real_rename = dlsym(RTLD_NEXT, "rename");
	real_renameat = dlsym(RTLD_NEXT, "renameat");
	real_mkdir = dlsym(RTLD_NEXT, "mkdir");
	real_mkdirat = dlsym(RTLD_NEXT, "mkdirat");
	fail_dir = getenv("IMAPFS_TEST_FAIL_DIR");
	trigger = getenv("IMAPFS_TEST_FAIL_TRIGGER");
}

/* The errno to fail with now: the trigger's number, or 0 (no trigger, nothing to do).
 * creating: the call makes a file or directory (spared in "write" mode). */
static int armed(int creating)
{
	char buf[32] = {0};
	int fd, saved = errno, err = 0;

	if (fail_dir == NULL || trigger == NULL)
		return 0;
	fd = real_open(trigger, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, buf, sizeof(buf) - 1) > 0)
			err = atoi(buf);
		close(fd);
	}
	if (creating && strstr(buf, "write") != NULL)
		err = 0;
	errno = saved;
	return err > 0 ? err : 0;
}

static int under_dir(const char *path)
{
	size_t n = strlen(fail_dir);
	return strncmp(path, fail_dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* Is the file open as fd under the directory? */
static int fd_under(int fd)
{
	char lnk[64], path[PATH_MAX];
	ssize_t n;

	snprintf(lnk, sizeof(lnk), "/proc/self/fd/%d", fd);
	n = readlink(lnk, path, sizeof(path) - 1);
	if (n <= 0)
		return 0;
	path[n] = '\0';
	return under_dir(path);
}

/* Is name (relative to dirfd unless absolute) under the directory? */
static int at_under(int dirfd, const char *name)
{
	char base[PATH_MAX], path[2 * PATH_MAX + 2];
	ssize_t n;

	if (name[0] == '/')
		return under_dir(name);
	if (dirfd == AT_FDCWD) {
		if (getcwd(base, sizeof(base)) == NULL)
			return 0;
	} else {
		char lnk[64];
		snprintf(lnk, sizeof(lnk), "/proc/self/fd/%d", dirfd);
		n = readlink(lnk, base, sizeof(base) - 1);
		if (n <= 0)
			return 0;
		base[n] = '\0';
	}
	snprintf(path, sizeof(path), "%s/%s", base, name);
	return under_dir(path);
}

/* errno to fail a call on fd with, or 0 */
static int fail_fd(int fd)
{
	int err = armed(0);
	return err != 0 && fd_under(fd) ? err : 0;
}

static int fail_at(int dirfd, const char *name, int creating)
{
	int err = armed(creating);
	return err != 0 && at_under(dirfd, name) ? err : 0;
}

static int creates(int flags)
{
	return (flags & O_CREAT) != 0 || (flags & O_TMPFILE) == O_TMPFILE;
}

/* The mode argument, when flags say there is one. */
#define MODE_ARG(flags, mode)                                                                   \
	do {                                                                                    \
		if (creates(flags)) {                                                           \
			va_list ap;                                                             \
			va_start(ap, flags);                                                    \
			mode = va_arg(ap, mode_t);                                              \
			va_end(ap);                                                             \
		}                                                                               \
	} while (0)

static int do_openat(int dirfd, const char *path, int flags, mode_t mode)
{
	int err;

	if (creates(flags) && (err = fail_at(dirfd, path, 1)) != 0) {
		errno = err;
		return -1;
	}
	if (dirfd == AT_FDCWD && path[0] == '/')
		return real_open(path, flags, mode);
	return real_openat(dirfd, path, flags, mode);
}

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return do_openat(AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return do_openat(AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return do_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
	mode_t mode = 0;
	MODE_ARG(flags, mode);
	return do_openat(dirfd, path, flags, mode);
}

ssize_t write(int fd, const void *buf, size_t len)
{
	int err = fail_fd(fd);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return real_write(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	int err = fail_fd(fd);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return real_pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
	int err = fail_fd(fd);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return real_pwrite64(fd, buf, len, off);
}

int fsync(int fd)
{
	int err = fail_fd(fd);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	int err = fail_fd(fd);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return real_fdatasync(fd);
}

int rename(const char *from, const char *to)
{
	int err = fail_at(AT_FDCWD, to, 0);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return real_rename(from, to);
}

int renameat(int fromfd, const char *from, int tofd, const char *to)
{
	int err = fail_at(tofd, to, 0);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return real_renameat(fromfd, from, tofd, to);
}

int mkdir(const char *path, mode_t mode)
{
	int err = fail_at(AT_FDCWD, path, 1);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return real_mkdir(path, mode);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
	int err = fail_at(dirfd, path, 1);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return real_mkdirat(dirfd, path, mode);
}
