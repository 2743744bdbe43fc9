/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mover.h - the disk mover: streams a disk image (file or block device) to a
 * receiving peer, extent by extent.  Used by ferry-copy and embedded in
 * ferryd.  Grouped by source file; the public API comes first.
 *
 * ===== Public API (ferryd, ferry-copy) =====================================
 *
 * Sending.  mover_send() copies a source to a receiver and returns when the
 * destination is complete, durable and (with .verify) re-read and compared,
 * or on error.  It runs its own threads (one per connection) and may be
 * called from any thread; concurrent calls are independent.
 *
 *	struct mover_send_opts o = {
 *		.source = "/var/lib/ferry/i-1/disk", .host = "h2", .port = 4790,
 *		.dest_path = "/var/lib/ferry/i-1/disk", .transfer_id = "i-1-disk-r3",
 *		.connections = 0, .compress = MOVER_COMPRESS_AUTO,
 *		.ranges = dirty, .nr_ranges = n, .progress = cb, .cancel = &stop,
 *	};
 *	memcpy(o.token, tok, MOVER_TOKEN_BYTES);
 *	struct mover_stats st;
 *	int ret = mover_send(&o, &st);	// 0 or -errno; st.error says why
 *
 * - .ranges (optional) restricts the copy to those (offset, length) ranges;
 *   they are sorted and merged.  Inside a range the destination is made
 *   equal to the source, zero runs included (punched on files, written or
 *   BLKZEROOUT on devices): a range copy writes into a destination that
 *   held other data.  Only a file the receiver creates in this transfer
 *   skips holes.  Without ranges the whole image is copied.
 * - The transfer id names the copy on the receiver: a copy interrupted
 *   (connection lost, either side killed) and started again with the same
 *   id, source, ranges and destination sends only the work units the
 *   receiver had not journaled.  Use a new id per pre-copy round.
 * - Destination size: a created file is sized to the source; an existing
 *   file or device of at least that size keeps its size; a smaller file is
 *   extended only with .grow, else refused, as a smaller device is.
 * - Zero runs on a device: .zero_mode MOVER_ZERO_AUTO writes zero blocks;
 *   MOVER_ZERO_ZEROOUT asks for BLKZEROOUT (LVs: cheap and exact),
 *   MOVER_ZERO_DISCARD for an unmapping zero-out; MOVER_ZERO_SKIP only
 *   when the destination is known to read zeros there.
 * - The progress callback runs on a worker thread, serialized, at most
 *   every 200 ms and once at the end; .cancel is polled between chunks and
 *   makes mover_send return -ECANCELED.
 * - Connections default to two per core (4..8); the sending threads block
 *   SIGPIPE for themselves (sendfile has no MSG_NOSIGNAL), the caller's
 *   thread only ever uses MSG_NOSIGNAL.
 *
 * Receiving.  mover_server_new() starts an embeddable receiver with its own
 * threads: it accepts on a listening socket (or takes connected sockets from
 * mover_server_add_conn()), and for each new transfer calls
 * ops->authorize(ctx, req, dest) with the presented token, the requested
 * path, the declared image size and the transfer id.  The callback either
 * fills *dest (an absolute path, a directory fd + name, or an open fd; may
 * the file be created; where journals go) and returns 0, or refuses with a
 * negative errno and a reason.  It must compare tokens with ct_memcmp().
 * It runs for every connection (each is authenticated; the first one's
 * destination is used, later ones join), concurrently, on connection
 * threads.  A transfer, once committed or failed, takes no more frames:
 * a connection that sends one is refused and closed, and its id cannot be
 * used again on this server.  ops->done is called once per transfer, success or failure,
 * when its last connection leaves.  mover_server_free() stops accepting,
 * ends every connection and joins all threads; interrupted transfers keep
 * their journals for a resume.  The receiver writes aligned data with
 * O_DIRECT (falling back to the page cache where refused) and makes the
 * destination durable before a transfer completes.
 *
 * Local copies go through the same sender and receiver over socketpairs:
 * set .local to a server made with no listener.
 *
 * Everything returns 0 or -errno; constructors return NULL and set errno.
 */
#ifndef FERRY_MOVER_H
#define FERRY_MOVER_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "common.h"

#define MOVER_DEFAULT_PORT 4790
#define MOVER_TOKEN_BYTES 32 /* 256-bit transfer token */
#define MOVER_ID_MAX 64	     /* transfer id: [A-Za-z0-9._-], not starting with '.' */
#define MOVER_PATH_MAX 4095  /* requested destination path on the wire */
#define MOVER_CONNS_MAX 16
#define MOVER_ERR_MAX 256

enum mover_compress {
	MOVER_COMPRESS_AUTO = 0, /* per chunk: zstd 1 or -3 where the measured
				  * compressor outruns the link (TCP_INFO) */
	MOVER_COMPRESS_NONE,
	MOVER_COMPRESS_ZSTD, /* every compressible chunk, at .compress_level */
};

/* What the receiver does with a run of zeros (a hole or zero-filled blocks). */
enum mover_zero {
	MOVER_ZERO_AUTO = 0, /* created file: nothing; file: punch; device: write */
	MOVER_ZERO_WRITE,    /* write zero blocks */
	MOVER_ZERO_PUNCH,    /* files: FALLOC_FL_PUNCH_HOLE (devices: write) */
	MOVER_ZERO_ZEROOUT,  /* devices: BLKZEROOUT (files: punch) */
	MOVER_ZERO_DISCARD,  /* devices: an unmapping zero-out (reads back zeros),
			      * else BLKZEROOUT (files: punch) */
	MOVER_ZERO_SKIP,     /* leave the bytes: the destination is known zero */
};

/* The summary of a transfer; counters are bytes unless named otherwise. */
struct mover_stats {
	uint64_t image_bytes;	  /* virtual size of the source */
	uint64_t total_bytes;	  /* bytes covered: the image or the ranges */
	uint64_t allocated_bytes; /* source allocation (st_blocks; devices: size) */
	uint64_t read_bytes;	  /* read from the source */
	uint64_t hole_bytes;	  /* holes: never read, sent as records */
	uint64_t zero_bytes;	  /* allocated zeros: read, sent as records */
	uint64_t data_bytes;	  /* non-zero bytes sent (before encoding) */
	uint64_t raw_bytes;	  /* data sent as is */
	uint64_t zstd_in_bytes;	  /* data sent compressed, before... */
	uint64_t zstd_out_bytes;  /* ...and after compression */
	uint64_t wire_bytes;	  /* written to sockets, frame headers included */
	uint64_t skipped_bytes;	  /* in units the receiver already had (resume) */
	uint64_t acked_bytes;	  /* in units the receiver journaled */
	uint64_t verified_bytes;  /* re-read on both sides and compared */
	uint64_t units_total;	  /* work units of this transfer */
	uint64_t units_sent;
	uint64_t units_skipped; /* resume: already journaled by the receiver */
	uint64_t units_acked;
	uint64_t unit_bytes; /* work unit size */
	uint64_t wall_ms;
	uint64_t wall_us; /* the same, finer: a round of a few ms */
	uint32_t streams; /* connections used */
	uint32_t retries; /* connections re-established after an error */
	bool resumed;	  /* the receiver had a journal for this transfer */
	bool created;	  /* the receiver created the destination */
	char transfer_id[MOVER_ID_MAX + 1];
	char error[MOVER_ERR_MAX]; /* why mover_send failed, "" on success */
};

