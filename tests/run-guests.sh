#!/usr/bin/env bash
# Run kiln's test guests (tests/guests/build/*.elf, built by `make guests`) and check exit codes and console output.
#
# usage: tests/run-guests.sh KILN_BINARY [NAME...]   run under kiln (needs /dev/kvm)
#        tests/run-guests.sh --qemu [NAME...]        run under QEMU TCG, to debug a guest
#
# Prints "PASS name" / "FAIL name (why)" per test, then
# "guests: N passed, M failed[, K skipped]". Exit status 0 when nothing failed.
# Without a usable /dev/kvm it prints "guests: SKIPPED — /dev/kvm not available
# (reason)" and exits 0, or 1 when KILN_REQUIRE_KVM=1.
#
# A guest may declare extra kiln arguments and a check after kiln exits in
# tests/guests/NAME.args (or PREFIX.args for every PREFIX_* guest): a bash
# fragment sourced here that may call make_disk, sets GUEST_ARGS and may
# define guest_post (see docs/test-guests.md).
#
# Environment: KILN_EXTRA_ARGS (more `kiln run` arguments for every guest,
# word-split, e.g. "--io-poll 50"), KILN_GUEST_TIMEOUT (seconds per guest, default 60),
# KILN_SKIP_GUESTS (names to skip), KILN_GUEST_LOGS (keep outputs there),
# QEMU (QEMU binary for --qemu, default qemu-system-x86_64).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$ROOT/tests/guests/build
TIMEOUT=${KILN_GUEST_TIMEOUT:-60}
MEMORY=64
# shellcheck disable=SC2206
EXTRA=(${KILN_EXTRA_ARGS:-})

# One line per test: name, --cpus, expected kiln exit code, check, and an
# optional line the output must contain (prefix match). Checks:
#   success   a line "SUCCESS" and no "FAIL" line
#   exact     the output, \r removed, equals tests/guests/NAME.expected
#   ran       no "FAIL" line, and the required line (guests that cannot say SUCCESS)
#   killable  the guest never stops: SIGTERM after a few seconds must end kiln
# The ELF is tests/guests/build/NAME.elf (demo: guests/demo/demo.elf).
TESTS='
serial        1  0     exact
serial_input  1  0     success  serial_input: got
pio           1  0     success
string_io     1  0     success  string_io:
mmio          1  0     success
beyond_ram    1  0     success
int3          1  0     success
poweroff      1  0     success
reset         1  4     ran      reset: writing
triple_fault  1  5     ran      triple_fault: ud2
panic         1  6     ran      panic: pvpanic features
smp           4  0     success  cpus=4
port_storm    1  0     success  port_storm: still alive
spin          1  term  killable spin: looping
demo          2  0     ran      vCPUs: 2 of 2 running
virtio_blk    1  0     success  virtio_blk: GET_ID
hostile_loop  1  0     success  hostile: recovered
hostile_beyond_ram 1 0 success  hostile: recovered
hostile_wrap  1  0     success  hostile: recovered
hostile_zero_len 1 0   success  hostile: recovered
hostile_nested_indirect 1 0 success hostile: recovered
hostile_avail_jump 1 0 success  hostile: recovered
hostile_qsize0 1 0     success  hostile: recovered
hostile_qsize_npot 1 0 success  hostile: recovered
'

usage() {
	echo "usage: $0 KILN_BINARY [NAME...] | $0 --qemu [NAME...]" >&2
	exit 2
}

