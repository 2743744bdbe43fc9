// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer harness for ferryd's migration record parser: the JSON a peer
 * sends with prep and finish (and the journal holds).  Any input must end
 * in a clean refusal or a record that serializes again; never a crash, an
 * overflow of the fixed-size fields, or a leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"

struct ferryd *ferryd;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *o, *back;
	struct migration *m;
	char err[256], *s;

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
	if (m && mig_from_json(m, o, err, sizeof(err)) == 0) {
		back = mig_to_json(m, true);
		json_object_to_json_string(back);
		mig_status_name(m->step);
		mig_vm_state(m);
		mig_task_state(m);
		json_object_put(back);
	}
	mig_free(m);
	json_object_put(o);
	return 0;
}
