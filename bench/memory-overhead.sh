#!/usr/bin/env bash
# Bench (c): the VMM's own memory: peak RSS minus the guest RAM the guest (or
# the loader) touched, 1 vCPU, 128 MiB, kiln vs QEMU microvm, same guest.
#
# usage: bench/memory-overhead.sh KILN_BINARY
#   BENCH_SETTLE=2    seconds the idle guest runs before sampling
#   QEMU=qemu-system-x86_64, QEMU_ACCEL=kvm (its -accel)
#
# Method: the guest is bench/pio_guest.S built idle (halts with interrupts
# off, so the VMM stays up). After BENCH_SETTLE s, /proc/PID/status gives the
# peak RSS (VmHWM) and /proc/PID/smaps the resident part of the guest-RAM
# mapping (the mappings of at least 128 MiB: kiln's memfd, QEMU's anonymous
# RAM block); overhead = VmHWM - guest RAM resident. The VMM is then killed.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_need_kvm memory-overhead
bench_kiln memory-overhead.sh "${1:-}"
SETTLE=${BENCH_SETTLE:-2}
QEMU=${QEMU:-qemu-system-x86_64}
MEM_MIB=128
GUEST=$(bench_pio_guest 0 idle) || exit 1

# sample NAME CMD...: run CMD, sample it, kill it, print one line.
sample() {
	local name=$1 pid hwm rss guest
	shift
	"$@" </dev/null >/dev/null 2>&1 &
	pid=$!
	sleep "$SETTLE"
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		echo "$name: exited early (code $?) — no sample; command: $*"
		return
	fi
	rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
	# Resident KiB of the mappings at least as large as guest RAM.
	guest=$(awk -v min=$((MEM_MIB * 1024)) '
		/^[0-9a-f]+-[0-9a-f]+ / { big = 0 }
		/^Size:/ { big = ($2 >= min) }
		/^Rss:/ && big { sum += $2 }
		END { print sum + 0 }' "/proc/$pid/smaps")
	# Private KiB outside guest RAM: RSS also counts the pages of shared
	# libraries (libc, glib) that every other process maps too, and how many
	# of those are mapped depends on the host kernel's fault-around.
	priv=$(awk -v min=$((MEM_MIB * 1024)) '
		/^[0-9a-f]+-[0-9a-f]+ / { big = 0 }
		/^Size:/ { big = ($2 >= min) }
		/^Private_(Clean|Dirty):/ && !big { sum += $2 }
		END { print sum + 0 }' "/proc/$pid/smaps")
	kill "$pid" 2>/dev/null
	sleep 0.2
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	printf '%s: peak RSS %d KiB, RSS %d KiB, guest RAM resident %d KiB -> VMM overhead %d KiB (%.1f MiB)\n' \
		"$name" "$hwm" "$rss" "$guest" $((hwm - guest)) "$(awk -v k=$((hwm - guest)) 'BEGIN { print k / 1024 }')"
	printf '%s: private to the VMM (not guest RAM, not shared library pages): %d KiB (%.1f MiB)\n' \
		"$name" "$priv" "$(awk -v k="$priv" 'BEGIN { print k / 1024 }')"
	[ "$guest" -gt 0 ] ||
		echo "  ($name: no guest RAM resident yet — the guest may not have been loaded; raise BENCH_SETTLE)"
}

echo "memory-overhead: idle PVH guest, 1 vCPU, $MEM_MIB MiB, sampled after ${SETTLE}s"
sample kiln "$KILN" run --kernel "$GUEST" --cpus 1 --memory "$MEM_MIB" --console none
if have "$QEMU"; then
	sample "qemu microvm" "$QEMU" -M microvm -accel "${QEMU_ACCEL:-kvm}" -smp 1 -m "$MEM_MIB" -kernel "$GUEST" \
		-nographic -no-reboot -nodefaults -serial null
else
	echo "memory-overhead: $QEMU not installed, kiln only"
fi
exit 0
