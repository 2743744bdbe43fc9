// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * disk.c - what the storage backends share: finding a backend by name,
 * running the tools they need (qemu-img, lvm) without a shell, image
 * facts from qemu-img, checksums, and Nova-style instance directories kept
 * aside as <dir>_resize for revert.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "daemon/storage/storage.h"

static const struct disk_ops *const disk_backends[] = {
	&disk_file_ops,
	&disk_lvm_ops,
};

const struct disk_ops *disk_ops_find(const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(disk_backends); i++)
		if (!strcmp(disk_backends[i]->name, name))
			return disk_backends[i];
	return NULL;
}

const struct disk_ops *disk_ops_at(int i)
{
	return i >= 0 && (size_t)i < ARRAY_SIZE(disk_backends) ? disk_backends[i] : NULL;
}

const struct disk_ops *disk_ops_for(const struct domxml_disk *dd, char *why, size_t len)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(disk_backends); i++)
		if (!disk_backends[i]->claims(dd, why, len))
			return disk_backends[i];
	return NULL;
}

bool disk_has(const struct mig_disk *d, unsigned int cap)
{
	const struct disk_ops *ops = disk_ops_find(d->backend);

	return ops && (ops->caps & cap) == cap;
}

void disk_kept_path(const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s_resize", path);
}

