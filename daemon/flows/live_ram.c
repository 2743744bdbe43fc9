// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * live_ram.c - live migration, the RAM phase: libvirt moves memory and
 * device state peer to peer while ferry keeps copying the disks' dirty
 * ranges, and a controller watches both.
 *
 * libvirt runs in a thread of its own (virDomainMigrateToURI3 blocks until
 * the switchover is over); this step's thread is the controller.  Every
 * tick it reads libvirt's job statistics and, for a block migration, runs
 * one disk round through the open mover sessions.  From the disk rounds
 * it knows how long the residual would take to seal, and it sets QEMU's
 * downtime limit to the budget less that, so that the switchover happens
 * only when both RAM and disks fit.  It declares a stall when the RAM left
 * stops falling for live_stall_s, or the guest dirties disks faster than
 * the mover carries them, and then forces completion or aborts with the
 * figures, as ferryd.conf allows.
 *
 * The destination is started PAUSED (block migration): it must not run
 * before the residual is on its disks.  The switchover is the point of no
 * return, and it is not libvirt's return: once the source is paused the
 * controller asks the destination every LIVE_SLICE_MS whether libvirt's
 * Finish ran there.  Then the source's QEMU has completed (its disks
 * drained, flushed and inactivated: the tracker has seen its last write)
 * and can never run again -- libvirt's Confirm, which only kills it, takes
 * a second and more here, and the guest does not wait for it: the step
 * ends, the residual is sealed and the destination resumed while the
 * migration call returns in its thread (joined by live_ram_join).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/flows/flows.h"

#define LIVE_TICK_MS 200
#define LIVE_SLICE_MS 10          /* watching for the switchover */
#define LIVE_SEAL_FIXED_MS 40     /* a commit and a resume, besides the bytes */
#define LIVE_QEMU_FLOOR_MS 50     /* never ask QEMU for less */
#define LIVE_SETTLE_WAIT_MS 60000 /* for libvirt's job to end after a restart */

struct live_call {
	struct migration *m;
	struct virt_migrate p;
	char uri[320];
	char *dest_xml, *persist_xml;
	atomic_bool done;
	int ret;
	char err[512];
};

static void live_call_free(struct live_call *c)
{
	if (!c)
		return;
	free(c->dest_xml);
	free(c->persist_xml);
	free(c);
}

static void *live_call_thread(void *arg)
{
	struct live_call *c = arg;

	c->ret = virt_domain_migrate(ferryd->virt, c->m->vm, &c->p, c->err, sizeof(c->err));
	atomic_store(&c->done, true);
	return NULL;
}

/* live_uri with the destination's address for its one %s. */
static int live_uri(const struct migration *m, char *out, size_t len, char *err, size_t errlen)
{
	const struct peer_conf *pc = conf_peer(&ferryd->conf, m->dst_host);
	const char *fmt = ferryd->conf.live_uri, *pct = strstr(fmt, "%s");

	if (!pc || !pct) {
		snprintf(err, errlen, "vm %s: no libvirt URI for %s", m->vm, m->dst_host);
		return -EINVAL;
	}
	snprintf(out, len, "%.*s%s%s", (int)(pct - fmt), fmt, pc->addr.host, pct + 2);
	return 0;
}

/* Disks whose path differs there: the definitions libvirt must use. */
static int live_call_xml(struct live_call *c, char *err, size_t errlen)
{
	struct migration *m = c->m;
	bool moved = false;
	char *live;
	int i;

	for (i = 0; i < m->ndisks; i++)
		moved |= m->live.block && strcmp(m->disks[i].src_path, m->disks[i].dst_path);
	if (!moved)
		return 0;
	live = virt_domain_live_xml(ferryd->virt, m->vm);
	if (live)
		c->dest_xml = domxml_adapt(live, &m->new_flavor, m->disks, m->ndisks);
	free(live);
	c->persist_xml = domxml_adapt(m->src_xml, &m->new_flavor, m->disks, m->ndisks);
	if (!c->dest_xml || !c->persist_xml) {
		snprintf(err, errlen, "vm %s: cannot adapt its definition to %s's paths", m->vm,
			 m->dst_host);
		return -EINVAL;
	}
	c->p.dest_xml = c->dest_xml;
	c->p.persist_xml = c->persist_xml;
	return 0;
}

