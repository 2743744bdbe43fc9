// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferryd - ferry's per-host daemon.
 *
 * Opens libvirt, the journal, the embedded mover receiver, the dirty
 * tracker and the metrics map, reconciles unfinished operations, then
 * serves the root-only control socket (the ferry CLI) and the
 * authenticated peer port (other ferryd).  "Started" means "ready": the
 * parent (or systemd, through NOTIFY_SOCKET) hears of it only once every
 * socket is open.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/flows/flows.h"

struct ferryd *ferryd;

#define FERRYD_STOP_MS 20000 /* SIGTERM: how long workers get to reach a boundary */

static volatile sig_atomic_t ferryd_signalled;
static int ferryd_sigpipe[2] = { -1, -1 };

static void ferryd_on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	ferryd_signalled = sig;
	if (write(ferryd_sigpipe[1], &c, 1) < 0) {
		/* nothing to do: the flag is set */
	}
	errno = saved;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: ferryd [OPTIONS]\n"
		   "ferry's per-host daemon: cold migration and resize of libvirt VMs.\n\n"
		   "  -f, --foreground     do not detach; log to stderr\n"
		   "  -c, --config FILE    configuration (default %s)\n"
		   "      --dump-config    print the effective configuration and exit\n"
		   "  -l, --log FILE       log file when detached (default "
		   "/var/log/ferry/ferryd.log)\n"
		   "  -P, --pid-file FILE  write the daemon's pid there once ready\n"
		   "  -v, --verbose        more messages (-vv: debug)\n"
		   "      --debug=LIST     debug subsystems: daemon,peer,virt,mover,bpf,all\n"
		   "  -j, --json           JSON output (--dump-config)\n"
		   "  -p, --pretty         pretty JSON (implies -j)\n"
		   "  -h, --help           this help\n"
		   "  -V, --version        version\n",
		FERRYD_DEFAULT_CONFIG);
}

/* Tell whoever waits that we are ready (or failed). */
static void ferryd_notify(int fd, bool ok)
{
	const char *ns = getenv("NOTIFY_SOCKET");
	char c = ok ? 'R' : 'F';

	if (fd >= 0) {
		if (write(fd, &c, 1) < 0) {
			/* parent gone: nothing to tell */
		}
		close(fd);
	}
	if (ok && ns && (ns[0] == '/' || ns[0] == '@')) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

		if (s >= 0 && strlen(ns) < sizeof(sun.sun_path)) {
			strcpy(sun.sun_path, ns);
			if (sun.sun_path[0] == '@')
				sun.sun_path[0] = '\0';
			sendto(s, "READY=1", 7, 0, (struct sockaddr *)&sun, sizeof(sun));
		}
		if (s >= 0)
			close(s);
	}
}

/* Fork; the parent waits for the child's readiness byte and exits with it. */
static int ferryd_daemonize(const char *logfile)
{
	int p[2], fd;
	pid_t pid;
	char c = 'F';

	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &c, 1) != 1)
			c = 'F';
		_exit(c == 'R' ? 0 : 1);
	}
	close(p[0]);
	setsid();
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		close(fd);
	}
	if (logfile) {
		char dir[PATH_MAX], *slash;

		snprintf(dir, sizeof(dir), "%s", logfile);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			mkdir_p(dir, 0755);
		}
		fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
	}
	log_timestamps_set(true);
	return p[1];
}

static void *ferryd_control_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	struct json_object *req = NULL, *rep;
	uid_t uid = (uid_t)-1;
	uint32_t len;
	char *buf = NULL;
	const char *s;

	if (net_unix_peer_cred(fd, &uid, NULL, NULL) || uid != 0) {
		rep = rpc_error(EPERM, "permission denied: the ferry control socket is root-only");
		goto reply;
	}
	if (net_msg_recv(fd, NET_MSG_MAX, &buf, &len)) {
		close(fd);
		return NULL;
	}
	req = json_tokener_parse(buf);
	if (!req || !json_object_is_type(req, json_type_object))
		rep = rpc_error(EINVAL, "request is not a JSON object");
	else
		rep = rpc_handle(req, RPC_LOCAL, NULL);
reply:
	s = json_object_to_json_string_ext(rep, JSON_C_TO_STRING_PLAIN);
	net_msg_send(fd, s, (uint32_t)strlen(s));
	json_object_put(rep);
	json_object_put(req);
	free(buf);
	close(fd);
	return NULL;
}

struct ferryd_peer_arg {
	int fd;
	struct sockaddr_storage ss;
};

