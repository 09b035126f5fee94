#!/usr/bin/env bash
# kiln's command line against bad input: each case must print one "kiln: ..." line and exit 2, quickly.
# usage: tests/run-cli.sh KILN_BINARY   (cases that need /dev/kvm run only where it exists)
set -u
KILN=$1
ROOT=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kiln-cli.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
ELF=$ROOT/tests/guests/build/poweroff.elf
passed=0 failed=0

# expect NAME CODE PATTERN -- ARGS...: exit code, one stderr line matching PATTERN.
expect() {
	local name=$1 want=$2 pat=$3 rc lines
	shift 4
	timeout 10 "$KILN" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
	rc=$?
	lines=$(wc -l <"$tmp/err")
	if [ "$rc" != "$want" ]; then
		echo "FAIL $name (exit $rc, expected $want: $(head -c 200 "$tmp/err"))"; failed=$((failed + 1))
	elif [ "$want" != 0 ] && [ "$lines" != 1 ] && [ "$name" != no-args ]; then
		echo "FAIL $name ($lines lines on stderr, expected 1)"; failed=$((failed + 1))
	elif [ -n "$pat" ] && ! grep -q -- "$pat" "$tmp/err" "$tmp/out"; then
		echo "FAIL $name (no '$pat' in: $(head -c 200 "$tmp/err"))"; failed=$((failed + 1))
	else
		echo "PASS $name"; passed=$((passed + 1))
	fi
}

printf 'not a kernel at all\n' >"$tmp/text"
head -c 4096 /dev/urandom >"$tmp/random"
: >"$tmp/empty"
printf '\177ELF\002\001\001' >"$tmp/short.elf"
touch "$tmp/noperm" && chmod 000 "$tmp/noperm"

expect help 0 "usage: kiln run" -- --help
expect run-help 0 "--kernel PATH" -- run --help
expect version 0 "kiln " -- --version
expect no-args 2 "usage" --   # the usage text, on stderr
expect unknown-command 2 "unknown command" -- start
expect no-kernel 2 "--kernel PATH is required" -- run
expect missing-kernel 2 "No such file" -- run --kernel "$tmp/nope"
expect dir-kernel 2 "not a regular file" -- run --kernel "$tmp"
expect text-kernel 2 "not a bzImage or ELF" -- run --kernel "$tmp/text"
expect random-kernel 2 "not a bzImage or ELF" -- run --kernel "$tmp/random"
expect empty-kernel 2 "kernel" -- run --kernel "$tmp/empty"
expect short-elf 2 "kernel" -- run --kernel "$tmp/short.elf"
if [ "$(id -u)" != 0 ]; then
	expect unreadable-kernel 2 "Permission denied" -- run --kernel "$tmp/noperm"
fi
expect cpus-zero 2 "--cpus" -- run --kernel "$ELF" --cpus 0
expect cpus-huge 2 "--cpus" -- run --kernel "$ELF" --cpus 100000
expect cpus-word 2 "--cpus" -- run --kernel "$ELF" --cpus two
expect memory-zero 2 "--memory" -- run --kernel "$ELF" --memory 0
expect memory-word 2 "--memory" -- run --kernel "$ELF" --memory 1G
expect memory-huge 2 "--memory" -- run --kernel "$ELF" --memory 99999999999
expect memory-neg 2 "--memory" -- run --kernel "$ELF" --memory -5
expect io-poll-huge 2 "--io-poll" -- run --kernel "$ELF" --io-poll 5000
expect io-poll-word 2 "--io-poll" -- run --kernel "$ELF" --io-poll fast
expect unknown-flag 2 "unknown option '--frobnicate'" -- run --kernel "$ELF" --frobnicate
expect missing-value 2 "needs a value" -- run --kernel "$ELF" --cpus
expect bad-console 2 "--console" -- run --kernel "$ELF" --console tty
expect missing-initrd 2 "--initrd" -- run --kernel "$ELF" --initrd "$tmp/nope"
expect net-bad 2 "--net" -- run --kernel "$ELF" --net bridge
expect net-bad-fwd 2 "hostfwd" -- run --kernel "$ELF" --net user,hostfwd=tcp::99999-:22
expect metadata-no-net 2 "need a --net" -- run --kernel "$ELF" --ssh-key "$tmp/text"
expect metadata-missing 2 "No such file" -- run --kernel "$ELF" --net user --metadata "$tmp/nope"
expect metadata-bad-json 2 "line 1" -- run --kernel "$ELF" --net user --metadata "$tmp/text"
expect metadata-version 2 "--metadata-version" -- run --kernel "$ELF" --net user --metadata-version 3
printf '{"hostname":"a-host-name-longer-than-the-limit"}' >"$tmp/md.json"
expect mmds-limit 2 "over the limit of 20 (--mmds-size-limit)" -- run --kernel "$ELF" --net user --metadata "$tmp/md.json" --mmds-size-limit 20
expect mmds-limit-word 2 "--mmds-size-limit" -- run --kernel "$ELF" --mmds-size-limit 50k
expect api-payload-small 2 "--http-api-max-payload-size" -- run --kernel "$ELF" --http-api-max-payload-size 100
if [ -e /dev/kvm ]; then
	# (--cpus above KVM_CAP_MAX_VCPUS is only reachable where that is below 254; KVM on x86 allows 1024.)
	expect console-file-dir 2 "--console" -- run --kernel "$ELF" --console "file:$tmp"
	if [ "$(cat /proc/sys/vm/nr_hugepages 2>/dev/null)" = 0 ]; then
		expect hugetlb-unreserved 3 "nr_hugepages" -- run --kernel "$ELF" --memory 64 --memory-backing hugetlb --console none
	fi
	expect thp-backing 0 "" -- run --kernel "$ELF" --memory 64 --memory-backing thp --console none
fi
echo "cli: $passed passed, $failed failed"
[ "$failed" = 0 ]
