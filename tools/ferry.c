// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry - the operator's command: asks the local ferryd (root-only Unix
 * socket), which forwards to the right host of the cluster when needed.
 *
 *   ferry [-j] [-p] [--host H] migrate VM [--to HOST] [--wait] [--confirm]
 *   ferry resize VM [--to HOST] [--vcpus N] [--memory MIB] [--disk GIB] ...
 *   ferry live-migrate VM [--to HOST] [--block-migrate auto|yes|no] ...
 *   ferry confirm|revert|abort|force-complete VM|MIGRATION [--wait]
 *   ferry migrations [VM] | show MIGRATION|VM | hosts | list
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <linux/types.h>

#include "bpf/vif.h"
#include "common.h"
#include "net/net.h"

#define FERRY_SOCKET "/run/ferry/ferryd.sock"

static const char *ferry_socket = FERRY_SOCKET;
static const char *ferry_host;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ferry [OPTIONS] COMMAND [ARGS]\n"
		"Move and resize libvirt VMs between hosts (talks to the local ferryd).\n\n"
		"Commands:\n"
		"  migrate VM [--to HOST] [--wait] [--confirm]\n"
		"                        cold-migrate VM (warm pre-copy, short downtime)\n"
		"  resize VM [--to HOST] [--vcpus N] [--memory MIB] [--disk GIB] [--wait] "
		"[--confirm]\n"
		"                        move VM to a new flavor\n"
		"  live-migrate VM [--to HOST] [--block-migrate auto|yes|no] [--disk-over-commit]\n"
		"               [--max-downtime MS] [--bandwidth RATE] [--wait]\n"
		"                        move VM while it runs (shared storage, or ferry copies\n"
		"                        the disks: block migration)\n"
		"  force-complete VM|MIGRATION     pause the guest (or post-copy) so that it\n"
		"                        converges now\n"
		"  confirm VM|MIGRATION [--wait]   keep the result, remove the source copy\n"
		"  revert VM|MIGRATION [--wait]    go back to the source, exactly as it was\n"
		"  abort VM|MIGRATION [--wait]     stop it and roll back (before its point of no\n"
		"                        return: for migrate and resize, \"finishing\"; for\n"
		"                        live-migrate, the switchover)\n"
		"  migrations [VM]       migrations known to the cluster\n"
		"  show MIGRATION|VM     one migration, its states and metrics\n"
		"  hosts                 the cluster's hosts\n"
		"  evacuate VM [--to HOST] [--on-shared-storage] [--target-state active|stopped] [--wait]\n"
		"                        rebuild a dead host's VM on HOST (default: here)\n"
		"  host-evacuate HOST [--target-state active|stopped]\n"
		"                        every VM of a dead HOST, placed by free memory\n"
		"  quarantine [list] | purge ID | restore ID --as NAME\n"
		"                        stale copies a returning host moved aside\n"
		"  cluster               this host's membership (etcd lease) and etcd's hosts\n"
		"  vms                   the cluster's VM records (etcd): owner, generation\n"
		"  vifs [VM] [--watch[=MS]] [--count N]\n"
		"                        VM NICs' tap counters (eBPF), once or every MS\n"
		"  list                  VMs on this host (or --host)\n\n"
		"Options:\n"
		"  -j, --json            JSON output (errors too)\n"
		"  -p, --pretty          pretty JSON (implies -j)\n"
		"  -H, --host HOST       run the command on HOST's ferryd\n"
		"  -s, --socket PATH     ferryd control socket (default %s, or $FERRY_SOCKET)\n"
		"  -v, --verbose         more messages\n"
		"  -h, --help            this help\n"
		"  -V, --version         version\n",
		FERRY_SOCKET);
}

/* One request to ferryd; returns the reply or NULL (error printed). */
static struct json_object *ferry_call(struct json_object *req)
{
	struct json_object *rep, *ok, *e;
	const char *s;
	uint32_t len;
	char *buf;
	int fd, ret;

	if (ferry_host)
		json_object_object_add(req, "host", json_object_new_string(ferry_host));
	fd = net_unix_connect(ferry_socket);
	if (fd < 0) {
		out_error("%s: %s (is ferryd running on this host?)", ferry_socket, strerror(-fd));
		json_object_put(req);
		return NULL;
	}
	s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	ret = net_msg_send(fd, s, (uint32_t)strlen(s));
	json_object_put(req);
	if (!ret)
		ret = net_msg_recv(fd, 64 * MIB, &buf, &len);
	close(fd);
	if (ret) {
		out_error("ferryd: %s", ret == -EPIPE ? "closed the connection" : strerror(-ret));
		return NULL;
	}
	rep = json_tokener_parse(buf);
	free(buf);
	if (!rep) {
		out_error("ferryd: unreadable reply");
		return NULL;
	}
	if (!json_object_object_get_ex(rep, "ok", &ok) || !json_object_get_boolean(ok)) {
		out_error("%s", json_object_object_get_ex(rep, "error", &e) ?
					json_object_get_string(e) :
					"request failed");
		json_object_put(rep);
		return NULL;
	}
	return rep;
}

static struct json_object *req_new(const char *op)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "op", json_object_new_string(op));
	return r;
}

static const char *js(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

static uint64_t ju(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_uint64(v) : 0;
}

static bool jb(struct json_object *o, const char *k)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) && v && json_object_get_boolean(v);
}

/* Anything that is not an id is a VM name. */
static void req_target(struct json_object *req, const char *what)
{
	json_object_object_add(req, strncmp(what, "m-", 2) ? "vm" : "id",
			       json_object_new_string(what));
}

/* ---- printing --------------------------------------------------------- */

static void print_bytes(const char *key, const char *label, uint64_t v)
{
	char b[32];

	out_u64(key, NULL, v);
	if (!out_is_json())
		printf("  %-22s %s\n", label, fmt_bytes(v, b, sizeof(b)));
}

static void print_ms_time(const char *key, const char *label, uint64_t ms)
{
	char buf[64] = "-";
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	out_u64(key, NULL, ms);
	if (out_is_json())
		return;
	if (ms && gmtime_r(&t, &tm))
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("  %-22s %s\n", label, buf);
}

