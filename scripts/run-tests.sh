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

# shellcheck source=test/tally.sh
. test/tally.sh
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

for t in "$@"; do
	echo "== unit: $(basename "$t")"
	tally_run "$(basename "$t")" 120 10 "${wrap[@]}" "$t"
done

echo "== end-to-end${E2E_ONLY:+ (${E2E_ONLY})}"
# shellcheck disable=SC2086 # E2E_ONLY is a list of patterns
tally_run e2e 780 10 "${wrap[@]}" env RELAY="$build/relay" BUILD="$build" test/e2e/run.sh ${E2E_ONLY:-}

if [ -d "$san_dir" ] && [ -n "$(ls -A "$san_dir")" ]; then
	for r in "$san_dir"/*; do
		echo "** sanitizer report $r:"
		head -60 "$r"
	done
	echo "** $(ls "$san_dir" | wc -l) sanitizer report(s) in $san_dir"
	tally_failed+=(sanitizer)
fi

echo
if [ ${#tally_failed[@]} -gt 0 ]; then
	echo "failed: ${tally_failed[*]}"
fi
echo "checks: $tally_checks run, $tally_checks_failed failed (unit checks and e2e assertions)"
echo "$tally_pass passed, $tally_fail failed"
[ "$tally_fail" -eq 0 ] && [ ${#tally_failed[@]} -eq 0 ]
