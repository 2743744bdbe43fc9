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

#endif /* FERRY_NET_H */
