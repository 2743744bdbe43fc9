// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Unit tests for ferryd's pure helpers: Nova's names for each step, the
 * migration record's JSON (journal and peer form) and its validation,
 * domain XML parsing and adaptation, configuration parsing, the HMAC, and
 * whether a migrated guest's first frame is waited for.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/flows/flows.h"

/* The daemon's process-wide state; these helpers do not use it. */
struct ferryd *ferryd;

/* Nova's names for each step of the cold flow, as the engine shows them. */
static void test_steps(void **state)
{
	static const struct {
		int step;
		const char *name, *status;
	} want[] = {
		{ COLD_NEW, "new", "pre-migrating" },
		{ COLD_PREP, "prep", "pre-migrating" },
		{ COLD_PRECOPY, "precopy", "migrating" },
		{ COLD_POWEROFF, "poweroff", "migrating" },
		{ COLD_FINAL_COPY, "final-copy", "migrating" },
		{ COLD_KEEP_SOURCE, "keep-source", "post-migrating" },
		{ COLD_FINISHING, "finishing", "post-migrating" },
		{ COLD_FINISHED, "finished", "finished" },
		{ COLD_CONFIRMING, "confirming", "confirming" },
		{ COLD_CONFIRMED, "confirmed", "confirmed" },
		{ COLD_REVERTING, "reverting", "reverting" },
		{ COLD_REVERT_SOURCE, "revert-source", "reverting" },
		{ COLD_REVERTED, "reverted", "reverted" },
		{ COLD_FAILED, "failed", "error" },
		{ COLD_CANCELLED, "cancelled", "cancelled" },
	};
	struct migration *m = mig_new();
	size_t i;

	assert_non_null(m);
	m->flow = &cold_flow;
	m->was_running = true;
	assert_int_equal(cold_flow.nsteps, ARRAY_SIZE(want));
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		m->step = want[i].step;
		assert_string_equal(mig_step_name(m), want[i].name);
		assert_string_equal(mig_status_name(m), want[i].status);
		assert_int_equal(flow_step_find(&cold_flow, want[i].name), want[i].step);
	}
	assert_int_equal(flow_step_find(&cold_flow, "bogus"), -1);
	/* Walking back shows "rollback", status error, as before the engine. */
	m->step = COLD_POWEROFF;
	m->undoing = true;
	assert_string_equal(mig_step_name(m), "rollback");
	assert_string_equal(mig_status_name(m), "error");
	assert_false(mig_terminal(m));
	m->cancelled = true;
	assert_string_equal(mig_status_name(m), "cancelling");
	m->undoing = m->cancelled = false;
	m->step = COLD_CONFIRMED;
	assert_true(mig_terminal(m));
	m->step = COLD_REVERTED;
	assert_true(mig_terminal(m));
	m->step = COLD_FAILED;
	assert_true(mig_terminal(m));
	m->step = COLD_FINISHED;
	assert_false(mig_terminal(m));
	assert_true(mig_at_rest(m));
	assert_null(mig_task_state(m));
	assert_string_equal(mig_vm_state(m), "resized");
	m->step = COLD_PRECOPY;
	assert_string_equal(mig_task_state(m), "resize_migrating");
	assert_string_equal(mig_vm_state(m), "active");
	m->step = COLD_CONFIRMED;
	m->was_running = false;
	assert_string_equal(mig_vm_state(m), "stopped");
	mig_free(m);
}

static struct migration *sample_migration(void)
{
	struct migration *m = mig_new();

