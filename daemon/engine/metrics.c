// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * metrics.c - publishes each migration's metrics into the pinned BPF map
 * (bpf/metrics.c), on every step change and on copy progress.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <linux/types.h>

#include "daemon/daemon.h"
#include "bpf/metrics.h"

static struct ferry_metrics *metrics;
static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;

int metrics_init(const char *pin_dir)
{
	metrics = ferry_metrics_open(pin_dir);
	return metrics ? 0 : -errno;
}

void metrics_publish(const struct migration *m)
{
	struct ferry_mig_metrics v;
	struct ferry_mig_key k;
	int ret;

	/* A same-host resize has two records; the source's speaks for it. */
	if (!metrics || (m->same_host && m->role == MIG_ROLE_DEST))
		return;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	snprintf(k.id, sizeof(k.id), "%s", m->id);
	pthread_mutex_lock(&ferryd->lock);
	snprintf(v.vm, sizeof(v.vm), "%s", m->vm);
	snprintf(v.type, sizeof(v.type), "%s", mig_type_name(m->type));
	snprintf(v.status, sizeof(v.status), "%s", mig_status_name(m->step));
	snprintf(v.step, sizeof(v.step), "%s", mig_step_name(m->step));
	snprintf(v.source, sizeof(v.source), "%s", m->src_host);
	snprintf(v.dest, sizeof(v.dest), "%s", m->dst_host);
	v.t_created_ms = m->m.t_created_ms;
	v.t_precopy_ms = m->m.t_precopy_ms;
	v.t_poweroff_ms = m->m.t_poweroff_ms;
	v.t_final_copy_ms = m->m.t_final_copy_ms;
	v.t_finished_ms = m->m.t_finished_ms;
	v.t_ended_ms = m->m.t_ended_ms;
	v.disk_total_bytes = m->m.disk_total_bytes;
	v.disk_processed_bytes = m->m.disk_processed_bytes;
	v.disk_remaining_bytes = m->m.disk_remaining_bytes;
	v.wire_bytes = m->m.wire_bytes;
	v.raw_bytes = m->m.raw_bytes;
	v.dirty_rate_bps = m->m.dirty_rate_bps;
	v.last_delta_bytes = m->m.last_delta_bytes;
	v.shutdown_ms = m->m.shutdown_ms;
	v.downtime_ms = m->m.downtime_ms;
	v.precopy_rounds = m->m.precopy_rounds;
	v.rescans = m->m.rescans;
	v.compression_x1000 = m->m.wire_bytes ?
				      (__u32)MIN(m->m.raw_bytes * 1000 / m->m.wire_bytes, UINT32_MAX) :
				      0;
	pthread_mutex_unlock(&ferryd->lock);
	pthread_mutex_lock(&metrics_lock);
	ret = ferry_metrics_update(metrics, &k, &v);
	pthread_mutex_unlock(&metrics_lock);
	if (ret)
		log_debug(LOG_SUB_BPF, "migration %s: metrics map: %s", m->id, strerror(-ret));
}

void metrics_fini(void)
{
	ferry_metrics_close(metrics);
	metrics = NULL;
}
