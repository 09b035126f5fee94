/* PCI config access, a polling virtio-pci (modern) driver and a virtio-blk client for kiln's test guests. */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include "lib.h"

/*
 * ---- PCI (PCI local bus 3.0 §3.2.2.3.2 configuration mechanism #1, §6) ----
 * Bus 0 only, as kiln's host bridge. A bdf is bus << 8 | device << 3 | function.
 * When no host bridge answers at 0xCF8 (QEMU microvm) the accessors use ECAM
 * from the ACPI MCFG instead.
 */
#define PCI_CONFIG_ADDRESS 0xcf8
#define PCI_CONFIG_DATA    0xcfc
#define PCI_BDF(bus, dev, fn) ((unsigned)(((bus) << 8) | ((dev) << 3) | (fn)))

#define PCI_VENDOR_ID      0x00
#define PCI_DEVICE_ID      0x02
#define PCI_COMMAND        0x04
#define PCI_STATUS         0x06
#define PCI_HEADER_TYPE    0x0e
#define PCI_BAR0           0x10
#define PCI_CAPABILITY_LIST 0x34
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_STATUS_CAP_LIST 0x10
#define PCI_CAP_ID_VNDR    0x09

/* Where the driver places memory BARs that no firmware assigned (kiln's and QEMU microvm's 32-bit window). */
#define PCI_MMIO_WINDOW_BASE 0xc0000000UL
#define PCI_MMIO_WINDOW_END  0xe0000000UL

uint32_t pci_read32(unsigned bdf, unsigned off);
uint16_t pci_read16(unsigned bdf, unsigned off);
uint8_t pci_read8(unsigned bdf, unsigned off);
void pci_write32(unsigned bdf, unsigned off, uint32_t v);
void pci_write16(unsigned bdf, unsigned off, uint16_t v);
void pci_write8(unsigned bdf, unsigned off, uint8_t v);
/* Config space goes through ECAM (MCFG), not 0xCF8. */
bool pci_uses_ecam(void);
/* First function on bus 0 with this vendor and one of the device IDs (list ends with 0): its bdf, or -1. */
int pci_find(uint16_t vendor, const uint16_t *devices);
/*
 * Memory BAR `bar` of bdf: its size (by the all-ones write, §6.2.5.1) and
 * address. A BAR at 0, or one the guest's page tables cannot reach (above
 * 5 GiB), is placed in [PCI_MMIO_WINDOW_BASE, PCI_MMIO_WINDOW_END). Memory
 * decode is off while sizing and restored after. 0 (it was in place), 1 (this
 * function placed it), or -1 (I/O BAR, no room).
 */
int pci_bar(unsigned bdf, unsigned bar, uint64_t *addr, uint64_t *size);

/* ---- guest RAM for rings and buffers ---- */
/* Zeroed RAM after the image, `align` a power of two; identity-mapped so the address is the GPA. fail()s when out. */
void *dma_alloc(size_t size, size_t align);
/* Top of the RAM region holding the image (from the PVH memmap). */
uint64_t ram_top(void);

/* ---- virtio (virtio 1.2) ---- */
#define VIRTIO_PCI_VENDOR        0x1af4
#define VIRTIO_PCI_DEVICE_BLK    0x1042   /* 0x1040 + device ID 2, modern (§4.1.2) */
#define VIRTIO_PCI_DEVICE_BLK_TRANSITIONAL 0x1001

#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER      0x02
#define VIRTIO_STATUS_DRIVER_OK   0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED      0x80

#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32
#define BIT(n) (1ULL << (n))

/* virtio PCI capability types (§4.1.4). */
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_PCI_CAP_NOTIFY_CFG 2
#define VIRTIO_PCI_CAP_ISR_CFG    3
#define VIRTIO_PCI_CAP_DEVICE_CFG 4

