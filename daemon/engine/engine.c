// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * engine.c - runs flows.
 *
 * For each step in order the engine journals the step (fsync'd), then
 * calls its run.  A failure before the flow's point of no return walks the
 * undos back from the failing step down to the first, journaling each step
 * before its undo, and ends in the flow's "failed" step (or "cancelled"
 * after an abort); from the point of no return on a failure leaves the
 * record where it is, and reconcile runs the step again.  A rest step
 * ("finished") waits for an operator action or the flow's rest_action.
 *
 * One thread drives a record at a time (busy); handlers of participants
 * claim the same flag.  Abort and shutdown set the record's stop flag,
 * which the copy polls; the engine checks both at every step boundary.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/engine/engine.h"

enum engine_job {
	ENGINE_JOB_RUN,       /* run steps from a given one */
	ENGINE_JOB_UNDO,      /* walk back from the current step */
	ENGINE_JOB_SETTLE,    /* the step's settle, then run or walk back */
	ENGINE_JOB_PARTICIPANT,
};

struct engine_arg {
	struct migration *m;
	enum engine_job job;
	int from;
};

static bool engine_claim(struct migration *m)
{
	bool ok;

	mig_lock(m);
	ok = !m->busy;
	m->busy = true;
	mig_unlock(m);
	return ok;
}

static void engine_release(struct migration *m)
{
	if (m->flow && m->flow->priv_free && m->priv)
		m->flow->priv_free(m);
	mig_lock(m);
	m->busy = false;
	mig_unlock(m);
}

#define ENGINE_END_HOOKS 4
static void (*engine_end_hooks[ENGINE_END_HOOKS])(const char *vm);

void engine_on_end(void (*fn)(const char *vm))
{
	int i;

	for (i = 0; i < ENGINE_END_HOOKS; i++) {
		if (!engine_end_hooks[i] || engine_end_hooks[i] == fn) {
			engine_end_hooks[i] = fn;
			return;
		}
	}
	log_err("engine: more than %d end hooks", ENGINE_END_HOOKS);
}

int engine_hold(struct migration *m)
{
	return engine_claim(m) ? 0 : -EAGAIN;
}

void engine_unhold(struct migration *m)
{
	mig_lock(m);
	m->busy = false;
	mig_unlock(m);
}

bool engine_stopping(const struct migration *m)
{
	return ferryd->stopping || atomic_load(&m->stop);
}

static void engine_set_error(struct migration *m, const char *msg)
{
	mig_lock(m);
	if (!m->error[0])
		snprintf(m->error, sizeof(m->error), "%s", msg);
	mig_unlock(m);
}

static const char *engine_role(const struct migration *m)
{
	return m->role == MIG_ROLE_DEST ? "dest" : "source";
}

/* "ROLE:POINT[:...]" names this record's role and @point? */
static const char *engine_hook_match(const char *spec, const struct migration *m,
				     const char *point)
{
	const char *role = engine_role(m), *p;
	size_t rl = strlen(role), pl = strlen(point);

	if (!spec || strncmp(spec, role, rl) || spec[rl] != ':')
		return NULL;
	p = spec + rl + 1;
	if (strncmp(p, point, pl) || (p[pl] && p[pl] != ':'))
		return NULL;
	return p + pl;
}

/*
 * FERRY_TEST_CRASH="ROLE:POINT" (ROLE source|dest, POINT a step name or a
 * named point inside one): ferryd kills itself with SIGKILL there, just
 * after journaling, as a crash at the worst moment would.  Tests only.
 */
void engine_crash_point(const struct migration *m, const char *point)
{
	const char *rest = engine_hook_match(ferryd->crash_at, m, point);

	if (!rest || *rest)
		return;
	log_warn("migration %s: FERRY_TEST_CRASH=%s: killing ferryd", m->id, ferryd->crash_at);
	kill(getpid(), SIGKILL);
	pause();
}

/*
 * FERRY_TEST_PAUSE="ROLE:POINT:MS": hold the operation there for MS
 * milliseconds (polling its stop flag), so that a test can act at a
 * known step.  Tests only.
 */
