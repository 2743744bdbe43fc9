// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * domxml.c - reading a libvirt domain definition (name, flavor, disks, ferry's
 * metadata) and writing the destination's version of it (new flavor, disks
 * at their destination paths).  libxml2 with XPath; nothing else in ferryd
 * touches XML.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>

#include "daemon/storage/storage.h"

#define FERRY_XMLNS "https://ferry.dev/xmlns/instance/1"

static xmlDocPtr domxml_read(const char *xml, xmlXPathContextPtr *ctx)
{
	xmlDocPtr doc;

	doc = xmlReadMemory(xml, (int)strlen(xml), "domain.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (!doc)
		return NULL;
	*ctx = xmlXPathNewContext(doc);
	if (!*ctx) {
		xmlFreeDoc(doc);
		return NULL;
	}
	xmlXPathRegisterNs(*ctx, BAD_CAST "ferry", BAD_CAST FERRY_XMLNS);
	return doc;
}

/* The document as text (malloc'd, NULL + errno), freeing it and @ctx. */
static char *domxml_dump(xmlDocPtr doc, xmlXPathContextPtr ctx)
{
	xmlChar *out = NULL;
	char *res = NULL;
	int len;

	xmlDocDumpFormatMemory(doc, &out, &len, 1);
	if (out)
		res = strdup((const char *)out);
	if (!res)
		errno = ENOMEM;
	xmlFree(out);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return res;
}

static xmlXPathObjectPtr domxml_nodes(xmlXPathContextPtr ctx, const char *expr)
{
	xmlXPathObjectPtr r = xmlXPathEvalExpression(BAD_CAST expr, ctx);

	if (r && (!r->nodesetval || !r->nodesetval->nodeNr)) {
		xmlXPathFreeObject(r);
		return NULL;
	}
	return r;
}

/* @s into buf; -ENAMETOOLONG (buf "") if it does not fit: never cut short. */
static int domxml_copy(const xmlChar *s, char *buf, size_t len)
{
	buf[0] = '\0';
	if (!s)
		return 0;
	if (strlen((const char *)s) >= len)
		return -ENAMETOOLONG;
	strcpy(buf, (const char *)s);
	return 0;
}

/* Text of the first node matching @expr into buf ("" if none). */
static int domxml_text(xmlXPathContextPtr ctx, const char *expr, char *buf, size_t len)
{
	xmlXPathObjectPtr r = domxml_nodes(ctx, expr);
	xmlChar *s;
	int ret;

	buf[0] = '\0';
	if (!r)
		return 0;
	s = xmlNodeGetContent(r->nodesetval->nodeTab[0]);
	ret = domxml_copy(s, buf, len);
	xmlFree(s);
	xmlXPathFreeObject(r);
	return ret;
}

/* Value of a string-valued XPath expression ("" if none). */
static void domxml_string(xmlXPathContextPtr ctx, const char *expr, char *buf, size_t len)
{
	xmlXPathObjectPtr r = xmlXPathEvalExpression(BAD_CAST expr, ctx);

	buf[0] = '\0';
	if (r && r->type == XPATH_STRING && r->stringval)
		snprintf(buf, len, "%s", (const char *)r->stringval);
	xmlXPathFreeObject(r);
}

static int domxml_prop(xmlNodePtr n, const char *name, char *buf, size_t len)
{
	xmlChar *s = xmlGetProp(n, BAD_CAST name);
	int ret = domxml_copy(s, buf, len);

	xmlFree(s);
	return ret;
}

static xmlNodePtr domxml_child(xmlNodePtr n, const char *name)
{
	for (n = n->children; n; n = n->next)
		if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, name))
			return n;
	return NULL;
}

/* A memory size in KiB; 0 (refused) when it overflows. */
static uint64_t domxml_kib(const char *val, const char *unit)
{
	uint64_t v, mul = 1;

	errno = 0;
	v = strtoull(val, NULL, 10);
	if (errno)
		return 0;
	if (!strcasecmp(unit, "MiB") || !strcasecmp(unit, "M"))
		mul = 1024;
	else if (!strcasecmp(unit, "GiB") || !strcasecmp(unit, "G"))
		mul = 1024 * 1024;
	else if (!strcasecmp(unit, "b") || !strcasecmp(unit, "bytes"))
		return v / 1024;
	return v > UINT64_MAX / mul ? 0 : v * mul;
}

