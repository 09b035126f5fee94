#!/usr/bin/env bash
# Assemble a Linux guest for kiln from Debian packages: the cloud kernel
# (vmlinuz, and the ELF vmlinux extracted from it) and a busybox initramfs.
#
# usage: scripts/mk-debian-guest.sh [--gzip] [OUTDIR]
#   OUTDIR   default ${KILN_CACHE:-$HOME/.cache/kiln}/debian-guest
#   --gzip   also write initramfs.cpio.gz (smaller; slower to unpack on a
#            kvm_pvm host, where the guest kernel's code is emulated)
# Outputs in OUTDIR: vmlinuz, vmlinux (PVH ELF, if extractable), System.map,
# config, initramfs.cpio, modules (what went into the initramfs).
# Environment:
#   KILN_DEBIAN_KERNEL_PKG  kernel metapackage (linux-image-cloud-amd64)
#   KILN_GUEST_MODULES      modules to put in the initramfs and load at boot,
#                           with their dependencies (default: pvpanic-mmio and
#                           the virtio drivers: pci, mmio, blk, rng, console)
# Idempotent: downloads, extraction and the initramfs are redone only when
# their inputs changed; remove OUTDIR to start over.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/scripts/mk-debian-guest.sh"
INIT="$ROOT/scripts/guest-init.sh"
GZIP=0
OUT=
for a in "$@"; do
	case "$a" in
	--gzip) GZIP=1 ;;
	-h|--help) sed -n '2,17p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "mk-debian-guest: unknown option $a" >&2; exit 2 ;;
	*) OUT=$a ;;
	esac
done
OUT=${OUT:-${KILN_CACHE:-$HOME/.cache/kiln}/debian-guest}
META=${KILN_DEBIAN_KERNEL_PKG:-linux-image-cloud-amd64}
MODULES=${KILN_GUEST_MODULES-pvpanic-mmio virtio_pci virtio_mmio virtio_blk virtio-rng virtio_console}

