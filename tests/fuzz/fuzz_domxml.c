// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * fuzz_domxml.c - libFuzzer harness for the domain XML ferryd reads and
 * adapts (daemon/host/domxml.c): domxml_parse on the source's definition
 * and domxml_adapt, which writes the destination's.  The XML travels in the
 * operation record between peers, so a peer (or whatever wrote the domain)
 * chooses it.
 *
 * The input is the XML.  If it parses, it is adapted to a flavor (which of
 * memory and vCPUs change depends on the input's length) with every disk
 * moved to a destination path, file or block by its type, and the result
 * is parsed again.  Invariants asserted: parsed strings are terminated
 * inside their fields and disks are at most FERRYD_MAX_DISKS, each with a
 * path and a target; an adaptable definition stays parseable, keeps its
 * name and disks, and has the new flavor and every disk at its new path.
 * Never a crash or a leak.
 */
#include <assert.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "daemon/storage/storage.h"

struct ferryd *ferryd;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TERMINATED(f) assert(strnlen((f), sizeof(f)) < sizeof(f))

static void check_info(const struct domxml_info *info)
{
	int i;

	TERMINATED(info->name);
	TERMINATED(info->uuid);
	assert(info->name[0] && info->vcpus > 0 && info->memory_mib);
	assert(info->ndisks >= 0 && info->ndisks <= FERRYD_MAX_DISKS);
	for (i = 0; i < info->ndisks; i++) {
		const struct domxml_disk *d = &info->disks[i];

		TERMINATED(d->target);
		TERMINATED(d->type);
		TERMINATED(d->format);
		TERMINATED(d->path);
		assert(d->target[0] && d->path[0]);
		assert(!strcmp(d->type, "file") || !strcmp(d->type, "block"));
	}
}

static void adapt(const char *xml, const struct domxml_info *info, size_t size)
{
	static struct mig_disk disks[FERRYD_MAX_DISKS];
	struct flavor fl = { 0 };
	struct domxml_info *again;
	char *out;
	int i;

	if (size & 1)
		fl.memory_mib = 2048;
	if (size & 2)
		fl.vcpus = 3;
	memset(disks, 0, sizeof(disks));
	for (i = 0; i < info->ndisks; i++) {
		const struct domxml_disk *dd = &info->disks[i];
		bool block = !strcmp(dd->type, "block");

		snprintf(disks[i].target, sizeof(disks[i].target), "%s", dd->target);
		snprintf(disks[i].backend, sizeof(disks[i].backend), "%s", block ? "lvm" : "file");
		snprintf(disks[i].format, sizeof(disks[i].format), "%s", dd->format);
		snprintf(disks[i].src_path, sizeof(disks[i].src_path), "%s", dd->path);
		snprintf(disks[i].dst_path, sizeof(disks[i].dst_path), "%s/dst-%s",
			 block ? "/dev/ferryvg" : "/var/lib/nova/instances/vm", dd->target);
	}
	out = domxml_adapt(xml, &fl, disks, info->ndisks);
	assert(out);
	again = malloc(sizeof(*again));
	assert(again);
	assert(domxml_parse(out, again) == 0);
	check_info(again);
	assert(!strcmp(again->name, info->name));
	assert(again->ndisks == info->ndisks);
	assert(!fl.vcpus || again->vcpus == fl.vcpus);
	assert(!fl.memory_mib || again->memory_mib == fl.memory_mib);
	for (i = 0; i < again->ndisks; i++) {
		assert(!strcmp(again->disks[i].target, info->disks[i].target));
		assert(!strcmp(again->disks[i].path, disks[i].dst_path));
	}
	free(again);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct domxml_info info;
	char *xml;

	if (size > 64 * 1024)
		return 0;
	xml = malloc(size + 1);
	if (!xml)
		return 0;
	memcpy(xml, data, size);
	xml[size] = '\0';
	if (domxml_parse(xml, &info) == 0) {
		check_info(&info);
		adapt(xml, &info, size);
	}
	free(xml);
	return 0;
}
