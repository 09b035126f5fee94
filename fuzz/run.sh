#!/usr/bin/env bash
# Run every built fuzz target for SECONDS each; one summary line per target; non-zero exit on a crash.
# Usage: fuzz/run.sh [SECONDS]   (default 60; build first with fuzz/build.sh)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

secs=${1:-60}
case $secs in ''|*[!0-9]*) echo "usage: fuzz/run.sh [SECONDS]" >&2; exit 2 ;; esac
shopt -s nullglob
targets=(build/fuzz/fuzz_*)
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in build/fuzz (run fuzz/build.sh)" >&2; exit 2; }

failed=0
for bin in "${targets[@]}"; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	corpus=build/fuzz/corpus/$name
	artifacts=build/fuzz/artifacts/$name/
	log=build/fuzz/$name.log
	mkdir -p "$corpus" "$artifacts"
	# Seeds checked into fuzz/seeds/NAME (if any) start the corpus; new finds stay in build/.
	seeds=()
	[ -d "fuzz/seeds/$name" ] && seeds=("fuzz/seeds/$name")
	"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
		-print_final_stats=1 -artifact_prefix="$artifacts" \
		"$corpus" "${seeds[@]}" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1)
	ncorp=$(find "$corpus" -type f | wc -l)
	if [ $rc -eq 0 ]; then
		echo "fuzz: $name ${runs:-?} runs, 0 crashes (${cov:-cov: ?}, corpus $ncorp)"
	else
		failed=1
		crash=$(find "$artifacts" -type f -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
		echo "fuzz: $name ${runs:-?} runs, 1 crash (exit $rc): ${crash:-$artifacts}; log $log"
	fi
done
exit $failed
