// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * journal.c - ferryd's journal: one JSON file per migration under
 * state_dir/migrations/, replaced atomically (write, fsync, rename, fsync the
 * directory) before each step's side effect, so that after a crash the file
 * names the step that may have been half done.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/engine/engine.h"

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

/*
 * Serialize under the record's lock (with a sequence number), write and
 * fsync without it, then rename into place unless a later snapshot got
 * there first; the directory's fsync makes the rename durable.  Two saves
 * of one record can race; the newest state always wins.
 */
int journal_save(struct migration *m)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32];
	struct json_object *o;
	uint64_t seq;
	char *s;
	int ret;

	if (!m->flow)
		return -EPERM; /* foreign: left as found */
	ret = journal_path(m->id, m->role, path, sizeof(path));
	if (ret)
		return ret;
	mig_lock(m);
	seq = ++m->journal_seq;
	o = mig_to_json(m, true);
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	mig_unlock(m);
	json_object_put(o);
	if (!s)
		return -ENOMEM;
	snprintf(tmp, sizeof(tmp), "%s.tmp.%" PRIu64, path, seq);
	unlink(tmp); /* a crash's leftover: ours by name, in our own dir */
	ret = file_write_new(tmp, s, strlen(s), 0600);
	free(s);
	if (!ret) {
		mig_lock(m);
		if (seq > m->journal_done) {
			if (rename(tmp, path) < 0)
				ret = -errno;
			else
				m->journal_done = seq;
		} else {
			unlink(tmp);
		}
		mig_unlock(m);
	}
	if (!ret)
		ret = fsync_dir_of(path);
	if (ret)
		log_err("migration %s: journal %s: %s", m->id, path, strerror(-ret));
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
		int rc;

		if (len < 6 || strcmp(de->d_name + len - 5, ".json") || de->d_name[0] == '.')
			continue; /* and *.json.tmp.N: a save a crash cut short */
		snprintf(path, sizeof(path), "%s/%s", journal_dir, de->d_name);
		buf = file_read_all(path, 16 * MIB, NULL);
		if (!buf) {
			log_err("journal %s: %s", path, strerror(errno));
			continue;
		}
		o = json_tokener_parse(buf);
		free(buf);
		m = mig_new();
		rc = o && m ? mig_from_json(m, o, err, sizeof(err)) : -EINVAL;
		if (rc == -ENOTSUP) {
			/* A newer ferryd's: keep it, show it, never run it. */
			log_err("journal %s: not run: %s", path, m->foreign);
			json_object_put(o);
			ret = fn(m, ctx);
			if (ret)
				break;
			continue;
		}
		if (rc) {
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
