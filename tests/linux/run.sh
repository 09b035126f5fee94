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
#   blk-pci     the test kernel with its root fs on virtio-blk over virtio-pci
#               (root=/dev/vda rw, no initramfs), virtio-rng, console on hvc0
#               (virtio-console); kiln.test=disk in the guest reads a file of
#               known checksum, writes one, reads /dev/hwrng. After kiln exits
#               the host checks the image: dumpe2fs (mount count, last mount
#               time) and debugfs (the guest's file); and kiln's rng counters.
#   blk-mmio    the same over virtio-mmio (announced in the DSDT)
#   blk-poll    blk-pci with --io-poll 50 (the I/O thread busy-polls the queue);
#               kiln's --stats must show poll windows
#   debian-blk  Debian's cloud kernel, its virtio_pci/virtio_blk/virtio-rng
#               modules loaded from the initramfs, the disk mounted on /mnt
#   mmio    the test kernel with acpi=off, its console on hvc0: virtio-console
#           over virtio-mmio (announced by virtio_mmio.device=). Shell input
#           comes through kiln's stdin; the guest prints "kiln-guest: cpus=1"
#           and the shell computes a line; then a sysrq crash, since without
#           ACPI Linux can neither power off nor find pvpanic: panic=-1 and
#           reboot=k end kiln with 4 (guest reset)
#   net-user    the test kernel on --net user: ip=dhcp gets 10.0.2.15 from
#               kiln's libslirp DHCP (the kernel's IP-Config line), the guest
#               reads its --ssh-key key from the metadata service's EC2,
#               OpenStack and MMDS V2 (token) paths, and the host reaches the
#               guest's port 8080 through hostfwd
#   net-tap     the test kernel on a multiqueue tap (queues=2, 2 vCPUs) in a
#               network namespace the test creates, static ip=: the namespace
#               pings the guest (small and 4 KB); metadata over TAP in MMDS V2
#               mode (a GET without a token is refused); needs root
# Environment:
#   KILN_LINUX_TESTS="tiny debian panic"   which cases to run
#   KILN_LINUX_TIMEOUT_TINY=300            seconds per test-kernel boot
#   KILN_LINUX_TIMEOUT_DEBIAN=1500         seconds for Debian's kernel (HOST.md:
#                                          ~280 s with 1 vCPU on kvm_pvm)
#   KILN_REQUIRE_KVM=1                     fail (exit 1) instead of skipping
#                                          when /dev/kvm is missing
#   KILN_CACHE                             where kernels and initramfs are cached
#   KILN_GUEST_OUT                         build the Debian guest there instead
#                                          (a branch's own guest-init.sh without
#                                          touching the shared cache)
#   KILN_EXTRA_ARGS                        more `kiln run` arguments for every
#                                          case (word-split), e.g. "--io-poll 50"
# Last line: "linux: N passed, M failed, K skipped". Exit 1 if anything failed.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KILN=${1:-}
if [ -z "$KILN" ] || [ ! -x "$KILN" ]; then
	echo "usage: tests/linux/run.sh KILN_BINARY (got: '${KILN}')" >&2
	exit 2
fi
KILN=$(cd "$(dirname "$KILN")" && pwd)/$(basename "$KILN")
CASES=${KILN_LINUX_TESTS:-tiny bzimage debian panic blk-pci blk-mmio blk-poll mmio debian-blk net-user net-tap}
# shellcheck disable=SC2206
EXTRA=(${KILN_EXTRA_ARGS:-})
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
if want tiny || want panic || want bzimage || want blk-pci || want blk-mmio || want blk-poll || want mmio || want net-user || want net-tap; then
	echo "linux: test kernel: scripts/build-test-kernel.sh (minutes on a cold cache)"
	TK=$("$ROOT/scripts/build-test-kernel.sh" 2>"$LOGS/build-test-kernel.log" | tail -1) || TK=
	[ -n "$TK" ] && [ -f "$TK/vmlinux" ] || { TK=; echo "linux: test kernel build failed: $LOGS/build-test-kernel.log"; }
fi
echo "linux: Debian guest: scripts/mk-debian-guest.sh"
DG=$("$ROOT/scripts/mk-debian-guest.sh" ${KILN_GUEST_OUT:+"$KILN_GUEST_OUT"} 2>"$LOGS/mk-debian-guest.log" | tail -1) || DG=
[ -n "$DG" ] && [ -f "$DG/initramfs.cpio" ] || { DG=; echo "linux: mk-debian-guest.sh failed: $LOGS/mk-debian-guest.log"; }

