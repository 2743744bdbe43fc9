/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * net.h - socket plumbing shared by the mover and the daemon: TCP listen and
 * connect with timeouts, address parsing, Unix sockets with peer
 * credentials.  Functions return 0 / an fd, or -errno.
 */
#ifndef FERRY_NET_H
#define FERRY_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/* sock.c */
struct net_addr {
	char host[256]; /* name or numeric address, without brackets */
	uint16_t port;
};

/*
 * Parse "HOST", "HOST:PORT", "[V6]:PORT" or ":PORT".  A missing port is
 * @default_port; a missing host is left empty.  0 or -EINVAL.
 */
int net_addr_parse(const char *s, uint16_t default_port, struct net_addr *out);
/* "host:port" (brackets for IPv6) into buf; returns buf. */
const char *net_addr_str(const struct net_addr *a, char *buf, size_t len);

/* Listening TCP socket (SO_REUSEADDR, CLOEXEC); empty host = any. */
int net_tcp_listen(const struct net_addr *a, int backlog);
/*
 * Connect with a timeout (ms, 0 = none); the returned socket is blocking,
 * CLOEXEC, TCP_NODELAY.  -ETIMEDOUT, -ECONNREFUSED, -EHOSTUNREACH, ...
 */
int net_tcp_connect(const struct net_addr *a, int timeout_ms);
/* accept4 with CLOEXEC, retried on EINTR/ECONNABORTED. */
int net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len);
/* Send/receive timeouts on a socket (ms, 0 = none). */
int net_sock_timeouts(int fd, int send_ms, int recv_ms);
/* Socket buffer sizes (bytes, 0 = leave). */
int net_sock_buffers(int fd, int sndbuf, int rcvbuf);
/* Numeric "addr:port" of the peer of a connected socket. */
const char *net_peer_str(int fd, char *buf, size_t len);

/* Unix stream socket at @path, mode @mode (e.g. 0600 for root-only). */
int net_unix_listen(const char *path, mode_t mode, int backlog);
int net_unix_connect(const char *path);
/* Credentials of the peer of a Unix socket. */
int net_unix_peer_cred(int fd, uid_t *uid, gid_t *gid, pid_t *pid);

/* Length-prefixed messages (u32 big-endian length + payload). */
#define NET_MSG_MAX (1u << 20) /* largest control message accepted */

/* Send one message; 0 or -errno. */
int net_msg_send(int fd, const void *buf, uint32_t len);
/*
 * Receive one message into a malloc'd buffer (NUL-terminated for
 * convenience); a length above @max is refused with -EMSGSIZE before any
 * payload is read.  -EPIPE on orderly EOF.
 */
int net_msg_recv(int fd, uint32_t max, char **buf, uint32_t *len);
/*
 * The same, all of it before CLOCK_MONOTONIC @deadline_ms (now_ms()):
 * a sender that trickles bytes gets no more time.  -ETIMEDOUT after.
 */
int net_msg_recv_by(int fd, uint32_t max, uint64_t deadline_ms, char **buf, uint32_t *len);

/* link.c: links, bridges and their FDB over rtnetlink (libnl-route-3). */
enum net_ev_type {
	NET_EV_LINK,	  /* a link appeared or changed (or: the resync's dump) */
	NET_EV_LINK_DEL,
	NET_EV_QDISC,
	NET_EV_QDISC_DEL, /* e.g. `tc qdisc del dev X clsact` */
	NET_EV_FDB,	  /* a bridge FDB entry was learned, moved or added */
	NET_EV_FDB_DEL,
	NET_EV_RESYNC,	  /* events were lost: state may be stale */
};

struct net_event {
	enum net_ev_type type;
	int ifindex;
	int master;		/* link: its bridge; fdb: the bridge */
	bool up;
	unsigned int mtu;
	uint32_t parent;	/* qdisc: its parent handle */
	char name[16];
	uint8_t mac[6];
};

typedef void (*net_watch_cb)(const struct net_event *ev, void *arg);
struct net_watch;

/* Subscribed to link, neighbour and tc events; NULL + errno. */
struct net_watch *net_watch_new(net_watch_cb cb, void *arg);
void net_watch_free(struct net_watch *nw);
/* Poll this fd for input, then call net_watch_recv. */
int net_watch_fd(const struct net_watch *nw);
/* Deliver what is queued to the callback; after ENOBUFS, a resync. */
int net_watch_recv(struct net_watch *nw);
/* Every link to the callback, as NET_EV_LINK. */
int net_watch_links(struct net_watch *nw);

struct net_bridge {
	int ifindex;
	bool is_bridge;
	bool up;
	bool stp;
	unsigned int mtu;
	uint64_t forward_delay_cs;	/* centiseconds, as sysfs says */
};

/* What bridge NAME is like; -ENODEV when there is no such link. */
int net_bridge_info(const char *name, struct net_bridge *out);
int net_link_mtu(const char *name, unsigned int *mtu);
/* The port of BRIDGE (ifindex) whose FDB holds MAC; *port = 0 when none. */
int net_fdb_port(int bridge, const uint8_t mac[6], int *port);
/* MAC learned on PORT (of its bridge): a reachable entry, never a local one. */
int net_fdb_set(int port, const uint8_t mac[6]);

#endif /* FERRY_NET_H */
