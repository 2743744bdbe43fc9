// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * config.c - /etc/ferry/ferryd.conf: "key = value" lines, '#' comments.
 * Unknown keys and bad values are errors naming file:line.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define CONF_LINE_MAX 4096 /* bytes, newline included */

void conf_defaults(struct ferryd_conf *c)
{
	memset(c, 0, sizeof(*c));
	if (gethostname(c->host, sizeof(c->host)) < 0)
		snprintf(c->host, sizeof(c->host), "localhost");
	c->listen.port = FERRYD_DEFAULT_PORT;
	c->mover_listen.port = FERRYD_DEFAULT_PORT + 1;
	snprintf(c->libvirt_uri, sizeof(c->libvirt_uri), "qemu:///system");
	snprintf(c->state_dir, sizeof(c->state_dir), "/var/lib/ferry");
	snprintf(c->control_socket, sizeof(c->control_socket), "%s", FERRYD_DEFAULT_SOCKET);
	snprintf(c->cluster_key_file, sizeof(c->cluster_key_file), "/etc/ferry/cluster.key");
	snprintf(c->instances_dir, sizeof(c->instances_dir), "/var/lib/libvirt/images");
	snprintf(c->pin_dir, sizeof(c->pin_dir), "/sys/fs/bpf/ferry");
	snprintf(c->mover_compress, sizeof(c->mover_compress), "auto");
	c->shutdown_timeout_s = 60;
	c->shutdown_retries = 2;
	c->precopy_max_rounds = 8;
	c->precopy_target_bytes = 32 * MIB;
	c->precopy_max_s = 600;
	c->peer_retry_s = 60;
	c->track_granularity = 64 * 1024;
	c->reserved_host_memory_mib = 256;
	snprintf(c->live_uri, sizeof(c->live_uri), "qemu+tcp://%%s/system");
	c->live_max_concurrent = 1;
	c->live_max_downtime_ms = 500;
	c->live_stall_s = 30;
	c->live_completion_timeout_s = 800;
	c->net_watch = true;
	c->net_announce_wait_ms = 1000;
	c->etcd_timeout_ms = 1000;
	c->cluster_lease_ttl_s = 10;
	c->self_fence = true;
	c->evacuate_grace_s = 10;
	c->evacuate_lease_wait_s = 300;
}