/* Seconds left at the current rate, "-" if unknown. */
static const char *fmt_eta(uint64_t left, uint64_t rate, char *buf, size_t len)
{
	uint64_t s;

	if (!rate || !left)
		return "-";
	s = left / rate;
	snprintf(buf, len, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
	return buf;
}

/* Each NIC at the cut-over, as the taps' programs saw it. */
static void print_vifs(struct json_object *l)
{
	struct json_object *arr = l ? json_object_object_get(l, "vifs") : NULL;
	size_t i, n = arr ? json_object_array_length(arr) : 0;

	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);
		bool seen = json_object_get_boolean(json_object_object_get(v, "guest_seen"));
		char what[64];

		snprintf(what, sizeof(what), "NIC %s", js(v, "mac") ?: "?");
		if (seen)
			printf("  %-22s blackout %.3f ms, announce lag %.3f ms", what,
			       (double)ju(v, "blackout_us") / 1000,
			       (double)ju(v, "announce_lag_us") / 1000);
		else
			printf("  %-22s blackout unknown (no guest frame on the destination)", what);
		printf(" (%s -> %s on %s)\n", js(v, "src_tap") ?: "?", js(v, "dst_tap") ?: "?",
		       js(v, "bridge") ?: "?");
		printf("  %-22s %" PRIu64 " RARP, %" PRIu64 " GARP%s; %" PRIu64 " stranded, %" PRIu64
		       " dropped%s\n",
		       "", ju(v, "rarps"), ju(v, "garps"),
		       json_object_get_boolean(json_object_object_get(v, "announce_self")) ?
			       " after ferry's announce-self (none came)" :
			       "",
		       ju(v, "stranded_packets"), ju(v, "drops"),
		       json_object_get_boolean(json_object_object_get(v, "fdb_fixed")) ?
			       "; FDB entry moved by ferry" :
			       "");
	}
}

/* An evacuation: where from, which generation, what became of the disks. */
static void print_evac(struct json_object *m, struct json_object *mm, struct json_object *disks)
{
	struct json_object *e = json_object_object_get(m, "evacuate");
	bool lost = e && json_object_get_boolean(json_object_object_get(e, "data_lost"));
	size_t i;

	print_ms_time("t_created_ms", "created", ju(mm, "t_created_ms"));
	print_ms_time("t_ended_ms", "ended", ju(mm, "t_ended_ms"));
	printf("  %-22s %s\n", "evacuated from", js(m, "source"));
	if (e)
		print_ms_time("owner_gone_ms", "its alive key gone", ju(e, "owner_gone_ms"));
	if (e)
		printf("  %-22s %" PRIu64 "\n", "generation", ju(e, "generation"));
	printf("  %-22s %s\n", "disks",
	       !e   ? "-" :
	       !lost ? "reused on shared storage" :
	       disks && json_object_array_length(disks) &&
			       js(json_object_array_get_idx(disks, 0), "backing") &&
			       *js(json_object_array_get_idx(disks, 0), "backing") ?
		       "made anew on their base image: THE VM'S DATA IS LOST (no shared storage)" :
		       "made anew, empty: THE VM'S DATA IS LOST (no shared storage)");
	printf("  %-22s %s\n", "power",
	       e && json_object_get_boolean(json_object_object_get(e, "start")) ? "started" :
										"left stopped");
	for (i = 0; disks && i < json_object_array_length(disks); i++) {
		struct json_object *d = json_object_array_get_idx(disks, i);

		printf("  disk %-4s %-5s %-5s %s\n", js(d, "target"), js(d, "kind"), js(d, "format"),
		       js(d, "dst_path"));
	}
}

/* A live migration's own figures: RAM, the controller, downtime by part. */
static void print_live(struct json_object *m, struct json_object *mm)
{
	struct json_object *l = json_object_object_get(m, "live");
	uint64_t rem = ju(mm, "memory_remaining_bytes"), bps = ju(mm, "memory_bps"), off, sw;
	char eta[32];

	printf("  %-22s %s\n", "storage",
	       l && json_object_get_boolean(json_object_object_get(l, "block_migration")) ?
		       "block migration (ferry copies the disks)" :
		       "shared");
	print_bytes("memory_total_bytes", "memory total", ju(mm, "memory_total_bytes"));
	print_bytes("memory_processed_bytes", "memory processed", ju(mm, "memory_processed_bytes"));
	print_bytes("memory_remaining_bytes", "memory remaining", rem);
	print_bytes("memory_bps", "memory rate (/s)", bps);
	print_bytes("memory_dirty_rate_bps", "memory dirty (/s)", ju(mm, "memory_dirty_rate_bps"));
	printf("  %-22s %" PRIu64 "\n", "RAM iterations", ju(mm, "ram_iterations"));
	printf("  %-22s %" PRIu64 "\n", "disk rounds in RAM", ju(mm, "ram_disk_rounds"));
	printf("  %-22s %s\n", "RAM ETA", fmt_eta(rem, bps, eta, sizeof(eta)));
	printf("  %-22s %" PRIu64 " ms (set for QEMU %" PRIu64 " ms, auto-converge %" PRIu64
	       "%%)\n",
	       "max downtime", l ? ju(l, "max_downtime_ms") : 0, ju(mm, "max_downtime_set_ms"),
	       ju(mm, "throttle_pct"));
	if (l && js(l, "reason") && *js(l, "reason"))
		printf("  %-22s %s\n", "controller", js(l, "reason"));
	print_bytes("seal_bytes", "residual after switch", ju(mm, "seal_bytes"));
	off = ju(mm, "t_off_ms");
	sw = ju(mm, "t_switch_ms");
	printf("  %-22s %" PRIu64 " ms: switchover %" PRIu64 " (QEMU's downtime %" PRIu64
	       "), residual %" PRIu64 ", resume %" PRIu64 "\n",
	       "downtime", ju(mm, "downtime_ms"), off && sw > off ? sw - off : 0,
	       ju(mm, "qemu_downtime_ms"), ju(mm, "seal_ms"), ju(mm, "resume_ms"));
	print_vifs(l);
}