struct mover_progress {
	uint64_t done_bytes;  /* covered bytes processed (sent or skipped) */
	uint64_t total_bytes; /* covered bytes of the transfer */
	uint64_t acked_bytes; /* journaled by the receiver */
	uint64_t wire_bytes;  /* written to sockets so far */
	uint64_t elapsed_ms;
	bool final; /* last call of the transfer */
};

typedef void (*mover_progress_fn)(const struct mover_progress *p, void *ctx);

struct mover_server;

struct mover_send_opts {
	const char *source; /* path of a file or block device */
	int source_fd;	    /* or an open fd (not closed), when source is NULL */
	const char *label;  /* names the destination in messages, e.g.
			     * "ferry://h2/vm1.raw"; NULL: host:port/path */
	const char *host;   /* receiver, name or address */
	uint16_t port;	    /* 0: MOVER_DEFAULT_PORT */
	struct mover_server *local; /* instead of host: an in-process server */
	const char *dest_path;	    /* destination as the receiver names it */
	const char *transfer_id;    /* NULL: random (st->transfer_id says which) */
	uint8_t token[MOVER_TOKEN_BYTES];
	int connections;		/* 0: two per core, 4..8 */
	enum mover_compress compress;
	int compress_level;		/* zstd level, 0: default (1) */
	uint64_t bwlimit_bps;		/* bytes/s on the wire, 0: none */
	bool verify;			/* re-read the destination and compare */
	bool grow;			/* an existing file smaller than the source may be
					 * extended (else the copy is refused) */
	enum mover_zero zero_mode;
	const struct ferry_range *ranges; /* NULL: the whole image */
	size_t nr_ranges;
	uint64_t unit_bytes;	/* work unit, power of two, 0: 32 MiB */
	int connect_timeout_ms; /* 0: 10 s */
	int io_timeout_ms;	/* stalled socket, 0: 120 s */
	int max_retries;	/* reconnects per transfer; 0: 5, -1: none */
	mover_progress_fn progress;
	void *progress_ctx;
	const atomic_bool *cancel; /* set to stop; mover_send returns -ECANCELED */
	/* Test only: flip a byte of the Nth data chunk (1-based) after its
	 * checksum was computed; with fault_every, of every Nth chunk. */
	uint64_t fault_corrupt_chunk;
	bool fault_every;
};

int mover_send(const struct mover_send_opts *o, struct mover_stats *st);

/*
 * A session (round.c): one transfer, its destination and journal set up
 * once, then rounds of ranges through the same connections, each
 * acknowledged once durable on the receiver (one group commit per round),
 * then a commit.  For pre-copy rounds and the final delta:
 *
 *	struct mover_send_session *ss = mover_send_open(&o, &st);
 *	while (...)
 *		ret = mover_send_round(ss, dirty, n, &st);  // NULL: the whole image
 *	ret = mover_send_commit(ss, &st);
 *	mover_send_close(ss);
 *
 * - o (not its .ranges, which must be NULL) is as for mover_send(); it and
 *   what it points to must outlive the session.  The image size is fixed
 *   at open.
 * - A dropped connection is reconnected within .max_retries per round, and
 *   the round goes on where the receiver's journal says; a receiver that
 *   restarted resumes its last durable round.  A round that failed fails
 *   the session: close it and open it again with the same id (that resumes
 *   the receiver's last round when the first round's ranges are the same).
 * - .verify re-reads each round's ranges after the round is durable.
 * - st: the round's (or the commit's) own figures; st.error says why.
 * - mover_send_close without a commit leaves the receiver's journal (and a
 *   created part file): the session id can be resumed.
 */
struct mover_send_session;

struct mover_send_session *mover_send_open(const struct mover_send_opts *o, struct mover_stats *st);
int mover_send_round(struct mover_send_session *ss, const struct ferry_range *ranges, size_t n,
		     struct mover_stats *st);
int mover_send_commit(struct mover_send_session *ss, struct mover_stats *st);
void mover_send_close(struct mover_send_session *ss);

/* What a new transfer asks the receiver (argument of authorize). */
struct mover_auth_req {
	const uint8_t *token; /* MOVER_TOKEN_BYTES; compare with ct_memcmp() */
	const char *path;     /* requested destination path, as sent */
	const char *transfer_id;
	uint64_t image_bytes; /* declared size of the source image */
	bool ranges;	      /* a range copy (into an existing destination) */
	bool grow;	      /* the sender asks that a smaller file be extended */
	bool session;	      /* a session: rounds of ranges (ranges is set too) */
	const char *peer;     /* "addr:port" of the sender, "local" */
};

/* Where it goes (filled by authorize; the server owns the fds given). */
struct mover_dest {
	char path[PATH_MAX];	    /* absolute path, or "" to use fd / dir_fd */
	int fd;			    /* an open O_RDWR file or device, or -1 */
	int dir_fd;		    /* directory holding name, or -1 */
	char name[NAME_MAX + 1];    /* file in dir_fd (opened O_NOFOLLOW) */
	bool may_create;	    /* create it (via a part file) if absent */
	mode_t mode;		    /* of a created file, 0: 0600 */
	char journal_dir[PATH_MAX]; /* "" : the destination's directory */
	char reason[MOVER_ERR_MAX]; /* why authorize refused */
};

/* Receiver-side outcome of one transfer (argument of done). */
struct mover_result {
	const char *transfer_id;
	const char *path;   /* destination as resolved */
	const char *peer;
	int status;	    /* 0 complete, -errno failed or interrupted */
	const char *error;  /* "" when status is 0 */
	bool resumable;	    /* a journal remains: the same id can resume */
	uint64_t image_bytes;
	uint64_t written_bytes; /* data written */
	uint64_t zeroed_bytes;	/* zero runs punched or written */
	uint64_t units_done;
	uint64_t units_total;
};

struct mover_server_ops {
	int (*authorize)(void *ctx, const struct mover_auth_req *req, struct mover_dest *dest);
	void (*done)(void *ctx, const struct mover_result *res);
};

