/* Putting the guest in RAM: read kernel/initrd files, build ACPI, the command line, boot registers. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "core/loader.h"
#include "core/vcpu.h"
#include "core/log.h"
#include "arch/x86/boot.h"
#include "arch/x86/acpi.h"
#include "arch/x86/cpu.h"
#include "arch/x86/layout.h"
#include "compat/pvm.h"

/* Symbols for compat diagnostics: --symbols, else a System.map beside the kernel. Best effort. */
static void load_symbols(struct vm *vm)
{
	const char *path = vm->cfg.symbols_path, *slash;
	char guess[4096];

	if (!path) {
		slash = strrchr(vm->cfg.kernel_path, '/');
		snprintf(guess, sizeof(guess), "%.*sSystem.map",
			 slash ? (int)(slash - vm->cfg.kernel_path + 1) : 0, vm->cfg.kernel_path);
		if (access(guess, R_OK) < 0)
			return;
		path = guess;
	}
	if (pvm_load_symbols(vm->compat, path) < 0)
		log_warn("--symbols %s: cannot load (diagnostics will not name functions)", path);
}

/*
 * What kiln appends to a Linux command line: the kvm_pvm layer's additions,
 * and the virtio-mmio devices as virtio_mmio.device=SIZE@BASE:IRQ
 * (Documentation/admin-guide/kernel-parameters.txt) when the kernel is told
 * acpi=off, since it then cannot find them in the DSDT. (With ACPI on, the
 * DSDT alone announces them: a second announcement would make Linux probe
 * each window twice.) A malloc'd string, or NULL when out of memory.
 */
static char *cmdline_extra(const struct vm *vm, const char *user)
{
	const char *compat = vm->compat ? pvm_cmdline_extra() : NULL;
	size_t cap = 64 + (compat ? strlen(compat) : 0) + 64 * vm->nvirtio_mmio, n = 0;
	char *s = malloc(cap);

	if (!s)
		return NULL;
	s[0] = 0;
	if (compat && *compat)
		n += (size_t)snprintf(s + n, cap - n, "%s", compat);
	/* No host bridge (virtio-mmio): spare Linux the probe and its "PCI: Fatal" line. */
	if (!vm->pci && !(user && strstr(user, "pci=")))
		n += (size_t)snprintf(s + n, cap - n, "%spci=off", n ? " " : "");
	if (user && strstr(user, "acpi=off")) {
		for (unsigned i = 0; i < vm->nvirtio_mmio; i++)
			n += (size_t)snprintf(s + n, cap - n, "%svirtio_mmio.device=%uK@0x%llx:%u", n ? " " : "",
					      vm->virtio_mmio[i].size / 1024,
					      (unsigned long long)vm->virtio_mmio[i].base, vm->virtio_mmio[i].gsi);
	}
	return s;
}

int vm_load(struct vm *vm)
{
	struct boot_input in = { 0 };
	struct boot_result out = { 0 };
	struct acpi_config acfg = { .ncpus = vm->ncpus, .pvpanic = true, .rtc = true };
	uint8_t *kernel = NULL, *initrd = NULL;
	size_t klen = 0, ilen = 0;
	const char *why = NULL;
	char msg[256], *cmdline = NULL, *extra;
	const char *user;
	int kind, ret, code = KILN_EXIT_USAGE;

	if (loader_read_file(vm->cfg.kernel_path, &kernel, &klen, msg, sizeof(msg)) < 0) {
		log_err("--kernel %s", msg);
		goto out;
	}
	if (vm->cfg.initrd_path && loader_read_file(vm->cfg.initrd_path, &initrd, &ilen, msg, sizeof(msg)) < 0) {
		log_err("--initrd %s", msg);
		goto out;
	}
	kind = boot_detect(kernel, klen, &why);
	if (kind < 0) {
		log_err("--kernel %s: %s", vm->cfg.kernel_path, why ? why : "not a kernel kiln can boot");
		goto out;
	}
	if (vm->pci) {
		acfg.pci = true;
		acfg.pci_ecam_base = X86_PCI_ECAM_BASE;
		acfg.pci_bus_end = X86_PCI_BUS_END;
		acfg.pci_mmio_base = X86_PCI_MMIO_BASE;
		acfg.pci_mmio_size = X86_PCI_MMIO_SIZE;
	}
	acfg.nvirtio_mmio = MIN(vm->nvirtio_mmio, ACPI_MAX_VIRTIO_MMIO);
	for (unsigned i = 0; i < acfg.nvirtio_mmio; i++) {
		acfg.virtio_mmio[i].base = vm->virtio_mmio[i].base;
		acfg.virtio_mmio[i].size = vm->virtio_mmio[i].size;
		acfg.virtio_mmio[i].gsi = vm->virtio_mmio[i].gsi;
	}
	ret = acpi_build(&vm->mem, &acfg, &vm->rsdp);
	if (ret < 0) {
		log_err("ACPI tables: %s", strerror(-ret));
		code = KILN_EXIT_SETUP;
		goto out;
	}
	/* is_linux is only known after parsing; bzImage is always Linux, PVH ELFs say so in a note. */
	in.kernel = kernel;
	in.kernel_len = klen;
	in.initrd = initrd;
	in.initrd_len = ilen;
	in.rsdp = vm->rsdp;
	in.cmdline = "";
	ret = boot_load(&vm->mem, &in, &out, &why);
	if (ret < 0) {
		log_err("--kernel %s: %s", vm->cfg.kernel_path, why ? why : strerror(-ret));
		goto out;
	}
	user = vm->cfg.cmdline;
	if (!user && out.is_linux && vm->cfg.console_dev == CONSOLE_DEV_VIRTIO)
		user = "console=hvc0 reboot=k panic=-1";
	extra = cmdline_extra(vm, user);
	if (!extra) {
		code = KILN_EXIT_SETUP;
		goto out;
	}
	cmdline = loader_cmdline(user, out.is_linux, extra);
	free(extra);
	if (!cmdline) {
		code = KILN_EXIT_SETUP;
		goto out;
	}
	/* Second pass with the final command line (the first only told us the kernel kind). */
	in.cmdline = cmdline;
	ret = boot_load(&vm->mem, &in, &out, &why);
	if (ret < 0) {
		log_err("--kernel %s: %s", vm->cfg.kernel_path, why ? why : strerror(-ret));
		goto out;
	}
	if (vm->compat)
		load_symbols(vm);
	log_info("kernel %s (%s), entry 0x%llx, cmdline \"%s\"", vm->cfg.kernel_path,
		 out.kind == BOOT_BZIMAGE ? "bzImage" : "PVH ELF", (unsigned long long)out.entry, cmdline);
	ret = boot_write_page_tables(&vm->mem);
	if (ret == 0)
		ret = x86_vcpu_boot_regs(vm->vcpus[0].fd, &out);
	if (ret < 0) {
		log_err("boot vCPU setup: %s", strerror(-ret));
		code = KILN_EXIT_SETUP;
		goto out;
	}
	code = 0;
out:
	free(cmdline);
	free(kernel);
	free(initrd);
	return code;
}
