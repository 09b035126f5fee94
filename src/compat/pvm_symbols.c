/* Kernel symbols from a System.map, and the compat layer's one-line diagnostic. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "compat/pvm_internal.h"

/* A symbol further than this from its start without a following symbol is not trusted. */
#define PVM_SYM_MAX_TAIL (1ULL << 20)
#define PVM_SYM_LINE 512

static int sym_cmp(const void *a, const void *b)
{
	const struct pvm_sym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Parse "<hex address> <type> <name>"; only text symbols (t, T, w, W) are kept. */
static bool parse_line(char *line, uint64_t *addr, char **name)
{
	char *end, *type, *nm;

	*addr = strtoull(line, &end, 16);
	if (end == line || *end != ' ')
		return false;
	type = end + 1;
	if (!strchr("tTwW", *type) || *type == '\0' || type[1] != ' ')
		return false;
	nm = type + 2;
	nm[strcspn(nm, " \t\r\n")] = '\0';
	if (!*nm)
		return false;
	*name = nm;
	return true;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 1024;
	void *q;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	q = realloc(*p, ncap * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = ncap;
	return 0;
}

int pvm_symtab_load(struct pvm_symtab *t, const char *path)
{
	struct pvm_symtab nt = { 0 };
	size_t scap = 0, ncap = 0;
	char line[PVM_SYM_LINE];
	FILE *f;
	int ret = 0;

	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		size_t len = strlen(line);
		uint64_t addr;
		char *name;

		if (len && line[len - 1] != '\n' && !feof(f)) {
			int ch;
			/* An over-long line: skip its rest (bounded by the file). */
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			continue;
		}
		if (!parse_line(line, &addr, &name))
			continue;
		if (nt.n >= PVM_MAX_SYMBOLS) {
			ret = -EFBIG;
			goto fail;
		}
		len = strlen(name) + 1;
		if (grow((void **)&nt.syms, &scap, nt.n + 1, sizeof(*nt.syms)) ||
		    grow((void **)&nt.names, &ncap, nt.names_len + len, 1)) {
			ret = -ENOMEM;
			goto fail;
		}
		memcpy(nt.names + nt.names_len, name, len);
		nt.syms[nt.n].addr = addr;
		nt.syms[nt.n].name = (uint32_t)nt.names_len;
		nt.names_len += len;
		nt.n++;
	}
	if (ferror(f)) {
		ret = -EIO;
		goto fail;
	}
	fclose(f);
	if (nt.n)
		qsort(nt.syms, nt.n, sizeof(*nt.syms), sym_cmp);
	pvm_symtab_free(t);
	*t = nt;
	return 0;
fail:
	fclose(f);
	pvm_symtab_free(&nt);
	return ret;
}

void pvm_symtab_free(struct pvm_symtab *t)
{
	free(t->syms);
	free(t->names);
	memset(t, 0, sizeof(*t));
}

const char *pvm_symtab_lookup(const struct pvm_symtab *t, uint64_t addr, uint64_t *off)
{
	size_t lo = 0, hi, i;

	if (!t || !t->n || addr < t->syms[0].addr)
		return NULL;
	/* The last symbol at or below addr. */
	hi = t->n;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->syms[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	i = lo;
	if (i + 1 == t->n && addr - t->syms[i].addr > PVM_SYM_MAX_TAIL)
		return NULL;
	if (off)
		*off = addr - t->syms[i].addr;
	return t->names + t->syms[i].name;
}

int pvm_format_diag(char *buf, size_t len, const char *reason, uint64_t rip, unsigned cpl, const uint8_t *bytes,
		    size_t n, const struct pvm_symtab *t)
{
	char hex[X86_MAX_INSN_LEN * 3 + 1] = "";
	char sym[160];
	const char *name;
	uint64_t off = 0;
	size_t pos = 0;

	n = MIN(n, (size_t)X86_MAX_INSN_LEN);
	for (size_t i = 0; i < n; i++)
		pos += (size_t)snprintf(hex + pos, sizeof(hex) - pos, "%s%02x", i ? " " : "", bytes[i]);
	if (!n)
		snprintf(hex, sizeof(hex), "unavailable");
	name = pvm_symtab_lookup(t, rip, &off);
	if (name)
		snprintf(sym, sizeof(sym), "%.120s+0x%llx", name, (unsigned long long)off);
	else
		snprintf(sym, sizeof(sym), "symbol unknown");
	return snprintf(buf, len, "compat: cannot handle %s at RIP 0x%llx (CPL %u): bytes %s [%s]", reason,
			(unsigned long long)rip, cpl, hex, sym);
}
