#!/usr/bin/env bash
# Run every unit test binary; print one summary line in the form CI reads.
set -u
build=$1; shift
pass=0; fail=0; failed=()
for t in "$@"; do
	if "$build/tests/unit/$t"; then pass=$((pass+1)); else fail=$((fail+1)); failed+=("$t"); fi
done
echo "unit: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || { echo "failed unit tests: ${failed[*]}"; exit 1; }