/*
 * Connections are unauthenticated until their HELLO was authorized.  Those
 * are held apart: the whole HELLO must arrive within hello_timeout_ms; at
 * most max_unauth of them (max_unauth_per_addr from one address) are kept,
 * and a new one past either limit pushes out the oldest (of that address,
 * else of all), so that a crowd of slow or silent peers can delay a real
 * sender by at most one HELLO.  Authenticated connections (max_conns) must
 * complete every frame within io_timeout_ms of starting to wait for it:
 * idle ones are closed.  ferryd's embedded receiver gets these defaults.
 */
struct mover_server_conf {
	int listen_fd;		 /* listening socket to use, or -1 */
	const char *listen_addr; /* "ADDR:PORT" to listen on, or NULL (neither:
				  * connections only via mover_server_add_conn) */
	int max_conns;		 /* authenticated connections, 0: 64 */
	int max_unauth;		 /* connections before their HELLO, 0: 32 */
	int max_unauth_per_addr; /* ... from one address, 0: MOVER_CONNS_MAX */
	int hello_timeout_ms;	 /* the whole HELLO, 0: 10 s */
	int io_timeout_ms;	 /* a frame, or an idle connection, 0: 120 s */
	uint32_t commit_ms;	 /* journal group commit interval, 0: 1000 */
	bool quiet;		 /* connection errors only at debug level (the
				  * sender reports them: local copies) */
};

struct mover_server *mover_server_new(const struct mover_server_conf *conf,
				      const struct mover_server_ops *ops, void *ctx);
/* Serve an already connected socket (the server owns it from now on). */
int mover_server_add_conn(struct mover_server *srv, int fd);
/* Local address listened on ("addr:port"), e.g. after listening on port 0. */
const char *mover_server_addr(struct mover_server *srv, char *buf, size_t len);
/* Transfers completed so far (for --once). */
uint64_t mover_server_completed(struct mover_server *srv);
void mover_server_free(struct mover_server *srv);

/* Standalone receiver policy (ferry-copy --serve): one token for every
 * transfer, paths confined under root with RESOLVE_BENEATH. */
struct mover_root_auth {
	int root_fd;
	uint8_t token[MOVER_TOKEN_BYTES];
	char journal_dir[PATH_MAX]; /* "": ROOT/.ferry */
};
int mover_root_auth_init(struct mover_root_auth *ra, const char *root, const uint8_t *token);
void mover_root_auth_fini(struct mover_root_auth *ra);
int mover_root_authorize(void *ctx, const struct mover_auth_req *req, struct mover_dest *dest);

/* stats.c: the summary (plain and -j through common/output.c) */
void mover_stats_print(const struct mover_stats *st);
/* "zstd:3", "none", "auto" */
int mover_compress_parse(const char *s, enum mover_compress *mode, int *level);
int mover_zero_parse(const char *s, enum mover_zero *mode);
const char *mover_zero_name(enum mover_zero mode);
/* Read a token file (64 hex digits); 0 or -errno. */
int mover_token_read(const char *path, uint8_t token[MOVER_TOKEN_BYTES]);
/* Create a token file with a random token, mode 0600, if absent. */
int mover_token_create(const char *path, uint8_t token[MOVER_TOKEN_BYTES]);
/* Content digest (hex XXH3-128 over the non-zero 64 KiB blocks and the
 * size): holes and zero blocks count alike, and holes are not read. */
int mover_checksum_fd(int fd, uint64_t size, char out[33]);

/* ===== Internal (mover/ only) ============================================= */

#define MOVER_IO_BYTES (1u << 20)	/* read / data chunk size */
#define MOVER_CHUNK_MAX (4u << 20)	/* largest decoded DATA payload */
#define MOVER_PAYLOAD_MAX ((4u << 20) + (64u << 10)) /* largest frame payload */
#define MOVER_UNIT_DEFAULT (32ULL << 20)
#define MOVER_UNIT_MIN (1ULL << 20)
#define MOVER_UNIT_MAX (1ULL << 30)
#define MOVER_BITMAP_MAX (1u << 20)	/* bytes: at most 8M units */
#define MOVER_BLOCK 4096u		/* zero-detection granule */
#define MOVER_ZERO_BUF (1u << 20)

/* wire.c: the frame format (docs/wire-format.md); the only parser of
 * network input. */
#define MOVER_MAGIC 0x59524546u /* "FERY" in little-endian byte order */
#define MOVER_VERSION 3
#define MOVER_HDR_BYTES 32

enum mover_ftype {
	MOVER_F_HELLO = 1,	/* s->r: token, id, path, sizes */
	MOVER_F_WELCOME = 2,	/* r->s: accepted, resume bitmap */
	MOVER_F_ERROR = 3,	/* either: errno + message, then close */
	MOVER_F_DATA = 4,	/* s->r: bytes at offset (raw or zstd) */
	MOVER_F_ZERO = 5,	/* s->r: [offset, offset+arg) reads as zeros */
	MOVER_F_UNIT_END = 6,	/* s->r: unit offset has been sent in full */
	MOVER_F_UNIT_ACK = 7,	/* r->s: unit offset is journaled */
	MOVER_F_FIN = 8,	/* s->r: no more units on this connection */
	MOVER_F_FIN_OK = 9,	/* r->s: every unit of it journaled */
	MOVER_F_VERIFY = 10,	/* s->r: digest of [offset, offset+arg) */
	MOVER_F_VERIFY_SUM = 11, /* r->s: arg = digest of that range */
	MOVER_F_COMMIT = 12,	/* s->r: finish the transfer */
	MOVER_F_COMMIT_OK = 13, /* r->s: destination complete and durable */
	MOVER_F_RANGES = 14,	/* s->r: after a range HELLO or a ROUND, the ranges */
	MOVER_F_ROUND = 15,	/* s->r: a session's round begins (its ranges follow) */
	MOVER_F_ROUND_OK = 16,	/* r->s: the round's bitmap */
	MOVER_F_ROUND_END = 17, /* s->r: every unit of the round was sent: make it durable */
	MOVER_F_ROUND_DONE = 18, /* r->s: the round is on disk */
	MOVER_F_TYPE_MAX = 18,
};

#define MOVER_DATA_ZSTD 0x0001u /* DATA flag: payload is one zstd frame */

/* HELLO flags */
#define MOVER_HELLO_RANGES 0x0001u /* a range copy */
#define MOVER_HELLO_VERIFY 0x0002u /* the sender will verify */
#define MOVER_HELLO_GROW 0x0004u   /* an existing smaller file may be extended */
#define MOVER_HELLO_SESSION 0x0008u /* a session: ranges come per round */
#define MOVER_HELLO_KNOWN 0x000fu
#define MOVER_RANGES_MAX (1u << 20) /* ranges of one transfer */
/* WELCOME flags */
#define MOVER_WELCOME_CREATED 0x0001u /* a new (part) file */
#define MOVER_WELCOME_RESUMED 0x0002u /* a journal was found */
#define MOVER_WELCOME_BLOCKDEV 0x0004u
#define MOVER_WELCOME_JOINED 0x0008u /* the transfer was live: resync own units only */
#define MOVER_WELCOME_ROUND 0x0010u  /* session: round, round_digest are set */
#define MOVER_ROUND_MAX 0x7fffffffu  /* rounds of a session */