	assert_non_null(m);
	assert_int_equal(mig_id_generate(m->id, sizeof(m->id)), 0);
	assert_int_equal(strlen(m->id), 14);
	m->flow = &cold_flow;
	m->type = MIG_TYPE_RESIZE;
	m->role = MIG_ROLE_DEST;
	m->step = COLD_FINAL_COPY;
	m->undoing = true;
	m->undo_from = COLD_KEEP_SOURCE;
	strcpy(m->coordinator, "h1");
	strcpy(m->vm, "g1");
	strcpy(m->uuid, "4b9f6f0e-0c6a-4f5e-9d55-3d9a1a1f2b3c");
	strcpy(m->src_host, "h1");
	strcpy(m->dst_host, "h2");
	m->was_running = true;
	strcpy(m->inst_dir, "/var/lib/libvirt/images/g1");
	m->old_flavor = (struct flavor){ 1, 128, 256 * MIB };
	m->new_flavor = (struct flavor){ 2, 192, GIB };
	m->ndisks = 2;
	strcpy(m->disks[0].target, "vda");
	strcpy(m->disks[0].backend, "file");
	strcpy(m->disks[0].format, "qcow2");
	strcpy(m->disks[0].src_path, "/var/lib/libvirt/images/g1/disk");
	strcpy(m->disks[0].backing, "/var/lib/libvirt/images/_base/abc");
	m->disks[0].size_bytes = 12345678;
	m->disks[0].virtual_bytes = 256 * MIB;
	m->disks[0].new_virtual_bytes = GIB;
	strcpy(m->disks[1].target, "vdb");
	m->disks[1].kind = MIG_DISK_SWAP;
	strcpy(m->disks[1].backend, "lvm");
	strcpy(m->disks[1].format, "raw");
	strcpy(m->disks[1].src_path, "/dev/vg/g1_swap");
	m->m.downtime_ms = 750;
	m->m.wire_bytes = 1ULL << 40;
	m->m.precopy_rounds = 3;
	m->src_xml = strdup("<domain type='qemu'><name>g1</name></domain>");
	return m;
}

static void test_record_roundtrip(void **state)
{
	struct migration *m = sample_migration(), *back = mig_new();
	struct json_object *o, *parsed;
	char err[256];

	o = mig_to_json(m, true);
	parsed = json_tokener_parse(json_object_to_json_string(o));
	assert_non_null(parsed);
	assert_int_equal(mig_from_json(back, parsed, err, sizeof(err)), 0);
	assert_string_equal(back->id, m->id);
	assert_int_equal(back->type, MIG_TYPE_RESIZE);
	assert_int_equal(back->role, MIG_ROLE_DEST);
	assert_ptr_equal(back->flow, &cold_flow);
	assert_int_equal(back->step, COLD_FINAL_COPY);
	assert_true(back->undoing);
	assert_int_equal(back->undo_from, COLD_KEEP_SOURCE);
	assert_false(back->coordinating);
	assert_string_equal(back->coordinator, "h1");
	assert_true(back->was_running);
	assert_int_equal(back->new_flavor.vcpus, 2);
	assert_int_equal(back->new_flavor.root_disk_bytes, GIB);
	assert_int_equal(back->ndisks, 2);
	assert_string_equal(back->disks[0].backing, m->disks[0].backing);
	assert_int_equal(back->disks[0].size_bytes, 12345678);
	assert_int_equal(back->disks[1].kind, MIG_DISK_SWAP);
	assert_string_equal(back->disks[1].backend, "lvm");
	assert_int_equal(back->m.downtime_ms, 750);
	assert_int_equal(back->m.wire_bytes, 1ULL << 40);
	assert_int_equal(back->m.precopy_rounds, 3);
	assert_string_equal(back->src_xml, m->src_xml);
	assert_null(back->dst_xml);
	/* What `ferry -j migrations` lists comes flat. */
	assert_string_equal(json_object_get_string(json_object_object_get(o, "status")),
			    "error");
	assert_string_equal(json_object_get_string(json_object_object_get(o, "step")),
			    "rollback");
	assert_int_equal(json_object_get_int64(json_object_object_get(o, "downtime_ms")), 750);
	json_object_put(o);
	json_object_put(parsed);
	mig_free(back);
	mig_free(m);
}

/* A record from a peer or a damaged journal is refused, naming the field. */
static void test_record_refused(void **state)
{
	static const char *const bad[] = {
		"[]",
		"{\"vm\":\"g1\",\"type\":\"migration\",\"step\":\"new\",\"source\":\"a\",\"dest\":\"b\"}",
		"{\"id\":\"m-1\",\"vm\":\"g1\",\"type\":\"migration\",\"step\":\"jump\","
		"\"source\":\"a\",\"dest\":\"b\"}",
		"{\"id\":\"m-1\",\"vm\":7,\"type\":\"migration\",\"step\":\"new\",\"source\":\"a\","
		"\"dest\":\"b\"}",
		"{\"id\":\"m-1\",\"vm\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
		"\"type\":\"migration\",\"step\":\"new\",\"source\":\"a\",\"dest\":\"b\"}",
		"{\"id\":\"m-1\",\"vm\":\"g1\",\"type\":\"migration\",\"step\":\"new\",\"source\":\"a\","
		"\"dest\":\"b\",\"disks\":[{\"target\":\"vda\"}]}",
		"{\"id\":\"m-1\",\"vm\":\"g1\",\"type\":\"migration\",\"step\":\"new\",\"source\":\"a\","
		"\"dest\":\"b\",\"disks\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]}",
	};
	char err[256];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct json_object *o = json_tokener_parse(bad[i]);
		struct migration *m = mig_new();

		assert_non_null(o);
		err[0] = '\0';
		assert_int_equal(mig_from_json(m, o, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != '\0');
		json_object_put(o);
		mig_free(m);
	}
}

