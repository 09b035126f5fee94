#!/usr/bin/env bash
# Build the KVM lab's boot files for one installed Debian kernel.
#
# usage: tests/kvmlab/build-initrd.sh KVER OUTDIR
#   KVER    kernel version with /boot/vmlinuz-KVER and /lib/modules/KVER
#   OUTDIR  created; receives
#             initrd.gz  busybox (static) + tests/kvmlab/init + the modules the
#                        lab needs (kvm-amd, 9p over virtio and their deps),
#                        uncompressed, listed in load order in /mods/order
#             kernel     the kernel to boot: the bzImage's payload (an ELF
#                        vmlinux that QEMU boots through its PVH entry, which
#                        skips the xz decompression that costs seconds under
#                        TCG), or a copy of the bzImage when that fails
# run.sh calls this when its cache misses; it is usable by hand for debugging.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf 'kvmlab-build: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -eq 2 ] || die "usage: $0 KVER OUTDIR"
KV=$1 OUT=$2
VMLINUZ=/boot/vmlinuz-$KV
MODDIR=/lib/modules/$KV
BUSYBOX=${KVMLAB_BUSYBOX:-/bin/busybox}
# What the lab's init loads; everything they depend on comes along.
WANT=(kvm-amd 9pnet_virtio 9p virtio_pci virtio_console)

[ -r "$VMLINUZ" ] || die "cannot read $VMLINUZ"
[ -f "$MODDIR/modules.dep" ] || die "missing $MODDIR/modules.dep"
[ -x "$BUSYBOX" ] || die "missing $BUSYBOX (apt-get install busybox-static)"
[[ $("$BUSYBOX" cpio --help 2>&1) == *"create an archive"* ]] || die "$BUSYBOX has no 'cpio -o'"

mkdir -p "$OUT"
ROOT=$(mktemp -d "${TMPDIR:-/tmp}/kvmlab-rootfs.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,dev,proc,sys,tmp,mods,ctl,host}
cp "$BUSYBOX" "$ROOT/bin/busybox"
ln -s busybox "$ROOT/bin/sh"
cp "$HERE/init" "$ROOT/init"
chmod 755 "$ROOT/init"

# --- modules, in dependency order (from modules.dep) -------------------------
# norm PATH-OR-NAME: module name as the kernel spells it, in $N (no subshells:
# modules.dep has thousands of lines)
norm() { N=${1##*/}; N=${N%%.ko*}; N=${N//-/_}; }
declare -A DEPS PATHOF BUILTIN SEEN
while IFS= read -r line; do
	norm "${line%%:*}"
	PATHOF[$N]=${line%%:*}; DEPS[$N]=${line#*:}
done < "$MODDIR/modules.dep"
if [ -f "$MODDIR/modules.builtin" ]; then
	while IFS= read -r path; do norm "$path"; BUILTIN[$N]=1; done < "$MODDIR/modules.builtin"
fi
ORDER=()
add() {  # add MODULE: its dependencies first, then itself
	local n d
	norm "$1"; n=$N
	[ -z "${SEEN[$n]:-}" ] || return 0
	SEEN[$n]=1
	[ -z "${BUILTIN[$n]:-}" ] || return 0
	[ -n "${PATHOF[$n]:-}" ] || die "module $1 not found in $MODDIR/modules.dep"
	for d in ${DEPS[$n]}; do add "$d"; done
	ORDER+=("$n")
}
for m in "${WANT[@]}"; do add "$m"; done
for n in "${ORDER[@]}"; do
	src=$MODDIR/${PATHOF[$n]}
	case "$src" in
	*.ko)     cp "$src" "$ROOT/mods/$n.ko" ;;
	*.ko.xz)  xz -dc "$src" > "$ROOT/mods/$n.ko" ;;
	*.ko.zst) zstd -qdc "$src" > "$ROOT/mods/$n.ko" ;;
	*.ko.gz)  gzip -dc "$src" > "$ROOT/mods/$n.ko" ;;
	*) die "unknown module format: $src" ;;
	esac
	echo "$n" >> "$ROOT/mods/order"
done
touch "$ROOT/mods/order"
log "modules: ${ORDER[*]:-(all built in)}"

(cd "$ROOT" && find . | LC_ALL=C sort | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1) > "$OUT/initrd.gz.tmp"
mv "$OUT/initrd.gz.tmp" "$OUT/initrd.gz"

# --- kernel: extract the ELF vmlinux for a PVH boot --------------------------
# The bzImage carries vmlinux compressed; find the first stream of a known
# format, decompress it (trailing data makes the decompressor complain; the
# ELF is complete by then), and keep it if it is an ELF with the PVH note
# (Xen note type 18, XEN_ELFNOTE_PHYS32_ENTRY; CONFIG_PVH=y on Debian).
extract() {
	local magic cmd off
	for fmt in xz zstd gzip; do
		case $fmt in
		xz)   magic='\xfd7zXZ\x00'; cmd=(xz -dc) ;;
		zstd) magic='\x28\xb5\x2f\xfd'; cmd=(zstd -qdc) ;;
		gzip) magic='\x1f\x8b\x08'; cmd=(gzip -dc) ;;
		esac
		command -v "${cmd[0]}" >/dev/null || continue
		off=$(LC_ALL=C grep -obUaP "$magic" "$VMLINUZ" 2>/dev/null | head -n1 | cut -d: -f1) || true
		[ -n "$off" ] || continue
		tail -c +$((off + 1)) "$VMLINUZ" | "${cmd[@]}" > "$OUT/kernel.tmp" 2>/dev/null || true
		if [ "$(head -c 4 "$OUT/kernel.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] &&
		   grep -q '^CONFIG_PVH=y' "/boot/config-$KV" 2>/dev/null; then
			mv "$OUT/kernel.tmp" "$OUT/kernel"
			log "kernel: vmlinux ($fmt payload of $VMLINUZ), PVH boot"
			return 0
		fi
	done
	rm -f "$OUT/kernel.tmp"
	return 1
}
if ! extract; then
	cp "$VMLINUZ" "$OUT/kernel"
	log "kernel: $VMLINUZ as is (no PVH vmlinux could be extracted)"
fi
