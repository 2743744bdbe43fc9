// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-copy - copy a disk image to another host (or locally) with the
 * mover: sparse, compressed where it pays, parallel, checksummed and
 * resumable.  `ferry-copy --serve` is the standalone receiver.  See
 * docs/ferry-copy.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#include "common.h"
#include "net/net.h"
#include "mover/mover.h"

enum progress_mode { PROGRESS_NONE, PROGRESS_BAR, PROGRESS_JSON };

struct copy_cli {
	struct mover_send_opts o;
	enum progress_mode progress;
	const char *token_file;
	const char *ranges_file;
	struct ferry_range *ranges;
	size_t nr_ranges, cap_ranges;
	/* --rounds: a session; round i is ranges[round_first[i]..round_first[i+1]),
	 * or the whole image when round_whole[i] */
	const char *rounds_file;
	bool round_pause;
	size_t *round_first;
	bool *round_whole;
	size_t nr_rounds;
	/* --serve */
	bool serve, once;
	const char *listen, *root;
	struct mover_server_conf sconf; /* --serve limits */
	bool checksum;
};

static volatile sig_atomic_t stop_signal;
/* --serve waits on this pipe: a signal or a finished transfer wakes it (no
 * polling timer between a transfer's end and --once exiting). */
static int wake_pipe[2] = { -1, -1 };

static void serve_wake(void)
{
	int e = errno;

	if (wake_pipe[1] >= 0 && write(wake_pipe[1], "x", 1) < 0)
		errno = e; /* full: it is awake already */
	errno = e;
}

static void on_signal(int sig)
{
	stop_signal = sig;
	serve_wake();
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ferry-copy [OPTIONS] SOURCE DEST\n"
		"       ferry-copy --serve --root DIR --token-file FILE [--listen ADDR:PORT] [--once]\n"
		"       ferry-copy --checksum FILE...\n"
		"\n"
		"Copy a disk image (file or block device), sparse, compressed where it pays,\n"
		"over several checksummed, resumable streams.  DEST is a local path or\n"
		"ferry://HOST[:PORT]/PATH, PATH being under the receiver's --root.\n"
		"\n"
		"Copy options:\n"
		"  -C, --connections N       parallel connections (default: 2 per core, 4..8)\n"
		"      --compress MODE       auto[:LEVEL] (default auto), none, zstd[:LEVEL]\n"
		"      --bwlimit RATE        limit on the wire, e.g. 500M (bytes/s) or 1gbit\n"
		"      --progress[=bar|json] progress on stderr: a bar, or JSON lines\n"
		"      --resume ID           transfer id; run again with the same id to resume\n"
		"      --verify              re-read the destination and compare\n"
		"      --token-file FILE     the receiver's token (64 hex digits)\n"
		"      --zero MODE           zero runs at the destination: auto, write, punch,\n"
		"                            zeroout, discard, skip\n"
		"      --range OFF:LEN       copy only this range (repeatable)\n"
		"      --ranges FILE         ranges from FILE, \"OFFSET LENGTH\" per line\n"
		"      --rounds FILE         a session: rounds of ranges from FILE, \"OFFSET LENGTH\"\n"
		"                            per line, rounds apart by a line \"round\"; a line\n"
		"                            \"all\": the whole image; then a commit\n"
		"      --round-pause         before each round after the first, say so on stderr\n"
		"                            and wait for a line on stdin\n"
		"      --unit-size SIZE      work unit, a power of two (default 32M)\n"
		"      --retries N           reconnects before giving up (default 5)\n"
		"      --grow                extend an existing destination smaller than SOURCE\n"
		"Receiver options:\n"
		"      --serve               run a receiver\n"
		"      --listen ADDR:PORT    where to listen (default :%d)\n"
		"      --root DIR            destinations are created under DIR\n"
		"      --once                exit after the first completed transfer\n"
		"      --hello-timeout MS    the whole HELLO of a connection (default 10000)\n"
		"      --idle-timeout MS     a frame, or an idle connection (default 120000)\n"
		"      --max-conns N         authenticated connections (default 64)\n"
		"      --max-unauth N        connections before their HELLO (default 32; past it\n"
		"                            the oldest is closed)\n"
		"      --max-unauth-per-addr N  ...from one address (default %d)\n"
		"Other:\n"
		"      --checksum            print the content digest of each FILE\n"
		"  -j, --json                JSON output; -p, --pretty: indented JSON\n"
		"  -v, --verbose             more messages (-vv: debug)\n"
		"      --debug LIST          debug subsystems: mover,net,... or all\n"
		"  -h, --help                this help\n"
		"  -V, --version             version\n",
		MOVER_DEFAULT_PORT, MOVER_CONNS_MAX);
}

