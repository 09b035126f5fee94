/* A small x86-64 decoder for exactly the instructions the kvm_pvm compat layer handles. */
#include <errno.h>
#include <string.h>
#include "compat/pvm_internal.h"

/*
 * 64-bit mode only: the compat layer runs Linux guests in long mode, and KVM's
 * own emulator handles everything else. Encoding rules are from Intel SDM Vol
 * 2A chapter 2 (prefixes 2.1.1, REX 2.2.1, ModRM/SIB 2.1.5 and 2.2.1.3-6).
 */

static const char *const kind_names[PVM_INSN_NKINDS] = {
	[PVM_INSN_UNKNOWN] = "unknown instruction",
	[PVM_INSN_INT3] = "int3",
	[PVM_INSN_UD] = "ud",
	[PVM_INSN_FWAIT] = "fwait",
	[PVM_INSN_IRET] = "iret",
	[PVM_INSN_SWAPGS] = "swapgs",
	[PVM_INSN_SYSRET] = "sysret",
	[PVM_INSN_CLAC] = "clac",
	[PVM_INSN_STAC] = "stac",
	[PVM_INSN_XGETBV] = "xgetbv",
	[PVM_INSN_RDTSCP] = "rdtscp",
	[PVM_INSN_POPCNT] = "popcnt",
	[PVM_INSN_LDMXCSR] = "ldmxcsr",
	[PVM_INSN_STMXCSR] = "stmxcsr",
	[PVM_INSN_XSAVE] = "xsave-family",
	[PVM_INSN_CMPXCHG16B] = "cmpxchg16b",
	[PVM_INSN_FLDCW] = "fldcw",
	[PVM_INSN_INTN] = "int n",
	[PVM_INSN_VERR] = "verr",
	[PVM_INSN_VERW] = "verw",
	[PVM_INSN_LAR] = "lar",
	[PVM_INSN_LSL] = "lsl",
	[PVM_INSN_SYSENTER] = "sysenter",
	[PVM_INSN_MONITOR] = "monitor",
	[PVM_INSN_MWAIT] = "mwait",
};

const char *pvm_kind_name(enum pvm_kind k)
{
	if ((unsigned)k >= PVM_INSN_NKINDS || !kind_names[k])
		return "?";
	return kind_names[k];
}

/* Are k more bytes available at p? The 15-byte limit wins over a short buffer. */
static int need(size_t p, size_t k, size_t n)
{
	if (p + k > X86_MAX_INSN_LEN)
		return -E2BIG;
	if (p + k > n)
		return -ENODATA;
	return 0;
}

#define REX_W 0x8
#define REX_R 0x4
#define REX_X 0x2
#define REX_B 0x1

/* ModRM, SIB and displacement at b[*pp] (SDM Vol 2A tables 2-2, 2-3 and 2.2.1.6 for RIP-relative). */
static int decode_modrm(const uint8_t *b, size_t n, size_t *pp, struct pvm_insn *in)
{
	struct pvm_modrm *m = &in->modrm;
	size_t p = *pp;
	unsigned rm, disp_bytes = 0;
	int r;

	if ((r = need(p, 1, n)))
		return r;
	m->present = true;
	m->mod = b[p] >> 6;
	m->reg = ((b[p] >> 3) & 7) | ((in->rex & REX_R) ? 8 : 0);
	rm = b[p] & 7;
	p++;
	if (m->mod == 3) {
		m->rm = rm | ((in->rex & REX_B) ? 8 : 0);
		*pp = p;
		return 0;
	}
	if (rm == 4) {
		uint8_t sib;

		if ((r = need(p, 1, n)))
			return r;
		sib = b[p++];
		m->scale = sib >> 6;
		m->index = ((sib >> 3) & 7) | ((in->rex & REX_X) ? 8 : 0);
		m->has_index = m->index != 4;  /* index 100b without REX.X means "none" */
		if ((sib & 7) == 5 && m->mod == 0) {
			disp_bytes = 4;          /* no base, disp32 */
		} else {
			m->has_base = true;
			m->base = (sib & 7) | ((in->rex & REX_B) ? 8 : 0);
		}
	} else if (rm == 5 && m->mod == 0) {
		m->rip_rel = true;
		disp_bytes = 4;
	} else {
		m->has_base = true;
		m->base = rm | ((in->rex & REX_B) ? 8 : 0);
	}
	if (m->mod == 1)
		disp_bytes = 1;
	else if (m->mod == 2)
		disp_bytes = 4;
	if (disp_bytes) {
		if ((r = need(p, disp_bytes, n)))
			return r;
		if (disp_bytes == 1) {
			m->disp = (int8_t)b[p];
		} else {
			uint32_t d;
			memcpy(&d, b + p, 4);
			m->disp = (int32_t)d;
		}
		p += disp_bytes;
	}
	*pp = p;
	return 0;
}