MODE=kiln
if [ $# -lt 1 ]; then
	usage
elif [ "$1" = --qemu ]; then
	MODE=qemu
	QEMU=${QEMU:-qemu-system-x86_64}
	command -v "$QEMU" >/dev/null 2>&1 || { echo "run-guests: $QEMU not found" >&2; exit 2; }
	shift
else
	KILN=$1
	shift
	[ -x "$KILN" ] || { echo "run-guests: $KILN is not an executable kiln binary" >&2; exit 2; }
fi
ONLY=" $* "

if [ -n "${KILN_GUEST_LOGS:-}" ]; then
	LOGS=$KILN_GUEST_LOGS
	mkdir -p "$LOGS"
	KEEP_LOGS=1
else
	LOGS=$(mktemp -d "${TMPDIR:-/tmp}/kiln-guests.XXXXXX")
	KEEP_LOGS=0
fi

# ---- per-guest arguments (tests/guests/NAME.args) ----

# The .args file of a guest: NAME.args, else the one of its prefix (hostile_loop -> hostile.args).
args_file_of() {
	local f=$ROOT/tests/guests/$1.args
	[ -f "$f" ] || f=$ROOT/tests/guests/${1%%_*}.args
	[ -f "$f" ] && echo "$f"
}

# For .args fragments: make_disk SECTORS puts a fresh $LOGS/NAME.img with the
# content of tests/guests/disk-image.py in DISK (and SECTORS in DISK_SECTORS).
# Images are generated once per run and copied: Python is slow in the KVM lab.
make_disk() {
	local base=$LOGS/disk-$1.img
	DISK=$LOGS/$GUEST_NAME.img
	DISK_SECTORS=$1
	if [ ! -f "$base" ] && ! { python3 "$ROOT/tests/guests/disk-image.py" make "$base.tmp" "$1" &&
		mv "$base.tmp" "$base"; }; then
		echo "run-guests: cannot make $base" >&2
		return 1
	fi
	cp "$base" "$DISK"
}

# For guest_post: disk_check [FIRST:COUNT] prints why the image is not the
# original content (with the guest's pattern over FIRST..FIRST+COUNT-1):
# cmp against an expected image, made once; disk-image.py explains a difference.
disk_check() {
	local want=$LOGS/disk-$DISK_SECTORS${1:+-${1/:/-}}.img
	if [ ! -f "$want" ] && ! { python3 "$ROOT/tests/guests/disk-image.py" make "$want.tmp" "$DISK_SECTORS" "$@" &&
		mv "$want.tmp" "$want"; }; then
		echo "cannot make $want"
		return 1
	fi
	cmp -s "$DISK" "$want" && return 0
	python3 "$ROOT/tests/guests/disk-image.py" check "$DISK" "$DISK_SECTORS" "$@"
	return 1
}

# Load NAME's .args (or none): sets GUEST_ARGS, maybe guest_post, DISK.
load_args() {
	local f
	GUEST_NAME=$1
	GUEST_ARGS=()
	DISK='' DISK_SECTORS=''
	unset -f guest_post
	f=$(args_file_of "$1") || return 0
	# shellcheck source=/dev/null
	. "$f"
}

# GUEST_ARGS as QEMU arguments: --disk becomes a modern-only virtio-blk-pci, --cmdline -append.
qemu_guest_args() {
	local i=0 a spec path serial ro n=0
	QEMU_GUEST_ARGS=()
	while [ $i -lt ${#GUEST_ARGS[@]} ]; do
		a=${GUEST_ARGS[$i]}
		case $a in
		--disk)
			i=$((i + 1))
			spec=${GUEST_ARGS[$i]} path='' serial='' ro=''
			IFS=, read -ra parts <<<"$spec"
			for p in "${parts[@]}"; do
				case $p in
				path=*) path=${p#path=} ;;
				serial=*) serial=,serial=${p#serial=} ;;
				ro) ro=,readonly=on ;;
				esac
			done
			QEMU_GUEST_ARGS+=(-drive "file=$path,if=none,id=disk$n,format=raw$ro"
				-device "virtio-blk-pci,drive=disk$n,disable-legacy=on$serial")
			n=$((n + 1)) ;;
		--cmdline)
			i=$((i + 1))
			QEMU_GUEST_ARGS+=(-append "${GUEST_ARGS[$i]}") ;;
		*)
			echo "run-guests: --qemu: no QEMU equivalent for kiln argument $a" >&2 ;;
		esac
		i=$((i + 1))
	done
}

elf_of() {
	if [ "$1" = demo ]; then echo "$ROOT/guests/demo/demo.elf"; else echo "$BUILD/$1.elf"; fi
}

