// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * sock.c - TCP and Unix socket helpers: address parsing, listen, connect with
 * a timeout, accept, socket options, peer credentials, and length-prefixed
 * message framing for the control and peer protocols.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"
#include "net/net.h"

int net_addr_parse(const char *s, uint16_t default_port, struct net_addr *out)
{
	const char *host = s, *colon, *port = NULL;
	size_t hlen;
	int p;

	memset(out, 0, sizeof(*out));
	out->port = default_port;
	if (!s)
		return -EINVAL;
	if (*s == '[') {
		const char *rb = strchr(s, ']');

		if (!rb)
			return -EINVAL;
		host = s + 1;
		hlen = (size_t)(rb - host);
		if (rb[1] == ':')
			port = rb + 2;
		else if (rb[1])
			return -EINVAL;
	} else {
		colon = strrchr(s, ':');
		/* More than one colon without brackets: a bare IPv6 address. */
		if (colon && strchr(s, ':') == colon) {
			hlen = (size_t)(colon - s);
			port = colon + 1;
		} else {
			hlen = strlen(s);
		}
	}
	if (hlen >= sizeof(out->host))
		return -EINVAL;
	memcpy(out->host, host, hlen);
	out->host[hlen] = '\0';
	if (port) {
		if (parse_int(port, 1, 65535, &p))
			return -EINVAL;
		out->port = (uint16_t)p;
	}
	return 0;
}

const char *net_addr_str(const struct net_addr *a, char *buf, size_t len)
{
	if (strchr(a->host, ':'))
		snprintf(buf, len, "[%s]:%u", a->host, a->port);
	else
		snprintf(buf, len, "%s:%u", a->host, a->port);
	return buf;
}

static int net_resolve(const struct net_addr *a, bool passive, struct addrinfo **res)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = passive ? AI_PASSIVE : 0,
	};
	char port[8];
	int rc;

	snprintf(port, sizeof(port), "%u", a->port);
	rc = getaddrinfo(a->host[0] ? a->host : NULL, port, &hints, res);
	if (rc == EAI_SYSTEM)
		return -errno;
	if (rc == EAI_NONAME || rc == EAI_NODATA || rc == EAI_FAIL || rc == EAI_AGAIN)
		return -EHOSTUNREACH;
	if (rc)
		return -EINVAL;
	return 0;
}

int net_tcp_listen(const struct net_addr *a, int backlog)
{
	struct addrinfo *res, *ai;
	int fd = -1, ret, one = 1;

	ret = net_resolve(a, true, &res);
	if (ret)
		return ret;
	ret = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0) {
			ret = fd;
			break;
		}
		ret = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return ret;
}

static int net_connect_one(const struct addrinfo *ai, int timeout_ms)
{
	struct pollfd pfd;
	int fd, ret, err = 0, one = 1;
	socklen_t elen = sizeof(err);

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		if (errno != EINPROGRESS) {
			ret = -errno;
			goto err;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do {
			ret = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : -1);
		} while (ret < 0 && errno == EINTR);
		if (ret < 0) {
			ret = -errno;
			goto err;
		}
		if (ret == 0) {
			ret = -ETIMEDOUT;
			goto err;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) {
			ret = -errno;
			goto err;
		}
		if (err) {
			ret = -err;
			goto err;
		}
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) {
		ret = -errno;
		goto err;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
err:
	close(fd);
	return ret;
}

int net_tcp_connect(const struct net_addr *a, int timeout_ms)
{
	struct addrinfo *res, *ai;
	int ret;

	if (!a->host[0])
		return -EINVAL;
	ret = net_resolve(a, false, &res);
	if (ret)
		return ret;
	ret = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		ret = net_connect_one(ai, timeout_ms);
		if (ret >= 0)
			break;
	}
	freeaddrinfo(res);
	return ret;
}