static int live_dest_power(struct migration *m, enum virt_power *p, bool *arrived, char *err,
			   size_t errlen);
static int live_job_wait(struct migration *m, uint64_t ms);

/* ---- the controller -------------------------------------------------- */

struct live_ctl {
	uint64_t t0;                    /* RAM phase start, ms */
	uint64_t best_remaining;        /* RAM left, lowest seen */
	uint64_t t_best;                /* when it was seen */
	uint64_t t_disk_ok;             /* last time the mover kept up */
	uint64_t disk_rate_bps;         /* what the mover carried, last round */
	uint64_t disk_dirty_bps;        /* what the guest dirtied, last round */
	uint64_t residual_bytes;        /* the last round's delta */
	uint64_t t_last_round;
	uint64_t qemu_limit_ms;         /* as last set */
	uint64_t ramp_ms;               /* the limit's ramp, up to the ceiling */
	uint64_t ramp_iter;             /* RAM pass it was last raised at */
	uint64_t timeout_ms;            /* completion timeout, as Nova's */
	bool ram_flowing;               /* Prepare is over: disks may be written */
	bool src_paused;                /* seen paused: the switchover is near */
	bool forced;
	bool abort_sent;
	bool aborting;                  /* the controller's own abort */
	bool net_hold;                  /* the destination does not watch every VIF yet */
	char reason[256];
};

static double mb(uint64_t bps)
{
	return (double)bps / 1e6;
}

static void live_ctl_metrics(struct migration *m, const struct virt_job *j)
{
	mig_lock(m);
	m->m.memory_total_bytes = j->memory_total;
	m->m.memory_processed_bytes = j->memory_processed;
	m->m.memory_remaining_bytes = j->memory_remaining;
	m->m.memory_bps = j->memory_bps;
	m->m.memory_dirty_rate_bps = j->memory_dirty_rate * (j->memory_page_size ?: 4096);
	m->m.ram_iterations = j->memory_iteration;
	m->m.throttle_pct = (uint64_t)MAX(j->throttle_pct, 0);
	mig_unlock(m);
}

/* Pause the source (Nova's force-complete without post-copy), or post-copy. */
static void live_ctl_force(struct migration *m, struct live_ctl *c, const struct virt_migrate *p,
			   const char *why)
{
	struct live_priv *lp = m->priv;
	int ret;

	if (c->forced)
		return;
	c->forced = true;
	if (p->postcopy) {
		ret = virt_domain_postcopy(ferryd->virt, m->vm);
		log_warn("migration %s: %s: switching to post-copy%s", m->id, why,
			 ret ? " failed" : "");
		if (!ret)
			return;
	}
	ret = virt_domain_suspend(ferryd->virt, m->vm);
	if (!ret)
		lp->suspended = !m->was_paused;
	log_warn("migration %s: %s: pausing vm %s so that it converges%s", m->id, why, m->vm,
		 ret ? " failed" : "");
}

/* Why this migration cannot converge, in numbers; "" if it still can. */
static void live_ctl_stall(struct migration *m, struct live_ctl *c, const struct virt_job *j,
			   uint64_t now)
{
	uint64_t stall_ms = (uint64_t)ferryd->conf.live_stall_s * 1000;
	uint64_t dirty = m->m.memory_dirty_rate_bps;

	c->reason[0] = '\0';
	if (j->memory_iteration >= 2) {
		if (!c->best_remaining || j->memory_remaining < c->best_remaining * 95 / 100) {
			c->best_remaining = j->memory_remaining;
			c->t_best = now;
		}
		if (now - c->t_best > stall_ms) {
			if (dirty >= j->memory_bps)
				snprintf(c->reason, sizeof(c->reason),
					 "guest dirties memory at %.0f MB/s, the link carries %.0f "
					 "MB/s",
					 mb(dirty), mb(j->memory_bps));
			else
				snprintf(c->reason, sizeof(c->reason),
					 "RAM left stuck near %.0f MiB for %d s (guest dirties %.0f "
					 "MB/s, the link carries %.0f MB/s)",
					 (double)c->best_remaining / MIB, ferryd->conf.live_stall_s,
					 mb(dirty), mb(j->memory_bps));
			return;
		}
	}
	if (m->live.block && c->disk_rate_bps) {
		if (c->disk_dirty_bps < c->disk_rate_bps * 9 / 10 || !c->t_disk_ok)
			c->t_disk_ok = now;
		if (now - c->t_disk_ok > stall_ms) {
			snprintf(c->reason, sizeof(c->reason),
				 "guest writes its disks at %.0f MB/s, ferry's mover carries %.0f "
				 "MB/s",
				 mb(c->disk_dirty_bps), mb(c->disk_rate_bps));
			return;
		}
	}
	if (now - c->t0 > c->timeout_ms)
		snprintf(c->reason, sizeof(c->reason),
			 "not complete after %" PRIu64 " s (live_completion_timeout_s %d per GiB)",
			 (now - c->t0) / 1000, ferryd->conf.live_completion_timeout_s);
}

