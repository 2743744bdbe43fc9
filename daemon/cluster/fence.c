// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fence.c - a host out of the cluster fences itself.
 *
 * Another host may rebuild this host's VMs once its alive key is gone
 * (evacuate).  Before that can happen, this host must have stopped them: a
 * thread looks every FENCE_TICK_MS at the membership's deadline (which is
 * never later than etcd's expiry of the lease, members.c), and from
 * FENCE_MARGIN before it, unrenewed, it fences:
 *   - FERRYD_FENCE_FILE says so, with the reason: libvirt's qemu hook
 *     (tools/ferry-fence-hook, in /etc/libvirt/hooks/qemu.d/) refuses to
 *     start or take in any domain while it exists, whoever asks; ferryd's
 *     engine refuses new operations;
 *   - every running domain whose metadata names this host its owner (the
 *     VMs ferry's records give this host) is destroyed.
 * It ends when the host is back in the cluster with a renewed lease: the
 * file goes, starts are allowed again.  Nothing is restarted: the record
 * may have moved on meanwhile, and a returning host compares first.
 *
 * The file is on /run: it outlives a ferryd restart (which then stays
 * fenced until it is back in), not a reboot (which stops every VM anyway).
 * A ferryd that is not running cannot fence: on shared storage, sanlock's
 * leases are what stops a frozen or dead ferryd's VMs from running twice.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/cluster/cluster.h"

#define FENCE_TICK_MS 50
#define FENCE_SWEEP_MS 1000

static struct {
	pthread_t thr;
	bool running;
	uint64_t since_ms;              /* wall clock */
	uint64_t destroyed;
} fc;

static uint64_t fence_margin_ms(void)
{
	return MIN(1000, (uint64_t)ferryd->conf.cluster_lease_ttl_s * 1000 / 6);
}

bool fence_active(void)
{
	return ferryd->fenced;
}

/* Running domains this host owns per their metadata: destroyed, counted. */
static int fence_destroy_owned(void)
{
	struct virt_domain_info *doms = NULL;
	int i, n = 0, done = 0;

	if (virt_domain_list(ferryd->virt, &doms, &n))
		return -EIO;
	for (i = 0; i < n; i++) {
		char *meta;
		int64_t gen;

		if (doms[i].state != VIRT_RUNNING && doms[i].state != VIRT_PAUSED)
			continue;
		meta = virt_domain_meta_get(ferryd->virt, doms[i].name, VMREC_META_URI);
		gen = vmrec_meta_of(meta, ferryd->conf.host);
		if (gen) {
			if (virt_domain_destroy(ferryd->virt, doms[i].name) == 0) {
				log_warn("fence: vm %s (generation %lld) destroyed: host %s is out "
					 "of the cluster",
					 doms[i].name, (long long)gen, ferryd->conf.host);
				done++;
			} else {
				log_err("fence: vm %s: cannot destroy it; it may run twice",
					doms[i].name);
			}
		}
		free(meta);
	}
	free(doms);
	return done;
}

static void fence_enter(const struct member_state *st)
{
	char why[700];
	int n;

	snprintf(why, sizeof(why), "host %s out of the cluster since %s: %s\n", ferryd->conf.host,
		 st->registrations ? "its lease's deadline passed unrenewed" :
				     "it could not join in its lease's TTL",
		 st->err[0] ? st->err : "no answer from etcd");
	if (file_write_atomic(FERRYD_FENCE_FILE, why, strlen(why), 0644))
		log_err("fence: %s: %s", FERRYD_FENCE_FILE, strerror(errno));
	ferryd->fenced = true;
	fc.since_ms = wall_ms();
	log_err("fence: host %s fences itself: %s", ferryd->conf.host, why);
	n = fence_destroy_owned();
	if (n > 0)
		fc.destroyed += (uint64_t)n;
	log_warn("fence: host %s: %d VM(s) destroyed; no VM starts here until it is back in",
		 ferryd->conf.host, MAX(n, 0));
}

static void fence_leave(void)
{
	if (unlink(FERRYD_FENCE_FILE) && errno != ENOENT)
		log_err("fence: %s: %s", FERRYD_FENCE_FILE, strerror(errno));
	ferryd->fenced = false;
	log_info("fence: host %s is back in the cluster: VMs may start again (none is "
		 "restarted)", ferryd->conf.host);
}

static void *fence_thread(void *arg)
{
	struct member_state st;
	uint64_t margin = fence_margin_ms(), now, next_sweep = 0;

	(void)arg;
	while (fc.running && !ferryd->stopping) {
		member_state_get(&st);
		now = now_ms();
		if (!ferryd->fenced && st.deadline_ms && now + margin >= st.deadline_ms) {
			fence_enter(&st);
			next_sweep = now + FENCE_SWEEP_MS;
		} else if (ferryd->fenced && st.alive && st.deadline_ms > now + margin) {
			fence_leave();
		} else if (ferryd->fenced && now >= next_sweep) {
			/* A domain started without the hook (not installed): stop it too. */
			int n = fence_destroy_owned();

			if (n > 0)
				fc.destroyed += (uint64_t)n;
			next_sweep = now + FENCE_SWEEP_MS;
		}
		usleep(FENCE_TICK_MS * 1000);
	}
	return NULL;
}

int fence_start(void)
{
	int ret;

	if (!ferryd->etcd || !ferryd->conf.self_fence)
		return 0;
	/* A previous ferryd fenced this host: stay so until back in. */
	if (access(FERRYD_FENCE_FILE, F_OK) == 0) {
		ferryd->fenced = true;
		fc.since_ms = wall_ms();
		log_warn("fence: host %s was fenced (%s): no VM starts here until it is back in "
			 "the cluster",
			 ferryd->conf.host, FERRYD_FENCE_FILE);
	}
	fc.running = true;
	ret = -pthread_create(&fc.thr, NULL, fence_thread, NULL);
	if (ret) {
		fc.running = false;
		log_err("fence: thread: %s", strerror(-ret));
	}
	return ret;
}

void fence_stop(void)
{
	if (!fc.running)
		return;
	fc.running = false;
	pthread_join(fc.thr, NULL);
}

void fence_state_json(struct json_object *o)
{
	json_object_object_add(o, "self_fence", json_object_new_boolean(ferryd->conf.self_fence));
	json_object_object_add(o, "fenced", json_object_new_boolean(ferryd->fenced));
	if (ferryd->fenced)
		json_object_object_add(o, "fenced_since_ms", json_object_new_uint64(fc.since_ms));
	json_object_object_add(o, "fence_destroyed", json_object_new_uint64(fc.destroyed));
}
