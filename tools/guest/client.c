// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-agent-client: send one command to a guest's ferry-agent through the
 * host side of its virtio-serial channel (a unix socket QEMU listens on)
 * and print the reply line.
 *
 *   ferry-agent-client [-t SECONDS] SOCKET COMMAND [ARG...]
 *
 * The command goes out as "#<tag> COMMAND ARG..." and only the line that
 * comes back with the same tag is printed (without it), so a reply meant
 * for an earlier client that gave up is never mistaken for ours.
 * Exit status: 0 a reply was printed, 1 error or timeout, 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static uint64_t agent_client_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connect, retrying while the socket does not exist yet or refuses. */
static int agent_client_connect(const char *path, uint64_t deadline_ms)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "ferry-agent-client: %s: path too long\n", path);
		return -ENAMETOOLONG;
	}
	strcpy(sun.sun_path, path);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return fd;
		err = errno;
		close(fd);
		if ((err != ENOENT && err != ECONNREFUSED && err != EAGAIN) ||
		    agent_client_now_ms() >= deadline_ms) {
			fprintf(stderr, "ferry-agent-client: %s: %s\n", path, strerror(err));
			return -err;
		}
		usleep(100000);
	}
}

int main(int argc, char **argv)
{
	char cmd[1024], buf[4096], tag[32], *nl, *line;
	uint64_t deadline_ms, now;
	size_t len = 0, cmdlen, taglen;
	double timeout_s = 30;
	int fd, i, c, rc = 1;
	struct pollfd p;
	ssize_t n;

	while ((c = getopt(argc, argv, "t:h")) != -1) {
		switch (c) {
		case 't':
			timeout_s = atof(optarg);
			break;
		case 'h':
			printf("Usage: ferry-agent-client [-t SECONDS] SOCKET COMMAND [ARG...]\n");
			return 0;
		default:
			return 2;
		}
	}
	if (argc - optind < 2) {
		fprintf(stderr, "Usage: ferry-agent-client [-t SECONDS] SOCKET COMMAND [ARG...]\n");
		return 2;
	}
	deadline_ms = agent_client_now_ms() + (uint64_t)(timeout_s * 1000);
	snprintf(tag, sizeof(tag), "#%d.%" PRIu64 " ", (int)getpid(),
		 agent_client_now_ms() % 100000);
	taglen = strlen(tag);
	cmdlen = snprintf(cmd, sizeof(cmd), "%s", tag);
	for (i = optind + 1; i < argc && cmdlen < sizeof(cmd); i++)
		cmdlen += snprintf(cmd + cmdlen, sizeof(cmd) - cmdlen, "%s%s", argv[i],
				   i + 1 < argc ? " " : "\n");
	if (cmdlen >= sizeof(cmd)) {
		fprintf(stderr, "ferry-agent-client: command too long\n");
		return 2;
	}

	fd = agent_client_connect(argv[optind], deadline_ms);
	if (fd < 0)
		return 1;
	if (write(fd, cmd, cmdlen) != (ssize_t)cmdlen) {
		fprintf(stderr, "ferry-agent-client: %s: write: %s\n", argv[optind],
			strerror(errno));
		goto out;
	}
	for (;;) {
		now = agent_client_now_ms();
		if (now >= deadline_ms) {
			fprintf(stderr, "ferry-agent-client: %s: no reply to '%s' within %gs\n",
				argv[optind], argv[optind + 1], timeout_s);
			goto out;
		}
		p = (struct pollfd){ .fd = fd, .events = POLLIN };
		if (poll(&p, 1, deadline_ms - now) <= 0)
			continue;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0) {
			fprintf(stderr,
				"ferry-agent-client: %s: connection closed before a reply\n",
				argv[optind]);
			goto out;
		}
		len += n;
		buf[len] = '\0';
		while ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			line = buf;
			if (!strncmp(line, tag, taglen)) {
				printf("%s\n", line + taglen);
				rc = 0;
				goto out;
			}
			len -= nl + 1 - buf;
			memmove(buf, nl + 1, len + 1);
		}
		if (len == sizeof(buf) - 1)
			len = 0; /* an overlong line that is not ours */
	}
out:
	close(fd);
	return rc;
}
