/* Unit tests of the compat decoder: bytes -> kind, length and operands, prefixes, truncation, the 15-byte limit. */
#include "pvm_test.h"
#include <errno.h>
#include <string.h>

/* Decode a byte string literal; asserts success and returns the result. */
#define DEC(in, ...)                                                                      \
	do {                                                                              \
		static const uint8_t b_[] = { __VA_ARGS__ };                              \
		assert_int_equal(pvm_decode(b_, sizeof(b_), (in)), 0);                   \
	} while (0)
#define DEC_ERR(err, ...)                                                                 \
	do {                                                                              \
		static const uint8_t b_[] = { __VA_ARGS__ };                              \
		struct pvm_insn i_;                                                       \
		assert_int_equal(pvm_decode(b_, sizeof(b_), &i_), (err));                \
	} while (0)

static void expect(const struct pvm_insn *in, enum pvm_kind kind, unsigned len)
{
	assert_int_equal(in->kind, kind);
	assert_int_equal(in->len, len);
}

static void test_int3(void **state)
{
	struct pvm_insn in;

	(void)state;
	DEC(&in, 0xcc);
	expect(&in, PVM_INSN_INT3, 1);
	/* Trailing bytes (KVM passes what it fetched) are not part of it. */
	DEC(&in, 0xcc, 0x90, 0x90, 0x90);
	expect(&in, PVM_INSN_INT3, 1);
	DEC(&in, 0x2e, 0xcc);
	expect(&in, PVM_INSN_INT3, 2);
	assert_int_equal(in.seg, PVM_SEG_CS);
}

static void test_ud(void **state)
{
	struct pvm_insn in;

	(void)state;
	DEC(&in, 0x0f, 0x0b);
	expect(&in, PVM_INSN_UD, 2);
	DEC(&in, 0x0f, 0xb9, 0xc0);                 /* ud1 eax, eax */
	expect(&in, PVM_INSN_UD, 3);
	DEC(&in, 0x0f, 0xb9, 0x40, 0x10);           /* ud1 eax, [rax+0x10] */
	expect(&in, PVM_INSN_UD, 4);
	DEC(&in, 0x0f, 0xff, 0x04, 0x24);           /* ud0 eax, [rsp] */
	expect(&in, PVM_INSN_UD, 4);
}

static void test_fwait(void **state)
{
	struct pvm_insn in;

	(void)state;
	/* Bytes seen at fpu__drop+0x7e in pvm-probe/r8.loader.log. */
	DEC(&in, 0x9b, 0x65, 0x48, 0xc7, 0x05, 0x4d, 0x14, 0xfe, 0x7e, 0x00, 0x00, 0x00);
	expect(&in, PVM_INSN_FWAIT, 1);
}

static void test_iret(void **state)
{
	struct pvm_insn in;

	(void)state;
	DEC(&in, 0x48, 0xcf);
	expect(&in, PVM_INSN_IRET, 2);
	assert_int_equal(in.opsize, 8);
	DEC(&in, 0xcf);
	expect(&in, PVM_INSN_IRET, 1);
	assert_int_equal(in.opsize, 4);
	DEC(&in, 0x66, 0xcf);
	assert_int_equal(in.opsize, 2);
	/* REX followed by a legacy prefix is void (SDM Vol 2A 2.2.1). */
	DEC(&in, 0x48, 0x66, 0xcf);
	expect(&in, PVM_INSN_IRET, 3);
	assert_int_equal(in.rex, 0);
	assert_int_equal(in.opsize, 2);
	/* Of two REX prefixes, the one next to the opcode counts. */
	DEC(&in, 0x40, 0x48, 0xcf);
	assert_int_equal(in.opsize, 8);
	assert_int_equal(in.len, 3);
}

static void test_system_0f01(void **state)
{
	static const struct { uint8_t b; enum pvm_kind k; } t[] = {
		{ 0xf8, PVM_INSN_SWAPGS }, { 0xca, PVM_INSN_CLAC }, { 0xcb, PVM_INSN_STAC },
		{ 0xd0, PVM_INSN_XGETBV }, { 0xf9, PVM_INSN_RDTSCP }, { 0xc8, PVM_INSN_MONITOR },
		{ 0xc9, PVM_INSN_MWAIT },
	};
	struct pvm_insn in;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		const uint8_t b[] = { 0x0f, 0x01, t[i].b, 0x90 };
		const uint8_t f3[] = { 0xf3, 0x0f, 0x01, t[i].b };

		assert_int_equal(pvm_decode(b, sizeof(b), &in), 0);
		expect(&in, t[i].k, 3);
		/* With f3 these are other instructions (f3 0f 01 ca is FRED's ERETU). */
		assert_int_equal(pvm_decode(f3, sizeof(f3), &in), -EOPNOTSUPP);
	}
	DEC_ERR(-EOPNOTSUPP, 0x0f, 0x01, 0xc1);     /* vmcall */
	DEC_ERR(-EOPNOTSUPP, 0x0f, 0x01, 0x38);     /* invlpg [rax]: memory form */
}

