// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * link.c - the host's links through rtnetlink (libnl-route-3): a watcher of
 * link, neighbour and tc events, what a bridge is like (exists, up,
 * forwards at once, MTU), and the bridge's forwarding database.
 *
 * The watcher is a raw membership socket with a large buffer rather than
 * libnl's cache manager (documented as experimental).  When the kernel
 * drops events (ENOBUFS) the caller is told to resync: it gets a
 * NET_EV_RESYNC and then every link again as NET_EV_LINK.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/neighbour.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/object.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>
#include <netlink/socket.h>

#include "common.h"
#include "net.h"

#define NET_WATCH_RCVBUF (8 << 20)

struct net_watch {
	struct nl_sock *sk;
	net_watch_cb cb;
	void *arg;
};

static int net_err(int nlerr)
{
	switch (-nlerr) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_OBJ_NOTFOUND:
	case NLE_NODEV:
		return -ENODEV;
	case NLE_PERM:
		return -EPERM;
	case NLE_INVAL:
		return -EINVAL;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOACCESS:
		return -EACCES;
	default:
		return -EIO;
	}
}

static void net_lladdr(struct nl_addr *a, uint8_t mac[6])
{
	memset(mac, 0, 6);
	if (a && nl_addr_get_len(a) == 6)
		memcpy(mac, nl_addr_get_binary_addr(a), 6);
}

static void net_ev_link(struct rtnl_link *l, bool del, struct net_event *ev)
{
	const char *name = rtnl_link_get_name(l);

	ev->type = del ? NET_EV_LINK_DEL : NET_EV_LINK;
	ev->ifindex = rtnl_link_get_ifindex(l);
	ev->master = rtnl_link_get_master(l);
	ev->up = rtnl_link_get_flags(l) & IFF_UP;
	ev->mtu = rtnl_link_get_mtu(l);
	snprintf(ev->name, sizeof(ev->name), "%s", name ?: "");
	net_lladdr(rtnl_link_get_addr(l), ev->mac);
}

static void net_watch_obj(struct nl_object *obj, void *arg)
{
	struct net_watch *nw = arg;
	int type = nl_object_get_msgtype(obj);
	struct net_event ev = { 0 };

	switch (type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		net_ev_link((struct rtnl_link *)obj, type == RTM_DELLINK, &ev);
		break;
	case RTM_NEWQDISC:
	case RTM_DELQDISC:
		ev.type = type == RTM_DELQDISC ? NET_EV_QDISC_DEL : NET_EV_QDISC;
		ev.ifindex = rtnl_tc_get_ifindex(TC_CAST(obj));
		ev.parent = rtnl_tc_get_parent(TC_CAST(obj));
		break;
	case RTM_NEWNEIGH:
	case RTM_DELNEIGH: {
		struct rtnl_neigh *n = (struct rtnl_neigh *)obj;

		if (rtnl_neigh_get_family(n) != AF_BRIDGE)
			return;
		ev.type = type == RTM_DELNEIGH ? NET_EV_FDB_DEL : NET_EV_FDB;
		ev.ifindex = rtnl_neigh_get_ifindex(n);
		ev.master = rtnl_neigh_get_master(n);
		net_lladdr(rtnl_neigh_get_lladdr(n), ev.mac);
		break;
	}
	default:
		return;
	}
	nw->cb(&ev, nw->arg);
}

static int net_watch_msg(struct nl_msg *msg, void *arg)
{
	nl_msg_parse(msg, net_watch_obj, arg);
	return NL_OK;
}

struct net_watch *net_watch_new(net_watch_cb cb, void *arg)
{
	struct net_watch *nw = calloc(1, sizeof(*nw));
	int ret = -ENOMEM;

	if (!nw)
		goto err;
	nw->cb = cb;
	nw->arg = arg;
	nw->sk = nl_socket_alloc();
	if (!nw->sk)
		goto err;
	nl_socket_disable_seq_check(nw->sk);
	nl_socket_modify_cb(nw->sk, NL_CB_VALID, NL_CB_CUSTOM, net_watch_msg, nw);
	ret = nl_connect(nw->sk, NETLINK_ROUTE);
	if (ret < 0)
		goto err_nl;
	ret = nl_socket_set_buffer_size(nw->sk, NET_WATCH_RCVBUF, 0);
	if (ret < 0)
		goto err_nl;
	ret = nl_socket_add_memberships(nw->sk, RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_TC, 0);
	if (ret < 0)
		goto err_nl;
	ret = nl_socket_set_nonblocking(nw->sk);
	if (ret < 0)
		goto err_nl;
	return nw;
err_nl:
	ret = net_err(ret);
err:
	net_watch_free(nw);
	errno = -ret;
	return NULL;
}

void net_watch_free(struct net_watch *nw)
{
	if (!nw)
		return;
	nl_socket_free(nw->sk);
	free(nw);
}

int net_watch_fd(const struct net_watch *nw)
{
	return nl_socket_get_fd(nw->sk);
}

/* Every link as NET_EV_LINK, from a fresh dump. */
int net_watch_links(struct net_watch *nw)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_cache *cache = NULL;
	struct nl_object *o;
	int ret = -ENOMEM;

	if (!sk)
		return ret;
	ret = nl_connect(sk, NETLINK_ROUTE);
	if (!ret)
		ret = rtnl_link_alloc_cache(sk, AF_UNSPEC, &cache);
	if (ret < 0) {
		ret = net_err(ret);
		goto out;
	}
	for (o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct net_event ev = { 0 };

		net_ev_link((struct rtnl_link *)o, false, &ev);
		nw->cb(&ev, nw->arg);
	}
	ret = 0;
