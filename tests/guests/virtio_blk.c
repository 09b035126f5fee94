/* virtio_blk: virtio-blk over virtio-pci: reads check the image's content, a written pattern reads back, GET_ID, FLUSH, status bytes and used lengths. */
#include "virtio.h"

#define PATTERN_SECTOR 1000   /* tests/run-guests.sh checks these landed in the image */
#define PATTERN_COUNT  32
#define SERIAL "kiln-test-disk"

static struct blk blk;

static void check_disk(const uint8_t *buf, uint64_t sector, unsigned nsec, const char *what)
{
	for (unsigned s = 0; s < nsec; s++)
		for (unsigned i = 0; i < SECTOR_SIZE; i++)
			if (buf[s * SECTOR_SIZE + i] != disk_byte(sector + s, i))
				fail("%s: sector %lu byte %u is %#x, the image has %#x", what, sector + s, i,
				     buf[s * SECTOR_SIZE + i], disk_byte(sector + s, i));
}

/* One request; its status must be `want` and, when OK, the used length what the device wrote (§2.7.8.2). */
static void io(uint32_t type, uint64_t sector, void *data, uint32_t len, uint8_t want, const char *what)
{
	int head = blk_submit(&blk, type, sector, data, len, true);
	uint32_t id, used_len;
	uint8_t st;

	if (head < 0)
		fail("%s: ring full", what);
	id = blk_wait(&blk, &used_len, what);
	if (id != (uint32_t)head)
		fail("%s: completion for head %u, submitted %d", what, id, head);
	st = blk.slots[id].status;
	if (st != want)
		fail("%s: status %u, expected %u", what, st, want);
	if (st != VIRTIO_BLK_S_OK)
		return;
	/* Device-writable bytes: the data of IN and GET_ID, then the status byte. */
	if (used_len != (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID ? len : 0) + 1)
		fail("%s: used length %u, the device wrote %u bytes", what, used_len,
		     (type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID ? len : 0) + 1);
}

/* Eight reads published with one index update, completed in any order. */
static void batch(uint8_t *buf)
{
	int heads[8];
	bool done[8] = { false };
	unsigned k, got;

	for (k = 0; k < 8; k++) {
		heads[k] = blk_submit(&blk, VIRTIO_BLK_T_IN, 64 + 8 * k, buf + k * 4096, 4096, false);
		if (heads[k] < 0)
			fail("batch: ring full at request %u", k);
	}
	virtq_publish(&blk.vq);
	for (got = 0; got < 8; got++) {
		uint32_t len, id = blk_wait(&blk, &len, "batch of 8 reads");

		for (k = 0; k < 8 && (heads[k] != (int)id || done[k]); k++)
			;
		if (k == 8)
			fail("batch: completion for head %u, which is not in flight", id);
		done[k] = true;
		if (blk.slots[id].status != VIRTIO_BLK_S_OK || len != 4096 + 1)
			fail("batch: request %u status %u used length %u", k, blk.slots[id].status, len);
		check_disk(buf + k * 4096, 64 + 8 * k, 8, "batch read");
	}
	printf("virtio_blk: 8 reads in one publish, %lu kicks so far (%lu suppressed)\n", blk.vq.kicks,
	       blk.vq.kicks_suppressed);
}

/* A read whose data is three descriptors of 512, 1024 and 2560 bytes. */
static void scatter(uint8_t *buf)
{
	struct blk_slot *s = &blk.slots[blk.vq.free_head];
	struct vbuf b[5];
	uint32_t id, len;
	int head;

	s->hdr = (struct virtio_blk_req_hdr){ VIRTIO_BLK_T_IN, 0, 200 };
	s->status = 0xff;
	b[0] = (struct vbuf){ (uint64_t)&s->hdr, sizeof(s->hdr), false };
	b[1] = (struct vbuf){ (uint64_t)buf, 512, true };
	b[2] = (struct vbuf){ (uint64_t)buf + 512, 1024, true };
	b[3] = (struct vbuf){ (uint64_t)buf + 1536, 2560, true };
	b[4] = (struct vbuf){ (uint64_t)&s->status, 1, true };
	head = virtq_add(&blk.vq, b, 5);
	virtq_publish(&blk.vq);
	id = blk_wait(&blk, &len, "scatter read");
	if (id != (uint32_t)head || s->status != VIRTIO_BLK_S_OK || len != 4096 + 1)
		fail("scatter read: head %u (submitted %d) status %u used length %u", id, head, s->status, len);
	check_disk(buf, 200, 8, "scatter read");
}