static void print_migration(struct json_object *m)
{
	struct json_object *mm = json_object_object_get(m, "metrics"), *disks, *v;
	uint64_t raw, wire;
	size_t i;

	if (out_is_json()) {
		/* The record as ferryd keeps it, minus the bulky XML. */
		json_object_object_del(m, "src_xml");
		json_object_object_del(m, "dst_xml");
		out_flush();
		puts(json_object_to_json_string_ext(
			m, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		return;
	}
	printf("%s %s: vm %s  %s -> %s\n", js(m, "type") ?: "operation", js(m, "id"),
	       js(m, "vm"), js(m, "source") ?: "?", js(m, "dest") ?: "?");
	if (js(m, "foreign")) {
		/* A record of a flow or format this ferryd does not run. */
		printf("  %-22s unknown: not run by this ferryd: %s\n", "status", js(m, "foreign"));
		return;
	}
	printf("  %-22s %s (step %s)\n", "status", js(m, "status"), js(m, "step"));
	if (js(m, "coordinator"))
		printf("  %-22s %s\n", "coordinator", js(m, "coordinator"));
	printf("  %-22s %s\n", "vm_state", js(m, "vm_state"));
	printf("  %-22s %s\n", "task_state", js(m, "task_state") ?: "-");
	if (js(m, "error") && *js(m, "error"))
		printf("  %-22s %s\n", "error", js(m, "error"));
	if (json_object_object_get_ex(m, "new_flavor", &v))
		printf("  %-22s %" PRIu64 " vcpus, %" PRIu64 " MiB, root disk %" PRIu64
		       " GiB\n",
		       "flavor", ju(v, "vcpus"), ju(v, "memory_mib"),
		       (uint64_t)(ju(v, "root_disk_bytes") / GIB));
	if (!mm)
		return;
	if (!strcmp(js(m, "type") ?: "", "evacuation")) {
		print_evac(m, mm, json_object_object_get(m, "disks"));
		return;
	}
	print_ms_time("t_created_ms", "created", ju(mm, "t_created_ms"));
	print_ms_time("t_precopy_ms", "pre-copy started", ju(mm, "t_precopy_ms"));
	print_ms_time("t_poweroff_ms", "powered off", ju(mm, "t_poweroff_ms"));
	print_ms_time("t_finished_ms", "finished", ju(mm, "t_finished_ms"));
	print_ms_time("t_ended_ms", "ended", ju(mm, "t_ended_ms"));
	print_bytes("disk_total_bytes", "disk total", ju(mm, "disk_total_bytes"));
	print_bytes("disk_processed_bytes", "disk processed", ju(mm, "disk_processed_bytes"));
	print_bytes("disk_remaining_bytes", "disk remaining", ju(mm, "disk_remaining_bytes"));
	print_bytes("wire_bytes", "on the wire", ju(mm, "wire_bytes"));
	raw = ju(mm, "raw_bytes");
	wire = ju(mm, "wire_bytes");
	printf("  %-22s %.2f\n", "compression ratio", wire ? (double)raw / (double)wire : 0.0);
	printf("  %-22s %" PRIu64 "\n", "pre-copy rounds", ju(mm, "precopy_rounds"));
	print_bytes("dirty_rate_bps", "dirty rate (/s)", ju(mm, "dirty_rate_bps"));
	print_bytes("last_delta_bytes", "copied while off", ju(mm, "last_delta_bytes"));
	if (!strcmp(js(m, "type") ?: "", "live-migration")) {
		print_live(m, mm);
	} else {
		printf("  %-22s %" PRIu64 " ms\n", "guest shutdown", ju(mm, "shutdown_ms"));
		printf("  %-22s %" PRIu64 " ms (VM off -> running on %s)\n", "downtime",
		       ju(mm, "downtime_ms"), js(m, "dest"));
	}
	if (json_object_object_get_ex(m, "disks", &disks)) {
		for (i = 0; i < json_object_array_length(disks); i++) {
			struct json_object *d = json_object_array_get_idx(disks, i);

			printf("  disk %-4s %-5s %-5s %s -> %s\n", js(d, "target"), js(d, "kind"),
			       js(d, "format"), js(d, "src_path"), js(d, "dst_path"));
		}
	}
}

/* ---- --wait and progress ------------------------------------------- */

static bool mig_done_step(const char *step)
{
	return step && (!strcmp(step, "completed") || !strcmp(step, "finished") ||
			!strcmp(step, "confirmed"));
}

/*
 * Has the operation come to rest, for what we wait for?  A confirm or
 * revert just asked for may not have left "finished" yet: only its own
 * outcome (or a failure) ends the wait.
 */
static bool step_resting(const char *step, const char *want)
{
	if (!step)
		return true;
	if (!strcmp(step, want) || !strcmp(step, "failed") || !strcmp(step, "cancelled"))
		return true;
	if (!strcmp(want, "finished"))
		return !strcmp(step, "confirmed") || !strcmp(step, "reverted");
	return false;
}

/*
 * Disks and RAM together; the RAM's total counts what it still has to
 * send.  Totals grow with every round, so the bar keeps its highest mark:
 * it never goes backwards.
 */
static void progress_draw(struct json_object *m, uint64_t t0_ms)
{
	static int shown;
	struct json_object *mm = json_object_object_get(m, "metrics");
	uint64_t done = ju(mm, "disk_processed_bytes") + ju(mm, "memory_processed_bytes");
	uint64_t total = ju(mm, "disk_total_bytes") + ju(mm, "memory_processed_bytes") +
			 ju(mm, "memory_remaining_bytes");
	uint64_t el = MAX(now_ms() - t0_ms, 1), rate = done * 1000 / el;
	char a[32], b[32], r[32], eta[32] = "--:--";
	int pct = total ? (int)(MIN(done, total) * 100 / total) : 0;
	char bar[21];
	int i;

	if (mig_done_step(js(m, "step")))
		pct = 100;
	pct = shown = MAX(shown, pct);

	if (rate && total > done) {
		uint64_t s = (total - done) / rate;

		snprintf(eta, sizeof(eta), "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
	}
	for (i = 0; i < 20; i++)
		bar[i] = i < pct / 5 ? '#' : '.';
	bar[20] = '\0';
	fprintf(stderr, "\r\033[K%-14s %-13s [%s] %3d%% %s/%s %s/s ETA %s",
		js(m, "status") ?: "?", js(m, "step") ?: "", bar, MIN(pct, 100),
		fmt_bytes(done, a, sizeof(a)), fmt_bytes(total, b, sizeof(b)),
		fmt_bytes(rate, r, sizeof(r)), eta);
}

/* Poll until the migration rests; returns 0 if it ended as wanted. */
static int ferry_wait(const char *id, const char *want)
{
	bool tty = isatty(2) && !out_is_json();
	uint64_t t0 = now_ms();
	struct json_object *m = NULL;
	int ret = 1;

	for (;;) {
		struct json_object *req = req_new("show"), *rep, *mo;

		json_object_object_add(req, "id", json_object_new_string(id));
		rep = ferry_call(req);
		if (!rep)
			return 1;
		if (!json_object_object_get_ex(rep, "migration", &mo)) {
			json_object_put(rep);
			out_error("%s: no migration in reply", id);
			return 1;
		}
		json_object_put(m);
		m = json_object_get(mo);
		json_object_put(rep);
		if (tty)
			progress_draw(m, t0);
		if (step_resting(js(m, "step"), want))
			break;
		usleep(100 * 1000); /* a tenth of a second late at most: --wait is timed */
	}
	if (tty)
		fprintf(stderr, "\n");
	if (!strcmp(js(m, "step") ?: "", want)) {
		print_migration(m);
		ret = 0;
	} else if (out_is_json()) {
		print_migration(m);
	} else {
		out_error("%s %s of vm %s ended %s: %s", js(m, "type"), id, js(m, "vm"),
			  js(m, "status"), js(m, "error") && *js(m, "error") ? js(m, "error") :
										  "-");
	}
	json_object_put(m);
	return ret;
}

/* ---- commands ------------------------------------------------------- */

/* Send an operation's request (consumed); wait for step @want, or say it started. */
static int ferry_start(struct json_object *req, const char *vm, bool wait, const char *want)
{
	struct json_object *rep = ferry_call(req);
	char id[64];

	if (!rep)
		return 1;
	snprintf(id, sizeof(id), "%s", js(rep, "id") ?: "?");
	json_object_put(rep);
	if (wait)
		return ferry_wait(id, want);
	out_object_open(NULL);
	out_str("id", "%s started", id);
	out_str("vm", " (vm %s)\n", vm);
	out_object_close();
	return 0;
}

static int cmd_cold(int argc, char **argv, bool resize)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },	   { "vcpus", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' }, { "disk", required_argument, NULL, 'd' },
		{ "wait", no_argument, NULL, 'w' },	   { "confirm", no_argument, NULL, 'C' },
		{},
	};
	struct json_object *req = req_new(resize ? "resize" : "migrate");
	bool wait = false, confirm = false;
	int c, v;

	optind = 0; /* a full reset: the global options stopped at the command */
	while ((c = getopt_long(argc, argv, "t:w", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			json_object_object_add(req, "to", json_object_new_string(optarg));
			break;
		case 'c':
		case 'm':
		case 'd':
			if (!resize) {
				out_error("migrate keeps the flavor: use resize for --%s",
					  c == 'c' ? "vcpus" : c == 'm' ? "memory" : "disk");
				goto usage;
			}
			if (parse_int(optarg, 1, 1 << 30, &v)) {
				out_error("--%s: '%s' is not a positive number",
					  c == 'c' ? "vcpus" : c == 'm' ? "memory" : "disk", optarg);
				goto usage;
			}
			json_object_object_add(req, c == 'c' ? "vcpus" :
						    c == 'm' ? "memory_mib" :
							       "disk_gib",
					       json_object_new_int(v));
			break;
		case 'w':
			wait = true;
			break;
		case 'C':
			confirm = wait = true;
			break;
		default:
			goto usage;
		}
	}
	if (optind + 1 != argc) {
		out_error("%s: need exactly one VM name", resize ? "resize" : "migrate");
		goto usage;
	}
	json_object_object_add(req, "vm", json_object_new_string(argv[optind]));
	if (confirm)
		json_object_object_add(req, "confirm", json_object_new_boolean(true));
	return ferry_start(req, argv[optind], wait, confirm ? "confirmed" : "finished");
usage:
	json_object_put(req);
	return 2;
}

static int cmd_live(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "block-migrate", required_argument, NULL, 'b' },
		{ "disk-over-commit", no_argument, NULL, 'o' },
		{ "max-downtime", required_argument, NULL, 'd' },
		{ "bandwidth", required_argument, NULL, 'B' },
		{ "wait", no_argument, NULL, 'w' },
		{},
	};
	struct json_object *req = req_new("live-migrate");
	bool wait = false;
	uint64_t rate;
	int c, v;

	optind = 0;
	while ((c = getopt_long(argc, argv, "t:w", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			json_object_object_add(req, "to", json_object_new_string(optarg));
			break;
		case 'b':
			if (strcmp(optarg, "auto") && strcmp(optarg, "yes") && strcmp(optarg, "no")) {
				out_error("--block-migrate '%s': auto, yes or no", optarg);
				goto usage;
			}
			json_object_object_add(req, "block_migrate", json_object_new_string(optarg));
			break;
		case 'o':
			json_object_object_add(req, "disk_over_commit", json_object_new_boolean(true));
			break;
		case 'd':
			if (parse_int(optarg, 1, 60000, &v)) {
				out_error("--max-downtime '%s': 1-60000 ms", optarg);
				goto usage;
			}
			json_object_object_add(req, "max_downtime_ms", json_object_new_int(v));
			break;
		case 'B':
			if (parse_rate(optarg, &rate) || !rate) {
				out_error("--bandwidth '%s': a rate like 100M (bytes/s) or 1gbit",
					  optarg);
				goto usage;
			}
			json_object_object_add(req, "bandwidth_bps", json_object_new_uint64(rate));
			break;
		case 'w':
			wait = true;
			break;
		default:
			goto usage;
		}
	}
	if (optind + 1 != argc) {
		out_error("live-migrate: need exactly one VM name");
		goto usage;
	}
	json_object_object_add(req, "vm", json_object_new_string(argv[optind]));
	return ferry_start(req, argv[optind], wait, "completed");
usage:
	json_object_put(req);
	return 2;
}

/* confirm, revert, abort: @want is the step --wait waits for. */
static int cmd_act(int argc, char **argv, const char *op, const char *want)
{
	static const struct option opts[] = { { "wait", no_argument, NULL, 'w' }, {} };
	struct json_object *req, *rep;
	bool wait = false;
	char id[64];
	int c;

	optind = 0; /* a full reset: the global options stopped at the command */
	while ((c = getopt_long(argc, argv, "w", opts, NULL)) != -1) {
		if (c != 'w')
			return 2;
		wait = true;
	}
	if (optind + 1 != argc) {
		out_error("%s: need a VM name or migration id", op);
		return 2;
	}
	req = req_new(op);
	req_target(req, argv[optind]);
	rep = ferry_call(req);
	if (!rep)
		return 1;
	snprintf(id, sizeof(id), "%s", js(rep, "id") ?: "?");
	json_object_put(rep);
	if (wait)
		return ferry_wait(id, want);
	out_object_open(NULL);
	out_str("id", "%s: ", id);
	out_str("requested", "%s requested\n", op);
	out_object_close();
	return 0;
}

static int cmd_show(int argc, char **argv)
{
	struct json_object *req, *rep, *m;

	if (argc != 2) {
		out_error("show: need a migration id or VM name");
		return 2;
	}
	req = req_new("show");
	req_target(req, argv[1]);
	rep = ferry_call(req);
	if (!rep)
		return 1;
	if (json_object_object_get_ex(rep, "migration", &m))
		print_migration(m);
	json_object_put(rep);
	return 0;
}

static int cmd_migrations(int argc, char **argv)
{
	struct json_object *req = req_new("migrations"), *rep, *arr;
	char b1[32], b2[32], b3[32];
	size_t i, n, mirrored = 0;

	if (argc > 2) {
		json_object_put(req);
		out_error("migrations: at most one VM name");
		return 2;
	}
	if (argc == 2)
		json_object_object_add(req, "vm", json_object_new_string(argv[1]));
	rep = ferry_call(req);
	if (!rep)
		return 1;
	json_object_object_get_ex(rep, "migrations", &arr);
	n = arr ? json_object_array_length(arr) : 0;
	out_array_open(NULL);
	out_plain("%-16s %-12s %-14s %-14s %-6s %-6s %9s %10s %10s %10s\n", "ID", "VM", "TYPE",
		  "STATUS", "SOURCE", "DEST", "DOWNTIME", "DISK", "DONE", "WIRE");
	for (i = 0; i < n; i++) {
		struct json_object *m = json_object_array_get_idx(arr, i);

		out_object_open(NULL);
		out_str("id", jb(m, "mirrored") ? "%-15s* " : "%-16s ", js(m, "id"));
		out_str("vm", "%-12s ", js(m, "vm"));
		out_str("type", "%-14s ", js(m, "type"));
		out_str("status", "%-14s ", js(m, "status"));
		out_str("source", "%-6s ", js(m, "source"));
		out_str("dest", "%-6s ", js(m, "dest"));
		out_u64("downtime_ms", "%7" PRIu64 "ms ", ju(m, "downtime_ms"));
		out_u64("disk_total_bytes", NULL, ju(m, "disk_total_bytes"));
		out_u64("disk_processed_bytes", NULL, ju(m, "disk_processed_bytes"));
		out_u64("wire_bytes", NULL, ju(m, "wire_bytes"));
		out_plain("%10s %10s %10s\n", fmt_bytes(ju(m, "disk_total_bytes"), b1, sizeof(b1)),
			  fmt_bytes(ju(m, "disk_processed_bytes"), b2, sizeof(b2)),
			  fmt_bytes(ju(m, "wire_bytes"), b3, sizeof(b3)));
		out_str("vm_state", NULL, js(m, "vm_state"));
		out_str("task_state", NULL, js(m, "task_state"));
		out_str("role", NULL, js(m, "role"));
		out_str("error", NULL, js(m, "error"));
		out_u64("created_ms", NULL, ju(m, "created_ms"));
		out_bool("mirrored", NULL, jb(m, "mirrored"));
		out_str("reported_by", NULL, js(m, "reported_by"));
		mirrored += jb(m, "mirrored");
		out_object_close();
	}
	out_array_close();
	if (mirrored)
		out_plain("* from the cluster's record: its coordinator did not answer\n");
	if (json_object_object_get_ex(rep, "cluster_error", NULL))
		out_plain("(the cluster's record of migrations: %s)\n", js(rep, "cluster_error"));
	json_object_put(rep);
	return 0;
}

static int cmd_hosts(void)
{
	struct json_object *rep, *arr;
	bool etcd;
	size_t i, n;

	rep = ferry_call(req_new("hosts"));
	if (!rep)
		return 1;
	json_object_object_get_ex(rep, "hosts", &arr);
	etcd = json_object_get_boolean(json_object_object_get(rep, "etcd"));
	n = arr ? json_object_array_length(arr) : 0;
	out_array_open(NULL);
	out_plain("%-8s %-22s %-9s %-10s %4s %10s %7s  %s\n", "HOST", "ADDRESS", "REACHABLE",
		  "CLUSTER", "VMS", "FREE MEM", "ACTIVE", "VERSION");
	for (i = 0; i < n; i++) {
		struct json_object *h = json_object_array_get_idx(arr, i), *vms, *c;
		bool up = json_object_get_boolean(json_object_object_get(h, "reachable"));
		char cl[32] = "-";

		json_object_object_get_ex(h, "vms", &vms);
		c = json_object_object_get(h, "cluster");
		if (c && json_object_get_boolean(json_object_object_get(c, "alive")))
			snprintf(cl, sizeof(cl), "alive %" PRId64 "s",
				 json_object_get_int64(json_object_object_get(c, "lease_ttl_left_s")));
		else if (c)
			snprintf(cl, sizeof(cl), "gone");
		else if (etcd)
			snprintf(cl, sizeof(cl), "unknown");
		out_object_open(NULL);
		out_str("host", "%-8s ", js(h, "host"));
		out_str("addr", "%-22s ", js(h, "addr"));
		out_bool("reachable", "%-9s ", up);
		out_plain("%-10s ", cl);
		if (c) {
			out_object_open("cluster");
			out_bool("alive", NULL,
				 json_object_get_boolean(json_object_object_get(c, "alive")));
			out_s64("lease_ttl_left_s", NULL,
				json_object_get_int64(json_object_object_get(c, "lease_ttl_left_s")));
			out_object_close();
		}
		out_u64("vms", "%4" PRIu64 " ", vms ? (uint64_t)json_object_array_length(vms) : 0);
		out_u64("free_memory_mib", "%6" PRIu64 " MiB ", ju(h, "free_memory_mib"));
		out_u64("active_migrations", "%7" PRIu64 "  ", ju(h, "active_migrations"));
		out_str("version", "%s\n", js(h, "version") ?: "-");
		if (!up)
			out_str("error", "         %s\n", js(h, "error"));
		out_object_close();
	}
	out_array_close();
	if (js(rep, "etcd_error"))
		out_plain("cluster record unavailable: %s\n", js(rep, "etcd_error"));
	json_object_put(rep);
	return 0;
}

/* This host's membership of the cluster, and every alive key etcd holds. */
static int cmd_cluster(void)
{
	struct json_object *rep, *mb, *hosts;

	rep = ferry_call(req_new("cluster"));
	if (!rep)
		return 1;
	out_object_open(NULL);
	out_str("host", "host        %s\n", js(rep, "host"));
	if (!js(rep, "etcd") || !*js(rep, "etcd")) {
		out_str("etcd", "etcd        %s\n", "none configured (no cluster record)");
		out_object_close();
		json_object_put(rep);
		return 0;
	}
	out_str("etcd", "etcd        %s", js(rep, "etcd"));
	out_str("endpoint", " (talking to %s)\n", js(rep, "endpoint"));
	out_u64("lease_ttl_s", "lease TTL   %" PRIu64 " s\n", ju(rep, "lease_ttl_s"));
	mb = json_object_object_get(rep, "membership");
	out_object_open("membership");
	out_bool("alive", "membership  %s",
		 json_object_get_boolean(json_object_object_get(mb, "alive")));
	out_s64("deadline_in_ms", ", lease deadline in %" PRId64 " ms",
		json_object_get_int64(json_object_object_get(mb, "deadline_in_ms")));
	out_u64("renewals", ", %" PRIu64 " renewal(s)", ju(mb, "renewals"));
	out_u64("registrations", ", %" PRIu64 " lease(s) taken\n", ju(mb, "registrations"));
	if (js(mb, "error"))
		out_str("error", "            last failure: %s\n", js(mb, "error"));
	out_object_close();
	out_bool("self_fence", "fencing     %s",
		 json_object_get_boolean(json_object_object_get(rep, "self_fence")));
	out_bool("fenced", ", fenced now: %s",
		 json_object_get_boolean(json_object_object_get(rep, "fenced")));
	out_u64("fence_destroyed", ", %" PRIu64 " VM(s) destroyed by fencing\n",
		ju(rep, "fence_destroyed"));
	if (js(rep, "etcd_error"))
		out_str("etcd_error", "etcd        unavailable: %s\n", js(rep, "etcd_error"));
	hosts = json_object_object_get(rep, "hosts");
	if (hosts) {
		out_array_open("hosts");
		out_plain("%-8s %-22s %-6s %8s %9s  %s\n", "HOST", "ADDRESS", "ALIVE", "TTL LEFT",
			  "CREATED", "VERSION");
		json_object_object_foreach(hosts, name, h) {
			out_object_open(NULL);
			out_str("host", "%-8s ", name);
			out_str("addr", "%-22s ", js(h, "addr") ?: "-");
			out_bool("alive", "%-6s ",
				 json_object_get_boolean(json_object_object_get(h, "alive")));
			out_s64("lease_ttl_left_s", "%7" PRId64 "s ",
				json_object_get_int64(json_object_object_get(h, "lease_ttl_left_s")));
			out_s64("create_revision", "%9" PRId64 "  ",
				json_object_get_int64(json_object_object_get(h, "create_revision")));
			out_str("version", "%s\n", js(h, "version") ?: "-");
			out_object_close();
		}
		out_array_close();
	}
	out_object_close();
	json_object_put(rep);
	return 0;
}

/* ferry evacuate VM [--to HOST] [--on-shared-storage] [--target-state S] [--wait] */
static int cmd_evacuate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "on-shared-storage", no_argument, NULL, 's' },
		{ "target-state", required_argument, NULL, 'T' },
		{ "wait", no_argument, NULL, 'w' },
		{},
	};
	struct json_object *req = req_new("evacuate");
	bool wait = false;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "t:w", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			json_object_object_add(req, "to", json_object_new_string(optarg));
			break;
		case 's':
			json_object_object_add(req, "on_shared_storage", json_object_new_boolean(true));
			break;
		case 'T':
			if (strcmp(optarg, "active") && strcmp(optarg, "stopped")) {
				out_error("--target-state '%s': active or stopped", optarg);
				goto usage;
			}
			json_object_object_add(req, "target_state", json_object_new_string(optarg));
			break;
		case 'w':
			wait = true;
			break;
		default:
			goto usage;
		}
	}
	if (optind + 1 != argc) {
		out_error("evacuate: need exactly one VM name");
		goto usage;
	}
	json_object_object_add(req, "vm", json_object_new_string(argv[optind]));
	return ferry_start(req, argv[optind], wait, "done");