void engine_pause_point(const struct migration *m, const char *point)
{
	const char *rest = engine_hook_match(ferryd->pause_at, m, point);
	uint64_t until;

	if (!rest || *rest != ':')
		return;
	log_warn("migration %s: FERRY_TEST_PAUSE=%s: holding", m->id, ferryd->pause_at);
	until = now_ms() + strtoull(rest + 1, NULL, 10);
	while (now_ms() < until && !engine_stopping(m))
		usleep(20 * 1000);
}

static int engine_journal(struct migration *m, int step, bool undoing, const char *why)
{
	const char *from;
	int old_step, ret;
	bool old_undo;

	mig_lock(m);
	if (m->coordinating && m->cancelled && !m->committed && !undoing &&
	    step >= m->flow->ponr &&
	    m->step < m->flow->ponr && !(m->flow->steps[step].flags & FLOW_STEP_TERMINAL)) {
		/* An abort came first: the point of no return is not crossed. */
		mig_unlock(m);
		return -ECANCELED;
	}
	from = mig_step_name(m);
	old_step = m->step;
	old_undo = m->undoing;
	if (undoing && !m->undoing)
		m->undo_from = m->step;
	m->step = step;
	m->undoing = undoing;
	if (mig_terminal(m) && !m->m.t_ended_ms)
		m->m.t_ended_ms = wall_ms();
	mig_unlock(m);
	ret = journal_save(m);
	if (ret) {
		/* Not journaled: not taken. */
		mig_lock(m);
		m->step = old_step;
		m->undoing = old_undo;
		mig_unlock(m);
		return ret;
	}
	log_info("migration %s (%s %s): %s -> %s [%s]%s%s", m->id, mig_type_name(m->type), m->vm,
		 from, mig_step_name(m), mig_status_name(m), why ? ": " : "", why ? why : "");
	metrics_publish(m);
	for (int i = 0; i < ENGINE_END_HOOKS && engine_end_hooks[i] && mig_terminal(m); i++)
		engine_end_hooks[i](m->vm);
	engine_crash_point(m, mig_step_name(m));
	return 0;
}

int engine_step_set(struct migration *m, int step)
{
	return engine_journal(m, step, false, NULL);
}

int engine_undo_mark(struct migration *m)
{
	return m->undoing ? 0 : engine_journal(m, m->step, true, NULL);
}

/*
 * Walk the undos back from the current step to the first.  Each step with
 * an undo is journaled before it, so a crash resumes the walk there; an
 * undo that fails leaves the record walking back, and reconcile retries.
 */
static int engine_walk_back(struct migration *m)
{
	const struct flow *f = m->flow;
	char err[1024] = "";
	int i, ret;

	ret = engine_undo_mark(m);
	if (ret)
		return ret;
	for (i = m->step; i >= 0; i--) {
		if (!f->steps[i].undo)
			continue;
		if (i != m->step) {
			ret = engine_journal(m, i, true, NULL);
			if (ret)
				return ret;
		}
		ret = f->steps[i].undo(m, err, sizeof(err));
		if (ret) {
			log_err("migration %s: rollback of vm %s at %s incomplete: %s (will retry)",
				m->id, m->vm, f->steps[i].name, err[0] ? err : strerror(-ret));
			return ret;
		}
	}
	ret = engine_journal(m, m->cancelled ? f->cancelled : f->failed, false, NULL);
	if (ret)
		log_err("migration %s: rolled back, but cannot journal it: %s (will retry)", m->id,
			strerror(-ret));
	return ret;
}

static const struct flow_action *engine_action_find(const struct flow *f, const char *name)
{
	int i;

	for (i = 0; i < f->nactions; i++)
		if (!strcmp(f->actions[i].name, name))
			return &f->actions[i];
	return NULL;
}

/*
 * Run steps from @from until a rest or terminal step, or (with @sync) the
 * first step that is not SYNC: returns 1 and its index in *next then.
 * 0 when the flow rests or ended, -errno when a step failed (walked back
 * before the point of no return, left for reconcile after it; the reason
 * is in @err and the record's error).
 */
