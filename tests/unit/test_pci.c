/* Unit tests: the PCI host bridge — CF8/CFC and ECAM config access, BAR sizing/relocation/dispatch, capabilities. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/layout.h"
#include "devices/pci.h"
#include "stub_vm.h"

#define CF8 0xcf8
#define CFC 0xcfc

/* ---------- guest-side helpers ---------- */

static void pio_out(struct vm *vm, uint16_t port, uint32_t v, uint32_t len)
{
	uint8_t b[4];

	memcpy(b, &v, 4);
	bus_access(&vm->pio, port, b, len, true);
}

static uint32_t pio_in(struct vm *vm, uint16_t port, uint32_t len)
{
	uint8_t b[4] = { 0x11, 0x22, 0x33, 0x44 };
	uint32_t v = 0;

	bus_access(&vm->pio, port, b, len, false);
	memcpy(&v, b, len);
	return v;
}

static uint32_t cf8_addr(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}

/* Config read through mechanism #1: the latch, then the data port at reg's byte lane. */
static uint32_t cf8_read(struct vm *vm, unsigned slot, unsigned reg, uint32_t len)
{
	pio_out(vm, CF8, cf8_addr(0, slot, 0, reg), 4);
	return pio_in(vm, (uint16_t)(CFC + (reg & 3)), len);
}

static void cf8_write(struct vm *vm, unsigned slot, unsigned reg, uint32_t v, uint32_t len)
{
	pio_out(vm, CF8, cf8_addr(0, slot, 0, reg), 4);
	pio_out(vm, (uint16_t)(CFC + (reg & 3)), v, len);
}

static uint64_t ecam_gpa(unsigned slot, unsigned fn, unsigned reg)
{
	return X86_PCI_ECAM_BASE + ((uint64_t)slot << 15) + ((uint64_t)fn << 12) + reg;
}

static uint64_t mmio_read(struct vm *vm, uint64_t gpa, uint32_t len)
{
	uint8_t b[8];
	uint64_t v = 0;

	memset(b, 0x5a, sizeof(b));
	bus_access(&vm->mmio, gpa, b, len, false);
	memcpy(&v, b, len);
	return v;
}

static void mmio_write(struct vm *vm, uint64_t gpa, uint64_t v, uint32_t len)
{
	uint8_t b[8];

	memcpy(b, &v, 8);
	bus_access(&vm->mmio, gpa, b, len, true);
}

static uint32_t ecam_read(struct vm *vm, unsigned slot, unsigned reg, uint32_t len)
{
	return (uint32_t)mmio_read(vm, ecam_gpa(slot, 0, reg), len);
}

static void ecam_write(struct vm *vm, unsigned slot, unsigned reg, uint32_t v, uint32_t len)
{
	mmio_write(vm, ecam_gpa(slot, 0, reg), v, len);
}

/* ---------- a test device: records BAR accesses, remaps and config writes ---------- */

struct tdev {
	struct pci_dev pd;
	unsigned nio;
	struct { int bar; uint64_t off; uint32_t len; bool write; uint64_t val; } last;
	unsigned nremap;
	struct { int bar; bool mapped; uint32_t addr; } remap[32];
	unsigned ncfgw;
	uint32_t cfgw_off, cfgw_len;
};

static void tdev_bar0(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct tdev *t = opaque;

	t->nio++;
	t->last.bar = 0;
	t->last.off = off;
	t->last.len = len;
	t->last.write = is_write;
	t->last.val = 0;
	if (is_write)
		memcpy(&t->last.val, data, len);
	else
		memset(data, 0xb0, len);
}

static void tdev_bar2(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write)
{
	struct tdev *t = opaque;

	tdev_bar0(opaque, off, data, len, is_write);
	t->last.bar = 2;
	if (!is_write)
		memset(data, 0xb2, len);
}

static void tdev_remap(struct pci_dev *d, int i, bool mapped)
{
	struct tdev *t = d->opaque;

	if (t->nremap < ARRAY_SIZE(t->remap)) {
		t->remap[t->nremap].bar = i;
		t->remap[t->nremap].mapped = mapped;
		t->remap[t->nremap].addr = d->bar[i].addr;
	}
	t->nremap++;
}

static void tdev_cfgw(struct pci_dev *d, uint32_t off, uint32_t len)
{
	struct tdev *t = d->opaque;

	t->ncfgw++;
	t->cfgw_off = off;
	t->cfgw_len = len;
}