usage:
	json_object_put(req);
	out_error("usage: ferry evacuate VM [--to HOST] [--on-shared-storage] "
		  "[--target-state active|stopped] [--wait]");
	return 2;
}

/* ferry host-evacuate HOST [--target-state active|stopped] */
static int cmd_host_evacuate(int argc, char **argv)
{
	struct json_object *req = req_new("host-evacuate"), *rep, *arr;
	size_t i, n;

	if (argc == 4 && !strcmp(argv[2], "--target-state") &&
	    (!strcmp(argv[3], "active") || !strcmp(argv[3], "stopped"))) {
		json_object_object_add(req, "target_state", json_object_new_string(argv[3]));
	} else if (argc != 2) {
		json_object_put(req);
		out_error("usage: ferry host-evacuate HOST [--target-state active|stopped]");
		return 2;
	}
	json_object_object_add(req, "dead_host", json_object_new_string(argv[1]));
	rep = ferry_call(req);
	if (!rep)
		return 1;
	arr = json_object_object_get(rep, "vms");
	n = arr ? json_object_array_length(arr) : 0;
	out_array_open(NULL);
	out_plain("%-16s %-8s %s\n", "VM", "TO", "EVACUATION");
	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);

		out_object_open(NULL);
		out_str("vm", "%-16s ", js(v, "vm"));
		out_str("to", "%-8s ", js(v, "to") ?: "-");
		if (js(v, "id"))
			out_str("id", "%s started\n", js(v, "id"));
		else
			out_str("error", "refused: %s\n", js(v, "error"));
		out_object_close();
	}
	out_array_close();
	if (!n)
		out_plain("host %s owns no VM in the cluster's record\n", js(rep, "host"));
	json_object_put(rep);
	return 0;
}

