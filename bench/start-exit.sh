#!/usr/bin/env bash
# Bench (a): process start -> trivial PVH guest -> process exit, wall time,
# kiln vs QEMU microvm. Prints figures (min/median of N runs), no verdict.
#
# usage: bench/start-exit.sh KILN_BINARY
#   BENCH_RUNS=20     measured runs per VMM (after 3 warm-up runs)
#   BENCH_NO_HYPERFINE=1  time with bench/timeit.py even if hyperfine is installed
#   BENCH_GUEST=PATH  the guest (default tests/guests/build/poweroff.elf,
#                     built by `make guests`)
#   QEMU=qemu-system-x86_64, QEMU_ACCEL=kvm (its -accel)
#
# How QEMU is made to exit: the guest powers off by writing SLP_TYP=5|SLP_EN
# to kiln's ACPI sleep-control port 0x3c0, which QEMU's microvm doesn't have.
# An isa-debug-exit device at 0x3c0 turns that write into QEMU's exit (status
# (value << 1) | 1), so QEMU is timed start -> exit just like kiln. If the
# guest never writes 0x3c0 there (QEMU still running after 10 s), QEMU is
# timed from start to the guest's "SUCCESS" line on the serial console, then
# killed (hyperfine can't do that; bench/timeit.py --until does).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_need_kvm start-exit
bench_kiln start-exit.sh "${1:-}"
RUNS=${BENCH_RUNS:-20}
GUEST=${BENCH_GUEST:-$ROOT/tests/guests/build/poweroff.elf}
QEMU=${QEMU:-qemu-system-x86_64}

if [ ! -f "$GUEST" ]; then
	echo "start-exit: building test guests (make guests)"
	make -C "$ROOT" guests >/dev/null || true
fi
[ -f "$GUEST" ] || { echo "start-exit: no guest at $GUEST (make guests)" >&2; exit 1; }

echo "start-exit: $(basename "$GUEST"), $RUNS runs each, host $(uname -r), $(nproc) CPUs"
KCMD=("$KILN" run --kernel "$GUEST" --memory 128 --console none)
# shellcheck disable=SC2054  # the commas are QEMU option syntax
QCMD=("$QEMU" -M microvm -accel "${QEMU_ACCEL:-kvm}" -m 128 -kernel "$GUEST" -nographic -no-reboot
	-device isa-debug-exit,iobase=0x3c0,iosize=1)

"${KCMD[@]}" </dev/null >/dev/null 2>&1
code=$?
[ "$code" -eq 0 ] || echo "start-exit: note: kiln exited $code on this guest (expected 0)"

qemu_mode=none
if have "$QEMU"; then
	timeout 10 "${QCMD[@]}" </dev/null >/dev/null 2>&1
	qc=$?
	if [ "$qc" -ne 124 ] && [ $((qc & 1)) -eq 1 ]; then
		qemu_mode="exit"
	elif [ "$qc" -eq 124 ]; then
		qemu_mode=success-line
	else
		echo "start-exit: QEMU failed (exit $qc): ${QCMD[*]}"
	fi
else
	echo "start-exit: $QEMU not installed, kiln only"
fi

if have hyperfine && [ "${BENCH_NO_HYPERFINE:-0}" != 1 ]; then
	echo "start-exit: timing with hyperfine"
	mkdir -p "$BUILD"
	hf() { # NAME IGNORE_FAILURE(-i or "") CMD...
		local name=$1 ign=$2 json="$BUILD/start-exit-$1.json"
		shift 2
		if hyperfine -N $ign -w 3 -r "$RUNS" -n "$name" --export-json "$json" \
			"$(printf '%q ' "$@")" >/dev/null 2>&1; then
			$TIMEIT hfjson "$json"
		else
			echo "start-exit: hyperfine failed for $name: $*"
		fi
		rm -f "$json"
	}
	hf kiln -i "${KCMD[@]}"
	[ "$qemu_mode" = exit ] && hf "qemu microvm" -i "${QCMD[@]}"
else
	echo "start-exit: timing with bench/timeit.py (hyperfine: apt-get install hyperfine)"
	$TIMEIT runs "$RUNS" --warmup 3 --name kiln -- "${KCMD[@]}"
	[ "$qemu_mode" = exit ] && $TIMEIT runs "$RUNS" --warmup 3 --name "qemu microvm" -- "${QCMD[@]}"
fi
if [ "$qemu_mode" = success-line ]; then
	echo "start-exit: QEMU does not exit on this guest's power-off: timing it to the 'SUCCESS' line"
	$TIMEIT runs "$RUNS" --warmup 3 --until SUCCESS --timeout 30 --name "qemu microvm (to SUCCESS)" -- \
		"${QCMD[@]}"
fi
exit 0