static void test_sysret_sysenter(void **state)
{
	struct pvm_insn in;

	(void)state;
	DEC(&in, 0x48, 0x0f, 0x07);
	expect(&in, PVM_INSN_SYSRET, 3);
	assert_int_equal(in.opsize, 8);
	DEC(&in, 0x0f, 0x07);
	assert_int_equal(in.opsize, 4);
	DEC(&in, 0x0f, 0x34);
	expect(&in, PVM_INSN_SYSENTER, 2);
	DEC_ERR(-EOPNOTSUPP, 0x0f, 0x05);            /* syscall itself is not ours */
}

static void test_popcnt(void **state)
{
	struct pvm_insn in;

	(void)state;
	/* The insnprobe encoding: popcnt rax, rax. */
	DEC(&in, 0xf3, 0x48, 0x0f, 0xb8, 0xc0);
	expect(&in, PVM_INSN_POPCNT, 5);
	assert_int_equal(in.opsize, 8);
	assert_int_equal(in.modrm.mod, 3);
	assert_int_equal(in.modrm.reg, 0);
	assert_int_equal(in.modrm.rm, 0);
	/* popcnt r9d, r10d: REX.R and REX.B extend reg and rm. */
	DEC(&in, 0xf3, 0x45, 0x0f, 0xb8, 0xca);
	assert_int_equal(in.opsize, 4);
	assert_int_equal(in.modrm.reg, 9);
	assert_int_equal(in.modrm.rm, 10);
	/* popcnt r8, [rsp+8]: SIB, disp8. */
	DEC(&in, 0xf3, 0x4c, 0x0f, 0xb8, 0x44, 0x24, 0x08);
	expect(&in, PVM_INSN_POPCNT, 7);
	assert_int_equal(in.modrm.reg, 8);
	assert_true(in.modrm.has_base);
	assert_int_equal(in.modrm.base, 4);
	assert_false(in.modrm.has_index);
	assert_int_equal(in.modrm.disp, 8);
	/* popcnt cx, [rbx + r12*4 - 0x80000000] (66: 16-bit; REX.X; disp32). */
	DEC(&in, 0x66, 0xf3, 0x42, 0x0f, 0xb8, 0x8c, 0xa3, 0x00, 0x00, 0x00, 0x80);
	expect(&in, PVM_INSN_POPCNT, 11);
	assert_int_equal(in.opsize, 2);
	assert_int_equal(in.modrm.reg, 1);
	assert_true(in.modrm.has_index);
	assert_int_equal(in.modrm.index, 12);
	assert_int_equal(in.modrm.scale, 2);
	assert_int_equal(in.modrm.base, 3);
	assert_int_equal(in.modrm.disp, INT32_MIN);
	/* Without the mandatory f3 it is not popcnt; f2 after f3 wins. */
	DEC_ERR(-EOPNOTSUPP, 0x48, 0x0f, 0xb8, 0xc0);
	DEC_ERR(-EOPNOTSUPP, 0xf3, 0xf2, 0x0f, 0xb8, 0xc0);
}