/* ferry quarantine [list] | purge ID | restore ID --as NAME */
static int cmd_quarantine(int argc, char **argv)
{
	struct json_object *req = req_new("quarantine"), *rep, *arr;
	const char *action = argc > 1 ? argv[1] : "list";
	size_t i, n;

	json_object_object_add(req, "action", json_object_new_string(action));
	if (!strcmp(action, "purge") && argc == 3) {
		json_object_object_add(req, "id", json_object_new_string(argv[2]));
	} else if (!strcmp(action, "restore") && argc == 5 && !strcmp(argv[3], "--as")) {
		json_object_object_add(req, "id", json_object_new_string(argv[2]));
		json_object_object_add(req, "as", json_object_new_string(argv[4]));
	} else if (strcmp(action, "list") || argc > 2) {
		json_object_put(req);
		out_error("usage: ferry quarantine [list] | purge ID | restore ID --as NAME");
		return 2;
	}
	rep = ferry_call(req);
	if (!rep)
		return 1;
	if (strcmp(action, "list")) {
		out_object_open(NULL);
		out_str("id", "%s", argv[2]);
		out_str("done", " %s\n", !strcmp(action, "purge") ? "purged" : "restored");
		out_object_close();
		json_object_put(rep);
		return 0;
	}
	arr = json_object_object_get(rep, "quarantine");
	n = arr ? json_object_array_length(arr) : 0;
	out_array_open(NULL);
	out_plain("%-34s %-6s %4s  %-18s %s\n", "ID", "HOST", "GEN", "RECORD (OWNER/GEN)", "DISKS");
	for (i = 0; i < n; i++) {
		struct json_object *q = json_object_array_get_idx(arr, i), *d;
		char rec[64], dl[256] = "";
		size_t k, nd;

		d = json_object_object_get(q, "disks");
		nd = d ? json_object_array_length(d) : 0;
		for (k = 0; k < nd; k++) {
			struct json_object *x = json_object_array_get_idx(d, k);
			size_t l = strlen(dl);

			snprintf(dl + l, sizeof(dl) - l, "%s%s %s", k ? ", " : "", js(x, "target") ?: "?",
				 js(x, "how") ?: "?");
		}
		snprintf(rec, sizeof(rec), "%s/%" PRIu64, js(q, "record_owner") ?: "?",
			 ju(q, "record_generation"));
		out_object_open(NULL);
		out_str("id", "%-34s ", js(q, "id"));
		out_str("host", "%-6s ", js(q, "host"));
		out_u64("generation", "%4" PRIu64 "  ", ju(q, "generation"));
		out_plain("%-18s ", rec);
		out_str("record_owner", NULL, js(q, "record_owner"));
		out_u64("record_generation", NULL, ju(q, "record_generation"));
		out_str("vm", NULL, js(q, "vm"));
		out_str("dir", NULL, js(q, "dir"));
		out_array_open("disks");
		for (k = 0; k < nd; k++) {
			struct json_object *x = json_object_array_get_idx(d, k);

			out_object_open(NULL);
			out_str("target", NULL, js(x, "target"));
			out_str("path", NULL, js(x, "path"));
			out_str("kept", NULL, js(x, "kept"));
			out_str("how", NULL, js(x, "how"));
			out_object_close();
		}
		out_array_close();
		out_plain("%s\n", dl[0] ? dl : "-");
		out_object_close();
	}
	out_array_close();
	json_object_put(rep);
	return 0;
}

