/* Runtime core for kiln's test guests: CPL0 setup (TSS, IDT), the drop to CPL3, console, exits. */
#include "lib.h"

const struct hvm_start_info *start_info;

/* Exception vector names for the default handler's FAIL line. */
static const char *const vector_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM",
	"#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "15",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "22", "23",
	"24", "25", "26", "27", "#HV", "#VC", "#SX", "31",
};

/* 64-bit TSS (SDM Vol. 3A §8.7): only RSP0 matters, for traps from CPL3. */
struct tss64 {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss64) == 104, "64-bit TSS is 104 bytes");

/* 64-bit interrupt gate (SDM Vol. 3A §7.14.1). */
struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t zero;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "IDT gate is 16 bytes");

struct desc_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

extern uint64_t gdt[];
extern const uint64_t isr_table[32];
extern uint32_t boot_info_pa;

static struct tss64 tss __attribute__((aligned(16)));
static struct idt_gate idt[32] __attribute__((aligned(16)));
struct desc_ptr idt_ptr;    /* also loaded by the APs (entry.S) */
static trap_handler_t trap_handlers[32];
static char user_stack[16384] __attribute__((aligned(16)));

void lib_start(uint32_t info_pa) __attribute__((noreturn));
void trap_dispatch(struct trap_frame *f);
void enter_user(uint64_t rip, uint64_t rsp) __attribute__((noreturn));

/* Weak default: most tests need nothing at CPL0. */
__attribute__((weak)) void guest_cpl0(void)
{
}

static void user_start(void)
{
	if (!start_info || start_info->magic != HVM_START_MAGIC)
		fail("bad hvm_start_info at %p (magic %x)", (const void *)start_info,
		     start_info ? start_info->magic : 0);
	guest_main();
	pass();
}

/* Called by entry.S in 64-bit mode on the BSP kernel stack. Keep it short: it is emulated on kvm_pvm. */
void lib_start(uint32_t info_pa)
{
	uint64_t base = (uint64_t)&tss;
	unsigned i;

	start_info = (const struct hvm_start_info *)(uint64_t)info_pa;

	tss.rsp[0] = (uint64_t)bsp_kstack_top;
	tss.iomap_base = sizeof(tss);   /* no I/O bitmap: IOPL=3 decides */
	/* Available 64-bit TSS descriptor: P=1, type 9, limit 103 (SDM §8.2.3). */
	gdt[SEL_TSS / 8] = (sizeof(tss) - 1) | ((base & 0xffffff) << 16) | (0x89ULL << 40) |
			   (((base >> 24) & 0xff) << 56);
	gdt[SEL_TSS / 8 + 1] = base >> 32;
	__asm__ volatile("ltr %w0" :: "r"(SEL_TSS));

	for (i = 0; i < 32; i++) {
		uint64_t h = isr_table[i];

		idt[i].off_lo = (uint16_t)h;
		idt[i].sel = SEL_KCODE64;
		idt[i].ist = 0;
		/* Interrupt gate, P=1; DPL3 for #BP so `int3` also works from CPL3. */
		idt[i].type_attr = i == 3 ? 0xee : 0x8e;
		idt[i].off_mid = (uint16_t)(h >> 16);
		idt[i].off_hi = (uint32_t)(h >> 32);
		idt[i].zero = 0;
	}
	idt_ptr.limit = sizeof(idt) - 1;
	idt_ptr.base = (uint64_t)idt;
	__asm__ volatile("lidt %0" :: "m"(idt_ptr));

	guest_cpl0();
	/* RSP as if user_start had been called: 8 below a 16-byte boundary. */
	enter_user((uint64_t)user_start, (uint64_t)&user_stack[sizeof(user_stack)] - 8);
}

void set_trap_handler(unsigned vector, trap_handler_t fn)
{
	if (vector < 32)
		trap_handlers[vector] = fn;
}

/*
 * Set by an unexpected exception: the code it interrupted may hold the lock
 * (a fault inside printf), so the report must not wait for it.
 */
static volatile bool console_lock_broken;

/* One port access at CPL0, for emulate_port_io. */
static uint32_t port_in(uint16_t port, unsigned size)
{
	return size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
}

static void port_out(uint16_t port, unsigned size, uint32_t v)
{
	if (size == 1)
		outb(port, (uint8_t)v);
	else if (size == 2)
		outw(port, (uint16_t)v);
	else
		outl(port, v);
}

/*
 * The tests run at CPL3 with IOPL=3 so that their port I/O exits straight to
 * the VMM. A kvm_pvm host does not keep IOPL=3 across the iretq (its
 * emulated iretq leaves RFLAGS.IOPL 0), so there IN/OUT/INS/OUTS at CPL3
 * raise #GP(0) (SDM Vol 1 §19.5.1): do the access here, at CPL0, and step
 * over the instruction, as Xen does for a PV guest's virtual IOPL. True when
 * f->rip held a port I/O instruction.
 */
