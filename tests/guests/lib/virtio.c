/* A polling virtio-pci modern driver (virtio 1.2 §3.1, §4.1) with split virtqueues in guest RAM, for the test guests. */
#include "virtio.h"

extern char _end[];

/* ---- guest RAM ---- */

static uint64_t dma_next;      /* bump allocator: after the image, up to ram_top() */

uint64_t ram_top(void)
{
	const struct hvm_memmap_entry *m = (const struct hvm_memmap_entry *)start_info->memmap_paddr;
	uint64_t img = (uint64_t)_end;
	uint32_t i;

	if (start_info->version < 1 || !m)
		fail("no memmap in hvm_start_info");
	for (i = 0; i < start_info->memmap_entries; i++)
		if (m[i].type == HVM_MEMMAP_RAM && img >= m[i].addr && img - m[i].addr < m[i].size)
			return m[i].addr + m[i].size < 3UL << 30 ? m[i].addr + m[i].size : 3UL << 30;
	fail("the guest image at %p is not in a RAM region of the memmap", (void *)_end);
}

void *dma_alloc(size_t size, size_t align)
{
	uint64_t a;

	if (!dma_next)
		dma_next = ((uint64_t)_end + 4095) & ~4095UL;
	a = (dma_next + align - 1) & ~(uint64_t)(align - 1);
	if (a + size > ram_top() || a + size < a)
		fail("dma_alloc: %zu bytes do not fit below %#lx (boot with more --memory)", size, ram_top());
	dma_next = a + size;
	memset((void *)a, 0, size);
	return (void *)a;
}

/* ---- the PCI function ---- */

