// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * store.c - the operations this host takes part in, in memory.  The store
 * lock covers only the list and the claim of a VM; each record's fields
 * have their own lock (mig_lock), taken after the store's when both are
 * needed, and neither is ever held across I/O.  Records are never freed
 * while ferryd runs, so a pointer from the store stays valid.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/engine/engine.h"

static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;
static struct migration **store;
static int nstore, store_cap;

static int __store_add(struct migration *m)
{
	struct migration **n;

	if (nstore == store_cap) {
		int cap = store_cap ? store_cap * 2 : 32;

		n = realloc(store, sizeof(*n) * (size_t)cap);
		if (!n)
			return -ENOMEM;
		store = n;
		store_cap = cap;
	}
	store[nstore++] = m;
	return 0;
}

void store_add(struct migration *m)
{
	int ret;

	pthread_mutex_lock(&store_lock);
	ret = __store_add(m);
	pthread_mutex_unlock(&store_lock);
	if (ret)
		log_err("migration %s: out of memory", m->id);
}

/* Under the store lock: does @m hold its VM? */
static bool store_holds_vm(struct migration *m)
{
	bool held;

	if (!m->flow)
		return true; /* foreign: we cannot tell, so it does */
	mig_lock(m);
	held = !mig_terminal(m);
	mig_unlock(m);
	return held;
}

static struct migration *__store_active_for_vm(const char *vm, const struct migration *self)
{
	int i;

	for (i = 0; i < nstore; i++) {
		struct migration *m = store[i];

		if (strcmp(m->vm, vm) || m == self)
			continue;
		/* A resize onto its own host: the other role of one operation. */
		if (self && !strcmp(m->id, self->id))
			continue;
		if (store_holds_vm(m))
			return m;
	}
	return NULL;
}

/* Is @vm held by an operation other than @self's?  Described in @rival. */
static bool __store_rival(const char *vm, const struct migration *self, char *rival, size_t len)
{
	struct migration *r = __store_active_for_vm(vm, self);

	if (!r)
		return false;
	if (r->flow) {
		mig_lock(r);
		snprintf(rival, len, "%s %s, status %s", mig_type_name(r->type), r->id,
			 mig_status_name(r));
		mig_unlock(r);
	} else {
		snprintf(rival, len, "%s, a record this ferryd cannot run: %s", r->id, r->foreign);
	}
	return true;
}

int store_claim(struct migration *m, char *rival, size_t len)
{
	int ret;

	pthread_mutex_lock(&store_lock);
	ret = __store_rival(m->vm, m, rival, len) ? -EBUSY : __store_add(m);
	pthread_mutex_unlock(&store_lock);
	return ret;
}

int store_vm_busy(const char *vm, char *rival, size_t len)
{
	int ret;

	pthread_mutex_lock(&store_lock);
	ret = __store_rival(vm, NULL, rival, len) ? -EBUSY : 0;
	pthread_mutex_unlock(&store_lock);
	return ret;
}

struct migration *store_find(const char *id, enum mig_role role)
{
	struct migration *m = NULL;
	int i;

	pthread_mutex_lock(&store_lock);
	for (i = 0; i < nstore && !m; i++)
		if (!strcmp(store[i]->id, id) && store[i]->role == role)
			m = store[i];
	pthread_mutex_unlock(&store_lock);
	return m;
}

struct migration *store_find_any(const char *id)
{
	struct migration *m = NULL;
	int i;

	pthread_mutex_lock(&store_lock);
	for (i = 0; i < nstore; i++) {
		if (strcmp(store[i]->id, id))
			continue;
		if (!m || store[i]->coordinating)
			m = store[i];
	}
	pthread_mutex_unlock(&store_lock);
	return m;
}

struct migration *store_active_for_vm(const char *vm)
{
	struct migration *m;

	pthread_mutex_lock(&store_lock);
	m = __store_active_for_vm(vm, NULL);
	pthread_mutex_unlock(&store_lock);
	return m;
}

struct migration *store_latest_for_vm(const char *vm)
{
	struct migration *best = NULL;
	bool best_active = false;
	int i;

	pthread_mutex_lock(&store_lock);
	for (i = 0; i < nstore; i++) {
		struct migration *m = store[i];
		bool active;

		if (strcmp(m->vm, vm) || (m->role == MIG_ROLE_DEST && m->same_host))
			continue;
		active = store_holds_vm(m);
		/* An active one wins; otherwise the newest. */
		if (!best || (active && !best_active) ||
		    (active == best_active && m->m.t_created_ms > best->m.t_created_ms)) {
			best = m;
			best_active = active;
		}
	}
	pthread_mutex_unlock(&store_lock);
	return best;
}

int store_list(struct migration ***out)
{
	int n;

	pthread_mutex_lock(&store_lock);
	n = nstore;
	*out = calloc((size_t)n + 1, sizeof(**out));
	if (!*out)
		n = -ENOMEM;
	else if (n)
		memcpy(*out, store, sizeof(**out) * (size_t)n);
	pthread_mutex_unlock(&store_lock);
	return n;
}

int mig_save(struct migration *m)
{
	int ret = journal_save(m);

	metrics_publish(m);
	return ret;
}
