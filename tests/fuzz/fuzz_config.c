// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_config.c - libFuzzer harness for ferryd's configuration file parser
 * (daemon/config.c, conf_load): "key = value" lines, peers lists, sizes,
 * rates and addresses, as an operator (or a configuration tool) writes them.
 *
 * The input is the whole file.  It reaches conf_load through a memfd, as
 * /proc/self/fd/N, so the real open-and-read path runs and nothing touches
 * the disk.  Any input must end in a refusal naming file:line, or in a
 * configuration whose strings are terminated inside their fields and whose
 * numbers are inside the ranges the parser promises; never a crash or a
 * leak.  conf_dump then prints it as JSON (to /dev/null).
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/daemon.h"

struct ferryd *ferryd;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TERMINATED(f) assert(strnlen((f), sizeof(f)) < sizeof(f))

static void check_conf(const struct ferryd_conf *c)
{
	int i;

	TERMINATED(c->host);
	TERMINATED(c->listen.host);
	TERMINATED(c->mover_listen.host);
	TERMINATED(c->libvirt_uri);
	TERMINATED(c->state_dir);
	TERMINATED(c->control_socket);
	TERMINATED(c->cluster_key_file);
	TERMINATED(c->instances_dir);
	TERMINATED(c->lvm_vg);
	TERMINATED(c->pin_dir);
	TERMINATED(c->mover_compress);
	assert(c->npeers >= 0 && c->npeers <= FERRYD_MAX_PEERS);
	for (i = 0; i < c->npeers; i++) {
		TERMINATED(c->peers[i].name);
		TERMINATED(c->peers[i].addr.host);
		assert(c->peers[i].name[0] && c->peers[i].addr.host[0]);
		assert(conf_peer(c, c->peers[i].name));
	}
	assert(c->track_granularity >= 4096 && c->track_granularity <= MIB &&
	       !(c->track_granularity & (c->track_granularity - 1)));
	assert(c->shutdown_timeout_s >= 1 && c->shutdown_timeout_s <= 3600);
	assert(c->shutdown_retries >= 0 && c->shutdown_retries <= 100);
	assert(c->precopy_max_rounds >= 0 && c->precopy_max_rounds <= 1000);
	assert(c->precopy_max_s >= 1 && c->precopy_max_s <= 86400);
	assert(c->peer_retry_s >= 0 && c->peer_retry_s <= 3600);
	assert(c->resize_confirm_window_s >= 0 && c->resize_confirm_window_s <= 7 * 24 * 3600);
	assert(c->mover_connections >= 0 && c->mover_connections <= 64);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ferryd_conf c;
	static char path[64];
	static int fd = -1;

	if (fd < 0) {
		fd = memfd_create("ferryd.conf", MFD_CLOEXEC);
		assert(fd >= 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		assert(freopen("/dev/null", "w", stdout));
		out_init(OUT_JSON); /* -j: builds the JSON too; also quiets the log */
		log_quiet_set(true);
	}
	if (ftruncate(fd, 0) || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	conf_defaults(&c);
	if (conf_load(&c, path) == 0) {
		check_conf(&c);
		conf_dump(&c);
	}
	return 0;
}
