// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-agent: the UDP echo service (RFC 862, port 7).  A child process
 * sends every datagram back to where it came from, unchanged, so that a
 * pinger outside the guest (tests/helpers/pinger.c -u 7) sees the guest's
 * network and its userspace together; ICMP echo the kernel answers alone.
 *
 * Started only when a NIC has an IPv4 address (ferry.ip=, set by /init):
 * a guest without one has nobody to answer.  A process of its own, like
 * the heartbeat, so that the writer's disk I/O never delays a reply.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

/* The first IPv4 address of a NIC that is not loopback, into buf; 0 or -1. */
static int echo_addr_find(char *buf, size_t len)
{
	struct ifaddrs *ifa, *i;
	int ret = -1;

	if (getifaddrs(&ifa))
		return -1;
	for (i = ifa; i; i = i->ifa_next) {
		const struct sockaddr_in *sin = (const void *)i->ifa_addr;
		const unsigned char *b;

		if (!sin || sin->sin_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
			continue;
		b = (const unsigned char *)&sin->sin_addr;
		snprintf(buf, len, "%s %u.%u.%u.%u", i->ifa_name, b[0], b[1], b[2], b[3]);
		ret = 0;
		break;
	}
	freeifaddrs(ifa);
	return ret;
}

static __attribute__((noreturn)) void echo_run(int fd)
{
	struct sockaddr_storage from;
	char buf[2048];
	socklen_t fl;
	ssize_t n;

	for (;;) {
		fl = sizeof(from);
		n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n < 0) {
			if (errno != EINTR)
				usleep(1000); /* ENOMEM and the like: no busy loop */
			continue;
		}
		/* a lost reply is the pinger's to count, not ours to retry */
		sendto(fd, buf, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&from, fl);
	}
}

/* Called before the agent maps its buffers and sets its handlers, as beat.c. */
int agent_echo_start(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(AGENT_ECHO_PORT) };
	char where[64];
	pid_t pid;
	int fd;

	if (echo_addr_find(where, sizeof(where)))
		return 0;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	pid = fork();
	if (pid < 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (pid == 0)
		echo_run(fd);
	close(fd);
	agent_log("udp echo on port %u (%s)", AGENT_ECHO_PORT, where);
	return 0;
}