struct mover_frame {
	uint8_t type;	  /* enum mover_ftype */
	uint16_t flags;
	uint32_t len;	  /* payload bytes following the header */
	uint32_t raw_len; /* DATA: decoded bytes */
	uint64_t offset;  /* image offset, or unit index */
	uint64_t arg;	  /* DATA: checksum; ZERO/VERIFY: length; ... */
};

struct mover_hello {
	uint8_t token[MOVER_TOKEN_BYTES];
	uint64_t image_bytes;
	uint64_t unit_bytes;
	uint64_t units_total;	/* units this transfer covers */
	uint64_t ranges_digest; /* of the normalized ranges, 0: whole image */
	uint32_t flags;		/* MOVER_HELLO_* */
	uint32_t zero_mode;	/* enum mover_zero */
	uint32_t conn_index;
	uint32_t conns;
	uint32_t nr_ranges;	/* RANGES flag: ranges that follow in RANGES frames */
	char transfer_id[MOVER_ID_MAX + 1];
	char path[MOVER_PATH_MAX + 1];
};

struct mover_welcome {
	uint32_t flags; /* MOVER_WELCOME_* */
	uint64_t dest_bytes;
	uint64_t units_done;
	uint32_t bitmap_bytes;
	uint32_t round;	       /* MOVER_WELCOME_ROUND: the receiver's round... */
	uint32_t round_digest; /* ...and the low 32 bits of its ranges' digest */
	const uint8_t *bitmap; /* points into the decoded payload */
};

/* ROUND payload (the frame's offset is the round, arg its ranges' digest). */
struct mover_round {
	uint32_t nr_ranges;   /* RANGES frames follow with them */
	uint64_t units_total; /* units they touch */
};

#define MOVER_ROUND_BYTES 16

/* Per-connection receive state: which unit is open, what it covered. */
struct mover_rx {
	uint64_t image_bytes;
	uint64_t unit_bytes;
	const struct ferry_range *ranges; /* the transfer's (normalized), or NULL:
					   * the whole image */
	size_t nr_ranges;
	bool in_unit;
	uint64_t unit_index;
	uint64_t unit_next; /* frames of a unit go forward */
	uint64_t unit_covered;
};

void mover_frame_encode(const struct mover_frame *f, uint8_t hdr[MOVER_HDR_BYTES]);
/* Header only: magic, version, type, flags and length bounds per type. */
int mover_frame_decode(const uint8_t hdr[MOVER_HDR_BYTES], struct mover_frame *f,
		       const char **why);
size_t mover_hello_encode(const struct mover_hello *h, uint8_t *buf, size_t cap);
int mover_hello_decode(const uint8_t *p, size_t len, struct mover_hello *h, const char **why);
size_t mover_welcome_encode(const struct mover_welcome *w, uint8_t *buf, size_t cap);
int mover_welcome_decode(const uint8_t *p, size_t len, uint64_t units, struct mover_welcome *w,
			 const char **why);
size_t mover_round_encode(const struct mover_round *r, uint8_t *buf, size_t cap);
int mover_round_decode(const uint8_t *p, size_t len, struct mover_round *r, const char **why);
size_t mover_error_encode(int err, const char *msg, uint8_t *buf, size_t cap);
/* err is a positive errno (EPROTO when out of range). */
int mover_error_decode(const uint8_t *p, size_t len, int *err, char *msg, size_t msglen);
/* RANGES payload: 16 bytes (offset, length) per range. */
size_t mover_ranges_encode(const struct ferry_range *r, size_t n, uint8_t *buf, size_t cap);
/* Append the ranges of one payload to out[*n..]; they must be sorted,
 * apart (normalized) and inside the image; prev_end: end of out[*n - 1]. */
int mover_ranges_decode(const uint8_t *p, size_t len, uint64_t image_bytes,
			struct ferry_range *out, size_t *n, size_t cap, const char **why);
/* Units the normalized ranges touch. */
uint64_t mover_ranges_units(const struct ferry_range *r, size_t n, uint64_t unit_bytes);
void mover_rx_init(struct mover_rx *rx, uint64_t image_bytes, uint64_t unit_bytes);
/* Bytes of [off, off+len) the transfer covers (its ranges or the image). */
uint64_t mover_rx_covered(const struct mover_rx *rx, uint64_t off, uint64_t len);
/* Check a frame from the sender against the transfer before acting on it:
 * data and zeros inside the transfer's ranges and one unit, in order; a
 * unit end only after the unit's every covered byte; verify inside one
 * range. */
int mover_rx_check(struct mover_rx *rx, const struct mover_frame *f, const char **why);
/* Decode a DATA payload (decompress into out, which holds raw_len) and check
 * its checksum; *data points at the decoded bytes.  -EBADMSG on mismatch. */
int mover_data_decode(const struct mover_frame *f, const uint8_t *payload, void *dctx,
		      uint8_t *out, const uint8_t **data, const char **why);
uint64_t mover_data_checksum(const void *p, size_t len, uint64_t offset);
/* A zstd decompression context (one per receiving connection). */
void *mover_dctx_new(void);
void mover_dctx_free(void *dctx);
bool mover_id_valid(const char *id);
/* "0x40000000+1M" */
const char *mover_extent_str(uint64_t off, uint64_t len, char *buf, size_t blen);
void put_le16(uint8_t *p, uint16_t v);
void put_le32(uint8_t *p, uint32_t v);
void put_le64(uint8_t *p, uint64_t v);
uint16_t get_le16(const uint8_t *p);
uint32_t get_le32(const uint8_t *p);
uint64_t get_le64(const uint8_t *p);

/* hash_avx2.c: XXH3-64 built for AVX2 (only called where the CPU has it) */
uint64_t mover_xxh3_avx2(const void *p, size_t len, uint64_t seed);

/* extent.c: ranges, work units, holes and zero runs */
struct mover_part {
	uint64_t off;
	uint64_t len;
};

struct mover_unit {
	uint64_t index;	     /* off / unit_bytes */
	uint32_t first_part; /* into plan->parts */
	uint32_t nr_parts;
	uint64_t bytes; /* covered */
};

struct mover_plan {
	uint64_t image_bytes;
	uint64_t unit_bytes;
	uint64_t total_bytes;
	uint64_t digest; /* of the ranges, 0 for the whole image */
	bool ranges;
	struct mover_unit *units;
	size_t nr_units;
	struct mover_part *parts;
	size_t nr_parts;
};

