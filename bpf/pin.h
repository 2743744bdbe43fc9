/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pin.h - maps pinned by name under ferryd's pin dir, for every loader.
 */
#ifndef FERRY_BPF_PIN_H
#define FERRY_BPF_PIN_H

struct bpf_map;

/*
 * Before a skeleton's load: if PIN_DIR holds MAP's pin with another layout
 * (type, key or value size, entries, flags: another ferryd's), unlink it so
 * that the load pins a fresh map instead of failing on the old one.  WHO
 * names the loader in the warning.  0 or -errno.
 */
int bpf_pin_check(const struct bpf_map *map, const char *pin_dir, const char *who);

#endif /* FERRY_BPF_PIN_H */