out:
	nl_cache_free(cache);
	nl_socket_free(sk);
	return ret;
}

int net_watch_recv(struct net_watch *nw)
{
	struct net_event ev = { .type = NET_EV_RESYNC };
	int ret;

	for (;;) {
		ret = nl_recvmsgs_default(nw->sk);
		if (ret >= 0)
			continue;
		if (ret == -NLE_AGAIN)
			return 0;
		if (ret == -NLE_NOMEM || ret == -NLE_MSG_OVERFLOW) {
			/* ENOBUFS: events were lost. */
			log_warn("netlink: events lost (ENOBUFS); resyncing");
			nw->cb(&ev, nw->arg);
			return net_watch_links(nw);
		}
		return net_err(ret);
	}
}

/* ---- one-shot queries --------------------------------------------------- */

static struct nl_sock *net_sock(void)
{
	struct nl_sock *sk = nl_socket_alloc();

	if (sk && nl_connect(sk, NETLINK_ROUTE) < 0) {
		nl_socket_free(sk);
		sk = NULL;
	}
	return sk;
}

static int net_sysfs_u64(const char *dev, const char *attr, uint64_t *out)
{
	char path[128], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/sys/class/net/%s/%s", dev, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n ? -errno : -EIO;
	buf[n] = 0;
	*out = strtoull(buf, NULL, 0);
	return 0;
}

int net_bridge_info(const char *name, struct net_bridge *out)
{
	struct nl_sock *sk = net_sock();
	struct rtnl_link *l = NULL;
	uint64_t v;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!sk)
		return -ENOMEM;
	ret = rtnl_link_get_kernel(sk, 0, name, &l);
	if (ret < 0) {
		ret = net_err(ret);
		goto out;
	}
	out->ifindex = rtnl_link_get_ifindex(l);
	out->up = (rtnl_link_get_flags(l) & IFF_UP) &&
		  rtnl_link_get_operstate(l) != IF_OPER_DOWN;
	out->mtu = rtnl_link_get_mtu(l);
	out->is_bridge = !strcmp(rtnl_link_get_type(l) ?: "", "bridge");
	/* libnl 3.7 has no getters for a bridge's own STP settings: sysfs. */
	if (out->is_bridge) {
		if (!net_sysfs_u64(name, "bridge/stp_state", &v))
			out->stp = v != 0;
		if (!net_sysfs_u64(name, "bridge/forward_delay", &v))
			out->forward_delay_cs = v;
	}
	ret = 0;
out:
	rtnl_link_put(l);
	nl_socket_free(sk);
	return ret;
}

int net_link_mtu(const char *name, unsigned int *mtu)
{
	struct net_bridge b;
	int ret = net_bridge_info(name, &b);

	if (!ret)
		*mtu = b.mtu;
	return ret;
}

struct net_fdb_find {
	const uint8_t *mac;
	int master;
	int port; /* out: the port the MAC is on, 0 = none */
};

static void net_fdb_obj(struct nl_object *obj, void *arg)
{
	struct rtnl_neigh *n = (struct rtnl_neigh *)obj;
	struct net_fdb_find *f = arg;
	uint8_t mac[6];

	if (nl_object_get_msgtype(obj) != RTM_NEWNEIGH || rtnl_neigh_get_family(n) != AF_BRIDGE)
		return;
	net_lladdr(rtnl_neigh_get_lladdr(n), mac);
	if (memcmp(mac, f->mac, 6) || rtnl_neigh_get_master(n) != f->master)
		return;
	/* The bridge's own entry for itself is on the bridge, not a port. */
	if (rtnl_neigh_get_ifindex(n) != f->master)
		f->port = rtnl_neigh_get_ifindex(n);
}

static int net_fdb_msg(struct nl_msg *msg, void *arg)
{
	nl_msg_parse(msg, net_fdb_obj, arg);
	return NL_OK;
}

int net_fdb_port(int bridge, const uint8_t mac[6], int *port)
{
	struct ndmsg ndm = { .ndm_family = AF_BRIDGE };
	struct net_fdb_find f = { .mac = mac, .master = bridge };
	struct nl_sock *sk = net_sock();
	int ret;

	if (!sk)
		return -ENOMEM;
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, net_fdb_msg, &f);
	ret = nl_send_simple(sk, RTM_GETNEIGH, NLM_F_DUMP, &ndm, sizeof(ndm));
	if (ret >= 0)
		ret = nl_recvmsgs_default(sk);
	nl_socket_free(sk);
	if (ret < 0)
		return net_err(ret);
	*port = f.port;
	return 0;
}

int net_fdb_set(int port, const uint8_t mac[6])
{
	struct nl_sock *sk = net_sock();
	struct rtnl_neigh *n = rtnl_neigh_alloc();
	struct nl_addr *a = nl_addr_build(AF_LLC, mac, 6);
	int ret = -ENOMEM;

	if (!sk || !n || !a)
		goto out;
	rtnl_neigh_set_family(n, AF_BRIDGE);
	rtnl_neigh_set_ifindex(n, port);
	rtnl_neigh_set_lladdr(n, a);
	/*
	 * Reachable, so it is learned and ages like any other; libnl's default
	 * (NUD_PERMANENT) would make a local entry that black-holes the guest.
	 */
	rtnl_neigh_set_state(n, NUD_REACHABLE);
	rtnl_neigh_set_flags(n, NTF_MASTER);
	ret = rtnl_neigh_add(sk, n, NLM_F_CREATE | NLM_F_REPLACE);
	ret = ret < 0 ? net_err(ret) : 0;
out:
	nl_addr_put(a);
	rtnl_neigh_put(n);
	nl_socket_free(sk);
	return ret;
}