/* BAR0 16 KiB, BAR2 4 KiB (BAR1 unused), one vendor capability. */
static void tdev_init(struct tdev *t)
{
	memset(t, 0, sizeof(*t));
	pci_dev_init(&t->pd, "tdev", 0x1234, 0x5678, 0x0b4000, 0x1af4, 0x1100, 7);
	t->pd.opaque = t;
	t->pd.bar_remap = tdev_remap;
	t->pd.cfg_write = tdev_cfgw;
	assert_int_equal(pci_dev_set_bar(&t->pd, 0, 16384, tdev_bar0, t), 0);
	assert_int_equal(pci_dev_set_bar(&t->pd, 2, 4096, tdev_bar2, t), 0);
}

/* ---------- fixture ---------- */

static int setup(void **state)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	if (!vm)
		return -1;
	stub_vm_init(vm, 0);
	if (pci_host_init(vm) != 0)
		return -1;
	*state = vm;
	return 0;
}

static int teardown(void **state)
{
	struct vm *vm = *state;

	stub_vm_fini(vm);
	free(vm);
	return 0;
}

/* ---------- tests ---------- */

static void test_host_bridge_cf8(void **state)
{
	struct vm *vm = *state;

	assert_non_null(vm->pci);
	assert_int_equal(cf8_read(vm, 0, 0, 4), 0x29c08086);
	assert_int_equal(cf8_read(vm, 0, 0, 2), 0x8086);
	assert_int_equal(cf8_read(vm, 0, 2, 2), 0x29c0);        /* word at CFE */
	assert_int_equal(cf8_read(vm, 0, 1, 1), 0x80);          /* byte at CFD */
	assert_int_equal(cf8_read(vm, 0, 3, 1), 0x29);          /* byte at CFF */
	assert_int_equal(cf8_read(vm, 0, PCI_CLASS_DEVICE, 2), 0x0600);
	assert_int_equal(cf8_read(vm, 0, PCI_CLASS_PROG, 1), 0x00);
	assert_int_equal(cf8_read(vm, 0, PCI_HEADER_TYPE, 1), 0x00);
	assert_int_equal(cf8_read(vm, 0, PCI_INTERRUPT_PIN, 1), 0);
	/* IDs are read-only. */
	cf8_write(vm, 0, 0, 0xffffffff, 4);
	assert_int_equal(cf8_read(vm, 0, 0, 4), 0x29c08086);

	/* The latch reads back what was written, reserved bits 30:24 and 1:0 as 0 (Linux's type 1 probe). */
	pio_out(vm, CF8, 0x80000000, 4);
	assert_int_equal(pio_in(vm, CF8, 4), 0x80000000);
	pio_out(vm, CF8, 0xffffffff, 4);
	assert_int_equal(pio_in(vm, CF8, 4), 0x80fffffc);
	/* Byte/word accesses to 0xCF8-0xCFB are not the latch. */
	pio_out(vm, CF8, 0x80000000, 4);
	pio_out(vm, 0xcfb, 0x01, 1);
	pio_out(vm, CF8, 0x1234, 2);
	assert_int_equal(pio_in(vm, CF8, 4), 0x80000000);
	assert_int_equal(pio_in(vm, CF8, 2), 0xffff);
	assert_int_equal(pio_in(vm, 0xcf9, 1), 0xff);

	/* Enable bit clear: the data port answers all-ones. */
	pio_out(vm, CF8, cf8_addr(0, 0, 0, 0) & ~0x80000000u, 4);
	assert_int_equal(pio_in(vm, CFC, 4), 0xffffffff);
	/* Bus 1, function 1, an empty slot: nobody home. */
	pio_out(vm, CF8, cf8_addr(1, 0, 0, 0), 4);
	assert_int_equal(pio_in(vm, CFC, 4), 0xffffffff);
	pio_out(vm, CF8, cf8_addr(0, 0, 1, 0), 4);
	assert_int_equal(pio_in(vm, CFC, 4), 0xffffffff);
	assert_int_equal(cf8_read(vm, 5, 0, 4), 0xffffffff);
	assert_int_equal(cf8_read(vm, 31, 0, 2), 0xffff);
	/* A dword at 0xCFE spills out of the data window: unclaimed port I/O. */
	pio_out(vm, CF8, cf8_addr(0, 0, 0, 0), 4);
	assert_int_equal(pio_in(vm, 0xcfe, 4), 0xffffffff);
	assert_true(vm->pci->cfg_pio > 0);
}

