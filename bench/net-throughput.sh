#!/usr/bin/env bash
# Bench (net): virtio-net throughput and small-frame rate, kiln vs QEMU, over
# TAP and over user-mode networking, with the same guest and the same tools.
#
# usage: bench/net-throughput.sh KILN_BINARY      (root: a network namespace and a tap)
#   BENCH_BYTES=268435456   bytes per TCP transfer
#   BENCH_UDP_SECONDS=5     length of the small-datagram flood
#   BENCH_BACKENDS="tap user"  BENCH_VMMS="kiln qemu"
#   BENCH_GUEST=linux|lwip  the guest both VMMs run (default: lwip on kvm_pvm,
#                           where QEMU cannot boot Linux; linux elsewhere)
#   BENCH_TIMEOUT=300       seconds to wait for a guest to come up
#   BENCH_KILN_POLL="0"     kiln's --io-poll settings, one kiln row each ("0 50":
#                           without and with a 50 us busy-poll window, row
#                           kiln/p50); kiln's I/O thread and virtio-net --stats
#                           lines follow each kiln row
#   BENCH_ROUNDS=1          repeat the whole matrix, interleaved (round 1 of
#                           every row, then round 2, ...), and end with each
#                           row's median: one noisy run cannot decide a figure
# The guest, one vCPU, the same file under both VMMs:
#   linux  the test kernel's bzImage, the Debian busybox initramfs plus a
#          /bench-init of its own (appended cpio), 256 MiB; QEMU's pc machine
#   lwip   the lwIP test guest (tests/guests/build/net_lwip.elf, mode=bench),
#          128 MiB: lwIP at CPL3 on the test guests' polling virtio-net-pci
#          driver (no interrupts, no offloads), the same servers on the same
#          ports; QEMU's microvm with PCIe (bench/net-vmm.sh). On kvm_pvm its
#          stack runs natively, where a Linux guest's runs emulated (HOST.md)
# Figures:
#   host->guest, guest->host  TCP MB/s (bench/net_client.py against busybox nc
#                             or lwIP in the guest; the time ends when the far
#                             side has every byte)
#   rx pps                    18-byte UDP datagrams the guest's stack received
#                             per second during a host flood (Linux:
#                             /proc/net/snmp Udp InDatagrams + NoPorts +
#                             InErrors; lwIP: datagrams delivered to udp 9)
# QEMU: virtio-net-pci on -netdev tap (vnet_hdr=on, vhost off: QEMU's own
# user-space path, as kiln's) or -netdev user with the same hostfwd ports.
# Logs: bench/build/net-*.log.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/net-vmm.sh"
bench_need_kvm net-throughput
bench_kiln net-throughput.sh "${1:-}"
BYTES=${BENCH_BYTES:-268435456}
UDPS=${BENCH_UDP_SECONDS:-5}
BACKENDS=${BENCH_BACKENDS:-tap user}
VMMS=${BENCH_VMMS:-kiln qemu}
TMO=${BENCH_TIMEOUT:-300}
CLIENT="python3 $BENCH_DIR/net_client.py"
mkdir -p "$BUILD"
[ "$(id -u)" = 0 ] || { echo "net-throughput: SKIPPED — needs root for the tap's network namespace"; exit 0; }
have qemu-system-x86_64 || VMMS=${VMMS//qemu/}
net_guest
NS=kiln-bench-$$
P=$((30000 + $$ % 20000))   # hostfwd ports P (tcp 5001), P+1 (tcp 5002), P+2 (udp 9)

if [ "$GUEST" = lwip ]; then
	KERNEL=$ROOT/tests/guests/build/net_lwip.elf INITRD=
	[ -f "$KERNEL" ] || { echo "net-throughput: $KERNEL missing (scripts/get-lwip.sh, then make guests)"; exit 1; }
	GUEST_NAME="lwIP test guest (net_lwip.elf)"
else
	TK=$("$ROOT/scripts/build-test-kernel.sh" 2>"$BUILD/build-test-kernel.log" | tail -1)
	DG=$("$ROOT/scripts/mk-debian-guest.sh" ${KILN_GUEST_OUT:+"$KILN_GUEST_OUT"} 2>"$BUILD/mk-debian-guest.log" | tail -1)
	[ -f "$TK/bzImage" ] && [ -f "$DG/initramfs.cpio" ] || { echo "net-throughput: guest images missing (see $BUILD/*.log)"; exit 1; }

	# The guest's /bench-init, appended to the initramfs as a second cpio archive.
	T=$BUILD/net-bench
	rm -rf "$T" && mkdir -p "$T/root"
	cat >"$T/root/bench-init" <<'INIT'
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
ip link set lo up; ip link set eth0 up
bip=dhcp bytes=268435456
for a in $(cat /proc/cmdline); do
	case "$a" in bench.ip=*) bip=${a#*=} ;; bench.bytes=*) bytes=${a#*=} ;; esac
done
if [ "$bip" = dhcp ]; then
	printf '#!/bin/sh\n[ "$1" = bound ] && ip addr add "$ip/$mask" dev "$interface"\nexit 0\n' >/tmp/l.sh
	chmod +x /tmp/l.sh; udhcpc -i eth0 -q -n -t 10 -s /tmp/l.sh >/dev/null 2>&1
else
	ip addr add "$bip" dev eth0
fi
echo "bench: addr=$(ip -4 -o addr show eth0 | awk '{print $4}')"
(while :; do nc -l -p 5001 >/dev/null; done) &
(while :; do dd if=/dev/zero bs=65536 count=$((bytes / 65536)) 2>/dev/null | nc -l -p 5002 >/dev/null; done) &
(while :; do echo "bench-udp $(awk '/^Udp: [0-9]/ { print $2 + $3 + $4; exit }' /proc/net/snmp)"; sleep 1; done) &
echo bench-ready
while :; do sleep 3600; done
INIT
	chmod 755 "$T/root/bench-init"
	python3 "$ROOT/scripts/mkcpio.py" "$T/root" "$T/bench.cpio" && cat "$DG/initramfs.cpio" "$T/bench.cpio" >"$T/initrd.cpio" ||
		{ echo "net-throughput: cannot build the bench initramfs"; exit 1; }
	KERNEL=$TK/bzImage INITRD=$T/initrd.cpio GUEST_NAME="$(basename "$TK")/bzImage"
fi
cleanup() { [ -n "${VPID:-}" ] && kill "$VPID" 2>/dev/null; ip netns del "$NS" 2>/dev/null; }
trap cleanup EXIT
if [[ " $BACKENDS " == *" tap "* ]]; then
	modprobe tun 2>/dev/null
	[ -e /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; }
	ip netns add "$NS" && ip -n "$NS" link set lo up && ip -n "$NS" tuntap add kt0 mode tap &&
		ip -n "$NS" addr add 192.168.78.1/24 dev kt0 && ip -n "$NS" link set kt0 up ||
		{ echo "net-throughput: cannot make the namespace and tap"; exit 1; }
fi

# last_udp CONSOLE: the guest's latest datagram count.
last_udp() { grep -a '^bench-udp [0-9]' "$1" | tail -1 | cut -d' ' -f2; }

run_one() { # VMM BACKEND [IO_POLL_US]
	local vmm=$1 be=$2 poll=${3:-0} con err host wrap=() i tx rx c0 c1 sent pps label=$1
	[ "$vmm" = kiln ] && [ "$poll" != 0 ] && label="kiln/p$poll"
	con="$BUILD/net-${label//\//-}-$be.log" err="$BUILD/net-${label//\//-}-$be.stderr"
	local append="console=ttyS0 reboot=k panic=-1 quiet rdinit=/bench-init bench.bytes=$BYTES"
	[ "$GUEST" = lwip ] && append="mode=bench bytes=$BYTES seconds=3600"
	rm -f "$con"
	if [ "$be" = tap ]; then
		host=192.168.78.2; wrap=(ip netns exec "$NS"); p1=5001 p2=5002 p3=9
		if [ "$GUEST" = lwip ]; then append+=" ip=192.168.78.2 mask=255.255.255.0 gw=192.168.78.1"
		else append+=" bench.ip=192.168.78.2/24"; fi
	else
		host=127.0.0.1; p1=$P p2=$((P + 1)) p3=$((P + 2))
		[ "$GUEST" = lwip ] || append+=" bench.ip=dhcp"
	fi
	net_vmm_cmd "$vmm" "$be" "$KILN" "$KERNEL" "$INITRD" "$con" "$append" "$P" "$poll"
	"${wrap[@]}" "${NET_VMM_CMD[@]}" </dev/null >"$err" 2>&1 &
	VPID=$!
	for ((i = 0; i < TMO; i++)); do
		grep -aq bench-ready "$con" 2>/dev/null && break
		kill -0 "$VPID" 2>/dev/null || break
		sleep 1
	done
	if ! grep -aq bench-ready "$con" 2>/dev/null; then
		printf '%-9s %-5s  guest did not come up (%s)\n' "$label" "$be" "$con"
		kill "$VPID" 2>/dev/null; wait "$VPID" 2>/dev/null; VPID=; return
	fi
	# A figure counts only when the transfer was whole and the guest still runs
	# afterwards (a guest that died mid-run gives "-", not a fast short transfer).
	alive() { kill -0 "$VPID" 2>/dev/null; }
	tx=$("${wrap[@]}" timeout 600 $CLIENT tcp-send "$host" "$p1" "$BYTES" 2>>"$con.client") && alive || tx=-
	rx=$("${wrap[@]}" timeout 600 $CLIENT tcp-recv "$host" "$p2" 2>>"$con.client") || rx=-
	if [ "$rx" != - ] && [ "${rx#* }" = "$BYTES" ] && alive; then rx=${rx%% *}; else rx=-; fi
	sleep 1.2; c0=$(last_udp "$con")
	sent=$("${wrap[@]}" $CLIENT udp-flood "$host" "$p3" "$UDPS" 18 2>>"$con.client") || sent=-
	sleep 2.5; c1=$(last_udp "$con")
	if [ -n "$c0" ] && [ -n "$c1" ] && alive; then
		pps=$(awk -v a="$c0" -v b="$c1" -v s="$UDPS" 'BEGIN { printf "%d", (b - a) / s }')
	else
		pps=-
	fi
	alive || echo "$label $be: the guest stopped during the run (see $con and $err)"
	printf '%-9s %-5s  host->guest %8s MB/s   guest->host %8s MB/s   rx %9s pps (host sent %s pps)\n' \
		"$label" "$be" "$tx" "$rx" "$pps" "$sent"
	echo "$label $be $tx $rx $pps" >>"$RESULTS"
	kill "$VPID" 2>/dev/null; wait "$VPID" 2>/dev/null; VPID=
	# kiln prints --stats when SIGTERM stops it: the kicks and what polling took instead.
	[ "$vmm" = kiln ] && grep -aE '^(I/O thread|virtio-net0)' "$err" | sed "s/^/    /"
	return 0
}

ROUNDS=${BENCH_ROUNDS:-1}
RESULTS=$BUILD/net-results.txt
: >"$RESULTS"
echo "net-throughput: $GUEST_NAME, 1 vCPU, $((BYTES / 1048576)) MiB per TCP transfer, ${UDPS}s UDP flood, $ROUNDS round(s)"
for ((round = 1; round <= ROUNDS; round++)); do
	[ "$ROUNDS" = 1 ] || echo "-- round $round"
	for be in $BACKENDS; do
		for vmm in $VMMS; do
			if [ "$vmm" = kiln ]; then
				for poll in ${BENCH_KILN_POLL:-0}; do run_one kiln "$be" "$poll"; done
			else
				run_one "$vmm" "$be"
			fi
		done
	done
done
if [ "$ROUNDS" -gt 1 ]; then
	echo "-- medians of $ROUNDS rounds (host->guest MB/s, guest->host MB/s, rx pps; failed runs left out)"
	python3 - "$RESULTS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    label, be, *figs = line.split()
    rows.setdefault((label, be), []).append(figs)
def med(vals):
    v = [float(x) for x in vals if x not in ("-", "")]
    return "%.1f" % statistics.median(v) if v else "-"
for (label, be), runs in rows.items():
    cols = [med(r[i] for r in runs) for i in range(3)]
    print("%-9s %-5s  host->guest %8s MB/s   guest->host %8s MB/s   rx %9s pps  (%d runs)" % (label, be, *cols, len(runs)))
PY
fi
exit 0
