#!/usr/bin/env bash
# Per-transfer exit counts: one guest->host and one host->guest TCP transfer per boot, kiln and QEMU alternating, with KVM's own counters (debugfs) around each.
#
# usage: bench/net-exits.sh KILN_BINARY        (root; run bench/net-throughput.sh once first: it builds the guest)
#   BENCH_BACKEND=user|tap   BENCH_VMMS="kiln qemu"   BENCH_REPS=3   BENCH_BYTES=16777216
#   BENCH_GUEST=linux|lwip   as in bench/net-throughput.sh (default: lwip on kvm_pvm)
# Prints, per run: MB/s each way and the KVM counters exits, irq_injections,
# insn_emulation (emulated MMIO: virtio kicks, mostly), irq_window_exits for
# each transfer. Why these: under virtualization, and far more under nested
# virtualization, a packet's cost is its exits (docs/networking.md, "How few
# exits a transfer costs"). In this repository's KVM lab:
#   tests/kvmlab/run.sh --timeout 1400 --env BENCH_BACKEND -- bash bench/net-exits.sh build/kiln
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/bench/lib.sh"
. "$ROOT/bench/net-vmm.sh"
KILN=$(realpath "${1:?usage: bench/net-exits.sh KILN_BINARY}")
cd "$ROOT" || exit 2
BE=${BENCH_BACKEND:-user}
VMMS=${BENCH_VMMS:-kiln qemu}
REPS=${BENCH_REPS:-3}
BYTES=${BENCH_BYTES:-16777216}
net_guest
if [ "$GUEST" = lwip ]; then
	KERNEL=tests/guests/build/net_lwip.elf INITRD=
	[ -f "$KERNEL" ] || { echo "net-exits: $KERNEL missing (scripts/get-lwip.sh, then make guests)" >&2; exit 2; }
else
	TK=$(find ~/.cache/kiln -maxdepth 1 -name "test-kernel-*" -type d 2>/dev/null | head -1)
	KERNEL=$TK/bzImage INITRD=bench/build/net-bench/initrd.cpio
	if [ -z "$TK" ] || [ ! -f "$INITRD" ]; then echo "net-exits: run bench/net-throughput.sh once first (test kernel, $INITRD)" >&2; exit 2; fi
fi
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug || exit 2
[ -d /sys/kernel/debug/kvm ] || { echo "net-exits: no /sys/kernel/debug/kvm (is kvm loaded?)" >&2; exit 2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/kiln-net-exits.XXXXXX")
NS=kiln-exits-$$
VPID=
keep=
cleanup() { [ -n "$VPID" ] && kill "$VPID" 2>/dev/null; ip netns del "$NS" 2>/dev/null; }
trap cleanup EXIT
wrap=()
if [ "$BE" = tap ]; then
	modprobe tun 2>/dev/null
	[ -e /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; } || exit 2
	ip netns add "$NS" && ip -n "$NS" link set lo up && ip -n "$NS" tuntap add kt0 mode tap &&
		ip -n "$NS" addr add 192.168.78.1/24 dev kt0 && ip -n "$NS" link set kt0 up || exit 2
	wrap=(ip netns exec "$NS"); host=192.168.78.2; ipa="bench.ip=192.168.78.2/24"
	[ "$GUEST" = lwip ] && ipa="ip=192.168.78.2 mask=255.255.255.0 gw=192.168.78.1"
else
	host=127.0.0.1; ipa="bench.ip=dhcp"
	[ "$GUEST" = lwip ] && ipa=
fi
# The counters of the KVM VM whose process is $1 (debugfs names it PID-FD;
# the one with a vCPU: a VMM may open a scratch VM to probe capabilities).
counters() {
	local d
	for d in /sys/kernel/debug/kvm/"$1"-*/; do
		[ -d "${d}vcpu0" ] || continue
		# Some hosts refuse the reads (kvm_pvm here: EPERM): then "-", and the MB/s still count.
		cat "$d"exits >/dev/null 2>&1 || { echo -; return; }
		echo "$(cat "$d"exits) $(cat "$d"irq_injections) $(cat "$d"insn_emulation) $(cat "$d"irq_window_exits)"
		return
	done
}
delta() {
	[ "$1" = - ] && { echo "KVM counters unreadable"; return; }
	read -r a1 b1 c1 d1 <<<"$1"; read -r a2 b2 c2 d2 <<<"$2"; echo "exits=$((a2 - a1)) irqs=$((b2 - b1)) emulated=$((c2 - c1)) irq_windows=$((d2 - d1))"; }
P=$((30000 + $$ % 20000))
for rep in $(seq "$REPS"); do
	for vmm in $VMMS; do
		P=$((P + 3)); con=$W/$vmm-$rep.con
		append="console=ttyS0 reboot=k panic=-1 quiet rdinit=/bench-init bench.bytes=$BYTES $ipa"
		[ "$GUEST" = lwip ] && append="mode=bench bytes=$BYTES seconds=3600 $ipa"
		if [ "$BE" = tap ]; then p1=5001 p2=5002; else p1=$P p2=$((P + 1)); fi
		net_vmm_cmd "$vmm" "$BE" "$KILN" "$KERNEL" "$INITRD" "$con" "$append" "$P"
		"${wrap[@]}" "${NET_VMM_CMD[@]}" </dev/null >"$W/$vmm-$rep.err" 2>&1 &
		VPID=$!
		for ((i = 0; i < 180; i++)); do grep -aq bench-ready "$con" 2>/dev/null && break; sleep 1; done
		# The VMM's own pid (ip netns exec execs, so it is $VPID either way).
		s0=$(counters "$VPID")
		rx=$("${wrap[@]}" timeout 300 python3 bench/net_client.py tcp-recv "$host" "$p2" 2>/dev/null)
		s1=$(counters "$VPID")
		tx=$("${wrap[@]}" timeout 300 python3 bench/net_client.py tcp-send "$host" "$p1" "$BYTES" 2>/dev/null)
		s2=$(counters "$VPID")
		if [ -z "$s0" ] || [ -z "$s2" ] || ! kill -0 "$VPID" 2>/dev/null; then
			echo "$rep $vmm $BE: the guest did not come up or died (console $con)"; keep=1
		else
			echo "$rep $vmm $BE guest->host ${rx%% *} MB/s ($(delta "$s0" "$s1"))"
			echo "$rep $vmm $BE host->guest ${tx:--} MB/s ($(delta "$s1" "$s2"))"
		fi
		kill "$VPID" 2>/dev/null; wait "$VPID" 2>/dev/null; VPID=
	done
done
if [ -n "${keep:-}" ]; then echo "net-exits: consoles kept in $W"; else rm -rf "$W"; fi
