# tests/manager/run.sh --kvm: kiln serve with real `kiln run` children booting the test guests (sourced by run.sh).
G=$ROOT/tests/guests/build
skip() {
	if [ "${KILN_REQUIRE_KVM:-0}" = 1 ]; then
		echo "FAIL $1"; echo "manager-kvm: 0 passed, 1 failed"; exit 1
	fi
	echo "manager-kvm: skipped: $1"; echo "manager-kvm: 0 passed, 0 failed"; exit 0
}
[ -e /dev/kvm ] || skip "no /dev/kvm (run it through tests/kvmlab/run.sh)"
if ! "$KILN" run --help 2>&1 | grep -q -- "--config-file"; then
	# Not a KVM question: this kiln predates `run --config-file` (docs/api.md). Said, not failed.
	echo "manager-kvm: skipped: $KILN has no run --config-file"
	echo "manager-kvm: 0 passed, 0 failed"
	exit 0
fi
for g in spin panic poweroff; do
	[ -f "$G/$g.elf" ] || skip "$G/$g.elf missing (make guests)"
done
# The lab emulates everything: be patient there.
W=60
[ "${KVMLAB:-0}" = 1 ] && W=180

gcfg() { printf '{"boot-source":{"kernel_image_path":"%s"},"machine-config":{"vcpu_count":1,"mem_size_mib":32}}' "$G/$1.elf"; }
kcreate() { api POST /vms "{\"id\":\"$1\",\"restart\":\"$2\",\"config\":$(gcfg "$3")}"; }
# The VM's own Firecracker API answers GET / with the instance running.
vm_api_running() {
	local sock
	sock=$(vmf "$1" .api_sock)
	[ -S "$sock" ] && curl -s -m 10 --unix-socket "$sock" http://kiln/ | grep -q '"state": *"Running"'
}

check "manager starts (real kiln children)" 'start_manager'
ncreated=0
for v in k1 k2; do kcreate $v on-failure spin; [ "$CODE" = 201 ] && ncreated=$((ncreated + 1)); done
kcreate kpanic on-failure panic; [ "$CODE" = 201 ] && ncreated=$((ncreated + 1))
kcreate koff on-failure poweroff; [ "$CODE" = 201 ] && ncreated=$((ncreated + 1))
check "create 4 VMs (spin x2, panic, poweroff)" '[ $ncreated = 4 ]'
check "k1 boots; its own API socket says Running" 'until_true $W "vm_api_running k1"'
check "k2 too" 'until_true $W "vm_api_running k2"'
check "poweroff guest: exit code 0, no restart (on-failure)" \
	'until_true $W "is koff .state exited && is koff .exit_code 0 && is koff .restarts 0"'
check "panic guest: exit code 6, restarted twice, gave up" \
	'until_true $W "is kpanic .restart_gave_up true && is kpanic .exit_code 6 && is kpanic .restarts 2"'
P1=$(vmf k1 .pid) P2=$(vmf k2 .pid)
kill -9 "$P2"
check "k2 SIGKILLed: reaped, restarted, boots again" \
	'until_true $W "is k2 .restarts 1 && is k2 .state running && vm_api_running k2"'
P2=$(vmf k2 .pid)
check "no zombie children" 'until_true 10 no_zombies'

{ kill -9 "$MPID"; wait "$MPID"; } 2>/dev/null   # no "Killed" line from bash
check "manager SIGKILLed and restarted" 'start_manager'
check "k1, k2 re-adopted with their pids, still answering" \
	'is k1 .pid $P1 && is k1 .adopted true && is k2 .pid $P2 && vm_api_running k1'
kcreate k3 never spin
check "k3 created by the new manager boots" '[ "$CODE" = 201 ] && until_true $W "vm_api_running k3"'
api POST /vms/k3/stop
check "stop k3 (our child): kiln exits 143 on SIGTERM, socket removed" \
	'[ "$CODE" = 200 ] && [ "$(jq -r "\"\(.state) \(.exit_code)\"" <<<"$BODY")" = "exited 143" ] && [ ! -e "$(vmf k3 .api_sock)" ]'
api POST /vms/k1/stop
check "stop adopted k1: exited (status unknown), process gone" \
	'[ "$CODE" = 200 ] && [ "$(jq -r .state <<<"$BODY")" = exited ] && gone $P1'
kill -9 "$P2"
check "adopted k2 SIGKILLed: seen through its pidfd, exited (on-failure: unknown is no failure)" \
	'until_true 30 "is k2 .state exited && is k2 .exit_reason \"exited (status unknown, adopted)\""'
nd=0
for v in k1 k2 k3 kpanic koff; do api DELETE /vms/$v; [ "$CODE" = 204 ] && nd=$((nd + 1)); done
check "delete all" '[ $nd = 5 ] && [ -z "$(ls "$STATE/vms")" ]'
check "no zombie children at the end" 'until_true 10 no_zombies'
kill -TERM "$MPID"
wait "$MPID"
rc=$?
MPID=
check "manager exits 0 on SIGTERM" '[ $rc = 0 ]'
echo "manager-kvm: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
exit