/*
 * QEMU may switch over when RAM fits its limit.  The budget less the disks'
 * residual is a ceiling, not a target: the limit starts at the floor and
 * doubles with every RAM pass after the first dirty one (iteration 2) that
 * did not end the migration, so a guest that converges stops with the
 * RAM of 50 ms left, and one that does not gets the whole budget a few
 * passes later.  (Nova ramps by time, over minutes, from a tenth of it.)
 */
static void live_ctl_downtime(struct migration *m, struct live_ctl *c, const struct virt_job *j)
{
	uint64_t budget = m->live.max_downtime_ms, disk_ms = 0, ceiling, limit;

	if (m->live.block)
		disk_ms = LIVE_SEAL_FIXED_MS +
			  c->residual_bytes * 1000 / MAX(c->disk_rate_bps, (uint64_t)1);
	ceiling = budget > disk_ms + LIVE_QEMU_FLOOR_MS ? budget - disk_ms : LIVE_QEMU_FLOOR_MS;
	if (!c->ramp_ms)
		c->ramp_ms = LIVE_QEMU_FLOOR_MS;
	if (j->memory_iteration > MAX(c->ramp_iter, (uint64_t)2)) {
		c->ramp_ms *= 2;
		c->ramp_iter = j->memory_iteration;
	}
	limit = MIN(c->ramp_ms, ceiling);
	if (c->net_hold) {
		/* The destination does not watch every VIF yet: no switchover now. */
		limit = LIVE_QEMU_FLOOR_MS;
		c->ramp_ms = LIVE_QEMU_FLOOR_MS;
	}
	if (c->qemu_limit_ms && limit * 10 > c->qemu_limit_ms * 9 && limit * 10 < c->qemu_limit_ms * 11)
		return;
	if (!virt_domain_set_max_downtime(ferryd->virt, m->vm, limit)) {
		c->qemu_limit_ms = limit;
		mig_lock(m);
		m->m.max_downtime_set_ms = limit;
		mig_unlock(m);
	}
}

/* One disk round during the RAM phase: what the guest dirtied since the last. */
static int live_ctl_round(struct migration *m, struct live_ctl *c, char *err, size_t errlen)
{
	struct live_priv *p = m->priv;
	uint64_t t0 = now_ms(), copied = 0, took, since;
	int ret;

	ret = cold_round(m, p->cold.st, false, &copied, err, errlen);
	if (ret)
		return ret;
	took = MAX(now_ms() - t0, (uint64_t)1);
	since = MAX(t0 - (c->t_last_round ?: t0 - LIVE_TICK_MS), (uint64_t)1);
	c->t_last_round = t0;
	c->residual_bytes = copied;
	c->disk_dirty_bps = copied * 1000 / (since + took);
	/* The mover's rate from rounds worth measuring; else keep the last. */
	if (copied >= MIB || !c->disk_rate_bps)
		c->disk_rate_bps = MAX(copied * 1000 / took, (uint64_t)MIB);
	mig_lock(m);
	m->m.ram_disk_rounds++;
	m->m.dirty_rate_bps = c->disk_dirty_bps;
	mig_unlock(m);
	return 0;
}

