#!/usr/bin/env bash
# Bench (e): virtio-blk IOPS and MiB/s seen from inside a guest, kiln vs QEMU on the same guest ELF, host fio as the limit.
#
# The guest (bench/blk/blk_bench.c, built to bench/build/blk-bench.elf) drives
# virtio-blk over virtio-pci with the test guests' polling driver: 4 KiB
# random reads at depth BENCH_QD, then 128 KiB sequential reads at depth
# BENCH_SEQ_QD, BENCH_SECS seconds each, VIRTIO_F_EVENT_IDX negotiated (a kick
# only when the device asks for one). It times itself with the TSC calibrated
# against the CMOS RTC and prints IOPS and MiB/s. The disk is a raw image in
# $TMPDIR (default /tmp; tmpfs in the KVM lab), read once beforehand so it is
# in the page cache. Then host fio reads the same file the same ways
# (io_uring, buffered, same depths): what the host itself gets. Prints
# figures, no verdict.
#
# usage: bench/blk-iops.sh KILN_BINARY
#   BENCH_SECS=5        seconds per phase
#   BENCH_KILN_DISK_OPTS  extra --disk options for kiln, e.g. io=sync
#   BENCH_KILN_POLL="0"   kiln's --io-poll settings, one kiln row each: "0 50"
#                       compares sleeping on kicks with a 50 us busy-poll window
#                       (row "kiln --io-poll 50"; its --stats show the polling)
#   BENCH_QD=32         4 KiB random-read depth; BENCH_SEQ_QD=8 for 128 KiB sequential
#   BENCH_DISK_MIB=128  image size
#   QEMU=qemu-system-x86_64, QEMU_ACCEL=kvm, QEMU_MACHINE=microvm,pcie=on,rtc=on,
#   QEMU_CPU (default: host; QEMU's own model on kvm_pvm, see bench/lib.sh)
#   (microvm: no firmware, so the guest places the BARs itself; rtc=on: under KVM
#   microvm has no CMOS RTC by default, and the guest times itself with it; q35 works too)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_need_kvm blk-iops
bench_kiln blk-iops.sh "${1:-}"
SECS=${BENCH_SECS:-5}
QD=${BENCH_QD:-32}
SEQ_QD=${BENCH_SEQ_QD:-8}
MIB=${BENCH_DISK_MIB:-128}
QEMU=${QEMU:-qemu-system-x86_64}
QEMU_MACHINE=${QEMU_MACHINE:-microvm,pcie=on,rtc=on}
CMDLINE="secs=$SECS qd=$QD seq_qd=$SEQ_QD"
TMO=$((SECS * 2 + 120))   # two phases, the TSC calibration, and a slow (emulated) start

make -C "$BENCH_DIR/blk" >/dev/null || { echo "blk-iops: cannot build the guest (make -C bench/blk)" >&2; exit 1; }
ELF=$BUILD/blk-bench.elf
IMGDIR=${TMPDIR:-/tmp}
IMG=$(mktemp "$IMGDIR/kiln-blk-bench.XXXXXX.img") || exit 1
OUT=$BUILD/blk-iops
mkdir -p "$OUT"
trap 'rm -f "$IMG"' EXIT
python3 "$ROOT/tests/guests/disk-image.py" make "$IMG" $((MIB * 2048)) || exit 1
cat "$IMG" >/dev/null     # into the page cache (on tmpfs it is the page cache)

fs=$(stat -f -c %T "$IMGDIR" 2>/dev/null)
echo "blk-iops: $MIB MiB image in $IMGDIR ($fs), ${SECS} s per phase, 4k randread qd=$QD, 128k seqread qd=$SEQ_QD"
echo "blk-iops: host $(uname -r), $(nproc) CPUs${KVMLAB:+, inside the KVM lab (nested SVM under TCG: figures are relative)}"

# Rows: name, randread IOPS, MiB/s, seqread IOPS, MiB/s (or "-").
ROWS=()

# guest_row NAME CONSOLE: the row from the guest's "blk-bench: ..." lines, or nothing.
guest_row() {
	local r s
	r=$(tr -d '\r' <"$2" | sed -n 's/^blk-bench: randread .*: \([0-9]*\) IOPS, \([0-9.]*\) MiB\/s.*/\1 \2/p')
	s=$(tr -d '\r' <"$2" | sed -n 's/^blk-bench: seqread .*: \([0-9]*\) IOPS, \([0-9.]*\) MiB\/s.*/\1 \2/p')
	[ -n "$r" ] && [ -n "$s" ] && ROWS+=("$1|${r% *}|${r#* }|${s% *}|${s#* }")
}

