// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-agent: the heartbeat.  A child process writes a line "SEQ\n" every
 * ferry.heartbeat milliseconds to the virtio-serial port
 * org.ferry.heartbeat.0, SEQ counting from 1.  A reader on the host side
 * that follows the port from the source host to the destination
 * (tests/helpers/heartbeat.c) sees the guest stop and run again: a live
 * migration's downtime measured from outside the guest, the same way
 * whichever tool moves it.
 *
 * A process of its own, so that the writer's disk I/O never delays a beat.
 * Beats nobody reads (no host connected: ENODEV; a full queue: EAGAIN) are
 * dropped, not queued: a late beat would shorten the gap it is there to
 * show.  After a pause (the guest's clock stood still, or the child was not
 * scheduled) the schedule restarts from now rather than catching up.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

static int beat_port_open(void)
{
	char path[300];
	int fd;

	while (agent_port_find(AGENT_BEAT_PORT_NAME, path, sizeof(path)))
		usleep(100 * 1000);
	fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0)
		agent_log("heartbeat on %s (%s)", path, AGENT_BEAT_PORT_NAME);
	return fd;
}

static void timespec_add_ns(struct timespec *t, uint64_t ns)
{
	ns += (uint64_t)t->tv_nsec;
	t->tv_sec += (time_t)(ns / 1000000000ull);
	t->tv_nsec = (long)(ns % 1000000000ull);
}

static bool timespec_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static __attribute__((noreturn)) void beat_run(uint32_t period_ms)
{
	uint64_t period_ns = (uint64_t)period_ms * 1000000ull, seq = 0;
	struct timespec next, now;
	char line[32];
	int fd, n;

	fd = beat_port_open();
	if (fd < 0) {
		agent_log("heartbeat: cannot open its port: %s", strerror(errno));
		_exit(1);
	}
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (;;) {
		n = snprintf(line, sizeof(line), "%" PRIu64 "\n", ++seq);
		if (write(fd, line, (size_t)n) < 0 && errno != EAGAIN && errno != ENODEV &&
		    errno != EINTR)
			agent_log("heartbeat: write: %s", strerror(errno));
		timespec_add_ns(&next, period_ns);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timespec_before(&next, &now)) {
			next = now;
			timespec_add_ns(&next, period_ns);
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
}

/*
 * Called before the agent maps its buffers and sets its handlers: the child
 * shares no memory the dirtier writes (no copy-on-write doubling of its
 * span) and keeps the default signal actions.
 */
int agent_beat_start(uint32_t period_ms)
{
	pid_t pid;

	if (!period_ms)
		return 0;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		beat_run(period_ms);
	return 0;
}
