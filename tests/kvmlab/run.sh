#!/usr/bin/env bash
# kiln's KVM lab: run a command where /dev/kvm works, on a host without one.
#
# usage: tests/kvmlab/run.sh [OPTIONS] [--] COMMAND [ARGS...]
#   --timeout SECONDS  kill the lab after this long, exit 124 (default 1800)
#   --smp N            lab vCPUs (default 2)
#   --mem MiB          lab RAM (default 3072)
#   --env NAME         also pass host variable NAME into the lab (repeatable)
#   --verbose          show the lab's boot log (kernel + init) on stderr
#   --force-vm         use the lab even when the host has /dev/kvm
#   -h, --help         this text
#
# With a usable /dev/kvm on the host, COMMAND just runs here. Otherwise it
# runs in a QEMU TCG VM (Debian's kernel, nested SVM, kvm_amd) that sees the
# host's files: / read-only, the current directory writable, fresh /tmp,
# /run, /dev (with /dev/kvm), /proc, /sys. COMMAND's stdout and stderr come
# out on stdout; run.sh exits with COMMAND's status, 124 on timeout, 125 when
# the lab itself failed. One lab runs at a time on a host: a second one
# waits for the first (two TCG labs on 2 cores starve each other into soft
# lockups); KVMLAB_LOCK names the lock file. Environment inside: PATH, CI,
# KILN_*, the --env names, HOME=/root, TERM=dumb, KVMLAB=1. Installs its packages with apt when
# missing; caches boot files in ${KILN_CACHE:-~/.cache/kiln}/kvmlab.
# Details: docs/kvmlab.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TIMEOUT=1800 SMP=2 MEM=3072 VERBOSE=0 FORCE_VM=${KVMLAB_FORCE_VM:-0}
EXTRA_ENV=()

log() { printf 'kvmlab: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 125; }
usage() { sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
num() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 wants a positive number, got '$2'"; }

while [ $# -gt 0 ]; do
	case "$1" in
	--timeout) [ $# -ge 2 ] || die "$1 wants a value"; num "$1" "$2"; TIMEOUT=$2; shift 2 ;;
	--smp)     [ $# -ge 2 ] || die "$1 wants a value"; num "$1" "$2"; SMP=$2; shift 2 ;;
	--mem)     [ $# -ge 2 ] || die "$1 wants a value"; num "$1" "$2"; MEM=$2; shift 2 ;;
	--env)     [ $# -ge 2 ] || die "$1 wants a value"; EXTRA_ENV+=("$2"); shift 2 ;;
	--verbose) VERBOSE=1; shift ;;
	--force-vm) FORCE_VM=1; shift ;;
	-h|--help) usage; exit 0 ;;
	--) shift; break ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { usage >&2; exit 125; }

if [ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ "$FORCE_VM" != 1 ]; then
	log "/dev/kvm is available on this host; running '$*' directly (no VM)"
	exec "$@"
fi

