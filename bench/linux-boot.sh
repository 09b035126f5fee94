#!/usr/bin/env bash
# Bench (d): Linux boot time under kiln, to init and to power-off, for the
# test kernel and Debian's cloud kernel (ELF vmlinux, busybox initramfs,
# kiln.test=1), with kiln's --stats exit counters and compat-layer counters.
#
# usage: bench/linux-boot.sh KILN_BINARY
#   BENCH_CPUS=2 BENCH_MEMORY=256
#   BENCH_KERNELS="tiny debian"
#   BENCH_TIMEOUT=1500   seconds per boot (HOST.md: Debian's kernel ~280 s
#                        with 1 vCPU on kvm_pvm; the test kernel ~25 s)
# "init" is the time at which the guest's /init printed its first line
# (kiln-guest: cpus=N) on the console; the guest's own uptime at that point
# is printed too. Full console + stats logs: bench/build/linux-boot-*.log.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_need_kvm linux-boot
bench_kiln linux-boot.sh "${1:-}"
CPUS=${BENCH_CPUS:-2}
MEM=${BENCH_MEMORY:-256}
KERNELS=${BENCH_KERNELS:-tiny debian}
TMO=${BENCH_TIMEOUT:-1500}
mkdir -p "$BUILD"

DG=$("$ROOT/scripts/mk-debian-guest.sh" 2>"$BUILD/mk-debian-guest.log" | tail -1)
[ -n "$DG" ] && [ -f "$DG/initramfs.cpio" ] || { echo "linux-boot: mk-debian-guest.sh failed ($BUILD/mk-debian-guest.log)"; exit 1; }

for k in $KERNELS; do
	case "$k" in
	tiny)
		TK=$("$ROOT/scripts/build-test-kernel.sh" 2>"$BUILD/build-test-kernel.log" | tail -1)
		[ -n "$TK" ] || { echo "linux-boot: build-test-kernel.sh failed ($BUILD/build-test-kernel.log)"; continue; }
		kernel=$TK/vmlinux
		;;
	debian)
		kernel=$DG/vmlinux
		[ -f "$kernel" ] || kernel=$DG/vmlinuz
		;;
	*) echo "linux-boot: unknown kernel '$k' (tiny, debian)"; continue ;;
	esac
	log="$BUILD/linux-boot-$k.log"
	echo "linux-boot: $k: $(basename "$kernel") --cpus $CPUS --memory $MEM --stats"
	$TIMEIT trace --timeout "$TMO" --log "$log" \
		--mark 'Linux version' --mark 'Run /init' --mark 'kiln-guest: cpus=' --mark 'reboot: Power down' -- \
		"$KILN" run --kernel "$kernel" --initrd "$DG/initramfs.cpio" \
		--cmdline "console=ttyS0 reboot=k panic=-1 kiln.test=1" \
		--cpus "$CPUS" --memory "$MEM" --console stdio --stats
	grep -ao 'kiln-guest: cpus=[0-9]*\|uptime=[0-9.]*s' "$log" | tr '\n' ' ' | sed 's/^/  guest: /;s/ $/\n/'
	grep -a 'exits to kiln' "$log" | sed 's/^/  /'
	grep -ai 'compat' "$log" | grep -v '^\[' | sed 's/^/  /' | grep . ||
		echo "  compat: no counters (the layer is off: not a kvm_pvm host)"
done
exit 0