/*
 * A record this ferryd cannot run (another flow, a newer version of one,
 * a newer format, an unknown operation type) is never guessed at: it is
 * refused with the reason and kept as found, to be shown and left alone.
 */
static void test_record_foreign(void **state)
{
	static const struct {
		const char *json, *why;
	} foreign[] = {
		{ "{\"format\":2,\"flow\":\"teleport\",\"flow_version\":1,\"id\":\"m-1\","
		  "\"vm\":\"g1\",\"type\":\"migration\",\"role\":\"source\"}",
		  "flow 'teleport' is not one this ferryd runs" },
		{ "{\"format\":2,\"flow\":\"cold\",\"flow_version\":9,\"id\":\"m-1\","
		  "\"vm\":\"g1\",\"type\":\"migration\",\"role\":\"source\"}",
		  "flow 'cold' version 9 is not one this ferryd runs" },
		{ "{\"format\":3,\"id\":\"m-1\",\"vm\":\"g1\"}",
		  "record format 3 is not one this ferryd reads" },
		{ "{\"id\":\"m-1\",\"vm\":\"g1\",\"type\":\"teleport\",\"step\":\"new\","
		  "\"source\":\"a\",\"dest\":\"b\"}",
		  "operation type 'teleport' is not one this ferryd knows" },
	};
	char err[256];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(foreign); i++) {
		struct json_object *o = json_tokener_parse(foreign[i].json), *back;
		struct migration *m = mig_new();

		assert_non_null(o);
		assert_int_equal(mig_from_json(m, o, err, sizeof(err)), -ENOTSUP);
		assert_non_null(strstr(err, foreign[i].why));
		assert_null(m->flow);
		assert_string_equal(m->id, "m-1");
		/* Shown as found, with the reason; never journaled over. */
		back = mig_to_json(m, true);
		assert_string_equal(json_object_get_string(json_object_object_get(back, "foreign")),
				    m->foreign);
		assert_int_equal(journal_save(m), -EPERM);
		json_object_put(back);
		json_object_put(o);
		mig_free(m);
	}
}

static const char *sample_xml =
	"<domain type='qemu'>\n"
	"  <name>g1</name>\n"
	"  <uuid>4b9f6f0e-0c6a-4f5e-9d55-3d9a1a1f2b3c</uuid>\n"
	"  <metadata>\n"
	"    <ferry:instance xmlns:ferry='https://ferry.dev/xmlns/instance/1'>\n"
	"      <ferry:disk target='vda' role='root'/>\n"
	"      <ferry:disk target='vdb' role='swap'/>\n"
	"    </ferry:instance>\n"
	"  </metadata>\n"
	"  <memory unit='MiB'>128</memory>\n"
	"  <currentMemory unit='KiB'>131072</currentMemory>\n"
	"  <vcpu placement='static' current='1'>2</vcpu>\n"
	"  <devices>\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='qcow2' cache='none'/>\n"
	"      <source file='/var/lib/libvirt/images/g1/disk'/>\n"
	"      <target dev='vda' bus='virtio'/>\n"
	"    </disk>\n"
	"    <disk type='file' device='disk'>\n"
	"      <driver name='qemu' type='raw'/>\n"
	"      <source file='/var/lib/libvirt/images/g1/disk.swap'/>\n"
	"      <target dev='vdb' bus='virtio'/>\n"
	"    </disk>\n"
	"    <disk type='block' device='disk'>\n"
	"      <driver name='qemu' type='raw'/>\n"
	"      <source dev='/dev/vg0/g1_data'/>\n"
	"      <target dev='vdc' bus='virtio'/>\n"
	"    </disk>\n"
	"    <disk type='file' device='cdrom'>\n"
	"      <target dev='hdc' bus='ide'/>\n"
	"      <readonly/>\n"
	"    </disk>\n"
	"    <disk type='network' device='disk'>\n"
	"      <source protocol='nbd' name='x'/>\n"
	"      <target dev='vdd' bus='virtio'/>\n"
	"    </disk>\n"
	"  </devices>\n"
	"</domain>\n";

