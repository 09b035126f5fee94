#!/usr/bin/env bash
# Linux boot tests: kiln boots real kernels to a busybox init and checks what
# the guest reports and how kiln exits.
#
# usage: tests/linux/run.sh KILN_BINARY
#   tiny    the test kernel (scripts/build-test-kernel.sh, ELF vmlinux/PVH)
#           + busybox initramfs, kiln.test=1: "kiln-guest: cpus=2", exit 0
#   debian  Debian's cloud kernel (scripts/mk-debian-guest.sh, vmlinux) the
#           same way: "kiln-guest: cpus=2", exit 0
#   panic   the test kernel with kiln.test=panic: pvpanic, exit 6
#   bzimage the test kernel's bzImage (Linux boot protocol, 64-bit entry and
#           the kernel's own decompressor) instead of the PVH vmlinux
#   mmio    the test kernel with acpi=off, its console on hvc0: virtio-console
#           over virtio-mmio (announced by virtio_mmio.device=). Shell input
#           comes through kiln's stdin; the guest prints "kiln-guest: cpus=1"
#           and the shell computes a line; then a sysrq crash, since without
#           ACPI Linux can neither power off nor find pvpanic: panic=-1 and
#           reboot=k end kiln with 4 (guest reset)
# Environment:
#   KILN_LINUX_TESTS="tiny debian panic"   which cases to run
#   KILN_LINUX_TIMEOUT_TINY=300            seconds per test-kernel boot
#   KILN_LINUX_TIMEOUT_DEBIAN=1500         seconds for Debian's kernel (HOST.md:
#                                          ~280 s with 1 vCPU on kvm_pvm)
#   KILN_REQUIRE_KVM=1                     fail (exit 1) instead of skipping
#                                          when /dev/kvm is missing
#   KILN_CACHE                             where kernels and initramfs are cached
# Last line: "linux: N passed, M failed, K skipped". Exit 1 if anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KILN=${1:-}
if [ -z "$KILN" ] || [ ! -x "$KILN" ]; then
	echo "usage: tests/linux/run.sh KILN_BINARY (got: '${KILN}')" >&2
	exit 2
fi
KILN=$(cd "$(dirname "$KILN")" && pwd)/$(basename "$KILN")
CASES=${KILN_LINUX_TESTS:-tiny bzimage debian panic mmio}
T_TINY=${KILN_LINUX_TIMEOUT_TINY:-300}
T_DEBIAN=${KILN_LINUX_TIMEOUT_DEBIAN:-1500}
CMDLINE_BASE="console=ttyS0 reboot=k panic=-1"

if ! { [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ]; }; then
	if [ "${KILN_REQUIRE_KVM:-0}" = 1 ]; then
		echo "linux: FAILED — /dev/kvm not available and KILN_REQUIRE_KVM=1"
		echo "linux: 0 passed, 1 failed"
		exit 1
	fi
	echo "linux: SKIPPED — /dev/kvm not available"
	echo "linux: 0 passed, 0 failed, $(wc -w <<<"$CASES") skipped"
	exit 0
fi

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/kiln-linux-tests.XXXXXX")
pass=0 fail=0 skip=0

# Guest images, built or taken from the cache (each prints its directory).
want() { [[ " $CASES " == *" $1 "* ]]; }
TK='' DG=''
if want tiny || want panic || want bzimage || want mmio; then
	echo "linux: test kernel: scripts/build-test-kernel.sh (minutes on a cold cache)"
	TK=$("$ROOT/scripts/build-test-kernel.sh" 2>"$LOGS/build-test-kernel.log" | tail -1) || TK=
	[ -n "$TK" ] && [ -f "$TK/vmlinux" ] || { TK=; echo "linux: test kernel build failed: $LOGS/build-test-kernel.log"; }
fi
echo "linux: Debian guest: scripts/mk-debian-guest.sh"
DG=$("$ROOT/scripts/mk-debian-guest.sh" 2>"$LOGS/mk-debian-guest.log" | tail -1) || DG=
[ -n "$DG" ] && [ -f "$DG/initramfs.cpio" ] || { DG=; echo "linux: mk-debian-guest.sh failed: $LOGS/mk-debian-guest.log"; }

