#!/usr/bin/env bash
# Fetch lwIP's source from Debian's archive (source package lwip, pinned) for the lwIP test guest; prints the source directory.
#
# usage: scripts/get-lwip.sh
#   stdout: last line is the unpacked source directory (Debian's patches applied)
#   stderr: progress
#
# Debian's liblwip-dev ships a library built for the Linux port (pthreads,
# glibc), so the freestanding guest builds lwIP from the source package
# instead. apt verifies the .dsc and tarballs against the signed Sources index;
# dpkg-source unpacks and applies Debian's patches. Needs a deb-src entry for
# bookworm: one is added (/etc/apt/sources.list.d/kiln-src.sources, as root or
# through sudo) when apt knows no source for the version. Idempotent: a
# complete unpack in ${KILN_CACHE:-~/.cache/kiln}/lwip-VERSION/ is reused
# without touching apt (the KVM lab sees it read-only).
set -euo pipefail

VERSION=2.1.3+dfsg1-2
CACHE=${KILN_CACHE:-$HOME/.cache/kiln}
OUT=$CACHE/lwip-$VERSION
SRC=$OUT/src
SOURCES=/etc/apt/sources.list.d/kiln-src.sources

log() { printf 'get-lwip: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ -f "$OUT/.complete" ] && [ -f "$SRC/src/core/tcp.c" ]; then
	echo "$SRC"
	exit 0
fi

if ! command -v apt-get >/dev/null || ! command -v dpkg-source >/dev/null; then
	die "needs apt-get and dpkg-source (Debian 12; dpkg-dev comes with build-essential)"
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
have_source() { apt-cache showsrc lwip 2>/dev/null | grep -qx "Version: $VERSION"; }
if ! have_source; then
	if [ ! -f "$SOURCES" ]; then
		log "adding a deb-src entry for bookworm main: $SOURCES"
		printf '%s\n' 'Types: deb-src' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm' \
			'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' |
			$SUDO tee "$SOURCES" >/dev/null || die "cannot write $SOURCES (run as root)"
	fi
	log "apt-get update (for the source index)"
	$SUDO apt-get update -qq >&2 || die "apt-get update failed"
	have_source || die "Debian's archive has no source package lwip $VERSION (is bookworm's deb-src reachable?)"
fi

mkdir -p "$OUT"
rm -rf "$SRC" "$OUT/.complete"
log "downloading lwip $VERSION (source) into $OUT"
(cd "$OUT" && apt-get source --download-only -qq "lwip=$VERSION" >&2) ||
	die "apt-get source lwip=$VERSION failed"
log "unpacking with Debian's patches"
(cd "$OUT" && dpkg-source --no-check -x "lwip_$VERSION.dsc" src >&2) || die "dpkg-source -x failed"
[ -f "$SRC/src/core/tcp.c" ] || die "$SRC has no src/core/tcp.c"
touch "$OUT/.complete"
echo "$SRC"
