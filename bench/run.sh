#!/usr/bin/env bash
# make bench: measures relay serve with its own load generator (relay file bench) on 127.0.0.1.
# Each scenario starts a fresh relay, runs BENCH_REPEAT times (default 3) for BENCH_SECONDS
# (default 3), and the table shows the median of each figure. Plain ws and TLS (wss) both.
# Raw JSON lines go to build/bench/results.jsonl. Figures, not pass/fail.
# usage: bench/run.sh RELAY_BINARY [FILTER]   (FILTER: a substring of the scenario names)
# BENCH_RELAY_ARGS adds arguments to relay serve, e.g. "--write-path lws".
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init "$1"
bench_cert
filter=${2:-}
results="$out/results.jsonl"
: >"$results"

start_relay() { # TLS?(yes|no)
	port=$(free_port)
	local args=(serve --listen "127.0.0.1:$port" --secret-file "$work/secret" --state-dir "$work/state"
		--access-rate 0 --max-per-topic 30000 --max-connections 30000 --log-level notice)
	# shellcheck disable=SC2206 # word splitting wanted
	args+=(${BENCH_RELAY_ARGS:-})
	if [ "$1" = yes ]; then
		scheme=https
		args+=(--audience "https://127.0.0.1:$port" --cert "$work/cert.pem" --key "$work/key.pem")
	else
		scheme=http
		args+=(--audience "http://127.0.0.1:$port" --insecure-http)
	fi
	"$relay" "${args[@]}" 2>"$work/relay.log" &
	srv=$!
	wait_for "$work/relay.log" "relay listening"
}

scenario() { # NAME TLS BENCH-ARGS...
	local name=$1 tls=$2
	shift 2
	[ -n "$filter" ] && [[ "$name" != *"$filter"* ]] && return 0
	for i in $(seq "$repeat"); do
		start_relay "$tls"
		"$relay" file bench --session "$scheme://127.0.0.1:$port/session/bench" --secret-file "$work/secret" \
			--insecure --json --duration "${secs}s" --server-pid "$srv" "$@" 2>/dev/null |
			sed "s#^{#{\"scenario\":\"$name\",\"tls\":\"$tls\",\"run\":$i,#" >>"$results"
		stop_relay
	done
	echo "bench: $name (tls $tls) done" >&2
}

for tls in no yes; do
	for n in 1 10 100; do
		for size in 32 1024 65536; do
			scenario "unpaced 1->$n ${size}B" $tls --readers $n --size $size
		done
	done
	scenario "paced 1000/s 1->1 1KiB" $tls --readers 1 --size 1024 --rate 1000
	scenario "paced 5000/s 1->10 1KiB" $tls --readers 10 --size 1024 --rate 5000
	scenario "paced 1000/s 1->100 1KiB" $tls --readers 100 --size 1024 --rate 1000
	scenario "idle 10000 + paced 1000/s 1->1" $tls --readers 1 --size 1024 --rate 1000 --idle 10000
done

node bench/summary.js "$results"

# Connection-storm soak: RSS after 10 cycles of 10,000 connections (bench/soak.sh).
if [ -z "$filter" ] || [[ "connection storm soak" == *"$filter"* ]]; then
	echo
	bench/soak.sh "$relay" ws wss
fi

# Signaling (issue 13): 1,000 peers in one realm, pairs exchanging 1 KiB messages (bench/signal.js).
if [ -z "$filter" ] || [[ "signal" == *"$filter"* ]]; then
	echo
	node bench/signal.js "$relay"
fi

# Discovery requests per second: GET and PATCH of Disco's group API (bench/discovery.sh).
if [ -z "$filter" ] || [[ "discovery" == *"$filter"* ]]; then
	echo
	bench/discovery.sh "$relay"
fi

if [ -z "$filter" ] || [[ "host" == *"$filter"* ]]; then
	echo
	for i in $(seq "$repeat"); do bench/host.sh "$relay" 10; done
fi

# TURN beside coturn, and the websocket p99 under TURN load (bench/turn.sh).
if [ -z "$filter" ] || [[ "turn" == *"$filter"* ]]; then
	echo
	bench/turn.sh "$relay"
fi
