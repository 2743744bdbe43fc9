// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * heartbeat: a live migration's downtime seen from outside the guest.
 *
 * The guest agent writes a line "SEQ\n" every millisecond to its
 * virtio-serial port org.ferry.heartbeat.0 (tools/guest/beat.c), whose host
 * side is a unix socket on whichever host runs the guest.  This reader
 * follows it from the source host's socket to the destination's: it reads
 * the source until QEMU closes it, connects to the destination's as soon as
 * that socket exists, and stamps every line on CLOCK_MONOTONIC when it
 * arrives (lab hosts are namespaces of one kernel: one clock).
 *
 *   blackout = arrival of the destination's first beat
 *            - arrival of the source's last beat
 *
 * The same for every tool that moves the guest, and no tool's own account.
 * The longest gap between beats on each side is printed beside it: it is
 * how steady the guest's 1 ms beat is (under TCG, not very), the
 * resolution of the figure.
 *
 * Usage: heartbeat [--after N] [--timeout S] [--ready FILE] SRC_SOCKET DST_SOCKET
 * Prints one JSON object; exit 0 once N (default 200) beats came from the
 * destination, 1 on timeout (default 600 s) or error.  --ready FILE is
 * created once the source's beats arrive: start the migration after that.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "net/net.h"

struct beat_side {
	const char *path;
	int fd;
	bool closed; /* EOF seen */
	char buf[256];
	size_t len;
	uint64_t beats, first_seq, last_seq;
	uint64_t first_ns, last_ns, gap_max_ns;
};

static uint64_t beat_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* Read what arrived and account each whole line; -errno on a read error. */
static int beat_side_read(struct beat_side *s)
{
	uint64_t now;
	ssize_t n;
	char *nl, *p;

	n = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -errno;
	if (n == 0) {
		s->closed = true;
		return 0;
	}
	now = beat_now_ns();
	s->len += (size_t)n;
	s->buf[s->len] = '\0';
	p = s->buf;
	while ((nl = strchr(p, '\n'))) {
		uint64_t seq = strtoull(p, NULL, 10);

		if (!s->beats) {
			s->first_seq = seq;
			s->first_ns = now;
		} else if (now - s->last_ns > s->gap_max_ns) {
			s->gap_max_ns = now - s->last_ns;
		}
		s->beats++;
		s->last_seq = seq;
		s->last_ns = now;
		p = nl + 1;
	}
	s->len -= (size_t)(p - s->buf);
	memmove(s->buf, p, s->len);
	if (s->len == sizeof(s->buf) - 1)
		s->len = 0; /* not beats: drop */
	return 0;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void beat_side_json(struct json_object *o, const char *pfx, const struct beat_side *s)
{
	char k[64];

	snprintf(k, sizeof(k), "%s_beats", pfx);
	json_object_object_add(o, k, json_object_new_int64((int64_t)s->beats));
	snprintf(k, sizeof(k), "%s_first_seq", pfx);
	json_object_object_add(o, k, json_object_new_int64((int64_t)s->first_seq));
	snprintf(k, sizeof(k), "%s_last_seq", pfx);
	json_object_object_add(o, k, json_object_new_int64((int64_t)s->last_seq));
	snprintf(k, sizeof(k), "%s_gap_max_ms", pfx);
	json_object_object_add(o, k, json_object_new_double(ms(s->gap_max_ns)));
}

static int beat_report(const struct beat_side *src, const struct beat_side *dst, const char *err)
{
	struct json_object *o = json_object_new_object();

	if (err)
		json_object_object_add(o, "error", json_object_new_string(err));
	beat_side_json(o, "src", src);
	beat_side_json(o, "dst", dst);
	if (src->beats && dst->beats)
		json_object_object_add(o, "blackout_ms",
				       json_object_new_double(ms(dst->first_ns - src->last_ns)));
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return err ? 1 : 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: heartbeat [--after N] [--timeout S] [--ready FILE] SRC_SOCKET DST_SOCKET\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "after", required_argument, NULL, 'a' },
		{ "timeout", required_argument, NULL, 't' },
		{ "ready", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct beat_side src = { .fd = -1 }, dst = { .fd = -1 };
	const char *ready = NULL;
	uint64_t after = 200, timeout_s = 600, deadline, t_src;
	char err[512];
	int c, ret;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			after = strtoull(optarg, NULL, 10);
			break;
		case 't':
			timeout_s = strtoull(optarg, NULL, 10);
			break;
		case 'r':
			ready = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 || !after) {
		usage(stderr);
		return 2;
	}
	src.path = argv[optind];
	dst.path = argv[optind + 1];
	deadline = beat_now_ns() + timeout_s * 1000000000ull;

	/* The source's socket exists while its guest runs: a few tries. */
	t_src = beat_now_ns() + 10 * 1000000000ull;
	while ((src.fd = net_unix_connect(src.path)) < 0 && beat_now_ns() < t_src)
		usleep(10 * 1000);
	if (src.fd < 0) {
		snprintf(err, sizeof(err), "%s: %s", src.path, strerror(-src.fd));
		return beat_report(&src, &dst, err);
	}

	for (;;) {
		struct pollfd pfd[2];
		int n = 0, timeout = 2;

		if (beat_now_ns() > deadline) {
			snprintf(err, sizeof(err), "timeout: %" PRIu64 " beats from %s, %" PRIu64
				 " of %" PRIu64 " from %s", src.beats, src.path, dst.beats, after,
				 dst.path);
			return beat_report(&src, &dst, err);
		}
		/* The destination's socket appears when its QEMU starts. */
		if (dst.fd < 0 && src.beats) {
			ret = net_unix_connect(dst.path);
			if (ret >= 0)
				dst.fd = ret;
			else if (ret != -ENOENT && ret != -ECONNREFUSED) {
				snprintf(err, sizeof(err), "%s: %s", dst.path, strerror(-ret));
				return beat_report(&src, &dst, err);
			}
		}
		if (!src.closed)
			pfd[n++] = (struct pollfd){ .fd = src.fd, .events = POLLIN };
		if (dst.fd >= 0 && !dst.closed)
			pfd[n++] = (struct pollfd){ .fd = dst.fd, .events = POLLIN };
		if (dst.fd >= 0)
			timeout = 100;
		if (n && poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			snprintf(err, sizeof(err), "poll: %s", strerror(errno));
			return beat_report(&src, &dst, err);
		}
		if (!n)
			usleep(2000);
		for (int i = 0; i < n; i++) {
			struct beat_side *s = pfd[i].fd == src.fd ? &src : &dst;

			if (!pfd[i].revents)
				continue;
			ret = beat_side_read(s);
			if (ret < 0) {
				snprintf(err, sizeof(err), "%s: %s", s->path, strerror(-ret));
				return beat_report(&src, &dst, err);
			}
			if (s == &src && s->beats && ready) {
				int fd = open(ready, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);

				if (fd >= 0)
					close(fd);
				ready = NULL;
			}
		}
		/* A destination's socket closed before it beat: its QEMU went
		 * away (the migration failed); wait for the next one. */
		if (dst.closed && !dst.beats) {
			close(dst.fd);
			dst.fd = -1;
			dst.closed = false;
		}
		if (dst.beats >= after)
			return beat_report(&src, &dst, NULL);
		if (dst.closed) {
			snprintf(err, sizeof(err), "%s closed after %" PRIu64 " beats", dst.path,
				 dst.beats);
			return beat_report(&src, &dst, err);
		}
	}
}