# Why /dev/kvm cannot be used, or nothing.
kvm_problem() {
	[ -e /dev/kvm ] || { echo "no /dev/kvm"; return; }
	[ -c /dev/kvm ] || { echo "/dev/kvm is not a character device"; return; }
	(exec 3<>/dev/kvm) 2>/dev/null || { echo "cannot open /dev/kvm read-write"; return; }
}

skip_all() {
	echo "guests: SKIPPED — /dev/kvm not available ($1)"
	[ "${KILN_REQUIRE_KVM:-0}" = 1 ] && exit 1
	exit 0
}

# run NAME CPUS SECONDS OUT LOG: start the guest under kiln or QEMU; sets RC.
run_guest() {
	local name=$1 cpus=$2 secs=$3 out=$4 log=$5 elf
	elf=$(elf_of "$name")
	: >"$out"
	if [ "$MODE" = kiln ]; then
		if [ "$name" = serial_input ]; then
			# stdin is the console's input: the guest must read this line from its UART.
			printf 'kiln-input-test\n' | timeout -k 5 "$secs" "$KILN" run --kernel "$elf" --memory "$MEMORY" \
				--cpus "$cpus" --console stdio --stats "${EXTRA[@]}" >"$out" 2>"$log"
		else
			timeout -k 5 "$secs" "$KILN" run --kernel "$elf" --memory "$MEMORY" --cpus "$cpus" \
				--console "file:$out" --stats "${GUEST_ARGS[@]}" "${EXTRA[@]}" >"$log" 2>&1 </dev/null
		fi
	else
		qemu_guest_args
		# QEMU stands in: isa-debug-exit ends a guest whose poweroff found no ACPI
		# register, -no-reboot turns reset and triple fault into an exit.
		timeout -k 5 "$secs" "$QEMU" -M "${QEMU_MACHINE:-pc}" -cpu max -m "$MEMORY" -smp "$cpus" \
			-kernel "$elf" -display none -vga none -monitor none -parallel none \
			-serial "file:$out" -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=1 \
			-device pvpanic -action panic=exit-failure "${QEMU_GUEST_ARGS[@]}" >"$log" 2>&1 </dev/null
	fi
	RC=$?
}

# kiln's exit code as QEMU shows it in --qemu mode.
qemu_rc() {
	case $1 in
	0) echo 1 ;;          # isa-debug-exit(0) after the ACPI write: (0 << 1) | 1
	4 | 5) echo 0 ;;      # -no-reboot: reset / triple fault end QEMU with 0
	6) echo 1 ;;          # -action panic=exit-failure
	*) echo "$1" ;;
	esac
}

# Tests whose property QEMU does not share with kiln: why, or nothing.
qemu_differs() {
	case $1 in
	pio) echo "QEMU reads 0, not all ones, from unaligned unclaimed ports" ;;
	hostile_beyond_ram | hostile_wrap)
		echo "QEMU completes DMA to unassigned guest-physical addresses (status OK) instead of refusing it" ;;
	hostile_qsize_npot) echo "QEMU runs split rings of any size" ;;
	esac
}

last_line() {
	tr -d '\r' <"$1" | grep -v '^[[:space:]]*$' | tail -n 1 | cut -c1-160
}

