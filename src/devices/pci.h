/* The PCI host bridge on bus 0: config space by 0xCF8/0xCFC and ECAM, BAR placement and dispatch, capabilities. */
#ifndef KILN_PCI_H
#define KILN_PCI_H

#include <pthread.h>
#include "core/types.h"
#include "core/bus.h"

struct vm;

/* Config space: 256 bytes conventional, 4 KiB through ECAM (PCIe base 4.0 §7.2.2). */
#define PCI_CFG_SIZE 4096
#define PCI_MAX_SLOTS 32       /* devices on bus 0; slot 0 is the host bridge */
#define PCI_NUM_BARS 6

/* Standard header offsets (PCI local bus 3.0 §6.1). */
#define PCI_VENDOR_ID      0x00
#define PCI_DEVICE_ID      0x02
#define PCI_COMMAND        0x04
#define PCI_STATUS         0x06
#define PCI_REVISION_ID    0x08
#define PCI_CLASS_PROG     0x09
#define PCI_CLASS_DEVICE   0x0a
#define PCI_HEADER_TYPE    0x0e
#define PCI_BAR0           0x10
#define PCI_SUBSYSTEM_VENDOR_ID 0x2c
#define PCI_SUBSYSTEM_ID   0x2e
#define PCI_CAPABILITY_LIST 0x34
#define PCI_INTERRUPT_LINE 0x3c
#define PCI_INTERRUPT_PIN  0x3d

#define PCI_COMMAND_IO     0x1
#define PCI_COMMAND_MEMORY 0x2
#define PCI_COMMAND_MASTER 0x4
#define PCI_COMMAND_SERR   0x100
#define PCI_COMMAND_INTX_DISABLE 0x400
#define PCI_STATUS_CAP_LIST 0x10

#define PCI_CAP_ID_MSIX    0x11
#define PCI_CAP_ID_VNDR    0x09

struct pci_dev;

/*
 * One memory BAR (kiln only offers 32-bit memory BARs: every device fits the
 * 32-bit window, and no port I/O BARs are needed by virtio 1.x).
 * Accesses to [addr, addr+size) while memory decode is on go to fn, with the
 * offset relative to the BAR. fn runs on a vCPU thread.
 */
struct pci_bar {
	uint32_t size;            /* 0: BAR unused; else a power of two >= 4096 */
	uint32_t addr;            /* current base as the guest programmed it */
	bus_io_fn fn;
	void *opaque;
};

struct pci_dev {
	const char *name;
	unsigned slot;            /* set by pci_add_device */
	uint8_t cfg[PCI_CFG_SIZE];
	/*
	 * Bits the guest may write. BAR dwords get ~(size-1) here, so sizing
	 * (write all-ones, read back the mask) falls out of the same rule; after
	 * every write the bus re-reads BAR addresses and the COMMAND decode bit.
	 */
	uint8_t wmask[PCI_CFG_SIZE];
	uint16_t next_cap;        /* where pci_add_cap puts the next capability */
	struct pci_bar bar[PCI_NUM_BARS];
	/*
	 * After the guest wrote [off, off+len) of config space (the bytes
	 * already stored through wmask). For capabilities with side effects
	 * (MSI-X enable/mask). May be NULL. vCPU thread, bus lock held (a
	 * hook may take its device's lock: the bus lock always comes first).
	 */
	void (*cfg_write)(struct pci_dev *d, uint32_t off, uint32_t len);
	/*
	 * Before a config read of [off, off+len): refresh cfg[] (e.g. the virtio
	 * PCI config-access window). May be NULL. Bus lock held.
	 */
	void (*cfg_read)(struct pci_dev *d, uint32_t off, uint32_t len);
	/*
	 * A BAR's guest address or the memory-decode bit changed: `mapped` says
	 * whether the BAR now decodes at bar[i].addr. Transports move their
	 * ioeventfds here. May be NULL. Bus lock held.
	 */
	void (*bar_remap)(struct pci_dev *d, int i, bool mapped);
	void *opaque;
};

/*
 * Per-VM bus state, hung off struct vm (vm->pci). Created by the host bridge's
 * DEVICE_REGISTER init; the 32-bit BAR window and ECAM are claimed on vm->mmio,
 * 0xCF8-0xCFF on vm->pio.
 */
struct pci_bus {
	struct vm *vm;
	pthread_mutex_t lock;     /* config-space and BAR state: any vCPU may touch it */
	uint32_t cf8;             /* CONFIG_ADDRESS latch */
	struct pci_dev host;      /* 00:00.0 host bridge */
	struct pci_dev *devs[PCI_MAX_SLOTS];
	uint32_t next_bar;        /* allocator in the BAR window */
	uint64_t bad_accesses;    /* misaligned/oversized config accesses, for --stats */
	uint64_t cfg_pio;         /* config accesses through 0xCFC-0xCFF */
	uint64_t cfg_ecam;        /* config accesses through ECAM */
	uint64_t window_misses;   /* BAR-window accesses no decoding BAR took */
};

/* Vendor/device of the host bridge at 00:00.0 (Intel's Q35 MCH: every OS knows it). */
#define PCI_HOST_VENDOR 0x8086
#define PCI_HOST_DEVICE 0x29c0
#define PCI_CLASS_HOST_BRIDGE 0x060000

/*
 * The host bridge's DEVICE_REGISTER init: creates vm->pci (only when the
 * virtio transport is PCI), claims 0xCF8-0xCFF, ECAM and the BAR window.
 * Exposed for unit tests. 0 or -errno.
 */
int __must_check pci_host_init(struct vm *vm);

/* True when BAR i of d currently decodes (memory decode on, inside the window). Caller holds the bus lock. */
bool pci_bar_decodes(const struct pci_dev *d, int i);

/* Set up d's header: IDs, class, subsystem. Zeroes everything else. */
void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint16_t subsys_vendor, uint16_t subsys_id, uint8_t revision);

/* Declare BAR i as a 32-bit memory BAR of `size` bytes served by fn (before pci_add_device). */
int __must_check pci_dev_set_bar(struct pci_dev *d, int i, uint32_t size, bus_io_fn fn, void *opaque);

/*
 * Append a capability: `body` is the capability without its ID and next
 * bytes (len bytes, copied to offset+2). Returns the capability's offset in
 * config space, or -ENOSPC. `writable` (len bytes, or NULL: read-only) is
 * the write mask of each body byte. Capabilities live in the 256-byte
 * conventional space, chained from PCI_CAPABILITY_LIST (PCI 3.0 §6.7).
 */
int pci_add_cap(struct pci_dev *d, uint8_t cap_id, const void *body, uint8_t len, const uint8_t *writable);

/*
 * Put d on bus 0: first free slot, BAR addresses from the window, memory
 * decode on (as firmware leaves it; bar_remap is called for each BAR).
 * 0, -ENOSPC (no slot or window space), -ENODEV (no bus).
 */
int __must_check pci_add_device(struct vm *vm, struct pci_dev *d);

/*
 * Config access as the guest does it (unit tests drive these): len 1, 2 or 4,
 * naturally aligned, else counted as bad and reads all-ones. A missing device
 * or function reads all-ones (PCI 3.0 §6.1: master abort), writes are dropped.
 */
void pci_cfg_access(struct pci_bus *b, unsigned slot, unsigned fn, uint32_t off, uint8_t *data, uint32_t len,
		    bool is_write);

#endif