/* ModRM's mod and reg fields without consuming it (group opcodes choose by reg). */
static int peek_modrm(const uint8_t *b, size_t n, size_t p, unsigned *mod, unsigned *reg)
{
	int r = need(p, 1, n);

	if (r)
		return r;
	*mod = b[p] >> 6;
	*reg = (b[p] >> 3) & 7;
	return 0;
}

/* 0f 01 with mod == 3: the register-form system instructions. */
static int decode_0f01(const uint8_t *b, size_t n, size_t *pp, struct pvm_insn *in)
{
	int r = need(*pp, 1, n);

	if (r)
		return r;
	/* f2/f3/66 select other instructions here (e.g. f3 0f 01 ca is FRED's ERETU). */
	if (in->rep || in->repne || in->opsize16)
		return -EOPNOTSUPP;
	switch (b[*pp]) {
	case 0xf8: in->kind = PVM_INSN_SWAPGS; break;
	case 0xca: in->kind = PVM_INSN_CLAC; break;
	case 0xcb: in->kind = PVM_INSN_STAC; break;
	case 0xd0: in->kind = PVM_INSN_XGETBV; break;
	case 0xf9: in->kind = PVM_INSN_RDTSCP; break;
	case 0xc8: in->kind = PVM_INSN_MONITOR; break;
	case 0xc9: in->kind = PVM_INSN_MWAIT; break;
	default: return -EOPNOTSUPP;
	}
	(*pp)++;
	return 0;
}

static int decode_0f(const uint8_t *b, size_t n, size_t *pp, struct pvm_insn *in)
{
	bool simd_prefix = in->rep || in->repne || in->opsize16;
	unsigned mod, reg;
	uint8_t op;
	int r;

	if ((r = need(*pp, 1, n)))
		return r;
	op = b[(*pp)++];
	switch (op) {
	case 0x0b:
		in->kind = PVM_INSN_UD;
		return 0;
	case 0xb9: /* ud1 r, r/m */
	case 0xff: /* ud0 r, r/m (Intel form, with ModRM) */
		in->kind = PVM_INSN_UD;
		return decode_modrm(b, n, pp, in);
	case 0x01:
		return decode_0f01(b, n, pp, in);
	case 0x07:
		in->kind = PVM_INSN_SYSRET;
		return 0;
	case 0x34:
		in->kind = PVM_INSN_SYSENTER;
		return 0;
	case 0x02:
	case 0x03:
		in->kind = op == 0x02 ? PVM_INSN_LAR : PVM_INSN_LSL;
		return decode_modrm(b, n, pp, in);
	case 0x00:
		if ((r = peek_modrm(b, n, *pp, &mod, &reg)))
			return r;
		if (reg != 4 && reg != 5)
			return -EOPNOTSUPP;
		in->kind = reg == 4 ? PVM_INSN_VERR : PVM_INSN_VERW;
		return decode_modrm(b, n, pp, in);
	case 0xb8:
		/* Without the mandatory f3 this is JMPE (IA-64 only). */
		if (!in->rep)
			return -EOPNOTSUPP;
		in->kind = PVM_INSN_POPCNT;
		return decode_modrm(b, n, pp, in);
	case 0xae:
		if ((r = peek_modrm(b, n, *pp, &mod, &reg)))
			return r;
		/* mod == 3 forms are fences and fs/gs-base moves; 66 /6 is clwb, 66 /7 clflushopt. */
		if (mod == 3 || simd_prefix)
			return -EOPNOTSUPP;
		if (reg == 2)
			in->kind = PVM_INSN_LDMXCSR;
		else if (reg == 3)
			in->kind = PVM_INSN_STMXCSR;
		else if (reg >= 4 && reg <= 6)
			in->kind = PVM_INSN_XSAVE;
		else
			return -EOPNOTSUPP;
		return decode_modrm(b, n, pp, in);
	case 0xc7:
		if ((r = peek_modrm(b, n, *pp, &mod, &reg)))
			return r;
		if (mod == 3 || simd_prefix)
			return -EOPNOTSUPP;
		if (reg == 1 && (in->rex & REX_W))
			in->kind = PVM_INSN_CMPXCHG16B;
		else if (reg >= 3 && reg <= 5)
			in->kind = PVM_INSN_XSAVE;
		else
			return -EOPNOTSUPP;  /* cmpxchg8b and friends: the host runs them */
		return decode_modrm(b, n, pp, in);
	default:
		return -EOPNOTSUPP;
	}
}