/* struct virtio_pci_common_cfg offsets (§4.1.4.3). */
#define VPCI_DFSELECT   0x00
#define VPCI_DF         0x04
#define VPCI_GFSELECT   0x08
#define VPCI_GF         0x0c
#define VPCI_MSIX       0x10
#define VPCI_NUMQ       0x12
#define VPCI_STATUS     0x14
#define VPCI_CFGGEN     0x15
#define VPCI_Q_SELECT   0x16
#define VPCI_Q_SIZE     0x18
#define VPCI_Q_MSIX     0x1a
#define VPCI_Q_ENABLE   0x1c
#define VPCI_Q_NOFF     0x1e
#define VPCI_Q_DESCLO   0x20
#define VPCI_Q_DESCHI   0x24
#define VPCI_Q_AVAILLO  0x28
#define VPCI_Q_AVAILHI  0x2c
#define VPCI_Q_USEDLO   0x30
#define VPCI_Q_USEDHI   0x34

/* Split virtqueue layout (§2.7.5, §2.7.6, §2.7.8). */
#define VRING_DESC_F_NEXT     1
#define VRING_DESC_F_WRITE    2
#define VRING_DESC_F_INDIRECT 4
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY     1

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};
struct vring_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];          /* then used_event (EVENT_IDX) */
};
struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};
struct vring_used {
	uint16_t flags;
	uint16_t idx;
	struct vring_used_elem ring[];   /* then avail_event (EVENT_IDX) */
};

/* The driver's view of one split virtqueue. */
struct virtq {
	uint16_t index;           /* queue number */
	uint16_t size;
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint64_t notify_addr;     /* where a kick (the 16-bit queue index) is written */
	bool event_idx;           /* VIRTIO_F_EVENT_IDX negotiated */
	uint16_t avail_idx;       /* driver's shadow of avail->idx */
	uint16_t kicked_idx;      /* avail->idx at the last publish */
	uint16_t last_used;       /* next used-ring slot to read */
	uint16_t free_head, num_free;
	uint64_t kicks, kicks_suppressed;
};

/* One virtio-pci function: where its structures are (§4.1.4). */
struct virtio_pci {
	unsigned bdf;
	uint16_t device_id;
	uint64_t common;          /* MMIO addresses of the capabilities' structures */
	uint64_t notify;
	uint32_t notify_mult;     /* notify_off_multiplier */
	uint64_t isr;
	uint64_t device;          /* 0 if the device has no device-specific config */
	uint32_t device_len;
	uint64_t features;        /* negotiated */
	unsigned bars_placed;     /* BARs the driver had to place itself (no firmware) */
};

/* A buffer in a chain: guest-physical address, length, device-writable. */
struct vbuf {
	uint64_t addr;
	uint32_t len;
	bool write;
};

/* Memory barriers for a driver on x86 (§2.7.13: write buffers, then idx; idx, then read avail_event). */
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void virtio_mb(void) { __asm__ volatile("mfence" ::: "memory"); }

/*
 * Find the first function with one of `devices`, enable memory decode and bus
 * mastering (QEMU blocks DMA without it), and map its common, notify, ISR and
 * device capabilities. 0, or -1 with the reason in *why.
 */
int virtio_pci_open(struct virtio_pci *v, const uint16_t *devices, const char **why);
uint8_t virtio_status(const struct virtio_pci *v);
void virtio_set_status(const struct virtio_pci *v, uint8_t s);
/* Write 0 to device_status and wait until it reads 0 (§4.1.4.3.2). false if it never did. */
bool virtio_reset(const struct virtio_pci *v);
/* The 64 feature bits the device offers. */
uint64_t virtio_device_features(const struct virtio_pci *v);
/*
 * §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, write `wanted` & offered
 * (VERSION_1 is required), FEATURES_OK and read it back. 0, or -1 with *why.
 */
int virtio_negotiate(struct virtio_pci *v, uint64_t wanted, const char **why);
/*
 * §3.1.1 step 7 for queue `index`: rings of `size` entries in fresh guest RAM
 * (size 0: the device's maximum), queue address registers, queue_enable.
 * 0, or -1 with *why (queue absent, size above the maximum).
 */
int virtq_setup(struct virtio_pci *v, struct virtq *q, uint16_t index, uint16_t size, const char **why);
/*
 * The registers alone, for hostile tests: select the queue, write size and
 * the three ring addresses, then queue_enable = 1.
 */
void virtq_program(const struct virtio_pci *v, uint16_t index, uint16_t size, uint64_t desc, uint64_t avail,
		   uint64_t used);
uint16_t virtq_max_size(const struct virtio_pci *v, uint16_t index);
/* DRIVER_OK (§3.1.1 step 8). */
void virtio_driver_ok(const struct virtio_pci *v);