static bool emulate_port_io(struct trap_frame *f)
{
	const uint8_t *ip = (const uint8_t *)f->rip;
	unsigned len = 0, size;
	bool opsize = false, rep = false, in, str;
	uint16_t port;
	uint8_t op;

	if (f->error != 0 || !(f->cs & 3))
		return false;
	for (;; len++) {
		if (len >= 4)
			return false;
		if (ip[len] == 0x66)
			opsize = true;
		else if (ip[len] == 0xf3 || ip[len] == 0xf2)
			rep = true;
		else if ((ip[len] & 0xf0) != 0x40) /* REX: no effect on port I/O */
			break;
	}
	op = ip[len++];
	switch (op) {
	case 0xe4: case 0xe5: case 0xe6: case 0xe7:
		port = ip[len++];
		in = op < 0xe6;
		str = false;
		break;
	case 0xec: case 0xed: case 0xee: case 0xef:
		port = (uint16_t)f->rdx;
		in = op < 0xee;
		str = false;
		break;
	case 0x6c: case 0x6d: case 0x6e: case 0x6f:
		port = (uint16_t)f->rdx;
		in = op < 0x6e;
		str = true;
		break;
	default:
		return false;
	}
	size = (op & 1) == 0 ? 1 : opsize ? 2 : 4;
	if (!str) {
		if (in) {
			uint32_t v = port_in(port, size);

			if (size == 4)
				f->rax = v; /* a 32-bit destination zero-extends (SDM Vol 1 §3.4.1.1) */
			else if (size == 2)
				f->rax = (f->rax & ~0xffffULL) | v;
			else
				f->rax = (f->rax & ~0xffULL) | v;
		} else {
			port_out(port, size, (uint32_t)f->rax);
		}
	} else {
		uint64_t count = rep ? f->rcx : 1;
		int64_t step = (f->rflags & (1u << 10)) ? -(int64_t)size : (int64_t)size;

		for (; count; count--) {
			if (in) {
				uint32_t v = port_in(port, size);

				__builtin_memcpy((void *)f->rdi, &v, size);
				f->rdi += (uint64_t)step;
			} else {
				uint32_t v = 0;

				__builtin_memcpy(&v, (const void *)f->rsi, size);
				port_out(port, size, v);
				f->rsi += (uint64_t)step;
			}
		}
		if (rep)
			f->rcx = 0;
	}
	f->rip += len;
	return true;
}

void trap_dispatch(struct trap_frame *f)
{
	trap_handler_t fn = f->vector < 32 ? trap_handlers[f->vector] : NULL;
	uint64_t cr2 = 0;

	if (fn) {
		fn(f);
		return;
	}
	if (f->vector == 13 && emulate_port_io(f))
		return;
	if (f->vector == 14)
		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	console_lock_broken = true;
	fail("unexpected exception %s (vector %lu) error=%#lx rip=%#lx cs=%#lx rflags=%#lx rsp=%#lx cr2=%#lx",
	     vector_names[f->vector & 31], f->vector, f->error, f->rip, f->cs, f->rflags, f->rsp, cr2);
}

void delay_cycles(uint64_t cycles)
{
	uint64_t start = rdtsc();

	while (rdtsc() - start < cycles)
		cpu_relax();
}

/* ---- console ---- */

/* APs (CPL0) and the BSP (CPL3) print concurrently: one lock around each line. */
static volatile uint32_t console_lock;

static void lock_console(void)
{
	while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE)) {
		if (console_lock_broken)
			return;
		cpu_relax();
	}
}

static void unlock_console(void)
{
	__atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

/*
 * kiln's 16550A (and QEMU's) transmits a THR write at once, so the console
 * does not poll LSR per byte: that halves the exits. \n becomes \r\n.
 */
static void put_raw(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '\n')
			outb(COM1_PORT, '\r');
		outb(COM1_PORT, (uint8_t)s[i]);
	}
}

void putstr(const char *s)
{
	lock_console();
	put_raw(s, strlen(s));
	unlock_console();
}

int printf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	lock_console();
	put_raw(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
	unlock_console();
	return n;
}

struct out {
	char *buf;
	size_t size, len;
};

