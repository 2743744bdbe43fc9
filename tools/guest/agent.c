// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-agent: the integrity agent of ferry's self-checking guest.
 *
 * Runs as PID 1 (exec'd by the initramfs's /init) or as its child.  It
 * writes records to /dev/vda at a set rate and pattern, answers commands
 * on the virtio-serial port org.ferry.agent.0 (one line in, one line out),
 * and on the ACPI power button saves its expectations and powers off.
 * Options come from the kernel command line (ferry.rate=4M ...); see
 * docs/guest.md for the protocol and the verdicts.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

#define AGENT_SEQ_RUN_BLOCKS 16 /* sequential writes go out 64 KiB at a time */
#define AGENT_STATUS_PERIOD_NS (30ull * 1000000000ull)

volatile sig_atomic_t agent_stop_flag;

void agent_log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(STDERR_FILENO, "ferry-agent: ", 13) < 0 || write(STDERR_FILENO, buf, n) < 0)
		return;
}

uint64_t agent_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void agent_signal(int sig)
{
	agent_stop_flag = sig;
}

/* "4M", "512K", "1G", "4096": binary suffixes. */
static int agent_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'k':
	case 'K':
		v <<= 10;
		end++;
		break;
	case 'm':
	case 'M':
		v <<= 20;
		end++;
		break;
	case 'g':
	case 'G':
		v <<= 30;
		end++;
		break;
	}
	if (*end == 'i' || *end == 'B')
		end += *end == 'i' && end[1] == 'B' ? 2 : 1;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static const char *agent_pattern_name(enum agent_pattern p)
{
	switch (p) {
	case AGENT_PATTERN_SEQUENTIAL:
		return "sequential";
	case AGENT_PATTERN_RANDOM:
		return "random";
	case AGENT_PATTERN_HOTSPOT:
		return "hotspot";
	}
	return "?";
}

static int agent_parse_pattern(const char *s, enum agent_pattern *p)
{
	if (!strcasecmp(s, "sequential"))
		*p = AGENT_PATTERN_SEQUENTIAL;
	else if (!strcasecmp(s, "random"))
		*p = AGENT_PATTERN_RANDOM;
	else if (!strcasecmp(s, "hotspot"))
		*p = AGENT_PATTERN_HOTSPOT;
	else
		return -EINVAL;
	return 0;
}