static void live_ctl_tick(struct migration *m, struct live_ctl *c, const struct virt_migrate *p)
{
	uint64_t now = now_ms();
	struct virt_job j;
	bool force;

	if (virt_domain_job(ferryd->virt, m->vm, false, &j) || !j.active)
		return;
	live_ctl_metrics(m, &j);
	c->ram_flowing |= j.memory_processed > 0;
	c->net_hold = live_net_hold(m, now - c->t0);
	if (!c->timeout_ms)
		c->timeout_ms = MAX((j.memory_total + m->m.disk_total_bytes) / GIB, (uint64_t)1) *
				(uint64_t)ferryd->conf.live_completion_timeout_s * 1000;
	live_ctl_downtime(m, c, &j);
	mig_lock(m);
	force = m->live.force_complete;
	mig_unlock(m);
	if (force && !c->net_hold)
		live_ctl_force(m, c, p, "force-complete");
	if (c->forced || c->aborting)
		return;
	live_ctl_stall(m, c, &j, now);
	if (!c->reason[0])
		return;
	mig_lock(m);
	snprintf(m->live.reason, sizeof(m->live.reason), "%s", c->reason);
	mig_unlock(m);
	if (ferryd->conf.live_timeout_force || p->postcopy) {
		live_ctl_force(m, c, p, c->reason);
		return;
	}
	log_warn("migration %s: cannot converge: %s; aborting", m->id, c->reason);
	c->aborting = true;
}

/*
 * Has the VM arrived on the destination?  Only a source that stopped
 * running can have left: from then on (QEMU's last pass, a force-complete)
 * only the destination is asked, at every slice.  Not the source again:
 * libvirt's Confirm holds the source domain's lock while it stops QEMU,
 * two seconds here, and every call on the domain waits for it.  The time
 * the source was first seen stopped is when the guest stopped: the start
 * of its downtime.
 */
static bool live_ctl_arrived(struct migration *m, struct live_ctl *c, bool tick)
{
	enum virt_power p = VIRT_NOSTATE;
	char err[256];
	bool arrived;
	int ret;

	if (c->src_paused)
		goto ask;
	ret = virt_domain_state(ferryd->virt, m->vm, &p);
	if ((ret && ret != -ENOENT) || (!ret && p == VIRT_RUNNING))
		return false;
	if (!m->was_paused) {
		mig_lock(m);
		m->m.t_off_ms = wall_ms();
		mig_unlock(m);
	}
	c->src_paused = true;
ask:
	/* Paused all along: no downtime to save, the tick is often enough. */
	if (m->was_paused && !tick)
		return false;
	return !live_dest_power(m, &p, &arrived, err, sizeof(err)) && arrived;
}

/* ---- the step --------------------------------------------------------- */

