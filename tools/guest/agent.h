/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ferry-agent: the integrity agent of ferry's self-checking guest.
 *
 * It writes checksummed records to its disk, keeps in RAM what every block
 * must contain, and on command re-reads the disk and says whether a single
 * write was lost.  On a clean shutdown it stores its expectations in a
 * reserved region at the start of the disk.  The formats below are
 * described for humans in docs/guest.md; keep both in step.
 */
#ifndef FERRY_GUEST_AGENT_H
#define FERRY_GUEST_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_BLOCK_BYTES 4096u
#define AGENT_ALIGN_BLOCKS 256u /* data area starts on a 1 MiB boundary */

/* On-disk record at the start of every written data block. */
#define AGENT_REC_MAGIC 0x4345525952524546ull /* "FERRYREC" little-endian */
#define AGENT_REC_VERSION 1u

struct agent_rec {
	uint64_t magic; /* AGENT_REC_MAGIC */
	uint64_t seq; /* global write sequence number, >= 1 */
	uint64_t block; /* absolute 4 KiB block number of this block */
	uint64_t disk_id; /* random id chosen when the disk was formatted */
	uint32_t boot; /* boot counter of the run that wrote it */
	uint32_t version; /* AGENT_REC_VERSION */
	uint64_t time_ns; /* guest CLOCK_REALTIME at write, informational */
	uint64_t reserved[2];
	/* then filler up to byte 4088, then the checksum (xxh64 of 0..4087) */
};

#define AGENT_REC_CSUM_OFF (AGENT_BLOCK_BYTES - 8)

/* On-disk state header in block 0; the expectation table follows. */
#define AGENT_STATE_MAGIC 0x3154535952524546ull /* "FERRYST1" little-endian */
#define AGENT_STATE_VERSION 1u

enum agent_state {
	AGENT_STATE_RUNNING = 1, /* an agent runs (or ran and died): no expectations */
	AGENT_STATE_CLEAN = 2, /* stopped cleanly: table holds exact expectations */
};

struct agent_state_hdr {
	uint64_t magic; /* AGENT_STATE_MAGIC */
	uint32_t version; /* AGENT_STATE_VERSION */
	uint32_t block_bytes; /* 4096 */
	uint64_t disk_id; /* lineage id, random, set at format */
	uint64_t table_start; /* first block of the table (1) */
	uint64_t data_start; /* first block of the working set */
	uint64_t span_blocks; /* blocks in the working set */
	uint64_t format_disk_blocks; /* disk size when formatted, informational */
	uint32_t state; /* enum agent_state */
	uint32_t boot; /* boots of this disk so far, 1 = the formatting boot */
	uint64_t seq; /* highest sequence number issued when last saved */
	uint32_t table_valid; /* 1: table blocks hold a table saved at a clean stop */
	uint32_t unclean_boots; /* boots that found state RUNNING */
	uint64_t table_csum; /* xxh64 of span_blocks * 8 bytes of table */
	uint64_t total_written; /* blocks written over the disk's lifetime */
	uint64_t reserved[8];
	uint64_t hdr_csum; /* xxh64 of every byte above */
};

/* What a block held when it was read back. */
enum agent_got {
	AGENT_GOT_ZERO, /* all zero */
	AGENT_GOT_SEQ, /* a valid record of this disk with sequence .value */
	AGENT_GOT_BADMAGIC, /* not zero, not a record */
	AGENT_GOT_BADCSUM, /* record whose checksum does not match */
	AGENT_GOT_MISPLACED, /* valid record of block .value */
	AGENT_GOT_FOREIGN, /* valid record of another disk id .value */
	AGENT_GOT_IOERR, /* read or write failed with errno .value */
	AGENT_GOT_EOF, /* beyond the end of the disk */
};

struct agent_got_val {
	enum agent_got kind;
	uint64_t value;
};

/* The first bad block of a scan and how many were bad. */
struct agent_fail {
	uint64_t count; /* bad blocks */
	uint64_t block; /* first bad block (absolute) */
	char expected[48]; /* what it should have held */
	char got[48]; /* what it held */
};

enum agent_pattern {
	AGENT_PATTERN_SEQUENTIAL,
	AGENT_PATTERN_RANDOM,
	AGENT_PATTERN_HOTSPOT,
};

enum agent_boot_kind {
	AGENT_BOOT_FRESH, /* blank disk, formatted now */
	AGENT_BOOT_CLEAN, /* expectations restored from a clean shutdown */
	AGENT_BOOT_UNCLEAN, /* previous run did not stop cleanly */
};

enum agent_scan_mode {
	AGENT_SCAN_EXACT, /* every block must match expect[] */
	AGENT_SCAN_MEMORY, /* VERIFY: as exact, but newer than memory expects is ram_lost */
	AGENT_SCAN_ADOPT, /* unclean boot: accept zero or record >= floor, fill expect[] */
};

struct agent_scan {
	uint64_t blocks; /* blocks read */
	uint64_t records; /* blocks holding a record */
	uint64_t zero; /* all-zero blocks */
	uint64_t max_seq; /* highest sequence number seen */
	uint64_t ms; /* time taken */
	struct agent_fail fail;
	/*
	 * Blocks whose record on disk is their own and newer than the one
	 * the agent's memory expects: the disk has a write the guest's RAM
	 * forgot.  No disk path makes that (a block holds only what the guest
	 * wrote to it); losing guest RAM writes does (QEMU < 9.0 under TCG,
	 * see docs/guest.md).  Counted apart from the failures.
	 */
	struct agent_fail ram_lost;
};

