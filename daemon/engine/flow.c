// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * flow.c - the registry of flows.  A flow is one file ending in a struct
 * flow (flows/cold.c); ferryd registers each at start (flows_register()),
 * and records, the dispatcher and reconcile find them by name.
 */
#include <errno.h>
#include <string.h>

#include "daemon/engine/engine.h"

#define FLOW_MAX 8

static const struct flow *flows[FLOW_MAX];
static int nflows;

int flow_register(const struct flow *f)
{
	int i;

	if (flow_find(f->name))
		return -EEXIST;
	if (nflows == FLOW_MAX)
		return -ENOSPC;
	/* A flow's tables must hold together: catch it at start, not mid-flow. */
	if (f->ponr <= 0 || f->ponr >= f->nsteps || f->failed >= f->nsteps ||
	    f->cancelled >= f->nsteps || !(f->steps[f->failed].flags & FLOW_STEP_TERMINAL) ||
	    !(f->steps[f->cancelled].flags & FLOW_STEP_TERMINAL))
		return -EINVAL;
	for (i = 0; i < f->nactions; i++)
		if (!(f->steps[f->actions[i].from].flags & FLOW_STEP_REST) ||
		    f->actions[i].first >= f->nsteps)
			return -EINVAL;
	flows[nflows++] = f;
	return 0;
}

const struct flow *flow_find(const char *name)
{
	int i;

	for (i = 0; i < nflows; i++)
		if (!strcmp(flows[i]->name, name))
			return flows[i];
	return NULL;
}

const struct flow *flow_for_type(enum mig_type t)
{
	int i, j;

	for (i = 0; i < nflows; i++)
		for (j = 0; j < flows[i]->ntypes; j++)
			if (flows[i]->types[j] == t)
				return flows[i];
	return NULL;
}

int flow_step_find(const struct flow *f, const char *name)
{
	int i;

	for (i = 0; i < f->nsteps; i++)
		if (!strcmp(f->steps[i].name, name))
			return i;
	return -1;
}

int flow_for_each(int (*fn)(const struct flow *f, void *ctx), void *ctx)
{
	int i, ret;

	for (i = 0; i < nflows; i++) {
		ret = fn(flows[i], ctx);
		if (ret)
			return ret;
	}
	return 0;
}
