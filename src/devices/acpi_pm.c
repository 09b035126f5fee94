/* ACPI hardware-reduced PM registers: sleep control/status (S5 power-off) and the reset register. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "core/bus.h"
#include "core/log.h"
#include "core/vm.h"
#include "devices/acpi_pm.h"

struct acpi_pm {
	struct vm *vm;
	/* SLP_TYPx is read/write, SLP_EN write-only (ACPI 6.4 §4.8.3.7.1): keep the type bits. */
	_Atomic uint8_t slp_typ_bits;
	atomic_uint_fast64_t sleeps_ignored;  /* SLP_EN with a type other than \_S5 */
	atomic_uint_fast64_t resets_ignored;  /* reset-port writes of a wrong value */
};

static void acpi_pm_read_zero(uint8_t *data, uint32_t len)
{
	memset(data, 0, len);
}

/*
 * Sleep control register (§4.8.3.7.1): SLP_TYPx in bits 4:2, SLP_EN in bit 5.
 * Only \_S5 is advertised, so only S5 is acted on; kiln cannot suspend, and
 * other types are counted and ignored, so the guest simply keeps running.
 */
static void acpi_pm_sleep_ctl(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint8_t val, typ;

	if (!is_write) {
		acpi_pm_read_zero(data, len);
		data[0] = atomic_load(&pm->slp_typ_bits);
		return;
	}
	val = data[0];
	atomic_store(&pm->slp_typ_bits, (uint8_t)(val & (ACPI_SLP_TYP_MASK << ACPI_SLP_TYP_SHIFT)));
	if (!(val & ACPI_SLP_EN))
		return;
	typ = (val >> ACPI_SLP_TYP_SHIFT) & ACPI_SLP_TYP_MASK;
	if (typ == ACPI_S5_SLP_TYP) {
		log_debug("acpi: guest entered S5 (power off)");
		vm_request_stop(pm->vm, VM_STOP_POWEROFF);
		return;
	}
	atomic_fetch_add(&pm->sleeps_ignored, 1);
	log_debug("acpi: ignored sleep request, SLP_TYP %u", typ);
}

/*
 * Sleep status register (§4.8.3.7.2): WAK_STS (bit 7) is write-1-to-clear.
 * kiln never sleeps, so it never wakes: reads return 0, writes have no effect
 * (Linux clears WAK_STS before every sleep, so the write must be accepted).
 */
static void acpi_pm_sleep_sts(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	if (!is_write)
		acpi_pm_read_zero(data, len);
}

/* Reset register (§4.8.3.6): writing the FADT's RESET_VALUE resets the system. */
static void acpi_pm_reset(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;

	if (!is_write) {
		acpi_pm_read_zero(data, len);
		return;
	}
	if (data[0] == X86_ACPI_RESET_VALUE) {
		log_debug("acpi: guest wrote the reset register");
		vm_request_stop(pm->vm, VM_STOP_RESET);
		return;
	}
	atomic_fetch_add(&pm->resets_ignored, 1);
}

static void acpi_pm_destroy(void *state)
{
	free(state);
}

static void acpi_pm_print_stats(void *state, int fd)
{
	struct acpi_pm *pm = state;

	dprintf(fd, "acpi_pm: sleeps_ignored %llu resets_ignored %llu\n",
		(unsigned long long)atomic_load(&pm->sleeps_ignored),
		(unsigned long long)atomic_load(&pm->resets_ignored));
}

int acpi_pm_init(struct vm *vm)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	const struct vm_device dev = {
		.name = "acpi_pm",
		.state = pm,
		.destroy = acpi_pm_destroy,
		.print_stats = acpi_pm_print_stats,
	};
	int ret;

	if (!pm)
		return -ENOMEM;
	pm->vm = vm;
	atomic_init(&pm->slp_typ_bits, 0);
	atomic_init(&pm->sleeps_ignored, 0);
	atomic_init(&pm->resets_ignored, 0);
	/* The VM owns pm first: a failed registration below leaves no range pointing at freed memory. */
	ret = vm_add_device(vm, &dev);
	if (ret)
		goto err_free;
	ret = bus_register(&vm->pio, X86_ACPI_SLEEP_CTL, 1, "acpi-sleep-ctl", acpi_pm_sleep_ctl, pm);
	if (ret)
		goto err;
	ret = bus_register(&vm->pio, X86_ACPI_SLEEP_STS, 1, "acpi-sleep-sts", acpi_pm_sleep_sts, pm);
	if (ret)
		goto err;
	ret = bus_register(&vm->pio, X86_ACPI_RESET_PORT, 1, "acpi-reset", acpi_pm_reset, pm);
	if (ret)
		goto err;
	return 0;
err_free:
	free(pm);
err:
	log_err("acpi_pm: init failed: %s", strerror(-ret));
	return ret;
}

DEVICE_REGISTER(acpi_pm, acpi_pm_init);
