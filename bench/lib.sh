# shellcheck shell=bash disable=SC2034
# Shared by kiln's bench scripts (sourced): KVM check, guest builds, helpers.
# Bench scripts print figures, not pass/fail; without /dev/kvm they say so and exit 0.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BUILD="$BENCH_DIR/build"
TIMEIT="python3 $BENCH_DIR/timeit.py"

# bench_need_kvm NAME: exit 0 with a message when /dev/kvm can't be used.
bench_need_kvm() {
	if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
		echo "$1: SKIPPED — /dev/kvm not available (nothing to measure on this machine)"
		exit 0
	fi
}

# bench_kiln NAME PATH: check the kiln binary argument, make it absolute.
bench_kiln() {
	if [ -z "${2:-}" ] || [ ! -x "$2" ]; then
		echo "usage: bench/$1 KILN_BINARY (got: '${2:-}')" >&2
		exit 2
	fi
	KILN=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
}

# bench_pio_guest N [idle]: build bench/build/pio-N[-idle].elf, print its path.
# The guest does N outs to an unclaimed port, then powers off (or, idle,
# halts forever with interrupts off).
bench_pio_guest() {
	local n=$1 idle=${2:-} elf
	elf="$BUILD/pio-$n${idle:+-idle}.elf"
	mkdir -p "$BUILD"
	if [ ! -f "$elf" ] || [ "$elf" -ot "$BENCH_DIR/pio_guest.S" ] || [ "$elf" -ot "$BENCH_DIR/pio_guest.ld" ]; then
		as --32 --defsym NOUTS="$n" ${idle:+--defsym IDLE=1} -o "$elf.o" "$BENCH_DIR/pio_guest.S" &&
			ld -m elf_i386 -T "$BENCH_DIR/pio_guest.ld" -o "$elf" "$elf.o" ||
			{ echo "bench: cannot build $elf (binutils?)" >&2; return 1; }
		rm -f "$elf.o"
	fi
	echo "$elf"
}

# bench_kvm_pvm: true when /dev/kvm is kvm_pvm (HOST.md), not VT-x/SVM.
bench_kvm_pvm() { [ -d /sys/module/kvm_pvm ] && [ ! -d /sys/module/kvm_intel ] && [ ! -d /sys/module/kvm_amd ]; }

# QEMU's -cpu for the benches: "host" on VT-x/SVM; QEMU's default model on
# kvm_pvm, where -cpu host and max abort ("failed to set MSR 0x10a").
# QEMU_CPU overrides.
if [ -n "${QEMU_CPU:-}" ]; then BENCH_QEMU_CPU=(-cpu "$QEMU_CPU")
elif bench_kvm_pvm; then BENCH_QEMU_CPU=()
else BENCH_QEMU_CPU=(-cpu host); fi

# bench_ns: monotonic-ish wall clock in ns.
bench_ns() { date +%s%N; }

have() { command -v "$1" >/dev/null 2>&1; }
