/* Unit tests of the kvm_pvm compat layer: fixtures, host detection, command line, CPUID, symbols; runs every group. */
#include "pvm_test.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- Captured log: stands in for core/log.c ---- */

struct tlog {
	unsigned count[LOG_DEBUG + 1];
	char last[1024];
};

static struct tlog *tlog(void)
{
	/* Test-only state: the test process is single-threaded. */
	static struct tlog l;
	return &l;
}

void log_set_level(enum log_level lvl) { (void)lvl; }
enum log_level log_get_level(void) { return LOG_DEBUG; }

static void tlog_v(enum log_level lvl, const char *fmt, va_list ap)
{
	if ((unsigned)lvl <= LOG_DEBUG)
		tlog()->count[lvl]++;
	vsnprintf(tlog()->last, sizeof(tlog()->last), fmt, ap);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tlog_v(lvl, fmt, ap);
	va_end(ap);
}

/* log_err() and friends call log_at() (they pass the source position). */
void log_at(enum log_level lvl, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	(void)file;
	(void)line;
	va_start(ap, fmt);
	tlog_v(lvl, fmt, ap);
	va_end(ap);
}

void tlog_reset(void) { memset(tlog(), 0, sizeof(struct tlog)); }
unsigned tlog_count(enum log_level lvl) { return tlog()->count[lvl]; }
const char *tlog_last(void) { return tlog()->last; }

/* ---- Page-table fixture ---- */

void *gp(struct pt *p, gpa_t gpa, size_t len)
{
	void *h = mem_gpa(&p->mem, gpa, len);

	assert_non_null(h);
	return h;
}

static gpa_t pt_alloc(struct pt *p)
{
	gpa_t t = p->next;

	assert_true(t + 4096 <= T_TABLES_END);
	p->next += 4096;
	memset(gp(p, t, 4096), 0, 4096);
	return t;
}

void pt_init(struct pt *p)
{
	memset(p, 0, sizeof(*p));
	assert_int_equal(mem_init(&p->mem, T_RAM, MEM_BACKING_MEMFD), 0);
	p->next = T_TABLES;
	p->cr3 = pt_alloc(p);
}

void pt_fini(struct pt *p)
{
	mem_destroy(&p->mem);
}

void pt_map(struct pt *p, uint64_t va, gpa_t pa, unsigned level, uint64_t leaf_flags, uint64_t upper_flags)
{
	gpa_t table = p->cr3;

	for (unsigned lvl = 4; lvl > level; lvl--) {
		uint64_t *e = gp(p, table + ((va >> (12 + 9 * (lvl - 1))) & 511) * 8, 8);

		if (!(*e & X86_PTE_P))
			*e = pt_alloc(p) | upper_flags;
		table = *e & X86_PTE_ADDR;
	}
	*(uint64_t *)gp(p, table + ((va >> (12 + 9 * (level - 1))) & 511) * 8, 8) =
		pa | leaf_flags | (level > 1 ? X86_PTE_PS : 0);
}

uint64_t *pt_entry(struct pt *p, uint64_t va, unsigned level)
{
	gpa_t table = p->cr3;

	for (unsigned lvl = 4;; lvl--) {
		uint64_t *e = gp(p, table + ((va >> (12 + 9 * (lvl - 1))) & 511) * 8, 8);

		if (lvl == level)
			return e;
		table = *e & X86_PTE_ADDR;
	}
}

void cpu_init64(struct pvm_cpu *c, const struct pt *p)
{
	memset(c, 0, sizeof(*c));
	c->sregs.cr0 = 0x80000001ULL | X86_CR0_WP | X86_CR0_NE | X86_CR0_MP;
	c->sregs.cr3 = p->cr3;
	c->sregs.cr4 = 0x20 /* PAE */ | X86_CR4_OSFXSR;
	c->sregs.efer = 0x100 /* LME */ | X86_EFER_LMA | X86_EFER_SCE | X86_EFER_NXE;
	pvm_flat_code64(&c->sregs.cs, 0x10, 0);
	pvm_flat_data(&c->sregs.ss, 0x18, 0);
	pvm_flat_data(&c->sregs.ds, 0x18, 0);
	pvm_flat_data(&c->sregs.es, 0x18, 0);
	pvm_flat_data(&c->sregs.fs, 0, 0);
	pvm_flat_data(&c->sregs.gs, 0, 0);
	c->sregs.ldt.unusable = 1;
	c->regs.rflags = 0x2;
	c->fpu.mxcsr = 0x1f80;
	c->fpu.fcw = 0x37f;
}

