#!/usr/bin/env bash
# kiln's user-mode network and metadata service end to end, without a VM: a
# tap in a private network namespace stands for the guest's NIC, the host
# kernel for the guest's TCP/IP stack, and tests/net/harness.c runs kiln's
# libslirp backends, metadata endpoint and HTTP server exactly as virtio-net
# does (frames in, the 169.254.169.254 split, frames out).
#
# usage: tests/net/run.sh            (root: network namespaces and a tap)
# Checks: DHCP lease (busybox udhcpc), ping of the gateway, the metadata
# service's EC2/OpenStack/MMDS paths with the --ssh-key key, MMDS V2 tokens
# (none, wrong, valid), a hostfwd port forward, restrict=on.
# Last line: "net: N passed, M failed[, K skipped]".
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
pass=0 fail=0 skip=0
ok() { pass=$((pass + 1)); echo "PASS net/$1"; }
ko() { fail=$((fail + 1)); echo "FAIL net/$1: $2"; }

if [ "$(id -u)" != 0 ] || ! [ -c /dev/net/tun ] || ! command -v ip >/dev/null || ! command -v busybox >/dev/null; then
	echo "net: SKIPPED — needs root, /dev/net/tun, ip and busybox"
	echo "net: 0 passed, 0 failed, 1 skipped"
	exit 0
fi
W=$(mktemp -d "${TMPDIR:-/tmp}/kiln-net-test.XXXXXX")
NS=kiln-net-$$
H=$W/harness
SRCS="tests/net/harness.c src/net/slirp.c src/net/netloop.c src/core/ioloop.c src/net/mds_server.c src/net/mmds.c src/net/frame.c
      src/cli/options.c src/core/console.c src/core/kvm.c src/core/memory.c src/core/loader_cmdline.c src/core/log.c"
# shellcheck disable=SC2086
if ! cc -std=gnu11 -O1 -g -D_GNU_SOURCE -DKILN_VERSION='"test"' -Isrc -o "$H" $SRCS -pthread -ljansson -lhttp_parser -lslirp \
	2>"$W/cc.log"; then
	ko build "$(head -5 "$W/cc.log")"
	echo "net: $pass passed, $fail failed"; exit 1