/* Run argv; stdout into out (if given), stderr into err.  0, or -EIO. */
static int run_capture(char *const argv[], char *out, size_t outlen, char *err, size_t errlen)
{
	int opipe[2] = { -1, -1 }, epipe[2] = { -1, -1 };
	size_t on = 0, en = 0;
	int status, ret = 0;
	pid_t pid;

	if (out && outlen)
		out[0] = '\0';
	if (err && errlen)
		err[0] = '\0';
	if (pipe2(opipe, O_CLOEXEC) < 0 || pipe2(epipe, O_CLOEXEC) < 0) {
		ret = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		goto out;
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		dup2(devnull, 0);
		dup2(opipe[1], 1);
		dup2(epipe[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(opipe[1]);
	close(epipe[1]);
	opipe[1] = epipe[1] = -1;
	for (;;) {
		char buf[4096];
		ssize_t n = read(opipe[0], buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out && on + 1 < outlen) {
			size_t k = MIN((size_t)n, outlen - on - 1);

			memcpy(out + on, buf, k);
			on += k;
			out[on] = '\0';
		}
	}
	for (;;) {
		char buf[1024];
		ssize_t n = read(epipe[0], buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (err && en + 1 < errlen) {
			size_t k = MIN((size_t)n, errlen - en - 1);

			memcpy(err + en, buf, k);
			en += k;
			err[en] = '\0';
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		ret = -EIO;
	if (err && en && err[en - 1] == '\n')
		err[en - 1] = '\0';
out:
	if (opipe[0] >= 0)
		close(opipe[0]);
	if (opipe[1] >= 0)
		close(opipe[1]);
	if (epipe[0] >= 0)
		close(epipe[0]);
	if (epipe[1] >= 0)
		close(epipe[1]);
	return ret;
}

int run_cmd(char *const argv[], char *err, size_t errlen)
{
	return run_capture(argv, NULL, 0, err, errlen);
}

int run_cmd_out(char *const argv[], char *out, size_t outlen, char *err, size_t errlen)
{
	return run_capture(argv, out, outlen, err, errlen);
}

static struct json_object *disk_qemu_info(const char *path)
{
	char *argv[] = { "qemu-img", "info", "-U", "--output=json", (char *)path, NULL };
	char out[16384], err[512];
	int ret;

	ret = run_capture(argv, out, sizeof(out), err, sizeof(err));
	if (ret) {
		log_err("%s: qemu-img info: %s", path, err);
		errno = EIO;
		return NULL;
	}
	return json_tokener_parse(out);
}

int disk_image_info(const char *path, const char *format, uint64_t *bytes, char *backing,
		    size_t blen)
{
	struct json_object *info, *v;
	int ret = 0;

	if (backing && blen)
		backing[0] = '\0';
	if (strcmp(format, "qcow2")) {
		/* raw: the container is the disk. */
		const struct disk_ops *ops = strncmp(path, "/dev/", 5) ? &disk_file_ops :
									   &disk_lvm_ops;

		return ops->size(path, bytes);
	}
	info = disk_qemu_info(path);
	if (!info)
		return -EIO;
	if (json_object_object_get_ex(info, "virtual-size", &v))
		*bytes = json_object_get_uint64(v);
	else
		ret = -EIO;
	if (backing && blen &&
	    (json_object_object_get_ex(info, "full-backing-filename", &v) ||
	     json_object_object_get_ex(info, "backing-filename", &v)))
		snprintf(backing, blen, "%s", json_object_get_string(v));
	json_object_put(info);
	return ret;
}

int disk_virtual_size(const char *path, const char *format, uint64_t *bytes)
{
	return disk_image_info(path, format, bytes, NULL, 0);
}

int disk_backing_file(const char *path, char *out, size_t len)
{
	struct json_object *info, *v;

	out[0] = '\0';
	info = disk_qemu_info(path);
	if (!info)
		return -EIO;
	if (json_object_object_get_ex(info, "full-backing-filename", &v) ||
	    json_object_object_get_ex(info, "backing-filename", &v))
		snprintf(out, len, "%s", json_object_get_string(v));
	json_object_put(info);
	return 0;
}

int disk_image_format(const char *path, char *out, size_t len)
{
	struct json_object *info, *v;
	int ret = -EIO;

	out[0] = '\0';
	info = disk_qemu_info(path);
	if (!info)
		return -EIO;
	if (json_object_object_get_ex(info, "format", &v)) {
		snprintf(out, len, "%s", json_object_get_string(v));
		ret = 0;
	}
	json_object_put(info);
	return ret;
}

int disk_sha256(const char *path, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *ctx = NULL;
	char *buf = NULL;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(MIB);
	ctx = EVP_MD_CTX_new();
	if (!buf || !ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, MIB);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(ctx, buf, (size_t)n);
	}
	EVP_DigestFinal_ex(ctx, md, &mdlen);
	hex_encode(md, mdlen, out);
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	close(fd);
	return ret;
}

static bool path_is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int inst_dir_keep(const char *dir)
{
	char kept[PATH_MAX];

	disk_kept_path(dir, kept, sizeof(kept));
	if (path_is_dir(kept) && !path_is_dir(dir))
		return 0; /* done before a restart */
	if (path_is_dir(kept)) {
		log_err("%s: cannot keep for revert: %s already exists", dir, kept);
		return -EEXIST;
	}
	if (rename(dir, kept) < 0) {
		log_err("%s: rename to %s: %s", dir, kept, strerror(errno));
		return -errno;
	}
	return fsync_dir_of(dir);
}

int inst_dir_restore(const char *dir)
{
	char kept[PATH_MAX];

	disk_kept_path(dir, kept, sizeof(kept));
	if (!path_is_dir(kept))
		return path_is_dir(dir) ? 0 : -ENOENT;
	if (path_is_dir(dir)) {
		log_err("%s: cannot restore %s over it", dir, kept);
		return -EEXIST;
	}
	if (rename(kept, dir) < 0) {
		log_err("%s: rename from %s: %s", dir, kept, strerror(errno));
		return -errno;
	}
	return fsync_dir_of(dir);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(p) < 0 && errno != ENOENT) {
		log_err("%s: remove: %s", p, strerror(errno));
		return -1;
	}
	return 0;
}

int inst_dir_remove(const char *dir)
{
	if (!path_is_dir(dir))
		return 0;
	if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return -EIO;
	return fsync_dir_of(dir);
}