static void *ferryd_peer_conn(void *arg)
{
	struct ferryd_peer_arg *a = arg;
	struct peer_conn *pc;
	char err[512];

	pc = peer_accept(a->fd, ferryd->conf.host, ferryd->key, err, sizeof(err));
	if (!pc) {
		log_warn("%s", err);
		close(a->fd);
		peer_gate_leave(&a->ss, false);
		free(a);
		return NULL;
	}
	peer_gate_authed(&a->ss);
	for (;;) {
		struct json_object *req, *rep;
		int ret = peer_recv(pc, &req);

		if (ret)
			break;
		rep = rpc_handle(req, RPC_PEER, peer_name(pc));
		ret = peer_send(pc, rep);
		json_object_put(rep);
		json_object_put(req);
		if (ret)
			break;
	}
	/* The peer closed, or the link was idle PEER_IDLE_S: its pool reconnects. */
	peer_close(pc);
	peer_gate_leave(&a->ss, true);
	free(a);
	return NULL;
}

/* A peer connection: through the gate, or closed at once. */
static void ferryd_peer_accept(int lfd)
{
	struct ferryd_peer_arg *a = calloc(1, sizeof(*a));
	socklen_t len = sizeof(a->ss);
	char who[80];

	if (!a)
		return;
	a->fd = net_accept(lfd, &a->ss, &len);
	if (a->fd < 0) {
		log_warn("accept: %s", strerror(-a->fd));
		free(a);
		return;
	}
	if (peer_gate_enter(&a->ss)) {
		log_debug(LOG_SUB_PEER, "peer %s: too many handshakes in progress; closed",
			  net_peer_str(a->fd, who, sizeof(who)));
		close(a->fd);
		free(a);
		return;
	}
	if (thread_spawn_detached(ferryd_peer_conn, a)) {
		close(a->fd);
		peer_gate_leave(&a->ss, false);
		free(a);
	}
}

static int ferryd_serve(int ctl_fd, int peer_fd)
{
	struct pollfd pfd[3] = {
		{ .fd = ctl_fd, .events = POLLIN },
		{ .fd = peer_fd, .events = POLLIN },
		{ .fd = ferryd_sigpipe[0], .events = POLLIN },
	};

	while (!ferryd_signalled) {
		int n = poll(pfd, 3, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("poll: %s", strerror(errno));
			return -errno;
		}
		if (pfd[0].revents & POLLIN) {
			int fd = net_accept(pfd[0].fd, NULL, NULL);

			if (fd < 0)
				log_warn("accept: %s", strerror(-fd));
			else if (thread_spawn_detached(ferryd_control_conn, (void *)(intptr_t)fd))
				close(fd);
		}
		if (pfd[1].revents & POLLIN)
			ferryd_peer_accept(pfd[1].fd);
	}
	log_info("signal %d: stopping at the next step boundary (unfinished operations resume "
		 "at next start)",
		 (int)ferryd_signalled);
	engine_stop(FERRYD_STOP_MS);
	return 0;
}