fi
PIDS=()
cleanup() {
	[ -n "${HPID:-}" ] && kill "$HPID" 2>/dev/null && wait "$HPID" 2>/dev/null
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKilnNetTestKey net@kiln"
echo "$KEY" >"$W/key.pub"
echo '{"hostname":"nettest","app":{"colour":"blue"}}' >"$W/md.json"
NSX() { ip netns exec "$NS" "$@"; }

# start_harness VERSION NETOPTS: a fresh namespace, tap kt0 up, the harness on it.
start_harness() {
	[ -n "${HPID:-}" ] && { kill "$HPID"; wait "$HPID" 2>/dev/null; HPID=; }
	ip netns del "$NS" 2>/dev/null
	ip netns add "$NS" && NSX ip link set lo up && NSX ip tuntap add kt0 mode tap && NSX ip link set kt0 up || return 1
	# Not through NSX: $! must be the harness itself (ip netns exec execs it), not a subshell.
	ip netns exec "$NS" "$H" kt0 --metadata "$W/md.json" --ssh-key "$W/key.pub" --metadata-version "$1" \
		--net "$2" >"$W/harness.log" 2>&1 &
	HPID=$!
	for _ in $(seq 50); do grep -q running "$W/harness.log" && return 0; sleep 0.1; done
	return 1
}
# busybox 1.35 wget crashes with -T: bound it with timeout instead.
wget_() { NSX timeout 10 busybox wget -q "$@" 2>/dev/null; }
http_raw() { # REQUEST -> the raw response (nc, as busybox wget cannot PUT)
	(printf '%b' "$1"; sleep 1) | NSX busybox nc -w 5 169.254.169.254 80
}

start_harness 1 "user,hostfwd=tcp::18080-:8080" || { ko setup "cannot start the harness: $(cat "$W/harness.log")"; exit 1; }

# DHCP from libslirp, through busybox udhcpc and a one-line lease script.
printf '#!/bin/sh\n[ "$1" = bound ] || exit 0\nip addr add "$ip/$mask" dev "$interface"\nip route add default via "$router"\n' >"$W/lease.sh"
chmod +x "$W/lease.sh"
if NSX busybox udhcpc -i kt0 -q -n -t 5 -T 1 -s "$W/lease.sh" >"$W/udhcpc.log" 2>&1 &&
	NSX ip -4 -o addr show kt0 | grep -q '10\.0\.2\.15/24'; then
	ok dhcp
else
	ko dhcp "no 10.0.2.15/24 lease: $(tail -3 "$W/udhcpc.log" | tr '\n' ' ')"
	NSX ip addr add 10.0.2.15/24 dev kt0; NSX ip route add default via 10.0.2.2
fi
NSX busybox ping -c 1 -W 3 10.0.2.2 >/dev/null 2>&1 && ok ping-gateway || ko ping-gateway "no echo reply from 10.0.2.2"

got=$(wget_ -O - http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key)
[ "$got" = "$KEY" ] && ok ec2-key || ko ec2-key "got '$got'"
got=$(wget_ -O - http://169.254.169.254/latest/meta-data/hostname)
[ "$got" = nettest ] && ok ec2-hostname || ko ec2-hostname "got '$got'"
got=$(wget_ -O - http://169.254.169.254/openstack/latest/meta_data.json)
if python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert sys.argv[2] in d["public_keys"].values() and d["hostname"]=="nettest" and d["uuid"]' "$got" "$KEY" 2>/dev/null; then
	ok openstack
else
	ko openstack "got '$got'"
fi
got=$(wget_ -O - http://169.254.169.254/app/colour)
[ "$got" = blue ] && ok mmds-v1 || ko mmds-v1 "got '$got'"
got=$(wget_ --header 'Accept: application/json' -O - http://169.254.169.254/app)
[ "$got" = '{"colour":"blue"}' ] && ok mmds-json || ko mmds-json "got '$got'"

# hostfwd: the "guest" listens on 8080, the host side connects to 127.0.0.1:18080.
ip netns exec "$NS" busybox nc -l -p 8080 >/dev/null 2>&1 < <(echo kiln-net-hello) &
PIDS+=($!)
sleep 0.5
got=$(NSX timeout 10 bash -c 'exec 3<>/dev/tcp/127.0.0.1/18080; cat <&3' 2>/dev/null)
[ "$got" = kiln-net-hello ] && ok hostfwd || ko hostfwd "got '$got'"
# Without restrict=on the gateway 10.0.2.2 is the host's loopback (the control for net/restrict).
ip netns exec "$NS" busybox nc -l -p 9999 >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.3
NSX timeout 8 bash -c 'exec 3<>/dev/tcp/10.0.2.2/9999' 2>/dev/null && ok nat-to-host || ko nat-to-host "no connection to 10.0.2.2:9999"

# MMDS V2: no token or a wrong one -> 401; PUT a token, GET with it -> the key.
start_harness 2 "user,restrict=on" || { ko setup "cannot restart the harness"; exit 1; }
NSX ip addr add 10.0.2.15/24 dev kt0; NSX ip route add default via 10.0.2.2
r=$(http_raw 'GET /latest/meta-data/hostname HTTP/1.0\r\n\r\n' | head -1 | tr -d '\r')
[ "$r" = "HTTP/1.1 401 Unauthorized" ] && ok v2-no-token || ko v2-no-token "got '$r'"
r=$(http_raw 'GET /latest/meta-data/hostname HTTP/1.0\r\nX-metadata-token: bogus\r\n\r\n' | head -1 | tr -d '\r')
[ "$r" = "HTTP/1.1 401 Unauthorized" ] && ok v2-wrong-token || ko v2-wrong-token "got '$r'"
tok=$(http_raw 'PUT /latest/api/token HTTP/1.0\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n' | tail -n 1)
got=$(wget_ --header "X-metadata-token: $tok" -O - http://169.254.169.254/latest/meta-data/public-keys/0/openssh-key)
[ -n "$tok" ] && [ "$got" = "$KEY" ] && ok v2-token || ko v2-token "token '$tok', got '$got'"
r=$(http_raw 'PUT /latest/api/token HTTP/1.0\r\nX-metadata-token-ttl-seconds: 0\r\n\r\n' | head -1 | tr -d '\r')
[ "$r" = "HTTP/1.1 400 Bad Request" ] && ok v2-bad-ttl || ko v2-bad-ttl "got '$r'"
# restrict=on: nothing leaves the guest, not even to the host's loopback via 10.0.2.2.
ip netns exec "$NS" busybox nc -l -p 9999 >/dev/null 2>&1 &
PIDS+=($!)
sleep 0.3
if NSX timeout 8 bash -c 'exec 3<>/dev/tcp/10.0.2.2/9999' 2>/dev/null; then
	ko restrict "a connection to 10.0.2.2:9999 went through"
else
	ok restrict
fi
echo "net: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
