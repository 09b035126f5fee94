/* virtio-blk (virtio 1.2 §5.2) on a raw image: io_uring backend with a synchronous fallback. */
#ifndef KILN_BLK_H
#define KILN_BLK_H

#include "core/types.h"

struct vm;
struct virtio_dev;
struct disk_config;

#define BLK_QUEUE_SIZE 256u           /* one request queue of this many entries */

/* Per-disk counters for --stats (completed requests; bytes of successful transfers). */
struct blk_stats {
	uint64_t reads, writes, flushes, discards, write_zeroes, get_ids;
	uint64_t bytes_read, bytes_written;
	uint64_t io_errors;     /* IOERR from the backing file (EIO, ENOSPC, short I/O ...) */
	uint64_t bad_requests;  /* IOERR for a request the planner refused (guest error, RO disk) */
	uint64_t unsupported;   /* UNSUPP */
	uint64_t inflight_peak; /* most io_uring requests in flight at once */
};

/*
 * Open cfg->path and build disk number `index` ("virtio-blkN") as an
 * initialised virtio device (not yet given to a transport). *out lives in
 * the device's heap state: after virtio_add() the VM owns it, before that
 * virtio_dev_destroy() frees it all. 0 or -errno (logged).
 */
int __must_check blk_create(struct vm *vm, const struct disk_config *cfg, unsigned index, struct virtio_dev **out);

/* Every --disk in vm->cfg, created and handed to the chosen transport (the DEVICE_REGISTER init). */
int __must_check blk_init_disks(struct vm *vm);

/* Introspection and test hooks; d must be a device blk_create made. */
bool blk_uses_uring(struct virtio_dev *d);
int blk_backing_fd(struct virtio_dev *d);       /* the image fd (tests swap it with dup2 to inject errors) */
int blk_completion_fd(struct virtio_dev *d);    /* io_uring's eventfd, -1 for the sync backend */
unsigned blk_inflight(struct virtio_dev *d);    /* io_uring requests not yet completed */
/* Reap ready io_uring completions, as the I/O thread does when blk_completion_fd fires (takes d->lock). */
void blk_poll(struct virtio_dev *d);
void blk_get_stats(struct virtio_dev *d, struct blk_stats *s);

#endif
