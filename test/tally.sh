# shellcheck shell=bash
# Sourced by scripts/run-tests.sh (unit binaries, then the e2e suite) and test/e2e/run.sh (each
# e2e file): run one suite bounded in time, show its output, and add it to the totals.
#   tally_pass, tally_fail        its closing line "N passed, N failed" (test cases); a suite
#                                 without one counts as one failed case
#   tally_checks, tally_checks_failed   its last "checks: N run, M failed" (harness.h) or
#                                 "assertions: ..." (lib.js, run.sh) line: the checks inside
#   tally_failed                  the names of the suites that failed (a failed case, a non-zero
#                                 exit or no closing line)
tally_pass=0
tally_fail=0
tally_checks=0
tally_checks_failed=0
tally_failed=()

tally_count_checks() { # OUTPUT_FILE
	local l n m
	l=$(grep -E '^(assertions|checks): [0-9]+ run, [0-9]+ failed' "$1" | tail -n 1)
	[ -z "$l" ] && return
	n=${l#*: }
	n=${n%% run*}
	m=${l#*run, }
	m=${m%% failed*}
	tally_checks=$((tally_checks + n))
	tally_checks_failed=$((tally_checks_failed + m))
}

tally_run() { # NAME SECONDS KILL_AFTER_SECONDS COMMAND...
	local name=$1 limit=$2 kill_after=$3
	shift 3
	local out rc line p f
	out=$(mktemp)
	timeout --kill-after="$kill_after" "$limit" "$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	tally_count_checks "$out"
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "** $name: ended without its closing 'N passed, N failed' line (exit $rc)"
		tally_fail=$((tally_fail + 1))
		tally_failed+=("$name")
		return
	fi
	p=${line%% passed*}
	f=${line#*passed, }
	f=${f%% failed*}
	tally_pass=$((tally_pass + p))
	tally_fail=$((tally_fail + f))
	if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
		tally_failed+=("$name")
	fi
}
