#!/usr/bin/env bash
# README command 1: install what is needed, build kiln and its demo guest, and boot it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
make -s -j"$(nproc)" all demo
cmd=(build/kiln run --kernel guests/demo/demo.elf --cpus "${KILN_DEMO_CPUS:-2}" --memory 128 "$@")
if [ -e /dev/kvm ]; then
	exec "${cmd[@]}"
fi
# No /dev/kvm on this host: run kiln inside the KVM lab (a QEMU VM with nested SVM, docs/kvmlab.md).
bash scripts/deps.sh --lab
exec bash tests/kvmlab/run.sh -- "${cmd[@]}" --console stdio