static void test_domxml(void **state)
{
	struct domxml_info info, again;
	struct mig_disk disks[3] = {};
	struct flavor fl = { .vcpus = 4, .memory_mib = 512 };
	char *xml;

	assert_int_equal(domxml_parse(sample_xml, &info), 0);
	assert_string_equal(info.name, "g1");
	assert_string_equal(info.uuid, "4b9f6f0e-0c6a-4f5e-9d55-3d9a1a1f2b3c");
	assert_int_equal(info.vcpus, 2);
	assert_int_equal(info.memory_mib, 128);
	/* The cdrom and the network disk are not ferry's to move. */
	assert_int_equal(info.ndisks, 3);
	assert_string_equal(info.disks[0].format, "qcow2");
	assert_false(info.disks[0].swap);
	assert_true(info.disks[1].swap);
	assert_string_equal(info.disks[2].type, "block");
	assert_string_equal(info.disks[2].path, "/dev/vg0/g1_data");

	strcpy(disks[0].target, "vda");
	strcpy(disks[0].backend, "file");
	strcpy(disks[0].dst_path, "/images/g1/disk");
	strcpy(disks[1].target, "vdc");
	strcpy(disks[1].backend, "lvm");
	strcpy(disks[1].dst_path, "/dev/vg9/g1_data");
	xml = domxml_adapt(sample_xml, &fl, disks, 2);
	assert_non_null(xml);
	assert_int_equal(domxml_parse(xml, &again), 0);
	assert_int_equal(again.vcpus, 4);
	assert_int_equal(again.memory_mib, 512);
	assert_int_equal(again.ndisks, 3);
	assert_string_equal(again.disks[0].path, "/images/g1/disk");
	assert_string_equal(again.disks[1].path, "/var/lib/libvirt/images/g1/disk.swap");
	assert_string_equal(again.disks[2].path, "/dev/vg9/g1_data");
	assert_non_null(strstr(xml, "<currentMemory unit=\"KiB\">524288</currentMemory>"));
	assert_null(strstr(xml, "current=")); /* all new vCPUs online */
	free(xml);

	assert_int_equal(domxml_parse("<domain><name>x</name></domain>", &info), -EINVAL);
	assert_int_equal(domxml_parse("not xml", &info), -EINVAL);
	/* Two disks on one target: adapt would point both at the moved one. */
	assert_int_equal(domxml_parse("<domain><name>x</name><memory>1048576</memory>"
				      "<vcpu>1</vcpu><devices>"
				      "<disk type='network'><target dev='vda'/></disk>"
				      "<disk type='file'><source file='/i/x'/><target dev='vda'/>"
				      "</disk></devices></domain>",
				      &info),
			 -EINVAL);
	/* A size or a count that overflows is refused, not wrapped to a small one. */
	assert_int_equal(domxml_parse("<domain><name>x</name><memory unit='GiB'>17592186044417"
				      "</memory><vcpu>1</vcpu></domain>",
				      &info),
			 -EINVAL);
	assert_int_equal(domxml_parse("<domain><name>x</name><memory>1048576</memory>"
				      "<vcpu>4294967297</vcpu></domain>",
				      &info),
			 -EINVAL);
	/* Cut short, a target would not be found again by adapt (and a path or a
	 * name would be another's): refused. */
	assert_int_equal(domxml_parse("<domain><name>x</name><memory>1048576</memory>"
				      "<vcpu>1</vcpu><devices><disk type='file'>"
				      "<source file='/i/x'/><target dev='vdaaaaaaaaaaaaaaa'/>"
				      "</disk></devices></domain>",
				      &info),
			 -ENAMETOOLONG);
	assert_int_equal(domxml_parse("<domain><name>n123456789012345678901234567890123456789"
				      "0123456789012345678901234</name><memory>1048576</memory>"
				      "<vcpu>1</vcpu></domain>",
				      &info),
			 -ENAMETOOLONG);
}

