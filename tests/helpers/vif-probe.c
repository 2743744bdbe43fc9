// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vif-probe: ferry's VIF programs (bpf/vif.c) on one link, without ferryd,
 * for tests and `make bench`: attach, hold for SECONDS (or until SIGINT/
 * SIGTERM), print the link's counters as one JSON object, detach.
 *
 * Usage: vif-probe [-n NETNS] [-p PIN_DIR] [-m MAC] [-D] IFNAME SECONDS
 *   -n NETNS    the network namespace (a path: /run/netns/X) IFNAME is in;
 *               entered after the pin dir is made
 *   -p PIN_DIR  where the map is pinned (default a private dir under /sys/fs/bpf)
 *   -m MAC      the MAC recorded as the guest's (default the link's)
 *   -D          drop announces (the test-only knob)
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <json-c/json.h>
#include <linux/types.h>

#include "bpf/vif.h"
#include "common.h"

static volatile sig_atomic_t probe_stop;

static void probe_on_signal(int sig)
{
	(void)sig;
	probe_stop = 1;
}

/* Through an ioctl: sysfs may belong to another network namespace. */
static int probe_link_mac(const char *ifname, uint8_t mac[6])
{
	struct ifreq ifr = { 0 };
	int fd, ret = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		ret = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return ret;
}

int main(int argc, char **argv)
{
	char pin_default[64], *pin = NULL, *netns = NULL, *end;
	struct json_object *o;
	struct ferry_vif v;
	struct vif_watch *vw = NULL;
	uint8_t mac[6];
	bool have_mac = false, drop = false;
	long seconds;
	int c, ifindex, ret;

	log_init("vif-probe");
	while ((c = getopt(argc, argv, "n:p:m:Dh")) != -1) {
		switch (c) {
		case 'n':
			netns = optarg;
			break;
		case 'p':
			pin = optarg;
			break;
		case 'm':
			if (parse_mac(optarg, mac)) {
				fprintf(stderr, "vif-probe: bad MAC '%s'\n", optarg);
				return 2;
			}
			have_mac = true;
			break;
		case 'D':
			drop = true;
			break;
		default:
			fprintf(stderr, "usage: vif-probe [-n NETNS] [-p PIN_DIR] [-m MAC] [-D] IFNAME SECONDS\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: vif-probe [-n NETNS] [-p PIN_DIR] [-m MAC] [-D] IFNAME SECONDS\n");
		return 2;
	}
	seconds = strtol(argv[optind + 1], &end, 10);
	if (*end || seconds < 0 || seconds > 86400) {
		fprintf(stderr, "vif-probe: bad SECONDS '%s'\n", argv[optind + 1]);
		return 2;
	}
	if (!pin) {
		snprintf(pin_default, sizeof(pin_default), "/sys/fs/bpf/ferry-vif-probe-%d",
			 getpid());
		pin = pin_default;
	}
	ret = mkdir_p(pin, 0700);
	if (ret) {
		fprintf(stderr, "vif-probe: %s: %s\n", pin, strerror(-ret));
		return 1;
	}
	if (netns) {
		int fd = open(netns, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNET)) {
			fprintf(stderr, "vif-probe: %s: %s\n", netns, strerror(errno));
			ret = -errno;
			goto out;
		}
		close(fd);
	}
	ifindex = (int)if_nametoindex(argv[optind]);
	if (!ifindex) {
		fprintf(stderr, "vif-probe: %s: no such link\n", argv[optind]);
		ret = -ENODEV;
		goto out;
	}
	if (!have_mac && probe_link_mac(argv[optind], mac)) {
		fprintf(stderr, "vif-probe: %s: cannot read its MAC\n", argv[optind]);
		ret = -EINVAL;
		goto out;
	}
	vw = vif_watch_open(pin, drop);
	if (!vw) {
		ret = -errno;
		goto out;
	}
	ret = vif_tap_attach(vw, ifindex, argv[optind], mac, "vif-probe");
	if (ret < 0) {
		fprintf(stderr, "vif-probe: %s: attach: %s\n", argv[optind], strerror(-ret));
		goto out;
	}
	if (!(ret & VIF_HOOK_EGRESS))
		fprintf(stderr, "vif-probe: %s: an ingress qdisc, no clsact: ingress only\n",
			argv[optind]);
	ret = 0;
	signal(SIGINT, probe_on_signal);
	signal(SIGTERM, probe_on_signal);
	/* Ready: a script waits for this line before it sends traffic. */
	fprintf(stderr, "vif-probe: attached to %s (ifindex %d)\n", argv[optind], ifindex);
	for (long i = 0; !probe_stop && (!seconds || i < seconds * 10); i++)
		usleep(100000);
	ret = vif_tap_read(vw, ifindex, &v);
	vif_tap_detach(vw, ifindex);
	vif_tap_forget(vw, ifindex);
	if (ret) {
		fprintf(stderr, "vif-probe: %s: read: %s\n", argv[optind], strerror(-ret));
		goto out;
	}
	o = json_object_new_object();
	json_object_object_add(o, "ifname", json_object_new_string(argv[optind]));
#define PROBE_JSON(name, comment) json_object_object_add(o, #name, json_object_new_uint64(v.name));
	FERRY_VIF_COUNTERS(PROBE_JSON)
#undef PROBE_JSON
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
out:
	vif_watch_close(vw); /* NULL: nothing */
	if (pin == pin_default) {
		char map[96];

		snprintf(map, sizeof(map), "%s/vifs", pin);
		unlink(map);
		rmdir(pin);
	}
	return ret ? 1 : 0;
}