static int engine_run(struct migration *m, int from, bool sync, int *next, char *err,
		      size_t errlen)
{
	const struct flow *f = m->flow;
	int i = from, ret;

	for (;;) {
		const struct flow_step *s = &f->steps[i];

		if (sync && !(s->flags & FLOW_STEP_SYNC)) {
			*next = i;
			return 1;
		}
		if (ferryd->stopping) {
			log_info("migration %s: stopping before %s (resumes at next start)", m->id,
				 s->name);
			return -ESHUTDOWN;
		}
		if (atomic_load(&m->stop) && i < f->ponr) {
			snprintf(err, errlen, "cancelled by the operator");
			ret = -ECANCELED;
			goto failed;
		}
		if (m->step != i || m->undoing) {
			ret = engine_step_set(m, i);
			if (ret) {
				snprintf(err, errlen, "cannot journal step %s: %s", s->name,
					 strerror(-ret));
				goto failed;
			}
		}
		if (s->flags & FLOW_STEP_TERMINAL)
			return 0;
		if (s->flags & FLOW_STEP_REST) {
			const char *act = f->rest_action ? f->rest_action(m) : NULL;
			const struct flow_action *a = act ? engine_action_find(f, act) : NULL;

			if (!a)
				return 0;
			log_info("migration %s: %s at rest: %s", m->id, s->name, act);
			i = a->first;
			continue;
		}
		engine_pause_point(m, s->name);
		err[0] = '\0';
		ret = s->run ? s->run(m, err, errlen) : 0;
		if (ret) {
			if (!err[0])
				snprintf(err, errlen, "%s: %s", s->name, strerror(-ret));
			if (ferryd->stopping) {
				log_info("migration %s: stopped in %s (resumes at next start): %s",
					 m->id, s->name, err);
				return -ESHUTDOWN;
			}
			goto failed;
		}
		i++;
	}
failed:
	if (m->step >= f->ponr || m->committed) {
		/* Past the point of no return: only forward, again later. */
		engine_set_error(m, err);
		log_err("migration %s: %s: %s (will retry)", m->id, f->steps[i].name, err);
		return ret;
	}
	if (m->cancelled)
		snprintf(err, errlen, "cancelled by the operator");
	engine_set_error(m, err);
	log_err("migration %s: %s; rolling back", m->id, err);
	engine_walk_back(m);
	return ret;
}

/* A step that decides after a restart (FLOW_RESUME_SETTLE). */
static void engine_settle(struct migration *m)
{
	const struct flow_step *s = &m->flow->steps[m->step];
	char err[1024] = "", why[1100];
	int to, next;

	to = s->settle(m, err, sizeof(err));
	if (to >= 0) {
		log_info("migration %s: interrupted at %s; %s; going on at %s", m->id, s->name,
			 err[0] ? err : "settled", m->flow->steps[to].name);
		engine_run(m, to, false, &next, err, sizeof(err));
		return;
	}
	snprintf(why, sizeof(why), "interrupted at %s (ferryd restarted)%s%s; rolled back",
		 s->name, err[0] ? ": " : "", err);
	engine_set_error(m, why);
	engine_walk_back(m);
}

static void *engine_thread(void *p)
{
	struct engine_arg *a = p;
	struct migration *m = a->m;
	char err[1024] = "";
	int next;

	switch (a->job) {
	case ENGINE_JOB_RUN:
		engine_run(m, a->from, false, &next, err, sizeof(err));
		break;
	case ENGINE_JOB_UNDO:
		engine_walk_back(m);
		break;
	case ENGINE_JOB_SETTLE:
		engine_settle(m);
		break;
	case ENGINE_JOB_PARTICIPANT:
		m->flow->participant_resume(m);
		break;
	}
	engine_release(m);
	free(a);
	return NULL;
}

/* Start @job on @m, already claimed (busy); releases it on failure. */
static int engine_spawn(struct migration *m, enum engine_job job, int from)
{
	struct engine_arg *a;
	int ret;

	a = calloc(1, sizeof(*a));
	if (!a) {
		engine_release(m);
		return -ENOMEM;
	}
	a->m = m;
	a->job = job;
	a->from = from;
	ret = thread_spawn_detached(engine_thread, a);
	if (ret) {
		free(a);
		engine_release(m);
	}
	return ret;
}