/* Sort, check and merge ranges (in place); *n becomes the merged count. */
int mover_ranges_normalize(struct ferry_range *r, size_t *n, uint64_t image_bytes);
uint64_t mover_ranges_digest(const struct ferry_range *r, size_t n);
int mover_plan_build(struct mover_plan *p, uint64_t image_bytes, uint64_t unit_bytes,
		     const struct ferry_range *ranges, size_t nr_ranges);
void mover_plan_free(struct mover_plan *p);

struct mover_seg {
	uint64_t off;
	uint64_t len;
	bool data; /* false: a hole */
};

struct mover_segs {
	struct mover_seg *v;
	size_t n, cap;
};

/* Holes and data of [off, off+len) by SEEK_DATA/SEEK_HOLE, appended. */
int mover_extent_map(int fd, bool seekable, uint64_t off, uint64_t len, struct mover_segs *s);
void mover_segs_free(struct mover_segs *s);
bool mover_is_zero(const void *p, size_t len);
/* Length of the run starting at p (zero or not, per *zero) in whole blocks
 * aligned to absolute offsets, at most len. */
size_t mover_run_len(const uint8_t *p, size_t len, uint64_t off, bool *zero);

/* codec.c: adaptive zstd */
#define MOVER_LINK_SAMPLES 15
#define MOVER_ZSTD_NLEVELS 5 /* auto's ladder: see mover_codec_init */
struct mover_codec {
	void *cctx; /* ZSTD_CCtx, one per thread */
	enum mover_compress mode;
	int level;			    /* zstd:N's; auto: the ladder's strongest */
	int levels[MOVER_ZSTD_NLEVELS];	    /* auto: the ladder, [0] measured first */
	int nlevels;
	int cur_level;			    /* set in cctx */
	uint8_t *out;			    /* compressed chunk */
	size_t out_cap;
	/* auto: measured by this thread during the copy (0: unknown), per level */
	double own_link_bps; /* this connection's rate when the link is the limit */
	double own_zstd_bps[MOVER_ZSTD_NLEVELS]; /* compressor input per second */
	double own_ratio[MOVER_ZSTD_NLEVELS];	 /* compressed/raw of chunks sampled compressible */
	double own_rel[MOVER_ZSTD_NLEVELS];	 /* size at the level / at levels[0], same chunk */
	/* what decisions use: the transfer's averages (set by stream.c) */
	double link_bps;
	double zstd_bps[MOVER_ZSTD_NLEVELS];
	double ratio[MOVER_ZSTD_NLEVELS];
	double rel[MOVER_ZSTD_NLEVELS];
	uint32_t chunks, probes;
	size_t ref_len;	 /* a probed chunk's size at levels[0] (0: none) */
	size_t last_len; /* the last compression's size, worth it or not */
	uint64_t used[MOVER_ZSTD_NLEVELS]; /* chunks compressed at each level */
	uint64_t link_samples[MOVER_LINK_SAMPLES]; /* delivery rates, a ring */
	size_t nr_link_samples;
};

#define MOVER_ZSTD_FAST_LEVEL (-3)
/*
 * auto's first level, the one measured before the others.  3 rather than
 * zstd's 1: on the live bench's guest records it sends 8% fewer bytes at
 * 1 Gbit/s (1085 vs 1185 MiB, total 12.3 vs 13.3 s), and on the mover
 * bench's image it costs no wall time at any link (2.17/2.91/15.74 s vs
 * 2.24/2.82/15.69 unshaped/10G/1G), only CPU where it is chosen.
 */
#define MOVER_ZSTD_AUTO_LEVEL 3
/* auto's strongest level unless auto:N says otherwise. */
#define MOVER_ZSTD_AUTO_MAX 9

int mover_codec_init(struct mover_codec *c, enum mover_compress mode, int level);
void mover_codec_fini(struct mover_codec *c);
/* Ratio (compressed/raw) of a sample of the chunk, 1.0 when incompressible. */
double mover_codec_sample(struct mover_codec *c, const uint8_t *p, size_t len);
/* How to send this chunk: 0 raw, else 1 + the index of its level in
 * c->levels (samples the chunk when compressing could pay). */
int mover_codec_choose(struct mover_codec *c, const uint8_t *p, size_t len);
/*
 * Pure policy over n levels: 1 + the index of the level that moves a chunk
 * fastest, min(zstd_bps[k], link_bps / ratio[k]), if clearly faster than
 * raw (link_bps), else 0.  ratio[k] 0 (not measured): sample_ratio.  An
 * unmeasured level 0 is picked to be measured; other unmeasured levels are
 * left to probes.  sample_ratio 0: perfect (could any level pay?).
 */
int mover_policy_zstd(double sample_ratio, double link_bps, const double *zstd_bps,
		      const double *ratio, int n);
/* A delivery-rate sample of the connection (TCP_INFO); cap_bps: the
 * connection's share of --bwlimit, 0 for none. */
void mover_codec_link(struct mover_codec *c, uint64_t delivery_bps, bool app_limited,
		      uint64_t cap_bps);
/* Compress into c->out (which: as chosen); returns the size, or 0 when not
 * worth it. */
size_t mover_codec_compress(struct mover_codec *c, const uint8_t *p, size_t len, int which);
/* Account a compression of len input bytes to clen (0: not worth it) in ns. */
void mover_codec_account(struct mover_codec *c, int which, size_t len, size_t clen, uint64_t ns);

/* aio.c: source reads, libaio + O_DIRECT where possible, buffered where the
 * data is cached or O_DIRECT is refused */
#define MOVER_READ_DEPTH 4

struct mover_rreq {
	uint64_t off;
	uint32_t len;
};

struct mover_reader {
	int fd;	       /* buffered */
	int direct_fd; /* O_DIRECT, or -1 */
	uint32_t align;
	void *aio; /* io_context_t */
	uint8_t *buf[MOVER_READ_DEPTH];
	size_t buf_cap;
	/* the current batch */
	const struct mover_rreq *reqs;
	size_t nr, next_submit, next_done;
	bool direct;
	bool cachestat_ok;
	uint64_t direct_bytes, buffered_bytes;
};

int mover_reader_init(struct mover_reader *r, int fd, const char *path);
void mover_reader_fini(struct mover_reader *r);
/* Decide buffered vs direct for [off, off+len) (page cache residency). */
void mover_reader_choose(struct mover_reader *r, uint64_t off, uint64_t len);
/* Read reqs in order, MOVER_READ_DEPTH in flight; next returns each one. */
int mover_reader_start(struct mover_reader *r, const struct mover_rreq *reqs, size_t nr);
int mover_reader_next(struct mover_reader *r, const uint8_t **data);
void mover_reader_cancel(struct mover_reader *r);

