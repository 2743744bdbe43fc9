// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * migrec.c - the cluster's record of migrations, on etcd:
 * /ferry/migrations/ID, the coordinator's view of each migration it runs.
 *
 * One thread mirrors each record this host coordinates when its journal
 * moves on (a step, a decision, its end) and, while it runs, every
 * MIGREC_REFRESH_S for its progress.  `ferry migrations` on any host then
 * lists the whole cluster's, those of a host that cannot answer included:
 * a dead coordinator's last word stays.  The mirror is best effort and
 * never in a flow's way: etcd out of reach, or this host out of the
 * cluster, only delays it (the journal on the coordinator stays the truth).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/cluster/cluster.h"

#define MIGREC_PERIOD_MS 1000
#define MIGREC_REFRESH_S 5
#define MIGREC_SENT_MAX 256

struct migrec_sent {
	char id[FERRY_ID_LEN];
	uint64_t seq;                   /* the journal's, as mirrored */
	uint64_t at_ms;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thr;
	bool running;
	bool kicked;
	struct migrec_sent sent[MIGREC_SENT_MAX];
	int nsent, next_evict;
	uint64_t puts, errors;
} mr = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

void migrec_key(const char *id, char *key, size_t len)
{
	snprintf(key, len, "%s%s", MIGREC_PREFIX, id);
}

void migrec_kick(const char *vm)
{
	(void)vm;
	pthread_mutex_lock(&mr.lock);
	mr.kicked = true;
	pthread_cond_signal(&mr.cond);
	pthread_mutex_unlock(&mr.lock);
}

/* The slot of @id (thread only), a new one if none: the oldest evicted. */
static struct migrec_sent *migrec_slot(const char *id)
{
	struct migrec_sent *s;
	int i;

	for (i = 0; i < mr.nsent; i++)
		if (!strcmp(mr.sent[i].id, id))
			return &mr.sent[i];
	if (mr.nsent < MIGREC_SENT_MAX) {
		s = &mr.sent[mr.nsent++];
	} else {
		s = &mr.sent[mr.next_evict];
		mr.next_evict = (mr.next_evict + 1) % MIGREC_SENT_MAX;
	}
	memset(s, 0, sizeof(*s));
	snprintf(s->id, sizeof(s->id), "%s", id);
	return s;
}

/* Mirror @m if its journal moved on, or it runs and was sent a while ago. */
static void migrec_sync_one(struct migration *m)
{
	struct migrec_sent *s;
	struct json_object *o;
	char key[128];
	uint64_t seq;
	bool terminal;
	int ret;

	mig_lock(m);
	if (!m->flow || !m->coordinating || (m->same_host && m->role == MIG_ROLE_DEST)) {
		mig_unlock(m);
		return;
	}
	seq = m->journal_seq;
	terminal = mig_terminal(m);
	s = migrec_slot(m->id);
	if (s->seq == seq && (terminal || now_ms() - s->at_ms < MIGREC_REFRESH_S * 1000)) {
		mig_unlock(m);
		return;
	}
	o = mig_to_json(m, false);
	mig_unlock(m);

	json_object_object_add(o, "reported_by", json_object_new_string(ferryd->conf.host));
	json_object_object_add(o, "reported_ms", json_object_new_int64((int64_t)wall_ms()));
	migrec_key(m->id, key, sizeof(key));
	ret = etcd_put(ferryd->etcd, key, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
		       0);
	json_object_put(o);
	if (ret) {
		if (!mr.errors++ || !(mr.errors % 60))
			log_warn("migrations: mirror of %s to etcd: %s (%llu failures)", m->id,
				 etcd_error(ferryd->etcd), (unsigned long long)mr.errors);
		return;
	}
	s->seq = seq;
	s->at_ms = now_ms();
	mr.puts++;
}

static void migrec_sync_all(void)
{
	struct migration **all = NULL;
	int i, n = store_list(&all);

	for (i = 0; i < n && mr.running; i++)
		migrec_sync_one(all[i]);
	free(all);
}

static void *migrec_thread(void *arg)
{
	struct member_state st;
	struct timespec ts;

	(void)arg;
	pthread_mutex_lock(&mr.lock);
	while (mr.running && !ferryd->stopping) {
		if (!mr.kicked) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += MIGREC_PERIOD_MS * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&mr.cond, &mr.lock, &ts);
		}
		mr.kicked = false;
		pthread_mutex_unlock(&mr.lock);
		member_state_get(&st);
		if (st.alive)
			migrec_sync_all();
		pthread_mutex_lock(&mr.lock);
	}
	pthread_mutex_unlock(&mr.lock);
	return NULL;
}

int migrec_start(void)
{
	int ret;

	if (!ferryd->etcd)
		return 0;
	mr.running = true;
	ret = -pthread_create(&mr.thr, NULL, migrec_thread, NULL);
	if (ret) {
		mr.running = false;
		log_err("migrations: mirror thread: %s", strerror(-ret));
		return ret;
	}
	engine_on_end(migrec_kick);
	return 0;
}

void migrec_stop(void)
{
	if (!mr.running)
		return;
	pthread_mutex_lock(&mr.lock);
	mr.running = false;
	pthread_cond_signal(&mr.cond);
	pthread_mutex_unlock(&mr.lock);
	pthread_join(mr.thr, NULL);
}

/*
 * Add to @arr the cluster's records of migrations it lacks (by id), each
 * marked "mirrored": true; -errno when etcd cannot answer (@arr as it was).
 */
int migrec_merge(struct json_object *arr, const char *vm)
{
	struct etcd_kv *kv = NULL;
	int i, n = 0, ret;
	size_t j;

	if (!ferryd->etcd)
		return 0;
	ret = etcd_get(ferryd->etcd, MIGREC_PREFIX, true, &kv, &n, NULL);
	if (ret)
		return ret;
	for (i = 0; i < n; i++) {
		struct json_object *o = json_tokener_parse(kv[i].value);
		const char *id = o ? rpc_str(o, "id") : NULL;
		bool have = false;

		if (!id || (vm && strcmp(rpc_str(o, "vm") ?: "", vm))) {
			json_object_put(o);
			continue;
		}
		for (j = 0; j < json_object_array_length(arr) && !have; j++)
			have = !strcmp(rpc_str(json_object_array_get_idx(arr, j), "id") ?: "", id);
		if (have) {
			json_object_put(o);
			continue;
		}
		json_object_object_add(o, "mirrored", json_object_new_boolean(true));
		json_object_array_add(arr, o);
	}
	etcd_kvs_free(kv, n);
	return 0;
}
