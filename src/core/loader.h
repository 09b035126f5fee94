/* Putting the guest in RAM: read kernel/initrd files, build ACPI, the command line, boot registers. */
#ifndef KILN_LOADER_H
#define KILN_LOADER_H

#include "core/vm.h"

/* Read a whole file into a fresh buffer; 0 or -errno (the message names the file). */
int loader_read_file(const char *path, uint8_t **buf, size_t *len, char *msg, size_t msglen);

/*
 * The command line a guest gets: the user's (or kiln's default for Linux when
 * none was given), plus `extra` (the kvm_pvm additions) for a Linux guest.
 * Returns a malloc'd string or NULL.
 */
char *loader_cmdline(const char *user, bool is_linux, const char *extra);

/* Load cfg->kernel_path (+ initrd), ACPI tables and set the boot vCPU's registers. 0 or kiln exit code. */
int vm_load(struct vm *vm);

#endif
