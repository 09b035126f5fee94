/* x86 vCPU state at power-on: CPUID, MSRs, LAPIC LINT pins, FPU, and boot-entry registers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include "arch/x86/cpu.h"
#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"
#include "core/kvm.h"

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT        (1u << 28)

struct kvm_cpuid_entry2 *x86_cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn &&
		    (!(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || c->entries[i].index == idx))
			return &c->entries[i];
	return NULL;
}

/* Bits needed to hold values 0..n-1 (x2APIC id shift widths, SDM Vol 2A CPUID leaf 0BH). */
static unsigned order_base2(unsigned n)
{
	unsigned s = 0;
	while ((1u << s) < n && s < 31)
		s++;
	return s;
}

void x86_cpuid_patch(struct kvm_cpuid2 *c, unsigned id, unsigned ncpus)
{
	unsigned core_bits = order_base2(ncpus);

	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			/* EBX[31:24] initial APIC id, [23:16] max logical processors per package, [15:8] CLFLUSH size. */
			e->ebx = (id << 24) | ((ncpus & 0xff) << 16) | (e->ebx & 0xffff);
			e->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (ncpus > 1)
				e->edx |= CPUID_1_EDX_HTT;
			else
				e->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4:
			/* Deterministic cache params: EAX[31:26] cores per package - 1; [25:14] sharing - 1. */
			e->eax &= 0x3ff;
			e->eax |= ((ncpus - 1) & 0x3f) << 26;
			if (((e->eax >> 5) & 7) == 3) /* L3 is shared by the package */
				e->eax |= ((ncpus - 1) & 0xfff) << 14;
			break;
		case 0xb:
		case 0x1f:
			/* Extended topology (SDM Vol 2A CPUID 0BH/1FH): level 0 SMT (1 thread), level 1 core. */
			e->edx = id;
			if (e->index == 0) {
				e->eax = 0;              /* shift to next level: one thread per core */
				e->ebx = 1;
				e->ecx = (1u << 8) | 0;  /* type SMT */
			} else if (e->index == 1) {
				e->eax = core_bits;
				e->ebx = ncpus;
				e->ecx = (2u << 8) | 1;  /* type core */
			} else {
				e->eax = e->ebx = 0;
				e->ecx = e->index & 0xff; /* type invalid ends the enumeration */
			}
			break;
		default:
			break;
		}
	}
}

/* MSR indices (SDM Vol 4). */
#define MSR_IA32_SYSENTER_CS   0x174
#define MSR_IA32_SYSENTER_ESP  0x175
#define MSR_IA32_SYSENTER_EIP  0x176
#define MSR_IA32_TSC           0x10
#define MSR_IA32_MISC_ENABLE   0x1a0
#define MSR_MTRR_DEF_TYPE      0x2ff
#define MSR_STAR               0xc0000081
#define MSR_LSTAR              0xc0000082
#define MSR_CSTAR              0xc0000083
#define MSR_SYSCALL_MASK       0xc0000084
#define MSR_KERNEL_GS_BASE     0xc0000102

static int set_msrs(int fd)
{
	static const struct { uint32_t idx; uint64_t val; } init[] = {
		{ MSR_IA32_SYSENTER_CS, 0 }, { MSR_IA32_SYSENTER_ESP, 0 }, { MSR_IA32_SYSENTER_EIP, 0 },
		{ MSR_STAR, 0 }, { MSR_CSTAR, 0 }, { MSR_KERNEL_GS_BASE, 0 }, { MSR_SYSCALL_MASK, 0 },
		{ MSR_LSTAR, 0 }, { MSR_IA32_TSC, 0 },
		/* Fast strings on: what firmware leaves set (SDM Vol 4 Table 2-2). */
		{ MSR_IA32_MISC_ENABLE, 1 },
		/* MTRRs enabled, default type write-back: no firmware here to program them. */
		{ MSR_MTRR_DEF_TYPE, (1u << 11) | 6 },
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[ARRAY_SIZE(init)];
	} m;
	int ret;

	memset(&m, 0, sizeof(m));
	m.hdr.nmsrs = ARRAY_SIZE(init);
	for (size_t i = 0; i < ARRAY_SIZE(init); i++) {
		m.e[i].index = init[i].idx;
		m.e[i].data = init[i].val;
	}
	ret = kvm_ioctl(fd, KVM_SET_MSRS, &m);
	if (ret < 0)
		return ret;
	/* KVM_SET_MSRS returns how many it set; a host may refuse some (e.g. MTRRs on kvm_pvm). */
	return 0;
}

/* LAPIC LVT registers (SDM Vol 3A 11.5.1): LINT0 as ExtINT (the 8259 path), LINT1 as NMI. */
#define APIC_LVT0 0x350
#define APIC_LVT1 0x360
#define APIC_MODE_NMI 0x4
#define APIC_MODE_EXTINT 0x7

