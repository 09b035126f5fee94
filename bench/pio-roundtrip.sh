#!/usr/bin/env bash
# Bench (b): cost of one port-I/O exit to the VMM and back.
#   floor: bench/pio_raw.c, a bare KVM_RUN loop (64-bit guest, CPL0), ns/exit
#          measured around the loop itself
#   kiln:  bench/pio_guest.S under kiln (PVH, 32-bit, CPL0): N outs to an
#          unclaimed port then power-off, vs the same guest with 0 outs:
#          per exit = (median wall(N) - median wall(0)) / N
# Prints both and the ratio kiln/floor; no verdict.
#
# usage: bench/pio-roundtrip.sh KILN_BINARY
#   BENCH_PIO_N=100000   outs per run
#   BENCH_RUNS=7         kiln runs per guest (after 2 warm-up runs)
# HOST.md (kvm_pvm): ~6.9 us per port exit from CPL0 with a raw loop.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_need_kvm pio-roundtrip
bench_kiln pio-roundtrip.sh "${1:-}"
N=${BENCH_PIO_N:-100000}
RUNS=${BENCH_RUNS:-7}

mkdir -p "$BUILD"
RAW="$BUILD/pio_raw"
if [ ! -x "$RAW" ] || [ "$RAW" -ot "$BENCH_DIR/pio_raw.c" ]; then
	${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -o "$RAW" "$BENCH_DIR/pio_raw.c" || exit 1
fi
G0=$(bench_pio_guest 0) && GN=$(bench_pio_guest "$N") || exit 1

echo "pio-roundtrip: $N port exits per run, host $(uname -r)"
raw_ns=
for _ in 1 2 3; do
	line=$("$RAW" "$N") || { echo "pio-roundtrip: pio_raw failed"; break; }
	v=$(sed -n 's/.*: \([0-9.]*\) ns per exit/\1/p' <<<"$line")
	if [ -z "$raw_ns" ] || awk -v a="$v" -v b="$raw_ns" 'BEGIN { exit !(a < b) }'; then raw_ns=$v; fi
done
[ -n "$raw_ns" ] && echo "raw KVM_RUN loop: ${raw_ns} ns per exit (best of 3)"

# One run with --stats: the exit counters must show the N port exits.
"$KILN" run --kernel "$GN" --memory 64 --console none --stats </dev/null >"$BUILD/pio-stats.txt" 2>&1
code=$?
[ "$code" -eq 0 ] || echo "pio-roundtrip: note: kiln exited $code (expected 0 from the guest's power-off)"
grep -E 'exits to kiln' "$BUILD/pio-stats.txt" | sed 's/^/kiln --stats: /'

for g in 0 "$N"; do
	elf=$G0
	[ "$g" = 0 ] || elf=$GN
	$TIMEIT runs "$RUNS" --warmup 2 --save "$BUILD/pio-$g.t" --name "kiln, $g outs" -- \
		"$KILN" run --kernel "$elf" --memory 64 --console none
done
read -r _ med0 <"$BUILD/pio-0.t"
read -r _ medn <"$BUILD/pio-$N.t"
kiln_ns=$(awk -v a="$med0" -v b="$medn" -v n="$N" 'BEGIN { printf "%.0f", (b - a) * 1e6 / n }')
echo "kiln: ${kiln_ns} ns per exit ((median wall(N) - median wall(0)) / N)"
if [ -n "$raw_ns" ]; then
	awk -v k="$kiln_ns" -v r="$raw_ns" 'BEGIN { if (r > 0) printf "ratio kiln / raw loop: %.2f\n", k / r }'
fi
exit 0
