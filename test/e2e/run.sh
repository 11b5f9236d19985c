#!/usr/bin/env bash
# Runs every end-to-end test (test/e2e/t*.sh and t*.js), each bounded in time, and prints the
# summed closing line "N passed, N failed". Needs RELAY (the binary under test).
# usage: RELAY=build/release/relay test/e2e/run.sh [PATTERN...] (files matching any PATTERN)
set -u
: "${RELAY:?set RELAY to the relay binary}"
RELAY=$(cd "$(dirname "$RELAY")" && pwd)/$(basename "$RELAY")
export RELAY
cd "$(dirname "$0")"
export NODE_PATH="$PWD/../node_modules"

patterns=("$@")
pass=0
fail=0
checks=0
checks_failed=0
broken=()

# Add a file's "assertions: N run, M failed" (lib.js) or "checks: ..." line to the totals.
count_checks() {
	local l n m
	l=$(grep -E '^(assertions|checks): [0-9]+ run, [0-9]+ failed' "$1" | tail -n 1)
	[ -z "$l" ] && return
	n=${l#*: }
	n=${n%% run*}
	m=${l#*run, }
	m=${m%% failed*}
	checks=$((checks + n))
	checks_failed=$((checks_failed + m))
}

for t in t[0-9]*; do
	case "$t" in *.sh | *.js) ;; *) continue ;; esac
	if [ ${#patterns[@]} -gt 0 ]; then
		match=
		for p in "${patterns[@]}"; do
			[[ "$t" == *"$p"* ]] && match=1
		done
		[ -z "$match" ] && continue
	fi
	echo "-- $t"
	out=$(mktemp)
	if [[ "$t" == *.js ]]; then
		timeout --kill-after=5 "${TEST_TIMEOUT:-120}" node "$t" 2>&1 | tee "$out"
	else
		timeout --kill-after=5 "${TEST_TIMEOUT:-120}" bash "$t" 2>&1 | tee "$out"
	fi
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	count_checks "$out"
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "** $t: ended without its closing line (exit $rc)"
		fail=$((fail + 1))
		broken+=("$t")
		continue
	fi
	p=${line%% passed*}
	f=${line#*passed, }
	f=${f%% failed*}
	pass=$((pass + p))
	fail=$((fail + f))
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
		broken+=("$t")
	fi
done

[ ${#broken[@]} -gt 0 ] && echo "e2e failures in: ${broken[*]}"
echo "assertions: $checks run, $checks_failed failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ ${#broken[@]} -eq 0 ]
