/* Internals of the kvm_pvm compat layer: decoder, page walker, emulator, syscall trap (pure and unit-tested). */
#ifndef KILN_COMPAT_PVM_INTERNAL_H
#define KILN_COMPAT_PVM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <linux/kvm.h>
#include "core/types.h"
#include "core/memory.h"
#include "compat/pvm.h"

/* ---- Architectural constants (Intel SDM Vol 3A unless noted) ---- */

#define X86_MAX_INSN_LEN 15        /* SDM Vol 2A 2.3.11: a longer instruction raises #GP(0) */

enum x86_vector {
	X86_VEC_BP = 3, X86_VEC_UD = 6, X86_VEC_NM = 7, X86_VEC_NP = 11,
	X86_VEC_SS = 12, X86_VEC_GP = 13, X86_VEC_PF = 14, X86_VEC_MF = 16,
};

/* RFLAGS (SDM Vol 1 3.4.3) */
#define X86_RF_CF   (1ULL << 0)
#define X86_RF_FIXED (1ULL << 1)   /* always 1 */
#define X86_RF_ZF   (1ULL << 6)
#define X86_RF_IF   (1ULL << 9)
#define X86_RF_IOPL (3ULL << 12)
#define X86_RF_NT   (1ULL << 14)
#define X86_RF_RF   (1ULL << 16)
#define X86_RF_VM   (1ULL << 17)
#define X86_RF_AC   (1ULL << 18)
#define X86_RF_VIF  (1ULL << 19)
#define X86_RF_VIP  (1ULL << 20)
#define X86_RF_ID   (1ULL << 21)
#define X86_RF_ARITH 0x8d5ULL      /* CF PF AF ZF SF OF */

#define X86_CR0_MP (1ULL << 1)
#define X86_CR0_EM (1ULL << 2)
#define X86_CR0_TS (1ULL << 3)
#define X86_CR0_NE (1ULL << 5)
#define X86_CR0_WP (1ULL << 16)
#define X86_CR4_TSD (1ULL << 2)
#define X86_CR4_OSFXSR (1ULL << 9)
#define X86_CR4_LA57 (1ULL << 12)
#define X86_CR4_OSXSAVE (1ULL << 18)
#define X86_EFER_SCE (1ULL << 0)
#define X86_EFER_LMA (1ULL << 10)
#define X86_EFER_NXE (1ULL << 11)

#define MSR_IA32_TSC        0x00000010
#define MSR_STAR            0xc0000081
#define MSR_LSTAR           0xc0000082
#define MSR_SYSCALL_MASK    0xc0000084
#define MSR_KERNEL_GS_BASE  0xc0000102
#define MSR_TSC_AUX         0xc0000103

/* Paging-structure entries (SDM Vol 3A 4.5, tables 4-15..4-20) */
#define X86_PTE_P   (1ULL << 0)
#define X86_PTE_RW  (1ULL << 1)
#define X86_PTE_US  (1ULL << 2)
#define X86_PTE_A   (1ULL << 5)
#define X86_PTE_PS  (1ULL << 7)
#define X86_PTE_NX  (1ULL << 63)
#define X86_PTE_ADDR 0x000ffffffffff000ULL

/* #PF error code (SDM Vol 3A 4.7) */
#define X86_PF_P    (1U << 0)
#define X86_PF_W    (1U << 1)
#define X86_PF_U    (1U << 2)
#define X86_PF_RSVD (1U << 3)
#define X86_PF_I    (1U << 4)

/* ---- Decoder (pvm_decode.c) ---- */