/* Device-specific config: 8/16/32/64-bit reads (64 as two 32-bit reads under config_generation, §4.1.3.1). */
uint8_t virtio_cfg8(const struct virtio_pci *v, unsigned off);
uint16_t virtio_cfg16(const struct virtio_pci *v, unsigned off);
uint32_t virtio_cfg32(const struct virtio_pci *v, unsigned off);
uint64_t virtio_cfg64(const struct virtio_pci *v, unsigned off);

/* Add a chain (readable buffers first, §2.7.4.2); not yet visible to the device. Its head, or -1 if no room. */
int virtq_add(struct virtq *q, const struct vbuf *bufs, unsigned n);
/* Publish added chains (avail->idx) and kick unless the device suppressed it (§2.7.10, §2.7.13.3-4). */
void virtq_publish(struct virtq *q);
/* Write the queue index to the notify address, unconditionally. */
void virtq_notify(struct virtq *q);
/* Poll once: true and a used element when one is there (its chain is freed). */
bool virtq_get(struct virtq *q, uint32_t *id, uint32_t *len);
/* Descriptors not in flight. */
static inline unsigned virtq_free(const struct virtq *q) { return q->num_free; }
/* avail->idx after publishing `idx`: raw, for hostile tests (no notify, no bookkeeping). */
void virtq_raw_set_avail_idx(struct virtq *q, uint16_t idx);
/* Used index as the device wrote it. */
static inline uint16_t virtq_used_idx(const struct virtq *q) { return *(volatile uint16_t *)&q->used->idx; }

/*
 * ---- hostile tests (hostile.c) ----
 * Each hostile_* guest opens the disk (hostile_open: one good read), hands
 * the device one broken ring or register value, takes its verdict
 * (hostile_verdict: DEVICE_NEEDS_RESET, or a completion with an error
 * status; anything else fail()s) and proves the device works again after a
 * reset (hostile_recover). Lines start "hostile: "; tests/run-guests.sh reads
 * the "hostile: outcome=" line.
 */
struct blk;
void hostile_open(struct blk *b, uint64_t features);
/* Put `head` in the available ring and publish it (kick). */
void hostile_post(struct blk *b, uint16_t head);
/* Wait for the device's reaction; status: the request's status byte, or NULL when it has none. */
void hostile_verdict(struct blk *b, volatile uint8_t *status);
/* Reset, bring the device up again with `features`, read 4 KiB and check it. */
void hostile_recover(struct blk *b, uint64_t features);
/* The verdict for a queue the driver configured wrongly (before DRIVER_OK): NEEDS_RESET, or the value refused. */
void hostile_queue_verdict(struct blk *b, uint16_t size_written);

/* ---- virtio-blk (§5.2) ---- */
#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX  2
#define VIRTIO_BLK_F_RO       5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH    9

#define VIRTIO_BLK_T_IN     0
#define VIRTIO_BLK_T_OUT    1
#define VIRTIO_BLK_T_FLUSH  4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_S_OK     0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2
#define VIRTIO_BLK_ID_BYTES 20
#define SECTOR_SIZE 512

struct virtio_blk_req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

/* Per-request memory for `depth` requests in flight: header and status byte (guest RAM). */
struct blk_slot {
	struct virtio_blk_req_hdr hdr;
	volatile uint8_t status;
	uint8_t pad[7];
};

struct blk {
	struct virtio_pci pci;
	struct virtq vq;
	uint64_t capacity;        /* 512-byte sectors */
	uint32_t size_max;        /* largest buffer in one descriptor (SIZE_MAX), or 0 */
	uint32_t seg_max;         /* SEG_MAX, or 0 */
	struct blk_slot *slots;   /* indexed by the chain's head */
	uint64_t poll_spins;      /* virtq_get calls that found nothing */
};

/*
 * Find the virtio-blk function, negotiate VERSION_1 plus what the device
 * offers of `wanted`, set up queue 0 with `qsize` entries (0: the device's
 * maximum) and set DRIVER_OK. 0, or -1 with *why.
 */
