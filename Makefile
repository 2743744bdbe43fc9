# SPDX-License-Identifier: GPL-2.0-or-later
#
# ferry - one plain Makefile.
#
#   make            build everything (incremental) into $(O)/
#   make check      install dependencies, build, run unit tests (plain and
#                   sanitized), a short fuzz run and every tests/*.sh once,
#                   ASAN_TESTS with the sanitized build (needs root)
#   make demo       install, build, bring up a lab, show ferry's main job
#   make bench      side-by-side benchmarks against the reference tools
#   make fuzz       longer libFuzzer runs of every network-input parser
#   make fuzz-long  FUZZ_RUNS (10^7) executions of each harness, not in CI
#   make check-asan only the sanitized part: unit tests, fuzz, ASAN_TESTS
#   make vmlinux    regenerate bpf/vmlinux.h from the running kernel
#   make clean      remove everything the build made
#
#   V=1 shows commands; WERROR=0 drops -Werror; O=dir moves the build.

O ?= build
V ?= 0
WERROR ?= 1
CC := gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config
ARCH := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.1.0)

# Libraries, resolved lazily so that `make check` can install them first.
pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1) 2>/dev/null)
pc_libs = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)
LIBS_JSON = $(call pc_libs,json-c)
LIBS_BPF = $(call pc_libs,libbpf)
LIBS_VIRT = $(call pc_libs,libvirt libvirt-qemu)
LIBS_ZSTD = $(call pc_libs,libzstd)
LIBS_XXHASH = $(call pc_libs,libxxhash)
LIBS_CRYPTO = $(call pc_libs,libcrypto)
LIBS_NL = $(call pc_libs,libnl-3.0 libnl-route-3.0)
LIBS_AIO = -laio
LIBS_CMOCKA = $(call pc_libs,cmocka)
LIBS_CURL = $(call pc_libs,libcurl)
PC_CFLAGS = $(call pc_cflags,json-c libbpf libvirt libzstd libnl-3.0 libnl-route-3.0)

WARN := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wno-unused-parameter -Wno-missing-field-initializers -Wno-format-truncation
ifeq ($(WERROR),1)
WARN += -Werror
endif

CFLAGS ?= -O2 -g
EXTRA_CFLAGS ?=
ALL_CFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) -D_GNU_SOURCE \
	-DFERRY_VERSION='"$(VERSION)"' -iquote . -iquote common -I$(O)/bpf $(PC_CFLAGS) -MMD -MP
LDFLAGS ?=
ALL_LDFLAGS = $(LDFLAGS) $(EXTRA_CFLAGS) -pthread

BIN := $(O)/bin
OBJ := $(O)/obj

.PHONY: all
.SECONDARY:
all:

obj = $(patsubst %.c,$(OBJ)/%.o,$(1))

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

# --- common/ -------------------------------------------------------------
COMMON_SRCS := common/log.c common/output.c common/util.c
COMMON_LIB := $(O)/lib/libcommon.a
$(COMMON_LIB): $(call obj,$(COMMON_SRCS))
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
COMMON_LDLIBS = $(LIBS_JSON)

# --- bpf/ ----------------------------------------------------------------
# BPF objects are built with clang -target bpf, skeletons with bpftool.
BPF_PROGS :=
BPF_OBJS = $(patsubst %,$(O)/bpf/%.bpf.o,$(BPF_PROGS))
BPF_SKELS = $(patsubst %,$(O)/bpf/%.skel.h,$(BPF_PROGS))
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ibpf -I$(O)/bpf -Wall -Werror \
	-Wno-unused-function

