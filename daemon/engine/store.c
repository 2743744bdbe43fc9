// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * migstore.c - the migrations this host takes part in, in memory (under
 * ferryd->lock) and in the journal.  mig_set_step() is the one place a
 * step changes: journal first (fsync'd), then metrics, then the caller
 * performs the step's side effect.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

void migstore_add(struct migration *m)
{
	struct migration **n;

	pthread_mutex_lock(&ferryd->lock);
	n = realloc(ferryd->migs, sizeof(*n) * (size_t)(ferryd->nmigs + 1));
	if (n) {
		ferryd->migs = n;
		ferryd->migs[ferryd->nmigs++] = m;
	}
	pthread_mutex_unlock(&ferryd->lock);
	if (!n)
		log_err("migration %s: out of memory", m->id);
}

struct migration *migstore_find_role(const char *id, enum mig_role role)
{
	int i;

	for (i = 0; i < ferryd->nmigs; i++)
		if (!strcmp(ferryd->migs[i]->id, id) && ferryd->migs[i]->role == role)
			return ferryd->migs[i];
	return NULL;
}

struct migration *migstore_find(const char *id)
{
	struct migration *m = migstore_find_role(id, MIG_ROLE_SOURCE);

	return m ? m : migstore_find_role(id, MIG_ROLE_DEST);
}

struct migration *migstore_active_for_vm(const char *vm)
{
	int i;

	for (i = 0; i < ferryd->nmigs; i++) {
		struct migration *m = ferryd->migs[i];

		if (!strcmp(m->vm, vm) && !mig_step_terminal(m->step))
			return m;
	}
	return NULL;
}

struct migration *migstore_latest_for_vm(const char *vm)
{
	struct migration *best = NULL;
	int i;

	for (i = 0; i < ferryd->nmigs; i++) {
		struct migration *m = ferryd->migs[i];

		if (strcmp(m->vm, vm) || (m->role == MIG_ROLE_DEST && m->same_host))
			continue;
		/* An active one wins; otherwise the newest. */
		if (!best || (!mig_step_terminal(m->step) && mig_step_terminal(best->step)) ||
		    (mig_step_terminal(m->step) == mig_step_terminal(best->step) &&
		     m->m.t_created_ms > best->m.t_created_ms))
			best = m;
	}
	return best;
}

int mig_save(struct migration *m)
{
	int ret;

	pthread_mutex_lock(&ferryd->lock);
	ret = journal_save(m);
	pthread_mutex_unlock(&ferryd->lock);
	metrics_publish(m);
	return ret;
}

int mig_set_step(struct migration *m, enum mig_step step)
{
	enum mig_step old;
	int ret;

	pthread_mutex_lock(&ferryd->lock);
	old = m->step;
	m->step = step;
	if (mig_step_terminal(step) && !m->m.t_ended_ms)
		m->m.t_ended_ms = wall_ms();
	ret = journal_save(m);
	if (ret)
		m->step = old; /* not journaled: not taken */
	pthread_mutex_unlock(&ferryd->lock);
	if (ret)
		return ret;
	log_info("migration %s (%s %s): %s -> %s [%s]", m->id, mig_type_name(m->type), m->vm,
		 mig_step_name(old), mig_step_name(step), mig_status_name(step));
	metrics_publish(m);
	mig_crash_point(m, mig_step_name(step));
	return 0;
}

/*
 * FERRY_TEST_CRASH="ROLE:POINT" (ROLE source|dest, POINT a step name or a
 * named point inside one): the daemon kills itself with SIGKILL there, just
 * after journaling, as a crash at the worst moment would.  Tests only.
 */
void mig_crash_point(const struct migration *m, const char *point)
{
	const char *spec = ferryd->crash_at, *colon;
	const char *role = m->role == MIG_ROLE_DEST ? "dest" : "source";

	if (!spec || !*spec)
		return;
	colon = strchr(spec, ':');
	if (!colon || strncmp(spec, role, (size_t)(colon - spec)) || strlen(role) !=
									     (size_t)(colon - spec))
		return;
	if (strcmp(colon + 1, point))
		return;
	log_warn("migration %s: FERRY_TEST_CRASH=%s: killing ferryd", m->id, spec);
	kill(getpid(), SIGKILL);
	pause();
}
