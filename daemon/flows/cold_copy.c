// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * coldcopy.c - cold migration and resize, the copy: a transfer per disk
 * and round (the destination hands out a token for it), whole disks first
 * while the VM runs, then the ranges the dirty tracker drained, round after
 * round until the delta is small; the last round runs with the VM off.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bpf/bpf.h"
#include "daemon/flows/flows.h"

/* Ask the destination for a transfer into disk @i (at its current size). */
static int cold_xfer_open(struct migration *m, int i, struct cold_disk_state *st, char *err,
			  size_t errlen)
{
	const struct disk_ops *ops = disk_ops_find(m->disks[i].backend);
	struct json_object *req, *rep, *v;
	const char *tok;
	uint64_t size;
	int ret;

	ret = ops->size(m->disks[i].src_path, &size);
	if (ret) {
		snprintf(err, errlen, "%s: %s", m->disks[i].src_path, strerror(-ret));
		return ret;
	}
	m->disks[i].size_bytes = size; /* a qcow2 file grows while the VM runs */
	/* One transfer id per session: a retry of the same session resumes it. */
	snprintf(m->disks[i].xfer_id, sizeof(m->disks[i].xfer_id), "%s-%s-s%u", m->id,
		 m->disks[i].target, st->session);
	req = rpc_req("cold.xfer_open", m);
	json_object_object_add(req, "disk", json_object_new_int(i));
	json_object_object_add(req, "size", json_object_new_uint64(size));
	json_object_object_add(req, "xfer_id", json_object_new_string(m->disks[i].xfer_id));
	rep = cold_call(m, req, false, err, errlen);
	if (!rep)
		return -errno;
	tok = rpc_str(rep, "token");
	if (!tok || hex_decode(tok, st->token, sizeof(st->token)) || !rpc_str(rep, "path") ||
	    !json_object_object_get_ex(rep, "port", &v)) {
		snprintf(err, errlen, "%s: bad xfer_open reply", m->dst_host);
		json_object_put(rep);
		return -EPROTO;
	}
	st->port = (uint16_t)json_object_get_int(v);
	snprintf(st->dest_path, sizeof(st->dest_path), "%s", rpc_str(rep, "path"));
	json_object_put(rep);
	return 0;
}

static int cold_src_size(struct migration *m, int i, uint64_t *size)
{
	return disk_ops_find(m->disks[i].backend)->size(m->disks[i].src_path, size);
}

/*
 * Disk @i's session for the source as it is now: the open one, or a new
 * one when there is none or the source grew past it (a qcow2 file while
 * the VM runs: that session is committed, and the next covers the size).
 */
static int cold_session(struct migration *m, int i, struct cold_disk_state *st, char *err,
			size_t errlen)
{
	uint64_t size;
	int ret;

	ret = cold_src_size(m, i, &size);
	if (ret) {
		snprintf(err, errlen, "%s: %s", m->disks[i].src_path, strerror(-ret));
		return ret;
	}
	if (st->xs && size <= xfer_session_image_bytes(st->xs))
		return 0;
	if (st->xs) {
		ret = xfer_session_commit(st->xs, err, errlen);
		xfer_session_close(st->xs);
		st->xs = NULL;
		if (ret)
			return ret;
		st->session++;
	}
	ret = cold_xfer_open(m, i, st, err, errlen);
	if (ret)
		return ret;
	st->xs = xfer_session_open(m, m->disks[i].src_path, st->dest_path, m->disks[i].xfer_id,
				   m->dst_host, st->port, st->token, err, errlen);
	return st->xs ? 0 : (errno ? -errno : -EIO);
}

/*
 * Copy disk @i (whole if nranges < 0) as one round of its session; after
 * a failure (a peer restart) a new session sends the round again.
 */
static int cold_copy(struct migration *m, int i, struct cold_disk_state *st,
		     const struct ferry_range *ranges, long nranges, char *err, size_t errlen)
{
	uint64_t deadline = now_ms() + (uint64_t)ferryd->conf.peer_retry_s * 1000, size;
	bool grew;
	int ret;

	for (;;) {
		ret = cold_session(m, i, st, err, errlen);
		if (!ret)
			ret = xfer_session_round(st->xs, ranges, nranges, err, errlen);
		if (!ret)
			return 0;
		/*
		 * A session that failed (its own reconnects exhausted, a receiver
		 * that lost our token) is not resumed: a new one sends this round
		 * again, so no receiver ever matches it against an older round.
		 * The source may also have grown under the round.
		 */
		grew = st->xs && !cold_src_size(m, i, &size) &&
		       size > xfer_session_image_bytes(st->xs);
		xfer_session_close(st->xs);
		st->xs = NULL;
		st->session++;
		if (grew)
			continue;
		if (!cold_transient(-ret) || now_ms() >= deadline || engine_stopping(m))
			return ret;
		log_warn("migration %s: disk %s: %s; resuming", m->id, m->disks[i].target, err);
		sleep(1);
	}
}