/* A vCPU count; 0 (refused) unless 1..INT_MAX. */
static int domxml_count(const char *val)
{
	long v;

	errno = 0;
	v = strtol(val, NULL, 10);
	return errno || v < 1 || v > INT_MAX ? 0 : (int)v;
}

/* Targets that ferry's metadata marks as swap ("vdb vdc"). */
static void domxml_swaps(xmlXPathContextPtr ctx, char *buf, size_t len)
{
	xmlXPathObjectPtr r;
	int i;

	buf[0] = '\0';
	r = domxml_nodes(ctx, "/domain/metadata/ferry:instance//ferry:swap | "
			      "/domain/metadata/ferry:instance//ferry:disk[@role='swap']");
	if (!r)
		return;
	for (i = 0; i < r->nodesetval->nodeNr; i++) {
		char dev[32];

		domxml_prop(r->nodesetval->nodeTab[i], "dev", dev, sizeof(dev));
		if (!dev[0])
			domxml_prop(r->nodesetval->nodeTab[i], "target", dev, sizeof(dev));
		if (dev[0] && strlen(buf) + strlen(dev) + 2 < len) {
			strcat(buf, dev);
			strcat(buf, " ");
		}
	}
	xmlXPathFreeObject(r);
}

static bool word_in(const char *list, const char *w)
{
	size_t n = strlen(w);
	const char *p = list;

	while ((p = strstr(p, w))) {
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || !p[n]))
			return true;
		p += n;
	}
	return false;
}

/*
 * Does every <disk> (of any device) have its own target?  domxml_adapt
 * finds a disk by its target: with two on one target, both would be
 * pointed at the moved disk's destination.  libvirt refuses such a
 * definition too.
 */
static bool domxml_targets_unique(xmlXPathContextPtr ctx)
{
	xmlXPathObjectPtr r = domxml_nodes(ctx, "/domain/devices/disk");
	xmlChar **seen;
	bool ok = true;
	int i, j, n = 0;

	if (!r)
		return true;
	seen = calloc((size_t)r->nodesetval->nodeNr, sizeof(*seen));
	if (!seen) {
		xmlXPathFreeObject(r);
		return false;
	}
	for (i = 0; ok && i < r->nodesetval->nodeNr; i++) {
		xmlNodePtr t = domxml_child(r->nodesetval->nodeTab[i], "target");
		xmlChar *dev = t ? xmlGetProp(t, BAD_CAST "dev") : NULL;

		if (!dev)
			continue;
		for (j = 0; j < n; j++)
			if (xmlStrEqual(seen[j], dev))
				ok = false;
		seen[n++] = dev;
	}
	for (j = 0; j < n; j++)
		xmlFree(seen[j]);
	free(seen);
	xmlXPathFreeObject(r);
	return ok;
}

