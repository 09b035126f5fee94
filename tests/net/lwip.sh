#!/usr/bin/env bash
# The lwIP test guest (tests/guests/lwip/) under kiln: a real TCP/IP stack on kiln's virtio-net, user mode and TAP.
#
# usage: tests/net/lwip.sh KILN_BINARY        (root and /dev/kvm: run it in the KVM lab)
# Cases:
#   lwip/user       --net user with hostfwd, MMDS V1: lwIP's DHCP must lease
#                   10.0.2.15; the guest reads MMDS, EC2 (key, instance-id) and
#                   OpenStack and checks the --ssh-key key itself; a token PUT
#                   works, one with X-Forwarded-For gets 400; then the host sends
#                   a line to 127.0.0.1:PORT (hostfwd -> guest:8080) and checks
#                   the guest's reply (the line's length and CRC-32)
#   lwip/tap        a tap in a network namespace, static address, MMDS V2: the
#                   same layouts with a token, 401 without one and with a wrong
#                   one; the guest downloads BYTES random bytes from a Python
#                   peer in the namespace and uploads BYTES of a pattern; the
#                   CRC-32 and length of each side must match the other's
#   lwip/wrong-key  negative: the guest is told to expect another key and must
#                   FAIL on the first layout that serves the real one
#   lwip/bench      the guest's bench mode (bench/net-throughput.sh's guest on
#                   kvm_pvm) over --net user: 1 MiB to it and from it through
#                   hostfwd with bench/net_client.py, a short UDP flood; the
#                   guest's counts must match (the bench must not rot unseen)
#   lwip/bench-tap  the bench mode over TAP, the guest told to stop polling
#                   for 400 ms at the first datagram of a flood: its ring
#                   fills, kiln must stop watching the tap (--stats muted=)
#                   and take it up again when the guest kicks, so TCP both
#                   ways works afterwards
# Environment: KILN_LWIP_CASES="user wrong-key bench tap bench-tap" (which to run), KILN_LWIP_BYTES (default 4194304), KILN_REQUIRE_KVM=1 (no KVM
# is a failure, not a skip). A missing net_lwip.elf is always a failure.
# Last line: "lwip: N passed, M failed[, K skipped] (S s)".
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KILN=${1:-}
if [ -z "$KILN" ] || [ ! -x "$KILN" ]; then
	echo "usage: tests/net/lwip.sh KILN_BINARY (got: '$KILN')" >&2
	exit 2
fi
KILN=$(cd "$(dirname "$KILN")" && pwd)/$(basename "$KILN")
ELF=$ROOT/tests/guests/build/net_lwip.elf
BYTES=${KILN_LWIP_BYTES:-4194304}
T=${KILN_LWIP_TIMEOUT:-120}
CASES=" ${KILN_LWIP_CASES:-user wrong-key bench tap bench-tap} "
want() { [[ $CASES == *" $1 "* ]]; }
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "PASS lwip/$1${2:+ ($2)}"; }
ko() { fail=$((fail + 1)); echo "FAIL lwip/$1: $2"; }
finish() {
	local s="lwip: $pass passed, $fail failed"
	[ "$skip" -gt 0 ] && s="$s, $skip skipped"
	echo "$s (${SECONDS} s)"
	[ "$fail" -eq 0 ]
	exit
}

if [ ! -f "$ELF" ]; then
	ko build "tests/guests/build/net_lwip.elf is missing: run scripts/get-lwip.sh, then make guests"
	finish
fi
if ! { [ -c /dev/kvm ] && (exec 3<>/dev/kvm) 2>/dev/null; }; then
	if [ "${KILN_REQUIRE_KVM:-0}" = 1 ]; then
		ko kvm "/dev/kvm not available and KILN_REQUIRE_KVM=1"
	else
		echo "lwip: SKIPPED — /dev/kvm not available"
		skip=5
	fi
	finish
fi

W=$(mktemp -d "${TMPDIR:-/tmp}/kiln-lwip.XXXXXX")
NS=kiln-lwip-$$
PEER=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	[ -n "$PEER" ] && kill "$PEER" 2>/dev/null && wait "$PEER" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	if [ "$fail" -eq 0 ]; then rm -rf "$W"; else echo "lwip: outputs kept in $W"; fi
}
trap cleanup EXIT

