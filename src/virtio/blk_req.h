/* virtio-blk wire format (virtio 1.2 §5.2) and the pure request planner: a descriptor chain in, an operation or a status out. */
#ifndef KILN_BLK_REQ_H
#define KILN_BLK_REQ_H

#include <stddef.h>
#include <sys/uio.h>
#include "core/types.h"
#include "virtio/virtqueue.h"

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX     1
#define VIRTIO_BLK_F_SEG_MAX      2
#define VIRTIO_BLK_F_RO           5
#define VIRTIO_BLK_F_BLK_SIZE     6
#define VIRTIO_BLK_F_FLUSH        9
#define VIRTIO_BLK_F_DISCARD      13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

/* Request types (§5.2.6). */
#define VIRTIO_BLK_T_IN           0
#define VIRTIO_BLK_T_OUT          1
#define VIRTIO_BLK_T_FLUSH        4
#define VIRTIO_BLK_T_GET_ID       8
#define VIRTIO_BLK_T_GET_LIFETIME 10
#define VIRTIO_BLK_T_DISCARD      11
#define VIRTIO_BLK_T_WRITE_ZEROES 13
#define VIRTIO_BLK_T_SECURE_ERASE 14

/* Status byte values (§5.2.6). */
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2

/* The one flag of a discard / write-zeroes segment (§5.2.6). */
#define VIRTIO_BLK_WZ_F_UNMAP 1u

#define VIRTIO_BLK_SECTOR_SIZE 512u
#define VIRTIO_BLK_SECTOR_SHIFT 9
/* GET_ID: a NUL-padded ASCII string of up to 20 bytes, no terminator at 20 (§5.2.6). */
#define VIRTIO_BLK_ID_BYTES 20

/* Device configuration layout (§5.2.4), little-endian, up to and including unused1. */
struct virtio_blk_config {
	uint64_t capacity;                 /* in 512-byte sectors, whatever blk_size says */
	uint32_t size_max;
	uint32_t seg_max;
	struct {
		uint16_t cylinders;
		uint8_t heads;
		uint8_t sectors;
	} geometry;
	uint32_t blk_size;
	struct {
		uint8_t physical_block_exp;
		uint8_t alignment_offset;
		uint16_t min_io_size;
		uint32_t opt_io_size;
	} topology;
	uint8_t writeback;
	uint8_t unused0;
	uint16_t num_queues;
	uint32_t max_discard_sectors;
	uint32_t max_discard_seg;
	uint32_t discard_sector_alignment;
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;
	uint8_t write_zeroes_may_unmap;
	uint8_t unused1[3];
} __packed;  /* 60 bytes; a u64 first would pad it to 64 */
_Static_assert(offsetof(struct virtio_blk_config, seg_max) == 12, "virtio_blk_config.seg_max (§5.2.4)");
_Static_assert(offsetof(struct virtio_blk_config, blk_size) == 20, "virtio_blk_config.blk_size");
_Static_assert(offsetof(struct virtio_blk_config, writeback) == 32, "virtio_blk_config.writeback");
_Static_assert(offsetof(struct virtio_blk_config, num_queues) == 34, "virtio_blk_config.num_queues");
_Static_assert(offsetof(struct virtio_blk_config, max_discard_sectors) == 36, "virtio_blk_config.max_discard_sectors");
_Static_assert(offsetof(struct virtio_blk_config, max_write_zeroes_sectors) == 48, "virtio_blk_config.max_write_zeroes_sectors");
_Static_assert(offsetof(struct virtio_blk_config, write_zeroes_may_unmap) == 56, "virtio_blk_config.write_zeroes_may_unmap");
_Static_assert(sizeof(struct virtio_blk_config) == 60, "virtio_blk_config through unused1 is 60 bytes");

/* The request header every request starts with (§5.2.6: struct virtio_blk_req up to data). */
struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t reserved;                 /* was ioprio (legacy): ignored */
	uint64_t sector;
};
_Static_assert(sizeof(struct virtio_blk_outhdr) == 16, "virtio_blk_req header is 16 bytes (§5.2.6)");