# run_case NAME KERNEL TIMEOUT CMDLINE_EXTRA WANT_CODE WANT_LINE
run_case() {
	local name=$1 kernel=$2 tmo=$3 extra=$4 want_code=$5 want_line=$6
	local con="$LOGS/$name.console" err="$LOGS/$name.stderr" t0 t1 code secs why=
	t0=$(date +%s%N)
	timeout -k 10 "$tmo" "$KILN" run --kernel "$kernel" --initrd "$DG/initramfs.cpio" \
		--cmdline "$CMDLINE_BASE $extra" --cpus 2 --memory 256 \
		--console "file:$con" "${EXTRA[@]}" </dev/null >"$err" 2>&1
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

# An ext4 image holding the initramfs's tree (busybox, /init) and known.bin.
make_disk() { # IMG
	local img=$1 tree
	tree=$(mktemp -d "$LOGS/tree.XXXXXX")
	(cd "$tree" && cpio -idm --quiet <"$DG/initramfs.cpio") || return 1
	head -c 1048576 /dev/urandom >"$tree/known.bin"
	sha256sum "$tree/known.bin" | cut -d' ' -f1 >"$img.sha256"
	PATH=$PATH:/sbin:/usr/sbin mkfs.ext4 -q -F -L kiln-root -d "$tree" "$img" 64M >/dev/null || return 1
	rm -rf "$tree"
}

# run_disk_case NAME KERNEL TIMEOUT "KILN ARGS" "CMDLINE" WANT_CONSOLE
# Boots with kiln.test=disk and checks the guest's report, the image after
# exit, and kiln's virtio-rng counters.
run_disk_case() {
	local name=$1 kernel=$2 tmo=$3 args=$4 cmdline=$5 want_con=$6
	local img="$LOGS/$name.img" con="$LOGS/$name.console" err="$LOGS/$name.stderr"
	local t0 t1 code secs why= tok sum mc
	if ! make_disk "$img" 2>"$LOGS/$name.mkdisk"; then
		fail=$((fail + 1)); echo "FAIL linux/$name: cannot build the ext4 image ($LOGS/$name.mkdisk)"; return
	fi
	t0=$(date +%s%N)
	# shellcheck disable=SC2086
	timeout -k 10 "$tmo" "$KILN" run --kernel "$kernel" $args --disk "path=$img" --rng --stats \
		--cmdline "$cmdline kiln.test=disk" --cpus 2 --memory 256 "${EXTRA[@]}" </dev/null >"$err" 2>&1
	code=$?
	t1=$(date +%s%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	[ -f "$con" ] || con=$err
	tok=$(grep -ao 'kiln-guest: wrote=[0-9a-f-]*' "$con" | head -1 | cut -d= -f2)
	sum=$(grep -ao 'known-sha256=[0-9a-f]*' "$con" | head -1 | cut -d= -f2)
	mc=$(PATH=$PATH:/sbin:/usr/sbin dumpe2fs -h "$img" 2>/dev/null | sed -n 's/^Mount count: *//p')
	if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
		why="timed out after ${tmo}s"
	elif [ "$code" -ne 0 ]; then
		why="exit code $code, want 0"
	elif [ "$sum" != "$(cat "$img.sha256")" ]; then
		why="guest read known.bin as '${sum:-nothing}', want $(cat "$img.sha256")"
	elif [ -z "$tok" ]; then
		why="the guest did not report its write"
	elif ! PATH=$PATH:/sbin:/usr/sbin debugfs -R "cat /guest-wrote.txt" "$img" 2>/dev/null | grep -qF "guest wrote $tok"; then
		why="the host does not find the guest's /guest-wrote.txt ($tok) in the image"
	elif [ "${mc:-0}" -lt 1 ]; then
		why="dumpe2fs: mount count '${mc}', want >= 1"
	elif PATH=$PATH:/sbin:/usr/sbin dumpe2fs -h "$img" 2>/dev/null | grep -q '^Last mount time: *n/a'; then
		why="dumpe2fs: no last mount time"
	elif ! grep -aq 'hwrng-bytes=64' "$con"; then
		why="the guest could not read 64 bytes from /dev/hwrng"
	elif ! grep -aqE 'virtio-rng[0-9]*: .*served=[1-9]' "$err"; then
		why="kiln's virtio-rng counters show no bytes served"
	elif [ -n "$want_con" ] && ! grep -aq "console=$want_con" "$con"; then
		why="the guest's console is not $want_con"
	elif [[ " $args " == *" --io-poll "* ]] && ! grep -aqE '^I/O thread: .*poll_windows=[1-9]' "$err"; then
		why="--io-poll: kiln's --stats show no poll window on the I/O thread"
	elif [[ " $args " == *" --io-poll "* ]] && ! grep -aqE 'virtio-blk0: .* poll\[hits=' "$err"; then
		why="--io-poll: virtio-blk0 has no poller"
	fi
	if [ -z "$why" ]; then
		pass=$((pass + 1))
		echo "PASS linux/$name (${secs}s wall; mount count $mc, $(grep -aoE 'virtio-rng[0-9]*: .*served=[0-9]+' "$err" | grep -oE 'served=[0-9]+' | head -1) rng bytes$(grep -aoE 'virtio-blk0: .*kicks=[0-9]+' "$err" | grep -oE 'kicks=[0-9]+' | head -1 | sed 's/^/; blk /')$(grep -aoE 'poll\[hits=[0-9]+ chains=[0-9]+' "$err" | head -1 | sed 's/^/, /'))"
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
		--virtio-transport mmio --console virtio,stdio --stats "${EXTRA[@]}" >"$con" 2>"$err"
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

NET_KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKilnLinuxNetTestKey linux@kiln"

# run_net_case NAME "KILN ARGS" "CMDLINE" CHECK_FN [WRAP...]: boot with kiln.test=net in
# the background, let CHECK_FN act on the running guest (it gets the console
# path), then judge the console. WRAP prefixes kiln (ip netns exec NS).
run_net_case() {
	local name=$1 args=$2 cmdline=$3 check=$4; shift 4
	local con="$LOGS/$name.console" err="$LOGS/$name.stderr" t0 t1 code secs why= pid i
	echo "$NET_KEY" >"$LOGS/key.pub"
	echo '{"hostname":"kiln-net","app":{"colour":"blue"}}' >"$LOGS/md.json"
	t0=$(date +%s%N)
	# shellcheck disable=SC2086
	"$@" timeout -k 10 "$T_TINY" "$KILN" run --kernel "$TK/vmlinux" --initrd "$DG/initramfs.cpio" $args \
		--ssh-key "$LOGS/key.pub" --metadata "$LOGS/md.json" --stats \
		--cmdline "$CMDLINE_BASE quiet $cmdline kiln.test=net kiln.mds=1" --memory 256 \
		--console "file:$con" "${EXTRA[@]}" </dev/null >"$err" 2>&1 &
	pid=$!
	NET_WHY=
	for ((i = 0; i < T_TINY; i++)); do
		if grep -aq "kiln-guest: mds no-token=" "$con" 2>/dev/null; then "$check" "$con"; break; fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	wait "$pid"
	code=$?
	t1=$(date +%s%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
	if [ "$code" -eq 124 ] || [ "$code" -eq 137 ]; then
		why="timed out after ${T_TINY}s"
	elif [ "$code" -ne 0 ]; then
		why="exit code $code, want 0"
	elif [ -n "$NET_WHY" ]; then
		why=$NET_WHY
	elif ! grep -aqF "kiln-guest: mds v2-key=$NET_KEY" "$con"; then
		why="the guest did not read its key through an MMDS V2 token"
	fi
	if [ -z "$why" ]; then
		why=$(net_judge_"${name#net-}" "$con")
	fi
	if [ -z "$why" ]; then
		pass=$((pass + 1))
		echo "PASS linux/$name (${secs}s wall; $(grep -aoE 'tx frames=[0-9]+ .*rx frames=[0-9]+' "$err" | head -1))"
	else
		fail=$((fail + 1))
		echo "FAIL linux/$name: $why (${secs}s wall)"
		echo "  --- console (last 25 lines of $con)"
		tail -n 25 "$con" 2>/dev/null | sed 's/^/  | /'
		echo "  --- kiln stderr (last 15 lines of $err)"
		tail -n 15 "$err" 2>/dev/null | sed 's/^/  | /'
	fi
}

# net-user: the host end of the port forward, while the guest listens. The
# guest says "listening" as it starts nc in the background, before nc has
# bound the port (seconds later on kvm_pvm, where the guest's fork and exec
# are emulated kernel work); a connection before that is reset by the guest,
# so try again until the guest's kiln.wait is over.
net_check_user() {
	local got= i
	for ((i = 0; i < 60; i++)); do
		grep -aq "kiln-guest: listening on 8080" "$1" 2>/dev/null && break
		sleep 1
	done
	for ((i = 0; i < 30; i++)); do
		got=$(timeout 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NET_PORT; cat <&3" 2>/dev/null)
		[ "$got" = kiln-guest-hello ] && return
		grep -aq "kiln-guest: net test done" "$1" 2>/dev/null && break
		sleep 1
	done
	NET_WHY="hostfwd 127.0.0.1:$NET_PORT -> guest:8080 read '$got'"
}
net_judge_user() {
	local con=$1
	if ! grep -aq 'IP-Config: Got DHCP answer from 10.0.2.2, my address is 10.0.2.15' "$con"; then
		echo "no kernel IP-Config line with the DHCP lease 10.0.2.15 from 10.0.2.2"
	elif ! grep -aqF "kiln-guest: mds ec2-key=$NET_KEY" "$con"; then
		echo "the guest's EC2 public-keys/0/openssh-key is not the --ssh-key key"
	elif ! grep -a 'kiln-guest: mds openstack=' "$con" | grep -qF "\"key0\":\"$NET_KEY\""; then
		echo "the guest's OpenStack meta_data.json lacks the key"
	elif ! grep -aq 'kiln-guest: mds no-token=ok' "$con"; then
		echo "MMDS V1 refused a GET without a token"
	fi
}
# net-tap: pings from the namespace while the guest waits.
net_check_tap() {
	ip netns exec "$NET_NS" busybox ping -c 3 -W 5 192.168.77.2 >"$LOGS/net-tap.ping" 2>&1 &&
		ip netns exec "$NET_NS" busybox ping -c 2 -s 4000 -W 5 192.168.77.2 >>"$LOGS/net-tap.ping" 2>&1 ||
		NET_WHY="the namespace got no ping answers from the guest: $(tr '\n' ' ' <"$LOGS/net-tap.ping")"
}
net_judge_tap() {
	grep -aq 'kiln-guest: net addr=192.168.77.2/24' "$1" || { echo "the guest has no 192.168.77.2/24"; return; }
	grep -aq 'kiln-guest: mds no-token=refused' "$1" || echo "MMDS V2 answered a GET without a token"
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
	blk-pci|blk-mmio|blk-poll)
		if [ -z "$TK" ] || [ -z "$DG" ]; then
			fail=$((fail + 1)); echo "FAIL linux/$c: guest images missing (see above)"; continue
		fi
		tr=pci poll=; [ "$c" = blk-mmio ] && tr=mmio
		[ "$c" = blk-poll ] && poll="--io-poll 50"
		run_disk_case "$c" "$TK/vmlinux" "$T_TINY" \
			"--virtio-transport $tr --console virtio,file:$LOGS/$c.console $poll" \
			"console=hvc0 reboot=k panic=-1 root=/dev/vda rw init=/init" hvc0
		;;
	debian-blk)
		if [ -z "$DG" ]; then
			fail=$((fail + 1)); echo "FAIL linux/debian-blk: guest images missing (see above)"; continue
		fi
		k="$DG/vmlinux"
		[ -f "$k" ] || k="$DG/vmlinuz"
		run_disk_case debian-blk "$k" "$T_DEBIAN" "--initrd $DG/initramfs.cpio --console file:$LOGS/debian-blk.console" \
			"$CMDLINE_BASE" ttyS0
		;;
	net-user)
		if [ -z "$TK" ] || [ -z "$DG" ]; then
			fail=$((fail + 1)); echo "FAIL linux/$c: guest images missing (see above)"; continue
		fi
		NET_PORT=$((20000 + $$ % 20000))
		run_net_case net-user "--cpus 1 --net user,hostfwd=tcp::$NET_PORT-:8080" \
			"ip=dhcp kiln.listen=8080 kiln.wait=20" net_check_user
		;;
	net-tap)
		if [ -z "$TK" ] || [ -z "$DG" ]; then
			fail=$((fail + 1)); echo "FAIL linux/$c: guest images missing (see above)"; continue
		fi
		if [ "$(id -u)" != 0 ] || ! command -v ip >/dev/null; then
			skip_case net-tap "needs root and ip(8) for a network namespace"; continue
		fi
		modprobe tun 2>/dev/null
		[ -e /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; } 2>/dev/null
		NET_NS=kiln-linux-$$
		if ! { ip netns add "$NET_NS" && ip -n "$NET_NS" link set lo up &&
			ip -n "$NET_NS" tuntap add kt0 mode tap multi_queue &&
			ip -n "$NET_NS" addr add 192.168.77.1/24 dev kt0 && ip -n "$NET_NS" link set kt0 up; } 2>"$LOGS/netns.log"; then
			skip_case net-tap "cannot make a namespace with a tap: $(head -1 "$LOGS/netns.log")"
			ip netns del "$NET_NS" 2>/dev/null; continue
		fi
		run_net_case net-tap "--cpus 2 --net tap=kt0,queues=2 --metadata-version 2" \
			"ip=192.168.77.2::192.168.77.1:255.255.255.0:kiln:eth0:off kiln.wait=40" net_check_tap \
			ip netns exec "$NET_NS"
		ip netns del "$NET_NS"
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
