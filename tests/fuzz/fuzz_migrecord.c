// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for ferryd's operation record parser: the JSON a peer
 * sends with cold.prep and cold.finish (and the journal holds).  Any input
 * must end in a clean refusal, a foreign record kept as found, or a record
 * that serializes again; never a crash, an overflow of the fixed-size
 * fields, or a leak.
 *
 * The parser is the engine's (record.c, flow.c); it needs a registered
 * flow to resolve step names, so this harness registers one with the cold
 * flow's step names and nothing to run (the real flow would drag libvirt
 * and the mover into the harness).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/engine/engine.h"

struct ferryd *ferryd;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STEP(n, s, f) { n, s, NULL, NULL, NULL, NULL, FLOW_RESUME_UNDO, f }
static const struct flow_step fuzz_steps[] = {
	STEP("new", "pre-migrating", 0),	  STEP("prep", "pre-migrating", 0),
	STEP("precopy", "migrating", 0),	  STEP("poweroff", "migrating", 0),
	STEP("final-copy", "migrating", 0),	  STEP("keep-source", "post-migrating", 0),
	STEP("finishing", "post-migrating", 0),	  STEP("finished", "finished", FLOW_STEP_REST),
	STEP("confirming", "confirming", 0),	  STEP("confirmed", "confirmed", FLOW_STEP_TERMINAL),
	STEP("reverting", "reverting", 0),	  STEP("revert-source", "reverting", 0),
	STEP("reverted", "reverted", FLOW_STEP_TERMINAL), STEP("failed", "error", FLOW_STEP_TERMINAL),
	STEP("cancelled", "cancelled", FLOW_STEP_TERMINAL),
};
static const enum mig_type fuzz_types[] = { MIG_TYPE_MIGRATION, MIG_TYPE_RESIZE };
static const struct flow fuzz_flow = {
	.name = "cold",
	.version = 1,
	.steps = fuzz_steps,
	.nsteps = ARRAY_SIZE(fuzz_steps),
	.ponr = 6,
	.failed = 13,
	.cancelled = 14,
	.types = fuzz_types,
	.ntypes = ARRAY_SIZE(fuzz_types),
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int registered;
	struct json_object *o, *back;
	struct migration *m;
	char err[256], *s;

	if (!registered)
		registered = flow_register(&fuzz_flow) == 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	o = json_tokener_parse(s);
	free(s);
	if (!o)
		return 0;
	m = mig_new();
	if (m && mig_from_json(m, o, err, sizeof(err)) != -EINVAL) {
		/* A record, or a foreign one kept as found: both serialize. */
		back = mig_to_json(m, true);
		json_object_to_json_string(back);
		mig_status_name(m);
		mig_step_name(m);
		mig_vm_state(m);
		mig_task_state(m);
		mig_terminal(m);
		json_object_put(back);
	}
	mig_free(m);
	json_object_put(o);
	return 0;
}
