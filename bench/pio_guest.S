/*
 * Bench guest for kiln: NOUTS `out` instructions to an unclaimed port, then
 * ACPI S5 power-off. A PVH ELF (Xen PHYS32_ENTRY note): kiln enters it in
 * 32-bit protected mode, paging off (Xen docs/misc/pvh.pandoc), and the loop
 * runs right there at CPL0 — the same loop bench/pio_raw.c runs.
 * Build: as --32 --defsym NOUTS=N [--defsym IDLE=1]; ld -m elf_i386 -T
 * bench/pio_guest.ld (bench/lib.sh bench_pio_guest). IDLE=1: halt forever
 * with interrupts off instead of powering off (bench/memory-overhead.sh).
 */
	.set PIO_PORT, 0x510         /* unclaimed in kiln (QEMU's fw_cfg; not here) */
	.set ACPI_SLEEP_CTL, 0x3c0   /* src/arch/x86/layout.h X86_ACPI_SLEEP_CTL */
	.set SLP_S5_EN, (5 << 2) | 0x20  /* SLP_TYP=5 (\_S5), SLP_EN (ACPI 6.4 §4.8.3.7.1) */

	.code32
	.text
	.globl _start
_start:
	mov $NOUTS, %ecx
	mov $PIO_PORT, %dx
	test %ecx, %ecx
	jz 2f
1:	out %al, %dx
	dec %ecx
	jnz 1b
2:
.ifdef IDLE
	/* Memory-overhead bench: stay up, idle, until the VMM is killed. */
	cli
.else
	mov $ACPI_SLEEP_CTL, %dx
	mov $SLP_S5_EN, %al
	out %al, %dx
.endif
3:	hlt
	jmp 3b

	.section .note.Xen, "a", @note
	.balign 4
	.long 4, 4, 18               /* namesz "Xen\0", descsz, XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.balign 4
	.long _start
	.balign 4