# Debian's own python3 (a version manager's shim can cost seconds per start).
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
log() { printf 'mk-debian-guest: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK="$OUT/work"
mkdir -p "$WORK/debs"

# --- host tools ------------------------------------------------------------------
need=()
for t in dpkg-deb:dpkg apt-get:apt python3:python3 xz:xz-utils zstd:zstd lz4:lz4 \
	cpio:cpio depmod:kmod readelf:binutils; do
	command -v "${t%%:*}" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "${t%%:*}" >/dev/null ||
		need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	log "installing host tools: ${need[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 \
		install -y --no-install-recommends "${need[@]}" >&2 || die "apt-get install failed"
fi

# --- download (apt-get download: no installation on the host) ---------------------
# The metapackage depends on the versioned image package that holds /boot/vmlinuz-*.
IMGPKG=$(apt-cache depends "$META" 2>/dev/null |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
[ -n "$IMGPKG" ] || die "cannot resolve the kernel package of $META (apt-get update?)"

# Candidate versions of both packages in one apt-cache call (each call parses
# the whole package cache: seconds on a slow machine).
declare -A CAND=()
while read -r pkg ver; do CAND[$pkg]=$ver; done < <(apt-cache policy "$IMGPKG" busybox-static |
	awk '/^[^ ].*:$/ { sub(":$", ""); p = $1 } $1 == "Candidate:" { print p, $2 }')

fetch() { # package -> path of its .deb in $WORK/debs
	local pkg=$1 ver=${CAND[$1]:-} deb
	[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no candidate version for $pkg"
	# .deb file names encode the epoch colon as %3a.
	deb=$(ls "$WORK/debs/${pkg}_${ver/:/%3a}_"*.deb 2>/dev/null | head -1 || true)
	if [ -z "$deb" ]; then
		log "downloading $pkg $ver"
		# As root, apt's _apt sandbox user can't write into a private cache dir.
		(cd "$WORK/debs" && apt-get "${APT_SANDBOX[@]}" download "$pkg=$ver" >&2) ||
			die "apt-get download $pkg failed"
		deb=$(ls "$WORK/debs/${pkg}_${ver/:/%3a}_"*.deb | head -1)
	fi
	echo "$deb"
}
APT_SANDBOX=()
[ "$(id -u)" -ne 0 ] || APT_SANDBOX=(-o APT::Sandbox::User=root)
KDEB=$(fetch "$IMGPKG")
BDEB=$(fetch busybox-static)

unpack() { # deb dir: extract once per .deb
	local deb=$1 dir=$2
	if [ "$(cat "$dir/.from" 2>/dev/null)" != "$(basename "$deb")" ]; then
		log "extracting $(basename "$deb")"
		rm -rf "$dir"
		mkdir -p "$dir"
		dpkg-deb -x "$deb" "$dir"
		basename "$deb" >"$dir/.from"
	fi
}
unpack "$KDEB" "$WORK/kernel"
unpack "$BDEB" "$WORK/busybox"

# --- kernel --------------------------------------------------------------------------
VMLINUZ=$(ls "$WORK"/kernel/boot/vmlinuz-* | head -1)
KVER=${VMLINUZ##*/vmlinuz-}
MODDIR="$WORK/kernel/lib/modules/$KVER"
[ -d "$MODDIR" ] || die "no modules directory for $KVER"
# The package ships no modules.dep (its postinst runs depmod): make one.
if [ ! -s "$MODDIR/modules.dep" ]; then
	log "depmod for $KVER"
	PATH=$PATH:/usr/sbin:/sbin depmod -b "$WORK/kernel" "$KVER" || die "depmod failed"
fi

copy_if_new() { cmp -s "$1" "$2" 2>/dev/null || cp "$1" "$2"; }
copy_if_new "$VMLINUZ" "$OUT/vmlinuz"
# Debian's System.map is an 83-byte placeholder (the real one is in -dbg).
[ "$(stat -c %s "$WORK/kernel/boot/System.map-$KVER" 2>/dev/null || echo 0)" -gt 4096 ] && copy_if_new "$WORK/kernel/boot/System.map-$KVER" "$OUT/System.map"
[ -f "$WORK/kernel/boot/config-$KVER" ] && copy_if_new "$WORK/kernel/boot/config-$KVER" "$OUT/config"

if [ ! -f "$OUT/vmlinux" ] || [ "$OUT/vmlinux" -ot "$OUT/vmlinuz" ]; then
	log "extracting the ELF vmlinux from vmlinuz"
	"$PY" "$ROOT/scripts/extract-vmlinux.py" "$OUT/vmlinuz" "$OUT/vmlinux" >&2 ||
		{ rm -f "$OUT/vmlinux"; log "warning: no vmlinux (kiln can still boot vmlinuz, slower on kvm_pvm)"; }
fi
if [ -f "$OUT/vmlinux" ] && ! readelf -n "$OUT/vmlinux" 2>/dev/null | grep -qE '^ *Xen[[:space:]]+0x[0-9a-f]+[[:space:]].*\(0x00000012\)'; then
	log "warning: $OUT/vmlinux has no PVH entry note"
fi

# --- initramfs -------------------------------------------------------------------------
# Modules and their dependencies from modules.dep, dependencies first.
declare -A seen=()
order=()
add_module() { # path relative to MODDIR (as in modules.dep)
	local rel=$1 line dep
	[ -z "${seen[$rel]+x}" ] || return 0
	seen[$rel]=1
	line=$(grep -m1 "^$rel:" "$MODDIR/modules.dep" || true)
	for dep in ${line#*:}; do add_module "$dep"; done
	order+=("$rel")
}
for m in $MODULES; do
	rel=$(grep -m1 -E "/${m//[-_]/[-_]}\\.ko(\\.xz|\\.zst|\\.gz)?:" "$MODDIR/modules.dep" | cut -d: -f1 || true)
	if [ -z "$rel" ]; then
		# Built into the kernel (modules.builtin) or unknown.
		grep -qE "/${m//[-_]/[-_]}\\.ko$" "$MODDIR/modules.builtin" 2>/dev/null &&
			log "$m is built into $KVER" || log "warning: module $m not found for $KVER"
		continue
	fi
	add_module "$rel"
done

KEY=$( { cat "$SELF" "$INIT" "$ROOT/scripts/mkcpio.py"; basename "$KDEB"; basename "$BDEB";
	printf '%s\n' "${order[@]}" "gzip=$GZIP"; } | sha256sum | cut -c1-16)
if [ -f "$OUT/initramfs.cpio" ] && [ "$(cat "$OUT/.initramfs.key" 2>/dev/null)" = "$KEY" ]; then
	log "initramfs up to date"
else
	log "building initramfs.cpio (busybox, ${#order[@]} module(s))"
	ST="$WORK/initramfs"
	rm -rf "$ST"
	mkdir -p "$ST"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,lib/modules}
	chmod 1777 "$ST/tmp"
	BB="$WORK/busybox/bin/busybox"
	[ -x "$BB" ] || die "busybox binary missing in $(basename "$BDEB")"
	cp "$BB" "$ST/bin/busybox"
	# One symlink per applet, where busybox installs it (/bin/sh, /sbin/poweroff...).
	"$BB" --list-full >"$WORK/applets"
	grep -qx 'bin/sh' "$WORK/applets" || echo bin/sh >>"$WORK/applets"
	while read -r d; do mkdir -p "$ST/$d"; done < <(sed -n 's|/[^/]*$||p' "$WORK/applets" | sort -u)
	install -m 0755 "$INIT" "$ST/init"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$ST/etc/passwd"
	printf 'root:x:0:\n' >"$ST/etc/group"
	printf 'export PS1="kiln-guest:\\w# "\nexport PATH=/bin:/sbin:/usr/bin:/usr/sbin\n' >"$ST/etc/profile"
	if [ ${#order[@]} -gt 0 ]; then
		mkdir -p "$ST/lib/modules/$KVER"
		: >"$ST/lib/modules/$KVER/kiln-load-order"
		for rel in "${order[@]}"; do
			# busybox insmod can't read compressed modules: decompress here.
			src="$MODDIR/$rel" name=$(basename "$rel")
			case "$rel" in
			*.ko.xz) xz -dc "$src" >"$ST/lib/modules/$KVER/${name%.xz}"; name=${name%.xz} ;;
			*.ko.zst) zstd -qdc "$src" >"$ST/lib/modules/$KVER/${name%.zst}"; name=${name%.zst} ;;
			*.ko.gz) gzip -dc "$src" >"$ST/lib/modules/$KVER/${name%.gz}"; name=${name%.gz} ;;
			*) cp "$src" "$ST/lib/modules/$KVER/$name" ;;
			esac
			echo "$name" >>"$ST/lib/modules/$KVER/kiln-load-order"
		done
	fi
	# /dev/console must exist before init runs (the kernel opens it for
	# init's stdio before anything mounts devtmpfs).
	"$PY" "$ROOT/scripts/mkcpio.py" "$ST" "$OUT/initramfs.cpio" --nod /dev/console:600:5:1 \
		--nod /dev/null:666:1:3 --slinks-from "$WORK/applets" /bin/busybox
	rm -f "$OUT/initramfs.cpio.gz"
	[ "$GZIP" -eq 1 ] && gzip -9nc "$OUT/initramfs.cpio" >"$OUT/initramfs.cpio.gz"
	printf '%s\n' "${order[@]}" >"$OUT/modules"
	echo "$KEY" >"$OUT/.initramfs.key"
fi

ls -la "$OUT" | sed 1d | grep -v ' work$' >&2
KILN="build/kiln"
[ -f "$OUT/vmlinux" ] && K="$OUT/vmlinux" || K="$OUT/vmlinuz"
cat >&2 <<EOF

Debian guest ready ($KVER). Boot it with kiln:
  $KILN run --kernel $K --initrd $OUT/initramfs.cpio --cpus 2 --memory 512
(--kernel $OUT/vmlinuz works too; the ELF vmlinux skips the decompressor,
which matters on a kvm_pvm host). To print the CPU count and power off, give
--cmdline 'console=ttyS0 reboot=k panic=-1 kiln.test=1' (--cmdline replaces
kiln's default). Leave the shell with 'exit' to power the guest off.
EOF
echo "$OUT"