static void test_host_bridge_ecam(void **state)
{
	struct vm *vm = *state;
	uint64_t bad;

	assert_int_equal(ecam_read(vm, 0, 0, 4), 0x29c08086);
	assert_int_equal(ecam_read(vm, 0, 2, 2), 0x29c0);
	assert_int_equal(ecam_read(vm, 0, 0xb, 1), 0x06);
	/* Extended space of an existing function reads 0: no extended capabilities. */
	assert_int_equal(ecam_read(vm, 0, 0x100, 4), 0);
	assert_int_equal(ecam_read(vm, 0, 0xffc, 4), 0);
	assert_int_equal(ecam_read(vm, 7, 0, 4), 0xffffffff);
	assert_int_equal(mmio_read(vm, ecam_gpa(0, 3, 0), 4), 0xffffffff);
	/* Misaligned or 8-byte accesses: all-ones, counted. */
	bad = vm->pci->bad_accesses;
	assert_int_equal(ecam_read(vm, 0, 1, 2), 0xffff);
	assert_int_equal(ecam_read(vm, 0, 2, 4), 0xffffffff);
	assert_int_equal(mmio_read(vm, ecam_gpa(0, 0, 0), 8), ~0ull);
	assert_int_equal(vm->pci->bad_accesses, bad + 3);
	/* Both mechanisms see the same writable register. */
	ecam_write(vm, 0, PCI_INTERRUPT_LINE, 0x0b, 1);
	assert_int_equal(cf8_read(vm, 0, PCI_INTERRUPT_LINE, 1), 0x0b);
	cf8_write(vm, 0, 0x0c, 0x4010, 2); /* cache line size, latency timer */
	assert_int_equal(ecam_read(vm, 0, 0x0c, 2), 0x4010);
	assert_true(vm->pci->cfg_ecam > 0);
}