# run_case NAME KERNEL TIMEOUT CMDLINE_EXTRA WANT_CODE WANT_LINE
run_case() {
	local name=$1 kernel=$2 tmo=$3 extra=$4 want_code=$5 want_line=$6
	local con="$LOGS/$name.console" err="$LOGS/$name.stderr" t0 t1 code secs why=
	t0=$(date +%s%N)
	timeout -k 10 "$tmo" "$KILN" run --kernel "$kernel" --initrd "$DG/initramfs.cpio" \
		--cmdline "$CMDLINE_BASE $extra" --cpus 2 --memory 256 \
		--console "file:$con" </dev/null >"$err" 2>&1
	code=$?
	t1=$(date +%s%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
		why="timed out after ${tmo}s"
	elif [ "$code" -ne "$want_code" ]; then
		why="exit code $code, want $want_code"
	elif [ -n "$want_line" ] && ! grep -qF "$want_line" "$con" "$err" 2>/dev/null; then
		why="no '$want_line' on the console or from kiln"
	fi
	local up
	up=$(grep -o 'uptime=[0-9.]*s' "$con" 2>/dev/null | head -1)
	if [ -z "$why" ]; then
		pass=$((pass + 1))
		echo "PASS linux/$name (${secs}s wall${up:+, guest $up at init})"
	else
		fail=$((fail + 1))
		echo "FAIL linux/$name: $why (${secs}s wall)"
		echo "  --- console (last 25 lines of $con)"
		tail -n 25 "$con" 2>/dev/null | sed 's/^/  | /'
		echo "  --- kiln stderr (last 15 lines of $err)"
		tail -n 15 "$err" 2>/dev/null | sed 's/^/  | /'
	fi
}

skip_case() { skip=$((skip + 1)); echo "SKIP linux/$1: $2"; }

# mmio: hvc0 over virtio-mmio, output and input. The shell line's result
# ("42kiln-hvc-input") only exists if the guest read and ran what kiln fed it.
run_mmio() {
	local con="$LOGS/mmio.console" err="$LOGS/mmio.stderr" code why=
	printf 'echo 1 > /proc/sys/kernel/sysrq\necho $((6*7))kiln-hvc-input\necho c > /proc/sysrq-trigger\n' |
		timeout -k 10 "$T_TINY" "$KILN" run --kernel "$TK/vmlinux" --initrd "$DG/initramfs.cpio" \
		--cmdline "console=hvc0 reboot=k panic=-1 acpi=off" --memory 256 \
		--virtio-transport mmio --console virtio,stdio --stats >"$con" 2>"$err"
	code=$?
	if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
		why="timed out after ${T_TINY}s"
	elif [ "$code" -ne 4 ]; then
		why="exit code $code, want 4"
	elif ! grep -q '^kiln-guest: cpus=1' "$con"; then
		why="no 'kiln-guest: cpus=1' on hvc0"
	elif ! grep -q '^42kiln-hvc-input' "$con"; then
		why="the shell did not run the input line"
	elif ! grep -q 'virtio-console: virtio-mmio @0xf0000000 irq 5' "$err"; then
		why="kiln did not report the virtio-mmio console"
	fi
	if [ -z "$why" ]; then
		pass=$((pass + 1))
		echo "PASS linux/mmio"
	else
		fail=$((fail + 1))
		echo "FAIL linux/mmio: $why"
		tail -n 25 "$con" 2>/dev/null | sed 's/^/  | /'
		tail -n 15 "$err" 2>/dev/null | sed 's/^/  | /'
	fi
}

for c in $CASES; do
	case "$c" in
	tiny|panic|bzimage|mmio)
		if [ -z "$TK" ] || [ -z "$DG" ]; then
			fail=$((fail + 1)); echo "FAIL linux/$c: guest images missing (see above)"; continue
		fi
		if [ "$c" = mmio ]; then
			run_mmio
		elif [ "$c" = tiny ]; then
			run_case tiny "$TK/vmlinux" "$T_TINY" "kiln.test=1" 0 "kiln-guest: cpus=2"
		elif [ "$c" = bzimage ]; then
			run_case bzimage "$TK/bzImage" "$T_TINY" "kiln.test=1" 0 "kiln-guest: cpus=2"
		else
			# kiln's own word, not the guest's: the init's echo and the kernel's
			# panic messages share the console and may interleave.
			run_case panic "$TK/vmlinux" "$T_TINY" "kiln.test=panic" 6 "pvpanic: guest reported a kernel panic"
		fi
		;;
	debian)
		if [ -z "$DG" ]; then
			fail=$((fail + 1)); echo "FAIL linux/debian: guest images missing (see above)"; continue
		fi
		k="$DG/vmlinux"
		[ -f "$k" ] || k="$DG/vmlinuz"
		run_case debian "$k" "$T_DEBIAN" "kiln.test=1" 0 "kiln-guest: cpus=2"
		;;
	*) skip_case "$c" "unknown case (KILN_LINUX_TESTS)" ;;
	esac
done

if [ "$fail" -eq 0 ]; then
	rm -rf "$LOGS"
else
	echo "linux: logs kept in $LOGS"
fi
if [ "$skip" -gt 0 ]; then
	echo "linux: $pass passed, $fail failed, $skip skipped"
else
	echo "linux: $pass passed, $fail failed"
fi
[ "$fail" -eq 0 ]
