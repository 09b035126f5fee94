/* PVH entry, 32->64-bit switch, AP trampoline, user-mode drop and exception stubs for kiln's test guests. */

#define SEL_KCODE64 0x08
#define SEL_KDATA   0x10
#define SEL_KCODE32 0x18
#define SEL_UDATA   0x20
#define SEL_UCODE64 0x28

#define CR0_PE 0x00000001
#define CR0_ET 0x00000010
#define CR0_NE 0x00000020
#define CR0_PG 0x80000000
#define CR4_PAE 0x20
#define MSR_EFER 0xc0000080
#define EFER_LME 0x100

#define SMP_MAX_CPUS 32
#define AP_STACK_SHIFT 13            /* 8 KiB per AP */

/* Page-table entry bits (Intel SDM Vol. 3A §4.5). */
#define PTE_P   0x01
#define PTE_RW  0x02
#define PTE_US  0x04                 /* user-accessible: the tests run at CPL3 */
#define PTE_PWT 0x08
#define PTE_PCD 0x10
#define PTE_PS  0x80
#define PDE_WB  (PTE_P | PTE_RW | PTE_US | PTE_PS)
#define PDE_UC  (PDE_WB | PTE_PWT | PTE_PCD)
#define TABLE   (PTE_P | PTE_RW | PTE_US)

/*
 * XEN_ELFNOTE_PHYS32_ENTRY (type 18): the 32-bit physical entry point, as an
 * 8-byte value like Linux's (QEMU reads 8 bytes from a 64-bit ELF).
 */
	.section .note.Xen, "a", @note
	.balign 4
	.long 2f - 1f
	.long 4f - 3f
	.long 18
1:	.asciz "Xen"
2:	.balign 4
3:	.quad _start32
4:	.balign 4

/*
 * PVH entry: 32-bit protected mode, paging off, EBX = struct hvm_start_info.
 * The APs arrive at ap_entry32 from the real-mode trampoline below.
 */
	.section .text.entry, "ax"
	.code32
	.globl _start32
_start32:
	cli
	cld
	movl %ebx, boot_info_pa
	xorl %esi, %esi              /* ESI = 0: BSP */
	jmp enter_long_mode

	.globl ap_entry32
ap_entry32:
	/* DS still has the trampoline's real-mode base; the GDT is ours already. */
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl $1, %esi                /* ESI = 1: AP */

enter_long_mode:
	lgdtl gdt_ptr                /* kiln's GDTR/IDTR are not valid for the guest */
	ljmpl $SEL_KCODE32, $1f
1:	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl %eax, %fs
	movl %eax, %gs
	movl %cr4, %eax
	orl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	rdmsr
	orl $EFER_LME, %eax
	wrmsr
	/* A full CR0: also clears CD/NW, which an AP has set after INIT. */
	movl $(CR0_PG | CR0_NE | CR0_ET | CR0_PE), %eax
	movl %eax, %cr0
	ljmpl $SEL_KCODE64, $long_mode

	.code64
long_mode:
	movl $SEL_KDATA, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	testl %esi, %esi
	jnz ap_long_mode
	leaq bsp_kstack_top(%rip), %rsp
	movl boot_info_pa(%rip), %edi
	call lib_start               /* does not return */
	jmp halt_forever

ap_long_mode:
	lidt idt_ptr(%rip)
	movl $1, %eax
	lock xaddl %eax, ap_stack_next(%rip)
	cmpl $SMP_MAX_CPUS, %eax
	jae halt_forever
	incl %eax
	shlq $AP_STACK_SHIFT, %rax
	leaq ap_stacks(%rip), %rsp
	addq %rax, %rsp
	call ap_main
halt_forever:
	cli
	hlt
	jmp halt_forever

/*
 * enter_user(rip, rsp): iretq to 64-bit CPL3 code with IOPL=3 (port I/O
 * allowed from CPL3), IF=0.
 */
	.text
	.globl enter_user
enter_user:
	movl $(SEL_UDATA | 3), %eax
	movl %eax, %ds
	movl %eax, %es
	pushq $(SEL_UDATA | 3)
	pushq %rsi
	pushq $0x3002                /* IOPL=3, reserved bit 1 */
	pushq $(SEL_UCODE64 | 3)
	pushq %rdi
	iretq

