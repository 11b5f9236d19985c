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

# shellcheck source=test/tally.sh
. ../tally.sh

patterns=("$@")

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
	if [[ "$t" == *.js ]]; then
		tally_run "$t" "${TEST_TIMEOUT:-120}" 5 node "$t"
	else
		tally_run "$t" "${TEST_TIMEOUT:-120}" 5 bash "$t"
	fi
done

[ ${#tally_failed[@]} -gt 0 ] && echo "e2e failures in: ${tally_failed[*]}"
echo "assertions: $tally_checks run, $tally_checks_failed failed"
echo "$tally_pass passed, $tally_fail failed"
[ "$tally_fail" -eq 0 ] && [ ${#tally_failed[@]} -eq 0 ]
