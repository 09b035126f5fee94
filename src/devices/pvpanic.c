/* pvpanic: a one-port device the guest writes on kernel panic (QEMU's pvpanic ISA interface). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arch/x86/layout.h"
#include "core/bus.h"
#include "core/log.h"
#include "core/vm.h"
#include "devices/pvpanic.h"

#define PVPANIC_SUPPORTED (PVPANIC_PANICKED | PVPANIC_CRASH_LOADED)

struct pvpanic {
	struct vm *vm;
	atomic_uint_fast64_t panics;
	atomic_uint_fast64_t crash_loaded;
};

/*
 * A read returns the events kiln understands; Linux's driver ANDs that with
 * what it wants to send. A write carries the event bits: PANICKED stops the
 * VM with the panic exit code, CRASH_LOADED (a kdump kernel will take over)
 * is only logged, since the guest keeps running into its crash kernel.
 */
static void pvpanic_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct pvpanic *pp = opaque;
	uint8_t val;

	if (!is_write) {
		memset(data, 0, len);
		data[0] = PVPANIC_SUPPORTED;
		return;
	}
	val = data[0];
	if (val & PVPANIC_CRASH_LOADED) {
		atomic_fetch_add(&pp->crash_loaded, 1);
		log_info("pvpanic: guest panicked, crash kernel loaded");
	}
	if (val & PVPANIC_PANICKED) {
		atomic_fetch_add(&pp->panics, 1);
		log_err("pvpanic: guest reported a kernel panic");
		vm_request_stop(pp->vm, VM_STOP_PANIC);
	}
}

static void pvpanic_destroy(void *state)
{
	free(state);
}

static void pvpanic_print_stats(void *state, int fd)
{
	struct pvpanic *pp = state;

	dprintf(fd, "pvpanic: panics %llu crash_loaded %llu\n",
		(unsigned long long)atomic_load(&pp->panics),
		(unsigned long long)atomic_load(&pp->crash_loaded));
}

int pvpanic_init(struct vm *vm)
{
	struct pvpanic *pp = calloc(1, sizeof(*pp));
	const struct vm_device dev = {
		.name = "pvpanic",
		.state = pp,
		.destroy = pvpanic_destroy,
		.print_stats = pvpanic_print_stats,
	};
	int ret;

	if (!pp)
		return -ENOMEM;
	pp->vm = vm;
	atomic_init(&pp->panics, 0);
	atomic_init(&pp->crash_loaded, 0);
	/* The VM owns pp before the port exists, so a failed registration cannot leave it dangling. */
	ret = vm_add_device(vm, &dev);
	if (ret)
		goto err_free;
	ret = bus_register(&vm->pio, X86_PVPANIC_PORT, 1, "pvpanic", pvpanic_io, pp);
	if (ret)
		goto err;
	return 0;
err_free:
	free(pp);
err:
	log_err("pvpanic: init failed: %s", strerror(-ret));
	return ret;
}

DEVICE_REGISTER(pvpanic, pvpanic_init);