enum {
	OPT_COMPRESS = 256,
	OPT_BWLIMIT,
	OPT_PROGRESS,
	OPT_RESUME,
	OPT_VERIFY,
	OPT_TOKEN,
	OPT_ZERO,
	OPT_RANGE,
	OPT_RANGES,
	OPT_ROUNDS,
	OPT_ROUND_PAUSE,
	OPT_UNIT,
	OPT_RETRIES,
	OPT_SERVE,
	OPT_LISTEN,
	OPT_ROOT,
	OPT_ONCE,
	OPT_CHECKSUM,
	OPT_DEBUG,
	OPT_FAULT,
	OPT_FAULT_EVERY,
	OPT_GROW,
	OPT_HELLO_TIMEOUT,
	OPT_IDLE_TIMEOUT,
	OPT_MAX_CONNS,
	OPT_MAX_UNAUTH,
	OPT_MAX_UNAUTH_ADDR,
};

static const struct option long_opts[] = {
	{ "connections", required_argument, NULL, 'C' },
	{ "compress", required_argument, NULL, OPT_COMPRESS },
	{ "bwlimit", required_argument, NULL, OPT_BWLIMIT },
	{ "progress", optional_argument, NULL, OPT_PROGRESS },
	{ "resume", required_argument, NULL, OPT_RESUME },
	{ "verify", no_argument, NULL, OPT_VERIFY },
	{ "token-file", required_argument, NULL, OPT_TOKEN },
	{ "zero", required_argument, NULL, OPT_ZERO },
	{ "range", required_argument, NULL, OPT_RANGE },
	{ "ranges", required_argument, NULL, OPT_RANGES },
	{ "rounds", required_argument, NULL, OPT_ROUNDS },
	{ "round-pause", no_argument, NULL, OPT_ROUND_PAUSE },
	{ "unit-size", required_argument, NULL, OPT_UNIT },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "serve", no_argument, NULL, OPT_SERVE },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "root", required_argument, NULL, OPT_ROOT },
	{ "once", no_argument, NULL, OPT_ONCE },
	{ "grow", no_argument, NULL, OPT_GROW },
	{ "hello-timeout", required_argument, NULL, OPT_HELLO_TIMEOUT },
	{ "idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT },
	{ "max-conns", required_argument, NULL, OPT_MAX_CONNS },
	{ "max-unauth", required_argument, NULL, OPT_MAX_UNAUTH },
	{ "max-unauth-per-addr", required_argument, NULL, OPT_MAX_UNAUTH_ADDR },
	{ "checksum", no_argument, NULL, OPT_CHECKSUM },
	{ "json", no_argument, NULL, 'j' },
	{ "pretty", no_argument, NULL, 'p' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "debug", required_argument, NULL, OPT_DEBUG },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	/* Test hooks (tests/mover-corrupt.sh): damage data after its checksum. */
	{ "x-fault-corrupt-chunk", required_argument, NULL, OPT_FAULT },
	{ "x-fault-corrupt-every", required_argument, NULL, OPT_FAULT_EVERY },
	{ NULL, 0, NULL, 0 },
};

static int parse_num(const char *s, uint64_t *v)
{
	return parse_size(s, v) == 0 ? 0 : parse_u64(s, v);
}

static int range_add(struct copy_cli *cli, uint64_t off, uint64_t len)
{
	if (cli->nr_ranges == cli->cap_ranges) {
		size_t nc = cli->cap_ranges ? cli->cap_ranges * 2 : 16;
		void *nr = realloc(cli->ranges, nc * sizeof(*cli->ranges));

		if (!nr)
			return -ENOMEM;
		cli->ranges = nr;
		cli->cap_ranges = nc;
	}
	cli->ranges[cli->nr_ranges++] = (struct ferry_range){ off, len };
	return 0;
}

