// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * pinger: what a VM's peers see of it, one probe at a time.
 *
 * Sends ICMP echo requests (a raw socket: needs root) or, with -u PORT, UDP
 * datagrams to an echo service, at a fixed interval (default 1000 us:
 * 1 kHz), and stamps the send and the arrival of the reply of every
 * sequence number on CLOCK_MONOTONIC.  Network namespaces share that clock
 * with each other and with eBPF's bpf_ktime_get_ns(), so the stamps compare
 * with what programs on a guest's tap saw.
 *
 * The sender sleeps with clock_nanosleep(TIMER_ABSTIME) on a fixed
 * schedule (no drift; after a stall it restarts from now rather than
 * sending a burst); a second thread blocks in recvmsg and takes each
 * reply's arrival from the kernel's receive stamp (SO_TIMESTAMPNS, on
 * CLOCK_REALTIME, moved to CLOCK_MONOTONIC by the offset measured at the
 * start), so the receiver's scheduling on a busy machine does not stretch
 * or shrink the gaps.  Replies are matched by the probe's payload (a magic, a token
 * of this run, the 64-bit sequence number) and, for ICMP, by the id
 * (pid & 0xffff) and 16-bit sequence of the header; anything else on the
 * socket is ignored.
 *
 * It runs until -d SECONDS have passed or SIGINT/SIGTERM, waits -g MS
 * (default 500) for late replies and reports: sent, received, lost,
 * duplicates, RTT (min, median, max), the longest gap between consecutive
 * replies with the stamps of the replies before and after it, and the lost
 * sequence ranges.  Plain text, or one JSON object with -j.  -w FILE
 * writes "seq send_ns recv_ns" per probe (recv_ns 0: no reply).
 *
 * Exit: 0 if any reply came, 1 if none came or on an error, 2 on bad
 * arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define PINGER_MAGIC 0x474e495059525246ull /* "FERRYPNG" little-endian */
#define PINGER_CHUNK_SEQS 65536u
#define PINGER_MAX_CHUNKS 16384u /* 2^30 probes */
#define PINGER_MAX_RANGES 64 /* lost ranges listed; the count is exact */
#define NS_PER_S 1000000000ull
#define PINGER_ICMP_FILTER 1 /* linux/icmp.h, whose icmphdr clashes with glibc's */

/* The payload of every probe; an echo service sends it back unchanged. */
struct pinger_payload {
	uint64_t magic; /* PINGER_MAGIC */
	uint64_t token; /* random, this run's */
	uint64_t seq; /* 0, 1, ... */
	uint64_t pad;
};

struct pinger_probe {
	uint64_t send_ns; /* CLOCK_MONOTONIC before send(); written by the sender */
	uint64_t recv_ns; /* first reply; 0 = none; written by the receiver */
};

struct pinger {
	/* options */
	const char *target;
	struct sockaddr_in addr;
	uint16_t port; /* UDP echo port, 0 = ICMP */
	uint64_t interval_ns;
	uint64_t duration_ns; /* 0 = until a signal */
	uint64_t grace_ns;
	const char *write_path;
	bool json;

	int fd;
	uint16_t echo_id; /* pid & 0xffff */
	uint64_t token;
	struct pinger_probe *chunk[PINGER_MAX_CHUNKS];
	uint64_t sent; /* probes published to the receiver (atomic) */
	uint64_t send_errors; /* send() failures (sender only) */
	int first_send_errno;
	uint64_t dups; /* replies to an answered probe (receiver only) */
	uint64_t refused; /* ICMP port unreachable on the UDP socket (receiver only) */
	volatile int recv_stop; /* atomic */
	int64_t rt_off_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC at the start */
	bool kstamp; /* SO_TIMESTAMPNS is on */
};

static volatile sig_atomic_t pinger_stop_flag;

static void pinger_signal(int sig)
{
	pinger_stop_flag = sig;
}

static uint64_t pinger_now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * NS_PER_S + (uint64_t)t.tv_nsec;
}

