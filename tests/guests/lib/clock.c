/* Wall time for the test guests from the CMOS RTC (MC146818) and the TSC calibrated against it; the PVH command line. */
#include "lib.h"

#define RTC_INDEX 0x70
#define RTC_DATA  0x71
#define RTC_SEC   0x00
#define RTC_REG_A 0x0a
#define RTC_REG_B 0x0b
#define REG_A_UIP 0x80   /* update in progress: the clock bytes may be mid-change */
#define REG_B_DM  0x04   /* binary, not BCD */

/* Upper bound on the TSC rate, for timeouts that must end even if the RTC stands still. */
#define TSC_MAX_HZ 6000000000ULL

static uint8_t rtc_read(uint8_t reg)
{
	outb(RTC_INDEX, reg);
	return inb(RTC_DATA);
}

unsigned rtc_seconds(void)
{
	unsigned i;
	uint8_t s;

	/*
	 * UIP is set for 244 us before each update (QEMU models that; kiln never
	 * sets it): a few hundred reads, each an exit, outlast it. All ones is
	 * no RTC at all (QEMU microvm under KVM unless rtc=on).
	 */
	for (i = 0; i < 1000; i++) {
		uint8_t a = rtc_read(RTC_REG_A);

		if (a == 0xff)
			fail("no CMOS RTC: port 0x71 reads 0xff (QEMU microvm needs rtc=on)");
		if (!(a & REG_A_UIP))
			break;
		cpu_relax();
	}
	s = rtc_read(RTC_SEC);
	if (!(rtc_read(RTC_REG_B) & REG_B_DM))
		s = (uint8_t)((s >> 4) * 10 + (s & 0xf));
	return s;
}

/* Spin until the RTC seconds change; the TSC at that edge. fail()s if the clock stands still. */
static uint64_t next_edge(void)
{
	unsigned s = rtc_seconds();
	uint64_t start = rdtsc();

	while (rtc_seconds() == s)
		if (rdtsc() - start > 3 * TSC_MAX_HZ)
			fail("the CMOS RTC seconds did not change in 3 s of TSC");
	return rdtsc();
}

uint64_t tsc_calibrate(void)
{
	uint64_t t0;

	/* Edge to edge is one second whatever the RTC's phase; one RTC read (~4 exits) is the error. */
	t0 = next_edge();
	return next_edge() - t0;
}

bool wait_seconds(bool (*pred)(void *), void *arg, unsigned seconds)
{
	uint64_t start = rdtsc();
	unsigned last = rtc_seconds(), edges = 0, n;

	for (n = 0;; n++) {
		if (pred(arg))
			return true;
		/* The RTC costs port exits: look at it every 64 polls. */
		if ((n & 63) == 63) {
			unsigned s = rtc_seconds();

			if (s != last) {
				last = s;
				edges++;
			}
			if (edges > seconds || rdtsc() - start > (uint64_t)(seconds + 1) * TSC_MAX_HZ)
				return pred(arg);
		}
		cpu_relax();
	}
}

const char *cmdline(void)
{
	return start_info->cmdline_paddr ? (const char *)start_info->cmdline_paddr : "";
}

uint64_t cmdline_uint(const char *key, uint64_t def)
{
	const char *p = cmdline();
	size_t klen = strlen(key);

	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, klen) && p[klen] == '=' && p[klen + 1] >= '0' && p[klen + 1] <= '9') {
			uint64_t v = 0;

			for (p += klen + 1; *p >= '0' && *p <= '9'; p++)
				v = v * 10 + (uint64_t)(*p - '0');
			return v;
		}
		while (*p && *p != ' ')
			p++;
	}
	return def;
}

bool cmdline_str(const char *key, char *buf, size_t len)
{
	const char *p = cmdline();
	size_t klen = strlen(key), n;

	while (*p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, klen) && p[klen] == '=') {
			for (p += klen + 1, n = 0; *p && *p != ' '; p++) {
				if (n + 1 >= len)
					return false;
				buf[n++] = *p;
			}
			buf[n] = 0;
			return true;
		}
		while (*p && *p != ' ')
			p++;
	}
	return false;
}
