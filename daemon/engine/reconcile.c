// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * reconcile.c - bringing journaled operations to rest.
 *
 * At start every unfinished record is resumed: as a source (coordinator)
 * by rolling back anything before "finishing" and forward anything after;
 * as a destination by finishing or tearing down what its journal says was
 * under way, and otherwise by asking the source.  Afterwards the same
 * thread wakes every few seconds to retry what could not be done yet (a
 * peer was down), to auto-confirm after the confirm window, and to let
 * destinations learn the outcome of migrations whose source decided while
 * they were unreachable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define RECONCILE_PERIOD_S 3

/*
 * A snapshot of the records to visit, so that no lock is held across the
 * calls (records are never freed while ferryd runs; a same-host resize has
 * two records under one id, hence records and not ids).
 */
static int reconcile_pending(struct migration ***out)
{
	int i, n = 0;

	pthread_mutex_lock(&ferryd->lock);
	*out = calloc((size_t)ferryd->nmigs + 1, sizeof(**out));
	for (i = 0; *out && i < ferryd->nmigs; i++) {
		struct migration *m = ferryd->migs[i];

		if (!mig_step_terminal(m->step) && !m->busy)
			(*out)[n++] = m;
	}
	pthread_mutex_unlock(&ferryd->lock);
	return n;
}

static void reconcile_one(struct migration *m, bool first)
{
	bool skip;

	pthread_mutex_lock(&ferryd->lock);
	skip = m->busy || mig_step_terminal(m->step);
	pthread_mutex_unlock(&ferryd->lock);
	if (skip)
		return;
	if (first)
		log_info("migration %s (%s, vm %s): resuming at step %s", m->id,
			 m->role == MIG_ROLE_DEST ? "destination" : "source", m->vm,
			 mig_step_name(m->step));
	if (m->role == MIG_ROLE_SOURCE) {
		/* Before "finishing" only a restart rolls back; the rest retries. */
		if (first || m->step >= MIG_STEP_FINISHING)
			cold_resume(m);
		return;
	}
	dest_resume(m);
}

static void *reconcile_thread(void *arg)
{
	bool first = true;

	while (!ferryd->stopping) {
		struct migration **ms = NULL;
		int i, n = reconcile_pending(&ms);

		for (i = 0; i < n; i++)
			reconcile_one(ms[i], first);
		free(ms);
		first = false;
		sleep(RECONCILE_PERIOD_S);
	}
	return NULL;
}

int reconcile_start(void)
{
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = pthread_create(&t, &attr, reconcile_thread, NULL);
	pthread_attr_destroy(&attr);
	if (ret) {
		log_err("reconcile thread: %s", strerror(ret));
		return -ret;
	}
	return 0;
}