static uint64_t pinger_ts_ns(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * NS_PER_S + (uint64_t)t->tv_nsec;
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC, read tightly around the realtime read. */
static int64_t pinger_rt_offset(void)
{
	struct timespec a, r, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (int64_t)pinger_ts_ns(&r) - (int64_t)((pinger_ts_ns(&a) + pinger_ts_ns(&b)) / 2);
}

/* A received datagram's arrival on CLOCK_MONOTONIC: the kernel's stamp. */
static uint64_t pinger_arrival_ns(const struct pinger *p, struct msghdr *mh)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(mh); p->kstamp && c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec t;

			memcpy(&t, CMSG_DATA(c), sizeof(t));
			return (uint64_t)((int64_t)pinger_ts_ns(&t) - p->rt_off_ns);
		}
	}
	return pinger_now_ns();
}

static struct timespec pinger_ts(uint64_t ns)
{
	struct timespec t = { .tv_sec = (time_t)(ns / NS_PER_S), .tv_nsec = (long)(ns % NS_PER_S) };

	return t;
}

static struct pinger_probe *pinger_probe(struct pinger *p, uint64_t seq)
{
	return &p->chunk[seq / PINGER_CHUNK_SEQS][seq % PINGER_CHUNK_SEQS];
}

static uint16_t pinger_csum(const void *buf, size_t len)
{
	const uint8_t *b = buf;
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* ---- receiver ---------------------------------------------------------- */

/* Account one reply's payload, received at now. */
static void pinger_reply(struct pinger *p, const struct pinger_payload *pl, uint64_t now,
			 int hdr_seq)
{
	struct pinger_probe *pr;
	uint64_t seq;

	if (pl->magic != PINGER_MAGIC || pl->token != p->token)
		return;
	seq = pl->seq;
	if (seq >= __atomic_load_n(&p->sent, __ATOMIC_ACQUIRE))
		return;
	if (hdr_seq >= 0 && (uint16_t)hdr_seq != (uint16_t)seq)
		return;
	pr = pinger_probe(p, seq);
	if (pr->recv_ns)
		p->dups++;
	else
		pr->recv_ns = now;
}

static void *pinger_recv_run(void *arg)
{
	struct pinger *p = arg;
	struct pinger_payload pl;
	uint8_t buf[1500];
	union {
		char b[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	sigset_t all;
	uint64_t now;
	ssize_t n;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals go to the sender */
	while (!__atomic_load_n(&p->recv_stop, __ATOMIC_ACQUIRE)) {
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		n = recvmsg(p->fd, &mh, 0);
		now = pinger_arrival_ns(p, &mh);
		if (n < 0) {
			if (errno == ECONNREFUSED)
				p->refused++;
			continue; /* EAGAIN: the 50 ms timeout, to look at recv_stop */
		}
		if (p->port) {
			if ((size_t)n < sizeof(pl))
				continue;
			memcpy(&pl, buf, sizeof(pl));
			pinger_reply(p, &pl, now, -1);
		} else {
			const struct iphdr *ip = (const void *)buf;
			const struct icmphdr *ic;
			size_t hl;

			if ((size_t)n < sizeof(*ip))
				continue;
			hl = (size_t)ip->ihl * 4;
			if ((size_t)n < hl + sizeof(*ic) + sizeof(pl) ||
			    ip->saddr != p->addr.sin_addr.s_addr)
				continue;
			ic = (const void *)(buf + hl);
			if (ic->type != ICMP_ECHOREPLY || ntohs(ic->un.echo.id) != p->echo_id)
				continue;
			memcpy(&pl, buf + hl + sizeof(*ic), sizeof(pl));
			pinger_reply(p, &pl, now, ntohs(ic->un.echo.sequence));
		}
	}
	return NULL;
}

/* ---- sender ------------------------------------------------------------ */

static int pinger_open(struct pinger *p)
{
	struct timeval tv = { .tv_usec = 50 * 1000 };
	int fd, one = 1;

	if (p->port) {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		p->addr.sin_port = htons(p->port);
		if (connect(fd, (struct sockaddr *)&p->addr, sizeof(p->addr)) < 0) {
			int e = -errno;

			close(fd);
			return e;
		}
	} else {
		uint32_t filt = ~(1u << ICMP_ECHOREPLY); /* linux/icmp.h's struct icmp_filter */

		fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
		if (fd < 0)
			return -errno;
		/* only echo replies reach the socket */
		setsockopt(fd, SOL_RAW, PINGER_ICMP_FILTER, &filt, sizeof(filt));
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	p->kstamp = !setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
	p->rt_off_ns = pinger_rt_offset();
	p->fd = fd;
	return 0;
}

/* Send probe seq; 0 or -errno. */
static int pinger_send(struct pinger *p, uint64_t seq)
{
	struct {
		struct icmphdr ic;
		struct pinger_payload pl;
	} pkt;
	struct pinger_probe *pr;
	ssize_t n;

	if (seq % PINGER_CHUNK_SEQS == 0) {
		if (seq / PINGER_CHUNK_SEQS >= PINGER_MAX_CHUNKS)
			return -E2BIG;
		p->chunk[seq / PINGER_CHUNK_SEQS] =
			calloc(PINGER_CHUNK_SEQS, sizeof(struct pinger_probe));
		if (!p->chunk[seq / PINGER_CHUNK_SEQS])
			return -ENOMEM;
	}
	memset(&pkt, 0, sizeof(pkt));
	pkt.pl.magic = PINGER_MAGIC;
	pkt.pl.token = p->token;
	pkt.pl.seq = seq;
	pr = pinger_probe(p, seq);
	pr->send_ns = pinger_now_ns();
	/* published before the send: the reply may beat us back */
	__atomic_store_n(&p->sent, seq + 1, __ATOMIC_RELEASE);
	if (p->port) {
		n = send(p->fd, &pkt.pl, sizeof(pkt.pl), 0);
	} else {
		pkt.ic.type = ICMP_ECHO;
		pkt.ic.un.echo.id = htons(p->echo_id);
		pkt.ic.un.echo.sequence = htons((uint16_t)seq);
		pkt.ic.checksum = pinger_csum(&pkt, sizeof(pkt));
		n = sendto(p->fd, &pkt, sizeof(pkt), 0, (struct sockaddr *)&p->addr,
			   sizeof(p->addr));
	}
	return n < 0 ? -errno : 0;
}

static int pinger_run(struct pinger *p)
{
	uint64_t start, next, now, seq;
	struct timespec ts;
	int ret;

	start = next = pinger_now_ns();
	for (seq = 0; !pinger_stop_flag; seq++) {
		if (p->duration_ns && next - start >= p->duration_ns)
			break;
		ret = pinger_send(p, seq);
		if (ret == -E2BIG || ret == -ENOMEM)
			return ret;
		if (ret) {
			/* no route at all: say so at once rather than count losses */
			if (seq == 0 && (ret == -ENETUNREACH || ret == -EACCES || ret == -EPERM))
				return ret;
			if (!p->send_errors++)
				p->first_send_errno = -ret;
		}
		next += p->interval_ns;
		now = pinger_now_ns();
		if (next < now)
			next = now; /* stalled: restart the schedule, no burst */
		ts = pinger_ts(next);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR &&
		       !pinger_stop_flag)
			;
	}
	return 0;
}

/* ---- report ------------------------------------------------------------ */

struct pinger_report {
	uint64_t sent, received, lost;
	uint64_t rtt_min_ns, rtt_median_ns, rtt_max_ns;
	uint64_t first_send_ns, last_send_ns, first_reply_ns, last_reply_ns;
	uint64_t gap_max_ns, gap_before_ns, gap_after_ns; /* between consecutive replies */
	uint64_t gap_before_seq, gap_after_seq;
	uint64_t lost_ranges; /* how many */
	uint64_t range[PINGER_MAX_RANGES][2]; /* the first ones, [first, last] */
};

struct pinger_rx {
	uint64_t recv_ns, seq;
};

static int pinger_rx_cmp(const void *a, const void *b)
{
	const struct pinger_rx *x = a, *y = b;

	return x->recv_ns < y->recv_ns ? -1 : x->recv_ns > y->recv_ns;
}

static int pinger_u64_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

static int pinger_report_make(struct pinger *p, struct pinger_report *r)
{
	struct pinger_rx *rx = NULL;
	uint64_t *rtt = NULL, seq, n = 0, i, run_start = 0;
	bool in_run = false;

	memset(r, 0, sizeof(*r));
	r->sent = p->sent;
	if (r->sent) {
		rx = malloc(r->sent * sizeof(*rx));
		rtt = malloc(r->sent * sizeof(*rtt));
		if (!rx || !rtt) {
			free(rx);
			free(rtt);
			return -ENOMEM;
		}
		r->first_send_ns = pinger_probe(p, 0)->send_ns;
		r->last_send_ns = pinger_probe(p, r->sent - 1)->send_ns;
	}
	for (seq = 0; seq < r->sent; seq++) {
		const struct pinger_probe *pr = pinger_probe(p, seq);

		if (pr->recv_ns) {
			rx[n].recv_ns = pr->recv_ns;
			rx[n].seq = seq;
			rtt[n++] = pr->recv_ns - pr->send_ns;
			if (in_run) {
				if (r->lost_ranges < PINGER_MAX_RANGES) {
					r->range[r->lost_ranges][0] = run_start;
					r->range[r->lost_ranges][1] = seq - 1;
				}
				r->lost_ranges++;
				in_run = false;
			}
		} else if (!in_run) {
			in_run = true;
			run_start = seq;
		}
	}
	if (in_run) {
		if (r->lost_ranges < PINGER_MAX_RANGES) {
			r->range[r->lost_ranges][0] = run_start;
			r->range[r->lost_ranges][1] = r->sent - 1;
		}
		r->lost_ranges++;
	}
	r->received = n;
	r->lost = r->sent - n;
	if (n) {
		qsort(rx, n, sizeof(*rx), pinger_rx_cmp);
		qsort(rtt, n, sizeof(*rtt), pinger_u64_cmp);
		r->rtt_min_ns = rtt[0];
		r->rtt_median_ns = n % 2 ? rtt[n / 2] : (rtt[n / 2 - 1] + rtt[n / 2]) / 2;
		r->rtt_max_ns = rtt[n - 1];
		r->first_reply_ns = rx[0].recv_ns;
		r->last_reply_ns = rx[n - 1].recv_ns;
		r->gap_before_ns = r->gap_after_ns = rx[0].recv_ns;
		r->gap_before_seq = r->gap_after_seq = rx[0].seq;
		for (i = 1; i < n; i++) {
			if (rx[i].recv_ns - rx[i - 1].recv_ns <= r->gap_max_ns)
				continue;
			r->gap_max_ns = rx[i].recv_ns - rx[i - 1].recv_ns;
			r->gap_before_ns = rx[i - 1].recv_ns;
			r->gap_after_ns = rx[i].recv_ns;
			r->gap_before_seq = rx[i - 1].seq;
			r->gap_after_seq = rx[i].seq;
		}
	}
	free(rx);
	free(rtt);
	return 0;
}

static void pinger_add_u64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void pinger_print_json(const struct pinger *p, const struct pinger_report *r)
{
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	uint64_t i;

	json_object_object_add(o, "target", json_object_new_string(p->target));
	json_object_object_add(o, "proto", json_object_new_string(p->port ? "udp" : "icmp"));
	if (p->port)
		pinger_add_u64(o, "port", p->port);
	pinger_add_u64(o, "interval_us", p->interval_ns / 1000);
	pinger_add_u64(o, "sent", r->sent);
	pinger_add_u64(o, "received", r->received);
	pinger_add_u64(o, "lost", r->lost);
	pinger_add_u64(o, "duplicates", p->dups);
	pinger_add_u64(o, "send_errors", p->send_errors);
	if (p->send_errors)
		json_object_object_add(o, "send_error",
				       json_object_new_string(strerror(p->first_send_errno)));
	pinger_add_u64(o, "refused", p->refused);
	pinger_add_u64(o, "rtt_min_ns", r->rtt_min_ns);
	pinger_add_u64(o, "rtt_median_ns", r->rtt_median_ns);
	pinger_add_u64(o, "rtt_max_ns", r->rtt_max_ns);
	pinger_add_u64(o, "first_send_ns", r->first_send_ns);
	pinger_add_u64(o, "last_send_ns", r->last_send_ns);
	pinger_add_u64(o, "first_reply_ns", r->first_reply_ns);
	pinger_add_u64(o, "last_reply_ns", r->last_reply_ns);
	pinger_add_u64(o, "gap_max_ns", r->gap_max_ns);
	pinger_add_u64(o, "gap_before_ns", r->gap_before_ns);
	pinger_add_u64(o, "gap_after_ns", r->gap_after_ns);
	pinger_add_u64(o, "gap_before_seq", r->gap_before_seq);
	pinger_add_u64(o, "gap_after_seq", r->gap_after_seq);
	pinger_add_u64(o, "lost_range_count", r->lost_ranges);
	for (i = 0; i < r->lost_ranges && i < PINGER_MAX_RANGES; i++) {
		struct json_object *g = json_object_new_array();

		json_object_array_add(g, json_object_new_uint64(r->range[i][0]));
		json_object_array_add(g, json_object_new_uint64(r->range[i][1]));
		json_object_array_add(a, g);
	}
	json_object_object_add(o, "lost_ranges", a);
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void pinger_print_text(const struct pinger *p, const struct pinger_report *r)
{
	uint64_t i;

	printf("%s %s every %" PRIu64 " us: sent %" PRIu64 ", received %" PRIu64
	       ", lost %" PRIu64 ", duplicates %" PRIu64,
	       p->port ? "udp" : "icmp", p->target, p->interval_ns / 1000, r->sent,
	       r->received, r->lost, p->dups);
	if (p->port)
		printf(", port %u, refused %" PRIu64, p->port, p->refused);
	if (p->send_errors)
		printf(", send errors %" PRIu64 " (%s)", p->send_errors,
		       strerror(p->first_send_errno));
	printf("\n");
	if (!r->received)
		return;
	printf("rtt min %.3f ms, median %.3f ms, max %.3f ms\n", ms(r->rtt_min_ns),
	       ms(r->rtt_median_ns), ms(r->rtt_max_ns));
	printf("longest gap between replies %.3f ms: seq %" PRIu64 " at %" PRIu64
	       " ns .. seq %" PRIu64 " at %" PRIu64 " ns (CLOCK_MONOTONIC)\n",
	       ms(r->gap_max_ns), r->gap_before_seq, r->gap_before_ns, r->gap_after_seq,
	       r->gap_after_ns);
	if (!r->lost_ranges)
		return;
	printf("lost %" PRIu64 " range%s:", r->lost_ranges, r->lost_ranges > 1 ? "s" : "");
	for (i = 0; i < r->lost_ranges && i < PINGER_MAX_RANGES; i++) {
		if (r->range[i][0] == r->range[i][1])
			printf(" %" PRIu64, r->range[i][0]);
		else
			printf(" %" PRIu64 "-%" PRIu64, r->range[i][0], r->range[i][1]);
	}
	printf("%s\n", r->lost_ranges > PINGER_MAX_RANGES ? " ..." : "");
}

static int pinger_write(const struct pinger *p, const char *path)
{
	uint64_t seq;
	FILE *f;

	f = fopen(path, "w");
	if (!f)
		return -errno;
	for (seq = 0; seq < p->sent; seq++) {
		const struct pinger_probe *pr = pinger_probe((struct pinger *)p, seq);

		fprintf(f, "%" PRIu64 " %" PRIu64 " %" PRIu64 "\n", seq, pr->send_ns, pr->recv_ns);
	}
	if (fclose(f))
		return -errno;
	return 0;
}

/* ---- main -------------------------------------------------------------- */

static void pinger_error(const struct pinger *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void pinger_error(const struct pinger *p, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (p->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "error", json_object_new_string(buf));
		printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		fprintf(stderr, "pinger: %s\n", buf);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pinger [-u PORT] [-i INTERVAL_US] [-d SECONDS] [-g GRACE_MS] [-w FILE] [-j]\n"
		"              TARGET\n"
		"ICMP echo (root) or, with -u, UDP echo to TARGET every INTERVAL_US (1000)\n"
		"until SECONDS (0: until SIGINT/SIGTERM) have passed; then reports losses,\n"
		"RTT and the longest gap between replies (CLOCK_MONOTONIC ns).\n");
}

/* A number in [min, max] from s, or -1. */
static int pinger_num(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "udp", required_argument, NULL, 'u' },
		{ "interval", required_argument, NULL, 'i' },
		{ "duration", required_argument, NULL, 'd' },
		{ "grace", required_argument, NULL, 'g' },
		{ "write", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 }
	};
	static struct pinger p = { .interval_ns = 1000000, .grace_ns = 500000000, .fd = -1 };
	struct pinger_report r;
	struct addrinfo hints = { .ai_family = AF_INET }, *ai = NULL;
	struct sigaction sa;
	pthread_t thr;
	double v;
	int c, ret;

	while ((c = getopt_long(argc, argv, "u:i:d:g:w:jhV", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			if (pinger_num(optarg, 1, 65535, &v) || v != (uint16_t)v)
				goto bad_arg;
			p.port = (uint16_t)v;
			break;
		case 'i':
			if (pinger_num(optarg, 10, 10e6, &v))
				goto bad_arg;
			p.interval_ns = (uint64_t)(v * 1000);
			break;
		case 'd':
			if (pinger_num(optarg, 0, 86400, &v))
				goto bad_arg;
			p.duration_ns = (uint64_t)(v * 1e9);
			break;
		case 'g':
			if (pinger_num(optarg, 0, 60000, &v))
				goto bad_arg;
			p.grace_ns = (uint64_t)(v * 1e6);
			break;
		case 'w':
			p.write_path = optarg;
			break;
		case 'j':
			p.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("pinger %s\n", FERRY_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		pinger_error(&p, "want one TARGET (see --help)");
		return 2;
	}
	p.target = argv[optind];
	ret = getaddrinfo(p.target, NULL, &hints, &ai);
	if (ret) {
		pinger_error(&p, "%s: %s", p.target, gai_strerror(ret));
		return 2;
	}
	memcpy(&p.addr, ai->ai_addr, sizeof(p.addr));
	freeaddrinfo(ai);
	p.echo_id = (uint16_t)(getpid() & 0xffff);
	p.token = pinger_now_ns() ^ ((uint64_t)getpid() << 32);

	ret = pinger_open(&p);
	if (ret) {
		pinger_error(&p, "%s: %s socket: %s%s", p.target, p.port ? "UDP" : "raw ICMP",
			     strerror(-ret), ret == -EPERM && !p.port ? " (needs root)" : "");
		return 1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pinger_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	ret = -pthread_create(&thr, NULL, pinger_recv_run, &p);
	if (ret) {
		pinger_error(&p, "cannot start the receiver: %s", strerror(-ret));
		return 1;
	}
	ret = pinger_run(&p);
	if (!ret) {
		struct timespec ts = pinger_ts(pinger_now_ns() + p.grace_ns);

		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	__atomic_store_n(&p.recv_stop, 1, __ATOMIC_RELEASE);
	pthread_join(thr, NULL);
	close(p.fd);
	if (ret) {
		pinger_error(&p, "%s: cannot send: %s", p.target, strerror(-ret));
		return 1;
	}
	if (pinger_report_make(&p, &r)) {
		pinger_error(&p, "out of memory");
		return 1;
	}
	if (p.write_path) {
		ret = pinger_write(&p, p.write_path);
		if (ret) {
			pinger_error(&p, "%s: %s", p.write_path, strerror(-ret));
			return 1;
		}
	}
	if (p.json)
		pinger_print_json(&p, &r);
	else
		pinger_print_text(&p, &r);
	if (!r.received) {
		if (!p.json)
			fprintf(stderr, "pinger: %s: no reply to %" PRIu64 " probes%s\n", p.target,
				r.sent, p.send_errors ? " (see send errors)" : "");
		return 1;
	}
	return 0;

bad_arg:
	pinger_error(&p, "-%c '%s': not a valid value (see --help)", c, optarg);
	return 2;
}
