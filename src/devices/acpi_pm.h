/* ACPI hardware-reduced power management registers: sleep control/status and reset (FADT). */
#ifndef KILN_DEVICES_ACPI_PM_H
#define KILN_DEVICES_ACPI_PM_H

struct vm;

/*
 * Register the sleep control, sleep status and reset ports on vm->pio and
 * hand the device to the VM. Called by vm_create() through DEVICE_REGISTER,
 * or directly by tests. 0 or -errno; the VM owns the state before any port
 * is registered, so a failure leaves no range pointing at freed memory.
 */
int acpi_pm_init(struct vm *vm);

#endif