static void lapic_set_lvt(struct kvm_lapic_state *l, unsigned reg, unsigned mode)
{
	uint32_t v;
	memcpy(&v, &l->regs[reg], 4);
	v = (v & ~0x700u & ~(1u << 16)) | (mode << 8);
	memcpy(&l->regs[reg], &v, 4);
}

int x86_vcpu_init(int fd, const struct kvm_cpuid2 *cpuid)
{
	struct kvm_lapic_state lapic;
	struct kvm_fpu fpu;
	int ret;

	ret = kvm_ioctl(fd, KVM_SET_CPUID2, (void *)cpuid);
	if (ret < 0)
		return ret;
	ret = set_msrs(fd);
	if (ret < 0)
		return ret;
	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;   /* x87 power-on control word (SDM Vol 1 8.1.5) */
	fpu.mxcsr = 0x1f80; /* all SSE exceptions masked */
	ret = kvm_ioctl(fd, KVM_SET_FPU, &fpu);
	if (ret < 0)
		return ret;
	ret = kvm_ioctl(fd, KVM_GET_LAPIC, &lapic);
	if (ret < 0)
		return ret;
	lapic_set_lvt(&lapic, APIC_LVT0, APIC_MODE_EXTINT);
	lapic_set_lvt(&lapic, APIC_LVT1, APIC_MODE_NMI);
	return kvm_ioctl(fd, KVM_SET_LAPIC, &lapic);
}

static struct kvm_segment seg_flat(uint16_t sel, uint8_t type, bool l, bool db)
{
	return (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel, .type = type,
		.present = 1, .dpl = 0, .db = db, .s = 1, .l = l, .g = 1,
	};
}

void x86_boot_sregs(struct kvm_sregs *s, const struct boot_result *b)
{
	struct kvm_segment data = seg_flat(GDT_SEL_DATA, 0x3, false, true);

	s->gdt.base = X86_GDT_GPA;
	s->gdt.limit = GDT_ENTRIES * 8 - 1;
	s->idt.base = X86_IDT_GPA;
	s->idt.limit = 0;
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->tr = (struct kvm_segment){ .selector = GDT_SEL_TSS, .limit = 0xffff, .type = 0xb, .present = 1 };
	s->ldt = (struct kvm_segment){ .type = 0x2, .present = 1, .limit = 0xffff };
	if (b->kind == BOOT_BZIMAGE) {
		/*
		 * Linux boot protocol, 64-bit entry (Documentation/arch/x86/boot.rst):
		 * long mode, paging on with an identity map covering kernel, zero page
		 * and command line; CS = __BOOT_CS, DS/ES/SS = __BOOT_DS, flat.
		 */
		s->cs = seg_flat(GDT_SEL_CODE64, 0xb, true, false);
		s->cr3 = X86_PML4_GPA;
		s->cr4 = 1u << 5;                    /* PAE */
		s->cr0 = 0x80050033;                 /* PG WP NE ET MP PE */
		s->efer = (1u << 8) | (1u << 10);    /* LME LMA */
	} else {
		/*
		 * PVH (Xen docs/misc/pvh.pandoc): 32-bit protected mode, paging off,
		 * CS flat 32-bit read/execute, DS/ES/SS flat read/write.
		 */
		s->cs = seg_flat(GDT_SEL_CODE32, 0xb, false, true);
		s->cr0 = 0x11;                       /* ET PE */
		s->cr3 = 0;
		s->cr4 = 0;
		s->efer = 0;
	}
}

void x86_boot_regs(struct kvm_regs *r, const struct boot_result *b)
{
	memset(r, 0, sizeof(*r));
	r->rflags = 2; /* bit 1 is reserved-one; IF clear */
	r->rip = b->entry;
	if (b->kind == BOOT_BZIMAGE) {
		r->rsi = b->params; /* boot_params */
		r->rsp = X86_BOOT_STACK_GPA;
		r->rbp = X86_BOOT_STACK_GPA;
	} else {
		r->rbx = b->params; /* hvm_start_info */
	}
}

int x86_vcpu_boot_regs(int fd, const struct boot_result *b)
{
	struct kvm_sregs s;
	struct kvm_regs r;
	int ret;

	ret = kvm_ioctl(fd, KVM_GET_SREGS, &s);
	if (ret < 0)
		return ret;
	x86_boot_sregs(&s, b);
	ret = kvm_ioctl(fd, KVM_SET_SREGS, &s);
	if (ret < 0)
		return ret;
	x86_boot_regs(&r, b);
	return kvm_ioctl(fd, KVM_SET_REGS, &r);
}