# check NAME EXIT CHECK NEED OUT LOG: prints nothing when the test passed, else the reason.
check() {
	local name=$1 want=$2 kind=$3 need=$4 out=$5 log=$6 clean failline
	clean=$LOGS/$name.clean
	tr -d '\r' <"$out" >"$clean"

	if [ "$kind" = killable ]; then
		case $RC in
		124) ;;
		137) echo "did not exit within 5 s of SIGTERM"; return ;;
		*) echo "stopped by itself (exit $RC) instead of spinning; kiln: $(last_line "$log")"; return ;;
		esac
	elif [ "$RC" = 124 ] || [ "$RC" = 137 ]; then
		echo "timed out after ${TIMEOUT} s; guest said: $(last_line "$clean")"
		return
	else
		[ "$MODE" = qemu ] && want=$(qemu_rc "$want")
		if [ "$RC" != "$want" ]; then
			echo "exit $RC, expected $want; guest said: $(last_line "$clean"); log: $(last_line "$log")"
			return
		fi
	fi

	failline=$(grep -m1 '^FAIL' "$clean")
	if [ -n "$failline" ]; then
		echo "guest: ${failline:0:200}"
		return
	fi
	case $kind in
	success)
		grep -qx 'SUCCESS' "$clean" || { echo "no SUCCESS line; guest said: $(last_line "$clean")"; return; } ;;
	exact)
		if ! cmp -s "$clean" "$ROOT/tests/guests/$name.expected"; then
			echo "output differs from tests/guests/$name.expected: $(diff "$ROOT/tests/guests/$name.expected" "$clean" | grep -m1 '^[<>]' | cut -c1-120)"
			return
		fi ;;
	esac
	# kiln's own count of what it dropped (--stats), not only the guest's view.
	if [ "$MODE" = kiln ]; then
		case $name in
		string_io) grep -Eq 'pio unclaimed reads=(6553[6-9]|655[4-9][0-9]|65[6-9][0-9]{2}|6[6-9][0-9]{3}|[7-9][0-9]{4}|[0-9]{6,}) writes=(3276[8-9]|327[7-9][0-9]|32[8-9][0-9]{2}|3[3-9][0-9]{3}|[4-9][0-9]{4}|[0-9]{6,})' "$log" ||
			{ echo "kiln did not count every string I/O element: $(grep -m1 '^bus:' "$log")"; return; } ;;
		pio) grep -Eq 'pio unclaimed reads=([89]|[1-9][0-9]+) writes=(2[5-9]|[3-9][0-9]|[0-9]{3,})' "$log" ||
			{ echo "kiln did not count the unclaimed port accesses: $(grep -m1 '^bus:' "$log")"; return; } ;;
		mmio | beyond_ram) grep -Eq 'mmio unclaimed reads=[1-9][0-9]* writes=[1-9]' "$log" ||
			{ echo "kiln did not count the unclaimed MMIO accesses: $(grep -m1 '^bus:' "$log")"; return; } ;;
		esac
	fi
	# A hostile guest that saw DEVICE_NEEDS_RESET: kiln must have said so too.
	if [ "$MODE" = kiln ] && grep -qx 'hostile: outcome=needs_reset' "$clean" &&
		! grep -q 'device needs reset' "$log"; then
		echo "the guest saw DEVICE_NEEDS_RESET but kiln did not warn \"device needs reset\"; log: $(last_line "$log")"
		return
	fi
	# The guest's own post-check (NAME.args): e.g. what landed in the disk image.
	if declare -F guest_post >/dev/null; then
		local why
		why=$(guest_post 2>&1) || { echo "post-check: ${why:-failed}"; return; }
	fi
	if [ -n "$need" ] && ! awk -v n="$need" 'index($0, n) == 1 { f = 1 } END { exit !f }' "$clean"; then
		echo "no line starting \"$need\"; guest said: $(last_line "$clean")"
	fi
}

if [ "$MODE" = kiln ]; then
	problem=$(kvm_problem)
	[ -n "$problem" ] && skip_all "$problem"
	# /dev/kvm opens but may still refuse a VM: let kiln tell (exit 3 = host setup failed).
	if [ -f "$BUILD/poweroff.elf" ]; then
		run_guest poweroff 1 "$TIMEOUT" "$LOGS/probe.out" "$LOGS/probe.log"
		[ "$RC" = 3 ] && skip_all "kiln could not set up a VM: $(last_line "$LOGS/probe.log")"
	fi
fi

