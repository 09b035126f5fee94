#!/usr/bin/env bash
# kiln's REST API end to end (tests/api/api_test.py does the work).
#
# usage: tests/api/run.sh KILN_BINARY [all|nokvm|kvm]
#   nokvm  no /dev/kvm needed: GET /, pre-boot PUTs, fault bodies, the
#          robustness list (malformed JSON, wrong types, unknown and missing
#          fields, bad ids, path id != body id, > 64 KiB bodies, slow,
#          half-closed and garbage clients, 200 concurrent connections), the
#          socket rules (0600, in use, stale, not a socket, removed at exit),
#          --config-file and --no-api errors, kiln ctl
#   kvm    /dev/kvm (run it through tests/kvmlab/run.sh): boot the test kernel
#          through the API to "Run /init", pause/resume a guest counter, metrics,
#          ctl verbs, post-boot refusals, SendCtrlAltDel -> exit 4, a
#          --config-file boot
#   all    both (the default); the kvm part skips without /dev/kvm unless
#          KILN_REQUIRE_KVM=1
# Environment: KILN_CACHE (test kernel + initramfs, default ~/.cache/kiln),
#   KILN_API_BOOT_TIMEOUT (seconds to "Run /init", default 240).
# Last line: "api: N passed, M failed". Exit 1 if anything failed.
set -u
KILN=${1:-}
if [ -z "$KILN" ] || [ ! -x "$KILN" ]; then
	echo "usage: tests/api/run.sh KILN_BINARY [all|nokvm|kvm] (got: '${KILN}')" >&2
	exit 2
fi
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" "$(dirname "${BASH_SOURCE[0]}")/api_test.py" "$KILN" "${2:-all}"