static void test_mxcsr_fldcw(void **state)
{
	struct pvm_insn in;

	(void)state;
	DEC(&in, 0x0f, 0xae, 0x10);                  /* ldmxcsr [rax] */
	expect(&in, PVM_INSN_LDMXCSR, 3);
	assert_true(in.modrm.has_base);
	assert_int_equal(in.modrm.base, 0);
	DEC(&in, 0x0f, 0xae, 0x5d, 0xf8);            /* stmxcsr [rbp-8] */
	expect(&in, PVM_INSN_STMXCSR, 4);
	assert_int_equal(in.modrm.base, 5);
	assert_int_equal(in.modrm.disp, -8);
	DEC(&in, 0x0f, 0xae, 0x15, 0x10, 0x00, 0x00, 0x00); /* ldmxcsr [rip+0x10] */
	expect(&in, PVM_INSN_LDMXCSR, 7);
	assert_true(in.modrm.rip_rel);
	assert_false(in.modrm.has_base);
	assert_int_equal(in.modrm.disp, 0x10);
	DEC(&in, 0x0f, 0xae, 0x14, 0x25, 0x00, 0x10, 0x00, 0x00); /* ldmxcsr [0x1000]: SIB, no base, no index */
	expect(&in, PVM_INSN_LDMXCSR, 8);
	assert_false(in.modrm.has_base);
	assert_false(in.modrm.has_index);
	assert_int_equal(in.modrm.disp, 0x1000);
	DEC(&in, 0xd9, 0x28);                        /* fldcw [rax] */
	expect(&in, PVM_INSN_FLDCW, 2);
	DEC(&in, 0x65, 0xd9, 0x6d, 0x00);            /* fldcw gs:[rbp+0] */
	expect(&in, PVM_INSN_FLDCW, 4);
	assert_int_equal(in.seg, PVM_SEG_GS);
	DEC_ERR(-EOPNOTSUPP, 0xd9, 0xe8);            /* fld1 */
	DEC_ERR(-EOPNOTSUPP, 0xd9, 0x38);            /* fnstcw: runs on the host */
	DEC_ERR(-EOPNOTSUPP, 0x0f, 0xae, 0xe8);      /* lfence */
	DEC_ERR(-EOPNOTSUPP, 0x0f, 0xae, 0x00);      /* fxsave: runs on the host */
	DEC_ERR(-EOPNOTSUPP, 0x0f, 0xae, 0x38);      /* clflush */
	DEC_ERR(-EOPNOTSUPP, 0x66, 0x0f, 0xae, 0x30);/* clwb */
	DEC_ERR(-EOPNOTSUPP, 0xf3, 0x48, 0x0f, 0xae, 0xc0); /* rdfsbase */
}

static void test_xsave_cmpxchg16b(void **state)
{
	static const uint8_t xs[][3] = { { 0x0f, 0xae, 0x20 }, { 0x0f, 0xae, 0x28 }, { 0x0f, 0xae, 0x30 },
					 { 0x0f, 0xc7, 0x18 }, { 0x0f, 0xc7, 0x20 }, { 0x0f, 0xc7, 0x28 } };
	struct pvm_insn in;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(xs); i++) {
		assert_int_equal(pvm_decode(xs[i], 3, &in), 0);
		expect(&in, PVM_INSN_XSAVE, 3);
	}
	DEC(&in, 0x48, 0x0f, 0xae, 0x21);            /* xsave64 [rcx] */
	expect(&in, PVM_INSN_XSAVE, 4);
	DEC(&in, 0xf0, 0x48, 0x0f, 0xc7, 0x0e);      /* lock cmpxchg16b [rsi] */
	expect(&in, PVM_INSN_CMPXCHG16B, 5);
	assert_true(in.lock);
	DEC_ERR(-EOPNOTSUPP, 0xf0, 0x0f, 0xc7, 0x0e);/* cmpxchg8b */
	DEC_ERR(-EOPNOTSUPP, 0x48, 0x0f, 0xc7, 0xf0);/* rdrand */
}

static void test_intn_verx_lar_lsl(void **state)
{
	struct pvm_insn in;

	(void)state;
	DEC(&in, 0xcd, 0x80);
	expect(&in, PVM_INSN_INTN, 2);
	assert_int_equal(in.imm8, 0x80);
	DEC(&in, 0x0f, 0x00, 0x2e);                  /* verw [rsi] */
	expect(&in, PVM_INSN_VERW, 3);
	DEC(&in, 0x0f, 0x00, 0x2d, 0x00, 0x10, 0x00, 0x00); /* verw [rip+0x1000], Linux's MDS clear */
	expect(&in, PVM_INSN_VERW, 7);
	assert_true(in.modrm.rip_rel);
	DEC(&in, 0x0f, 0x00, 0xe0);                  /* verr ax */
	expect(&in, PVM_INSN_VERR, 3);
	assert_int_equal(in.modrm.mod, 3);
	DEC_ERR(-EOPNOTSUPP, 0x0f, 0x00, 0xd8);      /* ltr */
	DEC(&in, 0x0f, 0x02, 0xc0);
	expect(&in, PVM_INSN_LAR, 3);
	DEC(&in, 0x48, 0x0f, 0x03, 0xc0);
	expect(&in, PVM_INSN_LSL, 4);
}