/* Options from the kernel command line: ferry.KEY=VALUE words. */
static void agent_cmdline_parse(struct agent *a, char *line)
{
	char *save = NULL, *w, *v;

	for (w = strtok_r(line, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
		if (strncmp(w, "ferry.", 6))
			continue;
		w += 6;
		v = strchr(w, '=');
		if (!v)
			continue;
		*v++ = '\0';
		if (!strcmp(w, "rate")) {
			if (agent_parse_size(v, &a->rate_bps))
				agent_log("ferry.rate=%s: not a size, ignored", v);
		} else if (!strcmp(w, "pattern")) {
			if (agent_parse_pattern(v, &a->pattern))
				agent_log("ferry.pattern=%s: unknown pattern, ignored", v);
		} else if (!strcmp(w, "span")) {
			if (agent_parse_size(v, &a->span_req_bytes))
				agent_log("ferry.span=%s: not a size, ignored", v);
		} else if (!strcmp(w, "memrate")) {
			if (agent_parse_size(v, &a->mem_rate_bps))
				agent_log("ferry.memrate=%s: not a size, ignored", v);
		} else if (!strcmp(w, "memspan")) {
			if (agent_parse_size(v, &a->mem_span_bytes))
				agent_log("ferry.memspan=%s: not a size, ignored", v);
		} else if (!strcmp(w, "heartbeat")) {
			char *end;
			unsigned long ms = strtoul(v, &end, 10);

			if (*end || ms > 1000)
				agent_log("ferry.heartbeat=%s: not 0..1000 ms, ignored", v);
			else
				a->beat_ms = (uint32_t)ms;
		} else if (!strcmp(w, "disk")) {
			a->disk_path = strdup(v);
		} else if (!strcmp(w, "paused")) {
			a->paused = strcmp(v, "0") != 0;
		} else if (!strcmp(w, "bootscan")) {
			a->boot_scan_on = strcmp(v, "0") != 0;
		}
	}
}

static void agent_cmdline_read(struct agent *a)
{
	char line[4096];
	ssize_t n;
	int fd;

	fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return;
	line[n] = '\0';
	agent_cmdline_parse(a, line);
}

/* ---- writer ---------------------------------------------------------- */

static uint64_t agent_rand(struct agent *a)
{
	uint64_t x = a->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	a->rng = x;
	return x;
}

/* Choose where the next write goes and how many blocks it covers. */
static uint64_t agent_writer_pick(struct agent *a, uint32_t max_blocks, uint32_t *nblocks)
{
	uint64_t span = a->hdr.span_blocks, hot, idx;

	*nblocks = 1;
	switch (a->pattern) {
	case AGENT_PATTERN_SEQUENTIAL:
		idx = a->cursor % span;
		*nblocks = max_blocks < AGENT_SEQ_RUN_BLOCKS ? max_blocks : AGENT_SEQ_RUN_BLOCKS;
		if (*nblocks > span - idx)
			*nblocks = span - idx;
		a->cursor = (idx + *nblocks) % span;
		return idx;
	case AGENT_PATTERN_RANDOM:
		return agent_rand(a) % span;
	case AGENT_PATTERN_HOTSPOT:
		/* 90% of writes into 1/16 of the span, in its middle */
		hot = span / 16 ? span / 16 : 1;
		if (agent_rand(a) % 10 < 9)
			return span / 2 - hot / 2 + agent_rand(a) % hot;
		return agent_rand(a) % span;
	}
	return 0;
}

static void agent_writer_reset(struct agent *a)
{
	a->tokens_bytes = 0;
	a->tokens_ns = agent_now_ns();
}

/* Write what the rate allows now; return the poll timeout in ms. */
static int agent_writer_step(struct agent *a)
{
	uint64_t now = agent_now_ns(), deadline = now + 20000000ull, idx;
	double cap;
	uint32_t n;

	if (a->paused || a->fatal[0] || !a->rate_bps || !a->hdr.span_blocks)
		return -1;
	a->tokens_bytes += (double)a->rate_bps * (now - a->tokens_ns) / 1e9;
	a->tokens_ns = now;
	cap = a->rate_bps / 5.0;
	if (cap < AGENT_SEQ_RUN_BLOCKS * AGENT_BLOCK_BYTES)
		cap = AGENT_SEQ_RUN_BLOCKS * AGENT_BLOCK_BYTES;
	if (a->tokens_bytes > cap)
		a->tokens_bytes = cap;
	while (a->tokens_bytes >= AGENT_BLOCK_BYTES && now < deadline) {
		idx = agent_writer_pick(a, a->tokens_bytes / AGENT_BLOCK_BYTES, &n);
		agent_disk_write(a, idx, n);
		a->tokens_bytes -= (double)n * AGENT_BLOCK_BYTES;
		now = agent_now_ns();
	}
	if (a->tokens_bytes >= AGENT_BLOCK_BYTES)
		return 0;
	return 1 + (int)((AGENT_BLOCK_BYTES - a->tokens_bytes) * 1000 / a->rate_bps);
}

/* ---- verdicts and commands -------------------------------------------- */

static void agent_fail_line(const struct agent_fail *f, const char *at, uint64_t blocks,
			    uint64_t ms, char *out, size_t len)
{
	snprintf(out, len,
		 "VERIFY FAIL block=%" PRIu64 " expected=%s got=%s bad=%" PRIu64 " blocks=%" PRIu64
		 " at=%s ms=%" PRIu64,
		 f->block, f->expected, f->got, f->count, blocks, at, ms);
}

/*
 * Re-read the working set and give the verdict.  Writing is stopped for
 * the duration: the agent is single-threaded, so no write is in flight.
 */
static void agent_verify(struct agent *a, char *out, size_t len)
{
	struct agent_scan sc;

	a->verifies++;
	if (a->fatal[0]) {
		if (a->boot_scan.fail.count)
			agent_fail_line(&a->boot_scan.fail, "boot", a->hdr.span_blocks, 0, out,
					len);
		else
			snprintf(out, len, "VERIFY ERROR %s", a->fatal);
		return;
	}
	agent_disk_scan(a, AGENT_SCAN_MEMORY, &sc);
	if (sc.fail.count)
		agent_fail_line(&sc.fail, "verify", sc.blocks, sc.ms, out, len);
	else if (a->write_fail.count)
		agent_fail_line(&a->write_fail, "write", sc.blocks, sc.ms, out, len);
	else if (a->boot_scan.fail.count)
		agent_fail_line(&a->boot_scan.fail, "boot", sc.blocks, sc.ms, out, len);
	else if (sc.ram_lost.count)
		snprintf(out, len,
			 "VERIFY RAMLOST block=%" PRIu64 " expected=%s got=%s lost=%" PRIu64
			 " blocks=%" PRIu64 " ms=%" PRIu64,
			 sc.ram_lost.block, sc.ram_lost.expected, sc.ram_lost.got,
			 sc.ram_lost.count, sc.blocks, sc.ms);
	else
		snprintf(out, len,
			 "VERIFY %s blocks=%" PRIu64 " records=%" PRIu64 " zero=%" PRIu64
			 " seq=%" PRIu64 " boot=%s ms=%" PRIu64,
			 a->boot_kind == AGENT_BOOT_UNCLEAN ? "UNCLEAN" : "PASS", sc.blocks,
			 sc.records, sc.zero, a->seq, agent_boot_kind_name(a->boot_kind), sc.ms);
	agent_log("%s", out);
	agent_writer_reset(a);
}

static void agent_status(struct agent_loop *l, char *out, size_t len)
{
	struct agent *a = l->a;
	struct timespec up;

	clock_gettime(CLOCK_BOOTTIME, &up);

	snprintf(out, len,
		 "STATUS seq=%" PRIu64 " written=%" PRIu64 " rate=%" PRIu64
		 " pattern=%s paused=%d boot=%s state=%s span=%" PRIu64 " data_start=%" PRIu64
		 " disk_blocks=%" PRIu64 " boots=%u unclean_boots=%u verifies=%" PRIu64
		 " uptime_ms=%" PRIu64 " mem_rate=%" PRIu64 " mem_span=%" PRIu64
		 " mem_dirtied=%" PRIu64,
		 a->seq, a->written_blocks, a->rate_bps, agent_pattern_name(a->pattern), a->paused,
		 agent_boot_kind_name(a->boot_kind), a->fatal[0] ? "error" : "running",
		 a->hdr.span_blocks, a->hdr.data_start, a->disk_blocks, a->hdr.boot,
		 a->hdr.unclean_boots, a->verifies,
		 (uint64_t)up.tv_sec * 1000 + up.tv_nsec / 1000000, a->mem_rate_bps,
		 a->mem_span_bytes, a->mem_dirtied_pages * 4096);
}

/* Save the expectations and power off.  Does not return. */
static void agent_shutdown(struct agent_loop *l, const char *why)
{
	struct agent *a = l->a;
	int err;

	agent_log("AGENT SHUTDOWN (%s): seq=%" PRIu64 " written=%" PRIu64, why, a->seq,
		  a->written_blocks);
	err = agent_disk_save(a);
	if (err)
		agent_log("expectations NOT saved (%s): the next boot will be unclean",
			  a->fatal[0] ? a->fatal : strerror(-err));
	else
		agent_log("expectations saved: %" PRIu64 " blocks, seq=%" PRIu64,
			  a->hdr.span_blocks, a->seq);
	sync();
	agent_log("AGENT POWEROFF");
	if (a->host_mode)
		exit(err ? 1 : 0);
	reboot(RB_POWER_OFF);
	agent_log("poweroff failed: %s", strerror(errno));
	for (;;)
		pause();
}

void agent_command(struct agent_loop *l, char *line, char *out, size_t len)
{
	struct agent *a = l->a;
	char *save = NULL, *cmd, *arg;
	enum agent_pattern p;
	uint64_t v;

	cmd = strtok_r(line, " \t", &save);
	arg = strtok_r(NULL, " \t", &save);
	if (!cmd) {
		snprintf(out, len, "ERROR empty command");
	} else if (!strcasecmp(cmd, "VERIFY")) {
		agent_verify(a, out, len);
	} else if (!strcasecmp(cmd, "STATUS")) {
		agent_status(l, out, len);
	} else if (!strcasecmp(cmd, "PAUSE")) {
		a->paused = true;
		snprintf(out, len, "OK paused seq=%" PRIu64, a->seq);
	} else if (!strcasecmp(cmd, "RESUME")) {
		a->paused = false;
		agent_writer_reset(a);
		snprintf(out, len, "OK resumed seq=%" PRIu64, a->seq);
	} else if (!strcasecmp(cmd, "RATE")) {
		if (!arg || agent_parse_size(arg, &v)) {
			snprintf(out, len, "ERROR usage: RATE <bytes/s, K/M/G suffix>");
		} else {
			a->rate_bps = v;
			agent_writer_reset(a);
			snprintf(out, len, "OK rate=%" PRIu64, v);
		}
	} else if (!strcasecmp(cmd, "MEMRATE")) {
		char *span = strtok_r(NULL, " \t", &save);
		uint64_t sp = 0;
		int err;

		if (!arg || agent_parse_size(arg, &v) || (span && agent_parse_size(span, &sp))) {
			snprintf(out, len, "ERROR usage: MEMRATE <bytes/s> [<span>], K/M/G suffix");
		} else if ((err = agent_mem_set(a, v, sp))) {
			snprintf(out, len, "ERROR memory span %" PRIu64 ": %s", sp, strerror(-err));
		} else {
			snprintf(out, len, "OK mem_rate=%" PRIu64 " mem_span=%" PRIu64, v,
				 a->mem_span_bytes);
		}
	} else if (!strcasecmp(cmd, "PATTERN")) {
		if (!arg || agent_parse_pattern(arg, &p)) {
			snprintf(out, len, "ERROR usage: PATTERN sequential|random|hotspot");
		} else {
			a->pattern = p;
			snprintf(out, len, "OK pattern=%s", agent_pattern_name(p));
		}
	} else if (!strcasecmp(cmd, "PING")) {
		snprintf(out, len, "PONG");
	} else if (!strcasecmp(cmd, "SHUTDOWN")) {
		snprintf(out, len, "OK shutting down");
		agent_stop_flag = AGENT_STOP_COMMAND;
	} else if (!strcasecmp(cmd, "CRASH")) {
		/* The tests' stand-in for a guest kernel that QEMU's TCG
		 * memory bug broke: an oops, then a panic (sysrq 'c'). */
		int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);

		if (fd < 0 || write(fd, "c", 1) != 1)
			snprintf(out, len, "ERROR sysrq: %s", strerror(errno));
		else
			snprintf(out, len, "OK crashed");
		if (fd >= 0)
			close(fd);
	} else if (!strcasecmp(cmd, "HELP")) {
		snprintf(out, len,
			 "OK commands: VERIFY STATUS PAUSE RESUME RATE <bps> MEMRATE <bps> [<span>] "
			 "PATTERN <p> PING SHUTDOWN CRASH HELP");
	} else {
		snprintf(out, len, "ERROR unknown command '%.40s' (try HELP)", cmd);
	}
}

