/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * metrics.h - the migration metrics map shared by ferryd (writer) and
 * operators (`bpftool map dump pinned /sys/fs/bpf/ferry/migrations`).
 * Fixed-width types only; char arrays print as strings in bpftool.
 */
#ifndef FERRY_BPF_METRICS_H
#define FERRY_BPF_METRICS_H

#define FERRY_METRICS_MAX 1024 /* LRU: the oldest records fall out */

struct ferry_mig_key {
	char id[16]; /* "m-" + 12 hex digits */
};

/*
 * The counters, once: this list makes the map's fields (below), ferryd's
 * struct mig_metrics, the record's JSON and the copy into the map, so no
 * field can be missing from one of them.  X(type, name, comment).
 */
#define FERRY_MIG_COUNTERS(X)                                                   \
	X(__u64, t_created_ms, "wall clock, ms since the epoch")               \
	X(__u64, t_precopy_ms, "pre-copy started")                             \
	X(__u64, t_poweroff_ms, "shutdown requested")                          \
	X(__u64, t_off_ms, "the VM was seen off (live: the source paused)")    \
	X(__u64, t_final_copy_ms, "last delta started")                        \
	X(__u64, t_finished_ms, "running on the destination")                  \
	X(__u64, t_ended_ms, "confirmed, reverted, failed or cancelled")       \
	X(__u64, disk_total_bytes, "to copy, all rounds (grows per round)")    \
	X(__u64, disk_processed_bytes, "copied so far, all rounds")            \
	X(__u64, disk_remaining_bytes, "of the current round")                 \
	X(__u64, wire_bytes, "on the network, all rounds")                     \
	X(__u64, raw_bytes, "non-zero data before compression")                \
	X(__u64, dirty_rate_bps, "last measured")                              \
	X(__u64, last_delta_bytes, "copied while the VM was off")              \
	X(__u64, shutdown_ms, "shutdown request -> VM off")                    \
	X(__u64, downtime_ms, "VM off -> running on the destination")          \
	X(__u64, precopy_rounds, "dirty rounds while the VM ran")              \
	X(__u64, rescans, "disks copied whole after a tracker loss")         \
	X(__u64, t_ram_ms, "live: RAM phase started")                          \
	X(__u64, t_switch_ms, "live: the destination holds the VM")            \
	X(__u64, t_resumed_ms, "live: running on the destination")             \
	X(__u64, memory_total_bytes, "live: guest RAM")                        \
	X(__u64, memory_processed_bytes, "live: RAM sent, all iterations")     \
	X(__u64, memory_remaining_bytes, "live: RAM left in this iteration")   \
	X(__u64, memory_bps, "live: RAM transfer rate")                        \
	X(__u64, memory_dirty_rate_bps, "live: guest RAM dirty rate")          \
	X(__u64, ram_iterations, "live: RAM pre-copy passes")                  \
	X(__u64, ram_disk_rounds, "live: disk rounds during the RAM phase")    \
	X(__u64, qemu_downtime_ms, "live: libvirt's downtime (RAM switchover)") \
	X(__u64, seal_ms, "live: residual disk copy after the switchover")     \
	X(__u64, seal_bytes, "live: residual disk bytes")                      \
	X(__u64, resume_ms, "live: resume of the destination")                 \
	X(__u64, max_downtime_set_ms, "live: QEMU's limit as last set")        \
	X(__u64, throttle_pct, "live: auto-converge CPU throttle")             \
	X(__u64, net_vifs, "live: NICs watched at cut-over")                   \
	X(__u64, net_vifs_seen, "live: of which the guest sent a frame from")  \
	X(__u64, net_blackout_us, "live: worst NIC's blackout")                \
	X(__u64, net_announce_lag_us, "live: worst NIC's announce lag")        \
	X(__u64, net_stranded_packets, "live: delivered to the paused source") \
	X(__u64, net_drops, "live: dropped on the VM's taps")                  \
	X(__u64, net_announce_self, "live: NICs ferry announced itself")       \
	X(__u64, net_fdb_fixed, "live: FDB entries ferry moved")

struct ferry_mig_metrics {
	char vm[64];
	char type[12];    /* migration | resize | live-migrat (truncated: see flow) */
	char status[16];  /* Nova's migration status */
	char step[16];    /* ferry's step within it */
	char source[32];
	char dest[32];
	char flow[16];    /* the engine's flow: cold, live */
#define FERRY_MIG_FIELD(type, name, comment) type name;
	FERRY_MIG_COUNTERS(FERRY_MIG_FIELD)
#undef FERRY_MIG_FIELD
	__u32 compression_x1000;  /* raw_bytes / wire_bytes * 1000 */
	__u32 reserved;
};

#ifndef __bpf__
/* metrics.c: the loader (userspace). */
struct ferry_metrics;

/* Create or reuse the map pinned at PIN_DIR/migrations; NULL + errno. */
struct ferry_metrics *ferry_metrics_open(const char *pin_dir);
int ferry_metrics_update(struct ferry_metrics *fm, const struct ferry_mig_key *key,
			 const struct ferry_mig_metrics *val);
void ferry_metrics_close(struct ferry_metrics *fm);
#endif

#endif /* FERRY_BPF_METRICS_H */
