/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * copy.h - moving disk data: the embedded mover (xfer.c) and the dirty tracker
 * (track.c).
 */
#ifndef FERRY_DAEMON_COPY_H
#define FERRY_DAEMON_COPY_H

#include "daemon/engine/engine.h"
#include "daemon/storage/storage.h"

/* xfer.c: the embedded mover receiver and the sender, for whole disks and
 * dirty ranges. */
struct xfer_progress {
	uint64_t done_bytes;
	uint64_t total_bytes;
	uint64_t wire_bytes;
};

int xfer_server_start(void);
void xfer_server_stop(void);
/* Destination: allow a transfer into @path of at most @size bytes; returns the token. */
int xfer_register(const char *mig_id, const char *xfer_id, const char *path, uint64_t size,
		  bool is_block, uint8_t token[32]);
void xfer_unregister_mig(const char *mig_id);
/*
 * Source: copy @src (whole when nranges < 0, else the ranges) into
 * @dest_path through the transfer @token at the destination's mover port.
 * Progress goes into @m's metrics.
 */
int xfer_send(struct migration *m, const char *src, const char *dest_path, const char *xfer_id,
	      const char *dst_host, uint16_t port, const uint8_t token[32],
	      const struct ferry_range *ranges, long nranges, char *err, size_t errlen);

/*
 * A session: one mover set-up (connections, handshake, token, journal) for
 * every round of a disk, each round acknowledged once durable on the
 * destination, then one commit.  A failed round fails the session: close
 * it and open it again with the same transfer id, which resumes.
 */
struct xfer_session;
struct xfer_session *xfer_session_open(struct migration *m, const char *src,
				       const char *dest_path, const char *xfer_id,
				       const char *dst_host, uint16_t port, const uint8_t token[32],
				       char *err, size_t errlen);
/* The source's size when it opened: a round cannot go past it. */
uint64_t xfer_session_image_bytes(const struct xfer_session *xs);
/* One round: the whole image when nranges < 0, else the ranges. */
int xfer_session_round(struct xfer_session *xs, const struct ferry_range *ranges, long nranges,
		       char *err, size_t errlen);
int xfer_session_commit(struct xfer_session *xs, char *err, size_t errlen);
void xfer_session_close(struct xfer_session *xs);

/* track.c: dirty tracking of a migrating disk (bpf/ tracker). */
struct track_disk;
int track_init(void);
void track_fini(void);
int track_start(const char *path, struct track_disk **out);
/*
 * Dirty ranges since the previous drain (malloc'd); *rescan when tracking
 * lost writes and the whole disk must be copied.
 */
int track_drain(struct track_disk *d, struct ferry_range **ranges, long *n, uint64_t *bytes,
		bool *rescan, uint32_t *reasons);
void track_stop(struct track_disk *d);

#endif /* FERRY_DAEMON_COPY_H */
