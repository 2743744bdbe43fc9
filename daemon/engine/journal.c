// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * journal.c - ferryd's journal: one JSON file per migration under
 * state_dir/migrations/, replaced atomically (write, fsync, rename, fsync the
 * directory) before each step's side effect, so that after a crash the file
 * names the step that may have been half done.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

static char journal_dir[PATH_MAX];

int journal_init(const char *state_dir)
{
	int ret;

	if (snprintf(journal_dir, sizeof(journal_dir), "%s/migrations", state_dir) >=
	    (int)sizeof(journal_dir))
		return -ENAMETOOLONG;
	ret = mkdir_p(journal_dir, 0700);
	if (ret)
		log_err("journal %s: %s", journal_dir, strerror(-ret));
	return ret;
}

/*
 * <id>.json for the source's record, <id>.dest.json for the destination's:
 * a resize onto the same host keeps both.
 */
static int journal_path(const char *id, enum mig_role role, char *buf, size_t len)
{
	/* Ids are ours ("m-" + hex); refuse anything that could escape. */
	if (!id[0] || strchr(id, '/') || id[0] == '.')
		return -EINVAL;
	if (snprintf(buf, len, "%s/%s%s.json", journal_dir, id,
		     role == MIG_ROLE_DEST ? ".dest" : "") >= (int)len)
		return -ENAMETOOLONG;
	return 0;
}

int journal_save(const struct migration *m)
{
	struct json_object *o;
	char path[PATH_MAX];
	const char *s;
	int ret;

	ret = journal_path(m->id, m->role, path, sizeof(path));
	if (ret)
		return ret;
	o = mig_to_json(m, true);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
	ret = file_write_atomic(path, s, strlen(s), 0600);
	if (ret)
		log_err("migration %s: journal %s: %s", m->id, path, strerror(-ret));
	json_object_put(o);
	return ret;
}

int journal_remove(const char *id, enum mig_role role)
{
	char path[PATH_MAX];
	int ret;

	ret = journal_path(id, role, path, sizeof(path));
	if (ret)
		return ret;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return fsync_dir_of(path);
}

int journal_load_all(int (*fn)(struct migration *m, void *ctx), void *ctx)
{
	struct dirent *de;
	DIR *dir;
	int ret = 0;

	dir = opendir(journal_dir);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		char path[PATH_MAX], err[256];
		struct json_object *o;
		struct migration *m;
		size_t len = strlen(de->d_name);
		char *buf;

		if (len < 6 || strcmp(de->d_name + len - 5, ".json") || de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", journal_dir, de->d_name);
		buf = file_read_all(path, 16 * MIB, NULL);
		if (!buf) {
			log_err("journal %s: %s", path, strerror(errno));
			continue;
		}
		o = json_tokener_parse(buf);
		free(buf);
		m = mig_new();
		if (!o || !m || mig_from_json(m, o, err, sizeof(err))) {
			/* Keep the file for a human; never act on a record we can't read. */
			log_err("journal %s: unreadable record, ignored: %s", path,
				o ? err : "not JSON");
			json_object_put(o);
			mig_free(m);
			continue;
		}
		json_object_put(o);
		ret = fn(m, ctx);
		if (ret)
			break;
	}
	closedir(dir);
	return ret;
}
