// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * flows.c - the flows this ferryd runs.  A new operation is a new file in
 * this folder ending in its struct flow, and one line here.
 */
#include <string.h>

#include "daemon/flows/flows.h"

static const struct flow *const flows_all[] = {
	&cold_flow,
	&live_flow,
	&evac_flow,
};

int flows_register(void)
{
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(flows_all); i++) {
		ret = flow_register(flows_all[i]);
		if (ret) {
			log_err("flow %s: cannot register: %s", flows_all[i]->name, strerror(-ret));
			return ret;
		}
	}
	return rpc_init();
}