int live_run_ram(struct migration *m, char *err, size_t errlen)
{
	struct live_priv *lp = live_priv(m);
	struct live_call *call;
	struct live_ctl c = { 0 };
	uint64_t copied, next_tick;
	bool arrived = false;
	pthread_t thr;
	int ret;

	if (!lp)
		return -ENOMEM;
	call = calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	call->m = m;
	ret = live_uri(m, call->uri, sizeof(call->uri), err, errlen);
	if (!ret)
		ret = live_call_xml(call, err, errlen);
	/* A last round before Prepare: the destination reads a recent image. */
	if (!ret && m->live.block)
		ret = cold_round(m, lp->cold.st, false, &copied, err, errlen);
	if (ret)
		goto out;
	call->p.dest_uri = call->uri;
	call->p.bandwidth_mibps = (m->live.bandwidth_bps + MIB - 1) / MIB;
	/* Block: rest paused until the residual is there.  Shared: libvirt resumes. */
	call->p.paused = m->live.block;
	call->p.unsafe = true; /* ferry proved the storage safe, or copies it */
	call->p.auto_converge = ferryd->conf.live_permit_auto_converge;
	call->p.postcopy = ferryd->conf.live_permit_post_copy && !m->live.block && !m->was_paused;
	engine_crash_point(m, "before-libvirt");
	mig_lock(m);
	m->m.t_ram_ms = wall_ms();
	mig_unlock(m);
	c.t0 = now_ms();
	ret = pthread_create(&thr, NULL, live_call_thread, call);
	if (ret) {
		snprintf(err, errlen, "vm %s: cannot start the migration thread", m->vm);
		ret = -ret;
		goto out;
	}
	next_tick = now_ms() + LIVE_TICK_MS;
	while (!atomic_load(&call->done)) {
		bool tick;

		usleep(LIVE_SLICE_MS * 1000);
		if (atomic_load(&call->done))
			break;
		tick = now_ms() >= next_tick;
		if (!c.abort_sent && live_ctl_arrived(m, &c, tick)) {
			arrived = true;
			break;
		}
		/*
		 * QEMU paused the source for its last pass: nothing is left to
		 * control, and the tick's calls on the source would wait out
		 * libvirt's Confirm.  After a force-complete RAM still flows:
		 * the controller goes on.
		 */
		if (!tick || (c.src_paused && !c.forced))
			continue;
		next_tick = now_ms() + LIVE_TICK_MS;
		live_ctl_tick(m, &c, &call->p);
		if (!c.abort_sent && (c.aborting || engine_stopping(m))) {
			c.abort_sent = true;
			virt_domain_abort_job(ferryd->virt, m->vm);
			continue;
		}
		if (m->live.block && c.ram_flowing && !c.abort_sent &&
		    live_ctl_round(m, &c, err, errlen)) {
			log_err("migration %s: disk round during the RAM phase: %s; aborting",
				m->id, err);
			c.abort_sent = true;
			virt_domain_abort_job(ferryd->virt, m->vm);
		}
		engine_crash_point(m, "ram-tick");
	}
	if (arrived) {
		/* libvirt's call returns in its thread: live_ram_join. */
		lp->call = call;
		lp->call_thr = thr;
		call = NULL;
	} else {
		pthread_join(thr, NULL);
	}
	if (arrived || !call->ret) {
		/* The source's QEMU has completed and the destination holds the VM. */
		engine_commit(m);
		mig_lock(m);
		m->m.t_switch_ms = wall_ms();
		mig_unlock(m);
		log_info("migration %s: switched over to %s after %" PRIu64 " ms of RAM phase "
			 "(%" PRIu64 " iterations)%s",
			 m->id, m->dst_host, now_ms() - c.t0, m->m.ram_iterations,
			 arrived ? "; libvirt confirms in the background" : "");
		ret = 0;
		goto out;
	}
	if (c.aborting) {
		snprintf(err, errlen, "cannot converge: %s", c.reason);
		ret = -ETIMEDOUT;
	} else if (c.abort_sent && err[0]) {
		ret = -EIO; /* err: the disk round's failure */
	} else if (c.abort_sent) {
		snprintf(err, errlen, "cancelled by the operator");
		ret = -ECANCELED;
	} else {
		snprintf(err, errlen, "%s", call->err);
		ret = call->ret;
	}
out:
	live_call_free(call);
	return ret;
}

int live_ram_join(struct migration *m, bool settle)
{
	struct live_priv *lp = m->priv;
	struct live_call *call = lp ? lp->call : NULL;
	enum virt_power p;

	if (call) {
		pthread_join(lp->call_thr, NULL);
		if (call->ret)
			log_warn("migration %s: after the switchover libvirt reported: %s", m->id,
				 call->err);
		lp->call = NULL;
		live_call_free(call);
		return 0;
	}
	/* After a restart: libvirtd may still confirm on its own. */
	if (settle && !virt_domain_state(ferryd->virt, m->vm, &p) && live_job_wait(m, LIVE_SETTLE_WAIT_MS))
		log_warn("migration %s: libvirt's job on vm %s does not end", m->id, m->vm);
	return 0;
}

/* Wait for a libvirt job on the source to end; -ETIMEDOUT if it does not. */
static int live_job_wait(struct migration *m, uint64_t ms)
{
	uint64_t deadline = now_ms() + ms;
	struct virt_job j;

	while (!virt_domain_job(ferryd->virt, m->vm, false, &j) && j.active) {
		if (now_ms() >= deadline)
			return -ETIMEDOUT;
		usleep(LIVE_TICK_MS * 1000);
	}
	return 0;
}

/* What the destination's libvirt holds of the VM: running, paused, or
 * nothing; with arrived, whether libvirt's incoming job is over there. */
static int live_dest_power(struct migration *m, enum virt_power *p, bool *arrived, char *err,
			   size_t errlen)
{
	struct json_object *rep;
	const char *s;

	rep = cold_call(m, rpc_req("live.state", m), false, err, errlen);
	if (!rep)
		return errno ? -errno : -EIO;
	s = rpc_str(rep, "power");
	*p = VIRT_NOSTATE;
	if (s && !strcmp(s, "running"))
		*p = VIRT_RUNNING;
	else if (s && !strcmp(s, "paused"))
		*p = VIRT_PAUSED;
	else if (s && !strcmp(s, "shutoff"))
		*p = VIRT_SHUTOFF;
	if (arrived)
		*arrived = rpc_bool(rep, "arrived");
	json_object_put(rep);
	return 0;
}