/*
 * Real-mode AP trampoline, copied to SMP_TRAMPOLINE_PA (SIPI vector = its
 * page number): CS = vector << 8, IP = 0. Loads the guest's GDT (32-bit base)
 * and far-jumps to ap_entry32 in the image.
 */
	.code16
	.globl tramp_start, tramp_end
tramp_start:
	cli
	cld
	movw %cs, %ax
	movw %ax, %ds
	lgdtl (tramp_gdt_ptr - tramp_start)
	movl %cr0, %eax
	orl $CR0_PE, %eax
	movl %eax, %cr0
	ljmpl $SEL_KCODE32, $ap_entry32
	.balign 4
tramp_gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt
tramp_end:
	.code64

/* Exception stubs: push a dummy error code where the CPU pushes none, then the vector. */
	.macro ISR vec, has_err
	.balign 16
isr\vec:
	.if \has_err == 0
	pushq $0
	.endif
	pushq $\vec
	jmp isr_common
	.endm

	ISR 0,0;  ISR 1,0;  ISR 2,0;  ISR 3,0;  ISR 4,0;  ISR 5,0;  ISR 6,0;  ISR 7,0
	ISR 8,1;  ISR 9,0;  ISR 10,1; ISR 11,1; ISR 12,1; ISR 13,1; ISR 14,1; ISR 15,0
	ISR 16,0; ISR 17,1; ISR 18,0; ISR 19,0; ISR 20,0; ISR 21,1; ISR 22,0; ISR 23,0
	ISR 24,0; ISR 25,0; ISR 26,0; ISR 27,0; ISR 28,0; ISR 29,1; ISR 30,1; ISR 31,0

/* Layout must match struct trap_frame; RSP is 16-aligned at the call (SDM §6.14.2). */
isr_common:
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rbx
	pushq %rbp
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %r12
	pushq %r13
	pushq %r14
	pushq %r15
	movq %rsp, %rdi
	cld
	call trap_dispatch
	popq %r15
	popq %r14
	popq %r13
	popq %r12
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rbp
	popq %rbx
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp
	iretq

	.section .rodata
	.balign 8
	.globl isr_table
isr_table:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad isr\v
	.endr

/* GDT: flat descriptors (SDM Vol. 3A §3.4.5); the TSS slot is filled by lib_start. */
	.data
	.balign 16
	.globl gdt, gdt_end
gdt:
	.quad 0
	.quad 0x00af9b000000ffff     /* 0x08 code64, DPL0 */
	.quad 0x00cf93000000ffff     /* 0x10 data, DPL0 */
	.quad 0x00cf9b000000ffff     /* 0x18 code32, DPL0 (entry, trampoline) */
	.quad 0x00cff3000000ffff     /* 0x20 data, DPL3 */
	.quad 0x00affb000000ffff     /* 0x28 code64, DPL3 */
	.quad 0, 0                   /* 0x30 64-bit TSS (16 bytes) */
gdt_end:
	.balign 8
	.word 0, 0, 0
gdt_ptr:                             /* 6-byte pseudo-descriptor for 32-bit lgdt */
	.word gdt_end - gdt - 1
	.long gdt

	.balign 4
	.globl boot_info_pa
boot_info_pa:
	.long 0
ap_stack_next:
	.long 0

/*
 * Identity page tables, built at assembly time so the emulated CPL0 setup
 * does no loop: 0-3 GiB write-back, 3-5 GiB uncached (MMIO hole, LAPIC,
 * and the first GiB above 4 GiB), all 2 MiB pages, all user-accessible.
 */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + TABLE
	.fill 511, 8, 0
pdpt:
	.quad pd + TABLE
	.quad pd + 0x1000 + TABLE
	.quad pd + 0x2000 + TABLE
	.quad pd + 0x3000 + TABLE
	.quad pd + 0x4000 + TABLE
	.fill 507, 8, 0
pd:
	.set .Lpa, 0
	.rept 512 * 3
	.quad .Lpa + PDE_WB
	.set .Lpa, .Lpa + 0x200000
	.endr
	.rept 512 * 2
	.quad .Lpa + PDE_UC
	.set .Lpa, .Lpa + 0x200000
	.endr

	.bss
	.balign 16
	.globl bsp_kstack, bsp_kstack_top
bsp_kstack:
	.skip 16384
bsp_kstack_top:
	.balign 16
ap_stacks:
	.skip SMP_MAX_CPUS << AP_STACK_SHIFT

	.section .note.GNU-stack, "", @progbits