static int range_parse(struct copy_cli *cli, const char *s)
{
	char buf[128], *colon;
	uint64_t off, len;

	snprintf(buf, sizeof(buf), "%s", s);
	colon = strchr(buf, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (parse_num(buf, &off) || parse_num(colon + 1, &len) || !len)
		return -EINVAL;
	return range_add(cli, off, len);
}

static int ranges_file_read(struct copy_cli *cli, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[256];
	int ret = 0, lineno = 0;

	if (!f)
		return -errno;
	while (!ret && fgets(line, sizeof(line), f)) {
		char a[64], b[64];
		uint64_t off, len;

		lineno++;
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		if (sscanf(line, "%63s %63s", a, b) != 2 || parse_num(a, &off) ||
		    parse_num(b, &len) || !len) {
			out_error("%s:%d: expected \"OFFSET LENGTH\"", path, lineno);
			ret = -EINVAL;
			break;
		}
		ret = range_add(cli, off, len);
	}
	fclose(f);
	return ret;
}

/* A new round of --rounds, starting at the next range. */
static int round_add(struct copy_cli *cli)
{
	size_t *nf = realloc(cli->round_first, (cli->nr_rounds + 1) * sizeof(*nf));
	bool *nw;

	if (!nf)
		return -ENOMEM;
	cli->round_first = nf;
	nw = realloc(cli->round_whole, (cli->nr_rounds + 1) * sizeof(*nw));
	if (!nw)
		return -ENOMEM;
	cli->round_whole = nw;
	cli->round_first[cli->nr_rounds] = cli->nr_ranges;
	cli->round_whole[cli->nr_rounds++] = false;
	return 0;
}

static int rounds_file_read(struct copy_cli *cli, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[256];
	int ret, lineno = 0;

	if (!f) {
		out_error("%s: %s", path, strerror(errno));
		return -errno;
	}
	ret = round_add(cli);
	while (!ret && fgets(line, sizeof(line), f)) {
		char a[64], b[64];
		uint64_t off, len;
		int k;

		lineno++;
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0')
			continue;
		k = sscanf(line, "%63s %63s", a, b);
		if (k == 1 && !strcmp(a, "round")) {
			ret = round_add(cli);
		} else if (k == 1 && !strcmp(a, "all")) {
			cli->round_whole[cli->nr_rounds - 1] = true;
		} else if (k == 2 && !parse_num(a, &off) && !parse_num(b, &len) && len) {
			ret = range_add(cli, off, len);
		} else {
			out_error("%s:%d: expected \"OFFSET LENGTH\", \"all\" or \"round\"", path,
				  lineno);
			ret = -EINVAL;
		}
	}
	fclose(f);
	return ret;
}

/* --rounds: one session, its rounds, a commit; a summary per round. */
static int copy_rounds(struct copy_cli *cli)
{
	struct mover_send_session *ss;
	struct mover_stats st;
	char line[64];
	size_t i;
	int ret = 0;

	cli->o.ranges = NULL;
	cli->o.nr_ranges = 0;
	ss = mover_send_open(&cli->o, &st);
	if (!ss) {
		out_error("%s: %s", cli->o.label, st.error);
		return 1;
	}
	for (i = 0; i < cli->nr_rounds && !ret; i++) {
		size_t a = cli->round_first[i];
		size_t b = i + 1 < cli->nr_rounds ? cli->round_first[i + 1] : cli->nr_ranges;

		if (i && cli->round_pause) {
			fprintf(stderr, "round %zu: ready\n", i);
			fflush(stderr);
			if (!fgets(line, sizeof(line), stdin)) {
				out_error("round %zu: no go-ahead on stdin", i);
				ret = 1;
				break;
			}
		}
		ret = cli->round_whole[i] ? mover_send_round(ss, NULL, 0, &st) :
					    mover_send_round(ss, cli->ranges + a, b - a, &st);
		if (ret) {
			out_error("%s: round %zu: %s (transfer %s: run again with --resume %s to "
				  "continue)", cli->o.label, i, st.error, st.transfer_id,
				  st.transfer_id);
			ret = 1;
		} else {
			mover_stats_print(&st);
		}
	}
	if (!ret) {
		ret = mover_send_commit(ss, &st);
		if (ret) {
			out_error("%s: commit: %s", cli->o.label, st.error);
			ret = 1;
		}
	}
	mover_send_close(ss);
	return ret;
}

static void progress_cb(const struct mover_progress *p, void *ctx)
{
	struct copy_cli *cli = ctx;
	char a[32], b[32], r[32];
	double secs = p->elapsed_ms ? (double)p->elapsed_ms / 1000.0 : 0.001;
	unsigned int pct = p->total_bytes ? (unsigned int)(p->done_bytes * 100 / p->total_bytes) : 100;
	int i, fill = (int)(pct / 5);

	if (cli->progress == PROGRESS_JSON) {
		fprintf(stderr,
			"{\"done_bytes\":%" PRIu64 ",\"total_bytes\":%" PRIu64 ",\"acked_bytes\":%" PRIu64
			",\"wire_bytes\":%" PRIu64 ",\"elapsed_ms\":%" PRIu64 ",\"final\":%s}\n",
			p->done_bytes, p->total_bytes, p->acked_bytes, p->wire_bytes, p->elapsed_ms,
			p->final ? "true" : "false");
		fflush(stderr);
		return;
	}
	fprintf(stderr, "\r[");
	for (i = 0; i < 20; i++)
		fputc(i < fill ? '#' : ' ', stderr);
	fprintf(stderr, "] %3u%% %s / %s  %s/s   ", pct, fmt_bytes(p->done_bytes, a, sizeof(a)),
		fmt_bytes(p->total_bytes, b, sizeof(b)),
		fmt_bytes((uint64_t)((double)p->done_bytes / secs), r, sizeof(r)));
	if (p->final)
		fputc('\n', stderr);
	fflush(stderr);
}

/* ferry://HOST[:PORT]/PATH */
static int url_parse(const char *url, struct net_addr *a, const char **path)
{
	const char *p = url + strlen("ferry://"), *slash;
	char auth[300];

	if (strncmp(url, "ferry://", 8))
		return -EINVAL;
	slash = *p == '[' ? strchr(strchr(p, ']') ? strchr(p, ']') : p, '/') : strchr(p, '/');
	if (!slash || slash == p || !slash[1] || (size_t)(slash - p) >= sizeof(auth))
		return -EINVAL;
	snprintf(auth, sizeof(auth), "%.*s", (int)(slash - p), p);
	if (net_addr_parse(auth, MOVER_DEFAULT_PORT, a) || !a->host[0])
		return -EINVAL;
	*path = slash + 1;
	return 0;
}

/* Authorizer of local copies: the one destination, our own token. */
struct local_auth {
	uint8_t token[MOVER_TOKEN_BYTES];
	char path[PATH_MAX];
	char journal_dir[PATH_MAX];
};

static int local_authorize(void *ctx, const struct mover_auth_req *req, struct mover_dest *d)
{
	struct local_auth *la = ctx;

	if (ct_memcmp(req->token, la->token, MOVER_TOKEN_BYTES) || strcmp(req->path, la->path))
		return -EACCES;
	snprintf(d->path, sizeof(d->path), "%s", la->path);
	snprintf(d->journal_dir, sizeof(d->journal_dir), "%s", la->journal_dir);
	d->may_create = true;
	return 0;
}

static int abs_dest(const char *dest, char *out, char *jdir)
{
	char a[PATH_MAX], b[PATH_MAX], dir[PATH_MAX];

	snprintf(a, sizeof(a), "%s", dest);
	snprintf(b, sizeof(b), "%s", dest);
	if (!realpath(dirname(a), dir))
		return -errno;
	if (snprintf(out, PATH_MAX, "%s/%s", strcmp(dir, "/") ? dir : "", basename(b)) >= PATH_MAX)
		return -ENAMETOOLONG;
	snprintf(jdir, PATH_MAX, "%.*s/.ferry", PATH_MAX - 8, dir);
	return 0;
}

static int do_copy(struct copy_cli *cli, const char *src, const char *dst)
{
	struct mover_server_conf conf = { .listen_fd = -1, .quiet = true };
	struct mover_server_ops ops = { .authorize = local_authorize };
	struct mover_server *srv = NULL;
	struct local_auth la = { 0 };
	struct mover_stats st;
	struct net_addr a;
	struct stat ss, ds;
	const char *rpath;
	int fd, ret;

	fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		out_error("%s: %s", src, strerror(errno));
		return 1;
	}
	cli->o.source_fd = fd;
	cli->o.ranges = cli->ranges;
	cli->o.nr_ranges = cli->nr_ranges;
	if (cli->progress != PROGRESS_NONE) {
		cli->o.progress = progress_cb;
		cli->o.progress_ctx = cli;
	}
	if (!strncmp(dst, "ferry://", 8)) {
		if (url_parse(dst, &a, &rpath)) {
			out_error("%s: expected ferry://HOST[:PORT]/PATH", dst);
			ret = 2;
			goto out;
		}
		if (!cli->token_file) {
			out_error("copying to %s needs --token-file (the receiver's token)", dst);
			ret = 2;
			goto out;
		}
		ret = mover_token_read(cli->token_file, cli->o.token);
		if (ret) {
			out_error("%s: %s", cli->token_file,
				  ret == -EBADMSG ? "not a token (64 hex digits)" : strerror(-ret));
			ret = 1;
			goto out;
		}
		cli->o.host = a.host;
		cli->o.port = a.port;
		cli->o.dest_path = rpath;
		cli->o.label = dst;
	} else {
		ret = abs_dest(dst, la.path, la.journal_dir);
		if (ret) {
			out_error("%s: %s", dst, strerror(-ret));
			ret = 1;
			goto out;
		}
		if (fstat(fd, &ss) == 0 && stat(la.path, &ds) == 0 && ss.st_dev == ds.st_dev &&
		    ss.st_ino == ds.st_ino) {
			out_error("%s: source and destination are the same file", dst);
			ret = 2;
			goto out;
		}
		if (random_bytes(la.token, sizeof(la.token))) {
			ret = 1;
			goto out;
		}
		memcpy(cli->o.token, la.token, sizeof(la.token));
		srv = mover_server_new(&conf, &ops, &la);
		if (!srv) {
			out_error("cannot start the local receiver: %s", strerror(errno));
			ret = 1;
			goto out;
		}
		cli->o.local = srv;
		cli->o.dest_path = la.path;
		cli->o.label = dst;
	}
	if (cli->rounds_file) {
		ret = copy_rounds(cli);
		goto done;
	}
	ret = mover_send(&cli->o, &st);
	if (ret) {
		/* Work the receiver journaled is kept: say how to go on. */
		if (st.units_acked || st.units_skipped)
			out_error("%s: %s (transfer %s: run again with --resume %s to continue)",
				  cli->o.label, st.error, st.transfer_id, st.transfer_id);
		else
			out_error("%s: %s", cli->o.label, st.error);
		ret = 1;
	} else {
		mover_stats_print(&st);
	}
done:
	mover_server_free(srv);
	if (srv)
		rmdir(la.journal_dir); /* only if empty: journals stay for a resume */
out:
	close(fd);
	explicit_bzero(&la, sizeof(la));
	return ret;
}

