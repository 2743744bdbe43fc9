// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * rlimit-shim.c - LD_PRELOAD for the lab's sanlock daemons: a raise of
 * RLIMIT_MEMLOCK or RLIMIT_RTPRIO that this container refuses (it lacks
 * CAP_SYS_RESOURCE, and the hard limits are 8 MiB and 0) succeeds and
 * changes nothing.  sanlock raises both to unlimited at start and exits
 * when it cannot; the lab runs it with -l 0 (no mlockall) and -h 0 (no
 * real-time scheduling), so neither limit is ever used.  Every other
 * setrlimit, and every other failure, is passed through as it is.
 */
#include <dlfcn.h>
#include <errno.h>
#include <sys/resource.h>

typedef int (*setrlimit_fn)(__rlimit_resource_t, const struct rlimit *);

int setrlimit(__rlimit_resource_t res, const struct rlimit *rl)
{
	static setrlimit_fn real;
	int ret;

	if (!real)
		real = (setrlimit_fn)dlsym(RTLD_NEXT, "setrlimit");
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	ret = real(res, rl);
	if (ret < 0 && errno == EPERM && (res == RLIMIT_MEMLOCK || res == RLIMIT_RTPRIO))
		return 0;
	return ret;
}