static void test_config(void **state)
{
	char path[] = "/tmp/ferry-test-conf-XXXXXX";
	struct ferryd_conf c;
	FILE *f;
	int fd;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fprintf(f, "# comment\nhost = hA   # trailing\nlisten = 198.18.9.1\n"
		   "peers = hB=198.18.9.2:5000, hC=198.18.9.3\nallow_same_host = yes\n"
		   "precopy_target_bytes = 8M\nmover_bwlimit = 1gbit\n");
	fclose(f);
	conf_defaults(&c);
	assert_int_equal(conf_load(&c, path), 0);
	assert_string_equal(c.host, "hA");
	assert_int_equal(c.listen.port, FERRYD_DEFAULT_PORT);
	assert_string_equal(c.mover_listen.host, "198.18.9.1");
	assert_int_equal(c.npeers, 2);
	assert_int_equal(c.peers[0].addr.port, 5000);
	assert_non_null(conf_peer(&c, "hC"));
	assert_null(conf_peer(&c, "hD"));
	assert_true(c.allow_same_host);
	assert_int_equal(c.precopy_target_bytes, 8 * MIB);
	assert_int_equal(c.mover_bwlimit_bps, 125000000);

	f = fopen(path, "w");
	fprintf(f, "track_granularity = 3000\n");
	fclose(f);
	conf_defaults(&c);
	assert_int_equal(conf_load(&c, path), -EINVAL);
	f = fopen(path, "w");
	fprintf(f, "no equals sign\n");
	fclose(f);
	assert_int_equal(conf_load(&c, path), -EINVAL);
	/* A long comment's tail is not a setting; nor is what follows a NUL. */
	f = fopen(path, "w");
	fprintf(f, "# %5000s host = tail\n", "");
	fclose(f);
	conf_defaults(&c);
	assert_int_equal(conf_load(&c, path), -EINVAL);
	assert_string_not_equal(c.host, "tail");
	f = fopen(path, "w");
	fwrite("host = hA\0host = hB\n", 1, 21, f);
	fclose(f);
	assert_int_equal(conf_load(&c, path), -EINVAL);
	unlink(path);
}

static void test_auth_mac(void **state)
{
	uint8_t key[AUTH_KEY_LEN], mac[AUTH_MAC_LEN], sk1[AUTH_KEY_LEN], sk2[AUTH_KEY_LEN];
	uint8_t n1[AUTH_NONCE_LEN] = { 1 }, n2[AUTH_NONCE_LEN] = { 2 };
	char hex[2 * AUTH_MAC_LEN + 1];
	int i;

	for (i = 0; i < AUTH_KEY_LEN; i++)
		key[i] = (uint8_t)i;
	/* HMAC-SHA256(key 00..1f, "ferry-peer"), from Python's hmac module. */
	auth_mac(key, "ferry", 5, "-peer", 5, mac);
	hex_encode(mac, sizeof(mac), hex);
	assert_string_equal(hex, "cb73bd0d44ebf64f366914d73fd228598fffe5d53c9cbe797e06245e4659def0");
	auth_session_key(key, n1, n2, sk1);
	auth_session_key(key, n2, n1, sk2);
	assert_memory_not_equal(sk1, sk2, AUTH_KEY_LEN);
}

/* Whether the destination waits for a guest's first frame after the move. */
static void test_net_guest_talked(void **state)
{
	const uint64_t s = 1000000000ull, now = 100 * s;
	struct vifmon_stat st[2] = { 0 };

	(void)state;
	assert_false(live_net_guest_talked(st, 0, now));
	st[0].have = true; /* a tap that never carried a guest frame */
	assert_false(live_net_guest_talked(st, 1, now));
	st[0].v.tx_last_ns = now - 3 * s - 1; /* quiet for just over 3 s */
	assert_false(live_net_guest_talked(st, 1, now));
	st[1].have = true; /* its other NIC sent 3 s ago */
	st[1].v.tx_last_ns = now - 3 * s;
	assert_true(live_net_guest_talked(st, 2, now));
	st[1].have = false; /* a stale entry counts for nothing */
	assert_false(live_net_guest_talked(st, 2, now));
	st[0].v.tx_last_ns = now + s; /* a stamp ahead of the clock read */
	assert_false(live_net_guest_talked(st, 1, now));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steps),	      cmocka_unit_test(test_record_roundtrip),
		cmocka_unit_test(test_record_refused), cmocka_unit_test(test_record_foreign),
		cmocka_unit_test(test_domxml),
		cmocka_unit_test(test_config),	      cmocka_unit_test(test_auth_mac),
		cmocka_unit_test(test_net_guest_talked),
	};

	log_init("test_daemon");
	if (flow_register(&cold_flow))
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