int domxml_parse(const char *xml, struct domxml_info *info)
{
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr disks = NULL;
	char buf[64], unit[16], swaps[256];
	xmlDocPtr doc;
	int i, ret = 0, cut;

	memset(info, 0, sizeof(*info));
	doc = domxml_read(xml, &ctx);
	if (!doc)
		return -EINVAL;
	/* A name or path cut short would be another VM's or another file. */
	cut = domxml_text(ctx, "/domain/name", info->name, sizeof(info->name)) |
	      domxml_text(ctx, "/domain/uuid", info->uuid, sizeof(info->uuid));
	if (cut) {
		ret = -ENAMETOOLONG;
		goto out;
	}
	domxml_text(ctx, "/domain/vcpu", buf, sizeof(buf));
	info->vcpus = domxml_count(buf);
	domxml_text(ctx, "/domain/memory", buf, sizeof(buf));
	domxml_string(ctx, "string(/domain/memory/@unit)", unit, sizeof(unit));
	info->memory_mib = domxml_kib(buf, unit) / 1024;
	if (!info->name[0] || info->vcpus <= 0 || !info->memory_mib) {
		ret = -EINVAL;
		goto out;
	}
	if (!domxml_targets_unique(ctx)) {
		ret = -EINVAL;
		goto out;
	}
	domxml_swaps(ctx, swaps, sizeof(swaps));

	disks = domxml_nodes(ctx, "/domain/devices/disk[@device='disk' or not(@device)]");
	for (i = 0; disks && i < disks->nodesetval->nodeNr; i++) {
		xmlNodePtr n = disks->nodesetval->nodeTab[i], c;
		struct domxml_disk *d;

		cut = 0;
		if (info->ndisks == FERRYD_MAX_DISKS) {
			ret = -E2BIG;
			goto out;
		}
		d = &info->disks[info->ndisks];
		domxml_prop(n, "type", d->type, sizeof(d->type));
		c = domxml_child(n, "driver");
		if (c)
			cut |= domxml_prop(c, "type", d->format, sizeof(d->format));
		if (!d->format[0])
			snprintf(d->format, sizeof(d->format), "raw");
		c = domxml_child(n, "source");
		if (c)
			cut |= domxml_prop(c, !strcmp(d->type, "block") ? "dev" : "file", d->path,
					   sizeof(d->path));
		c = domxml_child(n, "target");
		if (c)
			cut |= domxml_prop(c, "dev", d->target, sizeof(d->target));
		d->readonly = domxml_child(n, "readonly") != NULL;
		d->swap = d->target[0] && word_in(swaps, d->target);
		if (cut) {
			ret = -ENAMETOOLONG;
			goto out;
		}
		/* Network disks, empty drives: not ferry's to move. */
		if ((strcmp(d->type, "file") && strcmp(d->type, "block")) || !d->path[0] ||
		    !d->target[0]) {
			memset(d, 0, sizeof(*d));
			continue;
		}
		info->ndisks++;
	}
out:
	if (disks)
		xmlXPathFreeObject(disks);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return ret;
}

static const struct mig_disk *adapt_disk(const struct mig_disk *disks, int n, const char *target)
{
	int i;

	for (i = 0; i < n; i++)
		if (!strcmp(disks[i].target, target))
			return &disks[i];
	return NULL;
}

static void adapt_set_text(xmlXPathContextPtr ctx, const char *expr, const char *text,
			   const char *unit)
{
	xmlXPathObjectPtr r = domxml_nodes(ctx, expr);
	int i;

	if (!r)
		return;
	for (i = 0; i < r->nodesetval->nodeNr; i++) {
		xmlNodePtr n = r->nodesetval->nodeTab[i];

		xmlNodeSetContent(n, BAD_CAST text);
		if (unit)
			xmlSetProp(n, BAD_CAST "unit", BAD_CAST unit);
	}
	xmlXPathFreeObject(r);
}

char *domxml_adapt(const char *xml, const struct flavor *fl, const struct mig_disk *disks,
		   int ndisks)
{
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr r = NULL;
	char buf[32];
	xmlDocPtr doc;
	int i;

	doc = domxml_read(xml, &ctx);
	if (!doc) {
		errno = EINVAL;
		return NULL;
	}
	if (fl->memory_mib) {
		snprintf(buf, sizeof(buf), "%" PRIu64, fl->memory_mib * 1024);
		adapt_set_text(ctx, "/domain/memory", buf, "KiB");
		adapt_set_text(ctx, "/domain/currentMemory", buf, "KiB");
	}
	if (fl->vcpus) {
		r = domxml_nodes(ctx, "/domain/vcpu");
		snprintf(buf, sizeof(buf), "%d", fl->vcpus);
		if (r) {
			xmlNodeSetContent(r->nodesetval->nodeTab[0], BAD_CAST buf);
			xmlUnsetProp(r->nodesetval->nodeTab[0], BAD_CAST "current");
			xmlXPathFreeObject(r);
		}
	}
	r = domxml_nodes(ctx, "/domain/devices/disk");
	for (i = 0; r && i < r->nodesetval->nodeNr; i++) {
		xmlNodePtr n = r->nodesetval->nodeTab[i], t, s;
		const struct mig_disk *d;
		char target[32];
		bool block;

		t = domxml_child(n, "target");
		if (!t)
			continue;
		domxml_prop(t, "dev", target, sizeof(target));
		d = adapt_disk(disks, ndisks, target);
		if (!d || !d->dst_path[0])
			continue;
		block = disk_has(d, DISK_CAP_BLOCK);
		xmlSetProp(n, BAD_CAST "type", BAD_CAST(block ? "block" : "file"));
		s = domxml_child(n, "source");
		if (!s)
			s = xmlNewChild(n, NULL, BAD_CAST "source", NULL);
		xmlUnsetProp(s, BAD_CAST "file");
		xmlUnsetProp(s, BAD_CAST "dev");
		xmlSetProp(s, BAD_CAST(block ? "dev" : "file"), BAD_CAST d->dst_path);
	}
	if (r)
		xmlXPathFreeObject(r);
	return domxml_dump(doc, ctx);
}

