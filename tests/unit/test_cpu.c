/* Unit tests for x86 vCPU setup: CPUID topology patching and boot-entry register state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "arch/x86/cpu.h"
#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"

static struct kvm_cpuid2 *fake_cpuid(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 8 * sizeof(c->entries[0]));
	c->nent = 6;
	c->entries[0] = (struct kvm_cpuid_entry2){ .function = 0, .eax = 0xb, .ebx = 0x756e6547 };
	c->entries[1] = (struct kvm_cpuid_entry2){ .function = 1, .ebx = 0xff0800, .ecx = 0x1, .edx = 1u << 28 };
	c->entries[2] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX };
	c->entries[3] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX };
	c->entries[4] = (struct kvm_cpuid_entry2){ .function = 0xb, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX };
	c->entries[5] = (struct kvm_cpuid_entry2){ .function = 4, .index = 3, .eax = (3 << 5) | 0x1,
						    .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX };
	return c;
}

static void test_cpuid_apic_ids(void **state)
{
	(void)state;
	for (unsigned n = 1; n <= 8; n *= 2) {
		for (unsigned id = 0; id < n; id++) {
			struct kvm_cpuid2 *c = fake_cpuid();
			struct kvm_cpuid_entry2 *e;

			x86_cpuid_patch(c, id, n);
			e = x86_cpuid_find(c, 1, 0);
			assert_int_equal(e->ebx >> 24, id);
			assert_int_equal((e->ebx >> 16) & 0xff, n);
			assert_int_equal(e->ebx & 0xffff, 0x0800); /* CLFLUSH line size kept */
			assert_true(e->ecx & (1u << 31));          /* hypervisor bit */
			assert_int_equal(!!(e->edx & (1u << 28)), n > 1);
			e = x86_cpuid_find(c, 0xb, 0);
			assert_int_equal(e->edx, id);
			assert_int_equal(e->ebx, 1);
			assert_int_equal((e->ecx >> 8) & 0xff, 1);
			e = x86_cpuid_find(c, 0xb, 1);
			assert_int_equal(e->edx, id);
			assert_int_equal(e->ebx, n);
			assert_int_equal((e->ecx >> 8) & 0xff, 2);
			assert_true((1u << e->eax) >= n);          /* shift covers every id */
			e = x86_cpuid_find(c, 0xb, 2);
			assert_int_equal((e->ecx >> 8) & 0xff, 0); /* end of levels */
			e = x86_cpuid_find(c, 4, 3);
			assert_int_equal(e->eax >> 26, n - 1);
			assert_int_equal(((e->eax >> 14) & 0xfff), n - 1);
			free(c);
		}
	}
}

static void test_cpuid_find(void **state)
{
	struct kvm_cpuid2 *c = fake_cpuid();
	(void)state;
	assert_non_null(x86_cpuid_find(c, 0, 7)); /* index ignored without SIGNIFCANT_INDEX */
	assert_null(x86_cpuid_find(c, 0xb, 3));
	assert_null(x86_cpuid_find(c, 0x80000001, 0));
	free(c);
}

static void test_boot_bzimage_regs(void **state)
{
	struct boot_result b = { .kind = BOOT_BZIMAGE, .entry = 0x100200, .params = X86_ZERO_PAGE_GPA };
	struct kvm_sregs s;
	struct kvm_regs r;
	(void)state;
	memset(&s, 0, sizeof(s));
	x86_boot_sregs(&s, &b);
	x86_boot_regs(&r, &b);
	assert_int_equal(r.rip, 0x100200);
	assert_int_equal(r.rsi, X86_ZERO_PAGE_GPA);
	assert_int_equal(r.rflags, 2);
	assert_true(s.cr0 & 1);
	assert_true(s.cr0 & (1u << 31));
	assert_true(s.cr4 & (1u << 5));
	assert_int_equal(s.efer & 0x500, 0x500);
	assert_int_equal(s.cr3, X86_PML4_GPA);
	assert_int_equal(s.cs.l, 1);
	assert_int_equal(s.cs.db, 0);
	/* Linux boot protocol: CS = __BOOT_CS (0x10), DS/ES/SS = __BOOT_DS (0x18) */
	assert_int_equal(s.cs.selector, 0x10);
	assert_int_equal(s.ds.selector, 0x18);
	assert_int_equal(s.ss.selector, 0x18);
	assert_int_equal(s.gdt.base, X86_GDT_GPA);
	assert_int_equal(s.gdt.limit, GDT_ENTRIES * 8 - 1);
}

static void test_boot_pvh_regs(void **state)
{
	struct boot_result b = { .kind = BOOT_PVH, .entry = 0x1000000, .params = X86_PVH_START_GPA };
	struct kvm_sregs s;
	struct kvm_regs r;
	(void)state;
	memset(&s, 0, sizeof(s));
	x86_boot_sregs(&s, &b);
	x86_boot_regs(&r, &b);
	assert_int_equal(r.rip, 0x1000000);
	assert_int_equal(r.rbx, X86_PVH_START_GPA);
	assert_int_equal(s.cr0 & 0x80000001, 1); /* PE on, PG off */
	assert_int_equal(s.efer, 0);
	assert_int_equal(s.cs.db, 1);
	assert_int_equal(s.cs.l, 0);
	assert_int_equal(s.cs.limit, 0xffffffff);
	assert_int_equal(s.cs.base, 0);
	assert_int_equal(s.cs.selector, GDT_SEL_CODE32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cpuid_apic_ids),
		cmocka_unit_test(test_cpuid_find),
		cmocka_unit_test(test_boot_bzimage_regs),
		cmocka_unit_test(test_boot_pvh_regs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
