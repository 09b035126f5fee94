/* Unit tests for the virtio-blk device: a fake driver and transport drive both backends against a temp image. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "core/vm.h"
#include "virtio/blk.h"
#include "virtio/blk_req.h"
#include "virtio/virtio.h"
#include "stub_vm.h"

#define RAM        (32 * MiB)
#define QSIZE      256u
#define DESC_GPA   0x10000ull
#define AVAIL_GPA  0x20000ull
#define USED_GPA   0x30000ull
#define HDR_GPA    0x100000ull     /* 16 bytes per slot */
#define STATUS_GPA 0x180000ull     /* 1 byte per slot */
#define DATA_GPA   0x400000ull     /* DATA_STRIDE per slot */
#define DATA_STRIDE 0x10000ull
#define SLOTS      80u             /* 3 descriptors each: 240 of 256 */
#define IMG_SECTORS 2048u          /* 1 MiB image */

/* What the fake transport saw. */
struct fake_transport {
	unsigned queue_irqs;
	unsigned config_irqs;
};

/* The fake transport's registry: virtio_pci_add/virtio_mmio_add below record here (test-only state). */
struct fake_registry {
	int fail;                     /* next add returns this if non-zero */
	unsigned added;
	struct virtio_dev *last;
	struct fake_transport t[VM_MAX_DISKS];
};

static struct fake_registry *registry(void)
{
	static struct fake_registry r;
	return &r;
}

static void fake_notify_queue(struct virtio_dev *d, unsigned q)
{
	((struct fake_transport *)d->transport)->queue_irqs++;
}

static void fake_notify_config(struct virtio_dev *d)
{
	((struct fake_transport *)d->transport)->config_irqs++;
}

static const struct virtio_transport_ops fake_tops = {
	.notify_queue = fake_notify_queue,
	.notify_config = fake_notify_config,
};

static void fake_destroy(void *state)
{
	virtio_dev_destroy(state);   /* the device frees d (virtio.h) */
}

static int fake_add(struct vm *vm, struct virtio_dev *d)
{
	struct fake_registry *r = registry();
	struct vm_device dev = { .name = d->name, .state = d, .destroy = fake_destroy };
	int ret;

	if (r->fail)
		return r->fail;
	ret = vm_add_device(vm, &dev);
	if (ret < 0)
		return ret;
	d->transport = &r->t[r->added % VM_MAX_DISKS];
	memset(d->transport, 0, sizeof(struct fake_transport));
	d->tops = &fake_tops;
	r->last = d;
	r->added++;
	return 0;
}

/* The transports kiln links in production; here both are the fake. */
int virtio_pci_add(struct vm *vm, struct virtio_dev *d)
{
	return fake_add(vm, d);
}

int virtio_mmio_add(struct vm *vm, struct virtio_dev *d)
{
	return fake_add(vm, d);
}

struct fx {
	struct vm vm;
	char path[64];
	struct disk_config cfg;
	struct virtio_dev *d;
	struct fake_transport *t;
	uint16_t avail_idx;
	unsigned next_slot;
	bool sync;
	uint64_t drop_features;   /* offered features the fake driver declines */
};

static void *gp(struct fx *f, gpa_t gpa, uint64_t len)
{
	void *p = vm_gpa(&f->vm, gpa, len);

	assert_non_null(p);
	return p;
}

static uint8_t pattern(uint64_t byte)
{
	return (uint8_t)(byte * 131 + (byte >> 9));
}