$(O)/bpf/%.bpf.o: bpf/%.bpf.c bpf/vmlinux.h $(wildcard bpf/*.h)
	@mkdir -p $(dir $@)
	$(call msg,BPF,$<)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(O)/bpf/%.skel.h: $(O)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@.tmp && mv $@.tmp $@

# metrics: a map-only object; ferryd pins it for `bpftool map dump`.
BPF_PROGS += metrics
METRICS_LIB := $(O)/lib/libmetrics.a
$(OBJ)/bpf/metrics.o: $(O)/bpf/metrics.skel.h
$(METRICS_LIB): $(OBJ)/bpf/metrics.o $(OBJ)/bpf/pin.o
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# vif: tc programs on VM taps (counters, blackout at cut-over), pinned map.
BPF_PROGS += vif
VIF_LIB := $(O)/lib/libvif.a
$(OBJ)/bpf/vif.o: $(O)/bpf/vif.skel.h
$(VIF_LIB): $(OBJ)/bpf/vif.o $(OBJ)/bpf/pin.o
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# dirty: the dirty-block tracker (libtracker.a) and its test drivers
# (build/tests/dirty-*).  -mcpu=v3 for the fetching atomics of the bitmap.
BPF_PROGS += dirty
$(O)/bpf/dirty.bpf.o: BPF_CFLAGS += -mcpu=v3
TRACKER_SRCS := bpf/dirty.c bpf/dirty_disk.c bpf/dirty_bitmap.c bpf/dirty_host.c
TRACKER_LIB := $(O)/lib/libtracker.a
TRACKER_LDLIBS = $(LIBS_BPF)
$(OBJ)/bpf/dirty.o $(OBJ)/bpf/dirty_disk.o: $(O)/bpf/dirty.skel.h
$(TRACKER_LIB): $(call obj,$(TRACKER_SRCS))
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
$(BIN)/ferry-dirty: $(call obj,tools/ferry-dirty.c) $(TRACKER_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(TRACKER_LDLIBS) $(COMMON_LDLIBS)
DIRTY_HELPERS := $(O)/tests/dirty-drain $(O)/tests/dirty-oracle $(O)/tests/dirty-stress \
		 $(O)/tests/dirty-aiov $(O)/tests/dirty-writer
$(DIRTY_HELPERS): $(O)/tests/%: $(OBJ)/tests/helpers/%.o $(TRACKER_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(TRACKER_LDLIBS) $(COMMON_LDLIBS) $(LIBS_AIO)
all: $(TRACKER_LIB) $(BIN)/ferry-dirty $(DIRTY_HELPERS)

.PHONY: vmlinux
vmlinux:
	$(call msg,GEN,bpf/vmlinux.h)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h.tmp && \
		mv bpf/vmlinux.h.tmp bpf/vmlinux.h

# --- mover/ --------------------------------------------------------------
# The disk mover library (sender, receiver, wire format) and ferry-copy.
MOVER_SRCS := mover/wire.c mover/extent.c mover/codec.c mover/aio.c mover/journal.c \
	mover/dest.c mover/recv.c mover/session.c mover/auth.c mover/send.c mover/stream.c \
	mover/round.c mover/stats.c mover/hash_avx2.c
MOVER_LIB := $(O)/lib/libmover.a
# Only XXH3 is built for AVX2; wire.c calls it on CPUs that have it.
$(OBJ)/mover/hash_avx2.o: ALL_CFLAGS += -mavx2
$(MOVER_LIB): $(call obj,$(MOVER_SRCS))
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
MOVER_LDLIBS = $(LIBS_ZSTD) $(LIBS_XXHASH) $(LIBS_AIO)
$(BIN)/ferry-copy: $(call obj,mover/ferry-copy.c) $(MOVER_LIB) $(O)/lib/libnet.a $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(MOVER_LDLIBS) $(COMMON_LDLIBS)
all: $(MOVER_LIB) $(BIN)/ferry-copy
$(O)/fuzz/fuzz_migrecord: tests/fuzz/fuzz_migrecord.c daemon/engine/record.c daemon/engine/flow.c common/util.c common/log.c
	@mkdir -p $(dir $@)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $^ $(LIBS_JSON)

# ferryd's configuration file (config.c) and the address parser it uses.
$(O)/fuzz/fuzz_config: tests/fuzz/fuzz_config.c daemon/config.c net/sock.c common/util.c \
		common/log.c common/output.c
	@mkdir -p $(dir $@)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $^ $(LIBS_JSON)

# The domain XML ferryd reads and adapts (domxml.c, libxml2); disk_has
# brings the storage backends' table.
$(O)/fuzz/fuzz_domxml: tests/fuzz/fuzz_domxml.c daemon/host/domxml.c daemon/storage/disk.c \
		daemon/storage/disk_file.c daemon/storage/disk_lvm.c common/util.c common/log.c
	@mkdir -p $(dir $@)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) $(DAEMON_CFLAGS) -o $@ $^ $(call pc_libs,libxml-2.0) \
		$(LIBS_CRYPTO) $(LIBS_JSON)

# The peer link's server side: handshake, MAC'd messages, their dispatch.
# random_bytes is wrapped so that the server's nonce is known, auth_mac for
# speed (see the harness); rpc.c's command table and flow registry are the
# harness's.
$(O)/fuzz/fuzz_peer: tests/fuzz/fuzz_peer.c daemon/cluster/peer.c daemon/cluster/auth.c \
		daemon/cluster/rpc.c daemon/config.c net/sock.c common/util.c common/log.c \
		common/output.c
	@mkdir -p $(dir $@)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -Wl,--wrap=random_bytes,--wrap=auth_mac -o $@ $^ $(LIBS_CRYPTO) \
		$(LIBS_XXHASH) $(LIBS_JSON)

# The frame decoder is the mover's parser of network input.
$(O)/fuzz/fuzz_frame: tests/fuzz/fuzz_frame.c mover/wire.c mover/hash_avx2.c
	@mkdir -p $(dir $@)
	$(call msg,FUZZ-CC,$@)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $^ $(LIBS_ZSTD) $(LIBS_XXHASH)

# --- net/ ----------------------------------------------------------------
NET_SRCS := net/sock.c net/link.c
NET_LIB := $(O)/lib/libnet.a
$(NET_LIB): $(call obj,$(NET_SRCS))
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

# --- daemon/ -------------------------------------------------------------
# One folder per component (docs/state-machine.md); ferryd.c is the daemon.
DAEMON_SRCS := daemon/config.c $(wildcard daemon/engine/*.c daemon/flows/*.c \
	daemon/cluster/*.c daemon/storage/*.c daemon/host/*.c daemon/copy/*.c)
DAEMON_LIB := $(O)/lib/libdaemon.a
$(DAEMON_LIB): $(call obj,$(DAEMON_SRCS))
	@mkdir -p $(dir $@)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^
DAEMON_CFLAGS = $(call pc_cflags,libxml-2.0)
$(call obj,$(DAEMON_SRCS) daemon/ferryd.c): ALL_CFLAGS += $(DAEMON_CFLAGS)
DAEMON_LDLIBS = $(LIBS_VIRT) $(call pc_libs,libxml-2.0) $(LIBS_CRYPTO) $(LIBS_CURL)
$(OBJ)/daemon/copy/track.o: $(BPF_SKELS)

# ferryd embeds the mover's receiver and sender, the dirty tracker, the
# metrics map and the VIF programs.
FERRYD_LIBS = $(DAEMON_LIB) $(O)/lib/libmover.a $(O)/lib/libtracker.a $(METRICS_LIB) $(VIF_LIB) \
	$(NET_LIB) $(COMMON_LIB)
FERRYD_LDLIBS = $(DAEMON_LDLIBS) $(LIBS_BPF) $(LIBS_NL) $(LIBS_ZSTD) $(LIBS_XXHASH) $(LIBS_AIO) \
	$(LIBS_JSON)
$(BIN)/ferryd: $(call obj,daemon/ferryd.c) \
		$(FERRYD_LIBS)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(filter %.o,$^) $(FERRYD_LIBS) $(FERRYD_LDLIBS)
all: $(BIN)/ferryd


# --- tools/ --------------------------------------------------------------
$(BIN)/ferry: $(call obj,tools/ferry.c) $(NET_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_JSON)
all: $(BIN)/ferry

# guest: the integrity agent (static: it runs as PID 1 of the test guest),
# its host-side client, and `make guest` to build and cache the guest's
# kernel + initramfs (tools/guest/build; downloads the Debian kernel once).
GUEST_AGENT := $(O)/guest/ferry-agent
GUEST_CLIENT := $(O)/guest/ferry-agent-client
$(GUEST_AGENT): $(call obj,tools/guest/agent.c tools/guest/beat.c tools/guest/chan.c tools/guest/disk.c \
			     tools/guest/echo.c tools/guest/mem.c)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) -static $(LDFLAGS) -o $@ $^
$(GUEST_CLIENT): $(call obj,tools/guest/client.c)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^
.PHONY: guest guest-bins
guest-bins: $(GUEST_AGENT) $(GUEST_CLIENT)
guest: guest-bins
	$(Q)tools/guest/build --agent $(GUEST_AGENT)
all: guest-bins

# --- tests: C unit tests (cmocka) ----------------------------------------
# Each tests/unit/test_<name>.c is one executable linked against every
# component library.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/unit/%,$(UNIT_SRCS))
UNIT_LIBS = $(DAEMON_LIB) $(METRICS_LIB) $(VIF_LIB) $(TRACKER_LIB) $(MOVER_LIB) $(NET_LIB) $(COMMON_LIB)
UNIT_LDLIBS = $(DAEMON_LDLIBS) $(TRACKER_LDLIBS) $(LIBS_NL) $(MOVER_LDLIBS) $(COMMON_LDLIBS) $(LIBS_CMOCKA)

$(O)/tests/unit/%: $(OBJ)/tests/unit/%.o $(UNIT_LIBS)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $< $(UNIT_LIBS) $(UNIT_LDLIBS)

.PHONY: unit
unit: $(UNIT_BINS)

.PHONY: check-unit
check-unit: unit
	$(Q)fail=0; for t in $(UNIT_BINS); do \
		echo "  UNIT     $$t"; $$t || fail=1; done; exit $$fail

# --- tests: helpers -------------------------------------------------------
# faultfs: an LD_PRELOAD shim failing chosen fdatasync/pwrite/... calls
# (EIO, ENOSPC) for the receiver's disk-error tests.
FAULTFS := $(O)/tests/libfaultfs.so
$(FAULTFS): tests/helpers/faultfs.c
	@mkdir -p $(dir $@)
	$(call msg,CC-SO,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $< -ldl
all: $(FAULTFS)
# rlimit-shim: lets the lab's sanlock daemons start in a container without
# CAP_SYS_RESOURCE (tools/lab/sanlock.sh; they use neither limit).
LAB_RLIMIT_SHIM := $(O)/tests/liblab-rlimit.so
$(LAB_RLIMIT_SHIM): tools/lab/rlimit-shim.c
	@mkdir -p $(dir $@)
	$(call msg,CC-SO,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -fPIC -shared -o $@ $< -ldl
all: $(LAB_RLIMIT_SHIM)
# heartbeat: follows a guest's heartbeat port from source to destination
# (a live migration's downtime from outside; tests/bench/live.sh).
HEARTBEAT := $(O)/tests/heartbeat
$(HEARTBEAT): $(OBJ)/tests/helpers/heartbeat.o $(NET_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NET_LDLIBS) $(COMMON_LDLIBS) $(LIBS_JSON)
all: $(HEARTBEAT)
# floor: the least work that moves an image's data (sendfile -> splice),
# the floor row of `make bench` (tests/bench/mover.sh).
FLOOR := $(O)/tests/floor
$(FLOOR): $(OBJ)/tests/helpers/floor.o $(NET_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(NET_LDLIBS) $(COMMON_LDLIBS) -laio -lpthread
all: $(FLOOR)
# pinger: ICMP or UDP echo at up to 1 kHz from another namespace, send and
# reply stamped on CLOCK_MONOTONIC per sequence number: what a guest's
# peers see of a migration (tests/lab-guest-nic.sh).
PINGER := $(O)/tests/pinger
$(PINGER): $(OBJ)/tests/helpers/pinger.o
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_JSON)
all: $(PINGER)

# vif-probe: the VIF programs on one link without ferryd (tests, bench).
VIF_PROBE := $(O)/tests/vif-probe
$(VIF_PROBE): $(OBJ)/tests/helpers/vif-probe.o $(VIF_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS_BPF) $(COMMON_LDLIBS)
$(OBJ)/tests/helpers/vif-probe.o: $(O)/bpf/vif.skel.h
all: $(VIF_PROBE)

# --- fuzzing (libFuzzer) -------------------------------------------------
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(O)/fuzz/%,$(FUZZ_SRCS))
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-D_GNU_SOURCE -DFUZZING -iquote . -iquote common $(PC_CFLAGS)
FUZZ_SECONDS ?= 10
FUZZ_RUNS ?= 10000000
FUZZ_NICE ?= nice -n 10
# fuzz-long: no allocation stacks in ASan's reports (a tenth to a fifth
# faster on the JSON harnesses); run an artifact alone to get them.
FUZZ_LONG_ENV ?= ASAN_OPTIONS=malloc_context_size=0
FUZZ_ONLY ?= # fuzz-long: these harnesses only ("fuzz_peer fuzz_config")
FUZZ_LONG_BINS = $(if $(FUZZ_ONLY),$(addprefix $(O)/fuzz/,$(FUZZ_ONLY)),$(FUZZ_BINS))

.PHONY: fuzz-build fuzz fuzz-short fuzz-long
fuzz-build: $(FUZZ_BINS)
fuzz: FUZZ_SECONDS = 300
fuzz fuzz-short: fuzz-build
	$(Q)for f in $(FUZZ_BINS); do n=$$(basename $$f); \
		mkdir -p $(O)/fuzz/corpus/$$n; \
		echo "  FUZZ     $$n ($(FUZZ_SECONDS)s)"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
			$(O)/fuzz/corpus/$$n tests/fuzz/corpus/$$n 2>$(O)/fuzz/$$n.log || \
			{ tail -40 $(O)/fuzz/$$n.log; exit 1; }; done

# fuzz-long (not in CI): FUZZ_RUNS executions of each harness, one after the
# other, niced.  New inputs collect in $(O)/fuzz/long/<harness>; then
# tests/fuzz/corpus/<harness>, the corpus kept in git, is remade as its named
# seeds plus the fewest inputs that reach every edge reached (-merge=1
# -use_counters=0), so it stays small.  A crash leaves $(O)/fuzz/<harness>-crash-*; the
# closing lines give executions, exec/s and crashes per harness.
# FUZZ_ONLY=fuzz_x picks harnesses.
fuzz-long: $(FUZZ_LONG_BINS)
	$(Q)fail=0; sum=; for f in $(FUZZ_LONG_BINS); do n=$$(basename $$f); \
		mkdir -p $(O)/fuzz/long/$$n tests/fuzz/corpus/$$n; \
		rm -f $(O)/fuzz/$$n-crash-* $(O)/fuzz/$$n-leak-* $(O)/fuzz/$$n-timeout-* \
			$(O)/fuzz/$$n-oom-*; \
		echo "  FUZZ     $$n ($(FUZZ_RUNS) runs)"; \
		$(FUZZ_LONG_ENV) $(FUZZ_NICE) $$f -runs=$(FUZZ_RUNS) -print_final_stats=1 \
			-artifact_prefix=$(O)/fuzz/$$n- $(O)/fuzz/long/$$n \
			tests/fuzz/corpus/$$n >$(O)/fuzz/$$n.long.log 2>&1; rc=$$?; \
		runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(O)/fuzz/$$n.long.log); \
		eps=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(O)/fuzz/$$n.long.log); \
		crashes=$$(ls $(O)/fuzz/$$n-crash-* $(O)/fuzz/$$n-leak-* $(O)/fuzz/$$n-timeout-* \
			$(O)/fuzz/$$n-oom-* 2>/dev/null | wc -l); \
		if [ $$rc -ne 0 ]; then fail=1; tail -40 $(O)/fuzz/$$n.long.log; \
			[ $$crashes -gt 0 ] || crashes="? (exit $$rc)"; \
		else m=$(O)/fuzz/merge/$$n; rm -rf $$m; mkdir -p $$m; \
			ls tests/fuzz/corpus/$$n | grep -Ev '^[0-9a-f]{40}$$' | \
				sed "s|^|tests/fuzz/corpus/$$n/|" | xargs -r cp -t $$m; \
			$(FUZZ_NICE) $$f -merge=1 -use_counters=0 $$m tests/fuzz/corpus/$$n \
				$(O)/fuzz/long/$$n >>$(O)/fuzz/$$n.long.log 2>&1 && \
			find tests/fuzz/corpus/$$n -regextype egrep -regex '.*/[0-9a-f]{40}' -delete && \
			cp $$m/* tests/fuzz/corpus/$$n/; fi; \
		sum="$$sum$$(printf '  %-16s %12s runs %8s exec/s  crashes: %s' $$n \
			"$${runs:-0}" "$${eps:-0}" "$$crashes")\n"; done; \
	printf "$$sum"; exit $$fail

# --- top-level targets ---------------------------------------------------
all: $(COMMON_LIB) $(NET_LIB) $(BPF_SKELS) $(UNIT_BINS)

.PHONY: deps
deps:
	$(Q)tools/install-deps -q

.PHONY: check
# Two lab tests at a time: most of a lab test waits on a guest, a lease or
# a link.  A test marked "# serial:" (it times something, or counts
# machine-wide) runs alone after the others (tests/run).  Every test runs
# once: the ASAN_TESTS with the ASan+UBSan build of ferry's binaries, the
# others with the plain one, in one pool (one serial tail).  The plain build
# drives every flow in the other lab tests, the demo and the benches.
TEST_JOBS ?= 2
check: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory check-unit
	$(Q)$(MAKE) --no-print-directory asan-build
	$(Q)$(MAKE) --no-print-directory asan-unit
	$(Q)$(MAKE) --no-print-directory fuzz-short
	$(Q)$(ASAN_ENV) tests/run -j $(TEST_JOBS) $(ASAN_RUN)
	$(Q)$(MAKE) --no-print-directory asan-reports

.PHONY: check-asan asan-build asan-unit asan-reports
# The same code under ASan+UBSan: unit tests, the fuzz harnesses (always
# sanitized), and the lab tests that drive the mover and ferryd hardest
# (ASAN_TESTS), with the sanitized binaries first on every lab host's PATH.
# Any report, from any process, fails the run: each goes to a file under
# $(O)/asan/reports/ (abort on the first error, leaks checked in the unit
# tests; a daemon exits without freeing what its threads may still use).
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
# peer-protocol is not among them: it times 60 connections at once, and
# under ASan's slower accept path its prober's 2 s connects time out now
# and then; it runs unsanitized in make check, and the peer handshake runs
# sanitized in every test below and in its fuzz harness.
ASAN_TESTS ?= $(patsubst tests/%.sh,%,$(wildcard tests/mover-*.sh)) cold-migrate \
	cold-refusals cold-abort cold-concurrent peer-confine live-migrate live-abort
ASAN_REPORTS = $(abspath $(O)/asan/reports)
ASAN_ENV = ASAN_OPTIONS=abort_on_error=1:verify_asan_link_order=0:log_path=$(ASAN_REPORTS)/asan \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(ASAN_REPORTS)/ubsan
comma := ,
ASAN_RUN = -S $(abspath $(O)/asan/bin) -s $(subst $(eval) ,$(comma),$(strip $(ASAN_TESTS)))
asan-build:
	$(Q)$(MAKE) --no-print-directory O=$(O)/asan EXTRA_CFLAGS='$(SANITIZE_FLAGS)' \
		$(O)/asan/bin/ferryd $(O)/asan/bin/ferry $(O)/asan/bin/ferry-copy \
		$(O)/asan/bin/ferry-dirty unit
asan-unit: asan-build
	$(Q)rm -rf $(ASAN_REPORTS) && mkdir -p $(ASAN_REPORTS)
	$(Q)fail=0; for t in $(patsubst tests/unit/%.c,$(O)/asan/tests/unit/%,$(UNIT_SRCS)); do \
		echo "  UNIT     $$t (sanitized)"; \
		ASAN_OPTIONS=detect_leaks=1:log_path=$(ASAN_REPORTS)/unit \
		UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:log_path=$(ASAN_REPORTS)/ubsan \
			$$t >/dev/null || fail=1; done; exit $$fail
asan-reports:
	$(Q)if [ -n "$$(ls -A $(ASAN_REPORTS))" ]; then \
		for f in $(ASAN_REPORTS)/*; do echo "== $$f"; head -40 "$$f"; done; \
		echo "sanitizer reports above"; exit 1; fi
	$(Q)echo "no sanitizer report"
check-asan: deps
	$(Q)$(MAKE) --no-print-directory all asan-build fuzz-build
	$(Q)$(MAKE) --no-print-directory asan-unit
	$(Q)$(MAKE) --no-print-directory fuzz-short
	$(Q)$(ASAN_ENV) tests/run -j $(TEST_JOBS) $(ASAN_RUN) $(ASAN_TESTS)
	$(Q)$(MAKE) --no-print-directory asan-reports

.PHONY: demo
demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo

.PHONY: bench
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/bench/run

.PHONY: format
format:
	$(Q)clang-format -i $$(git ls-files '*.c' '*.h' | grep -v vmlinux.h)

.PHONY: clean
clean:
	$(call msg,CLEAN,$(O))
	$(Q)rm -rf $(O)

-include $(shell find $(O) -name '*.d' 2>/dev/null)