void cpu_user(struct pvm_cpu *c)
{
	pvm_flat_code64(&c->sregs.cs, 0x33, 3);
	pvm_flat_data(&c->sregs.ss, 0x2b, 3);
}

void vmem_ops(struct pvm_vmem *vm, struct pvm_mem_ops *ops, struct pt *p, const struct pvm_cpu *c)
{
	vm->mem = &p->mem;
	pvm_paging_from_sregs(&c->sregs, &vm->pg);
	ops->access = pvm_vmem_access;
	ops->ctx = vm;
}

void gdt_init(struct pt *p, struct pvm_cpu *c)
{
	uint64_t *g = gp(p, T_GDT, 8 * 8);

	memset(g, 0, 8 * 8);
	g[2] = 0x00af9b000000ffffULL;  /* 0x10 kernel code, L=1 */
	g[3] = 0x00cf93000000ffffULL;  /* 0x18 kernel data */
	g[5] = 0x00cff3000000ffffULL;  /* 0x28 user data, DPL3 */
	g[6] = 0x00affb000000ffffULL;  /* 0x30 user code, L=1, DPL3 */
	c->sregs.gdt.base = T_GDT;
	c->sregs.gdt.limit = 8 * 8 - 1;
}

/* ---- pvm_detect on fake sysfs/proc trees ---- */

struct tree {
	char root[64];
};

static void tree_init(struct tree *t)
{
	strcpy(t->root, "/tmp/kiln-pvm-XXXXXX");
	assert_non_null(mkdtemp(t->root));
}

static void tree_file(struct tree *t, const char *rel, const char *content)
{
	char path[256], cmd[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t->root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	assert_int_equal(system(cmd), 0);
	if (!content) {  /* a directory */
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
		assert_int_equal(system(cmd), 0);
		return;
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void tree_fini(struct tree *t)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->root);
	assert_int_equal(system(cmd), 0);
}

static void test_detect_empty(void **state)
{
	struct tree t;

	(void)state;
	tree_init(&t);
	assert_false(pvm_detect_root(t.root));
	tree_file(&t, "sys/module/kvm/parameters", NULL);
	assert_false(pvm_detect_root(t.root));
	tree_fini(&t);
}

static void test_detect_builtin_pvm(void **state)
{
	struct tree t;

	(void)state;
	tree_init(&t);
	/* This machine's shape: built-in kvm_pvm (no initstate), kvm, no vendor module. */
	tree_file(&t, "sys/module/kvm/parameters", NULL);
	tree_file(&t, "sys/module/kvm_pvm/parameters/pvm_native", "N\n");
	assert_true(pvm_detect_root(t.root));
	/* A live kvm_intel module owns /dev/kvm. */
	tree_file(&t, "sys/module/kvm_intel/initstate", "live\n");
	assert_false(pvm_detect_root(t.root));
	tree_fini(&t);
}

static void test_detect_module_states(void **state)
{
	struct tree t;

	(void)state;
	tree_init(&t);
	tree_file(&t, "sys/module/kvm_pvm/initstate", "coming\n");
	assert_false(pvm_detect_root(t.root));
	tree_file(&t, "sys/module/kvm_pvm/initstate", "live\n");
	assert_true(pvm_detect_root(t.root));
	/* A kvm_amd module that failed to initialise does not count. */
	tree_file(&t, "sys/module/kvm_amd/initstate", "going\n");
	assert_true(pvm_detect_root(t.root));
	tree_file(&t, "sys/module/kvm_amd/initstate", "live\n");
	assert_false(pvm_detect_root(t.root));
	tree_fini(&t);
}

static void test_detect_builtin_vendor(void **state)
{
	struct tree t;

	(void)state;
	tree_init(&t);
	tree_file(&t, "sys/module/kvm_pvm/parameters", NULL);
	tree_file(&t, "sys/module/kvm_amd/parameters", NULL);
	/* Built-in kvm_amd on a CPU without svm could not have registered. */
	tree_file(&t, "proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae sse2 hypervisor\n\n");
	assert_true(pvm_detect_root(t.root));
	tree_file(&t, "proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme svm sse2\n\n");
	assert_false(pvm_detect_root(t.root));
	/* "svm_lock" is not "svm". */
	tree_file(&t, "proc/cpuinfo", "flags\t\t: fpu svm_lock vmx_x\n");
	assert_true(pvm_detect_root(t.root));
	tree_fini(&t);
}

/* ---- Command line ---- */

static void test_cmdline_extra(void **state)
{
	const char *s = pvm_cmdline_extra(), *v, *end;
	static const char *const must[] = { "308", "151", "59", "141", "131", "590", "534" };
	char val[256];

	(void)state;
	assert_non_null(s);
	assert_true(s[0] != ' ');
	assert_non_null(strstr(s, "noxsave"));
	assert_non_null(strstr(s, "vsyscall=emulate"));
	/* kiln boots with ACPI, PCI and SMP on. */
	assert_null(strstr(s, "acpi=off"));
	assert_null(strstr(s, "pci=off"));
	assert_null(strstr(s, "nosmp"));
	v = strstr(s, "clearcpuid=");
	assert_non_null(v);
	v += strlen("clearcpuid=");
	end = v + strcspn(v, " ");
	assert_true(end - v <= PVM_CLEARCPUID_MAX);
	assert_true(end - v < (long)sizeof(val) - 2);
	/* Match whole numbers: ",N," inside ",<value>,". */
	snprintf(val, sizeof(val), ",%.*s,", (int)(end - v), v);
	for (size_t i = 0; i < ARRAY_SIZE(must); i++) {
		char needle[16];

		snprintf(needle, sizeof(needle), ",%s,", must[i]);
		assert_non_null(strstr(val, needle));
	}
	/* Only digits and commas. */
	for (const char *q = v; q < end; q++)
		assert_true((*q >= '0' && *q <= '9') || *q == ',');
	/* The whole string fits the boot protocol's command-line space with room to spare. */
	assert_true(strlen(s) < 512);
}

/* ---- CPUID ---- */

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	fail();
	return NULL;
}

