/* blk-bench guest: 4 KiB random reads and 128 KiB sequential reads through virtio-blk for a fixed time; prints IOPS and MiB/s. */
#include "virtio.h"

/*
 * Command line (all optional): secs=N per phase (default 5), qd=N random-read
 * depth (32), seq_qd=N sequential depth (8), verify=0 to skip checking each
 * block's sector number. Time is the TSC, calibrated against the CMOS RTC
 * (one second between two second edges) and cross-checked with the RTC.
 */
#define RAND_BS (4 * 1024)
#define SEQ_BS  (128 * 1024)
#define MAX_QD  128

static struct blk blk;

struct phase {
	const char *name;
	uint32_t bs;
	unsigned qd;
	bool random;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* xorshift64: cheap and good enough to spread 4 KiB reads over the disk. */
static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void run(const struct phase *p, uint64_t tsc_hz, uint64_t secs, bool verify)
{
	uint8_t *pool = dma_alloc((size_t)p->bs * p->qd, 4096);
	uint64_t blocks = blk.capacity / (p->bs / SECTOR_SIZE), next_seq = 0, done = 0, bytes, start, end, ticks;
	uint64_t kicks0 = blk.vq.kicks, supp0 = blk.vq.kicks_suppressed, spins0 = blk.poll_spins;
	static uint16_t buf_of_head[1024];      /* static: 10 KiB is too much for the 16 KiB user stack */
	static uint64_t sector_of_head[1024];
	unsigned free_bufs[MAX_QD], nfree, inflight = 0, i, rtc0, rtc_secs;
	bool stop = false;

	if (!blocks)
		fail("%s: the disk is smaller than one %u-byte block", p->name, p->bs);
	for (i = 0; i < p->qd; i++)
		free_bufs[i] = i;
	nfree = p->qd;
	rtc0 = rtc_seconds();
	start = rdtsc();
	end = start + secs * tsc_hz;
	while (!stop || inflight) {
		uint32_t id, len;
		bool added = false;

		/* Refill to the depth, then one publish: EVENT_IDX decides whether that kicks. */
		while (!stop && nfree) {
			uint64_t blkno = p->random ? rng() % blocks : next_seq++ % blocks;
			unsigned b = free_bufs[nfree - 1];
			int head = blk_submit(&blk, VIRTIO_BLK_T_IN, blkno * (p->bs / SECTOR_SIZE), pool + (size_t)b * p->bs,
					      p->bs, false);

			if (head < 0)
				break;
			nfree--;
			buf_of_head[head] = (uint16_t)b;
			sector_of_head[head] = blkno * (p->bs / SECTOR_SIZE);
			inflight++;
			added = true;
		}
		if (added)
			virtq_publish(&blk.vq);
		if (!virtq_get(&blk.vq, &id, &len)) {
			blk.poll_spins++;
			if (rdtsc() - start > (secs + 10) * tsc_hz)
				fail("%s: %u requests still in flight 10 s after the end (done %lu, avail idx %u, used idx %u, "
				     "avail_event %u, kicks %lu, device status %#x)", p->name, inflight, done, blk.vq.avail_idx,
				     virtq_used_idx(&blk.vq),
				     *(volatile uint16_t *)((uint8_t *)blk.vq.used + 4 + 8UL * blk.vq.size), blk.vq.kicks,
				     virtio_status(&blk.pci));
			continue;
		}
		if (blk.slots[id].status != VIRTIO_BLK_S_OK)
			fail("%s: status %u for sector %lu", p->name, blk.slots[id].status, sector_of_head[id]);
		/* The image's first 8 bytes of each sector are its number: the data really came from the disk. */
		if (verify && *(uint64_t *)(pool + (size_t)buf_of_head[id] * p->bs) != sector_of_head[id])
			fail("%s: sector %lu read back as %#lx", p->name, sector_of_head[id],
			     *(uint64_t *)(pool + (size_t)buf_of_head[id] * p->bs));
		free_bufs[nfree++] = buf_of_head[id];
		inflight--;
		if (!stop) {
			if (rdtsc() >= end)
				stop = true;
			else
				done++;
		}
	}
	ticks = end - start;
	rtc_secs = (rtc_seconds() + 60 - rtc0) % 60;
	bytes = done * p->bs;
	/* Integer only (the runtime has no FPU state): tenths of MiB/s. */
	printf("blk-bench: %s bs=%uk qd=%u: %lu IOPS, %lu.%lu MiB/s (%lu requests in %lu s by the TSC, %u s by the RTC; "
	       "%lu kicks, %lu suppressed, %lu empty polls)\n",
	       p->name, p->bs / 1024, p->qd, (uint64_t)((unsigned __int128)done * tsc_hz / ticks),
	       (uint64_t)((unsigned __int128)bytes * 10 * tsc_hz / ticks / (1 << 20)) / 10,
	       (uint64_t)((unsigned __int128)bytes * 10 * tsc_hz / ticks / (1 << 20)) % 10, done, secs, rtc_secs,
	       blk.vq.kicks - kicks0, blk.vq.kicks_suppressed - supp0, blk.poll_spins - spins0);
}

void guest_main(void)
{
	uint64_t secs = cmdline_uint("secs", 5), tsc_hz;
	unsigned qd = (unsigned)cmdline_uint("qd", 32), seq_qd = (unsigned)cmdline_uint("seq_qd", 8);
	bool verify = cmdline_uint("verify", 1) != 0;
	const char *why;
	struct phase rnd, seq;

	if (blk_open(&blk, BIT(VIRTIO_F_EVENT_IDX) | BIT(VIRTIO_BLK_F_SIZE_MAX) | BIT(VIRTIO_BLK_F_SEG_MAX), 0,
		     &why) < 0)
		fail("virtio-blk: %s", why);
	if (blk.vq.size > 1024)
		fail("queue size %u: the bench tracks at most 1024 heads", blk.vq.size);
	/* Each request is at least 3 descriptors (header, data, status); more if SIZE_MAX splits the data. */
	if (qd > MAX_QD || seq_qd > MAX_QD || !qd || !seq_qd)
		fail("qd and seq_qd must be 1..%u", MAX_QD);
	if (qd * 3 > blk.vq.size)
		qd = blk.vq.size / 3;
	if (seq_qd * (2 + (blk.size_max ? (SEQ_BS + blk.size_max - 1) / blk.size_max : 1)) > blk.vq.size)
		fail("seq_qd %u does not fit a queue of %u", seq_qd, blk.vq.size);
	printf("blk-bench: %lu MiB disk, queue size %u, features %#lx (EVENT_IDX %s), driver at CPL%u\n",
	       blk.capacity / 2048, blk.vq.size, blk.pci.features,
	       blk.pci.features & BIT(VIRTIO_F_EVENT_IDX) ? "on" : "off", current_cpl());
	tsc_hz = tsc_calibrate();
	printf("blk-bench: TSC %lu.%03lu MHz (ticks between two CMOS RTC second edges)\n", tsc_hz / 1000000,
	       tsc_hz / 1000 % 1000);
	rnd = (struct phase){ "randread", RAND_BS, qd, true };
	seq = (struct phase){ "seqread", SEQ_BS, seq_qd, false };
	run(&rnd, tsc_hz, secs, verify);
	run(&seq, tsc_hz, secs, verify);
}