# A fresh ed25519-shaped key per run: the guest learns only its base64 blob
# from the command line and rebuilds the line, so a stale or foreign key fails.
keyblob() { { printf '\0\0\0\013ssh-ed25519\0\0\0\040'; head -c 32 /dev/urandom; } | base64 -w0; }
BLOB=$(keyblob)
KEY="ssh-ed25519 $BLOB lwip@kiln"
echo "$KEY" >"$W/key.pub"
VALUE=lwip-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '{"lwip": {"value": "%s"}}\n' "$VALUE" >"$W/md.json"
CMD_MD="keyblob=$BLOB mmds=$VALUE"

# start_kiln NAME CMDLINE KILN-ARGS... (prefix with WRAP=(ip netns exec NS)): kiln in the background, KPID.
start_kiln() {
	local name=$1 cmdline=$2
	shift 2
	: >"$W/$name.con"
	"${WRAP[@]}" timeout -k 5 "$T" "$KILN" run --kernel "$ELF" --memory 64 --cpus 1 --console "file:$W/$name.con" \
		--ssh-key "$W/key.pub" --metadata "$W/md.json" --stats --cmdline "$cmdline" "$@" \
		</dev/null >"$W/$name.log" 2>&1 &
	KPID=$!
}
# wait_line NAME TEXT: until the console has a line starting TEXT, or kiln is gone.
wait_line() {
	local i
	for ((i = 0; i < T * 5; i++)); do
		grep -aq "^$2" "$W/$1.con" 2>/dev/null && return 0
		kill -0 "$KPID" 2>/dev/null || { grep -aq "^$2" "$W/$1.con" 2>/dev/null; return; }
		sleep 0.2
	done
	return 1
}
# wait_kiln: kiln's exit code in RC (here, not in a subshell: kiln is this shell's child).
wait_kiln() {
	wait "$KPID"
	RC=$?
}
# verdict NAME: kiln's exit (RC) and the console's SUCCESS; prints why not.
verdict() {
	local rc=$RC con=$W/$1.con
	tr -d '\r' <"$con" >"$con.clean"
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		echo "timed out after $T s; guest: $(grep -av '^$' "$con.clean" | tail -n 1 | cut -c1-200)"
	elif [ "$rc" != 0 ]; then
		echo "kiln exit $rc; $(tail -n 1 "$W/$1.log")"
	elif grep -aq '^FAIL' "$con.clean"; then
		grep -a -m1 '^FAIL' "$con.clean" | cut -c1-300
	elif ! grep -aqx 'SUCCESS' "$con.clean"; then
		echo "no SUCCESS line; guest: $(grep -av '^$' "$con.clean" | tail -n 1 | cut -c1-200)"
	fi
}
# need NAME LINE: the console has exactly this line.
need() { grep -aqxF "$2" "$W/$1.con.clean" || echo "no line \"$2\""; }
crc32() { python3 -c 'import sys, zlib; print("%08x" % zlib.crc32(sys.argv[1].encode()))' "$1"; }

# ---- lwip/user ----
if want user; then
PORT=$((20000 + $$ % 20000))
WRAP=()
start_kiln user "mode=user expect_ip=10.0.2.15 mdsver=1 listen=8080 $CMD_MD" --net "user,hostfwd=tcp::$PORT-:8080"
why=
if wait_line user "lwip: listening on 8080"; then
	LINE="kiln-hostfwd-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	WANT="lwip-reply len=${#LINE} crc32=$(crc32 "$LINE")"
	# shellcheck disable=SC2016 # $1 and $2 are the inner shell's
	GOT=$(timeout 20 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$1 && printf "%s\n" "$2" >&3 && read -r r <&3 && printf %s "$r"' \
		_ "$PORT" "$LINE" 2>&1)
	[ "$GOT" = "$WANT" ] || why="hostfwd 127.0.0.1:$PORT -> guest:8080: sent \"$LINE\", got \"$GOT\", want \"$WANT\""
fi
wait_kiln
v=$(verdict user)
why=${v:-$why}
[ -z "$why" ] && why=$(need user "lwip: ec2-key=$KEY")
[ -z "$why" ] && why=$(need user "lwip: openstack-key=$KEY")
[ -z "$why" ] && why=$(need user "lwip: mmds /lwip/value=$VALUE")
[ -z "$why" ] && why=$(need user "lwip: mmds v1: no token needed")
[ -z "$why" ] && { grep -aq '^lwip: dhcp lease 10.0.2.15 mask 255.255.255.0 gw 10.0.2.2$' "$W/user.con.clean" ||
	why="no DHCP lease line for 10.0.2.15/24 via 10.0.2.2"; }
if [ -z "$why" ]; then ok user "$(grep -a -m1 '^lwip: rx frames' "$W/user.con.clean" | cut -c7-)"; else ko user "$why"; fi
fi

# ---- lwip/wrong-key: the guest must refuse a key it was not told about ----
if want wrong-key; then
start_kiln wrong-key "mode=user mdsver=1 keyblob=$(keyblob) mmds=$VALUE" --net user
wait_kiln
v=$(verdict wrong-key)
case $v in
"FAIL: EC2 openssh-key:"*"$KEY"*) ok wrong-key "the guest refused the served key" ;;
"") ko wrong-key "the guest accepted a key it was not told to expect" ;;
*) ko wrong-key "expected the guest's FAIL on the EC2 key, got: $v" ;;
esac
fi