/*
 * Before the switchover nothing is lost by rolling back: the VM runs on
 * the source.  Make sure libvirt's job is over and the source runs again
 * as it did; a VM that left for the destination is never rolled back.
 */
int live_undo_ram(struct migration *m, char *err, size_t errlen)
{
	struct live_priv *lp = m->priv;
	enum virt_power p, dp;
	int ret;

	ret = virt_domain_state(ferryd->virt, m->vm, &p);
	if (ret == 0) {
		if (live_job_wait(m, 1000)) {
			virt_domain_abort_job(ferryd->virt, m->vm);
			if (live_job_wait(m, LIVE_SETTLE_WAIT_MS)) {
				snprintf(err, errlen, "vm %s: libvirt's migration job does not end",
					 m->vm);
				return -ETIMEDOUT;
			}
		}
		virt_domain_state(ferryd->virt, m->vm, &p);
		/* Paused by a force-complete (ours or before a restart), or off. */
		if (p == VIRT_PAUSED && !m->was_paused)
			ret = virt_domain_resume(ferryd->virt, m->vm);
		else if (p == VIRT_SHUTOFF && m->was_running)
			ret = virt_domain_start(ferryd->virt, m->vm);
		if (ret)
			snprintf(err, errlen, "vm %s: cannot run it again on %s", m->vm,
				 ferryd->conf.host);
		if (lp)
			lp->suspended = false;
		return ret;
	}
	if (ret != -ENOENT) {
		snprintf(err, errlen, "vm %s: %s", m->vm, strerror(-ret));
		return ret;
	}
	/* Not here: if the destination holds it, it went there. */
	ret = live_dest_power(m, &dp, NULL, err, errlen);
	if (ret)
		return ret;
	if (dp == VIRT_RUNNING || dp == VIRT_PAUSED) {
		snprintf(err, errlen, "vm %s left for %s (%s there): it cannot be rolled back",
			 m->vm, m->dst_host, virt_power_name(dp));
		return -EEXIST;
	}
	/* Neither host has it: define it again from the record and start it. */
	ret = virt_domain_define(ferryd->virt, m->src_xml);
	if (!ret && m->was_running)
		ret = virt_domain_start(ferryd->virt, m->vm);
	if (ret)
		snprintf(err, errlen, "vm %s: cannot define and start it again on %s", m->vm,
			 ferryd->conf.host);
	return ret;
}

/*
 * ferryd restarted in the RAM phase.  libvirtd drives a peer-to-peer
 * migration on its own, so it may still run: stop it (we lost the tracker,
 * so it cannot finish safely), then judge by what is left.  The source
 * still has the VM: roll back.  It is gone and the destination holds it
 * paused: the switchover happened; roll forward (the residual is copied
 * whole).
 */
int live_settle_ram(struct migration *m, char *err, size_t errlen)
{
	enum virt_power p, dp;
	int ret;

	ret = virt_domain_state(ferryd->virt, m->vm, &p);
	if (ret == 0) {
		if (live_job_wait(m, 500)) {
			virt_domain_abort_job(ferryd->virt, m->vm);
			live_job_wait(m, LIVE_SETTLE_WAIT_MS);
		}
		ret = virt_domain_state(ferryd->virt, m->vm, &p);
	}
	if (ret == 0 && p != VIRT_SHUTOFF) {
		snprintf(err, errlen, "vm %s is still %s here", m->vm, virt_power_name(p));
		return -1;
	}
	if (live_dest_power(m, &dp, NULL, err, errlen) == 0 && (dp == VIRT_PAUSED || dp == VIRT_RUNNING)) {
		engine_commit(m);
		mig_lock(m);
		if (!m->m.t_switch_ms)
			m->m.t_switch_ms = wall_ms();
		mig_unlock(m);
		snprintf(err, errlen, "the switchover happened: vm %s is %s on %s", m->vm,
			 virt_power_name(dp), m->dst_host);
		return LIVE_SWITCHED;
	}
	snprintf(err, errlen, "vm %s is on neither host", m->vm);
	return -1;
}
