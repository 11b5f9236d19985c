#!/usr/bin/env bash
# Runs the unit test binaries given as arguments, then the end-to-end suite (test/e2e/run.sh),
# and prints the summed closing line "N passed, N failed". Exits non-zero if anything failed.
# E2E_ONLY='t4 t5' limits the end-to-end suite to files matching one of the patterns.
# In a sanitizer build (BUILD_DIR/san/ is where test/sanitizer.c sends reports) any report
# fails the run. A TSan binary that cannot map its shadow memory on this kernel (high
# vm.mmap_rnd_bits) runs everything again under `setarch -R` (no address randomisation).
# usage: scripts/run-tests.sh BUILD_DIR UNIT_BINARY...
set -u
cd "$(dirname "$0")/.."
build=$1
shift

total_pass=0
total_fail=0
total_checks=0
total_checks_failed=0
failed_suites=()
wrap=()

# TSan's shadow memory needs a fixed layout; some kernels randomise mmap too much for gcc 12's.
# (log_path=stderr: the build's default options would send the message to a report file)
if [[ "$build" == *tsan* ]] &&
	TSAN_OPTIONS=log_path=stderr "$build/relay" help 2>&1 | grep -q 'unexpected memory mapping'; then
	wrap=(setarch "$(uname -m)" -R)
	echo "tsan: running under setarch -R (ASLR off) for this kernel's mmap randomisation"
fi

san_dir="$build/san"
rm -rf "$san_dir"
mkdir -p "$san_dir"

# Add a suite's last "checks: N run, M failed" (harness.h) or "assertions: ..." (run.sh's sum)
# line to the totals: the closing lines count test cases, these count the checks inside them.
count_checks() {
	local l n m
	l=$(grep -E '^(assertions|checks): [0-9]+ run, [0-9]+ failed' "$1" | tail -n 1)
	[ -z "$l" ] && return
	n=${l#*: }
	n=${n%% run*}
	m=${l#*run, }
	m=${m%% failed*}
	total_checks=$((total_checks + n))
	total_checks_failed=$((total_checks_failed + m))
}

# Run one suite with a time bound; add its "N passed, N failed" line to the totals.
run_suite() {
	local name=$1 limit=$2
	shift 2
	local out rc line p f
	out=$(mktemp)
	timeout --kill-after=10 "$limit" "${wrap[@]}" "$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	count_checks "$out"
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

echo "== end-to-end${E2E_ONLY:+ (${E2E_ONLY})}"
# shellcheck disable=SC2086 # E2E_ONLY is a list of patterns
run_suite e2e 780 env RELAY="$build/relay" BUILD="$build" test/e2e/run.sh ${E2E_ONLY:-}

if [ -d "$san_dir" ] && [ -n "$(ls -A "$san_dir")" ]; then
	for r in "$san_dir"/*; do
		echo "** sanitizer report $r:"
		head -60 "$r"
	done
	echo "** $(ls "$san_dir" | wc -l) sanitizer report(s) in $san_dir"
	failed_suites+=(sanitizer)
fi

echo
if [ ${#failed_suites[@]} -gt 0 ]; then
	echo "failed: ${failed_suites[*]}"
fi
echo "checks: $total_checks run, $total_checks_failed failed (unit checks and e2e assertions)"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ ${#failed_suites[@]} -eq 0 ]
