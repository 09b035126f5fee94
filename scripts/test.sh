#!/usr/bin/env bash
# README command 2 (and CI): install what is needed, build, and run every test level.
#   unit tests (release and ASan+UBSan builds), test guests under kiln, Linux boots.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --test || exit 1
jobs=$(nproc)
fail=0
step() { echo; echo "=== $*"; }

step "build (release, -Werror)"
make -s -j"$jobs" all guests demo || exit 1
step "build (ASan+UBSan)"
make -s -j"$jobs" SAN=1 all || exit 1

step "unit tests (release)"
make -s -j"$jobs" unit || fail=1
step "unit tests (ASan+UBSan)"
make -s -j"$jobs" SAN=1 unit || fail=1

step "command line (bad input -> exit 2)"
bash tests/run-cli.sh build/kiln || fail=1

# Guest-level tests need /dev/kvm; without one they run in the KVM lab (docs/kvmlab.md).
# Either way KVM is there, so a test that cannot reach it fails instead of skipping.
export KILN_REQUIRE_KVM=1
lab=()
[ -e /dev/kvm ] || lab=(bash tests/kvmlab/run.sh --)
step "test guests under kiln (release)"
"${lab[@]}" bash tests/run-guests.sh build/kiln || fail=1
step "test guests under kiln (ASan+UBSan)"
"${lab[@]}" bash tests/run-guests.sh build-san/kiln || fail=1

if [ "${KILN_SKIP_LINUX:-0}" != 1 ]; then
	step "Linux guests"
	bash scripts/build-test-kernel.sh >/dev/null || fail=1
	bash scripts/mk-debian-guest.sh >/dev/null || fail=1
	"${lab[@]}" bash tests/linux/run.sh build/kiln || fail=1
fi

echo
if [ "$fail" -eq 0 ]; then echo "test.sh: all test levels passed"; else echo "test.sh: FAILED"; fi
exit "$fail"
