/* MC146818 RTC/CMOS emulation: time from the host clock at read time, registers A-D, 128 bytes of CMOS RAM. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "arch/x86/layout.h"
#include "core/memory.h"
#include "core/vm.h"
#include "devices/rtc.h"

/* Register map (Motorola MC146818 datasheet, "Address Map"). */
enum {
	RTC_SEC = 0x00,
	RTC_SEC_ALARM = 0x01,
	RTC_MIN = 0x02,
	RTC_MIN_ALARM = 0x03,
	RTC_HOUR = 0x04,
	RTC_HOUR_ALARM = 0x05,
	RTC_WDAY = 0x06,
	RTC_MDAY = 0x07,
	RTC_MONTH = 0x08,
	RTC_YEAR = 0x09,
	RTC_REG_A = 0x0a,
	RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c,
	RTC_REG_D = 0x0d,
	RTC_NREGS = 128, /* the PC's CMOS: 14 clock bytes + 114 bytes of RAM */
};

#define REG_A_UIP     0x80 /* update in progress: never, time is computed at read */
#define REG_A_DEFAULT 0x26 /* DV = 010 (32.768 kHz time base), RS = 0110 (1024 Hz) */
#define REG_B_SET     0x80 /* halt updates so the time can be set */
#define REG_B_DM      0x04 /* 1 = binary, 0 = BCD */
#define REG_B_24H     0x02
#define REG_B_DEFAULT REG_B_24H
#define REG_D_VRT     0x80 /* valid RAM and time: the battery is fine */
#define HOUR_PM       0x80 /* 12-hour mode */

/* IBM PC/AT Technical Reference CMOS map: memory sizes and the checksum over 0x10-0x2D. */
#define CMOS_BASE_MEM_LO   0x15 /* KiB below 1 MiB */
#define CMOS_EXT_MEM_LO    0x17 /* KiB above 1 MiB, 16 bits */
#define CMOS_CSUM_FIRST    0x10
#define CMOS_CSUM_LAST     0x2d
#define CMOS_CSUM_HI       0x2e
#define CMOS_EXT_MEM2_LO   0x30 /* copy of 0x17/0x18 set by POST */
/* Later PC firmware conventions for RAM past 16-bit KiB counts (64 KiB units). */
#define CMOS_MEM_16M_LO    0x34 /* RAM between 16 MiB and the 32-bit hole */
#define CMOS_MEM_4G_LO     0x5b /* RAM above 4 GiB, 3 bytes */

/* The clock fields, in binary: year is the full year, month 1-12, weekday 1-7 with Sunday = 1. */
struct rtc_time {
	int sec, min, hour, wday, mday, mon, year;
};

struct rtc {
	pthread_mutex_t lock; /* vCPU threads share the index register */
	uint8_t index;        /* last byte written to port 0x70 */
	uint8_t cmos[RTC_NREGS]; /* RAM, the alarm bytes and registers A/B; clock bytes are computed */
	time_t offset;        /* guest time minus host time, set when the guest sets the clock */
	struct rtc_time held; /* the time while REG_B_SET halts updates */
};

static void host_to_rtc(time_t t, struct rtc_time *out)
{
	struct tm tm;

	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof(tm)); /* unrepresentable offset: show 1900-01-00 rather than garbage */
	out->sec = tm.tm_sec;
	out->min = tm.tm_min;
	out->hour = tm.tm_hour;
	out->wday = tm.tm_wday + 1;
	out->mday = tm.tm_mday;
	out->mon = tm.tm_mon + 1;
	out->year = tm.tm_year + 1900;
}

/* The guest's current time: held while SET, else the host clock plus the guest's offset. */
static void rtc_now(const struct rtc *r, struct rtc_time *out)
{
	if (r->cmos[RTC_REG_B] & REG_B_SET)
		*out = r->held;
	else
		host_to_rtc(time(NULL) + r->offset, out);
}

/* Start running from t: the weekday is derived from the date, as Linux never relies on the RTC's. */
static void rtc_commit(struct rtc *r, const struct rtc_time *t)
{
	struct tm tm = {
		.tm_sec = t->sec, .tm_min = t->min, .tm_hour = t->hour,
		.tm_mday = t->mday, .tm_mon = t->mon - 1, .tm_year = t->year - 1900,
	};
	time_t g = timegm(&tm);

	if (g != (time_t)-1)
		r->offset = g - time(NULL);
}