/* The cluster's VM records (etcd), and copies on this host they do not own. */
static int cmd_vms(void)
{
	struct json_object *rep, *arr, *st;
	size_t i, n;

	rep = ferry_call(req_new("vms"));
	if (!rep)
		return 1;
	arr = json_object_object_get(rep, "vms");
	st = json_object_object_get(rep, "stale");
	out_object_open(NULL);
	out_array_open("vms");
	out_plain("%-16s %-8s %4s %-9s %5s %9s  %-18s %s\n", "VM", "OWNER", "GEN", "POWER",
		  "VCPUS", "MEMORY", "DISKS", "UPDATED BY");
	n = arr ? json_object_array_length(arr) : 0;
	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i), *d;
		size_t k, nd;
		char disks[64] = "";

		d = json_object_object_get(v, "disks");
		nd = d ? json_object_array_length(d) : 0;
		for (k = 0; k < nd; k++) {
			struct json_object *x = json_object_array_get_idx(d, k);
			size_t l = strlen(disks);

			snprintf(disks + l, sizeof(disks) - l, "%s%s%s", k ? "," : "",
				 js(x, "target") ?: "?",
				 json_object_get_boolean(json_object_object_get(x, "shared")) ?
					 "(shared)" :
					 "");
		}
		out_object_open(NULL);
		out_str("vm", "%-16s ", js(v, "vm"));
		out_str("owner", "%-8s ", js(v, "owner"));
		out_u64("generation", "%4" PRIu64 " ", ju(v, "generation"));
		out_str("power", "%-9s ", js(v, "power"));
		out_u64("vcpus", "%5" PRIu64 " ", ju(v, "vcpus"));
		out_u64("memory_mib", "%5" PRIu64 " MiB  ", ju(v, "memory_mib"));
		out_plain("%-18s ", disks[0] ? disks : "-");
		out_array_open("disks");
		for (k = 0; k < nd; k++) {
			struct json_object *x = json_object_array_get_idx(d, k);

			out_object_open(NULL);
			out_str("target", NULL, js(x, "target"));
			out_str("path", NULL, js(x, "path"));
			out_str("format", NULL, js(x, "format"));
			out_bool("shared", NULL,
				 json_object_get_boolean(json_object_object_get(x, "shared")));
			out_u64("size_bytes", NULL, ju(x, "size_bytes"));
			out_object_close();
		}
		out_array_close();
		if (js(v, "evacuated_from"))
			out_str("evacuated_from", NULL, js(v, "evacuated_from"));
		out_str("updated_by", "%s\n", js(v, "updated_by") ?: "-");
		out_u64("updated_ms", NULL, ju(v, "updated_ms"));
		out_u64("mod_revision", NULL, ju(v, "mod_revision"));
		out_object_close();
	}
	out_array_close();
	out_array_open("stale");
	n = st ? json_object_array_length(st) : 0;
	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(st, i);

		out_object_open(NULL);
		out_str("vm", "stale here: vm %s", js(v, "vm"));
		out_str("host", " on %s", js(v, "host"));
		out_u64("here_generation", " (generation %" PRIu64 ")", ju(v, "here_generation"));
		out_str("owner", ": the record has it on %s", js(v, "owner"));
		out_u64("generation", ", generation %" PRIu64 "\n", ju(v, "generation"));
		out_object_close();
	}
	out_array_close();
	out_object_close();
	json_object_put(rep);
	return 0;
}