int net_accept(int lfd, struct sockaddr_storage *peer, socklen_t *len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int fd;

	for (;;) {
		fd = accept4(lfd, peer ? (struct sockaddr *)peer : (struct sockaddr *)&ss,
			     peer ? len : &sl, SOCK_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != EINTR && errno != ECONNABORTED)
			return -errno;
	}
}

int net_sock_timeouts(int fd, int send_ms, int recv_ms)
{
	struct timeval s = { .tv_sec = send_ms / 1000, .tv_usec = (send_ms % 1000) * 1000 };
	struct timeval r = { .tv_sec = recv_ms / 1000, .tv_usec = (recv_ms % 1000) * 1000 };

	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof(s)) < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof(r)) < 0)
		return -errno;
	return 0;
}

int net_sock_buffers(int fd, int sndbuf, int rcvbuf)
{
	if (sndbuf && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) < 0)
		return -errno;
	if (rcvbuf && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
		return -errno;
	return 0;
}

const char *net_peer_str(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN], port[8];

	if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, len, "?");
		return buf;
	}
	if (ss.ss_family == AF_INET6)
		snprintf(buf, len, "[%s]:%s", host, port);
	else
		snprintf(buf, len, "%s:%s", host, port);
	return buf;
}

static int net_unix_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

int net_unix_listen(const char *path, mode_t mode, int backlog)
{
	struct sockaddr_un sun;
	int fd, ret;
	mode_t old;

	ret = net_unix_addr(path, &sun);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	/* Create it with the final mode: no window where others could connect. */
	old = umask((mode_t)~mode & 0777);
	ret = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (ret < 0 || chmod(path, mode) < 0 || listen(fd, backlog) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int net_unix_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd, ret;

	ret = net_unix_addr(path, &sun);
	if (ret)
		return ret;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int net_unix_peer_cred(int fd, uid_t *uid, gid_t *gid, pid_t *pid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (uid)
		*uid = uc.uid;
	if (gid)
		*gid = uc.gid;
	if (pid)
		*pid = uc.pid;
	return 0;
}

int net_msg_send(int fd, const void *buf, uint32_t len)
{
	uint32_t be = htonl(len);
	int ret;

	if (len > NET_MSG_MAX)
		return -EMSGSIZE;
	ret = write_full(fd, &be, sizeof(be));
	if (!ret)
		ret = write_full(fd, buf, len);
	return ret;
}


/* Read exactly @len bytes before CLOCK_MONOTONIC @deadline_ms. */
static int net_read_by(int fd, void *buf, size_t len, uint64_t deadline_ms)
{
	char *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		uint64_t now = now_ms();
		ssize_t n;
		int ret;

		if (now >= deadline_ms)
			return -ETIMEDOUT;
		ret = poll(&pfd, 1, (int)MIN(deadline_ms - now, (uint64_t)INT_MAX));
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (ret == 0)
			return -ETIMEDOUT;
		n = recv(fd, p, len, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Exactly @len bytes: by @deadline_ms, or (0) as long as the socket's timeouts allow. */
static int net_read_msg(int fd, void *buf, size_t len, uint64_t deadline_ms)
{
	return deadline_ms ? net_read_by(fd, buf, len, deadline_ms) : read_full(fd, buf, len);
}

int net_msg_recv_by(int fd, uint32_t max, uint64_t deadline_ms, char **buf, uint32_t *len)
{
	uint32_t be, n;
	char *p;
	int ret;

	*buf = NULL;
	ret = net_read_msg(fd, &be, sizeof(be), deadline_ms);
	if (ret)
		return ret;
	n = ntohl(be);
	if (n > max)
		return -EMSGSIZE;
	p = malloc((size_t)n + 1);
	if (!p)
		return -ENOMEM;
	ret = net_read_msg(fd, p, n, deadline_ms);
	if (ret) {
		free(p);
		return ret;
	}
	p[n] = '\0';
	*buf = p;
	if (len)
		*len = n;
	return 0;
}

int net_msg_recv(int fd, uint32_t max, char **buf, uint32_t *len)
{
	return net_msg_recv_by(fd, max, 0, buf, len);
}