static bool rtc_binary(const struct rtc *r)
{
	return r->cmos[RTC_REG_B] & REG_B_DM;
}

static uint8_t to_reg(const struct rtc *r, int v)
{
	unsigned u = (unsigned)v % 100;

	return rtc_binary(r) ? (uint8_t)u : (uint8_t)(((u / 10) << 4) | (u % 10));
}

static int from_reg(const struct rtc *r, uint8_t b)
{
	return rtc_binary(r) ? b : (b >> 4) * 10 + (b & 0x0f);
}

/* Register B bit 1: 24-hour, or 12-hour with bit 7 = PM and hours 1-12. */
static uint8_t hour_to_reg(const struct rtc *r, int h)
{
	int h12;

	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return to_reg(r, h);
	h12 = h % 12 ? h % 12 : 12;
	return to_reg(r, h12) | (h >= 12 ? HOUR_PM : 0);
}

static int hour_from_reg(const struct rtc *r, uint8_t b)
{
	if (r->cmos[RTC_REG_B] & REG_B_24H)
		return from_reg(r, b);
	return from_reg(r, b & (uint8_t)~HOUR_PM) % 12 + ((b & HOUR_PM) ? 12 : 0);
}

static bool is_clock_reg(unsigned idx)
{
	return idx == RTC_SEC || idx == RTC_MIN || idx == RTC_HOUR || idx == RTC_WDAY ||
	       idx == RTC_MDAY || idx == RTC_MONTH || idx == RTC_YEAR || idx == RTC_CENTURY_REG;
}

static uint8_t clock_read(const struct rtc *r, unsigned idx)
{
	struct rtc_time t;

	rtc_now(r, &t);
	switch (idx) {
	case RTC_SEC:   return to_reg(r, t.sec);
	case RTC_MIN:   return to_reg(r, t.min);
	case RTC_HOUR:  return hour_to_reg(r, t.hour);
	case RTC_WDAY:  return to_reg(r, t.wday);
	case RTC_MDAY:  return to_reg(r, t.mday);
	case RTC_MONTH: return to_reg(r, t.mon);
	case RTC_YEAR:  return to_reg(r, t.year % 100);
	default:        return to_reg(r, t.year / 100); /* century */
	}
}

/*
 * Setting the clock (datasheet: set SET in register B, write the time, clear
 * SET). While SET is held the written fields are kept as is; clearing SET
 * starts the clock from them. A write without SET takes effect at once.
 */
static void clock_write(struct rtc *r, unsigned idx, uint8_t val)
{
	struct rtc_time t;
	int v = idx == RTC_HOUR ? hour_from_reg(r, val) : from_reg(r, val);

	rtc_now(r, &t);
	switch (idx) {
	case RTC_SEC:   t.sec = v; break;
	case RTC_MIN:   t.min = v; break;
	case RTC_HOUR:  t.hour = v; break;
	case RTC_WDAY:  t.wday = v; break;
	case RTC_MDAY:  t.mday = v; break;
	case RTC_MONTH: t.mon = v; break;
	case RTC_YEAR:  t.year = t.year / 100 * 100 + v; break;
	default:        t.year = v * 100 + t.year % 100; break;
	}
	if (r->cmos[RTC_REG_B] & REG_B_SET)
		r->held = t;
	else
		rtc_commit(r, &t);
}

static void reg_b_write(struct rtc *r, uint8_t val)
{
	uint8_t old = r->cmos[RTC_REG_B];

	if (!(old & REG_B_SET) && (val & REG_B_SET))
		rtc_now(r, &r->held); /* halt: freeze the current time */
	/*
	 * PIE/AIE/UIE are stored but no interrupt is ever raised: kiln drives no
	 * periodic, alarm or update-ended interrupt on IRQ 8 (register C stays 0).
	 */
	r->cmos[RTC_REG_B] = val;
	if ((old & REG_B_SET) && !(val & REG_B_SET))
		rtc_commit(r, &r->held);
}

static uint8_t data_read(struct rtc *r)
{
	unsigned idx = r->index & 0x7f; /* bit 7 of the index is the PC's NMI mask */

	if (is_clock_reg(idx))
		return clock_read(r, idx);
	switch (idx) {
	case RTC_REG_A:
		return r->cmos[RTC_REG_A] & (uint8_t)~REG_A_UIP;
	case RTC_REG_C:
		return 0; /* no interrupt flags; reading would clear them */
	case RTC_REG_D:
		return REG_D_VRT;
	default:
		return r->cmos[idx];
	}
}