/* The receiver's writes, one writer per connection: data lands in a slot
 * buffer (read or decompressed there, checked there), then goes out with
 * O_DIRECT through libaio when aligned (MOVER_WRITE_DEPTH in flight), or
 * through the page cache when not (a file's tail, an odd range). */
#define MOVER_WRITE_DEPTH 4

struct mover_wslot {
	uint8_t *buf; /* aligned */
	size_t cap;
	uint64_t off;
	size_t len;
	bool busy;
};

struct mover_writer {
	void *aio; /* io_context_t and iocbs */
	struct mover_wslot slot[MOVER_WRITE_DEPTH];
	unsigned int next, inflight;
	int err; /* the first failed write, and where */
	uint64_t err_off, err_len;
	struct mover_dst *dst; /* of the writes in flight */
};

struct mover_dst;
int mover_writer_init(struct mover_writer *w);
void mover_writer_fini(struct mover_writer *w);
/* The next slot's buffer, for up to len bytes (waits for its last write). */
int mover_writer_buf(struct mover_writer *w, size_t len, uint8_t **buf);
/* Write len bytes of that buffer at off. */
int mover_writer_submit(struct mover_writer *w, struct mover_dst *dst, size_t len, uint64_t off);
/* Wait for every write in flight; the first error (w->err_off/len). */
int mover_writer_drain(struct mover_writer *w);

/* journal.c: receiver's resume journal (append-only, fsync'd) */
struct mover_journal_hdr {
	uint64_t image_bytes;
	uint64_t unit_bytes;
	uint64_t units_total;
	uint64_t ranges_digest;
	uint64_t dest_dev; /* identity of the destination written */
	uint64_t dest_ino;
	uint64_t part_id; /* random identity of the part file (its xattr) */
	uint32_t flags; /* MOVER_WELCOME_CREATED: the part file is ours */
	char transfer_id[MOVER_ID_MAX + 1];
};

struct mover_journal {
	int fd;
	char path[PATH_MAX];
	struct mover_journal_hdr hdr;
	uint64_t seed;	/* record check seed: the header's checksum */
	off_t end;	/* where the next record goes */
	pthread_mutex_t lock;	     /* bitmap, pending, sequence numbers */
	pthread_mutex_t commit_lock; /* one group commit at a time */
	uint64_t nbits;	 /* units of the image */
	uint8_t *bitmap; /* committed + pending */
	uint64_t done;	 /* bits set */
	uint64_t *pending;
	size_t nr_pending, cap_pending;
	uint64_t marks;	       /* units marked, also those marked again */
	uint64_t marks_synced; /* of them, written before the last data sync */
	uint64_t taken_seq;   /* group commits started */
	uint64_t durable_seq; /* group commits on disk */
	uint64_t commits;
	int err;	      /* a failed group commit: every later one fails */
	const char *err_what; /* "fdatasync of the destination", ... */
	/* A session's journal (MOVER_JOURNAL_SESSION): records carry their
	 * round; the bitmap is the current round's. */
	bool session;
	bool have_round;       /* a round was begun (now, or found in the file) */
	uint32_t round;	       /* the current round */
	uint32_t round_digest; /* low 32 bits of its ranges' digest */
};

#define MOVER_JOURNAL_SESSION 0x0100u /* header flag: a session's journal */
#define MOVER_JOURNAL_ROUND_REC (1ULL << 63) /* record: a round begins */

#define MOVER_JOURNAL_HDR_BYTES 144
#define MOVER_JOURNAL_REC_BYTES 16

size_t mover_journal_hdr_encode(const struct mover_journal_hdr *h, uint8_t *buf);
int mover_journal_hdr_decode(const uint8_t *buf, struct mover_journal_hdr *h);
void mover_journal_rec_encode(uint64_t seed, uint64_t unit, uint8_t *buf);
int mover_journal_rec_decode(uint64_t seed, const uint8_t *buf, uint64_t *unit);
/* Open (resume) or create the journal for want->transfer_id in dir.  An
 * existing journal whose header differs from *want is replaced; *resumed
 * says whether it was kept, *found_flags gives the old header's flags. */
int mover_journal_open(struct mover_journal **jp, const char *dir, const struct mover_journal_hdr *want,
		       bool *resumed, uint32_t *found_flags);
/* Look at an existing journal's header without changing it (-ENOENT). */
int mover_journal_peek(const char *dir, const char *id, struct mover_journal_hdr *h);
bool mover_journal_test(struct mover_journal *j, uint64_t unit);
/* Mark a unit received and written; returns the group commit that will
 * make it durable (compare with mover_journal_durable()). */
uint64_t mover_journal_mark(struct mover_journal *j, uint64_t unit);
/* A session's next round: the bitmap starts empty; the round's record goes
 * out with the next group commit, ahead of its units.  0 or -ENOMEM. */
int mover_journal_round(struct mover_journal *j, uint32_t round, uint32_t digest);
/* fdatasync(dest_fd) if a unit was marked since the last one, append the
 * pending records (the first commit with records creates the file),
 * fdatasync the journal.  MOVER_JOURNAL_DATA_ONLY: while the file does not
 * exist, only the data sync; the records stay pending (for the last units
 * of a transfer whose commit comes next).  On failure the pending units
 * are marked not done again, and the journal refuses every later commit
 * (j->err, j->err_what): what was in flight is not known to be on disk. */
#define MOVER_JOURNAL_DATA_ONLY 0x1u
int mover_journal_commit(struct mover_journal *j, int dest_fd, unsigned int flags);
uint64_t mover_journal_durable(struct mover_journal *j);
uint64_t mover_journal_done(struct mover_journal *j);
int mover_journal_remove(struct mover_journal *j);
void mover_journal_close(struct mover_journal *j);

/* dest.c: the receiver's destination */
struct mover_dst {
	int fd;
	int dir_fd;		 /* for the part file and the rename, or -1 */
	char name[NAME_MAX + 1]; /* final name in dir_fd */
	char part[NAME_MAX + 1]; /* ".NAME.ID.ferry-part" while created */
	char display[PATH_MAX];	 /* for messages */
	bool blockdev;
	bool created; /* a part file made by this transfer */
	bool fresh;   /* created in this session: holes can be skipped */
	uint64_t size;
	uint64_t dev, ino;
	uint64_t part_id; /* a part file's identity (xattr user.ferry.part) */
	enum mover_zero zero_mode;
	uint32_t logical_block; /* devices */
	bool punch_ok;
	int dfd;	    /* the same, O_DIRECT, or -1 */
	uint32_t dio_align; /* of O_DIRECT offsets and lengths */
	atomic_bool dio_off; /* O_DIRECT writes failed: page cache only */
};