# show_guest NAME CONSOLE LOG RC: the guest's lines; why it failed if it did.
show_guest() {
	tr -d '\r' <"$2" | grep -E '^(blk-bench|FAIL)' | sed "s/^/  $1: /"
	if ! grep -q '^SUCCESS' <(tr -d '\r' <"$2"); then
		echo "  $1: no result (exit $4): $(tr -d '\r' <"$2" | grep -v '^$' | tail -n 1 | cut -c1-160)" \
			"log: $(grep -v '^$' "$3" | tail -n 1 | cut -c1-160)"
	fi
}

# kiln: --disk on the image (its default I/O engine), the guest's console to a file; once per --io-poll setting.
for poll in ${BENCH_KILN_POLL:-0}; do
	name=kiln; [ "$poll" != 0 ] && name="kiln --io-poll $poll"
	o=$OUT/kiln-poll$poll
	timeout -k 5 "$TMO" "$KILN" run --kernel "$ELF" --memory 128 --disk "path=$IMG${BENCH_KILN_DISK_OPTS:+,$BENCH_KILN_DISK_OPTS}" --cmdline "$CMDLINE" \
		--console "file:$o.out" --stats --io-poll "$poll" </dev/null >"$o.log" 2>&1
	rc=$?
	show_guest "$name" "$o.out" "$o.log" $rc
	grep -E '^(virtio-blk|I/O thread)' "$o.log" | sed "s/^/  $name --stats: /"
	guest_row "$name" "$o.out"
done

# QEMU: the same ELF by PVH boot, a modern-only virtio-blk-pci, io_uring on the page cache like fio.
if have "$QEMU"; then
	qver=$("$QEMU" --version | sed -n '1s/.*version \([0-9.]*\).*/\1/p')
	# shellcheck disable=SC2054  # the commas are QEMU option syntax
	timeout -k 5 "$TMO" "$QEMU" -M "$QEMU_MACHINE" -accel "${QEMU_ACCEL:-kvm}" "${BENCH_QEMU_CPU[@]}" -m 128 -smp 1 \
		-kernel "$ELF" -append "$CMDLINE" -display none -monitor none -serial "file:$OUT/qemu.out" \
		-no-reboot -device isa-debug-exit,iobase=0xf4,iosize=1 \
		-drive "file=$IMG,if=none,id=d0,format=raw,cache=writeback,aio=io_uring" \
		-device virtio-blk-pci,drive=d0,disable-legacy=on </dev/null >"$OUT/qemu.log" 2>&1
	rc=$?
	show_guest "qemu" "$OUT/qemu.out" "$OUT/qemu.log" $rc
	guest_row "QEMU $qver ${QEMU_MACHINE%%,*} (${QEMU_ACCEL:-kvm}, io_uring)" "$OUT/qemu.out"
else
	echo "blk-iops: $QEMU not installed, no QEMU row"
fi

# fio on the host: the same file, reads only, buffered (page cache), io_uring at the same depths.
fio_job() { # NAME RW BS DEPTH: "IOPS MiB/s"
	fio --name="$1" --filename="$IMG" --readonly --rw="$2" --bs="$3" --iodepth="$4" --ioengine=io_uring \
		--direct=0 --time_based --runtime="$SECS" --norandommap --randrepeat=0 --output-format=json \
		>"$OUT/fio-$1.json" 2>"$OUT/fio-$1.err" &&
		python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["jobs"][0]["read"]
print("%d %.1f" % (r["iops"], r["bw_bytes"] / 2**20))' "$OUT/fio-$1.json"
}
if have fio; then
	r=$(fio_job randread randread 4k "$QD") && s=$(fio_job seqread read 128k "$SEQ_QD") &&
		ROWS+=("host fio $(fio --version | sed 's/^fio-//') (io_uring, buffered)|${r% *}|${r#* }|${s% *}|${s#* }") ||
		echo "blk-iops: fio failed: $(tail -n 1 "$OUT"/fio-*.err 2>/dev/null)"
else
	echo "blk-iops: fio not installed (apt-get install fio), no host row"
fi

echo
printf '| %-40s | %14s | %8s | %14s | %8s |\n' "" "4k rand IOPS" "MiB/s" "128k seq IOPS" "MiB/s"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..42})" "$(printf -- '-%.0s' {1..16})" \
	"$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..16})" "$(printf -- '-%.0s' {1..10})"
for row in "${ROWS[@]}"; do
	IFS='|' read -r n a b c d <<<"$row"
	printf '| %-40s | %14s | %8s | %14s | %8s |\n' "$n" "$a" "$b" "$c" "$d"
done
# kiln against QEMU, when both produced figures.
k=$(printf '%s\n' "${ROWS[@]}" | grep '^kiln|') q=$(printf '%s\n' "${ROWS[@]}" | grep '^QEMU')
if [ -n "$k" ] && [ -n "$q" ]; then
	awk -F'|' -v k="$k" -v q="$q" 'BEGIN { split(k, a, "|"); split(q, b, "|");
		printf "kiln / QEMU: 4k randread %.2fx, 128k seqread %.2fx\n", a[2] / b[2], a[4] / b[4] }'
fi
exit 0
