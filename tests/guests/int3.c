/* int3: #BP at CPL0 arrives with RIP after the int3; #UD at CPL0 and at CPL3 arrives with RIP at the ud2. */
#include "lib.h"

struct hit {
	unsigned count;
	uint64_t rip, cs, rsp;
	unsigned cpl;       /* CPL the handler ran at */
	uint64_t kstack;    /* an address on the handler's stack */
};

static volatile struct hit bp, ud;
static uint64_t cpl0_int3_after, cpl0_ud2_at, cpl3_ud2_at, cpl3_rsp;

static void record(volatile struct hit *h, struct trap_frame *f)
{
	volatile char here;

	h->count++;
	h->rip = f->rip;
	h->cs = f->cs;
	h->rsp = f->rsp;
	h->cpl = current_cpl();
	h->kstack = (uint64_t)&here;
}

static void on_bp(struct trap_frame *f)
{
	record(&bp, f);
}

static void on_ud(struct trap_frame *f)
{
	record(&ud, f);
	f->rip += 2;   /* skip the ud2 */
}

/* Kept to a handful of instructions: CPL0 is emulated on kvm_pvm. */
void guest_cpl0(void)
{
	set_trap_handler(3, on_bp);
	set_trap_handler(6, on_ud);
	__asm__ volatile("leaq 1f(%%rip), %0\n\tint3\n1:" : "=r"(cpl0_int3_after) :: "memory");
	__asm__ volatile("leaq 1f(%%rip), %0\n1:\tud2" : "=r"(cpl0_ud2_at) :: "memory");
}

static bool on_kstack(uint64_t a)
{
	return a >= (uint64_t)bsp_kstack && a < (uint64_t)bsp_kstack_top;
}

void guest_main(void)
{
	if (bp.count != 1)
		fail("#BP handler ran %u times for one int3 at CPL0", bp.count);
	if (bp.rip != cpl0_int3_after)
		fail("#BP saved RIP %#lx, expected %#lx (after the int3)", bp.rip, cpl0_int3_after);
	if ((bp.cs & 3) != 0)
		fail("#BP saved CS %#lx, expected CPL0", bp.cs);
	if (ud.count != 1)
		fail("#UD handler ran %u times for one ud2 at CPL0", ud.count);
	if (ud.rip != cpl0_ud2_at)
		fail("#UD saved RIP %#lx, expected %#lx (the ud2)", ud.rip, cpl0_ud2_at);
	printf("cpl0: int3 -> #BP rip %#lx, ud2 -> #UD rip %#lx\n", bp.rip, ud.rip);

	/* At CPL3: the CPU switches to RSP0 from the TSS and the handler runs at CPL0. */
	__asm__ volatile("movq %%rsp, %1\n\tleaq 1f(%%rip), %0\n1:\tud2"
			 : "=&r"(cpl3_ud2_at), "=&r"(cpl3_rsp) :: "memory");
	if (ud.count != 2)
		fail("#UD handler ran %u times, expected 2 after a ud2 at CPL3", ud.count);
	if (ud.rip != cpl3_ud2_at)
		fail("#UD from CPL3 saved RIP %#lx, expected %#lx", ud.rip, cpl3_ud2_at);
	if ((ud.cs & 3) != 3)
		fail("#UD from CPL3 saved CS %#lx, expected RPL 3", ud.cs);
	if (ud.rsp != cpl3_rsp)
		fail("#UD from CPL3 saved RSP %#lx, expected %#lx", ud.rsp, cpl3_rsp);
	if (ud.cpl != 0 || !on_kstack(ud.kstack))
		fail("#UD handler from CPL3 ran at CPL%u on stack %#lx, not CPL0 on the TSS RSP0 stack",
		     ud.cpl, ud.kstack);
	printf("cpl3: ud2 -> #UD rip %#lx, handler at CPL0 on RSP0\n", ud.rip);
}