enum pvm_kind {
	PVM_INSN_UNKNOWN = 0,
	PVM_INSN_INT3,        /* cc */
	PVM_INSN_UD,          /* 0f 0b ud2, 0f b9 /r ud1, 0f ff /r ud0 */
	PVM_INSN_FWAIT,       /* 9b */
	PVM_INSN_IRET,        /* cf; operand size in opsize (48 cf = iretq) */
	PVM_INSN_SWAPGS,      /* 0f 01 f8 */
	PVM_INSN_SYSRET,      /* 0f 07; opsize 8 = sysretq */
	PVM_INSN_CLAC,        /* 0f 01 ca */
	PVM_INSN_STAC,        /* 0f 01 cb */
	PVM_INSN_XGETBV,      /* 0f 01 d0 */
	PVM_INSN_RDTSCP,      /* 0f 01 f9 */
	PVM_INSN_POPCNT,      /* f3 0f b8 /r */
	PVM_INSN_LDMXCSR,     /* 0f ae /2 m32 */
	PVM_INSN_STMXCSR,     /* 0f ae /3 m32 */
	PVM_INSN_XSAVE,       /* 0f ae /4 /5 /6, 0f c7 /3 /4 /5 (xsave, xrstor, xsaveopt, xrstors, xsavec, xsaves) */
	PVM_INSN_CMPXCHG16B,  /* REX.W 0f c7 /1 m128 */
	PVM_INSN_FLDCW,       /* d9 /5 m16 */
	PVM_INSN_INTN,        /* cd ib */
	PVM_INSN_VERR,        /* 0f 00 /4 */
	PVM_INSN_VERW,        /* 0f 00 /5 */
	PVM_INSN_LAR,         /* 0f 02 /r */
	PVM_INSN_LSL,         /* 0f 03 /r */
	PVM_INSN_SYSENTER,    /* 0f 34 */
	PVM_INSN_MONITOR,     /* 0f 01 c8 */
	PVM_INSN_MWAIT,       /* 0f 01 c9 */
	PVM_INSN_NKINDS
};

enum pvm_seg { PVM_SEG_NONE = -1, PVM_SEG_ES, PVM_SEG_CS, PVM_SEG_SS, PVM_SEG_DS, PVM_SEG_FS, PVM_SEG_GS };

/* A decoded ModRM (+SIB, displacement); register numbers include the REX extension bits. */
struct pvm_modrm {
	bool present;
	uint8_t mod, reg, rm;  /* rm: register number when mod == 3 */
	bool has_base, has_index, rip_rel;
	uint8_t base, index, scale;  /* scale is the shift count 0..3 */
	int32_t disp;
};

struct pvm_insn {
	enum pvm_kind kind;
	uint8_t len;           /* total length, prefixes included */
	uint8_t opsize;        /* operand size in bytes: 2, 4 or 8 */
	uint8_t rex;           /* the REX byte that applies, or 0 */
	bool lock, rep, repne, opsize16, addr32;
	int8_t seg;            /* enum pvm_seg */
	uint8_t imm8;          /* int n */
	struct pvm_modrm modrm;
};

/*
 * Decode the instruction at bytes[0..n). 0 and *out filled; -ENODATA when the
 * bytes end before the instruction does; -E2BIG when it would exceed 15
 * bytes; -EOPNOTSUPP for anything outside the handled set. Pure.
 */
int pvm_decode(const uint8_t *bytes, size_t n, struct pvm_insn *out);
const char *pvm_kind_name(enum pvm_kind k);

/* ---- Page walker and guest-virtual access (pvm_walk.c) ---- */

enum { PVM_ACC_WRITE = 1, PVM_ACC_USER = 2, PVM_ACC_FETCH = 4 };

struct pvm_paging {
	uint64_t cr3;
	unsigned levels;  /* 4, or 5 with CR4.LA57 */
	bool wp;          /* CR0.WP: supervisor writes honour R/W */
	bool nxe;         /* EFER.NXE: the XD bit is honoured */
};

struct pvm_walk {
	gpa_t gpa;           /* translation of the address */
	gpa_t leaf_gpa;      /* where the leaf entry lives */
	uint64_t leaf;       /* the leaf entry as read */
	unsigned leaf_level; /* 1: 4 KiB page, 2: 2 MiB, 3: 1 GiB; on a fault, the level that faulted */
	bool nx_above;       /* XD set in a non-leaf entry */
	uint32_t pf_err;     /* #PF error code on -EFAULT */
};

/* Canonical for a `levels`-level address space (48 or 57 bits, SDM Vol 1 3.3.7.1). */
bool pvm_canonical(uint64_t va, unsigned levels);