/* One DISCARD / WRITE_ZEROES segment (§5.2.6). */
struct virtio_blk_discard_write_zeroes {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;                    /* bit 0 unmap, bits 1..31 reserved */
};
_Static_assert(sizeof(struct virtio_blk_discard_write_zeroes) == 16, "discard/write-zeroes segment is 16 bytes");

/*
 * Planner limits. Each bounds host work a guest can ask for in one request;
 * they are also what the device advertises, so an honest driver never meets them.
 */
#define BLK_MAX_IOV   256u            /* data slices of one read/write (seg_max + header/status slack) */
#define BLK_MAX_SEGS  16u             /* discard / write-zeroes segments one request may carry */
#define BLK_MAX_DATA  (1ull << 30)    /* bytes of one read/write: one syscall moves it (below MAX_RW_COUNT) */

/* What the planner needs to know about the disk and the negotiated features. */
struct blk_limits {
	uint64_t capacity;                 /* sectors */
	bool readonly;
	bool discard;                      /* VIRTIO_BLK_F_DISCARD negotiated */
	bool write_zeroes;                 /* VIRTIO_BLK_F_WRITE_ZEROES negotiated */
	uint32_t max_discard_sectors;      /* per segment, as advertised */
	uint32_t max_discard_seg;          /* <= BLK_MAX_SEGS */
	uint32_t max_write_zeroes_sectors;
	uint32_t max_write_zeroes_seg;     /* <= BLK_MAX_SEGS */
};

enum blk_op {
	BLK_OP_NONE = 0,   /* nothing to do: complete at once with plan.status */
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,
	BLK_OP_DISCARD,
	BLK_OP_WRITE_ZEROES,
	BLK_OP_GET_ID,     /* copy the serial into iov (the device does, no backend I/O) */
};

/* One discard / write-zeroes range, in bytes, already checked against capacity. */
struct blk_seg {
	uint64_t offset;
	uint64_t len;                      /* > 0 */
	bool unmap;                        /* write zeroes may deallocate */
};

/*
 * A request, decided. For READ/WRITE, iov[0..niov) covers exactly `len`
 * bytes of guest buffers at disk byte `offset`; for GET_ID it covers the
 * buffer the ID goes into. Host pointers stay valid while guest RAM is
 * mapped. Large (4 KiB of iovecs): embed or allocate it.
 */
struct blk_plan {
	enum blk_op op;
	uint8_t status;                    /* BLK_OP_NONE: the status to report */
	const char *why;                   /* BLK_OP_NONE with an error status: why (tests, debug logs) */
	uint8_t *status_ptr;               /* host address of the status byte (last writable byte) */
	uint32_t data_in;                  /* device-writable bytes before the status byte */
	uint16_t head;                     /* chain head, for vq_push */
	uint64_t offset;                   /* READ/WRITE: disk byte offset */
	uint64_t len;                      /* READ/WRITE/GET_ID: bytes covered by iov */
	unsigned niov;
	struct iovec iov[BLK_MAX_IOV];
	unsigned nsegs;
	struct blk_seg segs[BLK_MAX_SEGS];
};

/*
 * Decide what chain c asks for (§5.2.6). Reads the header and any discard
 * segments out of guest memory once, into p. 0: p is a plan (possibly
 * BLK_OP_NONE with IOERR/UNSUPP). -EINVAL: the chain has no writable status
 * byte, so no status can be reported; the device must treat the driver as
 * broken (virtio_fail). Never touches the backend.
 */
int __must_check blk_plan(const struct vq_chain *c, const struct blk_limits *lim, struct blk_plan *p);

/*
 * The used length (§2.7.8.2: at most what was written contiguously from the
 * first writable byte) for plan p completed with `status`, given that on
 * success READ filled its data and GET_ID wrote min(data_in, 20) bytes.
 */
uint32_t blk_used_len(const struct blk_plan *p, uint8_t status);

/* Copy len bytes of src into iov (as far as it reaches); returns bytes copied. */
size_t blk_iov_fill(const struct iovec *iov, unsigned niov, const void *src, size_t len);

/* Drop the first `n` bytes from an iovec array in place; iov and niov move past consumed entries. */
void blk_iov_advance(struct iovec **iov, unsigned *niov, uint64_t n);

const char *blk_op_str(enum blk_op op);

#endif