/* ---- main loop -------------------------------------------------------- */

static void agent_loop_run(struct agent_loop *l)
{
	struct pollfd pfd[2 + AGENT_MAX_INPUTS];
	struct agent_chan *chan[2] = { &l->port, &l->console };
	char out[AGENT_LINE_MAX];
	int timeout, mt, n, i, nchan;
	uint64_t now;

	for (;;) {
		if (agent_stop_flag == AGENT_STOP_COMMAND)
			agent_shutdown(l, "SHUTDOWN command");
		else if (agent_stop_flag == AGENT_STOP_BUTTON)
			agent_shutdown(l, "power button");
		else if (agent_stop_flag)
			agent_shutdown(l, "signal");
		timeout = agent_writer_step(l->a);
		mt = agent_mem_step(l->a);
		if (mt >= 0 && (timeout < 0 || mt < timeout))
			timeout = mt;
		now = agent_now_ns();
		if (l->port.rfd < 0)
			agent_port_open(l);
		if (!l->ninputs && now >= l->input_scan_ns) {
			agent_inputs_scan(l);
			l->input_scan_ns = now + 1000000000ull;
		}
		if (now >= l->status_ns) {
			agent_status(l, out, sizeof(out));
			agent_log("%s", out);
			l->status_ns = now + AGENT_STATUS_PERIOD_NS;
		}

		n = 0;
		for (i = 0; i < 2; i++) {
			if (chan[i]->rfd < 0 || chan[i]->retry_ns > now)
				continue;
			pfd[n++] = (struct pollfd){ .fd = chan[i]->rfd, .events = POLLIN };
		}
		nchan = n;
		for (i = 0; i < l->ninputs; i++)
			pfd[n++] = (struct pollfd){ .fd = l->input_fd[i], .events = POLLIN };
		/* wake up to retry a missing port or power button, or a quiet port */
		if (timeout < 0 || timeout > 200)
			if (l->port.rfd < 0 || !l->ninputs || l->port.retry_ns > now)
				timeout = 200;
		if (poll(pfd, n, timeout) <= 0)
			continue;
		for (i = 0; i < n; i++) {
			if (!pfd[i].revents)
				continue;
			if (i >= nchan) {
				agent_input_read(l, pfd[i].fd);
				continue;
			}
			agent_chan_read(l, pfd[i].fd == l->port.rfd ? &l->port : &l->console,
					pfd[i].revents);
		}
	}
}