char *domxml_rename(const char *xml, const char *name)
{
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr r;
	xmlDocPtr doc;
	int i;

	doc = domxml_read(xml, &ctx);
	if (!doc) {
		errno = EINVAL;
		return NULL;
	}
	xmlXPathRegisterNs(ctx, BAD_CAST "fc", BAD_CAST DOMXML_CLUSTER_NS);
	adapt_set_text(ctx, "/domain/name", name, NULL);
	/* A new VM: libvirt gives it a UUID, the cluster a record of its own. */
	r = domxml_nodes(ctx, "/domain/uuid | /domain/metadata/fc:owner");
	for (i = 0; r && i < r->nodesetval->nodeNr; i++) {
		xmlUnlinkNode(r->nodesetval->nodeTab[i]);
		xmlFreeNode(r->nodesetval->nodeTab[i]);
	}
	if (r)
		xmlXPathFreeObject(r);
	return domxml_dump(doc, ctx);
}

char *domxml_cpu(const char *xml, char *virttype, size_t len)
{
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr r = NULL;
	xmlBufferPtr buf = NULL;
	char *out = NULL;
	xmlDocPtr doc;

	errno = EINVAL;
	doc = domxml_read(xml, &ctx);
	if (!doc)
		return NULL;
	domxml_string(ctx, "string(/domain/@type)", virttype, len);
	r = domxml_nodes(ctx, "/domain/cpu");
	if (!r) {
		errno = ENOENT;
		goto out;
	}
	buf = xmlBufferCreate();
	if (!buf || xmlNodeDump(buf, doc, r->nodesetval->nodeTab[0], 0, 0) < 0) {
		errno = ENOMEM;
		goto out;
	}
	out = strdup((const char *)xmlBufferContent(buf));
out:
	if (buf)
		xmlBufferFree(buf);
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return out;
}

int domxml_nics(const char *xml, struct domxml_nic *nics, int max)
{
	xmlXPathContextPtr ctx = NULL;
	xmlXPathObjectPtr r;
	char mac[32];
	xmlDocPtr doc;
	int i, n = 0;

	doc = domxml_read(xml, &ctx);
	if (!doc)
		return -EINVAL;
	r = domxml_nodes(ctx, "/domain/devices/interface[@type='bridge']");
	for (i = 0; r && i < r->nodesetval->nodeNr && n < max; i++) {
		xmlNodePtr in = r->nodesetval->nodeTab[i], c;
		struct domxml_nic *nic = &nics[n];

		memset(nic, 0, sizeof(*nic));
		c = domxml_child(in, "mac");
		if (!c || domxml_prop(c, "address", mac, sizeof(mac)) ||
		    parse_mac(mac, nic->mac))
			continue;
		c = domxml_child(in, "source");
		if (!c || domxml_prop(c, "bridge", nic->bridge, sizeof(nic->bridge)) ||
		    !nic->bridge[0])
			continue;
		c = domxml_child(in, "target");
		if (c)
			domxml_prop(c, "dev", nic->tap, sizeof(nic->tap));
		n++;
	}
	xmlXPathFreeObject(r);
	xmlXPathFreeContext(ctx);
	xmlFreeDoc(doc);
	return n;
}