/* Open or create per *d (from authorize) for an image of image_bytes.  When
 * resume_part is set, reopen that part file (resume); grow: a smaller
 * existing file may be extended.  A created part file gets a random
 * identity in its xattr and its directory is fsync'd. */
int mover_dst_open(struct mover_dst *dst, struct mover_dest *d, const char *transfer_id,
		   uint64_t image_bytes, bool resume_part, bool grow, char *err, size_t errlen);
int mover_dst_write(struct mover_dst *dst, const void *buf, size_t len, uint64_t off);
int mover_dst_zero(struct mover_dst *dst, uint64_t off, uint64_t len);
/* The part file being written is still under its name: not removed or
 * replaced since it was opened (always true of an existing destination). */
bool mover_dst_part_linked(const struct mover_dst *dst);
/* Rename the part file to its name and fsync the directory (the data is
 * the last group commit's to sync); -ESTALE when the part file is no
 * longer under its name. */
int mover_dst_finish(struct mover_dst *dst);
void mover_dst_close(struct mover_dst *dst);

/* stats.c */
/* Token bucket shared by the sender's threads. */
struct mover_ratelimit {
	pthread_mutex_t lock;
	uint64_t bps;
	uint64_t next_ns; /* when the next byte may leave */
};

void mover_ratelimit_init(struct mover_ratelimit *rl, uint64_t bps);
void mover_ratelimit_wait(struct mover_ratelimit *rl, uint64_t bytes, const atomic_bool *stop);
void mover_ratelimit_fini(struct mover_ratelimit *rl);
/* Human size "1M", "512K", "1536" for extents in messages. */
const char *mover_size_str(uint64_t v, char *buf, size_t len);

/* send.c: mover_send() and the connection threads */
enum mover_unit_state {
	UNIT_TODO = 0,
	UNIT_INFLIGHT,
	UNIT_SENT,    /* UNIT_END sent */
	UNIT_ACKED,   /* journaled by the receiver */
	UNIT_SKIPPED, /* the receiver had it (resume) */
};

struct mover_xfer;

/* One connection of a transfer and its thread. */
struct mover_sconn {
	struct mover_xfer *x;
	int index;
	int fd; /* -1 between connections; under x->lock */
	pthread_t thr;
	bool started;
	bool ready; /* codec and reader set up */
	struct mover_codec codec;
	struct mover_reader rd;
	struct mover_segs segs;
	struct mover_rreq *reqs;
	size_t cap_reqs;
	uint8_t in[8192]; /* frames from the receiver */
	size_t inlen;
	bool fin_ok, commit_ok, have_sum, round_done;
	uint64_t sum_off, sum;
	uint8_t commit_info[32];
	uint64_t unit_done; /* bytes of the current unit sent */
	bool zerocopy;	    /* raw data by sendfile from the page cache */
	/* codec estimates, for the other connections' decisions (ratio: ppm) */
	atomic_uint_fast64_t pub_link_bps;
	atomic_uint_fast64_t pub_zstd_bps[MOVER_ZSTD_NLEVELS];
	atomic_uint_fast64_t pub_ratio_ppm[MOVER_ZSTD_NLEVELS];
	atomic_uint_fast64_t pub_rel_ppm[MOVER_ZSTD_NLEVELS];
	bool no_zerocopy;   /* not any more: a chunk failed its checksum */
	char errmsg[MOVER_ERR_MAX];
};

/* One transfer (a call of mover_send). */
struct mover_xfer {
	const struct mover_send_opts *o;
	char id[MOVER_ID_MAX + 1];
	char label[512];
	int src_fd;
	bool own_src;
	bool seekable; /* SEEK_DATA/SEEK_HOLE apply (regular file) */
	uint64_t image_bytes;
	uint64_t unit_bytes;
	struct mover_plan plan;
	struct ferry_range *ranges; /* normalized, as sent in RANGES frames */
	size_t nr_ranges;
	pthread_mutex_t lock; /* state, queue, conns[].fd, error */
	uint8_t *state;	      /* enum mover_unit_state per plan unit */
	int *owner;	      /* per plan unit: the connection that last sent it */
	size_t *requeue;      /* units to send again */
	size_t nr_requeue;
	size_t *order; /* plan units in the order they are handed out */
	size_t next;   /* next position in order */
	size_t verify_next;
	int nconns;
	struct mover_sconn conns[MOVER_CONNS_MAX];
	int max_retries;
	uint32_t retries;
	int io_timeout_ms;
	atomic_bool stop; /* an error or cancel: every thread ends */
	int err;	  /* first fatal error */
	char errmsg[MOVER_ERR_MAX];
	struct mover_ratelimit rl;
	bool resumed, created;
	uint64_t start_ns;
	uint64_t skipped_bytes, units_skipped; /* under lock */
	atomic_uint_fast64_t read_bytes, hole_bytes, zero_bytes, data_bytes, raw_bytes;
	atomic_uint_fast64_t zstd_in_bytes, zstd_out_bytes, wire_bytes, acked_bytes;
	atomic_uint_fast64_t verified_bytes, units_sent, units_acked, done_bytes, chunks;
	pthread_mutex_t plock; /* progress callback */
	atomic_uint_fast64_t last_progress_ns;
	/* A session (round.c): one transfer, rounds over these connections. */
	bool session;
	bool in_round;	  /* a round is under way: a (re)connection sends ROUND */
	bool round_first; /* the next ROUND is the round's first on conn 0 */
	bool round_started;
	uint32_t round;	  /* the current (or last) round */
	bool peer_round_known; /* the receiver's last round, from WELCOME */
	uint32_t peer_round, peer_round_digest;
};

/* Connections by default: two per core, 4..8. */
int mover_default_conns(void);
/* sendmsg of all of iov, MSG_NOSIGNAL; 0 or -errno. */
int mover_sock_sendv(int fd, struct iovec *iov, int n);
/* Worth reconnecting after this error? */
bool mover_retryable(int err);
/* Record the first fatal error and stop every thread. */
void mover_fail(struct mover_xfer *x, int err, const char *fmt, ...) __printf(3, 4);
bool mover_stopped(struct mover_xfer *x);
int mover_handshake(struct mover_xfer *x, struct mover_sconn *c, bool first);
/* A session: ROUND on fd, ROUND_OK's bitmap applied (first: skip, else
 * resync). */
int mover_round_send(struct mover_xfer *x, struct mover_sconn *c, int fd, bool first);
void mover_sconn_close(struct mover_xfer *x, struct mover_sconn *c);
/* The pieces of mover_send(), for round.c. */
int mover_xfer_check_opts(struct mover_xfer *x, struct mover_stats *st);
int mover_xfer_open_source(struct mover_xfer *x, struct mover_stats *st);
int mover_xfer_plan(struct mover_xfer *x, const struct ferry_range *ranges, size_t n);
void mover_xfer_plan_free(struct mover_xfer *x);
void mover_xfer_stats(struct mover_xfer *x, struct mover_stats *st);
bool mover_xfer_take_retry(struct mover_xfer *x);
void mover_xfer_backoff(struct mover_xfer *x, unsigned int attempt);
void *mover_sconn_main(void *arg);