int blk_open(struct blk *b, uint64_t wanted, uint16_t qsize, const char **why);
/* Reset and bring the same device up again (after NEEDS_RESET). */
int blk_reopen(struct blk *b, uint64_t wanted, uint16_t qsize, const char **why);
/*
 * Queue one request: header, `len` bytes at data (none for FLUSH), status
 * byte; split per SIZE_MAX. Published but the caller decides when (kick=true
 * publishes now). Its head (the completion's id), or -1 if the ring is full.
 */
int blk_submit(struct blk *b, uint32_t type, uint64_t sector, void *data, uint32_t len, bool kick);
/* Wait (bounded, fail()s after `what` timed out) for one completion; returns its head. */
uint32_t blk_wait(struct blk *b, uint32_t *len, const char *what);
/* One synchronous request; its status byte. */
uint8_t blk_io(struct blk *b, uint32_t type, uint64_t sector, void *data, uint32_t len);

/* The test disk's content (tests/run-guests.sh make_disk, bench/blk-iops.sh): byte i of sector s. */
static inline uint8_t disk_byte(uint64_t s, unsigned i)
{
	if (i < 8)
		return (uint8_t)(s >> (8 * i));
	return (uint8_t)(s * 7 + i * 13 + (s >> 8));
}
/* What the virtio_blk guest writes over its sectors (tests/guests/disk-image.py checks it landed). */
static inline uint8_t pattern_byte(uint64_t s, unsigned i)
{
	return (uint8_t)(s * 31 + i * 17 + 0xa5);
}


/* ---- virtio-net (§5.1), net.c ---- */
#define VIRTIO_PCI_DEVICE_NET    0x1041   /* 0x1040 + device ID 1, modern */
#define VIRTIO_PCI_DEVICE_NET_TRANSITIONAL 0x1000

#define VIRTIO_NET_F_MAC         5
#define VIRTIO_NET_F_MRG_RXBUF   15
#define VIRTIO_NET_F_STATUS      16
#define VIRTIO_NET_S_LINK_UP     1

/* §5.1.6: with VERSION_1 the header is always 12 bytes (num_buffers included). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
};
_Static_assert(sizeof(struct virtio_net_hdr) == 12, "virtio_net_hdr is 12 bytes with VERSION_1");

#define VNET_BUF      2048    /* one rx or tx buffer: header + a 1514-byte frame, one descriptor (§5.1.6.3.1) */
#define VNET_MAX_FRAME (VNET_BUF - (uint32_t)sizeof(struct virtio_net_hdr))

/*
 * A polling virtio-net driver: receiveq1 (queue 0) and transmitq1 (queue 1),
 * no offloads, no control queue. Buffer i of a queue belongs to descriptor i,
 * so a used element's id names its buffer.
 */
struct vnet {
	struct virtio_pci pci;
	struct virtq rx, tx;
	uint8_t *rx_bufs, *tx_bufs;   /* queue size x VNET_BUF each */
	uint8_t mac[6];
	uint64_t rx_frames, tx_frames, tx_waits;
	bool allow_num_buffers_0;     /* a device that breaks §5.1.6.4 this way is counted, not failed */
	uint64_t rx_num_buffers_0;
};

/* Find the NIC, negotiate (MAC, STATUS, EVENT_IDX), fill receiveq1, DRIVER_OK. 0, or -1 with *why. */
int vnet_open(struct vnet *n, const char **why);
/* Link state from the device config (STATUS), or true without STATUS. */
bool vnet_link_up(const struct vnet *n);
/*
 * Where to write the next frame (at most VNET_MAX_FRAME bytes), reclaiming
 * sent buffers; waits (bounded, fail()s) while the device holds every one.
 */
void *vnet_tx_buffer(struct vnet *n);
/* Send the frame written into the last vnet_tx_buffer(): header zeroed (no offloads), publish. */
void vnet_tx_send(struct vnet *n, uint32_t len);
/*
 * Hand up to `budget` received frames to deliver(arg, frame, len), then
 * give their buffers back to the device (one publish). The number handled.
 */
unsigned vnet_poll(struct vnet *n, void (*deliver)(void *arg, const void *frame, uint32_t len), void *arg,
		   unsigned budget);

/* CRC-32 (IEEE 802.3, as zlib's crc32): crc32_update(0, ...) starts, feed the result back to continue. */
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

#endif
