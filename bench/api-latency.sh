#!/usr/bin/env bash
# Bench (e): the REST API. Request latency p50/p99 (GET / and PUT
# /machine-config before boot, keep-alive and a fresh connection per request,
# as the client sees it and as kiln counts it), and VMM start to API socket
# ready: wall time and CPU time (getrusage of the child, via wait4) against
# Firecracker's promise of <= 8 CPU ms. Prints figures, no verdict.
#
# usage: bench/api-latency.sh KILN_BINARY
#   BENCH_API_REQUESTS=2000   requests per latency figure
#   BENCH_RUNS=20             start-to-socket runs
# Needs no /dev/kvm (nothing boots).
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_kiln api-latency.sh "${1:-}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" "$BENCH_DIR/api_latency.py" "$KILN" "${BENCH_API_REQUESTS:-2000}" "${BENCH_RUNS:-20}"
