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

/* A snapshot of ids to visit without holding the lock across calls. */
static int reconcile_pending(char (**ids)[FERRY_ID_LEN])
{
	int i, n = 0;

	pthread_mutex_lock(&ferryd->lock);
	*ids = calloc((size_t)ferryd->nmigs + 1, sizeof(**ids));
	for (i = 0; *ids && i < ferryd->nmigs; i++) {
		struct migration *m = ferryd->migs[i];

		if (mig_step_terminal(m->step) || m->busy)
			continue;
		snprintf((*ids)[n++], FERRY_ID_LEN, "%s", m->id);
	}
	pthread_mutex_unlock(&ferryd->lock);
	return n;
}

static void reconcile_one(const char *id, bool first)
{
	struct migration *m;
	enum mig_role role;
	bool busy;

	pthread_mutex_lock(&ferryd->lock);
	m = migstore_find(id);
	busy = !m || m->busy || mig_step_terminal(m->step);
	role = m ? m->role : MIG_ROLE_SOURCE;
	pthread_mutex_unlock(&ferryd->lock);
	if (busy)
		return;
	if (first)
		log_info("migration %s (%s, vm %s): resuming at step %s", m->id,
			 role == MIG_ROLE_DEST ? "destination" : "source", m->vm,
			 mig_step_name(m->step));
	if (role == MIG_ROLE_SOURCE) {
		/* A finished migration waits for confirm or revert: nothing to retry. */
		if (m->step == MIG_STEP_FINISHED || first || m->step >= MIG_STEP_FINISHING)
			cold_resume(m);
		return;
	}
	dest_resume(m);
}

static void *reconcile_thread(void *arg)
{
	bool first = true;

	while (!ferryd->stopping) {
		char(*ids)[FERRY_ID_LEN] = NULL;
		int i, n = reconcile_pending(&ids);

		for (i = 0; i < n; i++)
			reconcile_one(ids[i], first);
		free(ids);
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
