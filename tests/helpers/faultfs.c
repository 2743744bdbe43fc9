// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * faultfs.c - an LD_PRELOAD shim that makes chosen calls fail, to test
 * what the mover's receiver does when its disk does (a mock of a failing
 * disk: EIO and ENOSPC cannot be had from a healthy one on demand).
 *
 *	FERRY_FAULT="CALL:GLOB:NTH:ERRNO[,...]" LD_PRELOAD=build/tests/libfaultfs.so cmd
 *
 * CALL is fdatasync, fsync, pwrite or posix_memalign; GLOB is matched
 * (fnmatch, FNM_PATHNAME off) against the path of the call's fd
 * (/proc/self/fd; "*" for posix_memalign); NTH is "N" (the Nth matching
 * call fails) or "N+" (the Nth and every later one); ERRNO is EIO, ENOSPC
 * or ENOMEM.  Every failure is logged on stderr as "faultfs: ...", so a
 * test can see that the fault was hit.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RULES_MAX 8

struct rule {
	char call[32];
	char glob[256];
	unsigned long nth;
	int every; /* N+ */
	int err;
	unsigned long seen;
};

static struct rule rules[RULES_MAX];
static int nrules;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int errno_parse(const char *s)
{
	if (!strcmp(s, "EIO"))
		return EIO;
	if (!strcmp(s, "ENOSPC"))
		return ENOSPC;
	if (!strcmp(s, "ENOMEM"))
		return ENOMEM;
	return 0;
}

static void rules_parse(void)
{
	const char *env = getenv("FERRY_FAULT");
	char buf[2048], *save = NULL, *tok;

	if (!env)
		return;
	snprintf(buf, sizeof(buf), "%s", env);
	for (tok = strtok_r(buf, ",", &save); tok && nrules < RULES_MAX;
	     tok = strtok_r(NULL, ",", &save)) {
		struct rule *r = &rules[nrules];
		char nth[32], err[32], *end;

		if (sscanf(tok, "%31[^:]:%255[^:]:%31[^:]:%31s", r->call, r->glob, nth, err) != 4)
			continue;
		r->nth = strtoul(nth, &end, 10);
		r->every = *end == '+';
		r->err = errno_parse(err);
		if (r->nth && r->err)
			nrules++;
	}
}

static int fd_path(int fd, char *out, size_t len)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, out, len - 1);
	if (n < 0)
		return -1;
	out[n] = '\0';
	return 0;
}

/* The errno this call must fail with, or 0. */
static int fault(const char *call, int fd)
{
	char path[4096] = "*";
	int i, err = 0;

	pthread_once(&once, rules_parse);
	if (!nrules)
		return 0;
	if (fd >= 0 && fd_path(fd, path, sizeof(path)))
		return 0;
	pthread_mutex_lock(&lock);
	for (i = 0; i < nrules && !err; i++) {
		struct rule *r = &rules[i];

		if (strcmp(r->call, call) || fnmatch(r->glob, path, 0))
			continue;
		r->seen++;
		if (r->seen == r->nth || (r->every && r->seen > r->nth))
			err = r->err;
	}
	pthread_mutex_unlock(&lock);
	if (err) {
		char msg[4200];
		int n = snprintf(msg, sizeof(msg), "faultfs: %s(%s): %s\n", call, path,
				 strerror(err));

		if (write(2, msg, (size_t)n) < 0)
			err = err; /* nowhere to say it */
	}
	return err;
}

typedef int (*sync_fn)(int);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef int (*memalign_fn)(void **, size_t, size_t);

#define REAL(name, type)                                         \
	static type real_##name;                                 \
	if (!real_##name)                                        \
	real_##name = (type)dlsym(RTLD_NEXT, #name)

int fdatasync(int fd)
{
	REAL(fdatasync, sync_fn);
	int err = fault("fdatasync", fd);

	if (err) {
		errno = err;
		return -1;
	}
	return real_fdatasync(fd);
}

int fsync(int fd)
{
	REAL(fsync, sync_fn);
	int err = fault("fsync", fd);

	if (err) {
		errno = err;
		return -1;
	}
	return real_fsync(fd);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	REAL(pwrite, pwrite_fn);
	int err = fault("pwrite", fd);

	if (err) {
		errno = err;
		return -1;
	}
	return real_pwrite(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	REAL(pwrite64, pwrite_fn);
	int err = fault("pwrite", fd);

	if (err) {
		errno = err;
		return -1;
	}
	return real_pwrite64(fd, buf, len, off);
}

int posix_memalign(void **p, size_t align, size_t size)
{
	REAL(posix_memalign, memalign_fn);
	int err = fault("posix_memalign", -1);

	if (err)
		return err;
	return real_posix_memalign(p, align, size);
}
