# lib.sh: helpers for relay's shell end-to-end tests, the same shape as lib.js. Source it, open
# each test case with `begin_case NAME`, call check_* for each assertion (check) inside it, and
# `finish` at the end. A case passes when all its checks pass; a failing check prints
# "  not ok - CHECK", each case "ok - NAME" or "not ok - NAME". finish prints
# "checks: N run, N failed", then the closing "N passed, N failed", which counts cases, and sets
# the exit status. Checks before the first begin_case form a case named after the script.
# Every process started with `bg` is killed by PID on exit; temporary files live in $TMP.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PASSED=0 # cases
FAILED=0
CHECKS=0
CHECKS_FAILED=0
CASE=
CASE_FAILED=0
PIDS=()
TMP=$(mktemp -d)

cleanup() {
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

# end_case: close the open case (if any) and print its verdict.
end_case() {
	[ -z "$CASE" ] && return 0
	if [ "$CASE_FAILED" -eq 0 ]; then
		PASSED=$((PASSED + 1))
		echo "ok - $CASE"
	else
		FAILED=$((FAILED + 1))
		echo "not ok - $CASE"
	fi
	CASE=
}

# begin_case NAME: close the open case and start the next one.
begin_case() {
	end_case
	CASE=$1
	CASE_FAILED=0
}

pass() {
	[ -z "$CASE" ] && begin_case "$(basename "$0")"
	CHECKS=$((CHECKS + 1))
}

failed() {
	[ -z "$CASE" ] && begin_case "$(basename "$0")"
	CHECKS=$((CHECKS + 1))
	CHECKS_FAILED=$((CHECKS_FAILED + 1))
	CASE_FAILED=1
	echo "  not ok - $1"
}

# check NAME COMMAND...: passes when the command exits 0.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else failed "$name"; fi
}

# check_eq NAME GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then
		pass "$1"
	else
		failed "$1: got '$2', want '$3'"
	fi
}

# check_contains NAME HAYSTACK NEEDLE
check_contains() {
	case "$2" in
	*"$3"*) pass "$1" ;;
	*) failed "$1: '$3' not in '$2'" ;;
	esac
}

# run_rc CMD...: runs it, leaving stdout in $OUT, stderr in $ERR and the status in $RC.
run_rc() {
	"$@" >"$TMP/out" 2>"$TMP/err"
	RC=$?
	OUT=$(cat "$TMP/out")
	ERR=$(cat "$TMP/err")
}

# bg CMD...: start in the background and remember the PID for cleanup.
bg() {
	"$@" &
	PIDS+=($!)
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on now, but another process may take
# it before you bind it: prefer `relay serve --listen 127.0.0.1:0` and the port it logs.
free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

finish() {
	end_case
	echo "checks: $CHECKS run, $CHECKS_FAILED failed"
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

# wait_for FILE PATTERN [SECONDS]: poll until FILE contains PATTERN (grep -E); 1 on timeout.
wait_for() {
	local file=$1 pattern=$2 limit=${3:-10} i
	for ((i = 0; i < limit * 20; i++)); do
		grep -qE "$pattern" "$file" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# dev_cert DIR: a self-signed certificate DIR/cert.pem + DIR/key.pem for 127.0.0.1.
dev_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
		-addext "subjectAltName=IP:127.0.0.1,DNS:localhost" -keyout "$1/key.pem" -out "$1/cert.pem" 2>/dev/null
}

# wait_exit PID SECONDS: wait for PID to exit within SECONDS; sets EXIT_RC (124 on timeout).
wait_exit() {
	local pid=$1 limit=$2 i
	for ((i = 0; i < limit * 20; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			EXIT_RC=$?
			return 0
		fi
		sleep 0.05
	done
	EXIT_RC=124
	return 1
}
