#!/usr/bin/env bash
# Install what kiln needs on Debian 12: build tools and libraries; --test adds what the tests use.
set -euo pipefail
pkgs=(build-essential pkg-config libcmocka-dev libjansson-dev liburing-dev libhttp-parser-dev libslirp-dev)
case "${1:-}" in
--lab)	# QEMU + Debian's kernel: the KVM lab on hosts without /dev/kvm (docs/kvmlab.md).
	pkgs+=(qemu-system-x86 linux-image-amd64 busybox-static) ;;
--test)	# ... plus what the Linux guests are built from (docs/linux-guests.md).
	pkgs+=(qemu-system-x86 linux-image-amd64 busybox-static cpio xz-utils zstd lz4 bc bison flex
	       libelf-dev libssl-dev linux-source-6.1 python3 clang curl jq) ;;
esac
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The lwIP test guest builds lwIP from Debian's source package (pinned); a
# missing one fails here rather than skipping the test (tests/net/lwip.sh).
if [ "${1:-}" = --test ]; then
	bash "$(dirname "$0")/get-lwip.sh" >/dev/null
fi