int engine_start(struct migration *m, char *err, size_t errlen)
{
	char rival[256];
	int ret, next;

	m->busy = true; /* the claim below publishes it busy */
	m->step = 0;
	m->coordinating = true;
	snprintf(m->coordinator, sizeof(m->coordinator), "%s", ferryd->conf.host);
	if (!m->m.t_created_ms)
		m->m.t_created_ms = wall_ms();
	ret = store_claim(m, rival, sizeof(rival));
	if (ret) {
		snprintf(err, errlen, "vm %s: operation already in progress (%s)", m->vm, rival);
		mig_free(m);
		return ret;
	}
	/* Claimed: from here on the record is the store's, failed or not. */
	ret = journal_save(m);
	if (ret) {
		snprintf(err, errlen, "migration %s: cannot journal: %s", m->id, strerror(-ret));
		mig_lock(m);
		m->step = m->flow->failed;
		snprintf(m->error, sizeof(m->error), "%s", err);
		m->m.t_ended_ms = wall_ms();
		mig_unlock(m);
		engine_release(m);
		return ret;
	}
	metrics_publish(m);
	log_info("migration %s: %s of vm %s from %s to %s", m->id, mig_type_name(m->type), m->vm,
		 m->src_host, m->dst_host);
	ret = engine_run(m, 0, true, &next, err, errlen);
	if (ret <= 0) {
		/* Refused in a SYNC step (walked back already), or done. */
		engine_release(m);
		return ret;
	}
	ret = engine_spawn(m, ENGINE_JOB_RUN, next);
	if (ret)
		snprintf(err, errlen, "migration %s: cannot start: %s", m->id, strerror(-ret));
	return ret;
}

int engine_action(struct migration *m, const char *name, char *err, size_t errlen)
{
	const struct flow *f = m->flow;
	const struct flow_action *a = f ? engine_action_find(f, name) : NULL;
	int from = -1, i;

	if (!f) {
		snprintf(err, errlen, "%s: %s", m->id, m->foreign);
		return -ENOTSUP;
	}
	if (!a || !m->coordinating) {
		snprintf(err, errlen, "%s: %s",
			 m->id, !a ? "this operation has no such action" : "coordinated elsewhere");
		return -EINVAL;
	}
	mig_lock(m);
	if (!m->undoing && m->step == a->from) {
		from = a->first;
	} else if (!m->undoing && m->step >= a->first) {
		/* Already taking this action (a retry): go on from where it is. */
		for (i = a->first; i < f->nsteps && !(f->steps[i].flags & FLOW_STEP_TERMINAL); i++)
			if (i == m->step)
				from = i;
	}
	if (from < 0)
		snprintf(err, errlen, "%s %s of vm %s is %s: only a %s one can be %s",
			 mig_type_name(m->type), m->id, m->vm, mig_status_name(m),
			 f->steps[a->from].name, a->past);
	mig_unlock(m);
	if (from < 0)
		return -EINVAL;
	if (!engine_claim(m)) {
		snprintf(err, errlen, "%s: operation already in progress", m->id);
		return -EBUSY;
	}
	return engine_spawn(m, ENGINE_JOB_RUN, from);
}

void engine_commit(struct migration *m)
{
	bool late;

	mig_lock(m);
	late = m->cancelled;
	m->committed = true;
	m->cancelled = false;
	atomic_store(&m->stop, ferryd->stopping != 0);
	mig_unlock(m);
	if (late)
		log_warn("migration %s: the abort came too late: %s has passed its point of no "
			 "return; going on",
			 m->id, m->vm);
}

int engine_control(struct migration *m, const char *what, char *err, size_t errlen)
{
	const struct flow *f = m->flow;

	if (!f) {
		snprintf(err, errlen, "%s: %s", m->id, m->foreign);
		return -ENOTSUP;
	}
	if (!f->control) {
		snprintf(err, errlen, "%s %s of vm %s has no %s", mig_type_name(m->type), m->id,
			 m->vm, what);
		return -EINVAL;
	}
	if (!m->coordinating) {
		snprintf(err, errlen, "%s: coordinated by %s", m->id, m->coordinator);
		return -EINVAL;
	}
	return f->control(m, what, err, errlen);
}