passed=0 failed=0 skipped=0
[ "$MODE" = qemu ] && echo "run-guests: under QEMU TCG ($QEMU -M ${QEMU_MACHINE:-pc}), not kiln"
while read -r name cpus want kind need; do
	[ -z "$name" ] && continue
	[ "$ONLY" != "  " ] && [[ $ONLY != *" $name "* ]] && continue
	if [[ " ${KILN_SKIP_GUESTS:-} " == *" $name "* ]]; then
		echo "SKIP $name (KILN_SKIP_GUESTS)"
		skipped=$((skipped + 1))
		continue
	fi
	if [ "$MODE" = qemu ] && [ -n "$(qemu_differs "$name")" ]; then
		echo "SKIP $name ($(qemu_differs "$name"))"
		skipped=$((skipped + 1))
		continue
	fi
	if [ ! -f "$(elf_of "$name")" ]; then
		echo "FAIL $name (not built: $(elf_of "$name" | sed "s|^$ROOT/||"); run make guests demo)"
		failed=$((failed + 1))
		continue
	fi
	out=$LOGS/$name.out
	log=$LOGS/$name.log
	if ! load_args "$name"; then
		echo "FAIL $name (its .args file failed)"
		failed=$((failed + 1))
		continue
	fi
	if [ "$kind" = killable ]; then
		run_guest "$name" "$cpus" 3 "$out" "$log"
	else
		run_guest "$name" "$cpus" "$TIMEOUT" "$out" "$log"
	fi
	why=$(check "$name" "$want" "$kind" "$need" "$out" "$log")
	if [ -z "$why" ]; then
		echo "PASS $name"
		passed=$((passed + 1))
	else
		echo "FAIL $name ($why)"
		failed=$((failed + 1))
	fi
done <<<"$TESTS"

# The console on a terminal: kiln puts it in raw mode, Ctrl-A x quits (exit 0)
# and the terminal settings are restored. script(1) gives kiln a pty; the
# spinning guest never stops by itself, so only the escape can end it.
if [ "$MODE" = kiln ] && [[ $ONLY == "  " || $ONLY == *" console_quit "* ]] && command -v script >/dev/null; then
	log=$LOGS/console_quit.log
	(sleep 2; printf 'hello\001x') | timeout -k 5 20 script -qec \
		"stty -g > $LOGS/stty.before; $KILN run --kernel $BUILD/spin.elf --memory $MEMORY; echo kiln-exit=\$?; stty -g > $LOGS/stty.after" \
		"$log" >/dev/null 2>&1
	if ! grep -q 'kiln-exit=0' "$log"; then
		echo "FAIL console_quit (Ctrl-A x did not end kiln with 0: $(tr -d '\r' <"$log" | grep -v '^$' | tail -n 2 | tr '\n' ' '))"
		failed=$((failed + 1))
	elif ! cmp -s "$LOGS/stty.before" "$LOGS/stty.after"; then
		echo "FAIL console_quit (terminal settings not restored)"
		failed=$((failed + 1))
	else
		echo "PASS console_quit"
		passed=$((passed + 1))
	fi
fi

# A console reader that goes away early (kiln ... | head -1): kiln must not die
# of SIGPIPE; the guest still runs to its power-off and kiln exits 0.
if [ "$MODE" = kiln ] && [[ $ONLY == "  " || $ONLY == *" console_pipe "* ]]; then
	rc=$( { timeout -k 5 "$TIMEOUT" "$KILN" run --kernel "$BUILD/serial.elf" --memory "$MEMORY" --console stdio \
		2>"$LOGS/console_pipe.log" </dev/null; echo $? >"$LOGS/console_pipe.rc"; } | head -c 1 >/dev/null; cat "$LOGS/console_pipe.rc")
	if [ "$rc" = 0 ]; then
		echo "PASS console_pipe"
		passed=$((passed + 1))
	else
		echo "FAIL console_pipe (exit $rc after the console reader went away; $(tail -n 1 "$LOGS/console_pipe.log"))"
		failed=$((failed + 1))
	fi
fi

summary="guests: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && summary="$summary, $skipped skipped"
echo "$summary"
if [ "$failed" -gt 0 ] || [ "$KEEP_LOGS" = 1 ]; then
	echo "guest outputs and logs: $LOGS"
else
	rm -rf "$LOGS"
fi
[ "$failed" -eq 0 ]