/*
 * Walk the guest page tables rooted at pg->cr3 for one access (PVM_ACC_*).
 * 0; -EFAULT page fault (w->pf_err); -EINVAL non-canonical address; -ENXIO a
 * paging-structure entry lies outside guest RAM. At most `levels` reads.
 */
int pvm_walk(const struct guest_mem *m, const struct pvm_paging *pg, uint64_t gva, unsigned access,
	     struct pvm_walk *w);

/* The simple form: 4-level paging, supervisor access, CR0.WP=1, NX honoured. */
int pvm_gva_to_gpa(const struct guest_mem *m, uint64_t cr3, uint64_t gva, bool write, gpa_t *out);

/* A guest-virtual access that failed on a page fault. */
struct pvm_fault {
	uint64_t addr;
	uint32_t err;
};

/*
 * Memory interface of the emulator: copy len bytes (<= 4096) between buf and
 * guest-virtual gva. 0; -EFAULT page fault (*f filled, nothing copied);
 * -EINVAL non-canonical or wrapping range; -ENXIO not guest RAM (MMIO).
 */
struct pvm_mem_ops {
	int (*access)(void *ctx, uint64_t gva, void *buf, size_t len, unsigned access, struct pvm_fault *f);
	void *ctx;
};

/* The walker-backed implementation: ctx is a struct pvm_vmem. */
struct pvm_vmem {
	const struct guest_mem *mem;
	struct pvm_paging pg;
};
int pvm_vmem_access(void *ctx, uint64_t gva, void *buf, size_t len, unsigned access, struct pvm_fault *f);
/* Read up to len bytes at gva, stopping at the first unreadable page; returns the count read. */
size_t pvm_vmem_fetch(const struct pvm_vmem *vm, uint64_t gva, uint8_t *buf, size_t len);
/* Paging parameters from a vCPU's control registers. */
void pvm_paging_from_sregs(const struct kvm_sregs *s, struct pvm_paging *pg);

/* ---- Emulator (pvm_emulate.c, pvm_emulate_seg.c) ---- */

/* The CPU state the emulator works on: filled by the glue from KVM, or by tests. */
struct pvm_cpu {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	uint64_t msr_star, msr_lstar, msr_fmask, msr_kernel_gs_base;
	uint64_t msr_tsc, msr_tsc_aux;
	uint64_t xcr0;
	struct kvm_fpu fpu;
};

/* What pvm_emulate needs besides regs/sregs (the glue loads only these). */
enum {
	PVM_NEED_MSR_SYSCALL = 1 << 0,  /* STAR, FMASK, KERNEL_GS_BASE */
	PVM_NEED_MSR_TSC = 1 << 1,      /* TSC, TSC_AUX */
	PVM_NEED_FPU = 1 << 2,
	PVM_NEED_XCR = 1 << 3,
};
unsigned pvm_insn_needs(enum pvm_kind k);

/* What the glue must write back. */
enum {
	PVM_DIRTY_REGS = 1 << 0,
	PVM_DIRTY_SREGS = 1 << 1,
	PVM_DIRTY_KGS = 1 << 2,   /* MSR_KERNEL_GS_BASE */
	PVM_DIRTY_FPU = 1 << 3,
};

enum pvm_action {
	PVM_ACT_RESUME,     /* state updated, nothing to inject */
	PVM_ACT_EXCEPTION,  /* state updated, then inject vector */
	PVM_ACT_UNHANDLED,  /* nothing changed; reason says why */
};

struct pvm_result {
	enum pvm_action action;
	unsigned dirty;
	uint8_t vector;
	bool has_error;
	uint32_t error_code;
	const char *reason;
};

/* CPL of a 64-bit vCPU: CS.RPL (SDM Vol 3A 5.5). */
unsigned pvm_cpl(const struct kvm_sregs *s);

/*
 * Produce the architectural result of insn (decoded at cpu->regs.rip) on cpu,
 * accessing guest memory through mem. Always fills *res. Pure.
 */