static int cmd_vms_(int argc, char **argv)
{
	return cmd_vms();
}

static int cmd_cluster_(int argc, char **argv)
{
	return cmd_cluster();
}

static int cmd_list(void)
{
	struct json_object *rep, *arr;
	size_t i, n;

	rep = ferry_call(req_new("list"));
	if (!rep)
		return 1;
	json_object_object_get_ex(rep, "vms", &arr);
	n = arr ? json_object_array_length(arr) : 0;
	out_array_open(NULL);
	out_plain("%-16s %-9s %5s %9s  %-18s %s\n", "NAME", "STATE", "VCPUS", "MEMORY",
		  "TASK", "MIGRATION");
	for (i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(arr, i);

		out_object_open(NULL);
		out_str("name", "%-16s ", js(d, "name"));
		out_str("state", "%-9s ", js(d, "state"));
		out_u64("vcpus", "%5" PRIu64 " ", ju(d, "vcpus"));
		out_u64("memory_mib", "%5" PRIu64 " MiB  ", ju(d, "memory_mib"));
		out_str("task_state", "%-18s ", js(d, "task_state"));
		out_str("migration", "%s\n", js(d, "migration"));
		out_str("uuid", NULL, js(d, "uuid"));
		out_object_close();
	}
	out_array_close();
	out_plain("host %s\n", js(rep, "host") ?: "?");
	json_object_put(rep);
	return 0;
}

static int cmd_migrate(int argc, char **argv)
{
	return cmd_cold(argc, argv, false);
}

static int cmd_resize(int argc, char **argv)
{
	return cmd_cold(argc, argv, true);
}

static int cmd_confirm(int argc, char **argv)
{
	return cmd_act(argc, argv, "confirm", "confirmed");
}

static int cmd_revert(int argc, char **argv)
{
	return cmd_act(argc, argv, "revert", "reverted");
}

static int cmd_abort(int argc, char **argv)
{
	return cmd_act(argc, argv, "abort", "cancelled");
}

static int cmd_force_complete(int argc, char **argv)
{
	return cmd_act(argc, argv, "force_complete", "completed");
}