static void test_cpuid_mask(void **state)
{
	static const uint32_t fns[][2] = { { 0, 0 }, { 1, 0 }, { 7, 0 }, { 7, 1 }, { 0xd, 0 }, { 0xd, 1 },
					   { 0x80000001, 0 }, { 0x80000008, 0 }, { 0x40000001, 0 } };
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + ARRAY_SIZE(fns) * sizeof(c->entries[0]));
	struct kvm_cpuid_entry2 *e;

	(void)state;
	assert_non_null(c);
	c->nent = ARRAY_SIZE(fns);
	for (size_t i = 0; i < ARRAY_SIZE(fns); i++)
		c->entries[i] = (struct kvm_cpuid_entry2){ .function = fns[i][0], .index = fns[i][1], .eax = ~0u,
							   .ebx = ~0u, .ecx = ~0u, .edx = ~0u };
	pvm_mask_cpuid(c);
	e = find(c, 1, 0);
	for (unsigned b = 0; b < 32; b++) {
		bool hidden = b == 1 || b == 3 || b == 9 || b == 12 || b == 13 || b == 17 || b == 19 || b == 20 ||
			      b == 22 || b == 23 || b == 25 || b == 26 || b == 27 || b == 28 || b == 29;
		assert_int_equal(!(e->ecx & (1u << b)), hidden);
	}
	assert_int_equal(e->edx, ~0u);          /* SSE/SSE2 and friends stay */
	e = find(c, 7, 0);
	assert_false(e->ebx & (1u << 20));      /* smap */
	assert_false(e->ebx & (1u << 9));       /* erms */
	assert_false(e->ebx & (1u << 3));       /* bmi1 */
	assert_true(e->ebx & (1u << 0));        /* fsgsbase runs fine */
	assert_true(e->ebx & (1u << 23));       /* clflushopt runs fine */
	assert_false(e->ecx & (1u << 22));      /* rdpid */
	assert_false(e->edx & (1u << 4));       /* fsrm */
	assert_false(e->edx & (1u << 14));      /* serialize */
	assert_int_equal(find(c, 7, 1)->eax, 0);
	assert_int_equal(find(c, 7, 1)->ebx, ~0u);
	e = find(c, 0xd, 1);
	assert_true(!e->eax && !e->ebx && !e->ecx && !e->edx);
	e = find(c, 0x80000001, 0);
	assert_false(e->edx & (1u << 27));      /* rdtscp */
	assert_true(e->edx & (1u << 29));       /* long mode */
	assert_true(e->edx & (1u << 26));       /* 1 GiB pages: the walker handles them */
	assert_false(e->ecx & (1u << 29));      /* mwaitx */
	assert_true(e->ecx & (1u << 5));        /* lzcnt runs fine */
	assert_false(find(c, 0x80000008, 0)->ebx & 1);
	assert_int_equal(find(c, 0, 0)->ebx, ~0u);
	e = find(c, 0x40000001, 0);
	assert_int_equal(e->eax, ~(uint32_t)((1u << 7) | (1u << 11) | (1u << 13)));  /* no VMCALL-based PV features */
	assert_int_equal(e->ebx, ~0u);
	pvm_mask_cpuid(NULL);
	c->nent = 0;
	pvm_mask_cpuid(c);
	free(c);
}

