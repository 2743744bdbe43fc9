// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty-oracle - compare what the dirty tracker drained with an independent
 * record of the writes: fio's write_iolog files (versions 2 and 3) or the
 * map of a QEMU dirty bitmap as `nbdinfo --map` prints it.
 *
 * Usage: dirty-oracle -g BYTES -d DRAINED [-s SHIFT] [--nbd-map] [--allow-extra] LOG...
 *
 * -s SHIFT: the log's offsets are SHIFT bytes beyond the tracked device's
 * (fio wrote the whole disk, a partition starting at SHIFT was tracked);
 * writes outside the tracked device are ignored.
 *
 * DRAINED holds the JSON lines dirty-drain printed (every drain is merged).
 * Prints one JSON object: writes, oracle_blocks, drained_blocks, missed,
 * extra, rescan_needed, and the first missed blocks.  Exits 0 when nothing
 * was missed and (unless --allow-extra) nothing extra was drained, 1 when
 * the sets differ, 2 on bad input.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common.h"

struct set {
	uint64_t *w;
	uint64_t nwords;
};

static int set_add_range(struct set *s, uint64_t gran, uint64_t off, uint64_t len)
{
	uint64_t b, first, last;

	if (!len)
		return 0;
	first = off / gran;
	last = (off + len - 1) / gran;
	if (last / 64 >= s->nwords) {
		uint64_t n = MAX(last / 64 + 1, s->nwords * 2);
		uint64_t *w = realloc(s->w, n * sizeof(*w));

		if (!w)
			return -ENOMEM;
		memset(w + s->nwords, 0, (n - s->nwords) * sizeof(*w));
		s->w = w;
		s->nwords = n;
	}
	for (b = first; b <= last; b++)
		s->w[b / 64] |= 1ULL << (b % 64);
	return 0;
}

static bool set_test(const struct set *s, uint64_t b)
{
	return b / 64 < s->nwords && (s->w[b / 64] >> (b % 64)) & 1;
}

static uint64_t set_count(const struct set *s)
{
	uint64_t i, n = 0;

	for (i = 0; i < s->nwords; i++)
		n += (uint64_t)__builtin_popcountll(s->w[i]);
	return n;
}

/* fio iolog: "[time ]file action [offset length]". */
static uint64_t shift_bytes;

static int read_iolog(const char *path, uint64_t gran, struct set *s, uint64_t *writes)
{
	char line[4096], f1[2048], f2[2048], f3[64];
	unsigned long long a, b;
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f) {
		fprintf(stderr, "dirty-oracle: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		const char *act;
		unsigned long long off, len;
		int n = sscanf(line, "%2047s %2047s %63s %llu %llu", f1, f2, f3, &a, &b);

		if (!strncmp(line, "fio version", 11))
			continue;
		if (n == 5) { /* v3 with a timestamp */
			act = f3;
			off = a;
			len = b;
		} else if (sscanf(line, "%2047s %63s %llu %llu", f1, f3, &a, &b) == 4) {
			act = f3;
			off = a;
			len = b;
		} else {
			continue; /* add, open, close */
		}
		if (strcmp(act, "write") && strcmp(act, "trim"))
			continue;
		if (off + len <= shift_bytes)
			continue;
		if (off < shift_bytes) {
			len -= shift_bytes - off;
			off = shift_bytes;
		}
		off -= shift_bytes;
		(*writes)++;
		ret = set_add_range(s, gran, off, len);
		if (ret)
			break;
	}
	fclose(f);
	return ret;
}

/* nbdinfo --map: "offset length type description"; type bit 0 set = dirty. */
static int read_nbd_map(const char *path, uint64_t gran, struct set *s, uint64_t *writes)
{
	char line[512];
	unsigned long long off, len;
	unsigned int type;
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f) {
		fprintf(stderr, "dirty-oracle: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llu %llu %u", &off, &len, &type) != 3 || !(type & 1))
			continue;
		(*writes)++;
		ret = set_add_range(s, gran, off, len);
		if (ret)
			break;
	}
	fclose(f);
	return ret;
}

