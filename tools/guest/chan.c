// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-agent: its command channels and the power button.
 *
 * Commands arrive one per line on the virtio-serial port org.ferry.agent.0
 * (found by name in /sys/class/virtio-ports), or on stdin when run on a
 * host.  A line "#TAG CMD" is answered "#TAG REPLY", so a client can match
 * the reply to its command.  With no host connected the port polls HUP;
 * it is then left alone for 200 ms at a time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/input.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "agent.h"

static void agent_chan_close(struct agent_chan *c)
{
	if (c->rfd >= 0)
		close(c->rfd);
	if (c->wfd >= 0 && c->wfd != c->rfd)
		close(c->wfd);
	c->rfd = c->wfd = -1;
	c->len = 0;
}

/* The /dev/vportNpM whose virtio-serial name is name, in path; -ENOENT. */
int agent_port_find(const char *name, char *path, size_t len)
{
	char sys[300], got[64];
	struct dirent *de;
	int ret = -ENOENT;
	DIR *d;

	d = opendir("/sys/class/virtio-ports");
	if (!d)
		return -errno;
	while (ret && (de = readdir(d))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(sys, sizeof(sys), "/sys/class/virtio-ports/%s/name", de->d_name);
		f = fopen(sys, "r");
		if (!f)
			continue;
		got[0] = '\0';
		if (fgets(got, sizeof(got), f))
			got[strcspn(got, "\n")] = '\0';
		fclose(f);
		if (!strcmp(got, name)) {
			snprintf(path, len, "/dev/%s", de->d_name);
			ret = 0;
		}
	}
	closedir(d);
	return ret;
}

/* Open the command port: --port, else org.ferry.agent.0 found by name. */
void agent_port_open(struct agent_loop *l)
{
	char path[300];
	int fd;

	if (l->port_path)
		snprintf(path, sizeof(path), "%s", l->port_path);
	else if (agent_port_find(AGENT_PORT_NAME, path, sizeof(path)))
		return;
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	l->port.rfd = l->port.wfd = fd;
	agent_log("channel %s on %s", AGENT_PORT_NAME, path);
}

/* Write a whole reply line; drop it if nobody takes it within 2 s. */
static void agent_chan_reply(struct agent_chan *c, const char *tag, const char *msg)
{
	char line[AGENT_LINE_MAX + 64];
	struct pollfd p = { .fd = c->wfd, .events = POLLOUT };
	size_t len, done = 0;
	uint64_t end = agent_now_ns() + 2000000000ull;
	ssize_t n;

	len = snprintf(line, sizeof(line), "%s%s\n", tag, msg);
	if (len >= sizeof(line))
		len = sizeof(line) - 1;
	while (done < len && agent_now_ns() < end) {
		n = write(c->wfd, line + done, len - done);
		if (n > 0) {
			done += n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			break;
		poll(&p, 1, 100);
	}
}

/* Handle every complete line buffered on a channel. */
static void agent_chan_lines(struct agent_loop *l, struct agent_chan *c)
{
	char out[AGENT_LINE_MAX], tag[40], *line, *nl, *cmd;
	size_t used;

	while ((nl = memchr(c->buf, '\n', c->len))) {
		*nl = '\0';
		line = c->buf;
		used = nl - c->buf + 1;
		line[strcspn(line, "\r")] = '\0';
		tag[0] = '\0';
		cmd = line;
		/* "#id CMD": the reply carries the same "#id " so a client can match it */
		if (line[0] == '#') {
			size_t t = strcspn(line, " \t");

			if (t < sizeof(tag) - 1) {
				memcpy(tag, line, t);
				tag[t] = ' ';
				tag[t + 1] = '\0';
			}
			cmd = line + t;
			cmd += strspn(cmd, " \t");
		}
		if (*cmd) {
			agent_command(l, cmd, out, sizeof(out));
			agent_chan_reply(c, tag, out);
		}
		memmove(c->buf, c->buf + used, c->len - used);
		c->len -= used;
	}
	if (c->len == sizeof(c->buf)) {
		agent_chan_reply(c, "", "ERROR line too long");
		c->len = 0;
	}
}

void agent_chan_read(struct agent_loop *l, struct agent_chan *c, short revents)
{
	ssize_t n = 0;

	if (revents & POLLIN)
		n = read(c->rfd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n > 0) {
		c->len += n;
		agent_chan_lines(l, c);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (c->is_port) {
		/* No host on the other end: forget partial input, look again soon. */
		c->len = 0;
		c->retry_ns = agent_now_ns() + 200000000ull;
		return;
	}
	agent_chan_close(c); /* console EOF */
}

/* ---- power button ----------------------------------------------------- */

void agent_inputs_scan(struct agent_loop *l)
{
	unsigned long keys[KEY_MAX / (8 * sizeof(long)) + 1];
	char path[300];
	struct dirent *de;
	DIR *d;
	int fd;

	d = opendir("/dev/input");
	if (!d)
		return;
	while ((de = readdir(d)) && l->ninputs < AGENT_MAX_INPUTS) {
		if (strncmp(de->d_name, "event", 5))
			continue;
		snprintf(path, sizeof(path), "/dev/input/%s", de->d_name);
		fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		memset(keys, 0, sizeof(keys));
		if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof(keys)), keys) < 0 ||
		    !(keys[KEY_POWER / (8 * sizeof(long))] &
		      (1ul << (KEY_POWER % (8 * sizeof(long)))))) {
			close(fd);
			continue;
		}
		l->input_fd[l->ninputs++] = fd;
		agent_log("power button on %s", path);
	}
	closedir(d);
}

void agent_input_read(struct agent_loop *l, int fd)
{
	struct input_event ev[16];
	ssize_t n;
	size_t i;

	n = read(fd, ev, sizeof(ev));
	for (i = 0; n > 0 && i < (size_t)n / sizeof(ev[0]); i++)
		if (ev[i].type == EV_KEY && ev[i].code == KEY_POWER && ev[i].value == 1)
			agent_stop_flag = AGENT_STOP_BUTTON;
}
