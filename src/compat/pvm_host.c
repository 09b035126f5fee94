/* Host-facing facts of the compat layer: kvm_pvm detection, the guest command-line additions, CPUID masking. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "compat/pvm_internal.h"

/* ---- Detection ---- */

enum mod_state { MOD_ABSENT, MOD_NOT_LIVE, MOD_LIVE, MOD_BUILTIN };

/*
 * /sys/module/<name> exists for a loaded module and for a built-in one that
 * has parameters. A loadable module also has "initstate", which reads "live"
 * once its init succeeded ("coming"/"going" otherwise); a built-in has none.
 */
static enum mod_state module_state(const char *root, const char *name)
{
	char path[512], buf[16] = "";
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/sys/module/%s", root, name);
	if (stat(path, &st) || !S_ISDIR(st.st_mode))
		return MOD_ABSENT;
	snprintf(path, sizeof(path), "%s/sys/module/%s/initstate", root, name);
	f = fopen(path, "re");
	if (!f)
		return MOD_BUILTIN;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strncmp(buf, "live", 4) == 0 ? MOD_LIVE : MOD_NOT_LIVE;
}

/* Does /proc/cpuinfo list the vmx or svm flag (hardware virtualisation visible to this kernel)? */
static bool cpu_has_hw_virt(const char *root)
{
	char path[512], *line = NULL;
	size_t cap = 0;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/cpuinfo", root);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) > 0) {
		char *save = NULL, *tok;

		if (strncmp(line, "flags", 5) != 0)
			continue;
		for (tok = strtok_r(strchr(line, ':') ? strchr(line, ':') + 1 : line, " \t\n", &save); tok;
		     tok = strtok_r(NULL, " \t\n", &save))
			if (!strcmp(tok, "vmx") || !strcmp(tok, "svm"))
				found = true;
	}
	free(line);
	fclose(f);
	return found;
}

bool pvm_detect_root(const char *root)
{
	static const char *const hw[] = { "kvm_intel", "kvm_amd" };
	enum mod_state pvm = module_state(root, "kvm_pvm");

	if (pvm != MOD_LIVE && pvm != MOD_BUILTIN)
		return false;
	/* KVM accepts one vendor module: a live VT-x/SVM module owns /dev/kvm. */
	for (size_t i = 0; i < ARRAY_SIZE(hw); i++) {
		enum mod_state s = module_state(root, hw[i]);

		if (s == MOD_LIVE)
			return false;
		/* A built-in one only registered if the CPU offers VT-x/SVM at all. */
		if (s == MOD_BUILTIN && cpu_has_hw_virt(root))
			return false;
	}
	return true;
}

bool pvm_detect(void)
{
	return pvm_detect_root("");
}

/* ---- Guest kernel command line ---- */

/*
 * X86_FEATURE_* numbers (word * 32 + bit) for clearcpuid=. Every word used
 * here mirrors a CPUID register (arch/x86/include/asm/cpufeatures.h: word 1
 * 0x80000001 EDX, 4 leaf 1 ECX, 6 0x80000001 ECX, 9 leaf 7 EBX, 16 leaf 7
 * ECX, 18 leaf 7 EDX), so the numbers are stable across kernel versions;
 * numbers also work on kernels older than clearcpuid's feature names. The
 * kernel hides them from itself, which is the only way here because leaf 7
 * and most of leaf 1 ignore KVM_SET_CPUID2 on kvm_pvm (pvm-probe/README.md).
 */
