#!/usr/bin/env bash
# Integration test of `kiln serve` with a fake VMM (no /dev/kvm): 20 VMs, reaping, restart policy, manager restart and re-adoption, stop, delete.
# usage: tests/manager/run.sh [--kvm] [KILN_BINARY]   (default build/kiln; needs curl, jq, python3)
#   --kvm  real `kiln run` children booting the test guests (tests/guests/build): needs /dev/kvm
#          (run it through tests/kvmlab/run.sh) and a kiln with `run --config-file`; skips
#          without them unless KILN_REQUIRE_KVM=1. Last line "manager-kvm: N passed, M failed".
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODE=fake
[ "${1:-}" = --kvm ] && { MODE=kvm; shift; }
KILN=${1:-$ROOT/build/kiln}
FAKE=$ROOT/tests/manager/fake-vmm.sh
for tool in curl jq python3; do
	command -v $tool >/dev/null || { echo "manager: needs $tool (scripts/deps.sh --test)"; exit 1; }
done
T=$(mktemp -d "${TMPDIR:-/tmp}/kiln-mgr.XXXXXX")
STATE=$T/state SOCK=$T/api.sock
# Every process the test starts (manager, VMMs, their children) inherits this marker: cleanup kills by it.
export KILN_MGR_TEST=$T
passed=0 failed=0 MPID=

ok()   { echo "PASS $1"; passed=$((passed + 1)); }
bad()  { echo "FAIL $1${2:+ ($2)}"; failed=$((failed + 1)); }
# check NAME 'CONDITION': CONDITION is evaluated (single-quote it).
check() { WHY=; if eval "$2"; then ok "$1"; else bad "$1" "${WHY:-}"; fi; }

cleanup() {
	local d p
	# Only processes carrying this run's marker (never a recycled pid of someone else's), not us.
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ "$p" = $$ ] && continue
		tr '\0' '\n' 2>/dev/null <"$d/environ" | grep -qx "KILN_MGR_TEST=$T" && kill -9 "$p" 2>/dev/null
	done
	[ -n "${DECOY:-}" ] && kill -9 "$DECOY" 2>/dev/null
	if [ "$failed" -gt 0 ]; then
		echo "--- manager log (last 40 lines)"
		tail -n 40 "$T/manager.log"
	fi
	rm -rf "$T"
}
trap cleanup EXIT

