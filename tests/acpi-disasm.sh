#!/usr/bin/env bash
# Check kiln's ACPI tables with ACPICA's iasl: each disassembles with no warning, and the DSDT recompiles to the same AML.
#   usage: tests/acpi-disasm.sh [BUILD_DIR]   (needs BUILD_DIR/tests/unit/test_acpi; iasl from acpica-tools)
set -euo pipefail
build=${1:-build}
bin=$(realpath -m "$build/tests/unit/test_acpi")

if ! command -v iasl >/dev/null; then
	echo "acpi-disasm: SKIP (no iasl; apt-get install acpica-tools)"
	exit 0
fi
[ -x "$bin" ] || { echo "acpi-disasm: $bin not built (make $build/tests/unit/test_acpi)"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" --dump "$tmp" || { echo "acpi-disasm: FAIL the table dumper (test_acpi --dump)"; exit 1; }
cd "$tmp"

fail=0
n=0
for f in *.dat; do
	n=$((n + 1))
	dsl=${f%.dat}.dsl
	# iasl exits 0 even for a bad checksum or a mangled name: read what it says.
	if ! iasl -d "$f" >"$f.log" 2>&1 || [ ! -s "$dsl" ] ||
	   grep -Eiq 'warning|error|incorrect|invalid' "$f.log" || grep -q 'Incorrect' "$dsl"; then
		echo "acpi-disasm: FAIL $f"; cat "$f.log"; fail=1
	fi
done
[ "$n" -gt 0 ] || { echo "acpi-disasm: FAIL no tables dumped"; exit 1; }

# The disassembled DSDT, recompiled without iasl's optimizations (-oa), must give back
# kiln's AML byte for byte (the 36-byte header differs: compiler id and checksum).
for d in *-dsdt.dsl; do
	base=${d%.dsl}
	if ! iasl -oa -p "$base-re" "$d" >"$base-re.log" 2>&1 ||
	   ! grep -q 'Compilation successful. 0 Errors, 0 Warnings' "$base-re.log"; then
		echo "acpi-disasm: FAIL $d does not recompile cleanly"; cat "$base-re.log"; fail=1
		continue
	fi
	if ! cmp -s <(tail -c +37 "$base.dat") <(tail -c +37 "$base-re.aml"); then
		echo "acpi-disasm: FAIL $base: recompiled AML differs from kiln's"; fail=1
	fi
done

[ "$fail" -eq 0 ] && echo "acpi-disasm: $n tables OK"
exit "$fail"
