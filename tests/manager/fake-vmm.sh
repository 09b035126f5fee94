#!/bin/sh
# A stand-in for `kiln run` in the manager's test (kiln serve --vmm): no /dev/kvm; it does what its config's boot_args say.
#   fake.exit=N        exit with code N after fake.run_ms (default: run until killed)
#   fake.run_ms=MS     how long before fake.exit (default 0)
#   fake.ignore_term=1 ignore SIGTERM, so only the manager's SIGKILL ends it
# Every start appends its pid to DIR/starts (DIR: the config's directory).
sock= cfg=
all_args="$*"
while [ $# -gt 0 ]; do
	case $1 in
	--api-sock) sock=$2; shift ;;
	--config-file) cfg=$2; shift ;;
	esac
	shift
done
[ -r "$cfg" ] || { echo "fake-vmm: no --config-file" >&2; exit 2; }
dir=$(dirname "$cfg")
echo $$ >>"$dir/starts"
args=$(sed -n 's/.*"boot_args": *"\([^"]*\)".*/\1/p' "$cfg")
echo "fake-vmm: pid $$, api socket $sock, boot_args '$args'"
echo "fake-vmm: arguments: $all_args"
echo "fake-vmm: started" >&2
code= ms=0
for w in $args; do
	case $w in
	fake.exit=*) code=${w#fake.exit=} ;;
	fake.run_ms=*) ms=${w#fake.run_ms=} ;;
	fake.ignore_term=1) trap '' TERM ;;
	esac
done
if [ -n "$code" ]; then
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	exit "$code"
fi
exec sleep 100000   # one process: a signal to the pid is a signal to the "VMM"
