#!/usr/bin/env bash
# Build kiln's test kernel (tinyconfig + kernel/kiln.config) from Debian's
# linux-source-6.1, cached outside the clone; prints the output directory.
#
# usage: scripts/build-test-kernel.sh [--force]
#   stdout: one line, the directory holding bzImage, vmlinux, System.map, config
#   stderr: progress; the full build log is kept in that directory (build.log)
#
# The cache key is sha256(kernel/kiln.config, this script, the linux-source
# package version): a change to any of them builds a new directory, an
# unchanged key reuses the old one. KILN_CACHE (default ~/.cache/kiln) moves
# the cache; KILN_KEEP_SRC=1 keeps the built source tree next to the outputs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/scripts/build-test-kernel.sh"
FRAG="$ROOT/kernel/kiln.config"
CACHE=${KILN_CACHE:-$HOME/.cache/kiln}
SRCPKG=linux-source-6.1
SRCTAR=/usr/src/linux-source-6.1.tar.xz
DEPS=(build-essential bc bison flex libelf-dev libssl-dev cpio xz-utils lz4 "$SRCPKG")
FORCE=0

log() { printf 'build-test-kernel: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for a in "$@"; do
	case "$a" in
	--force) FORCE=1 ;;
	-h|--help) sed -n '2,13p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $a" ;;
	esac
done

[ -f "$FRAG" ] || die "missing $FRAG"

pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# --- cache key -------------------------------------------------------------------
key() {
	SRCVER=$(dpkg-query -W -f='${Version}' "$SRCPKG")
	HASH=$( { cat "$FRAG"; cat "$SELF"; printf '%s %s\n' "$SRCPKG" "$SRCVER"; } |
		sha256sum | cut -c1-16)
	OUT="$CACHE/test-kernel-$HASH"
}
cached() {
	if [ "$FORCE" -eq 0 ] && [ -f "$OUT/.complete" ]; then
		log "cached: $OUT ($SRCPKG $SRCVER)"
		echo "$OUT"
		exit 0
	fi
}
# A cache hit installs and writes nothing (the cache may be read-only, as in
# the KVM lab): it needs only the installed linux-source version.
if pkg_installed "$SRCPKG"; then
	key
	cached
fi

# --- host packages ------------------------------------------------------------------
missing=()
for p in "${DEPS[@]}"; do pkg_installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 \
		install -y --no-install-recommends "${missing[@]}" >&2 ||
		die "apt-get install ${missing[*]} failed"
fi
[ -f "$SRCTAR" ] || die "$SRCTAR not found (package $SRCPKG)"
key

mkdir -p "$CACHE"
# One builder at a time per cache (a second caller waits, then reuses).
exec 9>"$CACHE/.test-kernel.lock"
flock 9
cached

TMP="$OUT.tmp"
rm -rf "$TMP"
mkdir -p "$TMP"
BLOG="$TMP/build.log"
start=$(date +%s)

log "extracting $SRCTAR ($SRCVER)"
tar -C "$TMP" -xf "$SRCTAR"
SRC="$TMP/linux-source-6.1"
[ -f "$SRC/Makefile" ] || die "unexpected layout in $SRCTAR"

mk() { make -C "$SRC" ARCH=x86_64 "$@" >>"$BLOG" 2>&1 || { tail -40 "$BLOG" >&2; die "make $* failed (log: $BLOG)"; }; }

log "configuring: tinyconfig + kernel/kiln.config"
mk tinyconfig
(cd "$SRC" && ARCH=x86_64 scripts/kconfig/merge_config.sh -m .config "$FRAG" >>"$BLOG" 2>&1) ||
	die "merge_config.sh failed (log: $BLOG)"
mk olddefconfig

# Every option of the fragment must have survived olddefconfig: a silently
# dropped option (an unmet dependency) would build a kernel kiln can't test.
bad=()
while IFS= read -r line; do
	if [[ "$line" =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
		grep -qxF "$line" "$SRC/.config" ||
			bad+=("$line (got: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$SRC/.config" || echo absent))")
	elif [[ "$line" =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
		! grep -q "^${BASH_REMATCH[1]}=" "$SRC/.config" ||
			bad+=("$line (got: $(grep "^${BASH_REMATCH[1]}=" "$SRC/.config"))")
	fi
done <"$FRAG"
if [ ${#bad[@]} -gt 0 ]; then
	log "these kernel/kiln.config options did not stick after olddefconfig:"
	printf '  %s\n' "${bad[@]}" >&2
	die "fix kernel/kiln.config (dependencies), the .config is in $SRC"
fi

jobs=$(nproc)
log "building bzImage + vmlinux with -j$jobs (log: $OUT/build.log)"
mk -j"$jobs" bzImage

cp "$SRC/arch/x86/boot/bzImage" "$TMP/bzImage"
cp "$SRC/vmlinux" "$TMP/vmlinux"
cp "$SRC/System.map" "$TMP/System.map"
cp "$SRC/.config" "$TMP/config"
strip --strip-debug -o "$TMP/vmlinux.stripped" "$TMP/vmlinux" 2>/dev/null &&
	mv "$TMP/vmlinux.stripped" "$TMP/vmlinux"

# kiln's fast path on kvm_pvm is the PVH entry of the ELF vmlinux: a "Xen"
# note of type 18 (XEN_ELFNOTE_PHYS32_ENTRY), which readelf leaves unnamed.
readelf -n "$TMP/vmlinux" | grep -qE '^ *Xen[[:space:]]+0x[0-9a-f]+[[:space:]].*\(0x00000012\)' ||
	die "vmlinux has no Xen PVH note (CONFIG_PVH?)"

if [ "${KILN_KEEP_SRC:-0}" = 1 ]; then
	mv "$SRC" "$TMP/src"
else
	rm -rf "$SRC"
fi
secs=$(( $(date +%s) - start ))
printf '%s\n' "source=$SRCPKG $SRCVER" "hash=$HASH" "build_seconds=$secs" \
	"jobs=$jobs" "date=$(date -u +%FT%TZ)" >"$TMP/build-info"
touch "$TMP/.complete"
rm -rf "$OUT"
mv "$TMP" "$OUT"
log "done in ${secs}s: $OUT"
echo "$OUT"
