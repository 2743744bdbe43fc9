// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * reaper.c - lab-reaper PIDFILE CMD [ARGS...]: run CMD as the child of a
 * child subreaper that reaps every process orphaned below it at once.
 *
 * libvirt daemonizes QEMU, so a guest's QEMU is an orphan from its start
 * and its exit is reaped by whoever adopted it.  On this machine that is
 * PID 1, which reaps about 1.7 s late, and libvirt waits for an exited
 * QEMU's pid to vanish before a destroy, a shutdown or a migration's
 * Confirm returns: every guest stop in the lab took ~1.7 s longer than
 * on a host whose init reaps promptly (systemd).  The lab starts each
 * host's libvirtd through this helper, so its QEMUs are reaped here.
 *
 * CMD's pid (exec'd straight into the program that runs, e.g. nsenter ->
 * libvirtd) is written to PIDFILE.  The reaper exits once it has no
 * child left: CMD and everything it orphaned.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int pidfile_write(const char *path, pid_t pid)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "%d\n", (int)pid);
	if (fclose(f) || rename(tmp, path)) {
		int err = -errno;

		unlink(tmp);
		return err;
	}
	return 0;
}

int main(int argc, char **argv)
{
	pid_t pid;
	int err;

	if (argc < 3) {
		fprintf(stderr, "usage: lab-reaper PIDFILE CMD [ARGS...]\n");
		return 2;
	}
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) {
		fprintf(stderr, "lab-reaper: PR_SET_CHILD_SUBREAPER: %s\n", strerror(errno));
		return 1;
	}
	/* A signal meant for the daemons must not leave their orphans to PID 1. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "lab-reaper: fork: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		execvp(argv[2], argv + 2);
		fprintf(stderr, "lab-reaper: %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	err = pidfile_write(argv[1], pid);
	if (err)
		fprintf(stderr, "lab-reaper: %s: %s\n", argv[1], strerror(-err));
	for (;;) {
		if (waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
			return 0;
	}
}
