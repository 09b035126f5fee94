/* MC146818 CMOS RTC at ports 0x70/0x71: host wall-clock time and CMOS RAM (what others call). */
#ifndef KILN_DEVICES_RTC_H
#define KILN_DEVICES_RTC_H

struct vm;

/* CMOS index of the century byte (BCD), for the ACPI FADT CENTURY field. */
#define RTC_CENTURY_REG 0x32

/* Create the RTC at X86_RTC_PORT (2 ports) with CMOS memory-size bytes from vm->cfg.mem_bytes; 0 or -errno. */
int rtc_init(struct vm *vm);

#endif