static void data_write(struct rtc *r, uint8_t val)
{
	unsigned idx = r->index & 0x7f;

	if (is_clock_reg(idx)) {
		clock_write(r, idx, val);
		return;
	}
	switch (idx) {
	case RTC_REG_A:
		r->cmos[RTC_REG_A] = val & (uint8_t)~REG_A_UIP; /* UIP is read-only */
		break;
	case RTC_REG_B:
		reg_b_write(r, val);
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		r->cmos[idx] = val;
		break;
	}
}

/* Bus callback; a 16-bit OUT to 0x70 writes the index then the data, as two ISA byte cycles. */
static void rtc_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct rtc *r = opaque;

	pthread_mutex_lock(&r->lock);
	for (uint32_t i = 0; i < len && offset + i < 2; i++) {
		if (offset + i == 0) {
			if (is_write)
				r->index = data[i];
			else
				data[i] = r->index; /* write-only on the AT; chipsets read it back */
		} else if (is_write) {
			data_write(r, data[i]);
		} else {
			data[i] = data_read(r);
		}
	}
	pthread_mutex_unlock(&r->lock);
}

static void put16(uint8_t *p, uint64_t v)
{
	v = MIN(v, 0xffffULL);
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Memory sizes where firmware-style guests look, split around the 32-bit MMIO hole like the e820 map. */
static void cmos_set_memory(struct rtc *r, uint64_t ram)
{
	uint64_t low = MIN(ram, MEM_HOLE_START), high = ram - low, above4g;
	unsigned sum = 0;

	put16(&r->cmos[CMOS_BASE_MEM_LO], MIN(ram, 640 * KiB) / KiB);
	put16(&r->cmos[CMOS_EXT_MEM_LO], low > 1 * MiB ? (low - 1 * MiB) / KiB : 0);
	put16(&r->cmos[CMOS_EXT_MEM2_LO], low > 1 * MiB ? (low - 1 * MiB) / KiB : 0);
	put16(&r->cmos[CMOS_MEM_16M_LO], low > 16 * MiB ? (low - 16 * MiB) / (64 * KiB) : 0);
	above4g = MIN(high / (64 * KiB), 0xffffffULL);
	r->cmos[CMOS_MEM_4G_LO] = (uint8_t)above4g;
	r->cmos[CMOS_MEM_4G_LO + 1] = (uint8_t)(above4g >> 8);
	r->cmos[CMOS_MEM_4G_LO + 2] = (uint8_t)(above4g >> 16);

	/* PC/AT checksum: 16-bit sum of 0x10-0x2D, big-endian at 0x2E/0x2F. */
	for (unsigned i = CMOS_CSUM_FIRST; i <= CMOS_CSUM_LAST; i++)
		sum += r->cmos[i];
	r->cmos[CMOS_CSUM_HI] = (uint8_t)(sum >> 8);
	r->cmos[CMOS_CSUM_HI + 1] = (uint8_t)sum;
}

static void rtc_destroy(void *state)
{
	struct rtc *r = state;

	pthread_mutex_destroy(&r->lock);
	free(r);
}

int rtc_init(struct vm *vm)
{
	struct vm_device dev = { .name = "rtc", .destroy = rtc_destroy };
	struct rtc *r;
	int ret;

	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	ret = -pthread_mutex_init(&r->lock, NULL);
	if (ret < 0)
		goto err_free;
	r->cmos[RTC_REG_A] = REG_A_DEFAULT;
	r->cmos[RTC_REG_B] = REG_B_DEFAULT;
	cmos_set_memory(r, vm->cfg.mem_bytes);

	dev.state = r;
	ret = vm_add_device(vm, &dev);
	if (ret < 0)
		goto err_mutex;
	/* From here the VM owns r and frees it at teardown, also if registration fails. */
	return bus_register(&vm->pio, X86_RTC_PORT, 2, "rtc", rtc_io, r);

err_mutex:
	pthread_mutex_destroy(&r->lock);
err_free:
	free(r);
	return ret;
}

DEVICE_REGISTER(rtc, rtc_init);
