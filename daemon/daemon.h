/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * daemon.h - ferryd's internal interfaces, grouped by source file.
 *
 * ferryd runs one host's share of ferry's VM lifecycle.  This header holds
 * what the whole daemon shares (configuration, process state); each
 * component has its own header in its folder:
 *
 *   engine/   the operation record, the flow registry and the engine that
 *             runs flows (journal, store, reconcile, metrics)  engine.h
 *   flows/    one file per operation, ending in its struct flow  flows.h
 *   cluster/  the peer link, request dispatch, operator requests  cluster.h
 *   storage/  disk backends (by capability) and placement        storage.h
 *   host/     libvirt and domain XML                             host.h
 *   copy/     the embedded mover and the dirty tracker           copy.h
 *
 * See docs/state-machine.md.
 */
#ifndef FERRY_DAEMON_H
#define FERRY_DAEMON_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "common.h"
#include "net/net.h"

#define FERRYD_DEFAULT_CONFIG "/etc/ferry/ferryd.conf"
#define FERRYD_DEFAULT_SOCKET "/run/ferry/ferryd.sock"
/* While it exists the host is fenced (cluster/fence.c, tools/ferry-fence-hook). */
#define FERRYD_FENCE_FILE "/run/ferry/fenced"
#define FERRYD_DEFAULT_PORT 4710
#define FERRYD_MAX_PEERS 32
#define FERRYD_MAX_DISKS 16
#define FERRY_NAME_MAX 64
#define FERRY_ID_LEN 16 /* "m-" + 12 hex + NUL, padded */
#define AUTH_KEY_LEN 32

/* config.c */
struct peer_conf {
	char name[FERRY_NAME_MAX];
	struct net_addr addr;
};

struct ferryd_conf {
	char host[FERRY_NAME_MAX];      /* this host's name in the cluster */
	struct net_addr listen;         /* peer protocol */
	struct net_addr mover_listen;   /* embedded mover receiver */
	struct peer_conf peers[FERRYD_MAX_PEERS];
	int npeers;
	char libvirt_uri[256];
	char state_dir[PATH_MAX];       /* journal: state_dir/migrations/ */
	char control_socket[PATH_MAX];
	char cluster_key_file[PATH_MAX];
	char instances_dir[PATH_MAX];   /* Nova-style instance dirs live here */
	char lvm_vg[FERRY_NAME_MAX];    /* volume group for LVM-backed disks */
	char pin_dir[PATH_MAX];         /* BPF pins (metrics, tracker) */
	bool allow_same_host;           /* allow resize onto the same host */
	int resize_confirm_window_s;    /* auto-confirm after this (0: never) */
	int shutdown_timeout_s;         /* per clean-shutdown attempt */
	int shutdown_retries;           /* clean attempts before destroy */
	int precopy_max_rounds;         /* rounds while the VM runs */
	uint64_t precopy_target_bytes;  /* stop pre-copy below this delta */
	int precopy_max_s;              /* time bound of the warm phase */
	int peer_retry_s;               /* keep retrying a restarting peer */
	uint32_t track_granularity;     /* dirty-tracking block, bytes */
	int mover_connections;          /* 0: mover's default */
	char mover_compress[32];        /* auto|none|zstd[:N] */
	uint64_t mover_bwlimit_bps;     /* 0: none */
	uint64_t reserved_host_memory_mib; /* kept free on a destination */
	/* Live migration (flows/live.c), Nova's [libvirt] live_migration_* */
	char live_uri[256];             /* libvirt's peer URI, %s: its address */
	int live_max_concurrent;        /* Nova's max_concurrent_live_migrations */
	int live_max_downtime_ms;       /* the default downtime budget */
	bool live_permit_auto_converge;
	bool live_permit_post_copy;     /* shared storage only (PAUSED excludes it) */
	bool live_timeout_force;        /* on a stall or timeout: force, not abort */
	int live_stall_s;               /* no progress this long: a stall */
	int live_completion_timeout_s;  /* per GiB of RAM and disk, as Nova's */
	/* The VM's network at cut-over (host/vif.c, flows/live_net.c) */
	bool net_watch;                 /* tc programs on every VM tap */
	int net_announce_wait_ms;       /* no RARP/GARP by then: announce-self */
	bool test_drop_announce;        /* test-only: drop announces on taps */
	/* The cluster's record (cluster/etcd.c, cluster/members.c) */
	char etcd[1024];                /* endpoints, comma-separated; "": none */
	int etcd_timeout_ms;            /* per request, all endpoints */
	int cluster_lease_ttl_s;        /* the alive key's lease */
	bool self_fence;                /* out of the cluster: stop our VMs */
	int evacuate_grace_s;           /* an owner's key gone this long: evacuate */
	int evacuate_lease_wait_s;      /* a disk lease held elsewhere: wait this long */
};

void conf_defaults(struct ferryd_conf *c);
/* Parse key = value lines; errors name file:line.  0 or -errno. */
int conf_load(struct ferryd_conf *c, const char *path);
void conf_dump(const struct ferryd_conf *c);
const struct peer_conf *conf_peer(const struct ferryd_conf *c, const char *name);

/* ferryd.c: process-wide state. */
struct ferryd {
	struct ferryd_conf conf;
	uint8_t key[AUTH_KEY_LEN];
	struct virt *virt;
	struct etcd *etcd;              /* NULL: no cluster record */
	volatile bool fenced;           /* out of the cluster: no VM starts */
	volatile int stopping;          /* SIGTERM: workers stop at a boundary */
	const char *crash_at;           /* FERRY_TEST_CRASH: role:point */
	const char *pause_at;           /* FERRY_TEST_PAUSE: role:point:ms */
};

extern struct ferryd *ferryd;

#endif /* FERRY_DAEMON_H */
