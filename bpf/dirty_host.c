// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty_host.c - what the dirty tracker reads of the host rather than of
 * its BPF maps: process start times (slot owners), shared mappings in
 * /proc/PID/maps, block device sizes and layouts in /sys/dev/block, file
 * system types, and loop devices backed by a file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common.h"
#include "bpf/bpf.h"

uint32_t dirty_host_start_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	int fd, i;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p)
		return 0;
	/* Each space after ')' starts the next field from 3 on; starttime is 22. */
	for (i = 3; i <= 22 && p; i++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1)
		return 0;
	return (uint32_t)start;
}

bool dirty_host_alive(uint32_t tgid, uint32_t start)
{
	if (kill((pid_t)tgid, 0) < 0 && errno == ESRCH)
		return false;
	return dirty_host_start_ticks((pid_t)tgid) == start;
}

bool dirty_host_shared_mapping(uint64_t kdev, uint64_t ino)
{
	unsigned int kmaj = (unsigned int)(kdev >> 20), kmin = (unsigned int)(kdev & 0xfffff);
	bool found = false;
	struct dirent *de;
	DIR *dir;

	dir = opendir("/proc");
	if (!dir)
		return true; /* cannot tell: assume so */
	while (!found && (de = readdir(dir))) {
		char path[64], line[512];
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/maps", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned int maj, min;
			unsigned long long i;
			char perms[8];

			if (sscanf(line, "%*x-%*x %7s %*x %x:%x %llu", perms, &maj, &min, &i) != 4)
				continue;
			if (perms[3] == 's' && i == ino && maj == kmaj && min == kmin) {
				found = true;
				break;
			}
		}
		fclose(f);
	}
	closedir(dir);
	return found;
}

/* /sys/dev/block/MAJ:MIN/ATTR as a number. */
static int sysfs_u64(unsigned int maj, unsigned int min, const char *attr, uint64_t *v)
{
	char path[128], *s;
	int ret;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/%s", maj, min, attr);
	s = file_read_all(path, 64, NULL);
	if (!s)
		return -errno;
	s[strcspn(s, "\n")] = '\0';
	ret = parse_u64(s, v);
	free(s);
	return ret;
}

int dirty_host_bdev_size(unsigned int maj, unsigned int min, uint64_t *size)
{
	uint64_t sectors;
	int ret = sysfs_u64(maj, min, "size", &sectors);

	if (!ret)
		*size = sectors * 512;
	return ret;
}

int dirty_host_bdev_layout(unsigned int maj, unsigned int min, uint32_t *whole_devt,
			   uint64_t *start_sect)
{
	unsigned int wmaj = maj, wmin = min;
	char path[128], *s;
	uint64_t start = 0;

	*whole_devt = 0;
	*start_sect = 0;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/partition", maj, min);
	if (!access(path, F_OK)) {
		if (sysfs_u64(maj, min, "start", &start))
			return -EIO;
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../dev", maj, min);
		s = file_read_all(path, 64, NULL);
		if (!s || sscanf(s, "%u:%u", &wmaj, &wmin) != 2) {
			free(s);
			return -EIO;
		}
		free(s);
	}
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/mq", wmaj, wmin);
	if (access(path, F_OK))
		return 0; /* bio-based */
	*whole_devt = wmaj << 20 | wmin;
	*start_sect = start;
	return 0;
}

long dirty_host_fs_type(int fd)
{
	struct statfs sf;

	return fstatfs(fd, &sf) < 0 ? 0 : (long)sf.f_type;
}

int dirty_host_loop_backing(int fd, char *name, size_t len, bool *dio)
{
	struct stat me, st;
	struct dirent *de;
	int found = 0;
	DIR *dir;

	if (fstat(fd, &me) < 0)
		return 0;
	dir = opendir("/sys/block");
	if (!dir)
		return 0;
	while (!found && (de = readdir(dir))) {
		char path[PATH_MAX], *bf, *v;

		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
		bf = file_read_all(path, PATH_MAX, NULL);
		if (!bf)
			continue;
		bf[strcspn(bf, "\n")] = '\0';
		if (!stat(bf, &st) && st.st_dev == me.st_dev && st.st_ino == me.st_ino) {
			snprintf(path, sizeof(path), "/sys/block/%s/loop/dio", de->d_name);
			v = file_read_all(path, 16, NULL);
			*dio = v && v[0] == '1';
			free(v);
			snprintf(name, len, "%s", de->d_name);
			found = 1;
		}
		free(bf);
	}
	closedir(dir);
	return found;
}