int virtio_pci_open(struct virtio_pci *v, const uint16_t *devices, const char **why)
{
	uint64_t bar_addr[6] = { 0 }, bar_len[6] = { 0 };
	bool have[5] = { false };
	unsigned cap, steps;
	int bdf;

	memset(v, 0, sizeof(*v));
	bdf = pci_find(VIRTIO_PCI_VENDOR, devices);
	if (bdf < 0) {
		*why = devices[0] == VIRTIO_PCI_DEVICE_NET ? "no virtio-net PCI function (vendor 0x1af4, device 0x1041) on bus 0" :
		       "no virtio-blk PCI function (vendor 0x1af4, device 0x1042) on bus 0";
		return -1;
	}
	v->bdf = (unsigned)bdf;
	v->device_id = pci_read16(v->bdf, PCI_DEVICE_ID);
	if (!(pci_read16(v->bdf, PCI_STATUS) & PCI_STATUS_CAP_LIST)) {
		*why = "PCI status has no capability list (virtio 1.2 §4.1.4 needs one)";
		return -1;
	}
	/* Walk the list; 48 steps is every dword-aligned slot of the 192 bytes after the header, so a loop ends. */
	cap = pci_read8(v->bdf, PCI_CAPABILITY_LIST) & 0xfc;
	for (steps = 0; cap && steps < 48; steps++, cap = pci_read8(v->bdf, cap + 1) & 0xfc) {
		uint8_t type, bar;
		uint32_t off, len;
		uint64_t *dst;

		if (cap < 0x40) {
			*why = "capability pointer into the standard header";
			return -1;
		}
		if (pci_read8(v->bdf, cap) != PCI_CAP_ID_VNDR)
			continue;
		type = pci_read8(v->bdf, cap + 3);
		bar = pci_read8(v->bdf, cap + 4);
		off = pci_read32(v->bdf, cap + 8);
		len = pci_read32(v->bdf, cap + 12);
		/* §4.1.4: use the first capability of each type; ignore reserved BAR values. */
		if (type < VIRTIO_PCI_CAP_COMMON_CFG || type > VIRTIO_PCI_CAP_DEVICE_CFG || have[type] || bar > 5)
			continue;
		if (!bar_len[bar]) {
			int placed = pci_bar(v->bdf, bar, &bar_addr[bar], &bar_len[bar]);

			if (placed < 0) {
				*why = "a virtio capability names a BAR that is not a usable memory BAR";
				return -1;
			}
			v->bars_placed += (unsigned)placed;
		}
		if ((uint64_t)off + len > bar_len[bar]) {
			printf("virtio-pci: cap type %u bar %u offset %#x length %#x, BAR size %#lx\n", type, bar, off, len,
			       bar_len[bar]);
			*why = "a virtio capability's structure lies outside its BAR";
			return -1;
		}
		have[type] = true;
		dst = type == VIRTIO_PCI_CAP_COMMON_CFG ? &v->common :
		      type == VIRTIO_PCI_CAP_NOTIFY_CFG ? &v->notify :
		      type == VIRTIO_PCI_CAP_ISR_CFG ? &v->isr : &v->device;
		*dst = bar_addr[bar] + off;
		if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
			v->notify_mult = pci_read32(v->bdf, cap + 16);
		if (type == VIRTIO_PCI_CAP_DEVICE_CFG)
			v->device_len = len;
		if (type == VIRTIO_PCI_CAP_COMMON_CFG && len < 0x38) {
			*why = "common configuration structure shorter than 56 bytes (§4.1.4.3)";
			return -1;
		}
	}
	if (!have[VIRTIO_PCI_CAP_COMMON_CFG] || !have[VIRTIO_PCI_CAP_NOTIFY_CFG] || !have[VIRTIO_PCI_CAP_ISR_CFG]) {
		*why = "missing a common, notify or ISR virtio capability (§4.1.4)";
		return -1;
	}
	/* The BARs are in place: decode them, and let the device DMA (QEMU checks bus mastering). */
	pci_write16(v->bdf, PCI_COMMAND,
		    pci_read16(v->bdf, PCI_COMMAND) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	return 0;
}

uint8_t virtio_status(const struct virtio_pci *v)
{
	return mmio_read8(v->common + VPCI_STATUS);
}

void virtio_set_status(const struct virtio_pci *v, uint8_t s)
{
	mmio_write8(v->common + VPCI_STATUS, s);
}

bool virtio_reset(const struct virtio_pci *v)
{
	unsigned i;

	virtio_set_status(v, 0);
	/* §4.1.4.3.2: the driver waits for device_status to read 0; kiln and QEMU reset synchronously. */
	for (i = 0; i < 100000; i++) {
		if (virtio_status(v) == 0)
			return true;
		cpu_relax();
	}
	return false;
}

uint64_t virtio_device_features(const struct virtio_pci *v)
{
	uint64_t f;

	mmio_write32(v->common + VPCI_DFSELECT, 0);
	f = mmio_read32(v->common + VPCI_DF);
	mmio_write32(v->common + VPCI_DFSELECT, 1);
	return f | (uint64_t)mmio_read32(v->common + VPCI_DF) << 32;
}

int virtio_negotiate(struct virtio_pci *v, uint64_t wanted, const char **why)
{
	uint64_t offered;

	if (!virtio_reset(v)) {
		*why = "device_status did not read 0 after a reset";
		return -1;
	}
	virtio_set_status(v, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	offered = virtio_device_features(v);
	if (!(offered & BIT(VIRTIO_F_VERSION_1))) {
		*why = "device does not offer VIRTIO_F_VERSION_1";
		return -1;
	}
	v->features = (wanted & offered) | BIT(VIRTIO_F_VERSION_1);
	mmio_write32(v->common + VPCI_GFSELECT, 0);
	mmio_write32(v->common + VPCI_GF, (uint32_t)v->features);
	mmio_write32(v->common + VPCI_GFSELECT, 1);
	mmio_write32(v->common + VPCI_GF, (uint32_t)(v->features >> 32));
	virtio_set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	/* §3.1.1 step 6: FEATURES_OK reads back set only if the device accepts the subset. */
	if (!(virtio_status(v) & VIRTIO_STATUS_FEATURES_OK)) {
		*why = "device refused FEATURES_OK";
		return -1;
	}
	return 0;
}

uint16_t virtq_max_size(const struct virtio_pci *v, uint16_t index)
{
	mmio_write16(v->common + VPCI_Q_SELECT, index);
	return mmio_read16(v->common + VPCI_Q_SIZE);
}

void virtq_program(const struct virtio_pci *v, uint16_t index, uint16_t size, uint64_t desc, uint64_t avail,
		   uint64_t used)
{
	uint64_t c = v->common;

	mmio_write16(c + VPCI_Q_SELECT, index);
	mmio_write16(c + VPCI_Q_SIZE, size);
	/* §4.1.3.1: 64-bit fields as two 32-bit accesses, low part first. */
	mmio_write32(c + VPCI_Q_DESCLO, (uint32_t)desc);
	mmio_write32(c + VPCI_Q_DESCHI, (uint32_t)(desc >> 32));
	mmio_write32(c + VPCI_Q_AVAILLO, (uint32_t)avail);
	mmio_write32(c + VPCI_Q_AVAILHI, (uint32_t)(avail >> 32));
	mmio_write32(c + VPCI_Q_USEDLO, (uint32_t)used);
	mmio_write32(c + VPCI_Q_USEDHI, (uint32_t)(used >> 32));
	mmio_write16(c + VPCI_Q_ENABLE, 1);
}

int virtq_setup(struct virtio_pci *v, struct virtq *q, uint16_t index, uint16_t size, const char **why)
{
	uint16_t max = virtq_max_size(v, index), noff;
	size_t desc_len, avail_len, used_off, used_len;
	uint8_t *mem;
	unsigned i;

	memset(q, 0, sizeof(*q));
	if (!max) {
		*why = "queue not available (queue_size reads 0)";
		return -1;
	}
	if (!size)
		size = max;
	if (size > max || (size & (size - 1))) {
		*why = "queue size above the device's maximum or not a power of two";
		return -1;
	}
	/* §2.7: descriptor table (16-byte aligned), avail ring (+used_event), used ring (+avail_event, 4-byte aligned). */
	desc_len = 16UL * size;
	avail_len = 6 + 2UL * size;
	used_off = (desc_len + avail_len + 4095) & ~4095UL;
	used_len = 6 + 8UL * size;
	mem = dma_alloc(used_off + used_len, 4096);
	q->index = index;
	q->size = size;
	q->desc = (struct vring_desc *)mem;
	q->avail = (struct vring_avail *)(mem + desc_len);
	q->used = (struct vring_used *)(mem + used_off);
	q->event_idx = !!(v->features & BIT(VIRTIO_F_EVENT_IDX));
	for (i = 0; i < size; i++)
		q->desc[i].next = (uint16_t)(i + 1);
	q->num_free = size;
	/* We poll: no interrupts wanted (without EVENT_IDX the flag says so, with it used_event does). */
	q->avail->flags = q->event_idx ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
	q->avail->ring[size] = 0xffff;

	virtq_program(v, index, size, (uint64_t)q->desc, (uint64_t)q->avail, (uint64_t)q->used);
	if (mmio_read16(v->common + VPCI_Q_SIZE) != size) {
		*why = "queue_size did not keep the value written";
		return -1;
	}
	if (mmio_read16(v->common + VPCI_Q_ENABLE) != 1) {
		*why = "queue_enable does not read 1 after enabling";
		return -1;
	}
	noff = mmio_read16(v->common + VPCI_Q_NOFF);
	q->notify_addr = v->notify + (uint64_t)noff * v->notify_mult;
	return 0;
}

void virtio_driver_ok(const struct virtio_pci *v)
{
	virtio_set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
				     VIRTIO_STATUS_DRIVER_OK);
}

/* ---- device config ---- */

uint8_t virtio_cfg8(const struct virtio_pci *v, unsigned off)
{
	return v->device ? mmio_read8(v->device + off) : 0;
}

uint16_t virtio_cfg16(const struct virtio_pci *v, unsigned off)
{
	return v->device ? mmio_read16(v->device + off) : 0;
}

uint32_t virtio_cfg32(const struct virtio_pci *v, unsigned off)
{
	return v->device ? mmio_read32(v->device + off) : 0;
}

uint64_t virtio_cfg64(const struct virtio_pci *v, unsigned off)
{
	uint64_t val;
	uint8_t gen;
	unsigned tries;

	if (!v->device)
		return 0;
	/* §4.1.3.1 / §2.5.1: retry while config_generation changes across the two halves. */
	for (tries = 0; tries < 100; tries++) {
		gen = mmio_read8(v->common + VPCI_CFGGEN);
		val = mmio_read32(v->device + off) | (uint64_t)mmio_read32(v->device + off + 4) << 32;
		if (mmio_read8(v->common + VPCI_CFGGEN) == gen)
			return val;
	}
	fail("config_generation keeps changing");
}

/* ---- the split virtqueue, driver side (§2.7.13) ---- */

int virtq_add(struct virtq *q, const struct vbuf *bufs, unsigned n)
{
	uint16_t head = q->free_head, i = head, last = head;
	unsigned k;

	if (!n || n > q->num_free)
		return -1;
	for (k = 0; k < n; k++) {
		q->desc[i].addr = bufs[k].addr;
		q->desc[i].len = bufs[k].len;
		q->desc[i].flags = (uint16_t)((bufs[k].write ? VRING_DESC_F_WRITE : 0) |
					      (k + 1 < n ? VRING_DESC_F_NEXT : 0));
		last = i;
		i = q->desc[i].next;   /* the free list is chained through next, so NEXT chains already point right */
	}
	q->free_head = q->desc[last].next;
	q->num_free = (uint16_t)(q->num_free - n);
	q->avail->ring[q->avail_idx & (q->size - 1)] = head;
	q->avail_idx++;
	return head;
}

void virtq_notify(struct virtq *q)
{
	mmio_write16(q->notify_addr, q->index);
	q->kicks++;
}

void virtq_publish(struct virtq *q)
{
	uint16_t old = q->kicked_idx, now = q->avail_idx;

	/* Ring entries before the index (x86 keeps stores in order; the compiler must too). */
	barrier();
	*(volatile uint16_t *)&q->avail->idx = now;
	q->kicked_idx = now;
	/* The index store before the suppression read (§2.7.13.4: a full barrier). */
	virtio_mb();
	if (q->event_idx) {
		uint16_t event = *(volatile uint16_t *)((uint8_t *)q->used + 4 + 8UL * q->size);

		/* §2.7.10: kick only if the device asked for one within (old, now]. */
		if ((uint16_t)(now - event - 1) < (uint16_t)(now - old))
			virtq_notify(q);
		else
			q->kicks_suppressed++;
	} else if (!(*(volatile uint16_t *)&q->used->flags & VRING_USED_F_NO_NOTIFY)) {
		virtq_notify(q);
	} else {
		q->kicks_suppressed++;
	}
}

bool virtq_get(struct virtq *q, uint32_t *id, uint32_t *len)
{
	struct vring_used_elem e;
	uint16_t i, n;

	if (virtq_used_idx(q) == q->last_used)
		return false;
	barrier();   /* the element after the index (loads stay in order on x86) */
	e = *(volatile struct vring_used_elem *)&q->used->ring[q->last_used & (q->size - 1)];
	q->last_used++;
	if (e.id >= q->size)
		fail("virtqueue %u: used element id %u >= queue size %u", q->index, e.id, q->size);
	/* Free the chain: it is ours, the device never writes descriptors. */
	for (i = (uint16_t)e.id, n = 1; q->desc[i].flags & VRING_DESC_F_NEXT; n++) {
		if (n > q->size)
			fail("virtqueue %u: own descriptor chain from %u loops", q->index, e.id);
		i = q->desc[i].next;
	}
	q->desc[i].next = q->free_head;
	q->free_head = (uint16_t)e.id;
	q->num_free = (uint16_t)(q->num_free + n);
	*id = e.id;
	*len = e.len;
	return true;
}

void virtq_raw_set_avail_idx(struct virtq *q, uint16_t idx)
{
	barrier();
	*(volatile uint16_t *)&q->avail->idx = idx;
	virtio_mb();
}