static void serve_done(void *ctx, const struct mover_result *r)
{
	out_object_open(NULL);
	out_str("transfer_id", "transfer %s", r->transfer_id);
	out_str("path", ": %s", r->path);
	out_str("peer", " from %s", r->peer);
	out_str("status", ": %s", r->status ? "failed" : "complete");
	if (r->status)
		out_str("error", " (%s)", r->error);
	out_u64("written_bytes", ", %" PRIu64 " bytes written", r->written_bytes);
	out_u64("zeroed_bytes", ", %" PRIu64 " zeroed", r->zeroed_bytes);
	out_u64("units_done", ", %" PRIu64, r->units_done);
	out_u64("units_total", "/%" PRIu64 " units", r->units_total);
	out_bool("resumable", r->resumable ? ", resumable\n" : "\n", r->resumable);
	out_object_close();
	out_flush();
	serve_wake();
}

static int do_serve(struct copy_cli *cli)
{
	struct mover_server_conf conf = cli->sconf;
	struct mover_server_ops ops = { .authorize = mover_root_authorize, .done = serve_done };
	uint8_t token[MOVER_TOKEN_BYTES];
	struct mover_root_auth ra;
	struct mover_server *srv;
	struct sigaction sa = { .sa_handler = on_signal };
	char addr[80];
	int ret;

	if (!cli->root || !cli->token_file) {
		out_error("--serve needs --root DIR and --token-file FILE");
		return 2;
	}
	ret = mover_token_create(cli->token_file, token);
	if (ret) {
		out_error("%s: %s", cli->token_file,
			  ret == -EBADMSG ? "not a token (64 hex digits)" : strerror(-ret));
		return 1;
	}
	ret = mover_root_auth_init(&ra, cli->root, token);
	explicit_bzero(token, sizeof(token));
	if (ret) {
		out_error("%s: %s", cli->root, strerror(-ret));
		return 1;
	}
	if (pipe2(wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0 || fcntl(wake_pipe[0], F_SETFL, 0) < 0) {
		out_error("pipe: %s", strerror(errno));
		mover_root_auth_fini(&ra);
		return 1;
	}
	conf.listen_addr = cli->listen ? cli->listen : ":4790";
	srv = mover_server_new(&conf, &ops, &ra);
	if (!srv) {
		out_error("cannot listen on %s: %s", conf.listen_addr, strerror(errno));
		mover_root_auth_fini(&ra);
		return 1;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	out_object_open(NULL);
	out_str("listening", "listening on %s\n", mover_server_addr(srv, addr, sizeof(addr)));
	out_object_close();
	out_flush();
	while (!stop_signal && !(cli->once && mover_server_completed(srv) > 0)) {
		char b[64];

		if (read(wake_pipe[0], b, sizeof(b)) < 0 && errno != EINTR)
			break;
	}
	mover_server_free(srv);
	mover_root_auth_fini(&ra);
	return 0;
}

static int do_checksum(char **files, int n)
{
	int i, ret = 0;

	out_object_open(NULL);
	out_array_open("files");
	for (i = 0; i < n; i++) {
		struct stat st;
		uint64_t size;
		char sum[33];
		int fd = open(files[i], O_RDONLY | O_CLOEXEC), r = 0;

		if (fd < 0 || fstat(fd, &st) < 0) {
			r = -errno;
		} else {
			size = (uint64_t)st.st_size;
			if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) < 0)
				r = -errno;
			if (!r)
				r = mover_checksum_fd(fd, size, sum);
		}
		if (fd >= 0)
			close(fd);
		if (r) {
			log_err("%s: %s", files[i], strerror(-r));
			ret = 1;
			continue;
		}
		out_object_open(NULL);
		out_str("digest", "%s", sum);
		out_u64("size_bytes", NULL, size);
		out_str("path", "  %s\n", files[i]);
		out_object_close();
	}
	out_array_close();
	out_object_close();
	out_flush();
	return ret;
}