/* A 1 MiB image whose every byte is pattern(offset). */
static void make_image(struct fx *f)
{
	uint8_t *buf = malloc(IMG_SECTORS * 512);
	int fd;

	assert_non_null(buf);
	snprintf(f->path, sizeof(f->path), "/tmp/kiln-test-blk-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	for (uint64_t i = 0; i < IMG_SECTORS * 512; i++)
		buf[i] = pattern(i);
	assert_int_equal(pwrite(fd, buf, IMG_SECTORS * 512, 0), IMG_SECTORS * 512);
	close(fd);
	free(buf);
}

static void file_read(struct fx *f, uint64_t off, void *buf, size_t len)
{
	int fd = open(f->path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* The fake driver: §3.1.1 initialisation with every offered feature, one queue at QSIZE. */
static void driver_init(struct fx *f)
{
	struct virtio_dev *d = f->d;

	memset(gp(f, DESC_GPA, 0x30000), 0, 0x30000);
	f->avail_idx = 0;
	f->next_slot = 0;
	pthread_mutex_lock(&d->lock);
	virtio_write_status(d, 0);
	virtio_write_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	for (uint32_t sel = 0; sel < 2; sel++) {
		d->host_features_sel = d->guest_features_sel = sel;
		virtio_write_guest_features(d, virtio_read_host_features(d) & ~(uint32_t)(f->drop_features >> (32 * sel)));
	}
	virtio_write_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
	assert_true(d->status & VIRTIO_STATUS_FEATURES_OK);
	d->qcfg[0].size = QSIZE;
	d->qcfg[0].desc = DESC_GPA;
	d->qcfg[0].avail = AVAIL_GPA;
	d->qcfg[0].used = USED_GPA;
	assert_int_equal(virtio_queue_enable(d, 0), 0);
	virtio_write_status(d, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
				       VIRTIO_STATUS_DRIVER_OK);
	assert_true(virtio_queue_live(d, 0));
	pthread_mutex_unlock(&d->lock);
}

static void open_disk(struct fx *f)
{
	struct fake_registry *r = registry();

	f->vm.cfg.disks[0] = f->cfg;
	f->vm.cfg.ndisks = 1;
	r->fail = 0;
	assert_int_equal(blk_init_disks(&f->vm), 0);
	f->d = r->last;
	f->t = f->d->transport;
	assert_string_equal(f->d->name, "virtio-blk0");
	assert_int_equal(blk_uses_uring(f->d), !f->sync);
	driver_init(f);
}

/* Tear the fake VM down (destroying its devices) and build a fresh one. */
static void vm_renew(struct fx *f)
{
	stub_vm_fini(&f->vm);
	ioloop_destroy(&f->vm.io);
	stub_vm_init(&f->vm, RAM);
	assert_int_equal(ioloop_init(&f->vm.io), 0);
}

static int setup_common(void **state, bool sync)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	stub_vm_init(&f->vm, RAM);
	assert_int_equal(ioloop_init(&f->vm.io), 0);
	make_image(f);
	f->sync = sync;
	f->cfg = (struct disk_config){ .path = f->path, .sync_io = sync };
	*state = f;
	return 0;
}

static int setup_uring(void **state) { return setup_common(state, false); }
static int setup_sync(void **state) { return setup_common(state, true); }

static int teardown(void **state)
{
	struct fx *f = *state;

	stub_vm_fini(&f->vm);   /* destroys the devices (drains io_uring) */
	ioloop_destroy(&f->vm.io);
	unlink(f->path);
	free(f);
	return 0;
}

static void desc(struct fx *f, unsigned i, gpa_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	struct vring_desc v = { .addr = htole64(addr), .len = htole32(len), .flags = htole16(flags),
				.next = htole16(next) };

	memcpy(gp(f, DESC_GPA + 16ull * i, 16), &v, 16);
}

static void offer(struct fx *f, uint16_t head)
{
	uint16_t v = htole16(head);

	memcpy(gp(f, AVAIL_GPA + 4 + 2ull * (f->avail_idx % QSIZE), 2), &v, 2);
	f->avail_idx++;
	v = htole16(f->avail_idx);
	__atomic_store_n((uint16_t *)gp(f, AVAIL_GPA + 2, 2), v, __ATOMIC_RELEASE);
}

static uint16_t used_idx(struct fx *f)
{
	return le16toh(__atomic_load_n((uint16_t *)gp(f, USED_GPA + 2, 2), __ATOMIC_ACQUIRE));
}

static uint32_t used_len(struct fx *f, uint16_t i)
{
	uint32_t v;

	memcpy(&v, gp(f, USED_GPA + 4 + 8ull * (i % QSIZE) + 4, 4), 4);
	return le32toh(v);
}

static uint32_t used_id(struct fx *f, uint16_t i)
{
	uint32_t v;

	memcpy(&v, gp(f, USED_GPA + 4 + 8ull * (i % QSIZE), 4), 4);
	return le32toh(v);
}

static uint8_t *data_of(struct fx *f, unsigned slot)
{
	return gp(f, DATA_GPA + slot * DATA_STRIDE, DATA_STRIDE);
}

static uint8_t status_of(struct fx *f, unsigned slot)
{
	return *(uint8_t *)gp(f, STATUS_GPA + slot, 1);
}

/*
 * Queue one request in its own slot: header, optional data (device-writable
 * for reads), status. Returns the slot. Nothing is kicked yet.
 */
static unsigned post(struct fx *f, uint32_t type, uint64_t sector, uint32_t len, bool dev_writes)
{
	unsigned slot = f->next_slot++ % SLOTS;
	uint16_t head = (uint16_t)(3 * slot);
	struct virtio_blk_outhdr h = { .type = htole32(type), .sector = htole64(sector) };

	memcpy(gp(f, HDR_GPA + 16ull * slot, 16), &h, 16);
	*(uint8_t *)gp(f, STATUS_GPA + slot, 1) = 0xff;
	if (len) {
		desc(f, head, HDR_GPA + 16ull * slot, 16, VIRTQ_DESC_F_NEXT, head + 1);
		desc(f, head + 1u, DATA_GPA + slot * DATA_STRIDE, len,
		     VIRTQ_DESC_F_NEXT | (dev_writes ? VIRTQ_DESC_F_WRITE : 0), head + 2);
	} else {
		desc(f, head, HDR_GPA + 16ull * slot, 16, VIRTQ_DESC_F_NEXT, head + 2);
	}
	desc(f, head + 2u, STATUS_GPA + slot, 1, VIRTQ_DESC_F_WRITE, 0);
	offer(f, head);
	return slot;
}

/* What the I/O thread does on a kick. */
static void kick(struct fx *f)
{
	pthread_mutex_lock(&f->d->lock);
	if (virtio_queue_live(f->d, 0))
		f->d->ops->queue_notify(f->d, 0);
	pthread_mutex_unlock(&f->d->lock);
}

/* Wait (bounded) until the used ring reaches idx, reaping io_uring completions as the I/O thread would. */
static void wait_used(struct fx *f, uint16_t idx)
{
	int efd = blk_completion_fd(f->d);

	/* 5 s at most: each poll either sees the eventfd (which blk_poll drains) or waits 10 ms. */
	for (unsigned i = 0; i < 500 && efd >= 0 && (uint16_t)(idx - used_idx(f)) != 0; i++) {
		struct pollfd p = { .fd = efd, .events = POLLIN };

		if (poll(&p, 1, 10) == 0)
			continue;
		blk_poll(f->d);
	}
	assert_int_equal(used_idx(f), idx);
}

/* Post, kick, wait: one request to completion; returns its status. */
static uint8_t run1(struct fx *f, uint32_t type, uint64_t sector, uint32_t len, bool dev_writes, unsigned *slot_out)
{
	uint16_t before = used_idx(f);
	unsigned slot = post(f, type, sector, len, dev_writes);

	kick(f);
	wait_used(f, (uint16_t)(before + 1));
	assert_int_equal(used_id(f, before), 3 * slot);
	if (slot_out)
		*slot_out = slot;
	return status_of(f, slot);
}

static void test_read_write(void **state)
{
	struct fx *f = *state;
	struct blk_stats s;
	uint8_t file[4096];
	unsigned slot;

	open_disk(f);
	/* Read what the image holds. */
	assert_int_equal(run1(f, VIRTIO_BLK_T_IN, 3, 4096, true, &slot), VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(data_of(f, slot)[i], pattern(3 * 512 + i));
	assert_int_equal(used_len(f, (uint16_t)(used_idx(f) - 1)), 4097);

	/* Write a new pattern at the last 8 sectors; the file has it; reading it back gives it. */
	slot = f->next_slot % SLOTS;
	for (unsigned i = 0; i < 4096; i++)
		data_of(f, slot)[i] = (uint8_t)(i ^ 0x5a);
	assert_int_equal(run1(f, VIRTIO_BLK_T_OUT, IMG_SECTORS - 8, 4096, false, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(used_len(f, (uint16_t)(used_idx(f) - 1)), 1);
	file_read(f, (IMG_SECTORS - 8) * 512ull, file, sizeof(file));
	for (unsigned i = 0; i < 4096; i++)
		assert_int_equal(file[i], (uint8_t)(i ^ 0x5a));
	assert_int_equal(run1(f, VIRTIO_BLK_T_IN, IMG_SECTORS - 8, 4096, true, &slot), VIRTIO_BLK_S_OK);
	assert_memory_equal(data_of(f, slot), file, 4096);

	/* One sector past the end: IOERR, nothing written. */
	assert_int_equal(run1(f, VIRTIO_BLK_T_OUT, IMG_SECTORS - 7, 4096, false, NULL), VIRTIO_BLK_S_IOERR);

	blk_get_stats(f->d, &s);
	assert_int_equal(s.reads, 2);
	assert_int_equal(s.writes, 1);
	assert_int_equal(s.bytes_read, 8192);
	assert_int_equal(s.bytes_written, 4096);
	assert_int_equal(s.bad_requests, 1);
	assert_int_equal(s.io_errors, 0);
	assert_true(f->t->queue_irqs >= 1);
	assert_int_equal(f->t->config_irqs, 0);
}

static void test_flush_get_id(void **state)
{
	struct fx *f = *state;
	struct blk_stats s;
	unsigned slot;
	struct stat st;
	char want[64];

	f->cfg.serial = "kiln-serial-0123456";  /* 19 bytes: NUL-padded */
	open_disk(f);
	assert_int_equal(run1(f, VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	assert_int_equal(run1(f, VIRTIO_BLK_T_GET_ID, 0, 20, true, &slot), VIRTIO_BLK_S_OK);
	assert_memory_equal(data_of(f, slot), "kiln-serial-0123456\0", 20);
	assert_int_equal(used_len(f, (uint16_t)(used_idx(f) - 1)), 21);
	blk_get_stats(f->d, &s);
	assert_int_equal(s.flushes, 1);
	assert_int_equal(s.get_ids, 1);
	vm_renew(f);

	/* No serial given: derived from the image's device and inode. */
	f->cfg.serial = NULL;
	open_disk(f);
	memset(data_of(f, f->next_slot % SLOTS), 0xaa, 20);
	assert_int_equal(run1(f, VIRTIO_BLK_T_GET_ID, 0, 20, true, &slot), VIRTIO_BLK_S_OK);
	assert_int_equal(stat(f->path, &st), 0);
	snprintf(want, sizeof(want), "%llx:%llx", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	assert_memory_equal(data_of(f, slot), want, MIN(strlen(want), 20));
}

static void test_config(void **state)
{
	struct fx *f = *state;
	struct virtio_blk_config c;
	uint8_t b;

	open_disk(f);
	pthread_mutex_lock(&f->d->lock);
	virtio_config_read(f->d, 0, &c, sizeof(c));
	/* Out of range: zeros, no crash. */
	virtio_config_read(f->d, sizeof(c), &b, 1);
	pthread_mutex_unlock(&f->d->lock);
	assert_int_equal(b, 0);
	assert_int_equal(le64toh(c.capacity), IMG_SECTORS);
	assert_int_equal(le32toh(c.blk_size), 512);
	assert_int_equal(le32toh(c.seg_max), QSIZE - 2);
	assert_true(f->d->host_features & (1ull << VIRTIO_BLK_F_FLUSH));
	assert_true(f->d->host_features & (1ull << VIRTIO_BLK_F_SEG_MAX));
	assert_true(f->d->host_features & (1ull << VIRTIO_BLK_F_BLK_SIZE));
	assert_false(f->d->host_features & (1ull << VIRTIO_BLK_F_RO));
	/* ext4/tmpfs punch holes: discard and write zeroes are offered with their limits. */
	assert_true(f->d->host_features & (1ull << VIRTIO_BLK_F_DISCARD));
	assert_true(f->d->host_features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	assert_true(le32toh(c.max_discard_sectors) > 0);
	assert_int_equal(le32toh(c.max_discard_seg), BLK_MAX_SEGS);
	assert_int_equal(le32toh(c.max_write_zeroes_seg), BLK_MAX_SEGS);
	assert_int_equal(c.write_zeroes_may_unmap, 1);
	assert_int_equal(f->d->device_id, VIRTIO_ID_BLOCK);
}

/* Post a DISCARD / WRITE_ZEROES with one segment. */
static uint8_t run_seg(struct fx *f, uint32_t type, uint64_t sector, uint32_t n, uint32_t flags)
{
	unsigned slot = f->next_slot % SLOTS;
	struct virtio_blk_discard_write_zeroes s = { .sector = htole64(sector), .num_sectors = htole32(n),
						     .flags = htole32(flags) };

	memcpy(data_of(f, slot), &s, sizeof(s));
	return run1(f, type, 0, sizeof(s), false, NULL);
}

static void expect_zero(struct fx *f, uint64_t off, size_t len)
{
	uint8_t *buf = malloc(len);

	file_read(f, off, buf, len);
	for (size_t i = 0; i < len; i++)
		assert_int_equal(buf[i], 0);
	free(buf);
}

static void test_discard_write_zeroes(void **state)
{
	struct fx *f = *state;
	struct blk_stats s;
	struct stat before, after;
	uint8_t keep[512];

	open_disk(f);
	assert_int_equal(stat(f->path, &before), 0);
	/* Discard 256 KiB: it becomes a hole (fewer blocks), and the image keeps its size. */
	assert_int_equal(run_seg(f, VIRTIO_BLK_T_DISCARD, 512, 512, 0), VIRTIO_BLK_S_OK);
	assert_int_equal(stat(f->path, &after), 0);
	assert_true(after.st_blocks < before.st_blocks);
	assert_int_equal(after.st_size, before.st_size);

	/* Write zeroes without unmap (ZERO_RANGE), and with (a hole): both read back as zeroes. */
	assert_int_equal(run_seg(f, VIRTIO_BLK_T_WRITE_ZEROES, 8, 16, 0), VIRTIO_BLK_S_OK);
	expect_zero(f, 8 * 512, 16 * 512);
	assert_int_equal(run_seg(f, VIRTIO_BLK_T_WRITE_ZEROES, 100, 3, VIRTIO_BLK_WZ_F_UNMAP), VIRTIO_BLK_S_OK);
	expect_zero(f, 100 * 512, 3 * 512);
	/* Neighbours untouched. */
	file_read(f, 103 * 512, keep, sizeof(keep));
	for (unsigned i = 0; i < sizeof(keep); i++)
		assert_int_equal(keep[i], pattern(103 * 512 + i));

	/* §5.2.6.2: unmap on a discard is UNSUPP; past the end is IOERR. */
	assert_int_equal(run_seg(f, VIRTIO_BLK_T_DISCARD, 0, 8, VIRTIO_BLK_WZ_F_UNMAP), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(run_seg(f, VIRTIO_BLK_T_WRITE_ZEROES, IMG_SECTORS - 1, 2, 0), VIRTIO_BLK_S_IOERR);
	assert_int_equal(after.st_size, IMG_SECTORS * 512);

	blk_get_stats(f->d, &s);
	assert_int_equal(s.discards, 1);
	assert_int_equal(s.write_zeroes, 2);
	assert_int_equal(s.unsupported, 1);
	assert_int_equal(s.bad_requests, 1);
}

static void test_readonly(void **state)
{
	struct fx *f = *state;
	uint8_t file[512];
	struct blk_stats s;
	unsigned slot;

	f->cfg.readonly = true;
	open_disk(f);
	assert_true(f->d->host_features & (1ull << VIRTIO_BLK_F_RO));
	assert_false(f->d->host_features & (1ull << VIRTIO_BLK_F_DISCARD));
	assert_false(f->d->host_features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES));
	memset(data_of(f, f->next_slot % SLOTS), 0x11, 512);
	assert_int_equal(run1(f, VIRTIO_BLK_T_OUT, 0, 512, false, NULL), VIRTIO_BLK_S_IOERR);
	file_read(f, 0, file, sizeof(file));
	for (unsigned i = 0; i < sizeof(file); i++)
		assert_int_equal(file[i], pattern(i));
	/* DISCARD was not offered, so not negotiated: UNSUPP. */
	assert_int_equal(run_seg(f, VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_UNSUPP);
	assert_int_equal(run1(f, VIRTIO_BLK_T_IN, 1, 512, true, &slot), VIRTIO_BLK_S_OK);
	assert_int_equal(data_of(f, slot)[0], pattern(512));
	assert_int_equal(run1(f, VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_OK);
	blk_get_stats(f->d, &s);
	assert_int_equal(s.bad_requests, 1);
	assert_int_equal(s.writes, 0);
}

/* Backing-file errors become IOERR for that request; the device stays live and recovers. */
static void test_backend_errors(void **state)
{
	struct fx *f = *state;
	int fd, saved, full, dir, pipefd[2];
	struct blk_stats s;

	open_disk(f);
	fd = blk_backing_fd(f->d);
	saved = dup(fd);
	assert_true(saved >= 0);

	/* ENOSPC: /dev/full refuses every write. */
	full = open("/dev/full", O_RDWR);
	assert_true(full >= 0);
	assert_true(dup2(full, fd) == fd);
	assert_int_equal(run1(f, VIRTIO_BLK_T_OUT, 0, 4096, false, NULL), VIRTIO_BLK_S_IOERR);
	close(full);

	/* EISDIR / EBADF: a directory under the hood. */
	dir = open("/", O_RDONLY | O_DIRECTORY);
	assert_true(dir >= 0);
	assert_true(dup2(dir, fd) == fd);
	assert_int_equal(run1(f, VIRTIO_BLK_T_IN, 0, 4096, true, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(run1(f, VIRTIO_BLK_T_OUT, 0, 512, false, NULL), VIRTIO_BLK_S_IOERR);
	close(dir);

	/* A closed pipe: reads see end-of-file (short I/O), writes EPIPE/ESPIPE, flush EINVAL. */
	assert_int_equal(pipe(pipefd), 0);
	close(pipefd[1]);
	assert_true(dup2(pipefd[0], fd) == fd);
	assert_int_equal(run1(f, VIRTIO_BLK_T_IN, 0, 512, true, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(run1(f, VIRTIO_BLK_T_FLUSH, 0, 0, false, NULL), VIRTIO_BLK_S_IOERR);
	assert_int_equal(run_seg(f, VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0), VIRTIO_BLK_S_IOERR);
	close(pipefd[0]);

	blk_get_stats(f->d, &s);
	assert_int_equal(s.io_errors, 6);
	assert_int_equal(s.bad_requests, 0);
	assert_false(f->d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);

	/* The real image back: requests work again. */
	assert_true(dup2(saved, fd) == fd);
	close(saved);
	assert_int_equal(run1(f, VIRTIO_BLK_T_IN, 0, 512, true, NULL), VIRTIO_BLK_S_OK);
}

static void expect_needs_reset(struct fx *f, unsigned config_irqs)
{
	assert_true(f->d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_false(virtio_queue_live(f->d, 0));
	assert_int_equal(f->t->config_irqs, config_irqs);
}

/* Hostile chains: reportable ones get a status; unreportable ones or broken rings get NEEDS_RESET. */
static void test_hostile(void **state)
{
	struct fx *f = *state;
	unsigned slot;
	uint16_t u;

	open_disk(f);
	/* Short header, unknown type: a status, the device goes on. */
	assert_int_equal(run1(f, 99, 0, 512, true, NULL), VIRTIO_BLK_S_UNSUPP);
	u = used_idx(f);
	slot = post(f, VIRTIO_BLK_T_IN, 0, 512, true);
	desc(f, 3 * slot, HDR_GPA + 16ull * slot, 8, VIRTQ_DESC_F_NEXT, (uint16_t)(3 * slot + 1));
	kick(f);
	wait_used(f, (uint16_t)(u + 1));
	assert_int_equal(status_of(f, slot), VIRTIO_BLK_S_IOERR);
	assert_false(f->d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);

	/* A chain with no writable byte: nowhere to report, so the driver is broken. */
	u = used_idx(f);
	slot = post(f, VIRTIO_BLK_T_IN, 0, 512, false);
	desc(f, 3 * slot + 2, STATUS_GPA + slot, 1, 0, 0);
	kick(f);
	assert_int_equal(used_idx(f), u);
	expect_needs_reset(f, 1);
	/* Kicks are ignored until the reset. */
	post(f, VIRTIO_BLK_T_IN, 0, 512, true);
	kick(f);
	assert_int_equal(used_idx(f), u);

	/* After a reset and a fresh start the device works again. */
	driver_init(f);
	assert_false(f->d->status & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
	assert_int_equal(run1(f, VIRTIO_BLK_T_IN, 0, 512, true, &slot), VIRTIO_BLK_S_OK);
	assert_int_equal(data_of(f, slot)[0], pattern(0));

	/* A data buffer outside guest RAM: the ring is hostile (virtqueue layer), NEEDS_RESET. */
	slot = post(f, VIRTIO_BLK_T_IN, 0, 512, true);
	desc(f, 3 * slot + 1, RAM - 256, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, (uint16_t)(3 * slot + 2));
	kick(f);
	expect_needs_reset(f, 2);

	/* A descriptor loop: the status descriptor chains to itself. */
	driver_init(f);
	slot = post(f, VIRTIO_BLK_T_IN, 0, 512, true);
	desc(f, 3 * slot + 2, STATUS_GPA + slot, 1, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, (uint16_t)(3 * slot + 2));
	kick(f);
	expect_needs_reset(f, 3);
}

/* Many requests at once: all complete, in any order, and io_uring keeps several in flight. */
static void test_batch(void **state)
{
	struct fx *f = *state;
	struct blk_stats s;
	uint16_t u;

	open_disk(f);
	u = used_idx(f);
	for (unsigned i = 0; i < SLOTS; i++)
		post(f, VIRTIO_BLK_T_IN, i * 8, 4096, true);
	kick(f);
	wait_used(f, (uint16_t)(u + SLOTS));
	for (unsigned i = 0; i < SLOTS; i++) {
		assert_int_equal(status_of(f, i), VIRTIO_BLK_S_OK);
		assert_int_equal(data_of(f, i)[100], pattern(i * 8 * 512 + 100));
		assert_int_equal(data_of(f, i)[4095], pattern(i * 8 * 512 + 4095));
	}
	blk_get_stats(f->d, &s);
	assert_int_equal(s.reads, SLOTS);
	if (!f->sync)
		assert_true(s.inflight_peak > 1);
	assert_int_equal(blk_inflight(f->d), 0);
}

/* Reset with writes in flight: they land in the image, and none is reported afterwards. */
static void test_reset_inflight(void **state)
{
	struct fx *f = *state;
	uint8_t file[4096];
	uint16_t u;

	open_disk(f);
	u = used_idx(f);
	for (unsigned i = 0; i < 16; i++) {
		memset(data_of(f, i), 0xc0 + i, 4096);
		post(f, VIRTIO_BLK_T_OUT, i * 8, 4096, false);
	}
	kick(f);   /* submitted; not reaped */
	assert_int_equal(blk_inflight(f->d), f->sync ? 0 : 16);
	pthread_mutex_lock(&f->d->lock);
	virtio_write_status(f->d, 0);
	pthread_mutex_unlock(&f->d->lock);
	assert_int_equal(blk_inflight(f->d), 0);
	blk_poll(f->d);
	if (!f->sync)
		assert_int_equal(used_idx(f), u);  /* nothing reported after the reset */
	for (unsigned i = 0; i < 16; i++) {
		file_read(f, i * 8 * 512ull, file, sizeof(file));
		for (unsigned j = 0; j < sizeof(file); j++)
			assert_int_equal(file[j], 0xc0 + i);
	}
	/* And the device comes back. */
	driver_init(f);
	assert_int_equal(run1(f, VIRTIO_BLK_T_IN, 0, 512, true, NULL), VIRTIO_BLK_S_OK);
}

/* Teardown with writes in flight: the image has them when the device is gone. */
static void test_destroy_inflight(void **state)
{
	struct fx *f = *state;
	uint8_t file[4096];

	open_disk(f);
	for (unsigned i = 0; i < 32; i++) {
		memset(data_of(f, i), 0x30 + i, 4096);
		post(f, VIRTIO_BLK_T_OUT, 1000 + i * 8, 4096, false);
	}
	kick(f);
	assert_int_equal(blk_inflight(f->d), f->sync ? 0 : 32);
	vm_renew(f);   /* destroys the device */
	for (unsigned i = 0; i < 32; i++) {
		file_read(f, (1000 + i * 8) * 512ull, file, sizeof(file));
		for (unsigned j = 0; j < sizeof(file); j++)
			assert_int_equal(file[j], 0x30 + i);
	}
}

/* The real path: a kick eventfd and the ring's eventfd served by the I/O thread. */
static void test_io_thread(void **state)
{
	struct fx *f = *state;
	unsigned slot;
	uint16_t u;

	open_disk(f);
	assert_int_equal(ioloop_start(&f->vm.io), 0);
	u = used_idx(f);
	slot = post(f, VIRTIO_BLK_T_IN, 5, 1024, true);
	pthread_mutex_lock(&f->d->lock);
	virtio_kick(f->d, 0);
	pthread_mutex_unlock(&f->d->lock);
	for (unsigned i = 0; i < 500 && used_idx(f) == u; i++)
		usleep(10000);
	ioloop_stop(&f->vm.io);
	assert_int_equal(used_idx(f), (uint16_t)(u + 1));
	assert_int_equal(status_of(f, slot), VIRTIO_BLK_S_OK);
	assert_int_equal(data_of(f, slot)[1023], pattern(5 * 512 + 1023));
	assert_true(f->t->queue_irqs >= 1);
}

/* ---- --io-poll ---- */

/*
 * The driver's kick decision after moving avail->idx from old to new
 * (§2.7.13.4 / Linux virtqueue_kick_prepare): with EVENT_IDX, did the index
 * pass avail_event; without, is VIRTQ_USED_F_NO_NOTIFY clear.
 */
static bool driver_would_kick(struct fx *f, uint16_t old, uint16_t new_idx)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (f->d->guest_features & (1ull << VIRTIO_RING_F_EVENT_IDX)) {
		uint16_t ev = le16toh(__atomic_load_n((uint16_t *)gp(f, USED_GPA + 4 + 8ull * QSIZE, 2),
						      __ATOMIC_RELAXED));
		return vq_need_event(ev, new_idx, old);
	}
	return !(le16toh(__atomic_load_n((uint16_t *)gp(f, USED_GPA, 2), __ATOMIC_RELAXED)) & VIRTQ_USED_F_NO_NOTIFY);
}

/* Post one read of sector `sector`; *kick: whether an honest driver would kick for it now. */
static unsigned post_read(struct fx *f, uint64_t sector, bool *kick)
{
	uint16_t old = f->avail_idx;
	unsigned slot = post(f, VIRTIO_BLK_T_IN, sector, 512, true);

	*kick = driver_would_kick(f, old, f->avail_idx);
	return slot;
}

/* A kick through the I/O loop's own handler for the kick eventfd, run on this thread. */
static void loop_kick(struct fx *f)
{
	struct ioloop *l = &f->vm.io;

	pthread_mutex_lock(&f->d->lock);
	virtio_kick(f->d, 0);
	pthread_mutex_unlock(&f->d->lock);
	for (unsigned i = 0; i < IOLOOP_MAX_FDS; i++) {
		if (l->entries[i].fd == f->d->kick_fd[0]) {
			l->entries[i].fn(l->entries[i].opaque, EPOLLIN);
			return;
		}
	}
	fail_msg("the kick eventfd is not watched");
}

static const struct ioloop_poller *poller_of(struct fx *f)
{
	for (unsigned i = 0; i < IOLOOP_MAX_POLLERS; i++)
		if (f->vm.io.pollers[i].poll && f->vm.io.pollers[i].opaque == f->d)
			return &f->vm.io.pollers[i];
	fail_msg("no poller registered for %s", f->d->name);
	return NULL;
}

static void check_read(struct fx *f, unsigned slot, uint64_t sector)
{
	assert_int_equal(status_of(f, slot), VIRTIO_BLK_S_OK);
	assert_int_equal(data_of(f, slot)[0], pattern(sector * 512));
	assert_int_equal(data_of(f, slot)[511], pattern(sector * 512 + 511));
}

/*
 * The poll/arm pair the I/O thread calls, driven by hand: while polled the
 * driver is told not to kick and its requests are served anyway; a request
 * added just before notifications come back is found by arm's re-check.
 */
static void poll_by_hand(struct fx *f)
{
	const struct ioloop_poller *p;
	unsigned s1, s2, s3;
	bool want_kick;
	uint16_t u;

	ioloop_set_poll_us(&f->vm.io, 50);
	open_disk(f);
	assert_true(f->d->polled);
	p = poller_of(f);
	u = used_idx(f);

	/* Nothing polled yet: notifications are on, a request would be kicked. */
	assert_int_equal(p->poll(p->opaque), 0);    /* polling starts: the queue goes quiet */
	s1 = post_read(f, 7, &want_kick);
	assert_false(want_kick);
	assert_int_equal(p->poll(p->opaque), 1);    /* served without a kick */
	wait_used(f, (uint16_t)(u + 1));
	check_read(f, s1, 7);
	/* Still quiet after the drain. */
	s2 = post_read(f, 9, &want_kick);
	assert_false(want_kick);
	/* The edge: arm turns notifications on and finds s2, which nobody kicked. */
	assert_int_equal(p->arm(p->opaque), 1);
	wait_used(f, (uint16_t)(u + 2));
	check_read(f, s2, 9);
	/* Back in kick mode: the next request must be kicked, and the kick serves it. */
	s3 = post_read(f, 11, &want_kick);
	assert_true(want_kick);
	loop_kick(f);
	wait_used(f, (uint16_t)(u + 3));
	check_read(f, s3, 11);
	/*
	 * The kick handed the queue to the poller (the loop polls after every
	 * wakeup): the drain left notifications off, so the next request is
	 * not kicked, and the next poll serves it.
	 */
	assert_true(f->d->polling[0]);
	s1 = post_read(f, 13, &want_kick);
	assert_false(want_kick);
	assert_int_equal(p->poll(p->opaque), 1);
	wait_used(f, (uint16_t)(u + 4));
	check_read(f, s1, 13);
	assert_int_equal(f->d->stats.kicks, 1);
	assert_int_equal(f->d->stats.poll_hits, 2);
	assert_int_equal(f->d->stats.poll_chains, 2);
	assert_int_equal(f->d->stats.arm_chains, 1);
	/* Nothing left: arm finds nothing and leaves notifications on. */
	assert_int_equal(p->arm(p->opaque), 0);
	assert_false(f->d->polling[0]);
	post_read(f, 15, &want_kick);
	assert_true(want_kick);
}

static void test_poll_event_idx(void **state)
{
	poll_by_hand(*state);
}

static void test_poll_no_event_idx(void **state)
{
	struct fx *f = *state;

	f->drop_features = 1ull << VIRTIO_RING_F_EVENT_IDX;
	poll_by_hand(f);
	assert_false(f->d->guest_features & (1ull << VIRTIO_RING_F_EVENT_IDX));
}

/* Polling off (the default): no poller, and draining re-arms as before. */
static void test_poll_off(void **state)
{
	struct fx *f = *state;
	bool want_kick;

	open_disk(f);
	assert_false(f->d->polled);
	assert_int_equal(f->vm.io.npollers, 0);
	post_read(f, 3, &want_kick);
	assert_true(want_kick);
	kick(f);
	wait_used(f, 1);
	post_read(f, 4, &want_kick);
	assert_true(want_kick);
}

/*
 * The real I/O thread with a 1 ms window and an honest driver that kicks only
 * when told to: every request completes, and the counters add up.
 */
static void test_poll_io_thread(void **state)
{
	struct fx *f = *state;
	unsigned kicks = 0, n = 200;
	uint16_t u;

	ioloop_set_poll_us(&f->vm.io, 1000);
	open_disk(f);
	assert_int_equal(ioloop_start(&f->vm.io), 0);
	u = used_idx(f);
	for (unsigned i = 0; i < n; i++) {
		bool want_kick;
		unsigned slot = post_read(f, i, &want_kick);

		(void)slot;
		if (want_kick) {
			kicks++;
			pthread_mutex_lock(&f->d->lock);
			virtio_kick(f->d, 0);
			pthread_mutex_unlock(&f->d->lock);
		}
		/* Keep at most 64 in flight (the fake driver's slots), waiting as a driver would. */
		for (unsigned w = 0; w < 5000 && (uint16_t)(f->avail_idx - used_idx(f)) >= 64; w++)
			usleep(1000);
		if (i % 16 == 15)
			usleep(200);
	}
	for (unsigned w = 0; w < 5000 && used_idx(f) != (uint16_t)(u + n); w++)
		usleep(1000);
	ioloop_stop(&f->vm.io);
	/* (kicks may be 0: DRIVER_OK's own look opens a window, and a quick driver stays inside it) */
	assert_int_equal(used_idx(f), (uint16_t)(u + n));
	pthread_mutex_lock(&f->d->lock);
	/* Every request came by a kick or by polling: chains taken = polled + armed + kicked ones. */
	assert_int_equal(f->d->vq[0].stats.chains, n);
	/* No kick the driver did not send (+1: DRIVER_OK's own look at the queue, virtio_write_status). */
	assert_true(f->d->stats.kicks <= kicks + 1);
	assert_true(f->d->stats.poll_chains + f->d->stats.arm_chains <= n);
	pthread_mutex_unlock(&f->d->lock);
	assert_true(f->vm.io.stats.poll_windows >= 1);
}

/* Several disks from one init; a failure anywhere is reported and leaks nothing. */
static void test_init_disks(void **state)
{
	struct fx *f = *state;
	struct fake_registry *r = registry();
	struct disk_config bad = { .path = "/nonexistent/kiln.img" };

	r->added = 0;
	for (unsigned i = 0; i < 3; i++)
		f->vm.cfg.disks[i] = f->cfg;
	f->vm.cfg.disks[1].readonly = true;  /* a second writer on one image would be refused (flock) */
	f->vm.cfg.disks[2].readonly = true;
	f->vm.cfg.disks[0].readonly = true;
	f->vm.cfg.ndisks = 3;
	assert_int_equal(blk_init_disks(&f->vm), 0);
	assert_int_equal(r->added, 3);
	assert_int_equal(f->vm.ndevices, 3);
	assert_string_equal(((struct virtio_dev *)f->vm.devices[2].state)->name, "virtio-blk2");

	/* The image is locked: a writer cannot join readers. */
	f->vm.cfg.disks[0].readonly = false;
	f->vm.cfg.ndisks = 1;
	assert_int_equal(blk_init_disks(&f->vm), -EBUSY);
	assert_int_equal(f->vm.ndevices, 3);
	vm_renew(f);

	f->vm.cfg.disks[0] = f->cfg;
	f->vm.cfg.disks[1] = bad;
	f->vm.cfg.ndisks = 2;
	assert_int_equal(blk_init_disks(&f->vm), -ENOENT);
	assert_int_equal(f->vm.ndevices, 1);
	vm_renew(f);

	/* The transport refuses: the device is undone. */
	f->vm.cfg.disks[0] = f->cfg;
	f->vm.cfg.ndisks = 1;
	r->fail = -ENOSPC;
	assert_int_equal(blk_init_disks(&f->vm), -ENOSPC);
	r->fail = 0;
	assert_int_equal(f->vm.ndevices, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define BOTH(t) cmocka_unit_test_setup_teardown(t, setup_uring, teardown), \
		cmocka_unit_test_setup_teardown(t, setup_sync, teardown)
		BOTH(test_read_write),
		BOTH(test_flush_get_id),
		BOTH(test_config),
		BOTH(test_discard_write_zeroes),
		BOTH(test_readonly),
		BOTH(test_backend_errors),
		BOTH(test_hostile),
		BOTH(test_batch),
		BOTH(test_reset_inflight),
		BOTH(test_destroy_inflight),
		BOTH(test_io_thread),
		BOTH(test_init_disks),
		BOTH(test_poll_event_idx),
		BOTH(test_poll_no_event_idx),
		BOTH(test_poll_off),
		BOTH(test_poll_io_thread),
#undef BOTH
	};

	/* A write to a closed pipe must be an error, not a signal (kiln ignores SIGPIPE too). */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