/* One sample of the VIF monitor's taps; every counter under -j. */
static int vifs_print(const char *vm)
{
	struct json_object *req = req_new("vifs"), *rep, *arr;
	char b1[32], b2[32], rxp[24];
	bool rx;
	size_t i, n;

	if (vm)
		json_object_object_add(req, "vm", json_object_new_string(vm));
	rep = ferry_call(req);
	if (!rep)
		return 1;
	json_object_object_get_ex(rep, "vifs", &arr);
	n = arr ? json_object_array_length(arr) : 0;
	out_object_open(NULL);
	out_str("host", "host %s", js(rep, "host"));
	out_u64("now_ns", "  CLOCK_TAI %" PRIu64 " ns\n", ju(rep, "now_ns"));
	out_array_open("vifs");
	out_plain("%-12s %-9s %-17s %-9s %-9s %9s %9s %9s %9s %5s %5s %5s %9s\n", "VM", "TAP",
		  "MAC", "BRIDGE", "STATE", "TX PKTS", "TX BYTES", "RX PKTS", "RX BYTES", "RARP",
		  "GARP", "DROPS", "TX GAP");
	for (i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, i);

		out_object_open(NULL);
		out_str("vm", "%-12s ", js(v, "vm"));
		out_str("tap", "%-9s ", js(v, "tap"));
		out_str("mac", "%-17s ", js(v, "mac"));
		out_str("bridge", "%-9s ", js(v, "bridge"));
		out_str("state", "%-9s ", js(v, "state"));
		out_u64("ifindex", NULL, ju(v, "ifindex"));
		out_u64("reattaches", NULL, ju(v, "reattaches"));
		out_u64("attach_lag_ns", NULL, ju(v, "attach_lag_ns"));
		rx = json_object_get_boolean(json_object_object_get(v, "rx_counted"));
		out_bool("rx_counted", NULL, rx);
#define VIF_OUT(name, comment) out_u64(#name, NULL, ju(v, #name));
		FERRY_VIF_COUNTERS(VIF_OUT)
#undef VIF_OUT
		/* no egress hook (an ingress qdisc): nothing received is counted */
		snprintf(rxp, sizeof(rxp), "%" PRIu64, ju(v, "rx_packets"));
		out_plain("%9" PRIu64 " %9s %9s %9s %5" PRIu64 " %5" PRIu64 " %5" PRIu64
			  " %7.1fms\n",
			  ju(v, "tx_packets"), fmt_bytes(ju(v, "tx_bytes"), b1, sizeof(b1)),
			  rx ? rxp : "-", rx ? fmt_bytes(ju(v, "rx_bytes"), b2, sizeof(b2)) : "-",
			  ju(v, "rarp_count"), ju(v, "garp_count"), ju(v, "drops"),
			  (double)ju(v, "tx_gap_max_ns") / 1e6);
		out_object_close();
	}
	out_array_close();
	out_object_close();
	out_flush();
	json_object_put(rep);
	return 0;
}

static int cmd_vifs(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch", optional_argument, NULL, 'w' },
		{ "count", required_argument, NULL, 'c' },
		{},
	};
	long interval_ms = 0, count = 0, i;
	char *end;
	int c, ret;

	optind = 0;
	while ((c = getopt_long(argc, argv, "w::c:", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			interval_ms = optarg ? strtol(optarg, &end, 10) : 1000;
			if (interval_ms < 10 || interval_ms > 3600000 || (optarg && *end)) {
				out_error("vifs: --watch takes an interval of 10 to 3600000 ms");
				return 2;
			}
			break;
		case 'c':
			count = strtol(optarg, &end, 10);
			if (count < 1 || *end) {
				out_error("vifs: --count takes a positive number");
				return 2;
			}
			break;
		default:
			out_error("vifs: usage: vifs [VM] [--watch[=MS]] [--count N]");
			return 2;
		}
	}
	if (argc - optind > 1) {
		out_error("vifs: at most one VM name");
		return 2;
	}
	if (!interval_ms)
		return vifs_print(argc > optind ? argv[optind] : NULL);
	/* Watching: one sample per interval; under -j, one JSON document per line. */
	for (i = 0; !count || i < count; i++) {
		if (i)
			usleep((useconds_t)interval_ms * 1000);
		ret = vifs_print(argc > optind ? argv[optind] : NULL);
		if (ret)
			return ret;
		fflush(stdout);
	}
	return 0;
}

static int cmd_hosts_(int argc, char **argv)
{
	return cmd_hosts();
}

static int cmd_list_(int argc, char **argv)
{
	return cmd_list();
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	bool no_args;
} cmds[] = {
	{ "migrate", cmd_migrate },	  { "resize", cmd_resize },
	{ "confirm", cmd_confirm },	  { "revert", cmd_revert },
	{ "abort", cmd_abort },		  { "show", cmd_show },
	{ "live-migrate", cmd_live },	  { "force-complete", cmd_force_complete },
	{ "migrations", cmd_migrations }, { "hosts", cmd_hosts_, true },
	{ "list", cmd_list_, true },	  { "vifs", cmd_vifs },
	{ "cluster", cmd_cluster_, true }, { "vms", cmd_vms_, true },
	{ "evacuate", cmd_evacuate },	  { "quarantine", cmd_quarantine },
	{ "host-evacuate", cmd_host_evacuate },
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },	   { "pretty", no_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'H' }, { "socket", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },	   { "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },	   {},
	};
	enum out_mode mode = OUT_PLAIN;
	const char *cmd;
	int c;

	log_init(argv[0]);
	if (getenv("FERRY_SOCKET"))
		ferry_socket = getenv("FERRY_SOCKET");
	/* Options before the command; the command parses its own. */
	while ((c = getopt_long(argc, argv, "+jpH:s:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			mode = mode == OUT_PLAIN ? OUT_JSON : mode;
			break;
		case 'p':
			mode = OUT_JSON_PRETTY;
			break;
		case 'H':
			ferry_host = optarg;
			break;
		case 's':
			ferry_socket = optarg;
			break;
		case 'v':
			log_level_set(LOG_LVL_INFO);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ferry %s\n", FERRY_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	out_init(mode);
	if (optind >= argc) {
		out_error("no command (try ferry --help)");
		return 2;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	for (c = 0; c < (int)ARRAY_SIZE(cmds); c++) {
		if (strcmp(cmd, cmds[c].name))
			continue;
		if (cmds[c].no_args && argc != 1) {
			out_error("%s: takes no arguments", cmd);
			return 2;
		}
		return cmds[c].fn(argc, argv);
	}
	out_error("unknown command '%s' (try ferry --help)", cmd);
	return 2;
}