# ---- lwip/bench: the bench's servers answer, and count right ----
if want bench; then
PORT=$((20000 + ($$ + 7) % 20000))
MIB=1048576
WRAP=()
start_kiln bench "mode=bench bytes=$MIB seconds=6" --net \
	"user,hostfwd=tcp:127.0.0.1:$PORT-:5001,hostfwd=tcp:127.0.0.1:$((PORT + 1))-:5002,hostfwd=udp:127.0.0.1:$((PORT + 2))-:9"
why=
if wait_line bench "bench-ready"; then
	CLIENT=(timeout 30 python3 "$ROOT/bench/net_client.py")
	"${CLIENT[@]}" tcp-send 127.0.0.1 "$PORT" "$MIB" >"$W/bench.send" 2>&1 || why="tcp-send: $(tail -n 1 "$W/bench.send")"
	got=$("${CLIENT[@]}" tcp-recv 127.0.0.1 $((PORT + 1)) 2>&1)
	[ -z "$why" ] && [ "${got#* }" != "$MIB" ] && why="tcp-recv from guest:5002 got \"$got\", want $MIB bytes"
	"${CLIENT[@]}" udp-flood 127.0.0.1 $((PORT + 2)) 0.5 18 >/dev/null 2>&1
fi
wait_kiln
v=$(verdict bench)
why=${v:-$why}
[ -z "$why" ] && why=$(need bench "bench: tcp 5001 connection done: $MIB bytes in, 0 acked out")
[ -z "$why" ] && why=$(need bench "bench: tcp 5002 connection done: 0 bytes in, $MIB acked out")
n=$(grep -a '^bench: [0-9]* udp datagrams' "$W/bench.con.clean" | cut -d' ' -f2)
[ -z "$why" ] && { [ "${n:-0}" -gt 0 ] || why="the guest counted no UDP datagram (\"$n\")"; }
if [ -z "$why" ]; then ok bench "$n datagrams counted"; else ko bench "$why"; fi
fi

# ---- lwip/tap and lwip/bench-tap: a tap in a namespace ----
want tap || want bench-tap || finish
why=
modprobe tun 2>/dev/null
[ -e /dev/net/tun ] || { mkdir -p /dev/net && mknod /dev/net/tun c 10 200; } 2>/dev/null
if ! { ip netns add "$NS" && ip -n "$NS" link set lo up && ip -n "$NS" tuntap add kt0 mode tap &&
	ip -n "$NS" addr add 192.168.77.1/24 dev kt0 && ip -n "$NS" link set kt0 up; } 2>"$W/netns.log"; then
	ko tap "cannot make a namespace with a tap: $(head -n 1 "$W/netns.log")"
	finish
fi
if want tap; then
head -c "$BYTES" /dev/urandom >"$W/down.bin"
# run_tap: the peer, then kiln and the guest; the verdict in v, the peer's exit in prc.
run_tap() {
	: >"$W/peer.out"
	ip netns exec "$NS" python3 "$ROOT/tests/net/lwip-peer.py" 192.168.77.1 5001 5002 "$W/down.bin" "$W/peer.out" \
		2>"$W/peer.log" &
	PEER=$!
	for _ in $(seq 100); do grep -q ready "$W/peer.out" 2>/dev/null && break; sleep 0.1; done
	WRAP=(ip netns exec "$NS")
	start_kiln tap "mode=tap ip=192.168.77.2 mask=255.255.255.0 gw=192.168.77.1 mdsver=2 peer=192.168.77.1 dport=5001 uport=5002 bytes=$BYTES $CMD_MD" \
		--net tap=kt0 --metadata-version 2
	wait_kiln
	v=$(verdict tap)
	[ -z "$v" ] || kill "$PEER" 2>/dev/null   # the guest failed: the peer's own verdict no longer matters
	wait "$PEER"
	prc=$?
	PEER=
}
# The KVM lab's known stall (docs/kvmlab.md, "Known flake: a KVM emulation
# loop"): the guest stops while the lab's KVM emulates one instruction and
# injects a page fault over and over, millions of times, without one exit to
# kiln. kiln's --stats show it (insn_emulation and pf_guest both huge, where a
# good run has a few hundred). Only then is the case run a second time, and
# the retry is printed.
lab_emulation_loop() {
	grep -Eq 'insn_emulation=[0-9]{6,}' "$W/tap.log" && grep -Eq 'pf_guest=[0-9]{6,}' "$W/tap.log"
}
run_tap
if [[ $v == "timed out"* ]] && lab_emulation_loop; then
	echo "RETRY lwip/tap: the lab's KVM looped emulating one instruction ($(grep -Eo 'insn_emulation=[0-9]+' "$W/tap.log")); see docs/kvmlab.md"
	cp "$W/tap.log" "$W/tap.first.log"
	cp "$W/tap.con" "$W/tap.first.con"
	run_tap
