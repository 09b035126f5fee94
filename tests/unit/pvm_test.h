/* Shared fixtures of the kvm_pvm compat unit tests: memfd guest RAM with synthetic page tables, a captured log. */
#ifndef KILN_TEST_PVM_H
#define KILN_TEST_PVM_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "compat/pvm_internal.h"
#include "core/log.h"

/* Guest RAM of the fixtures and where page tables are allocated from. */
#define T_RAM (16 * MiB)
#define T_TABLES 0x100000ULL   /* [1 MiB, 2 MiB): page-table pages */
#define T_TABLES_END 0x200000ULL

struct pt {
	struct guest_mem mem;
	gpa_t next;   /* next free table page */
	gpa_t cr3;
};

/* memfd-backed RAM of T_RAM bytes and an empty PML4. */
void pt_init(struct pt *p);
void pt_fini(struct pt *p);
/*
 * Map va -> pa with a page of the given level (1: 4 KiB, 2: 2 MiB, 3: 1 GiB).
 * Missing tables are created with upper_flags; existing ones are kept.
 */
void pt_map(struct pt *p, uint64_t va, gpa_t pa, unsigned level, uint64_t leaf_flags, uint64_t upper_flags);
/* Host pointer to the entry for va at `level` (4 = PML4 ... 1 = PTE); the path must exist. */
uint64_t *pt_entry(struct pt *p, uint64_t va, unsigned level);
/* Host pointer to guest RAM (asserts the range is RAM). */
void *gp(struct pt *p, gpa_t gpa, size_t len);

/* A 64-bit CPU at CPL0 on p's page tables: flat CS 0x10 / SS 0x18, CR0.PG|PE|WP|NE|MP, EFER LME|LMA|SCE|NXE. */
void cpu_init64(struct pvm_cpu *c, const struct pt *p);
/* Switch c to CPL3 with the user selectors 0x33 / 0x2b. */
void cpu_user(struct pvm_cpu *c);
/* Memory ops over p with c's paging. */
void vmem_ops(struct pvm_vmem *vm, struct pvm_mem_ops *ops, struct pt *p, const struct pvm_cpu *c);

/* A GDT at GPA/VA T_GDT (identity-mapped) with null, -, kernel code 0x10, kernel data 0x18, -, user data 0x2b, user code 0x33. */
#define T_GDT 0x3000ULL
void gdt_init(struct pt *p, struct pvm_cpu *c);

/* Captured log (log_msg is stubbed by the test binary). */
void tlog_reset(void);
unsigned tlog_count(enum log_level lvl);
const char *tlog_last(void);

/* The test groups. */
extern const struct CMUnitTest pvm_decode_tests[];
extern const size_t pvm_decode_ntests;
extern const struct CMUnitTest pvm_walk_tests[];
extern const size_t pvm_walk_ntests;
extern const struct CMUnitTest pvm_emul_tests[];
extern const size_t pvm_emul_ntests;
extern const struct CMUnitTest pvm_glue_tests[];
extern const size_t pvm_glue_ntests;
extern const struct CMUnitTest pvm_trap_tests[];
extern const size_t pvm_trap_ntests;

#endif
