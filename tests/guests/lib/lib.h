/* Tiny runtime for kiln's test guests: PVH boot, CPL3 work, serial, exceptions, ACPI, SMP. */
#ifndef GUEST_LIB_H
#define GUEST_LIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * What kiln provides (mirrors src/arch/x86/layout.h on purpose: the guests
 * check kiln's ABI, so they do not include kiln's headers).
 */
#define COM1_PORT        0x3f8
#define COM1_LSR         (COM1_PORT + 5)
#define LSR_THRE         0x20   /* transmit holding register empty */
#define LSR_TEMT         0x40   /* transmitter empty */
#define ACPI_SLEEP_CTL   0x3c0  /* hardware-reduced ACPI sleep control register */
#define ACPI_SLEEP_S5    0x34   /* SLP_TYP=5 (<<2) | SLP_EN (1<<5) */
#define I8042_CMD_PORT   0x64
#define I8042_RESET      0xfe
#define PVPANIC_PORT     0x505
#define PVPANIC_PANICKED 0x01
#define LAPIC_BASE       0xfee00000UL
#define QEMU_DEBUG_EXIT  0xf4   /* only a fallback for QEMU runs; kiln never sees it */

/* GDT selectors set up by entry.S. */
#define SEL_KCODE64 0x08
#define SEL_KDATA   0x10
#define SEL_KCODE32 0x18
#define SEL_UDATA   0x20
#define SEL_UCODE64 0x28
#define SEL_TSS     0x30

/* Xen PVH start info (xen/include/public/arch-x86/hvm/start_info.h). */
#define HVM_START_MAGIC 0x336ec578U
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	/* version >= 1 */
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info layout");

#define HVM_MEMMAP_RAM 1
struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};
_Static_assert(sizeof(struct hvm_memmap_entry) == 24, "hvm_memmap_table_entry layout");

/* Physical address of kiln's struct hvm_start_info (EBX at entry); identity-mapped. */
extern const struct hvm_start_info *start_info;

/*
 * The test's hooks. guest_main() runs at CPL3 with IOPL=3 (port I/O allowed)
 * and every page user-accessible; returning from it prints SUCCESS and powers
 * off. guest_cpl0() is optional: it runs at CPL0 just before, keep it short
 * (CPL0 code is emulated on kvm_pvm hosts, ~500 ns per instruction).
 */
void guest_main(void);
void guest_cpl0(void);

/* Port I/O. */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" :: "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" :: "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint16_t inw(uint16_t port) { uint16_t v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint32_t inl(uint16_t port) { uint32_t v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/* MMIO: one access of exactly the given width (volatile, no merging). */
static inline uint8_t mmio_read8(uint64_t a) { return *(volatile uint8_t *)a; }
static inline uint16_t mmio_read16(uint64_t a) { return *(volatile uint16_t *)a; }
static inline uint32_t mmio_read32(uint64_t a) { return *(volatile uint32_t *)a; }
static inline uint64_t mmio_read64(uint64_t a) { return *(volatile uint64_t *)a; }
static inline void mmio_write8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static inline void mmio_write16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static inline void mmio_write32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
static inline void mmio_write64(uint64_t a, uint64_t v) { *(volatile uint64_t *)a = v; }

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }

static inline unsigned current_cpl(void)
{
	uint16_t cs;

	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

/* Atomic add returning the old value: an explicit `lock xadd`. */
static inline uint32_t atomic_xadd(volatile uint32_t *p, uint32_t v)
{
	__asm__ volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) :: "memory");
	return v;
}

/* Spin for about `cycles` TSC ticks (no calibration: a TSC tick is <= 1 ns on any host kiln runs on). */
void delay_cycles(uint64_t cycles);

/* Console on COM1. printf: %d %i %u %x %X %p %s %c %%, flags 0 and -, width, .precision for %s, l/ll/z. */
void putstr(const char *s);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Ends of a test. Each works at CPL0 and CPL3. */
__attribute__((noreturn)) void pass(void);                 /* "SUCCESS", power off */
__attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...); /* "FAIL: ...", power off */
__attribute__((noreturn)) void poweroff(void);             /* ACPI S5; spins if that did not stop the VM */

/* Exceptions: the saved state an exception stub pushes (entry.S). */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rdi, rsi, rbp, rbx, rdx, rcx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;   /* pushed by the CPU */
};
typedef void (*trap_handler_t)(struct trap_frame *f);

/* Route vector (0..31) to fn, at CPL0; returning resumes at f->rip. NULL: default (FAIL). */
void set_trap_handler(unsigned vector, trap_handler_t fn);

/* Kernel stack used by the BSP at CPL0 (also RSP0 in the TSS). */
extern char bsp_kstack[], bsp_kstack_top[];

/* ACPI: find a table by signature via start_info->rsdp_paddr (or a scan of 0xe0000-0xfffff). */
const void *acpi_find_table(const char sig[4]);
extern const char *acpi_error;     /* why the last lookup failed */
/* Local APIC ids of the enabled CPUs in the MADT (type 0 entries); count, 0 if no MADT. */
unsigned acpi_lapic_ids(uint8_t *ids, unsigned max);

/* SMP (smp.c). */
#define SMP_MAX_CPUS 32
#define SMP_TRAMPOLINE_PA 0x30000UL  /* SIPI vector 0x30: free low RAM, not kiln's cmdline/ACPI/boot pages */
uint32_t lapic_read(unsigned reg);
void lapic_write(unsigned reg, uint32_t v);
unsigned lapic_id(void);
/*
 * Start every CPU in ids[] except this one with INIT/SIPI/SIPI; wait up to
 * timeout_cycles TSC ticks for them. Returns the number of CPUs running
 * (this one included). Works at CPL3.
 */
unsigned smp_start_aps(const uint8_t *ids, unsigned n, uint64_t timeout_cycles);
extern volatile uint32_t smp_cpus_up;           /* CPUs that did their `lock xadd` */
bool smp_cpu_seen(unsigned apic_id);
extern volatile bool smp_quiet;                 /* APs do not print their id */

/* Time (clock.c). CMOS RTC seconds (binary), read when no update is in progress. */
unsigned rtc_seconds(void);
/* TSC ticks per second, measured between two RTC second edges (takes 1-2 s). */
uint64_t tsc_calibrate(void);
/*
 * Spin until pred(arg) is true or `seconds` RTC second edges went by (also
 * bounded by TSC ticks, should the RTC stand still); pred's last result.
 */
bool wait_seconds(bool (*pred)(void *), void *arg, unsigned seconds);

/* The PVH command line ("" if none), and the N of a "key=N" word in it, or def. */
const char *cmdline(void);
uint64_t cmdline_uint(const char *key, uint64_t def);
/* The VALUE of a "key=VALUE" word (up to the next space) into buf; false if absent or longer than len - 1. */
bool cmdline_str(const char *key, char *buf, size_t len);

/* String functions (gcc may emit calls to the first four). */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
/* Bases 2-36 and 0 (0x / 0 prefixes); glibc's inline atoi() calls it (lwIP's netif_find). */
long strtol(const char *s, char **end, int base);

#endif