void guest_main(void)
{
	const uint64_t want = BIT(VIRTIO_BLK_F_FLUSH) | BIT(VIRTIO_BLK_F_SIZE_MAX) | BIT(VIRTIO_BLK_F_SEG_MAX) |
			      BIT(VIRTIO_F_EVENT_IDX);
	uint64_t sectors = cmdline_uint("sectors", 0), s;
	uint8_t *buf = dma_alloc(64 * 1024, 4096), *back = dma_alloc(64 * 1024, 4096);
	char id[VIRTIO_BLK_ID_BYTES + 1];
	const char *why;

	if (blk_open(&blk, want, 0, &why) < 0)
		fail("virtio-blk: %s", why);
	printf("virtio_blk: pci %02x:%02x.%x device %#x (%s, %u BARs placed by the guest), features %#lx, "
	       "queue size %u, capacity %lu sectors\n", blk.pci.bdf >> 8, (blk.pci.bdf >> 3) & 31, blk.pci.bdf & 7,
	       blk.pci.device_id, pci_uses_ecam() ? "ECAM" : "0xcf8", blk.pci.bars_placed, blk.pci.features,
	       blk.vq.size, blk.capacity);
	if (sectors && blk.capacity != sectors)
		fail("capacity %lu sectors, the image has %lu", blk.capacity, sectors);
	if (virtio_device_features(&blk.pci) & BIT(VIRTIO_BLK_F_RO))
		fail("the device offers VIRTIO_BLK_F_RO for a read-write disk");
	if (!(blk.pci.features & BIT(VIRTIO_BLK_F_FLUSH)))
		fail("the device does not offer VIRTIO_BLK_F_FLUSH");

	/* Sectors 0..15 one request each, then 64 KiB in one request. */
	for (s = 0; s < 16; s++) {
		io(VIRTIO_BLK_T_IN, s, buf, SECTOR_SIZE, VIRTIO_BLK_S_OK, "read one sector");
		check_disk(buf, s, 1, "read one sector");
	}
	io(VIRTIO_BLK_T_IN, 16, buf, 64 * 1024, VIRTIO_BLK_S_OK, "read 64 KiB");
	check_disk(buf, 16, 128, "read 64 KiB");
	io(VIRTIO_BLK_T_IN, blk.capacity - 1, buf, SECTOR_SIZE, VIRTIO_BLK_S_OK, "read the last sector");
	check_disk(buf, blk.capacity - 1, 1, "read the last sector");
	printf("virtio_blk: read sectors 0-143 and the last one\n");

	/* Beyond the end: the device must refuse (IOERR), not read or crash. */
	io(VIRTIO_BLK_T_IN, blk.capacity, buf, SECTOR_SIZE, VIRTIO_BLK_S_IOERR, "read past the end");
	io(VIRTIO_BLK_T_IN, blk.capacity - 1, buf, 2 * SECTOR_SIZE, VIRTIO_BLK_S_IOERR, "read across the end");
	printf("virtio_blk: reads past the end: IOERR\n");

	batch(buf);
	scatter(buf);

	for (unsigned i = 0; i < PATTERN_COUNT * SECTOR_SIZE; i++)
		buf[i] = pattern_byte(PATTERN_SECTOR + i / SECTOR_SIZE, i % SECTOR_SIZE);
	io(VIRTIO_BLK_T_OUT, PATTERN_SECTOR, buf, PATTERN_COUNT * SECTOR_SIZE, VIRTIO_BLK_S_OK, "write the pattern");
	memset(back, 0, PATTERN_COUNT * SECTOR_SIZE);
	io(VIRTIO_BLK_T_IN, PATTERN_SECTOR, back, PATTERN_COUNT * SECTOR_SIZE, VIRTIO_BLK_S_OK, "read the pattern");
	if (memcmp(buf, back, PATTERN_COUNT * SECTOR_SIZE))
		fail("the pattern read back differs from what was written");
	io(VIRTIO_BLK_T_IN, PATTERN_SECTOR - 1, back, SECTOR_SIZE, VIRTIO_BLK_S_OK, "read before the pattern");
	check_disk(back, PATTERN_SECTOR - 1, 1, "the sector before the pattern");
	io(VIRTIO_BLK_T_IN, PATTERN_SECTOR + PATTERN_COUNT, back, SECTOR_SIZE, VIRTIO_BLK_S_OK, "read after the pattern");
	check_disk(back, PATTERN_SECTOR + PATTERN_COUNT, 1, "the sector after the pattern");
	io(VIRTIO_BLK_T_OUT, blk.capacity, buf, SECTOR_SIZE, VIRTIO_BLK_S_IOERR, "write past the end");
	printf("virtio_blk: wrote sectors %u-%u, read them back\n", PATTERN_SECTOR, PATTERN_SECTOR + PATTERN_COUNT - 1);

	io(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, VIRTIO_BLK_S_OK, "flush");
	printf("virtio_blk: flush OK\n");

	memset(buf, 0x55, VIRTIO_BLK_ID_BYTES);
	io(VIRTIO_BLK_T_GET_ID, 0, buf, VIRTIO_BLK_ID_BYTES, VIRTIO_BLK_S_OK, "GET_ID");
	memcpy(id, buf, VIRTIO_BLK_ID_BYTES);
	id[VIRTIO_BLK_ID_BYTES] = 0;
	/* §5.2.6: NUL-terminated unless exactly 20 bytes long. */
	if (strncmp(id, SERIAL, sizeof(SERIAL)) != 0)
		fail("GET_ID returned \"%s\", expected \"%s\"", id, SERIAL);
	printf("virtio_blk: GET_ID \"%s\"\n", id);

	/* An unknown request type: UNSUPP (§5.2.6.1), and the device carries on. */
	io(0x7f, 0, buf, SECTOR_SIZE, VIRTIO_BLK_S_UNSUPP, "unknown request type");
	io(VIRTIO_BLK_T_IN, 0, buf, SECTOR_SIZE, VIRTIO_BLK_S_OK, "read after UNSUPP");
	check_disk(buf, 0, 1, "read after UNSUPP");
	printf("virtio_blk: unknown type: UNSUPP; %lu kicks, %lu suppressed, status %#x\n", blk.vq.kicks,
	       blk.vq.kicks_suppressed, virtio_status(&blk.pci));
}