fi
why=$v
if [ -z "$why" ] && [ "$prc" != 0 ]; then why="the peer failed: $(tail -n 1 "$W/peer.log")"; fi
[ -z "$why" ] && why=$(need tap "lwip: ec2-key=$KEY")
[ -z "$why" ] && why=$(need tap "lwip: openstack-key=$KEY")
[ -z "$why" ] && why=$(need tap "lwip: mmds v2: with token 200, without 401, wrong token 401")
if [ -z "$why" ]; then
	for dir in download upload; do
		host=$(grep "^$dir " "$W/peer.out" | cut -d' ' -f2-)
		guest=$(grep -a "^lwip: $dir " "$W/tap.con.clean" | cut -d' ' -f3,4)
		if [ -z "$host" ] || [ "$host" != "$guest" ]; then
			why="$dir: host says \"$host\", guest says \"$guest\""
			break
		fi
	done
	[ -z "$why" ] && [ "$(grep '^download ' "$W/peer.out")" != "download bytes=$BYTES crc32=$(python3 -c \
		'import sys, zlib; print("%08x" % zlib.crc32(open(sys.argv[1], "rb").read()))' "$W/down.bin")" ] &&
		why="the peer's download line does not describe $W/down.bin"
fi
if [ -z "$why" ]; then
	ok tap "$BYTES bytes each way; $(grep -a '^lwip: \(download\|upload\)' "$W/tap.con.clean" | sed 's/.*(\(.*\))/\1/' | tr '\n' ' ')"
else
	ko tap "$why"
fi
fi

# ---- lwip/bench-tap: a guest too busy for its NIC; kiln stops reading the tap, then reads it again ----
if want bench-tap; then
MIB=1048576
WRAP=(ip netns exec "$NS")
start_kiln bench-tap "mode=bench ip=192.168.77.2 mask=255.255.255.0 gw=192.168.77.1 bytes=$MIB seconds=8 stall_ms=400" \
	--net tap=kt0
why=
if wait_line bench-tap "bench-ready"; then
	CLIENT=("${WRAP[@]}" timeout 30 python3 "$ROOT/bench/net_client.py")
	# The guest stops polling for 400 ms at the first datagram: the rest fill its ring, and the tap's queue.
	"${CLIENT[@]}" udp-flood 192.168.77.2 9 0.3 18 >/dev/null 2>&1
	"${CLIENT[@]}" tcp-send 192.168.77.2 5001 "$MIB" >"$W/bench-tap.send" 2>&1 ||
		why="tcp-send after the stall: $(tail -n 1 "$W/bench-tap.send")"
	got=$("${CLIENT[@]}" tcp-recv 192.168.77.2 5002 2>&1)
	[ -z "$why" ] && [ "${got#* }" != "$MIB" ] && why="tcp-recv after the stall got \"$got\", want $MIB bytes"
fi
wait_kiln
v=$(verdict bench-tap)
why=${v:-$why}
[ -z "$why" ] && why=$(need bench-tap "bench: stalling 400 ms")
[ -z "$why" ] && why=$(need bench-tap "bench: tcp 5001 connection done: $MIB bytes in, 0 acked out")
[ -z "$why" ] && why=$(need bench-tap "bench: tcp 5002 connection done: 0 bytes in, $MIB acked out")
muted=$(grep -o 'muted=[0-9]*' "$W/bench-tap.log" | cut -d= -f2)
[ -z "$why" ] && { [ "${muted:-0}" -gt 0 ] || why="kiln never stopped reading the full guest's tap (muted=\"$muted\")"; }
if [ -z "$why" ]; then ok bench-tap "tap muted $muted time(s), transfers whole after"; else ko bench-tap "$why"; fi
fi
finish