static int conf_bool(const char *v, bool *out)
{
	if (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

static int conf_str(const char *v, char *dst, size_t len)
{
	if (strlen(v) >= len)
		return -ENAMETOOLONG;
	strcpy(dst, v);
	return 0;
}

/* "h2=198.18.0.2:4710, h3=198.18.0.3" */
static int conf_peers(struct ferryd_conf *c, const char *v)
{
	char *dup = strdup(v), *tok, *save = NULL;
	int ret = 0;

	if (!dup)
		return -ENOMEM;
	for (tok = strtok_r(dup, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		char *eq = strchr(tok, '=');
		struct peer_conf *p;

		if (!eq || eq == tok || c->npeers == FERRYD_MAX_PEERS) {
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		p = &c->peers[c->npeers];
		if (conf_str(tok, p->name, sizeof(p->name)) ||
		    net_addr_parse(eq + 1, FERRYD_DEFAULT_PORT, &p->addr) || !p->addr.host[0]) {
			ret = -EINVAL;
			break;
		}
		c->npeers++;
	}
	free(dup);
	return ret;
}

/* etcd's client URLs, "http://a:2379, http://b:2379" (empty: no etcd). */
static int conf_etcd(const char *v, char *out, size_t len)
{
	char *dup = strdup(v), *tok, *save = NULL;
	int ret = 0, n = 0;

	if (!dup)
		return -ENOMEM;
	for (tok = strtok_r(dup, ", ", &save); tok && !ret; tok = strtok_r(NULL, ", ", &save)) {
		if (strncmp(tok, "http://", 7) && strncmp(tok, "https://", 8))
			ret = -EINVAL;
		n++;
	}
	free(dup);
	if (!ret && n > 8)
		ret = -E2BIG;
	return ret ? ret : conf_str(v, out, len);
}

static int conf_set(struct ferryd_conf *c, const char *k, const char *v)
{
	uint64_t u;
	int ret;

	if (!strcmp(k, "host"))
		return conf_str(v, c->host, sizeof(c->host));
	if (!strcmp(k, "listen"))
		return net_addr_parse(v, FERRYD_DEFAULT_PORT, &c->listen);
	if (!strcmp(k, "mover_listen"))
		return net_addr_parse(v, FERRYD_DEFAULT_PORT + 1, &c->mover_listen);
	if (!strcmp(k, "peers"))
		return conf_peers(c, v);
	if (!strcmp(k, "libvirt_uri"))
		return conf_str(v, c->libvirt_uri, sizeof(c->libvirt_uri));
	if (!strcmp(k, "state_dir"))
		return conf_str(v, c->state_dir, sizeof(c->state_dir));
	if (!strcmp(k, "control_socket"))
		return conf_str(v, c->control_socket, sizeof(c->control_socket));
	if (!strcmp(k, "cluster_key_file"))
		return conf_str(v, c->cluster_key_file, sizeof(c->cluster_key_file));
	if (!strcmp(k, "instances_dir"))
		return conf_str(v, c->instances_dir, sizeof(c->instances_dir));
	if (!strcmp(k, "lvm_vg"))
		return conf_str(v, c->lvm_vg, sizeof(c->lvm_vg));
	if (!strcmp(k, "pin_dir"))
		return conf_str(v, c->pin_dir, sizeof(c->pin_dir));
	if (!strcmp(k, "allow_same_host"))
		return conf_bool(v, &c->allow_same_host);
	if (!strcmp(k, "resize_confirm_window_s"))
		return parse_int(v, 0, 7 * 24 * 3600, &c->resize_confirm_window_s);
	if (!strcmp(k, "shutdown_timeout_s"))
		return parse_int(v, 1, 3600, &c->shutdown_timeout_s);
	if (!strcmp(k, "shutdown_retries"))
		return parse_int(v, 0, 100, &c->shutdown_retries);
	if (!strcmp(k, "precopy_max_rounds"))
		return parse_int(v, 0, 1000, &c->precopy_max_rounds);
	if (!strcmp(k, "precopy_target_bytes"))
		return parse_size(v, &c->precopy_target_bytes);
	if (!strcmp(k, "precopy_max_s"))
		return parse_int(v, 1, 86400, &c->precopy_max_s);
	if (!strcmp(k, "peer_retry_s"))
		return parse_int(v, 0, 3600, &c->peer_retry_s);
	if (!strcmp(k, "track_granularity")) {
		ret = parse_size(v, &u);
		if (ret)
			return ret;
		if (u < 4096 || u > MIB || (u & (u - 1)))
			return -ERANGE;
		c->track_granularity = (uint32_t)u;
		return 0;
	}
	if (!strcmp(k, "mover_connections"))
		return parse_int(v, 0, 64, &c->mover_connections);
	if (!strcmp(k, "mover_compress"))
		return conf_str(v, c->mover_compress, sizeof(c->mover_compress));
	if (!strcmp(k, "mover_bwlimit"))
		return parse_rate(v, &c->mover_bwlimit_bps);
	if (!strcmp(k, "reserved_host_memory_mib"))
		return parse_u64(v, &c->reserved_host_memory_mib);
	if (!strcmp(k, "live_uri")) {
		const char *pct = strchr(v, '%');

		/* exactly one %s, nothing else to format */
		if (!pct || pct[1] != 's' || strchr(pct + 2, '%'))
			return -EINVAL;
		return conf_str(v, c->live_uri, sizeof(c->live_uri));
	}
	if (!strcmp(k, "live_max_concurrent"))
		return parse_int(v, 1, 64, &c->live_max_concurrent);
	if (!strcmp(k, "live_max_downtime_ms"))
		return parse_int(v, 1, 60000, &c->live_max_downtime_ms);
	if (!strcmp(k, "live_permit_auto_converge"))
		return conf_bool(v, &c->live_permit_auto_converge);
	if (!strcmp(k, "live_permit_post_copy"))
		return conf_bool(v, &c->live_permit_post_copy);
	if (!strcmp(k, "live_timeout_action")) {
		if (strcmp(v, "abort") && strcmp(v, "force-complete"))
			return -EINVAL;
		c->live_timeout_force = !strcmp(v, "force-complete");
		return 0;
	}
	if (!strcmp(k, "live_stall_s"))
		return parse_int(v, 1, 86400, &c->live_stall_s);
	if (!strcmp(k, "live_completion_timeout_s"))
		return parse_int(v, 1, 86400, &c->live_completion_timeout_s);
	if (!strcmp(k, "net_watch"))
		return conf_bool(v, &c->net_watch);
	if (!strcmp(k, "net_announce_wait_ms"))
		return parse_int(v, 10, 60000, &c->net_announce_wait_ms);
	if (!strcmp(k, "test_drop_announce"))
		return conf_bool(v, &c->test_drop_announce);
	if (!strcmp(k, "etcd"))
		return conf_etcd(v, c->etcd, sizeof(c->etcd));
	if (!strcmp(k, "etcd_timeout_ms"))
		return parse_int(v, 50, 60000, &c->etcd_timeout_ms);
	if (!strcmp(k, "cluster_lease_ttl_s"))
		return parse_int(v, 2, 3600, &c->cluster_lease_ttl_s);
	if (!strcmp(k, "self_fence"))
		return conf_bool(v, &c->self_fence);
	if (!strcmp(k, "evacuate_grace_s"))
		return parse_int(v, 0, 3600, &c->evacuate_grace_s);
	if (!strcmp(k, "evacuate_lease_wait_s"))
		return parse_int(v, 0, 3600, &c->evacuate_lease_wait_s);
	return -ENOENT;
}

static char *conf_trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int conf_load(struct ferryd_conf *c, const char *path)
{
	int lineno = 0, ret = 0;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		log_err("%s: %s", path, strerror(errno));
		return ret;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		char *k, *v, *eq, *hash;

		lineno++;
		/* Whole lines only: neither a line's tail nor what follows a NUL is a line. */
		if (n > CONF_LINE_MAX) {
			log_err("%s:%d: line longer than %d bytes", path, lineno, CONF_LINE_MAX);
			ret = -EINVAL;
			break;
		}
		if ((size_t)n != strlen(line)) {
			log_err("%s:%d: NUL byte in line", path, lineno);
			ret = -EINVAL;
			break;
		}
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		k = conf_trim(line);
		if (!*k)
			continue;
		eq = strchr(k, '=');
		if (!eq) {
			log_err("%s:%d: expected 'key = value'", path, lineno);
			ret = -EINVAL;
			break;
		}
		*eq = '\0';
		k = conf_trim(k);
		v = conf_trim(eq + 1);
		ret = conf_set(c, k, v);
		if (ret == -ENOENT) {
			log_err("%s:%d: unknown key '%s'", path, lineno, k);
			ret = -EINVAL;
			break;
		}
		if (ret) {
			log_err("%s:%d: bad value for '%s': '%s'", path, lineno, k, v);
			ret = -EINVAL;
			break;
		}
	}
	free(line);
	fclose(f);
	if (!ret && !c->mover_listen.host[0])
		snprintf(c->mover_listen.host, sizeof(c->mover_listen.host), "%s", c->listen.host);
	return ret;
}

const struct peer_conf *conf_peer(const struct ferryd_conf *c, const char *name)
{
	int i;

	for (i = 0; i < c->npeers; i++)
		if (!strcmp(c->peers[i].name, name))
			return &c->peers[i];
	return NULL;
}

void conf_dump(const struct ferryd_conf *c)
{
	char buf[300];
	int i;

	out_object_open(NULL);
	out_str("host", "host = %s\n", c->host);
	out_str("listen", "listen = %s\n", net_addr_str(&c->listen, buf, sizeof(buf)));
	out_str("mover_listen", "mover_listen = %s\n",
		net_addr_str(&c->mover_listen, buf, sizeof(buf)));
	out_plain("peers =");
	out_array_open("peers");
	for (i = 0; i < c->npeers; i++) {
		out_object_open(NULL);
		out_plain("%s%s=", i ? ", " : " ", c->peers[i].name);
		out_str("name", NULL, c->peers[i].name);
		out_str("addr", "%s", net_addr_str(&c->peers[i].addr, buf, sizeof(buf)));
		out_object_close();
	}
	out_array_close();
	out_plain("\n");
	out_str("libvirt_uri", "libvirt_uri = %s\n", c->libvirt_uri);
	out_str("state_dir", "state_dir = %s\n", c->state_dir);
	out_str("control_socket", "control_socket = %s\n", c->control_socket);
	out_str("cluster_key_file", "cluster_key_file = %s\n", c->cluster_key_file);
	out_str("instances_dir", "instances_dir = %s\n", c->instances_dir);
	out_str("lvm_vg", "lvm_vg = %s\n", c->lvm_vg);
	out_str("pin_dir", "pin_dir = %s\n", c->pin_dir);
	out_bool("allow_same_host", "allow_same_host = %s\n", c->allow_same_host);
	out_s64("resize_confirm_window_s", "resize_confirm_window_s = %" PRId64 "\n",
		c->resize_confirm_window_s);
	out_s64("shutdown_timeout_s", "shutdown_timeout_s = %" PRId64 "\n", c->shutdown_timeout_s);
	out_s64("shutdown_retries", "shutdown_retries = %" PRId64 "\n", c->shutdown_retries);
	out_s64("precopy_max_rounds", "precopy_max_rounds = %" PRId64 "\n", c->precopy_max_rounds);
	out_u64("precopy_target_bytes", "precopy_target_bytes = %" PRIu64 "\n",
		c->precopy_target_bytes);
	out_s64("precopy_max_s", "precopy_max_s = %" PRId64 "\n", c->precopy_max_s);
	out_s64("peer_retry_s", "peer_retry_s = %" PRId64 "\n", c->peer_retry_s);
	out_u64("track_granularity", "track_granularity = %" PRIu64 "\n", c->track_granularity);
	out_s64("mover_connections", "mover_connections = %" PRId64 "\n", c->mover_connections);
	out_str("mover_compress", "mover_compress = %s\n", c->mover_compress);
	out_u64("mover_bwlimit_bps", "mover_bwlimit = %" PRIu64 "\n", c->mover_bwlimit_bps);
	out_u64("reserved_host_memory_mib", "reserved_host_memory_mib = %" PRIu64 "\n",
		c->reserved_host_memory_mib);
	out_str("live_uri", "live_uri = %s\n", c->live_uri);
	out_s64("live_max_concurrent", "live_max_concurrent = %" PRId64 "\n",
		c->live_max_concurrent);
	out_s64("live_max_downtime_ms", "live_max_downtime_ms = %" PRId64 "\n",
		c->live_max_downtime_ms);
	out_bool("live_permit_auto_converge", "live_permit_auto_converge = %s\n",
		 c->live_permit_auto_converge);
	out_bool("live_permit_post_copy", "live_permit_post_copy = %s\n",
		 c->live_permit_post_copy);
	out_str("live_timeout_action", "live_timeout_action = %s\n",
		c->live_timeout_force ? "force-complete" : "abort");
	out_s64("live_stall_s", "live_stall_s = %" PRId64 "\n", c->live_stall_s);
	out_s64("live_completion_timeout_s", "live_completion_timeout_s = %" PRId64 "\n",
		c->live_completion_timeout_s);
	out_bool("net_watch", "net_watch = %s\n", c->net_watch);
	out_s64("net_announce_wait_ms", "net_announce_wait_ms = %" PRId64 "\n",
		c->net_announce_wait_ms);
	if (c->test_drop_announce)
		out_bool("test_drop_announce", "test_drop_announce = %s\n", c->test_drop_announce);
	out_str("etcd", "etcd = %s\n", c->etcd);
	out_s64("etcd_timeout_ms", "etcd_timeout_ms = %" PRId64 "\n", c->etcd_timeout_ms);
	out_s64("cluster_lease_ttl_s", "cluster_lease_ttl_s = %" PRId64 "\n",
		c->cluster_lease_ttl_s);
	out_bool("self_fence", "self_fence = %s\n", c->self_fence);
	out_s64("evacuate_grace_s", "evacuate_grace_s = %" PRId64 "\n", c->evacuate_grace_s);
	out_s64("evacuate_lease_wait_s", "evacuate_lease_wait_s = %" PRId64 "\n",
		c->evacuate_lease_wait_s);
	out_object_close();
}