/* The copy is complete: every session's last round is durable; commit them. */
int cold_sessions_commit(struct migration *m, struct cold_disk_state *st, char *err,
			 size_t errlen)
{
	int i, ret = 0;

	for (i = 0; i < m->ndisks && !ret; i++) {
		if (!st[i].xs)
			continue;
		ret = xfer_session_commit(st[i].xs, err, errlen);
		xfer_session_close(st[i].xs);
		st[i].xs = NULL;
	}
	return ret;
}

void cold_sessions_close(struct cold_disk_state *st, int n)
{
	int i;

	for (i = 0; st && i < n; i++) {
		xfer_session_close(st[i].xs);
		st[i].xs = NULL;
	}
}

static uint64_t ranges_bytes(const struct ferry_range *r, long n)
{
	uint64_t b = 0;
	long i;

	for (i = 0; i < n; i++)
		b += r[i].length_bytes;
	return b;
}

/*
 * One round over every data disk: whole disks (first round, or after a
 * tracker loss) or the dirty ranges since the last drain.  Returns the
 * bytes copied in *copied.
 */
int cold_round(struct migration *m, struct cold_disk_state *st, bool whole,
		      uint64_t *copied, char *err, size_t errlen)
{
	int i, ret = 0;

	*copied = 0;
	for (i = 0; i < m->ndisks && !ret; i++) {
		struct ferry_range *ranges = NULL;
		uint32_t reasons = 0;
		char why[160];
		long n = -1;
		uint64_t bytes = m->disks[i].size_bytes;
		bool rescan = whole || !st[i].track;

		if (m->disks[i].kind != MIG_DISK_DATA)
			continue;
		if (!rescan) {
			ret = track_drain(st[i].track, &ranges, &n, &bytes, &rescan, &reasons);
			if (ret) {
				snprintf(err, errlen, "disk %s: dirty tracking: %s",
					 m->disks[i].target, strerror(-ret));
				break;
			}
			if (rescan) {
				log_warn("migration %s: disk %s: tracker lost writes (%s); "
					 "copying the whole disk",
					 m->id, m->disks[i].target,
					 tracker_rescan_str(reasons, why, sizeof(why)));
				mig_lock(m);
				m->m.rescans++;
				mig_unlock(m);
			}
		}
		if (rescan) {
			free(ranges);
			ranges = NULL;
			n = -1;
			bytes = m->disks[i].size_bytes;
		} else {
			bytes = ranges_bytes(ranges, n);
		}
		mig_lock(m);
		m->m.disk_total_bytes += bytes;
		m->m.disk_remaining_bytes = bytes;
		mig_unlock(m);
		if (n != 0)
			ret = cold_copy(m, i, &st[i], ranges, n, err, errlen);
		*copied += bytes;
		free(ranges);
	}
	return ret;
}

/* Warm pre-copy while the VM runs; returns with tracking still on. */
int cold_precopy(struct migration *m, struct cold_disk_state *st, char *err,
			size_t errlen)
{
	uint64_t start = now_ms(), copied, t0;
	int i, ret, round;

	for (i = 0; i < m->ndisks; i++) {
		if (m->disks[i].kind != MIG_DISK_DATA || !m->was_running)
			continue;
		ret = track_start(m->disks[i].src_path, &st[i].track);
		if (ret) {
			log_warn("migration %s: disk %s: no dirty tracking (%s): it will be "
				 "copied with the VM off",
				 m->id, m->disks[i].target, strerror(-ret));
			st[i].track = NULL;
		}
	}
	/* Round 0: everything, while the VM keeps running. */
	ret = cold_round(m, st, true, &copied, err, errlen);
	if (ret || !m->was_running)
		return ret;
	for (round = 1; round <= ferryd->conf.precopy_max_rounds; round++) {
		bool tracked = false;

		if (engine_stopping(m))
			return -ECANCELED; /* an abort, or ferryd stopping */
		for (i = 0; i < m->ndisks; i++)
			tracked |= st[i].track != NULL;
		if (!tracked)
			break;
		t0 = now_ms();
		ret = cold_round(m, st, false, &copied, err, errlen);
		if (ret)
			return ret;
		mig_lock(m);
		m->m.precopy_rounds = (uint32_t)round;
		m->m.dirty_rate_bps = copied * 1000 / MAX(now_ms() - t0, 1);
		mig_unlock(m);
		mig_save(m);
		engine_crash_point(m, "precopy-round");
		log_info("migration %s: pre-copy round %d: %" PRIu64 " bytes", m->id, round,
			 copied);
		if (copied <= ferryd->conf.precopy_target_bytes)
			break;
		if (now_ms() - start > (uint64_t)ferryd->conf.precopy_max_s * 1000)
			break;
	}
	return 0;
}

void cold_tracking_stop(struct cold_disk_state *st, int n)
{
	int i;

	for (i = 0; st && i < n; i++) {
		if (st[i].track)
			track_stop(st[i].track);
		st[i].track = NULL;
	}
}

