// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * auth.c - the standalone receiver's policy (ferry-copy --serve): one
 * 256-bit token for every transfer, compared in constant time, and
 * destinations confined under --root.  The directory of the requested path
 * is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so no
 * "..", absolute symlink or /proc link leads out of the root; the file itself
 * is then opened in that directory with O_NOFOLLOW (dest.c).  The journal
 * directory (ROOT/.ferry) is refused by what the path resolved to, not by
 * how it is spelled ("./.ferry", "sub/../.ferry").  ferryd has its
 * own authorize callback: per-transfer tokens and exact paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "common.h"
#include "mover/mover.h"

#define JOURNAL_SUBDIR ".ferry"

int mover_root_auth_init(struct mover_root_auth *ra, const char *root, const uint8_t *token)
{
	char real[PATH_MAX];

	memset(ra, 0, sizeof(*ra));
	ra->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ra->root_fd < 0)
		return -errno;
	if (!realpath(root, real)) {
		close(ra->root_fd);
		ra->root_fd = -1;
		return -errno;
	}
	memcpy(ra->token, token, MOVER_TOKEN_BYTES);
	snprintf(ra->journal_dir, sizeof(ra->journal_dir), "%.*s/%s", PATH_MAX - 16, real,
		 JOURNAL_SUBDIR);
	return 0;
}

void mover_root_auth_fini(struct mover_root_auth *ra)
{
	if (ra->root_fd >= 0)
		close(ra->root_fd);
	ra->root_fd = -1;
	explicit_bzero(ra->token, sizeof(ra->token));
}

static bool bad_path(const char *p, const char **why)
{
	size_t n = strlen(p);
	const char *base = strrchr(p, '/');

	base = base ? base + 1 : p;
	if (!n || p[n - 1] == '/') {
		*why = "not a file path";
		return true;
	}
	if (!strncmp(p, JOURNAL_SUBDIR "/", sizeof(JOURNAL_SUBDIR)) || !strcmp(p, JOURNAL_SUBDIR)) {
		*why = "the journal directory is not a destination";
		return true;
	}
	if (base[0] == '.' && n > 11 && !strcmp(p + n - 11, ".ferry-part")) {
		*why = "a part file is not a destination";
		return true;
	}
	if (!strcmp(base, ".") || !strcmp(base, "..") || strlen(base) > NAME_MAX) {
		*why = "not a file name";
		return true;
	}
	return false;
}

/* The directory fd leads into (or under) the journal directory. */
static bool in_journal_dir(const struct mover_root_auth *ra, int fd)
{
	char proc[64], real[PATH_MAX];
	size_t n = strlen(ra->journal_dir);
	ssize_t r;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	r = readlink(proc, real, sizeof(real) - 1);
	if (r < 0)
		return true; /* cannot tell: refuse */
	real[r] = '\0';
	return !strncmp(real, ra->journal_dir, n) && (real[n] == '\0' || real[n] == '/');
}

int mover_root_authorize(void *ctx, const struct mover_auth_req *req, struct mover_dest *dest)
{
	struct mover_root_auth *ra = ctx;
	struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	char dir[MOVER_PATH_MAX + 1];
	const char *p = req->path, *why, *slash;
	long fd;

	if (ct_memcmp(req->token, ra->token, MOVER_TOKEN_BYTES)) {
		snprintf(dest->reason, sizeof(dest->reason), "access denied (wrong token)");
		return -EACCES;
	}
	while (*p == '/')
		p++;
	if (bad_path(p, &why)) {
		snprintf(dest->reason, sizeof(dest->reason), "%s: %s", req->path, why);
		return -EINVAL;
	}
	slash = strrchr(p, '/');
	if (slash)
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - p), p);
	else
		snprintf(dir, sizeof(dir), ".");
	fd = syscall(SYS_openat2, ra->root_fd, dir, &how, sizeof(how));
	if (fd < 0) {
		int e = errno;

		snprintf(dest->reason, sizeof(dest->reason), "%s: %s", req->path,
			 e == EXDEV || e == ELOOP ? "leads outside the served root" :
			 e == ENOENT ? "directory does not exist" : strerror(e));
		return e == EXDEV || e == ELOOP ? -EACCES : -e;
	}
	if (in_journal_dir(ra, (int)fd)) {
		close((int)fd);
		snprintf(dest->reason, sizeof(dest->reason), "%s: %s", req->path,
			 "the journal directory is not a destination");
		return -EACCES;
	}
	dest->dir_fd = (int)fd;
	snprintf(dest->name, sizeof(dest->name), "%s", slash ? slash + 1 : p);
	dest->may_create = true;
	snprintf(dest->journal_dir, sizeof(dest->journal_dir), "%s", ra->journal_dir);
	return 0;
}