#define PVM_CLEARCPUID \
	"308,"  /* smap: stac/clac are refused by the host emulator */ \
	"295,"  /* smep: no refused instruction, but r11 (the measured boot) ran without it */ \
	"297,"  /* erms: emulated rep stosb costs 464 ns a byte, the qword form 65 ns */ \
	"580,"  /* fsrm: same reason as erms */ \
	"298,"  /* invpcid: refused */ \
	"145,"  /* pcid: goes with invpcid; r11 ran without it */ \
	"151,"  /* popcnt: refused */ \
	"59,"   /* rdtscp: refused */ \
	"312,"  /* clwb: refused */ \
	"137,"  /* ssse3: SIMD is refused at CPL0 (pshufb) */ \
	"147,"  /* sse4_1: SIMD refused */ \
	"148,"  /* sse4_2: SIMD refused, crc32 refused */ \
	"153,"  /* aes: SIMD refused */ \
	"129,"  /* pclmulqdq: SIMD refused */ \
	"317,"  /* sha_ni: SIMD refused */ \
	"520,"  /* gfni: SIMD refused */ \
	"521,"  /* vaes: SIMD refused */ \
	"522,"  /* vpclmulqdq: SIMD refused */ \
	"141,"  /* cx16: cmpxchg16b refused (SLUB's lockless freelist) */ \
	"291,"  /* bmi1: andn refused */ \
	"296,"  /* bmi2: VEX-encoded, refused like andn */ \
	"150,"  /* movbe: the host emulator answers #UD */ \
	"534,"  /* rdpid: the host emulator answers #UD */ \
	"131,"  /* mwait: monitor/mwait refused (idle loop on Intel hosts) */ \
	"221,"  /* mwaitx: monitorx/mwaitx, AMD's delay loop uses it */ \
	"517,"  /* waitpkg: tpause/umwait, Intel's delay loop uses it */ \
	"590"   /* serialize: sync_core() prefers it where present */

/* arch/x86/kernel/cpu/common.c copies the value into a 128-byte buffer. */
_Static_assert(sizeof(PVM_CLEARCPUID) - 1 <= PVM_CLEARCPUID_MAX, "clearcpuid= value too long for the kernel");

static const char pvm_cmdline[] =
	/* XSAVE/XRSTOR/XGETBV are refused; noxsave also drops AVX and everything that depends on XSAVE. */
	"noxsave"
	/* Features whose instructions the host emulator refuses (list above). */
	" clearcpuid=" PVM_CLEARCPUID
	/*
	 * The syscall trap needs the vsyscall page mapped, user-accessible at
	 * every paging level, in the page tables all processes share
	 * (pvm_trap.c); only the emulate mode maps it that way.
	 */
	" vsyscall=emulate";

const char *pvm_cmdline_extra(void)
{
	return pvm_cmdline;
}

/* ---- CPUID ---- */

enum cpuid_reg { EAX, EBX, ECX, EDX };

struct cpuid_mask {
	uint32_t function;
	int32_t index;      /* -1: every subleaf */
	enum cpuid_reg reg;
	uint32_t clear;
};

#define BIT(n) (1U << (n))

/*
 * Bits to clear (Intel SDM Vol 2A CPUID; AMD APM Vol 3 appendix E). Whether a
 * bit takes effect depends on the host (leaf 1 obeys for bits KVM supports,
 * leaf 7 does not obey at all here), so the command line above repeats the
 * important ones; masking here is still right for the guest's CPUID view.
 */