/* stream.c: what a connection sends */
int mover_sconn_init(struct mover_sconn *c);
void mover_sconn_fini(struct mover_sconn *c);
/* Stream plan unit i: holes, zero runs, data, UNIT_END. */
int mover_unit_send(struct mover_sconn *c, size_t i);
/* FIN, then wait until the receiver journaled this connection's units. */
int mover_sconn_fin(struct mover_sconn *c);
/* Re-read both sides of every unit and compare (--verify). */
void mover_verify_all(struct mover_xfer *x);
void mover_commit(struct mover_xfer *x);
/* A session: ROUND_END on connection 0 (connected), until ROUND_DONE. */
int mover_round_end(struct mover_xfer *x);
void mover_progress_report(struct mover_xfer *x, bool final);

/* recv.c, session.c: the receiver (public API above) */
/* A transfer on the receiver, shared by its connections. */
struct mover_rsession {
	struct mover_rsession *next;
	struct mover_server *srv;
	char id[MOVER_ID_MAX + 1];
	struct mover_hello params; /* of the first HELLO (token zeroed) */
	struct ferry_range *ranges; /* a range copy's, or NULL */
	size_t nr_ranges;
	int refs;		   /* connections attached, under srv->lock */
	bool closing;		   /* last one left: being closed, under srv->lock */
	pthread_mutex_t lock;	   /* init, verify sync, commit */
	bool ready, verify_synced;
	atomic_bool committed;	   /* no frame is taken after this */
	atomic_int units_open;	   /* units being written, on any connection */
	uint64_t done_key;	   /* hash of (id, token), remembered once committed */
	atomic_bool failed;	   /* error is set before failed */
	pthread_mutex_t fail_lock;
	char error[MOVER_ERR_MAX];
	struct mover_dst dst;
	struct mover_journal *j;
	bool resumed;
	char peer[64];
	atomic_uint_fast64_t written_bytes, zeroed_bytes;
	atomic_uint_fast64_t last_commit_ns;
	/* A session (MOVER_HELLO_SESSION): one transfer, ranges per round.
	 * Every round's ranges are kept until the session closes, so that a
	 * connection still holding an old round's never reads freed memory;
	 * under lock, but round_gen. */
	bool session;
	struct ferry_range **rounds;
	size_t nr_rounds;
	const struct ferry_range *round_ranges; /* the current round's, or NULL */
	size_t round_nr;
	uint64_t round_units;	/* units the current round touches */
	uint64_t round_digest;	/* of its ranges */
	atomic_uint round_gen;	/* bumped when a round begins */
};

struct mover_rack {
	uint64_t unit, seq;
};

/* A connection to the receiver and its thread. */
struct mover_rconn {
	struct mover_rconn *next;
	struct mover_server *srv;
	int fd;
	pthread_t thr;
	atomic_bool finished;
	bool authed;	  /* HELLO authorized; under srv->lock */
	bool evicted;	  /* pushed out before its HELLO; under srv->lock */
	bool unit_open;	  /* counted in s->units_open */
	uint64_t accepted_ms;
	uint64_t deadline_ms; /* of the frame being read */
	char addr[64];	  /* peer address without the port, "local" */
	char peer[64];
	struct mover_rsession *s;
	unsigned int rx_gen; /* the session round whose ranges rx holds */
	bool rx_set;
	uint8_t *payload; /* MOVER_PAYLOAD_MAX: compressed data, HELLO */
	uint8_t *out;	  /* MOVER_CHUNK_MAX: verify reads */
	struct mover_writer w;
	void *dctx;
	struct mover_rx rx;
	struct mover_rack *acks;
	size_t nr_acks, cap_acks;
	char err[MOVER_ERR_MAX];
};

struct mover_server {
	struct mover_server_conf conf;
	struct mover_server_ops ops;
	void *ctx;
	int lfd;
	int wake[2];
	pthread_t accept_thr;
	bool accept_started;
	pthread_mutex_t lock; /* conns, sessions */
	struct mover_rconn *conns;
	int nr_conns;
	struct mover_rsession *sessions;
	pthread_cond_t closed;	/* a session was closed */
	uint64_t *done_keys;	/* committed (transfer id, token), a ring */
	size_t nr_done_ids, next_done_id;
	atomic_bool stopping;
	atomic_uint_fast64_t completed;
};

#define MOVER_DONE_IDS 4096 /* committed ids remembered (refused again) */

int mover_rconn_send(struct mover_rconn *c, uint8_t type, uint64_t off, uint64_t arg,
		     const void *payload, uint32_t len);
/* Read len bytes by c->deadline_ms (-ETIMEDOUT after). */
int mover_rconn_read(struct mover_rconn *c, void *buf, size_t len);
/* One frame: header checked by wire.c, then its (bounded) payload. */
int mover_rconn_read_frame(struct mover_rconn *c, struct mover_frame *f, const char **why);
/* Wait for this connection's writes; a failed one fails the session. */
int mover_rconn_drain(struct mover_rconn *c);
/* The first frame: HELLO, authorize, find or create the session, WELCOME. */
int mover_session_hello(struct mover_rconn *c);
/* Record the session's first failure; every connection then ends. */
void mover_session_fail(struct mover_rsession *s, const char *msg);
/* A connection leaves; the last one closes the session and calls done. */
void mover_session_release(struct mover_server *srv, struct mover_rsession *s, const char *why);
int mover_session_unit_end(struct mover_rconn *c, uint64_t unit);
/* Group commit, every commit_ms or now (force). */
int mover_session_commit(struct mover_rconn *c, bool force);
/* UNIT_ACK the units of c that are durable. */
int mover_session_acks(struct mover_rconn *c);
int mover_session_verify(struct mover_rconn *c, uint64_t off, uint64_t len);
/* A session: give rx the current round's ranges (none before a round). */
void mover_session_rx_sync(struct mover_rconn *c);
/* ROUND (its payload in c->payload): read its ranges, begin or rejoin it,
 * reply ROUND_OK with the round's bitmap. */
int mover_session_round(struct mover_rconn *c, const struct mover_frame *f);
/* ROUND_END: the round's one durability point, then ROUND_DONE. */
int mover_session_round_end(struct mover_rconn *c, const struct mover_frame *f);
/* COMMIT: every unit there, fsync, rename, journal removed. */
int mover_session_finish(struct mover_rconn *c);


#endif /* FERRY_MOVER_H */