/* ---- Symbols and the diagnostic line ---- */

static void test_symbols_and_diag(void **state)
{
	char path[] = "/tmp/kiln-map-XXXXXX", line[400];
	static const uint8_t bytes[] = { 0x0f, 0x05, 0x90 };
	struct pvm_symtab t = { 0 };
	uint64_t off = 0;
	int fd;
	FILE *f;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fprintf(f, "ffffffff81000000 T _text\n"
		   "ffffffff81000100 t helper\n"
		   "ffffffff82000000 D some_data\n"        /* data: skipped */
		   "garbage line\n"
		   "ffffffff81000040 T startup_64\n"       /* out of order: sorted on load */
		   "ffffffff81c00080 T entry_SYSCALL_64\n"
		   "ffffffff81c00100 W weak_fn\n");
	for (int i = 0; i < 600; i++)
		fputc('x', f);                            /* an over-long line is skipped */
	fputc('\n', f);
	fclose(f);
	assert_int_equal(pvm_symtab_load(&t, path), 0);
	assert_int_equal(t.n, 5);
	assert_string_equal(pvm_symtab_lookup(&t, 0xffffffff81000050ULL, &off), "startup_64");
	assert_int_equal(off, 0x10);
	assert_string_equal(pvm_symtab_lookup(&t, 0xffffffff81000100ULL, &off), "helper");
	assert_int_equal(off, 0);
	assert_string_equal(pvm_symtab_lookup(&t, 0xffffffff81c00085ULL, &off), "entry_SYSCALL_64");
	assert_null(pvm_symtab_lookup(&t, 0x400000, &off));                  /* below every symbol */
	assert_null(pvm_symtab_lookup(&t, 0xffffffff81c00100ULL + (2ULL << 20), &off)); /* far past the last */

	pvm_format_diag(line, sizeof(line), "unknown instruction", 0xffffffff81c00085ULL, 0, bytes, 3, &t);
	assert_string_equal(line, "compat: cannot handle unknown instruction at RIP 0xffffffff81c00085 (CPL 0): "
				  "bytes 0f 05 90 [entry_SYSCALL_64+0x5]");
	pvm_format_diag(line, sizeof(line), "x", 0x401000, 3, bytes, 0, NULL);
	assert_string_equal(line, "compat: cannot handle x at RIP 0x401000 (CPL 3): bytes unavailable [symbol unknown]");
	pvm_symtab_free(&t);
	assert_int_equal(pvm_symtab_load(&t, "/nonexistent/System.map"), -ENOENT);
	unlink(path);
}

static const struct CMUnitTest host_tests[] = {
	cmocka_unit_test(test_detect_empty),
	cmocka_unit_test(test_detect_builtin_pvm),
	cmocka_unit_test(test_detect_module_states),
	cmocka_unit_test(test_detect_builtin_vendor),
	cmocka_unit_test(test_cmdline_extra),
	cmocka_unit_test(test_cpuid_mask),
	cmocka_unit_test(test_symbols_and_diag),
};

int main(void)
{
	int failed = 0;

	failed += _cmocka_run_group_tests("pvm_host", host_tests, ARRAY_SIZE(host_tests), NULL, NULL);
	failed += _cmocka_run_group_tests("pvm_decode", pvm_decode_tests, pvm_decode_ntests, NULL, NULL);
	failed += _cmocka_run_group_tests("pvm_walk", pvm_walk_tests, pvm_walk_ntests, NULL, NULL);
	failed += _cmocka_run_group_tests("pvm_emulate", pvm_emul_tests, pvm_emul_ntests, NULL, NULL);
	failed += _cmocka_run_group_tests("pvm_trap", pvm_trap_tests, pvm_trap_ntests, NULL, NULL);
	failed += _cmocka_run_group_tests("pvm_glue", pvm_glue_tests, pvm_glue_ntests, NULL, NULL);
	return failed ? 1 : 0;
}