void pvm_emulate(struct pvm_cpu *cpu, const struct pvm_insn *insn, const struct pvm_mem_ops *mem,
		 struct pvm_result *res);

/* Shared between the emulator files. */
void pvm_res_exception(struct pvm_result *r, uint8_t vector, bool has_error, uint32_t error_code);
void pvm_res_unhandled(struct pvm_result *r, const char *reason);
/* Guest-memory access on behalf of an instruction; on failure *r holds the exception or the refusal. */
int pvm_vmread(struct pvm_cpu *c, const struct pvm_mem_ops *mem, uint64_t gva, void *buf, size_t len,
	       bool implicit_sv, struct pvm_result *r);
int pvm_vmwrite(struct pvm_cpu *c, const struct pvm_mem_ops *mem, uint64_t gva, const void *buf, size_t len,
		struct pvm_result *r);
__u64 *pvm_gpr(struct kvm_regs *regs, unsigned n);
void pvm_emul_iretq(struct pvm_cpu *c, const struct pvm_insn *in, const struct pvm_mem_ops *mem,
		    struct pvm_result *r);
void pvm_emul_sysretq(struct pvm_cpu *c, struct pvm_result *r);
void pvm_emul_swapgs(struct pvm_cpu *c, const struct pvm_insn *in, struct pvm_result *r);
void pvm_emul_verx(struct pvm_cpu *c, const struct pvm_insn *in, const struct pvm_mem_ops *mem,
		   struct pvm_result *r);
uint64_t pvm_ea(const struct pvm_cpu *c, const struct pvm_insn *in);
/* Flat 64-bit segments SYSCALL/SYSRET load (SDM Vol 2B SYSCALL, SYSRET). */
void pvm_flat_code64(struct kvm_segment *s, uint16_t sel, unsigned dpl);
void pvm_flat_data(struct kvm_segment *s, uint16_t sel, unsigned dpl);

/* ---- The syscall trap (pvm_trap.c) ---- */

/* The vsyscall page (fixed by the Linux x86-64 ABI) and the LSTAR kiln installs: offset 0xc00 is no vsyscall entry. */
#define PVM_VSYSCALL_PAGE 0xffffffffff600000ULL
#define PVM_TRAP_LSTAR (PVM_VSYSCALL_PAGE + 0xc00)

struct pvm_trap_pte {
	gpa_t pte_gpa;   /* the vsyscall PTE that now points at PVM_TRAP_GPA */
	uint64_t orig;   /* its value before */
};

/* The PTE value of the armed trap: PVM_TRAP_GPA, present, user, accessed, executable, read-only. */
uint64_t pvm_trap_pte_value(void);

/*
 * Point the vsyscall page's 4 KiB PTE (found through pg) at PVM_TRAP_GPA.
 * 0 (also when already armed); -ENOENT not mapped as vsyscall=emulate maps it;
 * -EAGAIN the guest changed the entry meanwhile; -ENXIO page tables outside RAM.
 */
int pvm_trap_arm(const struct guest_mem *m, const struct pvm_paging *pg, struct pvm_trap_pte *out);

enum pvm_trap_verdict {
	PVM_TRAP_NONE,     /* not a trap-page exit */
	PVM_TRAP_SYSCALL,  /* a user syscall landed on the trap: complete it */
	PVM_TRAP_FAULT,    /* a user fetch from the vsyscall page otherwise: give the guest its #PF */
};

/*
 * Classify an emulation failure. armed: the PTE points at the trap;
 * installed: this vCPU's LSTAR is PVM_TRAP_LSTAR. Uses regs, sregs, FMASK.
 */
enum pvm_trap_verdict pvm_trap_classify(const struct pvm_cpu *cpu, bool armed, bool installed);

/* Whether R11/RFLAGS at the trap are what a real SYSCALL leaves (see pvm_trap.c). */
bool pvm_syscall_flags_ok(uint64_t rflags, uint64_t r11, uint64_t fmask);

/* Complete the SYSCALL the host began: CPL0 CS/SS from STAR, RFLAGS from R11 and FMASK, RIP = lstar. */
void pvm_syscall_complete(struct pvm_cpu *cpu, uint64_t lstar);