static void test_truncated(void **state)
{
	struct pvm_insn in;

	(void)state;
	assert_int_equal(pvm_decode(NULL, 0, &in), -ENODATA);
	DEC_ERR(-ENODATA, 0x66);
	DEC_ERR(-ENODATA, 0x48);
	DEC_ERR(-ENODATA, 0x0f);
	DEC_ERR(-ENODATA, 0x0f, 0x01);
	DEC_ERR(-ENODATA, 0xcd);
	DEC_ERR(-ENODATA, 0xf3, 0x48, 0x0f, 0xb8);           /* ModRM missing */
	DEC_ERR(-ENODATA, 0xf3, 0x48, 0x0f, 0xb8, 0x04);     /* SIB missing */
	DEC_ERR(-ENODATA, 0x0f, 0xae, 0x15, 0x00, 0x00);     /* disp32 cut */
	DEC_ERR(-ENODATA, 0x0f, 0xae, 0x50);                 /* disp8 missing */
}

static void test_length_limit(void **state)
{
	uint8_t b[32];
	struct pvm_insn in;

	(void)state;
	/* 14 prefixes + int3 = 15 bytes: the longest legal instruction. */
	memset(b, 0x66, sizeof(b));
	b[14] = 0xcc;
	assert_int_equal(pvm_decode(b, 15, &in), 0);
	expect(&in, PVM_INSN_INT3, 15);
	/* The same with more bytes available still stops at 15. */
	assert_int_equal(pvm_decode(b, sizeof(b), &in), 0);
	/* 15 prefixes: the opcode would be byte 16. */
	memset(b, 0x66, sizeof(b));
	b[15] = 0xcc;
	assert_int_equal(pvm_decode(b, sizeof(b), &in), -E2BIG);
	assert_int_equal(pvm_decode(b, 15, &in), -E2BIG);
	/* 13 prefixes + 0f 0b = 15: fine; 14 + 0f 0b = 16: too long even if the buffer is. */
	memset(b, 0x2e, sizeof(b));
	b[13] = 0x0f;
	b[14] = 0x0b;
	assert_int_equal(pvm_decode(b, 15, &in), 0);
	expect(&in, PVM_INSN_UD, 15);
	memset(b, 0x2e, sizeof(b));
	b[14] = 0x0f;
	b[15] = 0x0b;
	assert_int_equal(pvm_decode(b, sizeof(b), &in), -E2BIG);
	/* A ModRM displacement crossing byte 15. */
	memset(b, 0x3e, sizeof(b));
	b[10] = 0x0f;
	b[11] = 0xae;
	b[12] = 0x15;  /* ldmxcsr [rip+disp32]: needs bytes 13..16 */
	assert_int_equal(pvm_decode(b, sizeof(b), &in), -E2BIG);
}

static void test_unknown(void **state)
{
	(void)state;
	DEC_ERR(-EOPNOTSUPP, 0x90);                          /* nop */
	DEC_ERR(-EOPNOTSUPP, 0xc4, 0xe2, 0xf8, 0xf2, 0xc0);  /* andn (VEX) */
	DEC_ERR(-EOPNOTSUPP, 0x66, 0x0f, 0xef, 0xc0);        /* pxor */
	DEC_ERR(-EOPNOTSUPP, 0x0f, 0xff - 1);                /* 0f fe */
	assert_string_equal(pvm_kind_name(PVM_INSN_IRET), "iret");
	assert_string_equal(pvm_kind_name((enum pvm_kind)999), "?");
}

const struct CMUnitTest pvm_decode_tests[] = {
	cmocka_unit_test(test_int3),
	cmocka_unit_test(test_ud),
	cmocka_unit_test(test_fwait),
	cmocka_unit_test(test_iret),
	cmocka_unit_test(test_system_0f01),
	cmocka_unit_test(test_sysret_sysenter),
	cmocka_unit_test(test_popcnt),
	cmocka_unit_test(test_mxcsr_fldcw),
	cmocka_unit_test(test_xsave_cmpxchg16b),
	cmocka_unit_test(test_intn_verx_lar_lsl),
	cmocka_unit_test(test_truncated),
	cmocka_unit_test(test_length_limit),
	cmocka_unit_test(test_unknown),
};
const size_t pvm_decode_ntests = ARRAY_SIZE(pvm_decode_tests);