static int read_drained(const char *path, uint64_t gran, struct set *s, bool *rescan)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f) {
		fprintf(stderr, "dirty-oracle: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	while (getline(&line, &cap, f) > 0) {
		struct json_object *o = json_tokener_parse(line), *r, *v;
		size_t i;

		if (!o)
			continue;
		if (json_object_object_get_ex(o, "rescan_needed", &v) && json_object_get_boolean(v))
			*rescan = true;
		if (json_object_object_get_ex(o, "granularity_bytes", &v) &&
		    (uint64_t)json_object_get_int64(v) != gran) {
			fprintf(stderr,
				"dirty-oracle: %s: drained at granularity %" PRId64 ", not %" PRIu64
				"\n",
				path, json_object_get_int64(v), gran);
			ret = -EINVAL;
		}
		if (!ret && json_object_object_get_ex(o, "ranges", &r)) {
			for (i = 0; i < json_object_array_length(r); i++) {
				struct json_object *p = json_object_array_get_idx(r, i);

				ret = set_add_range(s, gran,
						    (uint64_t)json_object_get_int64(
							    json_object_array_get_idx(p, 0)),
						    (uint64_t)json_object_get_int64(
							    json_object_array_get_idx(p, 1)));
				if (ret)
					break;
			}
		}
		json_object_put(o);
		if (ret)
			break;
	}
	free(line);
	fclose(f);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "granularity", required_argument, NULL, 'g' },
		{ "drained", required_argument, NULL, 'd' },
		{ "nbd-map", no_argument, NULL, 'n' },
		{ "allow-extra", no_argument, NULL, 'x' },
		{ "shift", required_argument, NULL, 's' },
		{ NULL, 0, NULL, 0 },
	};
	struct set oracle = { 0 }, drained = { 0 };
	uint64_t gran = 0, writes = 0, missed = 0, extra = 0, b, n;
	const char *drained_path = NULL;
	bool nbd = false, allow_extra = false, rescan = false;
	int c, i, shown = 0;

	while ((c = getopt_long(argc, argv, "g:d:nxs:", lopts, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (parse_size(optarg, &gran) || !gran)
				goto usage;
			break;
		case 'd':
			drained_path = optarg;
			break;
		case 'n':
			nbd = true;
			break;
		case 'x':
			allow_extra = true;
			break;
		case 's':
			if (parse_size(optarg, &shift_bytes))
				goto usage;
			break;
		default:
			goto usage;
		}
	}
	if (!gran || !drained_path || optind >= argc)
		goto usage;
	for (i = optind; i < argc; i++)
		if ((nbd ? read_nbd_map : read_iolog)(argv[i], gran, &oracle, &writes))
			return 2;
	if (read_drained(drained_path, gran, &drained, &rescan))
		return 2;

	n = MAX(oracle.nwords, drained.nwords) * 64;
	printf("{\"writes\": %" PRIu64 ", \"oracle_blocks\": %" PRIu64
	       ", \"drained_blocks\": %" PRIu64 ", ",
	       writes, set_count(&oracle), set_count(&drained));
	printf("\"first_missed\": [");
	for (b = 0; b < n; b++) {
		bool o = set_test(&oracle, b), d = set_test(&drained, b);

		if (o && !d) {
			if (shown < 8)
				printf("%s%" PRIu64, shown ? ", " : "", b * gran);
			shown++;
			missed++;
		} else if (d && !o) {
			extra++;
		}
	}
	printf("], \"missed\": %" PRIu64 ", \"extra\": %" PRIu64 ", \"rescan_needed\": %s}\n",
	       missed, extra, rescan ? "true" : "false");
	free(oracle.w);
	free(drained.w);
	return missed || (extra && !allow_extra) ? 1 : 0;
usage:
	fprintf(stderr,
		"usage: dirty-oracle -g BYTES -d DRAINED [-s SHIFT] [--nbd-map] [--allow-extra] "
		"LOG...\n");
	return 2;
}
