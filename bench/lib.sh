# shellcheck shell=bash
# Sourced by bench/run.sh, bench/discovery.sh and bench/soak.sh: the set-up they share.

# bench_init RELAY_BINARY: relay (its absolute path), repeat (BENCH_REPEAT, default 3), secs
# (BENCH_SECONDS, default 3), out (build/bench, made), work (a temporary directory with a
# secret, cert.pem and key.pem for 127.0.0.1), srv (the relay the script runs, empty while
# none), and an EXIT trap that stops srv and removes work.
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
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
		-addext "subjectAltName=IP:127.0.0.1" -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
}

# A TCP port free on 127.0.0.1 just now.
free_port() {
	node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

stop_relay() {
	kill "$srv"
	wait "$srv" || true
	srv=
}
