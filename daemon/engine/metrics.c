// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * metrics.c - publishes each operation's metrics into the pinned BPF map
 * (bpf/metrics.c), on every step change and on copy progress.  The fields
 * come from one list, FERRY_MIG_COUNTERS (bpf/metrics.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <linux/types.h>

#include "daemon/engine/engine.h"

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
	if (!metrics || !m->flow || (m->same_host && m->role == MIG_ROLE_DEST))
		return;
	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	snprintf(k.id, sizeof(k.id), "%s", m->id);
	mig_lock(m);
	snprintf(v.vm, sizeof(v.vm), "%s", m->vm);
	snprintf(v.type, sizeof(v.type), "%s", mig_type_name(m->type));
	snprintf(v.status, sizeof(v.status), "%s", mig_status_name(m));
	snprintf(v.step, sizeof(v.step), "%s", mig_step_name(m));
	snprintf(v.source, sizeof(v.source), "%s", m->src_host);
	snprintf(v.dest, sizeof(v.dest), "%s", m->dst_host);
	snprintf(v.flow, sizeof(v.flow), "%s", m->flow->name);
#define METRIC_COPY(type, name, comment) v.name = m->m.name;
	FERRY_MIG_COUNTERS(METRIC_COPY)
#undef METRIC_COPY
	v.compression_x1000 = m->m.wire_bytes ?
				      (__u32)MIN(m->m.raw_bytes * 1000 / m->m.wire_bytes, UINT32_MAX) :
				      0;
	mig_unlock(m);
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