struct agent {
	/* disk */
	const char *disk_path;
	int disk_fd;
	uint64_t disk_blocks; /* current size of the disk */
	struct agent_state_hdr hdr; /* as last read or written */
	uint64_t *expect; /* expected seq per working-set block, 0 = must be zero */
	uint64_t *floor; /* unclean boot only: lower bound from the last clean stop */
	size_t expect_bytes; /* allocation, a multiple of 4096 */
	void *iobuf; /* aligned buffer for O_DIRECT I/O */
	size_t iobuf_bytes;

	/* writer */
	uint64_t seq; /* last sequence number issued */
	uint64_t written_blocks; /* this boot */
	uint64_t write_calls; /* pwrite calls this boot */
	uint64_t rate_bps; /* target write rate */
	double tokens_bytes; /* token bucket */
	uint64_t tokens_ns; /* when the bucket was last filled */
	enum agent_pattern pattern;
	uint64_t cursor; /* sequential: next block index in the span */
	uint64_t rng; /* xorshift state */
	bool paused;
	uint32_t max_run_blocks; /* largest write, in blocks */

	/* verdict state */
	enum agent_boot_kind boot_kind;
	struct agent_scan boot_scan; /* scan done at boot */
	struct agent_fail write_fail; /* first write error */
	uint64_t verifies;
	char fatal[160]; /* set when the agent cannot run: nothing is written */

	/* memory dirtier (mem.c) */
	char *mem; /* anonymous span, NULL until a rate is set */
	uint64_t mem_span_bytes; /* ferry.memspan / MEMRATE's span */
	uint64_t mem_rate_bps; /* ferry.memrate: bytes of pages dirtied per second */
	uint64_t mem_cursor; /* next page index */
	uint64_t mem_dirtied_pages; /* this boot */
	double mem_tokens; /* token bucket, bytes */
	uint64_t mem_tokens_ns;

	/* options */
	uint64_t span_req_bytes; /* ferry.span, 0 = all */
	bool boot_scan_on; /* ferry.bootscan */
	bool host_mode; /* run on a host for development: exit instead of poweroff */
	uint32_t beat_ms; /* ferry.heartbeat: period of beat.c's lines, 0 = off */
};

#define AGENT_PORT_NAME "org.ferry.agent.0" /* the virtio-serial port */
#define AGENT_BEAT_PORT_NAME "org.ferry.heartbeat.0" /* beat.c's port */
#define AGENT_MAX_INPUTS 8
#define AGENT_LINE_MAX 512

/* A command channel: the virtio-serial port, or stdin/stdout on a host. */
struct agent_chan {
	int rfd, wfd; /* -1 when absent */
	bool is_port; /* virtio-serial: POLLHUP means no host connected */
	uint64_t retry_ns; /* port without a host: poll again after this */
	size_t len;
	char buf[AGENT_LINE_MAX];
};

/* The event loop: channels, power buttons, timers. */
struct agent_loop {
	struct agent *a;
	struct agent_chan port, console;
	const char *port_path; /* fixed by --port, else found in sysfs */
	int input_fd[AGENT_MAX_INPUTS]; /* evdev devices with KEY_POWER */
	int ninputs;
	uint64_t input_scan_ns; /* next look for a power button */
	uint64_t status_ns; /* next periodic status line on the console */
	uint64_t start_ns;
};

/* Why the agent is to save its state and power off (set by handlers). */
enum agent_stop {
	AGENT_STOP_NONE = 0,
	AGENT_STOP_COMMAND = -1, /* SHUTDOWN */
	AGENT_STOP_BUTTON = -2, /* ACPI power button */
	/* > 0: the signal number */
};

/* echo.c: a child answering UDP echo on AGENT_ECHO_PORT, if a NIC has an address */
#define AGENT_ECHO_PORT 7
int agent_echo_start(void);

/* beat.c: a child writing "SEQ\n" to org.ferry.heartbeat.0 every period_ms */
int agent_beat_start(uint32_t period_ms);

/* disk.c */
int agent_disk_open(struct agent *a);
int agent_disk_boot(struct agent *a);
int agent_disk_scan(struct agent *a, enum agent_scan_mode mode, struct agent_scan *sc);
int agent_disk_write(struct agent *a, uint64_t idx, uint32_t nblocks);
int agent_disk_save(struct agent *a);
const char *agent_boot_kind_name(enum agent_boot_kind k);
void agent_got_format(const struct agent_got_val *g, char *buf, size_t len);

/* chan.c */
void agent_port_open(struct agent_loop *l);
int agent_port_find(const char *name, char *path, size_t len);
void agent_chan_read(struct agent_loop *l, struct agent_chan *c, short revents);
void agent_inputs_scan(struct agent_loop *l);
void agent_input_read(struct agent_loop *l, int fd);

/* mem.c */
int agent_mem_set(struct agent *a, uint64_t rate_bps, uint64_t span_bytes);
int agent_mem_step(struct agent *a);

/* agent.c */
extern volatile sig_atomic_t agent_stop_flag; /* enum agent_stop or a signal */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t agent_now_ns(void);
void agent_command(struct agent_loop *l, char *line, char *out, size_t len);

#endif