# --- host packages and kernel --------------------------------------------------
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
	else die "need root to run: $*"; fi
}
apt_install() {
	log "installing $* (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	if ! as_root apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; then
		as_root apt-get update -q >/dev/null 2>&1 || true
		as_root apt-get install -y -q --no-install-recommends "$@" >&2 ||
			die "apt-get install $* failed"
	fi
}
# A kernel fits when its modules include kvm-amd and 9p (built in or not).
has_mod() {
	local md=/lib/modules/$1
	grep -qE "/$2\.ko(\.[a-z]+)?:" "$md/modules.dep" 2>/dev/null ||
		grep -qE "/$2\.ko(\.[a-z]+)?$" "$md/modules.builtin" 2>/dev/null
}
pick_kernel() {
	local f kv
	for f in $(printf '%s\n' /boot/vmlinuz-*-amd64 | sort -rV); do
		kv=${f#/boot/vmlinuz-}
		[ -r "$f" ] && has_mod "$kv" kvm-amd && has_mod "$kv" 9p && { echo "$kv"; return 0; }
	done
	return 1
}

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
pkg_installed busybox-static || need+=(busybox-static)
command -v xz >/dev/null || need+=(xz-utils)
KV=$(pick_kernel) || need+=(linux-image-amd64)
[ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
[ -n "${KV:-}" ] || KV=$(pick_kernel) ||
	die "no /boot/vmlinuz-*-amd64 with kvm-amd and 9p modules (is linux-image-amd64 installed?)"

# --- boot files, cached by kernel + the lab's own scripts ----------------------
CACHE=${KILN_CACHE:-${HOME:-/root}/.cache/kiln}/kvmlab
KEY=$( { echo "$KV"; for f in "/boot/vmlinuz-$KV" "$HERE/init" "$HERE/build-initrd.sh" /bin/busybox; do
	sha256sum < "$f"; done; } | sha256sum | cut -c1-16)
BOOT=$CACHE/$KV-$KEY
if [ ! -f "$BOOT/initrd.gz" ] || [ ! -f "$BOOT/kernel" ]; then
	log "building the lab's boot files for $KV in $BOOT"
	mkdir -p "$CACHE"
	tmp=$(mktemp -d "$CACHE/.build.XXXXXX")
	if ! bash "$HERE/build-initrd.sh" "$KV" "$tmp"; then rm -rf "$tmp"; die "building the initrd failed"; fi
	if ! mv -T "$tmp" "$BOOT" 2>/dev/null; then   # a race lost (use the winner's) or a broken dir
		if [ -f "$BOOT/initrd.gz" ] && [ -f "$BOOT/kernel" ]; then rm -rf "$tmp"
		else rm -rf "$BOOT"; mv -T "$tmp" "$BOOT"; fi
	fi
	# Drop builds for older kernels or lab scripts once unused for a day.
	find "$CACHE" -mindepth 1 -maxdepth 1 -type d ! -path "$BOOT" -mmin +1440 \
		-exec rm -rf {} + 2>/dev/null || true
fi
touch "$BOOT"

# --- the run -------------------------------------------------------------------
CWD=$(pwd -P)
case "$CWD" in
/) die "run from a directory other than / (it is shared writable into the lab)" ;;
/proc|/proc/*|/sys|/sys/*|/dev|/dev/*) die "cannot share $CWD into the lab" ;;
*$'\n'*) die "the current directory's name has a newline" ;;
esac
CTL=$(mktemp -d "${TMPDIR:-/tmp}/kvmlab.XXXXXX")
QPID='' CATPID=''
# shellcheck disable=SC2317  # called by the trap
cleanup() {
	[ -z "$QPID" ] || { kill "$QPID" 2>/dev/null; wait "$QPID" 2>/dev/null; } || true
	[ -z "$CATPID" ] || kill "$CATPID" 2>/dev/null || true
	rm -rf "$CTL"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

q() { local s=${1//\'/\'\\\'\'}; printf "'%s'" "$s"; }   # POSIX sh quoting
{
	printf 'export PATH=%s HOME=/root TERM=dumb KVMLAB=1\n' "$(q "${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}")"
	while IFS= read -r name; do
		case "$name" in CI|KILN_*) printf 'export %s=%s\n' "$name" "$(q "${!name}")" ;; esac
	done < <(compgen -e)
	for name in "${EXTRA_ENV[@]}"; do
		[[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "--env: bad variable name '$name'"
		[ -z "${!name+x}" ] || printf 'export %s=%s\n' "$name" "$(q "${!name}")"
	done
	printf 'cd %s || exit 125\n' "$(q "$CWD")"
	printf 'exec'; for a in "$@"; do printf ' %s' "$(q "$a")"; done; printf '\n'
} > "$CTL/cmd.sh"
printf '%s\n' "$CWD" > "$CTL/cwd"

# One lab at a time per host (docs/kvmlab.md, "Known flake"): wait here,
# before the timeout starts counting.
LOCK=${KVMLAB_LOCK:-/run/lock/kiln-kvmlab.lock}
exec 9>>"$LOCK" || die "cannot open the lab lock $LOCK"
if ! flock -n 9; then
	log "another lab is running on this host; waiting for it to finish"
	flock 9
fi
log "running '$*' in a QEMU TCG VM with nested SVM (/dev/kvm not available on this host)"
share() {  # share TAG PATH [OPTS]: a virtio-9p device (commas in paths doubled for QEMU)
	QARGS+=(-fsdev "local,id=$1,path=${2//,/,,},security_model=none,multidevs=remap${3:-}"
		-device "virtio-9p-pci,fsdev=$1,mount_tag=$1")
}
# shellcheck disable=SC2054  # the commas are QEMU's
QARGS=(-nodefaults -no-user-config -machine pc -accel tcg,thread=multi -cpu max
	-smp "$SMP" -m "$MEM" -display none -no-reboot -net none
	-kernel "$BOOT/kernel" -initrd "$BOOT/initrd.gz"
	-append "console=ttyS0 quiet loglevel=4 panic=-1 cryptomgr.notests"
	-serial "file:$CTL/console.log"
	-device virtio-serial-pci,max_ports=2 -chardev "file,id=out,path=${CTL//,/,,}/out"
	-device virtserialport,chardev=out,name=kvmlab.out)
share kvmlabctl "$CTL"
share hostroot / ,readonly=on
share kvmlabcwd "$CWD"
# COMMAND's output: guest pipe -> virtio serial port kvmlab.out -> chardev
# file = our fifo -> cat -> our stdout. Not a serial port (~150 KB/s under
# TCG), not a virtconsole (drops data when its reader lags), not chardev stdio
# (a virtserialport never sees it open; it also sets O_NONBLOCK on our stdout).
# If our reader goes away (run.sh ... | head), keep draining: a stalled port
# would stall COMMAND until the timeout.
mkfifo "$CTL/out"
pump() { exec 3< "$CTL/out"; cat <&3 || true; exec cat <&3 > /dev/null; }
pump &
CATPID=$!
START=$(date +%s%N)
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 "${QARGS[@]}" < /dev/null > /dev/null 2> "$CTL/qemu.err" &
QPID=$!
st=0; wait "$QPID" || st=$?
QPID=
{ :; } 4<> "$CTL/out"   # frees the pump if QEMU died before opening the fifo
wait "$CATPID" || true
END=$(date +%s%N)

show_log() {
	[ ! -s "$CTL/qemu.err" ] || { log "qemu stderr:"; sed 's/^/  /' "$CTL/qemu.err" >&2; }
	[ ! -s "$CTL/console.log" ] || { log "lab console:"; tr -d '\r' < "$CTL/console.log" | sed 's/^/  /' >&2; }
}
[ "$VERBOSE" != 1 ] || show_log
if [ "$st" = 124 ] || { [ "$st" = 137 ] && [ $(( (END - START) / 1000000000 )) -ge "$TIMEOUT" ]; }; then
	[ "$VERBOSE" = 1 ] || show_log
	log "timed out after $TIMEOUT s; QEMU killed"
	exit 124
fi
if [ -s "$CTL/error" ] || [ ! -s "$CTL/rc" ]; then
	[ "$VERBOSE" = 1 ] || show_log
	[ ! -s "$CTL/error" ] || log "lab error: $(cat "$CTL/error")"
	log "the lab did not report COMMAND's exit status (QEMU exited $st); exiting 125"
	exit 125
fi
rc=$(cat "$CTL/rc")
[ "$VERBOSE" != 1 ] || log "COMMAND exited $rc; lab wall time $(( (END - START) / 1000000 )) ms"
exit "$rc"