int main(int argc, char **argv)
{
	struct copy_cli cli = { 0 };
	enum out_mode mode = OUT_PLAIN;
	bool version = false;
	int c, verbose = 0, ret, idx = 0;
	uint64_t v;

	log_init(argv[0]);
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	cli.o.source_fd = -1;
	cli.sconf.listen_fd = -1;
	while ((c = getopt_long(argc, argv, "C:jpvhV", long_opts, &idx)) != -1) {
		switch (c) {
		case 'C':
			if (parse_int(optarg, 1, MOVER_CONNS_MAX, &cli.o.connections))
				goto bad_arg;
			break;
		case OPT_COMPRESS:
			if (mover_compress_parse(optarg, &cli.o.compress, &cli.o.compress_level))
				goto bad_arg;
			break;
		case OPT_BWLIMIT:
			if (parse_rate(optarg, &cli.o.bwlimit_bps) || !cli.o.bwlimit_bps)
				goto bad_arg;
			break;
		case OPT_PROGRESS:
			if (!optarg || !strcmp(optarg, "bar"))
				cli.progress = isatty(2) ? PROGRESS_BAR : PROGRESS_NONE;
			else if (!strcmp(optarg, "json"))
				cli.progress = PROGRESS_JSON;
			else
				goto bad_arg;
			break;
		case OPT_RESUME:
			if (!mover_id_valid(optarg))
				goto bad_arg;
			cli.o.transfer_id = optarg;
			break;
		case OPT_VERIFY:
			cli.o.verify = true;
			break;
		case OPT_TOKEN:
			cli.token_file = optarg;
			break;
		case OPT_ZERO:
			if (mover_zero_parse(optarg, &cli.o.zero_mode))
				goto bad_arg;
			break;
		case OPT_RANGE:
			if (range_parse(&cli, optarg))
				goto bad_arg;
			break;
		case OPT_RANGES:
			cli.ranges_file = optarg;
			break;
		case OPT_ROUNDS:
			cli.rounds_file = optarg;
			break;
		case OPT_ROUND_PAUSE:
			cli.round_pause = true;
			break;
		case OPT_UNIT:
			if (parse_size(optarg, &cli.o.unit_bytes))
				goto bad_arg;
			break;
		case OPT_RETRIES:
			if (parse_int(optarg, 0, 1000, &cli.o.max_retries))
				goto bad_arg;
			if (!cli.o.max_retries)
				cli.o.max_retries = -1;
			break;
		case OPT_SERVE:
			cli.serve = true;
			break;
		case OPT_LISTEN:
			cli.listen = optarg;
			break;
		case OPT_ROOT:
			cli.root = optarg;
			break;
		case OPT_ONCE:
			cli.once = true;
			break;
		case OPT_GROW:
			cli.o.grow = true;
			break;
		case OPT_HELLO_TIMEOUT:
			if (parse_int(optarg, 1, 3600000, &cli.sconf.hello_timeout_ms))
				goto bad_arg;
			break;
		case OPT_IDLE_TIMEOUT:
			if (parse_int(optarg, 1, 86400000, &cli.sconf.io_timeout_ms))
				goto bad_arg;
			break;
		case OPT_MAX_CONNS:
			if (parse_int(optarg, 1, 4096, &cli.sconf.max_conns))
				goto bad_arg;
			break;
		case OPT_MAX_UNAUTH:
			if (parse_int(optarg, 1, 4096, &cli.sconf.max_unauth))
				goto bad_arg;
			break;
		case OPT_MAX_UNAUTH_ADDR:
			if (parse_int(optarg, 1, 4096, &cli.sconf.max_unauth_per_addr))
				goto bad_arg;
			break;
		case OPT_CHECKSUM:
			cli.checksum = true;
			break;
		case OPT_FAULT:
		case OPT_FAULT_EVERY:
			if (parse_u64(optarg, &v) || !v)
				goto bad_arg;
			cli.o.fault_corrupt_chunk = v;
			cli.o.fault_every = c == OPT_FAULT_EVERY;
			break;
		case 'j':
			if (mode == OUT_PLAIN)
				mode = OUT_JSON;
			break;
		case 'p':
			mode = OUT_JSON_PRETTY;
			break;
		case 'v':
			verbose++;
			break;
		case OPT_DEBUG:
			if (log_debug_parse(optarg))
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			version = true;
			break;
		default:
			out_init(mode);
			out_error("unknown option or missing value: '%s' (see --help)",
				  argv[optind - 1]);
			return 2;
		}
	}
	out_init(mode);
	if (version) {
		out_object_open(NULL);
		out_str("version", "ferry-copy %s\n", FERRY_VERSION);
		out_u64("wire_version", NULL, MOVER_VERSION);
		out_object_close();
		out_flush();
		return 0;
	}
	if (verbose)
		log_level_set(verbose > 1 ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (cli.ranges_file && cli.rounds_file) {
		out_error("--ranges and --rounds exclude each other");
		return 2;
	}
	if (cli.ranges_file && ranges_file_read(&cli, cli.ranges_file))
		return 2;
	if (cli.rounds_file && (cli.nr_ranges || rounds_file_read(&cli, cli.rounds_file))) {
		if (cli.nr_ranges && !cli.nr_rounds)
			out_error("--range and --rounds exclude each other");
		return 2;
	}
	if (cli.checksum) {
		if (optind >= argc) {
			out_error("--checksum needs FILE...");
			return 2;
		}
		return do_checksum(argv + optind, argc - optind);
	}
	if (cli.serve) {
		if (optind != argc) {
			out_error("--serve takes no SOURCE or DEST");
			return 2;
		}
		return do_serve(&cli);
	}
	if (argc - optind != 2) {
		out_error("expected SOURCE and DEST (see --help)");
		return 2;
	}
	if (!strncmp(argv[optind], "ferry://", 8)) {
		out_error("%s: the source must be local (run ferry-copy on the source host)",
			  argv[optind]);
		return 2;
	}
	ret = do_copy(&cli, argv[optind], argv[optind + 1]);
	free(cli.ranges);
	free(cli.round_first);
	free(cli.round_whole);
	return ret;
bad_arg:
	out_init(mode);
	out_error("invalid value '%s' for --%s", optarg ? optarg : "",
		  c == 'C' ? "connections" : long_opts[idx].name);
	return 2;
}
