# shellcheck shell=bash
# Sourced by the bench/*.sh scripts: the set-up they share.

# bench_init RELAY_BINARY: relay (its absolute path), repeat (BENCH_REPEAT, default 3), secs
# (BENCH_SECONDS, default 3), out (build/bench, made), work (a temporary directory holding a
# secret), srv (the one relay a script runs, empty while none), and an EXIT trap that stops srv
# and removes work (a script that starts more sets its own).
# shellcheck disable=SC2034 # the variables are for the scripts that source this
bench_init() {
	relay=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	repeat=${BENCH_REPEAT:-3}
	secs=${BENCH_SECONDS:-3}
	out=build/bench
	mkdir -p "$out"
	work=$(mktemp -d)
	# srv: the running relay's PID, or empty (never 0: `kill 0` would signal our whole process group)
	srv=
	trap '[ -n "$srv" ] && { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; }; rm -rf "$work"' EXIT
	openssl rand -hex 32 >"$work/secret"
}

# A certificate for 127.0.0.1 in $work/cert.pem, its key in $work/key.pem.
bench_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
		-addext "subjectAltName=IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
}

# A TCP port free on 127.0.0.1 just now.
free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Wait (10 s at most) until FILE has a line matching the extended regular expression PATTERN;
# else show FILE and exit.
wait_for() { # FILE PATTERN
	for _ in $(seq 200); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "bench: '$2' not seen in $1" >&2
	cat "$1" >&2
	exit 1
}

stop_relay() {
	kill "$srv"
	wait "$srv" || true
	srv=
}