/* #PF error code of a user instruction fetch from a present page (what the guest's NX vsyscall PTE gives). */
#define PVM_VSYSCALL_PF_ERR (X86_PF_P | X86_PF_U | X86_PF_I)

/* ---- Symbols and diagnostics (pvm_symbols.c) ---- */

struct pvm_sym {
	uint64_t addr;
	uint32_t name;  /* offset into names */
};

struct pvm_symtab {
	struct pvm_sym *syms;
	size_t n;
	char *names;
	size_t names_len;
};

#define PVM_MAX_SYMBOLS (1U << 22)

int pvm_symtab_load(struct pvm_symtab *t, const char *path);
void pvm_symtab_free(struct pvm_symtab *t);
/* Name of the text symbol containing addr (and the offset into it), or NULL. */
const char *pvm_symtab_lookup(const struct pvm_symtab *t, uint64_t addr, uint64_t *off);

/*
 * The one diagnostic line (without the "kiln: " prefix the logger adds):
 * "compat: cannot handle <reason> at RIP 0x... (CPL n): bytes xx xx ... [symbol]".
 * Returns snprintf's result.
 */
int pvm_format_diag(char *buf, size_t len, const char *reason, uint64_t rip, unsigned cpl, const uint8_t *bytes,
		    size_t n, const struct pvm_symtab *t);

/* ---- Host facts (pvm_host.c) ---- */

/* pvm_detect() against a file-system root ("" for the real one; tests pass a fake tree). */
bool pvm_detect_root(const char *root);

/* The kernel copies at most 127 characters of the clearcpuid= value (a 128-byte buffer with the NUL). */
#define PVM_CLEARCPUID_MAX 127

/* ---- The compat object (pvm_kvm.c) ---- */

/* Every vCPU ioctl goes through this, so tests can stand in for KVM. Returns the ioctl's result or -errno. */
typedef int (*pvm_ioctl_fn)(void *ctx, int fd, unsigned long req, void *arg);

/* Per vCPU, touched only by that vCPU's thread. */
struct pvm_vcpu_state {
	uint64_t guest_lstar;  /* what the guest last wrote to MSR_LSTAR */
	bool have_lstar;
	bool trap_installed;   /* the vCPU's real LSTAR is PVM_TRAP_LSTAR */
	uint32_t polls_left;   /* bound on pvm_vcpu_poll() retries */
	int64_t next_poll_ns;  /* CLOCK_MONOTONIC: no poll before this */
};

struct pvm_compat {
	struct vm *vm;
	pvm_ioctl_fn ioctl;
	void *ioctl_ctx;
	bool msr_filter;          /* KVM exits on the guest's LSTAR accesses */
	int64_t poll_interval_ns; /* least time between two polls of one vCPU (0: every exit) */
	pthread_mutex_t lock;     /* guards trap and warned_unarmed */
	atomic_bool armed;        /* the vsyscall PTE points at PVM_TRAP_GPA */
	struct pvm_trap_pte trap;
	bool warned_unarmed;
	unsigned nvcpus;
	struct pvm_vcpu_state *vcpus;
	struct pvm_symtab syms;
};

/* Polls per vCPU before pvm_vcpu_poll() gives up finishing the trap (each costs one or two ioctls). */
#define PVM_POLL_BUDGET (1U << 20)

/*
 * Least time between two LSTAR polls of a vCPU. Polling on every exit cost a
 * port-I/O-bound guest 1.76x the exit's own time on kvm_pvm (two ioctls per
 * exit, docs/benchmarks.md); a Linux guest writes LSTAR in syscall_init()
 * minutes (on kvm_pvm) before its first user-mode syscall, so a poll at most
 * once a millisecond still installs the trap in time.
 */
#define PVM_POLL_INTERVAL_NS 1000000

/* Replace the ioctl path (tests). */
void pvm_compat_set_ioctl(struct pvm_compat *c, pvm_ioctl_fn fn, void *ctx);

#endif