# api METHOD PATH [BODY]: sets CODE and BODY.
api() {
	local args=(-s -m 30 -o "$T/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$1")
	[ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	CODE=$(curl "${args[@]}" "http://kiln$2")
	BODY=$(cat "$T/body" 2>/dev/null)
}
# vmf ID FILTER: a jq filter over GET /vms/ID.
vmf() { api GET "/vms/$1"; jq -r "$2" <<<"$BODY"; }
# until_true SECONDS 'CONDITION': poll CONDITION every 0.1 s.
until_true() {
	local end=$(( $(date +%s%N) + $1 * 1000000000 ))
	until eval "$2"; do
		[ "$(date +%s%N)" -gt "$end" ] && return 1
		sleep 0.1
	done
}
is() { [ "$(vmf "$1" "$2")" = "$3" ] || { WHY="$1: $2 = $(vmf "$1" "$2"), want $3"; return 1; }; }
alive() { local s; read -r s 2>/dev/null <"/proc/$1/stat" && s=${s##*) } && [ "${s%% *}" != Z ]; }
gone() { ! alive "$1"; }
# Zombies among the manager's children (state Z, ppid = manager).
zombies() {
	local n=0 f line rest
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null <"$f" || continue
		rest=${line##*) }
		set -- $rest
		[ "$2" = "$MPID" ] && [ "$1" = Z ] && n=$((n + 1))
	done
	echo $n
}
no_zombies() { [ "$(zombies)" = 0 ] || { WHY="$(zombies) zombie children"; return 1; }; }

config() { printf '{"boot-source":{"kernel_image_path":"/nonexistent","boot_args":"%s"},"machine-config":{"vcpu_count":1,"mem_size_mib":128}}' "$1"; }
create() { api POST /vms "{\"id\":\"$1\",\"restart\":\"$2\",\"config\":$(config "$3")}"; }

start_manager() {
	if [ "$MODE" = kvm ]; then
		"$KILN" serve --state-dir "$STATE" --api-sock "$SOCK" --restart-backoff-ms 200 \
			--restart-max 2 --stop-grace-ms 20000 >>"$T/manager.log" 2>&1 &
	else
		# shellcheck disable=SC2086  # MGR_EXTRA: more serve options, word-split
		"$KILN" serve --state-dir "$STATE" --api-sock "$SOCK" --vmm "$FAKE" --restart-backoff-ms 100 \
			--restart-max 3 --stop-grace-ms 500 ${MGR_EXTRA:-} >>"$T/manager.log" 2>&1 &
	fi
	MPID=$!
	until_true 10 'api GET / && [ "$CODE" = 200 ]'
}

[ "$MODE" = kvm ] && . "$ROOT/tests/manager/kvm.sh"   # runs the --kvm cases and exits

# --- command line
"$KILN" serve --help >"$T/out" 2>&1
rc=$?
check "help" '[ $rc = 0 ] && grep -q -- "--vmm PATH" "$T/out"'
"$KILN" serve --state-dir "$STATE" >"$T/out" 2>&1
rc=$?
check "missing --api-sock -> exit 2" '[ $rc = 2 ]'

# --- 20 VMs
check "manager starts" 'start_manager'
check "GET /" '[ "$CODE" = 200 ] && [ "$(jq -r .service <<<"$BODY")" = kiln-serve ]'
timeout 10 "$KILN" serve --state-dir "$STATE" --api-sock "$T/other.sock" --vmm "$FAKE" >"$T/out" 2>&1
rc=$?
check "a second manager on the same state dir: refused" '[ $rc = 1 ] && grep -q "another kiln serve" "$T/out"'
timeout 10 "$KILN" serve --state-dir "$T/other" --api-sock "$SOCK" --vmm "$FAKE" >"$T/out" 2>&1
rc=$?
check "a second manager on a live socket: refused" '[ $rc = 1 ] && grep -q "a server is listening" "$T/out"'
declare -A POLICY ARGS PID
for i in $(seq -w 1 20); do POLICY[vm$i]=never; ARGS[vm$i]=""; done
for i in 11 12 13 14 17 18; do POLICY[vm$i]=on-failure; done
for i in 15 16; do POLICY[vm$i]=always; done
ARGS[vm17]="fake.exit=0 fake.run_ms=200"
ARGS[vm18]="fake.exit=3 fake.run_ms=100"
ARGS[vm19]="fake.exit=7 fake.run_ms=100"
ARGS[vm20]="fake.ignore_term=1"
created=0
for i in $(seq -w 1 20); do
	create vm$i "${POLICY[vm$i]}" "${ARGS[vm$i]}"
	[ "$CODE" = 201 ] && [[ $BODY == *'"state":"running"'* ]] && created=$((created + 1))
done
check "create 20 VMs (201, running)" '[ "$created" = 20 ]'
api GET /vms
check "GET /vms lists 20, sorted" \
	'[ "$(jq -r "[.vms[].id] | join(\",\")" <<<"$BODY")" = "$(seq -f "vm%02g" 1 20 | paste -sd,)" ]'
check "each VM has its own api socket" '[ "$(jq -r "[.vms[].api_sock] | unique | length" <<<"$BODY")" = 20 ]'
while read -r v p; do PID[$v]=$p; done < <(jq -r '.vms[] | "\(.id) \(.pid)"' <<<"$BODY")
check "console.log is the VMM's stdout" 'grep -q "fake-vmm: pid ${PID[vm01]}" "$STATE/vms/vm01/console.log"'
check "kiln.log is its stderr" 'grep -q "fake-vmm: started" "$STATE/vms/vm01/kiln.log"'
check "each VM in its own process group" '[ "$(awk "{print \$5}" /proc/${PID[vm01]}/stat)" = "${PID[vm01]}" ]'
check "state.json records pid and start time" \
	'[ "$(jq -r "\"\(.pid) \(.pid_start_ticks > 0)\"" "$STATE/vms/vm01/state.json")" = "${PID[vm01]} true" ]'

# --- bad requests: 4xx with a fault message, manager unharmed
fault() { # NAME WANT_CODE METHOD PATH [BODY]
	local name=$1 want=$2; shift 2
	api "$@"
	if [ "$CODE" = "$want" ] && jq -e '.fault_message | type == "string" and length > 0' <<<"$BODY" >/dev/null; then
		ok "$name -> $want"
	else
		bad "$name -> $want" "got $CODE: $BODY"
	fi
}
fault "duplicate id" 409 POST /vms '{"id":"vm01","config":{}}'
fault "bad id characters" 400 POST /vms '{"id":"a/b","config":{}}'
fault "id too long" 400 POST /vms "{\"id\":\"$(printf 'x%.0s' $(seq 65))\",\"config\":{}}"
fault "malformed JSON" 400 POST /vms '{"id":"x","config":'
fault "unknown field" 400 POST /vms '{"id":"x","config":{},"cpus":4}'
fault "config not an object" 400 POST /vms '{"id":"x","config":[]}'
fault "missing config" 400 POST /vms '{"id":"x"}'
fault "bad restart policy" 400 POST /vms '{"id":"x","config":{},"restart":"sometimes"}'
fault "body over 64 KiB" 413 POST /vms "{\"id\":\"x\",\"config\":{\"pad\":\"$(head -c 70000 /dev/zero | tr '\0' a)\"}}"
fault "unknown id" 404 GET /vms/nope
fault "unknown id stop" 404 POST /vms/nope/stop
fault "unknown id delete" 404 DELETE /vms/nope
fault "bad id in path" 400 GET /vms/a.b
fault "escaped NUL in path" 400 GET /vms/vm01%00x
fault "unknown path" 404 GET /nope
fault "wrong method" 405 PUT /vms
fault "body on GET" 400 GET /vms '{}'
fault "start a running VM" 409 POST /vms/vm02/start
RAW="python3 $ROOT/tests/manager/raw_http.py $SOCK"
check "pipelined requests: answered in order on one connection" '$RAW pipeline'
check "not HTTP: 400 with a fault message, connection closed" '$RAW garbage'
check "64 connections served, the 65th closed" '$RAW flood'
api GET /vms
check "still 20 VMs after bad requests" '[ "$(jq ".vms | length" <<<"$BODY")" = 20 ]'

# --- VMs that exit by themselves: status recorded, policy applied
check "vm17 (on-failure, exit 0): exited, no restart" \
	'until_true 10 "is vm17 .state exited && is vm17 .exit_code 0 && is vm17 .restarts 0"'
check "vm19 (never, exit 7): exit code 7" 'until_true 10 "is vm19 .state exited && is vm19 .exit_code 7"'
check "vm18 (on-failure, exit 3): restarted 3 times with backoff, then gave up" \
	'until_true 15 "is vm18 .restart_gave_up true && is vm18 .state exited && is vm18 .restarts 3 && is vm18 .exit_code 3"'
check "vm18 ran 4 times" '[ "$(wc -l <"$STATE/vms/vm18/starts")" = 4 ]'

# --- SIGKILL / SIGTERM from outside
kill -9 "${PID[vm01]}" "${PID[vm02]}" "${PID[vm11]}" "${PID[vm15]}"
kill -TERM "${PID[vm12]}"
check "vm01 (never) SIGKILLed: exited, signal 9, no restart" \
	'until_true 10 "is vm01 .state exited && is vm01 .exit_signal 9 && is vm01 .restarts 0"'
check "vm01 exit reason" 'is vm01 .exit_reason "killed by signal 9 (SIGKILL)"'
check "vm02 (never) SIGKILLed: exited" 'until_true 10 "is vm02 .exit_signal 9"'
for v in vm11 vm15; do
	check "$v (${POLICY[$v]}) SIGKILLed: restarted with a new pid" \
		"until_true 10 'is $v .state running && is $v .restarts 1 && [ \"\$(vmf $v .pid)\" != ${PID[$v]} ]'"
done
check "vm12 (on-failure) SIGTERMed from outside: restarted" \
	'until_true 10 "is vm12 .state running && is vm12 .restarts 1"'
check "no zombie children" 'until_true 5 no_zombies'
check "the killed VMM is gone" 'gone "${PID[vm01]}"'

# --- stop
t0=$(date +%s%N)
api POST /vms/vm20/stop
t1=$(date +%s%N)
check "stop vm20 (ignores SIGTERM): SIGKILL after the grace period" \
	'[ "$CODE" = 200 ] && [ "$(jq -r "\"\(.state) \(.exit_signal) \(.stop_requested)\"" <<<"$BODY")" = "exited 9 true" ]'
check "stop answered after the 500 ms grace, not before" '[ $(( (t1 - t0) / 1000000 )) -ge 450 ]'
api POST /vms/vm14/stop
check "stop vm14 (on-failure): SIGTERM, not restarted" \
	'[ "$CODE" = 200 ] && [ "$(jq -r "\"\(.state) \(.exit_signal) \(.restarts)\"" <<<"$BODY")" = "exited 15 0" ]'
check "stop again: 200" 'api POST /vms/vm14/stop && [ "$CODE" = 200 ]'
api POST /vms/vm14/start
check "start vm14 again" '[ "$CODE" = 200 ] && [ "$(jq -r .state <<<"$BODY")" = running ]'
for v in vm11 vm12 vm14 vm15; do PID[$v]=$(vmf $v .pid); done
create h1 never ""
create h2 never ""
check "stop from a half-closed client: answered all the same" '$RAW halfclose h1'
$RAW vanish h2
check "stop from a client that hung up: done all the same, manager fine" \
	'until_true 10 "is h2 .state exited" && api GET / && [ "$CODE" = 200 ]'
check "delete h1, h2" 'api DELETE /vms/h1 && [ "$CODE" = 204 ] && api DELETE /vms/h2 && [ "$CODE" = 204 ]'

# --- the manager dies (kill -9); VMs die and live meanwhile; a new manager re-adopts them
{ kill -9 "$MPID"; wait "$MPID"; } 2>/dev/null   # no "Killed" line from bash
OLD_MPID=$MPID
kill -9 "${PID[vm03]}" "${PID[vm13]}" "${PID[vm16]}"
# A VM whose recorded pid now belongs to another process (pid reuse): never adopted, never signalled.
sleep 1000 &
DECOY=$!
disown "$DECOY"
mkdir -p "$STATE/vms/vmfake"
cp "$STATE/vms/vm04/config.json" "$STATE/vms/vmfake/config.json"
jq --argjson pid "$DECOY" '.id = "vmfake" | .pid = $pid | .pid_start_ticks = 1 | .state = "running"' \
	"$STATE/vms/vm04/state.json" >"$STATE/vms/vmfake/state.json"
mkdir -p "$STATE/vms/.new-half" && touch "$STATE/vms/.new-half/config.json"  # a create cut short
mkdir -p "$STATE/vms/broken" && echo '{"version":1,' >"$STATE/vms/broken/state.json"
until_true 5 'gone "${PID[vm16]}"'
# The second manager passes its size limits to the VMs it starts (vm01 below).
MGR_EXTRA="--mmds-size-limit 4096 --http-api-max-payload-size 2048"
check "a new manager starts on the same state dir" 'start_manager && [ "$MPID" != "$OLD_MPID" ]'
api GET /vms
for v in vm04 vm05 vm06 vm07 vm08 vm09 vm10 vm11 vm12 vm14 vm15; do
	check "$v re-adopted (same pid, adopted)" \
		"[ \"\$(jq -r '.vms[] | select(.id == \"$v\") | \"\\(.state) \\(.pid) \\(.adopted)\"' <<<\"\$BODY\")\" = 'running ${PID[$v]} true' ]"
done
check "vm03 (never) died while no manager watched: exited, status unknown" \
	'is vm03 .state exited && is vm03 .exit_reason "exited (status unknown, adopted)" && is vm03 .exit_code null'
check "vm13 (on-failure) died unwatched: not restarted (no evidence of failure)" \
	'is vm13 .state exited && is vm13 .exit_reason "exited (status unknown, adopted)"'
check "vm16 (always) died unwatched: restarted" \
	'until_true 10 "is vm16 .state running && is vm16 .restarts 1 && is vm16 .adopted false"'
check "vm18 still gave up, vm20 still SIGKILLed" 'is vm18 .restart_gave_up true && is vm20 .exit_signal 9'
check "recycled pid not adopted" 'is vmfake .state exited && is vmfake .exit_reason "exited (status unknown, adopted)"'
check "recycled pid's process untouched" 'alive "$DECOY"'
check "half-made VM directory removed" '[ ! -e "$STATE/vms/.new-half" ]'
check "unreadable state.json: listed, with an error" \
	'is broken .state exited && [ "$(vmf broken ".error | test(\"state.json\")")" = true ]'
fault "unreadable state.json: start refused" 409 POST /vms/broken/start

# --- adopted VMs end: seen through their pidfd, policy applied
kill -9 "${PID[vm05]}" "${PID[vm15]}"
check "adopted vm05 (never) SIGKILLed: exited, status unknown" \
	'until_true 10 "is vm05 .state exited && is vm05 .exit_reason \"exited (status unknown, adopted)\""'
check "adopted vm15 (always) SIGKILLed: restarted, now our child" \
	'until_true 10 "is vm15 .state running && is vm15 .restarts 2 && is vm15 .adopted false"'
api POST /vms/vm06/stop
check "stop adopted vm06: exited, process gone" \
	'[ "$CODE" = 200 ] && [ "$(jq -r .state <<<"$BODY")" = exited ] && gone "${PID[vm06]}"'
check "no zombie children after the restart" 'until_true 5 no_zombies'

# --- delete
api DELETE /vms/vm01
check "delete exited vm01: 204, directory gone" '[ "$CODE" = 204 ] && [ ! -e "$STATE/vms/vm01" ]'
fault "deleted vm01 is unknown" 404 GET /vms/vm01
api DELETE /vms/vm07
check "delete running adopted vm07: 204, process and directory gone" \
	'[ "$CODE" = 204 ] && gone "${PID[vm07]}" && [ ! -e "$STATE/vms/vm07" ]'
PID[vm16]=$(vmf vm16 .pid)
api DELETE /vms/vm16
check "delete running child vm16: 204, process gone" '[ "$CODE" = 204 ] && until_true 5 "gone ${PID[vm16]}"'
api DELETE /vms/vmfake
check "delete vmfake: the recycled pid's process still untouched" '[ "$CODE" = 204 ] && alive "$DECOY"'
api DELETE /vms/broken
check "delete the broken VM" '[ "$CODE" = 204 ] && [ ! -e "$STATE/vms/broken" ]'
create vm01 never ""
check "an id is free again after delete" '[ "$CODE" = 201 ]'
check "serve --mmds-size-limit/--http-api-max-payload-size reach the VM's kiln run" \
	'until_true 5 "grep -q -- \"arguments: .*--mmds-size-limit 4096 --http-api-max-payload-size 2048\" \"$STATE/vms/vm01/console.log\""'
api GET /vms
check "GET /vms after the deletes: 22 - 5 + 1" '[ "$(jq ".vms | length" <<<"$BODY")" = 18 ]'
check "no zombie children at the end" 'until_true 5 no_zombies'
check "no leftover temporary files" '[ -z "$(find "$STATE" -name "*.tmp" -o -name ".del-*" -o -name ".new-*")" ]'

# --- SIGTERM: the manager leaves, the VMs stay
kill -TERM "$MPID"
wait "$MPID"
rc=$?
MPID=
check "SIGTERM: manager exits 0" '[ $rc = 0 ]'
check "SIGTERM: socket removed" '[ ! -e "$SOCK" ]'
check "SIGTERM: VMs keep running" 'alive "${PID[vm08]}"'

echo "manager: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
