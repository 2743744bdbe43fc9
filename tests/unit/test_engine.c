// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests of the flow engine (daemon/engine/), with a test flow whose
 * steps record what they do and check, each time, what the journal on
 * disk says: the real journal, store and engine threads, no libvirt.
 *
 *   new (sync) -> a -> b -> c -> d -> commit (ponr) -> done (rest)
 *   done --close--> closing -> closed;  failed, cancelled
 *
 * a, b and d have undos; c has none; commit and closing only roll forward.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/engine/engine.h"

struct ferryd *ferryd;

enum { T_NEW, T_A, T_B, T_C, T_D, T_COMMIT, T_DONE, T_CLOSING, T_CLOSED, T_FAILED, T_CANCELLED,
       T__N };

static char journal_dir[256];
static int fail_run = -1;        /* this step's run fails */
static int fail_undo = -1;       /* this step's undo fails */
static int block_at = -1;        /* this step's run waits for a stop */
static volatile int blocked;     /* ... and says it is waiting */
static char log_buf[1024];       /* "run:a undo:a ..." */
static int journal_mismatch;     /* a run or undo found the journal elsewhere */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const struct flow test_flow;

/* What the journal on disk says about @m: its step and phase. */
static void journal_read(const struct migration *m, char *step, size_t slen, char *phase,
			 size_t plen)
{
	struct json_object *o, *v;
	char path[512];
	char *buf;

	snprintf(path, sizeof(path), "%s/migrations/%s.json", journal_dir, m->id);
	buf = file_read_all(path, 1 << 20, NULL);
	step[0] = phase[0] = '\0';
	if (!buf)
		return;
	o = json_tokener_parse(buf);
	free(buf);
	if (json_object_object_get_ex(o, "flow_step", &v))
		snprintf(step, slen, "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "phase", &v))
		snprintf(phase, plen, "%s", json_object_get_string(v));
	json_object_put(o);
}

/* Record "what:step" and check the journal names this step first. */
static void note(struct migration *m, const char *what, int step)
{
	char js[32], jp[16];

	journal_read(m, js, sizeof(js), jp, sizeof(jp));
	pthread_mutex_lock(&log_lock);
	if (strcmp(js, test_flow.steps[step].name) ||
	    strcmp(jp, strcmp(what, "undo") ? "run" : "undo"))
		journal_mismatch++;
	snprintf(log_buf + strlen(log_buf), sizeof(log_buf) - strlen(log_buf), "%s%s:%s",
		 log_buf[0] ? " " : "", what, test_flow.steps[step].name);
	pthread_mutex_unlock(&log_lock);
}

static int t_run(struct migration *m, char *err, size_t errlen)
{
	int step = m->step;

	note(m, "run", step);
	if (step == block_at) {
		blocked = 1;
		while (!engine_stopping(m))
			usleep(1000);
		return -ECANCELED;
	}
	if (step == fail_run) {
		snprintf(err, errlen, "step %s failed (test)", test_flow.steps[step].name);
		return -EIO;
	}
	return 0;
}

static int t_undo(struct migration *m, char *err, size_t errlen)
{
	int step = m->step;

	note(m, "undo", step);
	if (step == fail_undo) {
		snprintf(err, errlen, "undo of %s failed (test)", test_flow.steps[step].name);
		return -EIO;
	}
	return 0;
}

static const struct flow_step test_steps[T__N] = {
	[T_NEW] = { "new", "pre-migrating", NULL, NULL, NULL, NULL, FLOW_RESUME_UNDO,
		    FLOW_STEP_SYNC },
	[T_A] = { "a", "migrating", NULL, NULL, t_run, t_undo, FLOW_RESUME_UNDO, 0 },
	[T_B] = { "b", "migrating", NULL, NULL, t_run, t_undo, FLOW_RESUME_UNDO, 0 },
	[T_C] = { "c", "migrating", NULL, NULL, t_run, NULL, FLOW_RESUME_UNDO, 0 },
	[T_D] = { "d", "migrating", NULL, NULL, t_run, t_undo, FLOW_RESUME_UNDO, 0 },
	[T_COMMIT] = { "commit", "post-migrating", NULL, NULL, t_run, NULL, FLOW_RESUME_RERUN, 0 },
	[T_DONE] = { "done", "finished", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
		     FLOW_STEP_REST },
	[T_CLOSING] = { "closing", "confirming", NULL, NULL, t_run, NULL, FLOW_RESUME_RERUN, 0 },
	[T_CLOSED] = { "closed", "confirmed", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
		       FLOW_STEP_TERMINAL },
	[T_FAILED] = { "failed", "error", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
		       FLOW_STEP_TERMINAL },
	[T_CANCELLED] = { "cancelled", "cancelled", NULL, NULL, NULL, NULL, FLOW_RESUME_RERUN,
			  FLOW_STEP_TERMINAL },
};

static const struct flow_action test_actions[] = {
	{ "close", "closed", T_DONE, T_CLOSING },
};

static const enum mig_type test_types[] = { MIG_TYPE_MIGRATION };

static const struct flow test_flow = {
	.name = "test",
	.version = 1,
	.steps = test_steps,
	.nsteps = T__N,
	.ponr = T_COMMIT,
	.failed = T_FAILED,
	.cancelled = T_CANCELLED,
	.actions = test_actions,
	.nactions = ARRAY_SIZE(test_actions),
	.types = test_types,
	.ntypes = ARRAY_SIZE(test_types),
};

static int setup(void **state)
{
	fail_run = fail_undo = block_at = -1;
	blocked = 0;
	log_buf[0] = '\0';
	journal_mismatch = 0;
	ferryd->stopping = 0;
	return 0;
}

static struct migration *test_record(const char *vm)
{
	struct migration *m = mig_new();

	assert_non_null(m);
	m->flow = &test_flow;
	m->role = MIG_ROLE_SOURCE;
	snprintf(m->vm, sizeof(m->vm), "%s", vm);
	strcpy(m->src_host, "h1");
	strcpy(m->dst_host, "h2");
	assert_int_equal(mig_id_generate(m->id, sizeof(m->id)), 0);
	return m;
}

/* Until no thread drives @m (bounded). */
static void wait_idle(struct migration *m)
{
	int i;
	bool busy = true;

	for (i = 0; i < 5000 && busy; i++) {
		mig_lock(m);
		busy = m->busy;
		mig_unlock(m);
		if (busy)
			usleep(1000);
	}
	assert_false(busy);
}

static void start_and_wait(struct migration *m, int want_ret)
{
	char err[512];

	assert_int_equal(engine_start(m, err, sizeof(err)), want_ret);
	wait_idle(m);
}

/* The flow runs to its rest step, each run after its journal. */
static void test_runs_to_rest(void **state)
{
	struct migration *m = test_record("vm-rest");
	char err[256];

	start_and_wait(m, 0);
	assert_string_equal(log_buf, "run:a run:b run:c run:d run:commit");
	assert_int_equal(m->step, T_DONE);
	assert_true(mig_at_rest(m));
	assert_int_equal(journal_mismatch, 0);
	/* An action from the rest step, to a terminal one. */
	log_buf[0] = '\0';
	assert_int_equal(engine_action(m, "close", err, sizeof(err)), 0);
	wait_idle(m);
	assert_string_equal(log_buf, "run:closing");
	assert_int_equal(m->step, T_CLOSED);
	assert_true(mig_terminal(m));
	assert_int_equal(journal_mismatch, 0);
	/* None from a terminal step, with the reason. */
	assert_int_equal(engine_action(m, "close", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "only a done one can be closed"));
	assert_int_equal(engine_action(m, "bogus", err, sizeof(err)), -EINVAL);
}

/* A failure at each step before the ponr walks back exactly what ran. */
static void test_undo_exact(void **state)
{
	static const struct {
		int fail;
		const char *log;
	} cases[] = {
		{ T_A, "run:a undo:a" },
		{ T_B, "run:a run:b undo:b undo:a" },
		{ T_C, "run:a run:b run:c undo:b undo:a" },
		{ T_D, "run:a run:b run:c run:d undo:d undo:b undo:a" },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct migration *m = test_record("vm-undo");

		setup(NULL);
		fail_run = cases[i].fail;
		start_and_wait(m, 0);
		assert_string_equal(log_buf, cases[i].log);
		assert_int_equal(m->step, T_FAILED);
		assert_false(m->undoing);
		assert_true(mig_terminal(m));
		assert_non_null(strstr(m->error, "failed (test)"));
		assert_int_equal(journal_mismatch, 0);
	}
}

/* An undo that fails leaves the walk back journaled there; resume finishes it. */
static void test_undo_retried(void **state)
{
	struct migration *m = test_record("vm-undo-retry");

	fail_run = T_D;
	fail_undo = T_B;
	start_and_wait(m, 0);
	assert_string_equal(log_buf, "run:a run:b run:c run:d undo:d undo:b");
	assert_true(m->undoing);
	assert_int_equal(m->step, T_B);
	assert_false(mig_terminal(m));
	fail_undo = -1;
	log_buf[0] = '\0';
	engine_resume(m);
	wait_idle(m);
	assert_string_equal(log_buf, "undo:b undo:a");
	assert_int_equal(m->step, T_FAILED);
	assert_int_equal(journal_mismatch, 0);
}

/* From the point of no return nothing is undone; the step runs again. */
static void test_no_undo_past_ponr(void **state)
{
	struct migration *m = test_record("vm-ponr");

	fail_run = T_COMMIT;
	start_and_wait(m, 0);
	assert_string_equal(log_buf, "run:a run:b run:c run:d run:commit");
	assert_int_equal(m->step, T_COMMIT);
	assert_false(m->undoing);
	assert_false(mig_terminal(m));
	assert_non_null(strstr(m->error, "commit failed"));
	fail_run = -1;
	log_buf[0] = '\0';
	engine_resume(m);
	wait_idle(m);
	assert_string_equal(log_buf, "run:commit");
	assert_int_equal(m->step, T_DONE);
	assert_int_equal(journal_mismatch, 0);
}

/* After a restart, each step resumes by its policy (journaled as found). */
static void test_resume_every_step(void **state)
{
	static const struct {
		int step;
		bool undoing;
		const char *log;
		int end;
	} cases[] = {
		{ T_NEW, false, "", T_FAILED },
		{ T_A, false, "undo:a", T_FAILED },
		{ T_B, false, "undo:b undo:a", T_FAILED },
		{ T_C, false, "undo:b undo:a", T_FAILED },
		{ T_D, false, "undo:d undo:b undo:a", T_FAILED },
		{ T_B, true, "undo:b undo:a", T_FAILED },
		{ T_COMMIT, false, "run:commit", T_DONE },
		{ T_DONE, false, "", T_DONE },
		{ T_CLOSING, false, "run:closing", T_CLOSED },
		{ T_CLOSED, false, "", T_CLOSED },
		{ T_FAILED, false, "", T_FAILED },
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct migration *m = test_record("vm-resume");

		setup(NULL);
		m->coordinating = true;
		strcpy(m->coordinator, "h1");
		m->step = cases[i].step;
		m->undoing = cases[i].undoing;
		assert_int_equal(journal_save(m), 0);
		store_add(m);
		engine_resume(m);
		wait_idle(m);
		assert_string_equal(log_buf, cases[i].log);
		assert_int_equal(m->step, cases[i].end);
		assert_int_equal(journal_mismatch, 0);
	}
}

/* A record of a flow this ferryd lacks is kept as found and never run. */
static void test_unknown_flow_left_alone(void **state)
{
	static const char rec[] = "{\"format\":2,\"flow\":\"teleport\",\"flow_version\":1,"
				  "\"id\":\"m-aaaaaaaaaaaa\",\"vm\":\"vm-foreign\",\"type\":"
				  "\"migration\",\"role\":\"source\",\"flow_step\":\"beam\"}";
	char path[512], *before, *after;
	struct migration *m = NULL, *found;

	snprintf(path, sizeof(path), "%s/migrations/m-aaaaaaaaaaaa.json", journal_dir);
	assert_int_equal(file_write_atomic(path, rec, strlen(rec), 0600), 0);
	m = mig_new();
	{
		struct json_object *o = json_tokener_parse(rec);
		char err[256];

		assert_int_equal(mig_from_json(m, o, err, sizeof(err)), -ENOTSUP);
		assert_non_null(strstr(err, "flow 'teleport' is not one this ferryd runs"));
		json_object_put(o);
	}
	store_add(m);
	engine_resume(m);
	assert_false(m->busy);
	assert_int_equal(journal_save(m), -EPERM);
	before = file_read_all(path, 1 << 20, NULL);
	assert_string_equal(before, rec);
	/* It holds its VM: nothing else starts on it while we cannot tell. */
	found = store_active_for_vm("vm-foreign");
	assert_ptr_equal(found, m);
	{
		struct migration *n = test_record("vm-foreign");
		char err[512];

		assert_int_equal(engine_start(n, err, sizeof(err)), -EBUSY);
		assert_non_null(strstr(err, "cannot run"));
	}
	after = file_read_all(path, 1 << 20, NULL);
	assert_string_equal(after, rec);
	free(before);
	free(after);
}

struct race_arg {
	pthread_barrier_t *go;
	int ret;
	char err[512];
	struct migration *m;
};

static void *race_thread(void *p)
{
	struct race_arg *a = p;

	pthread_barrier_wait(a->go);
	a->ret = engine_start(a->m, a->err, sizeof(a->err));
	return NULL;
}

/* Of N threads starting an operation on one VM, exactly one is accepted. */
static void test_one_of_n_accepted(void **state)
{
	enum { N = 16 };
	struct race_arg a[N];
	pthread_barrier_t go;
	pthread_t t[N];
	int i, ok = 0, busy = 0, winner = -1;

	block_at = T_A; /* the winner holds the VM while the others try */
	pthread_barrier_init(&go, NULL, N);
	for (i = 0; i < N; i++) {
		a[i].go = &go;
		a[i].m = test_record("vm-race");
		assert_int_equal(pthread_create(&t[i], NULL, race_thread, &a[i]), 0);
	}
	for (i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < N; i++) {
		if (a[i].ret == 0) {
			ok++;
			winner = i;
		} else if (a[i].ret == -EBUSY &&
			   strstr(a[i].err, "operation already in progress")) {
			busy++;
		}
	}
	assert_int_equal(ok, 1);
	assert_int_equal(busy, N - 1);
	/* The refusal names the one running. */
	for (i = 0; i < N; i++)
		if (i != winner)
			assert_non_null(strstr(a[i].err, a[winner].m->id));
	ferryd->stopping = 1;
	wait_idle(a[winner].m);
	ferryd->stopping = 0;
	pthread_barrier_destroy(&go);
}

/* Abort stops a running step at once and walks back; past the ponr it is refused. */
static void test_abort(void **state)
{
	struct migration *m = test_record("vm-abort");
	char err[512];
	int i;

	block_at = T_C;
	assert_int_equal(engine_start(m, err, sizeof(err)), 0);
	for (i = 0; i < 5000 && !blocked; i++)
		usleep(1000);
	assert_true(blocked);
	assert_int_equal(engine_abort(m, err, sizeof(err)), 0);
	wait_idle(m);
	assert_string_equal(log_buf, "run:a run:b run:c undo:b undo:a");
	assert_int_equal(m->step, T_CANCELLED);
	assert_string_equal(mig_status_name(m), "cancelled");
	assert_non_null(strstr(m->error, "cancelled by the operator"));
	assert_int_equal(engine_abort(m, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "already cancelled"));

	setup(NULL);
	m = test_record("vm-abort-late");
	fail_run = T_COMMIT; /* rests at commit, past the point of no return */
	start_and_wait(m, 0);
	assert_int_equal(m->step, T_COMMIT);
	assert_int_equal(engine_abort(m, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, "past its point of no return (commit)"));
	assert_false(m->undoing);
}

/* SIGTERM: a worker stops at the step boundary, the journal says where. */
static void test_stop_at_boundary(void **state)
{
	struct migration *m = test_record("vm-stop");
	char err[512], js[32], jp[16];
	int i;

	block_at = T_B;
	assert_int_equal(engine_start(m, err, sizeof(err)), 0);
	for (i = 0; i < 5000 && !blocked; i++)
		usleep(1000);
	assert_int_equal(engine_stop(5000), 0);
	assert_string_equal(log_buf, "run:a run:b");
	journal_read(m, js, sizeof(js), jp, sizeof(jp));
	assert_string_equal(js, "b");
	assert_string_equal(jp, "run");
	assert_false(m->undoing);
	ferryd->stopping = 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_runs_to_rest, setup),
		cmocka_unit_test_setup(test_undo_exact, setup),
		cmocka_unit_test_setup(test_undo_retried, setup),
		cmocka_unit_test_setup(test_no_undo_past_ponr, setup),
		cmocka_unit_test_setup(test_resume_every_step, setup),
		cmocka_unit_test_setup(test_unknown_flow_left_alone, setup),
		cmocka_unit_test_setup(test_one_of_n_accepted, setup),
		cmocka_unit_test_setup(test_abort, setup),
		cmocka_unit_test_setup(test_stop_at_boundary, setup),
	};
	char tmpl[] = "/tmp/ferry-engine-XXXXXX";
	int ret;

	log_init("test_engine");
	log_quiet_set(true);
	ferryd = calloc(1, sizeof(*ferryd));
	if (!ferryd || !mkdtemp(tmpl))
		return 1;
	snprintf(journal_dir, sizeof(journal_dir), "%s", tmpl);
	strcpy(ferryd->conf.host, "h1");
	if (journal_init(journal_dir) || flow_register(&test_flow))
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	if (!ret) {
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", journal_dir);
		if (system(cmd))
			ret = 1;
	}
	return ret;
}