static int ferryd_load_mig(struct migration *m, void *ctx)
{
	(*(int *)ctx)++;
	store_add(m);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "config", required_argument, NULL, 'c' },
		{ "dump-config", no_argument, NULL, 'D' },
		{ "log", required_argument, NULL, 'l' },
		{ "pid-file", required_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "debug", required_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	const char *config = FERRYD_DEFAULT_CONFIG, *logfile = "/var/log/ferry/ferryd.log";
	const char *pidfile = NULL;
	enum out_mode mode = OUT_PLAIN;
	bool foreground = false, dump = false;
	int c, i, verbose = 0, ready_fd = -1, ctl_fd = -1, peer_fd = -1, ret = 1, nrecords = 0;
	struct sigaction sa = { .sa_handler = ferryd_on_signal };
	char buf[300];

	log_init(argv[0]);
	while ((c = getopt_long(argc, argv, "fc:l:P:vjphV", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			foreground = true;
			break;
		case 'c':
			config = optarg;
			break;
		case 'D':
			dump = true;
			break;
		case 'l':
			logfile = optarg;
			break;
		case 'P':
			pidfile = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'd':
			if (log_debug_parse(optarg))
				return 2;
			break;
		case 'j':
			mode = mode == OUT_PLAIN ? OUT_JSON : mode;
			break;
		case 'p':
			mode = OUT_JSON_PRETTY;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ferryd %s\n", FERRY_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ferryd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (verbose == 1)
		log_level_set(LOG_LVL_INFO);
	else if (verbose > 1)
		log_level_set(LOG_LVL_DEBUG);
	else if (log_level_get() < LOG_LVL_INFO)
		log_level_set(LOG_LVL_INFO);
	out_init(mode);

	ferryd = calloc(1, sizeof(*ferryd));
	if (!ferryd)
		return 1;
	conf_defaults(&ferryd->conf);
	if (access(config, F_OK) == 0 || strcmp(config, FERRYD_DEFAULT_CONFIG)) {
		if (conf_load(&ferryd->conf, config)) {
			out_error("%s: invalid configuration", config);
			return 1;
		}
	}
	if (dump) {
		conf_dump(&ferryd->conf);
		return 0;
	}
	if (!foreground) {
		ready_fd = ferryd_daemonize(logfile);
		if (ready_fd < 0) {
			log_err("daemonize: %s", strerror(errno));
			return 1;
		}
	}
	ferryd->crash_at = getenv("FERRY_TEST_CRASH");
	ferryd->pause_at = getenv("FERRY_TEST_PAUSE");
	if (pipe2(ferryd_sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
		goto out;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (auth_key_load(ferryd->conf.cluster_key_file, ferryd->key))
		goto out;
	/* The flows first: each journaled record names its own. */
	if (flows_register() || journal_init(ferryd->conf.state_dir) ||
	    journal_load_all(ferryd_load_mig, &nrecords) < 0)
		goto out;
	ferryd->virt = virt_open(ferryd->conf.libvirt_uri);
	if (!ferryd->virt)
		goto out;
	if (metrics_init(ferryd->conf.pin_dir))
		log_warn("metrics map unavailable; `ferry show` still reports them");
	if (track_init())
		log_warn("dirty tracking unavailable: disks will be copied with the VM off");
	if (ferryd->conf.net_watch &&
	    vifmon_init(ferryd->conf.pin_dir, ferryd->conf.test_drop_announce))
		log_warn("VIF monitor unavailable: no blackout, announce or FDB checks at cut-over");
	if (!ferryd->conf.net_watch) {
		/* A previous ferryd's filters stay on the taps: take them off. */
		c = vif_links_detach();
		if (c > 0)
			log_info("vif: net_watch is off: ferry's programs taken off %d link(s)", c);
	}
	/*
	 * After a crash the previous instance's last threads may still be
	 * exiting and holding its sockets: give the ports a few seconds.
	 */
	for (i = 0; (c = xfer_server_start()) == -EADDRINUSE && i < 50; i++)
		usleep(200 * 1000);
	if (c)
		goto out;
	ctl_fd = net_unix_listen(ferryd->conf.control_socket, 0600, 64);
	if (ctl_fd < 0) {
		char dir[PATH_MAX], *slash;

		snprintf(dir, sizeof(dir), "%s", ferryd->conf.control_socket);
		slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			mkdir_p(dir, 0755);
		}
		ctl_fd = net_unix_listen(ferryd->conf.control_socket, 0600, 64);
	}
	if (ctl_fd < 0) {
		log_err("control socket %s: %s", ferryd->conf.control_socket, strerror(-ctl_fd));
		goto out;
	}
	for (i = 0; (peer_fd = net_tcp_listen(&ferryd->conf.listen, 64)) == -EADDRINUSE && i < 50;
	     i++)
		usleep(200 * 1000);
	if (peer_fd < 0) {
		log_err("peer listener %s: %s", net_addr_str(&ferryd->conf.listen, buf, sizeof(buf)),
			strerror(-peer_fd));
		goto out;
	}
	/* The cluster's record first: resumed flows (evacuate) read it. */
	if (member_start() || fence_start())
		goto out;
	if (reconcile_start() || vmrec_start() || migrec_start())
		goto out;
	log_info("host %s ready: peers on %s, control on %s, %d journaled migration(s)",
		 ferryd->conf.host, net_addr_str(&ferryd->conf.listen, buf, sizeof(buf)),
		 ferryd->conf.control_socket, nrecords);
	if (pidfile) {
		char pid[32];

		snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
		if (file_write_atomic(pidfile, pid, strlen(pid), 0644))
			log_warn("pid file %s: %s", pidfile, strerror(errno));
	}
	ferryd_notify(ready_fd, true);
	ready_fd = -1;
	ret = ferryd_serve(ctl_fd, peer_fd) ? 1 : 0;
out:
	if (ready_fd >= 0)
		ferryd_notify(ready_fd, false);
	if (ctl_fd >= 0) {
		close(ctl_fd);
		unlink(ferryd->conf.control_socket);
	}
	if (pidfile && !ret)
		unlink(pidfile);
	if (peer_fd >= 0)
		close(peer_fd);
	migrec_stop();
	vmrec_stop();
	fence_stop();
	member_stop();
	xfer_server_stop();
	peer_pool_fini();
	vifmon_fini();
	track_fini();
	metrics_fini();
	/* Operation threads may still hold the libvirt connection: exit, don't free. */
	return ret;
}