static void test_bar_placement_and_sizing(void **state)
{
	struct vm *vm = *state;
	struct tdev *t = calloc(1, sizeof(*t));
	uint32_t bar0, bar2;

	assert_non_null(t);
	tdev_init(t);
	assert_int_equal(pci_add_device(vm, &t->pd), 0);
	assert_int_equal(t->pd.slot, 1);
	assert_int_equal(ecam_read(vm, 1, 0, 4), 0x56781234);
	assert_int_equal(ecam_read(vm, 1, PCI_REVISION_ID, 4), 0x0b400007);
	assert_int_equal(ecam_read(vm, 1, PCI_SUBSYSTEM_VENDOR_ID, 4), 0x11001af4);
	bar0 = ecam_read(vm, 1, PCI_BAR0, 4);
	bar2 = ecam_read(vm, 1, PCI_BAR0 + 8, 4);
	/* Naturally aligned inside the window, memory decode on (as firmware leaves them). */
	assert_int_equal(bar0 % 16384, 0);
	assert_int_equal(bar2 % 4096, 0);
	assert_true(bar0 >= X86_PCI_MMIO_BASE && bar0 + 16384 <= X86_PCI_MMIO_BASE + X86_PCI_MMIO_SIZE);
	assert_true(bar2 >= bar0 + 16384 || bar2 + 4096 <= bar0);
	assert_int_equal(ecam_read(vm, 1, PCI_COMMAND, 2) & PCI_COMMAND_MEMORY, PCI_COMMAND_MEMORY);
	assert_int_equal(t->nremap, 2);
	assert_true(t->remap[0].mapped && t->remap[1].mapped);

	/* Sizing the way Linux does it: decode off, all-ones, read the mask, restore, decode on. */
	t->nremap = 0;
	cf8_write(vm, 1, PCI_COMMAND, 0, 2);
	assert_int_equal(t->nremap, 2);
	assert_false(t->remap[0].mapped);
	assert_false(t->remap[1].mapped);
	cf8_write(vm, 1, PCI_BAR0, 0xffffffff, 4);
	assert_int_equal(cf8_read(vm, 1, PCI_BAR0, 4), 0xffffc000);
	cf8_write(vm, 1, PCI_BAR0 + 4, 0xffffffff, 4);
	assert_int_equal(cf8_read(vm, 1, PCI_BAR0 + 4, 4), 0);       /* unused BAR */
	cf8_write(vm, 1, PCI_BAR0 + 8, 0xffffffff, 4);
	assert_int_equal(cf8_read(vm, 1, PCI_BAR0 + 8, 4), 0xfffff000);
	ecam_write(vm, 1, 0x30, 0xffffffff, 4);
	assert_int_equal(ecam_read(vm, 1, 0x30, 4), 0);                /* no expansion ROM */
	assert_int_equal(t->nremap, 2);                                 /* decode off: nothing to remap */
	cf8_write(vm, 1, PCI_BAR0, bar0, 4);
	cf8_write(vm, 1, PCI_BAR0 + 8, bar2, 4);
	cf8_write(vm, 1, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	assert_int_equal(t->nremap, 4);
	assert_true(t->remap[2].mapped && t->remap[3].mapped);
	assert_int_equal(cf8_read(vm, 1, PCI_COMMAND, 2), PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	/* The I/O decode bit stays 0: there are no I/O BARs. */
	cf8_write(vm, 1, PCI_COMMAND, 0xffff, 2);
	assert_int_equal(cf8_read(vm, 1, PCI_COMMAND, 2) & PCI_COMMAND_IO, 0);
	/* Low BAR bits are fixed: 32-bit, non-prefetchable memory. */
	cf8_write(vm, 1, PCI_BAR0, bar0 | 0xf, 4);
	assert_int_equal(cf8_read(vm, 1, PCI_BAR0, 4), bar0);
	free(t); /* the bus outlives it in this test: take it off again */
	vm->pci->devs[1] = NULL;
}

static void test_bar_dispatch_and_relocation(void **state)
{
	struct vm *vm = *state;
	struct tdev *t = calloc(1, sizeof(*t));
	uint32_t bar0, bar2, moved = 0xd0000000;
	uint64_t unclaimed;

	assert_non_null(t);
	tdev_init(t);
	assert_int_equal(pci_add_device(vm, &t->pd), 0);
	bar0 = t->pd.bar[0].addr;
	bar2 = t->pd.bar[2].addr;

	assert_int_equal(mmio_read(vm, bar0 + 0x10, 4), 0xb0b0b0b0);
	assert_int_equal(t->last.off, 0x10);
	assert_int_equal(t->last.len, 4);
	mmio_write(vm, bar2 + 0xff8, 0x0123456789abcdefULL, 8);
	assert_int_equal(t->last.bar, 2);
	assert_int_equal(t->last.off, 0xff8);
	assert_true(t->last.write);
	assert_int_equal(t->last.val, 0x0123456789abcdefULL);
	/* An access running past the BAR's end is not the BAR's. */
	unclaimed = atomic_load(&vm->mmio.unclaimed_reads);
	t->nio = 0;
	assert_int_equal(mmio_read(vm, bar2 + 0xffc, 8), 0);
	assert_int_equal(t->nio, 0);
	assert_int_equal(atomic_load(&vm->mmio.unclaimed_reads), unclaimed + 1);

	/* Relocate BAR0 with decode on: remap with the new address; the old place goes dead. */
	t->nremap = 0;
	ecam_write(vm, 1, PCI_BAR0, moved, 4);
	assert_int_equal(t->nremap, 1);
	assert_int_equal(t->remap[0].bar, 0);
	assert_true(t->remap[0].mapped);
	assert_int_equal(t->remap[0].addr, moved);
	t->nio = 0;
	assert_int_equal(mmio_read(vm, bar0, 4), 0);
	assert_int_equal(t->nio, 0);
	assert_int_equal(mmio_read(vm, moved + 0x3ffc, 4), 0xb0b0b0b0);
	assert_int_equal(t->last.off, 0x3ffc);
	/* The same address written again is no move. */
	ecam_write(vm, 1, PCI_BAR0, moved, 4);
	assert_int_equal(t->nremap, 1);

	/* Decode off: nothing decodes; on again: both back. */
	ecam_write(vm, 1, PCI_COMMAND, 0, 2);
	t->nio = 0;
	assert_int_equal(mmio_read(vm, moved, 4), 0);
	assert_int_equal(mmio_read(vm, bar2, 4), 0);
	assert_int_equal(t->nio, 0);
	ecam_write(vm, 1, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	assert_int_equal(mmio_read(vm, bar2, 1), 0xb2);

	/* A BAR moved out of the window (a sizing value left with decode on) decodes nowhere. */
	t->nremap = 0;
	ecam_write(vm, 1, PCI_BAR0, 0xffffffff, 4);
	assert_int_equal(t->nremap, 1);
	assert_false(t->remap[0].mapped);
	assert_false(pci_bar_decodes(&t->pd, 0));
	ecam_write(vm, 1, PCI_BAR0, 0xdfffc000, 4);                  /* the last 16 KiB of the window */
	assert_true(pci_bar_decodes(&t->pd, 0));
	assert_int_equal(mmio_read(vm, 0xdfffc000, 2), 0xb0b0);
	assert_true(vm->pci->window_misses > 0);
	free(t);
	vm->pci->devs[1] = NULL;
}

static void test_capabilities(void **state)
{
	struct vm *vm = *state;
	struct tdev *t = calloc(1, sizeof(*t));
	static const uint8_t body1[6] = { 1, 2, 3, 4, 5, 6 }, body2[10] = { 0 };
	static const uint8_t w1[6] = { 0, 0xff, 0x0f, 0, 0, 0 };
	unsigned ptr, n = 0, ids[8];
	int a, b, c;

	assert_non_null(t);
	tdev_init(t);
	assert_int_equal(ecam_read(vm, 0, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, 0);
	a = pci_add_cap(&t->pd, PCI_CAP_ID_VNDR, body1, sizeof(body1), w1);
	b = pci_add_cap(&t->pd, PCI_CAP_ID_MSIX, body2, sizeof(body2), NULL);
	c = pci_add_cap(&t->pd, PCI_CAP_ID_VNDR, body1, 3, NULL);
	assert_int_equal(a, 0x40);
	assert_true(b > a && b % 4 == 0);
	assert_true(c > b && c % 4 == 0);
	assert_int_equal(pci_add_device(vm, &t->pd), 0);

	/* Walk the chain as an OS does (PCI 3.0 §6.7), through both mechanisms. */
	assert_int_equal(cf8_read(vm, 1, PCI_STATUS, 2) & PCI_STATUS_CAP_LIST, PCI_STATUS_CAP_LIST);
	for (ptr = ecam_read(vm, 1, PCI_CAPABILITY_LIST, 1); ptr && n < 8; ptr = cf8_read(vm, 1, ptr + 1, 1)) {
		assert_true(ptr >= 0x40 && ptr % 4 == 0);
		ids[n++] = cf8_read(vm, 1, ptr, 1);
	}
	assert_int_equal(n, 3);
	assert_int_equal(ids[0], PCI_CAP_ID_VNDR);
	assert_int_equal(ids[1], PCI_CAP_ID_MSIX);
	assert_int_equal(ids[2], PCI_CAP_ID_VNDR);
	assert_int_equal(ecam_read(vm, 1, a + 2, 2), 0x0201);
	assert_int_equal(ecam_read(vm, 1, a + 4, 2), 0x0403);

	/* Only the bits the mask allows change; the device hears of every write. */
	t->ncfgw = 0;
	ecam_write(vm, 1, a + 2, 0xffff, 2);
	ecam_write(vm, 1, a + 4, 0xffff, 2);
	assert_int_equal(ecam_read(vm, 1, a + 2, 2), 0xff01);
	assert_int_equal(ecam_read(vm, 1, a + 4, 2), 0x040f);
	assert_int_equal(t->ncfgw, 2);
	assert_int_equal(t->cfgw_off, a + 4);
	assert_int_equal(t->cfgw_len, 2);
	cf8_write(vm, 1, a + 3, 0x00, 1);
	assert_int_equal(ecam_read(vm, 1, a + 2, 2), 0x0001);
	/* A misaligned write is refused whole, and the device hears nothing. */
	ecam_write(vm, 1, a + 2, 0xffffffff, 4);
	assert_int_equal(ecam_read(vm, 1, a + 2, 2), 0x0001);
	assert_int_equal(t->ncfgw, 3);
	/* ID and next pointer are read-only. */
	ecam_write(vm, 1, a, 0, 2);
	assert_int_equal(ecam_read(vm, 1, a, 1), PCI_CAP_ID_VNDR);
	assert_int_equal(ecam_read(vm, 1, a + 1, 1), b);

	/* Conventional space is finite. */
	{
		static const uint8_t big[200];
		struct pci_dev *d = &t->pd;
		assert_int_equal(pci_add_cap(d, PCI_CAP_ID_VNDR, big, 200, NULL), -ENOSPC);
		while (pci_add_cap(d, PCI_CAP_ID_VNDR, big, 14, NULL) > 0)
			;
		assert_true(d->next_cap + 16 > 0x100);
	}
	free(t);
	vm->pci->devs[1] = NULL;
}

static void test_slots_and_window_exhaustion(void **state)
{
	struct vm *vm = *state;
	struct tdev *t = calloc(PCI_MAX_SLOTS + 1, sizeof(*t));
	struct tdev big;
	unsigned i;

	assert_non_null(t);
	for (i = 0; i < PCI_MAX_SLOTS; i++) {
		tdev_init(&t[i]);
		if (i == PCI_MAX_SLOTS - 1)
			break;
		assert_int_equal(pci_add_device(vm, &t[i].pd), 0);
		assert_int_equal(t[i].pd.slot, i + 1);
		assert_int_equal(ecam_read(vm, i + 1, 0, 4), 0x56781234);
	}
	assert_int_equal(pci_add_device(vm, &t[i].pd), -ENOSPC);

	/* A BAR larger than what is left of the window is refused, and nothing moved. */
	for (i = 1; i < PCI_MAX_SLOTS; i++)
		vm->pci->devs[i] = NULL;
	tdev_init(&big);
	big.pd.bar[2].size = 0;
	assert_int_equal(pci_dev_set_bar(&big.pd, 0, X86_PCI_MMIO_SIZE, tdev_bar0, &big), 0);
	uint32_t next = vm->pci->next_bar;
	assert_int_equal(pci_add_device(vm, &big.pd), -ENOSPC);
	assert_int_equal(vm->pci->next_bar, next);
	for (i = 1; i < PCI_MAX_SLOTS; i++)
		assert_null(vm->pci->devs[i]);
	/* Bad BAR declarations. */
	assert_int_equal(pci_dev_set_bar(&big.pd, 6, 4096, tdev_bar0, &big), -EINVAL);
	assert_int_equal(pci_dev_set_bar(&big.pd, 0, 6000, tdev_bar0, &big), -EINVAL);
	assert_int_equal(pci_dev_set_bar(&big.pd, 0, 2048, tdev_bar0, &big), -EINVAL);
	assert_int_equal(pci_dev_set_bar(&big.pd, 0, 4096, NULL, &big), -EINVAL);
	free(t);
}

static void test_window_unclaimed(void **state)
{
	struct vm *vm = *state;
	uint64_t r = atomic_load(&vm->mmio.unclaimed_reads), w = atomic_load(&vm->mmio.unclaimed_writes);

	/* Nothing decodes here: as any unclaimed MMIO, reads 0 and drops writes (tests/guests/mmio.c relies on it). */
	assert_int_equal(mmio_read(vm, 0xd0000000, 8), 0);
	mmio_write(vm, 0xd0000000, 0xdeadbeef, 4);
	assert_int_equal(mmio_read(vm, 0xd0000000, 4), 0);
	assert_int_equal(atomic_load(&vm->mmio.unclaimed_reads), r + 2);
	assert_int_equal(atomic_load(&vm->mmio.unclaimed_writes), w + 1);
}

static void test_no_bus_with_mmio_transport(void **state)
{
	struct vm vm;
	struct tdev t;

	stub_vm_init(&vm, 0);
	vm.cfg.virtio_transport = VIRTIO_TRANSPORT_MMIO;
	assert_int_equal(pci_host_init(&vm), 0);
	assert_null(vm.pci);
	assert_int_equal(vm.ndevices, 0);
	assert_int_equal(pio_in(&vm, CF8, 4), 0xffffffff);
	tdev_init(&t);
	assert_int_equal(pci_add_device(&vm, &t.pd), -ENODEV);
	stub_vm_fini(&vm);

	/* A second bridge on one VM is refused. */
	stub_vm_init(&vm, 0);
	assert_int_equal(pci_host_init(&vm), 0);
	assert_int_equal(pci_host_init(&vm), -EEXIST);
	stub_vm_fini(&vm);
}

static void test_stats(void **state)
{
	struct vm *vm = *state;
	char out[256] = "";
	FILE *tmp = tmpfile();

	assert_non_null(tmp);
	(void)cf8_read(vm, 0, 0, 4);
	(void)ecam_read(vm, 0, 0, 4);
	assert_string_equal(vm->devices[0].name, "pci");
	vm->devices[0].print_stats(vm->devices[0].state, fileno(tmp));
	rewind(tmp);
	assert_non_null(fgets(out, sizeof(out), tmp));
	fclose(tmp);
	assert_string_equal(out, "pci: 1 functions, config accesses cf8=1 ecam=1 bad=0, BAR window misses=0\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_host_bridge_cf8, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_bridge_ecam, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_placement_and_sizing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bar_dispatch_and_relocation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_capabilities, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slots_and_window_exhaustion, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window_unclaimed, setup, teardown),
		cmocka_unit_test(test_no_bus_with_mmio_transport),
		cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