static int decode_opcode(const uint8_t *b, size_t n, size_t *pp, struct pvm_insn *in)
{
	unsigned mod, reg;
	uint8_t op = b[(*pp)++];
	int r;

	switch (op) {
	case 0xcc:
		in->kind = PVM_INSN_INT3;
		return 0;
	case 0xcd:
		if ((r = need(*pp, 1, n)))
			return r;
		in->kind = PVM_INSN_INTN;
		in->imm8 = b[(*pp)++];
		return 0;
	case 0x9b:
		in->kind = PVM_INSN_FWAIT;
		return 0;
	case 0xcf:
		in->kind = PVM_INSN_IRET;
		return 0;
	case 0xd9:
		if ((r = peek_modrm(b, n, *pp, &mod, &reg)))
			return r;
		if (mod == 3 || reg != 5)
			return -EOPNOTSUPP;
		in->kind = PVM_INSN_FLDCW;
		return decode_modrm(b, n, pp, in);
	case 0x0f:
		return decode_0f(b, n, pp, in);
	default:
		return -EOPNOTSUPP;
	}
}

int pvm_decode(const uint8_t *b, size_t n, struct pvm_insn *out)
{
	struct pvm_insn in;
	size_t p;
	int r;

	memset(&in, 0, sizeof(in));
	in.seg = PVM_SEG_NONE;
	if (!b)
		n = 0;
	/*
	 * Prefixes, any order, repeats allowed. A REX prefix counts only when it
	 * immediately precedes the opcode (SDM Vol 2A 2.2.1), so a legacy prefix
	 * after it cancels it. The loop is bounded by the 15-byte limit.
	 */
	for (p = 0;; p++) {
		uint8_t c;

		if ((r = need(p, 1, n)))
			return r;
		c = b[p];
		if ((c & 0xf0) == 0x40) {
			in.rex = c;
			continue;
		}
		switch (c) {
		case 0x66: in.opsize16 = true; break;
		case 0x67: in.addr32 = true; break;
		case 0xf0: in.lock = true; break;
		case 0xf2: in.repne = true; in.rep = false; break;  /* the last of f2/f3 counts */
		case 0xf3: in.rep = true; in.repne = false; break;
		case 0x26: in.seg = PVM_SEG_ES; break;
		case 0x2e: in.seg = PVM_SEG_CS; break;
		case 0x36: in.seg = PVM_SEG_SS; break;
		case 0x3e: in.seg = PVM_SEG_DS; break;
		case 0x64: in.seg = PVM_SEG_FS; break;
		case 0x65: in.seg = PVM_SEG_GS; break;
		default: goto opcode;
		}
		in.rex = 0;
	}
opcode:
	in.opsize = (in.rex & REX_W) ? 8 : in.opsize16 ? 2 : 4;
	r = decode_opcode(b, n, &p, &in);
	if (r)
		return r;
	in.len = (uint8_t)p;
	*out = in;
	return 0;
}