static const struct cpuid_mask pvm_cpuid_masks[] = {
	/* Leaf 1 ECX: pclmulqdq 1, monitor 3, ssse3 9, fma 12, cx16 13, pcid 17, sse4.1 19,
	 * sse4.2 20, movbe 22, popcnt 23, aes 25, xsave 26, osxsave 27, avx 28, f16c 29:
	 * refused by the emulator, or needing XSAVE. */
	{ 1, -1, ECX, BIT(1) | BIT(3) | BIT(9) | BIT(12) | BIT(13) | BIT(17) | BIT(19) | BIT(20) | BIT(22) |
		      BIT(23) | BIT(25) | BIT(26) | BIT(27) | BIT(28) | BIT(29) },
	/* Leaf 7.0 EBX: bmi1 3, hle 4, avx2 5, smep 7, bmi2 8, erms 9, invpcid 10, rtm 11,
	 * avx512f 16, avx512dq 17, adx 19, smap 20, avx512ifma 21, clwb 24, avx512pf 26,
	 * avx512er 27, avx512cd 28, sha 29, avx512bw 30, avx512vl 31. */
	{ 7, 0, EBX, BIT(3) | BIT(4) | BIT(5) | BIT(7) | BIT(8) | BIT(9) | BIT(10) | BIT(11) | BIT(16) |
		     BIT(17) | BIT(19) | BIT(20) | BIT(21) | BIT(24) | BIT(26) | BIT(27) | BIT(28) | BIT(29) |
		     BIT(30) | BIT(31) },
	/* Leaf 7.0 ECX: avx512vbmi 1, pku 3, ospke 4, waitpkg 5, vbmi2 6, gfni 8, vaes 9,
	 * vpclmulqdq 10, vnni 11, bitalg 12, vpopcntdq 14, la57 16, rdpid 22, movdiri 27,
	 * movdir64b 28. */
	{ 7, 0, ECX, BIT(1) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(8) | BIT(9) | BIT(10) | BIT(11) |
		     BIT(12) | BIT(14) | BIT(16) | BIT(22) | BIT(27) | BIT(28) },
	/* Leaf 7.0 EDX: avx512_4vnniw 2, avx512_4fmaps 3, fsrm 4, vp2intersect 8, serialize 14,
	 * amx-bf16 22, avx512_fp16 23, amx-tile 24, amx-int8 25. */
	{ 7, 0, EDX, BIT(2) | BIT(3) | BIT(4) | BIT(8) | BIT(14) | BIT(22) | BIT(23) | BIT(24) | BIT(25) },
	/* Leaf 7.1 EAX: AVX-VNNI, AVX512-BF16, fast short rep ops...: all SIMD or string-op speedups. */
	{ 7, 1, EAX, 0xffffffffU },
	/* Leaf 0xd: no XSAVE state components without XSAVE. */
	{ 0xd, -1, EAX, 0xffffffffU },
	{ 0xd, -1, EBX, 0xffffffffU },
	{ 0xd, -1, ECX, 0xffffffffU },
	{ 0xd, -1, EDX, 0xffffffffU },
	/* 0x80000001 ECX: sse4a 6, misalignsse 7, xop 11, fma4 16, tbm 21, mwaitx 29. */
	{ 0x80000001, -1, ECX, BIT(6) | BIT(7) | BIT(11) | BIT(16) | BIT(21) | BIT(29) },
	/* 0x80000001 EDX: rdtscp 27 is refused. */
	{ 0x80000001, -1, EDX, BIT(27) },
	/* 0x80000008 EBX: clzero 0. */
	{ 0x80000008, -1, EBX, BIT(0) },
	/*
	 * KVM paravirt leaf 0x40000001 EAX (Documentation/virt/kvm/x86/cpuid.rst):
	 * PV_UNHALT 7, PV_SEND_IPI 11, PV_SCHED_YIELD 13 make an SMP guest issue
	 * VMCALL (spinlock kick, IPIs, yield), and a VMCALL hangs the vCPU here
	 * without an exit (HOST.md). The probe ran nosmp, so it never met them.
	 */
	{ 0x40000001, -1, EAX, BIT(7) | BIT(11) | BIT(13) },
};

static uint32_t *cpuid_reg(struct kvm_cpuid_entry2 *e, enum cpuid_reg r)
{
	switch (r) {
	case EAX: return &e->eax;
	case EBX: return &e->ebx;
	case ECX: return &e->ecx;
	default: return &e->edx;
	}
}

void pvm_mask_cpuid(struct kvm_cpuid2 *cpuid)
{
	if (!cpuid)
		return;
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		for (size_t k = 0; k < ARRAY_SIZE(pvm_cpuid_masks); k++) {
			const struct cpuid_mask *m = &pvm_cpuid_masks[k];

			if (m->function != e->function)
				continue;
			if (m->index >= 0 && (uint32_t)m->index != e->index)
				continue;
			*cpuid_reg(e, m->reg) &= ~m->clear;
		}
	}
}