int engine_abort(struct migration *m, char *err, size_t errlen)
{
	const struct flow *f = m->flow;
	int ret = 0;

	if (!f) {
		snprintf(err, errlen, "%s: %s", m->id, m->foreign);
		return -ENOTSUP;
	}
	mig_lock(m);
	if (mig_terminal(m)) {
		snprintf(err, errlen, "%s %s of vm %s is already %s: nothing to abort",
			 mig_type_name(m->type), m->id, m->vm, mig_status_name(m));
		ret = -EINVAL;
	} else if (m->undoing) {
		snprintf(err, errlen, "%s %s of vm %s is already rolling back",
			 mig_type_name(m->type), m->id, m->vm);
		ret = -EALREADY;
	} else if (m->step >= f->ponr || m->committed) {
		snprintf(err, errlen, "%s %s of vm %s is at %s, past its point of no return (%s): "
			 "the VM is being started on %s; it can only complete%s",
			 mig_type_name(m->type), m->id, m->vm, f->steps[m->step].name,
			 f->steps[f->ponr].name, m->dst_host,
			 f->nactions ? " (revert it once finished)" : "");
		ret = -EPERM;
	} else {
		atomic_store(&m->stop, true);
		m->cancelled = true;
	}
	mig_unlock(m);
	if (ret)
		return ret;
	log_warn("migration %s: abort requested by the operator", m->id);
	/* Not driven right now (waiting between attempts): walk back here. */
	if (engine_claim(m)) {
		engine_set_error(m, "cancelled by the operator");
		return engine_spawn(m, ENGINE_JOB_UNDO, 0);
	}
	return 0;
}

void engine_resume(struct migration *m)
{
	const struct flow *f = m->flow;
	const struct flow_step *s;
	const char *act;
	char why[256];
	int i;

	if (!f || !engine_claim(m))
		return;
	if (!m->coordinating) {
		if (f->participant_resume && !mig_terminal(m)) {
			engine_spawn(m, ENGINE_JOB_PARTICIPANT, 0);
			return;
		}
		goto done;
	}
	s = &f->steps[m->step];
	if (mig_terminal(m))
		goto done;
	if (m->undoing) {
		engine_spawn(m, ENGINE_JOB_UNDO, 0);
		return;
	}
	if (s->flags & FLOW_STEP_REST) {
		act = f->rest_action ? f->rest_action(m) : NULL;
		for (i = 0; act && i < f->nactions; i++) {
			if (!strcmp(f->actions[i].name, act)) {
				engine_spawn(m, ENGINE_JOB_RUN, f->actions[i].first);
				return;
			}
		}
		goto done;
	}
	if (s->resume == FLOW_RESUME_RERUN) {
		engine_spawn(m, ENGINE_JOB_RUN, m->step);
		return;
	}
	if (s->resume == FLOW_RESUME_SETTLE && s->settle) {
		engine_spawn(m, ENGINE_JOB_SETTLE, m->step);
		return;
	}
	snprintf(why, sizeof(why), "interrupted at %s (ferryd restarted); rolled back", s->name);
	engine_set_error(m, why);
	engine_spawn(m, ENGINE_JOB_UNDO, 0);
	return;
done:
	engine_release(m);
}

int engine_stop(int ms)
{
	struct migration **all = NULL;
	uint64_t deadline = now_ms() + (uint64_t)ms;
	int i, n, busy;

	ferryd->stopping = 1;
	n = store_list(&all);
	for (i = 0; i < n; i++)
		atomic_store(&all[i]->stop, true);
	do {
		busy = 0;
		for (i = 0; i < n; i++) {
			mig_lock(all[i]);
			busy += all[i]->busy;
			mig_unlock(all[i]);
		}
		if (busy)
			usleep(50 * 1000);
	} while (busy && now_ms() < deadline);
	free(all);
	if (busy)
		log_warn("stopping with %d operation(s) still at work; they resume at next start",
			 busy);
	return busy;
}
