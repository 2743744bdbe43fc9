// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * reconcile.c - bringing journaled operations to rest.
 *
 * At start every unfinished record is resumed through its own flow
 * (engine_resume): a coordinator's by the policy of the step it stopped
 * at (walk back before the point of no return, run again after it), a
 * participant's by its flow's participant_resume (finish or tear down
 * what it journaled, else ask the coordinator).  Afterwards the same
 * thread wakes every few seconds to retry what could not be done yet (a
 * peer was down), to take rest actions (auto-confirm after the confirm
 * window), and to let participants learn the outcome of operations whose
 * coordinator decided while they were unreachable.  Records of flows this
 * ferryd does not know are left as found.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/engine/engine.h"

#define RECONCILE_PERIOD_S 3

static void reconcile_pass(bool first)
{
	struct migration **all = NULL;
	int i, n = store_list(&all);

	for (i = 0; i < n; i++) {
		struct migration *m = all[i];
		bool skip;

		if (!m->flow)
			continue;
		mig_lock(m);
		skip = m->busy || mig_terminal(m);
		mig_unlock(m);
		if (skip)
			continue;
		if (first)
			log_info("migration %s (%s %s, vm %s): resuming at %s", m->id,
				 m->flow->name, m->coordinating ? "coordinator" : "participant",
				 m->vm, mig_step_name(m));
		engine_resume(m);
	}
	free(all);
}

static void *reconcile_thread(void *arg)
{
	bool first = true;

	while (!ferryd->stopping) {
		reconcile_pass(first);
		first = false;
		sleep(RECONCILE_PERIOD_S);
	}
	return NULL;
}

int reconcile_start(void)
{
	int ret = thread_spawn_detached(reconcile_thread, NULL);

	if (ret)
		log_err("reconcile thread: %s", strerror(-ret));
	return ret;
}