static void agent_usage(FILE *f)
{
	fprintf(f, "Usage: ferry-agent [--disk PATH] [--port PATH] [--stdin] [--host]\n"
		   "                   [--cmdline 'ferry.rate=4M ferry.pattern=random ...']\n"
		   "\n"
		   "The integrity agent of ferry's test guest (see docs/guest.md).  In the\n"
		   "guest it takes its options from /proc/cmdline; --host runs it on a file\n"
		   "for development (exits instead of powering off).\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "disk", required_argument, NULL, 'd' },
		{ "port", required_argument, NULL, 'p' },
		{ "cmdline", required_argument, NULL, 'c' },
		{ "stdin", no_argument, NULL, 's' },
		{ "host", no_argument, NULL, 'H' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct agent a = {
		.disk_path = "/dev/vda",
		.disk_fd = -1,
		.rate_bps = 4ull << 20,
		.pattern = AGENT_PATTERN_SEQUENTIAL,
		.boot_scan_on = true,
	};
	struct agent_loop l = {
		.a = &a,
		.port = { .rfd = -1, .wfd = -1, .is_port = true },
		.console = { .rfd = -1, .wfd = -1 },
	};
	char *cmdline = NULL, out[AGENT_LINE_MAX];
	bool use_stdin = false;
	struct sigaction sa;
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			a.disk_path = optarg;
			break;
		case 'p':
			l.port_path = optarg;
			break;
		case 'c':
			cmdline = optarg;
			break;
		case 's':
			use_stdin = true;
			break;
		case 'H':
			a.host_mode = true;
			break;
		case 'h':
			agent_usage(stdout);
			return 0;
		default:
			agent_usage(stderr);
			return 2;
		}
	}
	if (cmdline)
		agent_cmdline_parse(&a, cmdline);
	else
		agent_cmdline_read(&a);
	c = agent_beat_start(a.beat_ms);
	if (c)
		agent_log("heartbeat: cannot fork: %s", strerror(-c));
	c = a.host_mode ? 0 : agent_echo_start();
	if (c)
		agent_log("udp echo on port %u: %s", AGENT_ECHO_PORT, strerror(-c));
	if (a.mem_rate_bps || a.mem_span_bytes) {
		uint64_t rate = a.mem_rate_bps, span = a.mem_span_bytes;

		a.mem_rate_bps = a.mem_span_bytes = 0;
		if (agent_mem_set(&a, rate, span))
			agent_log("memory dirtier: cannot map %" PRIu64 " bytes", span);
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = agent_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL); /* busybox poweroff */
	sigaction(SIGPWR, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	if (getpid() == 1) {
		sa.sa_flags = SA_NOCLDWAIT; /* as init: reap orphans automatically */
		sigaction(SIGCHLD, &sa, NULL);
	}

	if (use_stdin) {
		l.console.rfd = STDIN_FILENO;
		l.console.wfd = STDOUT_FILENO;
	}
	l.start_ns = agent_now_ns();
	a.rng = l.start_ns | 1;

	if (agent_disk_open(&a) == 0 && agent_disk_boot(&a) == 0) {
		a.cursor = a.seq % a.hdr.span_blocks;
		agent_log("disk %s: %" PRIu64 " blocks, working set %" PRIu64 "+%" PRIu64
			  ", boot %u (%s), seq=%" PRIu64,
			  a.disk_path, a.disk_blocks, a.hdr.data_start, a.hdr.span_blocks,
			  a.hdr.boot, agent_boot_kind_name(a.boot_kind), a.seq);
		if (a.boot_scan.blocks)
			agent_log("boot scan: %" PRIu64 " blocks, %" PRIu64 " records, %" PRIu64
				  " bad, %" PRIu64 " ms",
				  a.boot_scan.blocks, a.boot_scan.records, a.boot_scan.fail.count,
				  a.boot_scan.ms);
		if (a.boot_scan.fail.count)
			agent_log("boot scan: first bad block %" PRIu64 " expected=%s got=%s",
				  a.boot_scan.fail.block, a.boot_scan.fail.expected,
				  a.boot_scan.fail.got);
	} else {
		if (!a.fatal[0])
			snprintf(a.fatal, sizeof(a.fatal), "cannot open %s", a.disk_path);
		agent_log("AGENT ERROR %s: not writing", a.fatal);
	}
	agent_writer_reset(&a);
	agent_status(&l, out, sizeof(out));
	agent_log("AGENT READY %s", out + strlen("STATUS "));
	l.status_ns = agent_now_ns() + AGENT_STATUS_PERIOD_NS;
	agent_loop_run(&l);
	return 0;
}