static void emit(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void emit_num(struct out *o, uint64_t v, unsigned base, bool upper, bool neg,
		     int width, char pad, bool left, const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, len, plen = prefix ? (int)strlen(prefix) : 0;

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	len = n + (neg ? 1 : 0) + plen;
	if (pad == '0' && !left) {
		if (neg)
			emit(o, '-');
		while (plen && *prefix)
			emit(o, *prefix++);
		for (; len < width; len++)
			emit(o, '0');
	} else {
		if (!left)
			for (; len < width; len++)
				emit(o, ' ');
		if (neg)
			emit(o, '-');
		while (plen && *prefix)
			emit(o, *prefix++);
	}
	while (n)
		emit(o, tmp[--n]);
	for (; left && len < width; len++)
		emit(o, ' ');
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };

	for (; *fmt; fmt++) {
		bool left = false, alt = false;
		char pad = ' ';
		int width = 0, lng = 0, prec = -1;
		uint64_t u;
		int64_t s;
		const char *str;

		if (*fmt != '%') {
			emit(&o, *fmt);
			continue;
		}
		fmt++;
		for (;; fmt++) {
			if (*fmt == '-')
				left = true;
			else if (*fmt == '0')
				pad = '0';
			else if (*fmt == '#')
				alt = true;
			else
				break;
		}
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		if (*fmt == '.')
			for (prec = 0, fmt++; *fmt >= '0' && *fmt <= '9';)
				prec = prec * 10 + (*fmt++ - '0');
		while (*fmt == 'l' || *fmt == 'z') {
			lng++;
			fmt++;
		}
		switch (*fmt) {
		case 'd':
		case 'i':
			s = lng ? va_arg(ap, int64_t) : va_arg(ap, int);
			emit_num(&o, s < 0 ? -(uint64_t)s : (uint64_t)s, 10, false, s < 0, width, pad, left, NULL);
			break;
		case 'u':
			u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			emit_num(&o, u, 10, false, false, width, pad, left, NULL);
			break;
		case 'x':
		case 'X':
			u = lng ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
			emit_num(&o, u, 16, *fmt == 'X', false, width, pad, left, alt ? "0x" : NULL);
			break;
		case 'p':
			u = (uint64_t)va_arg(ap, void *);
			emit_num(&o, u, 16, false, false, width, pad, left, "0x");
			break;
		case 'c':
			emit(&o, (char)va_arg(ap, int));
			break;
		case 's':
			str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			/* %.Ns: at most N bytes, and no read past them (the string need not be terminated). */
			for (u = 0; (prec < 0 || u < (uint64_t)prec) && str[u]; u++)
				;
			width -= (int)u;
			while (!left && width-- > 0)
				emit(&o, ' ');
			while (u--)
				emit(&o, *str++);
			while (left && width-- > 0)
				emit(&o, ' ');
			break;
		case '%':
			emit(&o, '%');
			break;
		case '\0':
			fmt--;
			break;
		default:
			emit(&o, '%');
			emit(&o, *fmt);
			break;
		}
	}
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

/* ---- exits ---- */

void poweroff(void)
{
	outb(ACPI_SLEEP_CTL, ACPI_SLEEP_S5);
	/*
	 * Still running: not kiln (QEMU has no register at 0x3c0). Try QEMU's
	 * isa-debug-exit if run-guests.sh --qemu added it, then spin (no hlt:
	 * it faults at CPL3).
	 */
	outb(QEMU_DEBUG_EXIT, 0);
	for (;;)
		cpu_relax();
}

void pass(void)
{
	putstr("SUCCESS\n");
	poweroff();
}

void fail(const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	printf("FAIL: %s\n", buf);
	poweroff();
}

/* ---- string functions ---- */

void *memcpy(void *d, const void *s, size_t n)
{
	char *dp = d;
	const char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

void *memmove(void *d, const void *s, size_t n)
{
	char *dp = d;
	const char *sp = s;

	if (dp < sp)
		return memcpy(d, s, n);
	while (n--)
		dp[n] = sp[n];
	return d;
}

void *memset(void *d, int c, size_t n)
{
	char *dp = d;

	while (n--)
		*dp++ = (char)c;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (; n; n--, x++, y++)
		if (*x != *y)
			return *x - *y;
	return 0;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
	for (; n; n--, a++, b++) {
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			break;
	}
	return 0;
}

long strtol(const char *s, char **end, int base)
{
	unsigned long v = 0;
	bool neg = false;
	const char *p = s;

	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	if ((base == 0 || base == 16) && p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		p += 2;
		base = 16;
	} else if (base == 0) {
		base = *p == '0' ? 8 : 10;
	}
	for (;; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' : *p >= 'a' && *p <= 'z' ? *p - 'a' + 10 :
			*p >= 'A' && *p <= 'Z' ? *p - 'A' + 10 : 99;

		if (d >= base)
			break;
		v = v * (unsigned long)base + (unsigned long)d;   /* no overflow check: the guests parse their own short numbers */
	}
	if (end)
		*end = (char *)(p == s ? s : p);
	return neg ? -(long)v : (long)v;
}
