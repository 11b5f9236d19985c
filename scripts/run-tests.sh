#!/usr/bin/env bash
# Runs the unit test binaries given as arguments, then the end-to-end suite (test/e2e/run.sh),
# and prints the summed closing line "N passed, N failed". Exits non-zero if anything failed.
# usage: scripts/run-tests.sh BUILD_DIR UNIT_BINARY...
set -u
cd "$(dirname "$0")/.."
build=$1
shift

total_pass=0
total_fail=0
failed_suites=()

# Run one suite with a time bound; add its "N passed, N failed" line to the totals.
run_suite() {
	local name=$1 limit=$2
	shift 2
	local out rc line p f
	out=$(mktemp)
	timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "** $name: no closing 'N passed, N failed' line (exit $rc)"
		total_fail=$((total_fail + 1))
		failed_suites+=("$name")
		return
	fi
	p=${line%% passed*}
	f=${line#*passed, }
	f=${f%% failed*}
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
		failed_suites+=("$name")
	fi
}

for t in "$@"; do
	echo "== unit: $(basename "$t")"
	run_suite "$(basename "$t")" 120 "$t"
done

echo "== end-to-end"
run_suite e2e 780 env RELAY="$build/relay" BUILD="$build" test/e2e/run.sh

echo
if [ ${#failed_suites[@]} -gt 0 ]; then
	echo "failed: ${failed_suites[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ ${#failed_suites[@]} -eq 0 ]
