#!/usr/bin/env bash
# Connection-storm soak (issue 11): one relay serve, SOAK_CYCLES (default 10) cycles of
# SOAK_CONNS (default 10,000) websockets opened and closed by `relay file bench --idle`, plain
# and TLS. Prints the relay's RSS after each cycle (once every connection has closed) and one
# Markdown row per transport: RSS after the first and the last cycle, and whether the last is
# within 20 % of the first. Figures, not pass/fail.
# usage: bench/soak.sh RELAY_BINARY [ws|wss]...
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init "$1"
bench_cert
shift
transports=("${@:-ws}")
[ $# -eq 0 ] && transports=(ws wss)
cycles=${SOAK_CYCLES:-10}
conns=${SOAK_CONNS:-10000}

rss_kb() {
	awk '/^VmRSS:/ {print $2}' "/proc/$srv/status"
}

# The relay's open websockets, from /metrics (its own count, not a guess from a sleep).
open_conns() {
	curl -sk "$scheme://127.0.0.1:$port/metrics" | awk '/^relay_connections / {print $2}'
}

soak() { # ws|wss
	local t=$1 tls_args=() first= rss= series=
	port=$(free_port)
	if [ "$t" = wss ]; then
		scheme=https
		tls_args=(--cert "$work/cert.pem" --key "$work/key.pem")
	else
		scheme=http
		tls_args=(--insecure-http)
	fi
	bash -c 'ulimit -n 20000 && exec "$0" "$@"' "$relay" serve --listen "127.0.0.1:$port" \
		--audience "$scheme://127.0.0.1:$port" --secret-file "$work/secret" --state-dir "$work/state-$t" \
		--access-rate 0 --max-per-topic 15000 --max-connections 15000 --log-level notice "${tls_args[@]}" \
		2>"$work/relay-$t.log" &
	srv=$!
	wait_for "$work/relay-$t.log" "relay listening"
	echo "soak $t: start $(rss_kb) KiB" >&2
	for c in $(seq "$cycles"); do
		(ulimit -n 20000 && "$relay" file bench --session "$scheme://127.0.0.1:$port/session/soak" \
			--secret-file "$work/secret" --insecure --duration 1s --rate 10 --readers 1 \
			--idle "$conns" --json >/dev/null 2>&1) || echo "soak $t: cycle $c: bench failed" >&2
		for _ in $(seq 200); do
			[ "$(open_conns)" = 0 ] && break
			sleep 0.05
		done
		# The relay gives memory back 1-2 s after the last close: RSS must stay put for 3 s.
		local same=0 now
		rss=$(rss_kb)
		for _ in $(seq 40); do
			sleep 0.5
			now=$(rss_kb)
			if [ "$now" = "$rss" ]; then
				same=$((same + 1))
				[ "$same" -ge 6 ] && break
			else
				same=0
				rss=$now
			fi
		done
		[ -z "$first" ] && first=$rss
		series="$series $((rss / 1024))"
		echo "soak $t: cycle $c: $((rss / 1024)) MiB" >&2
	done
	stop_relay
	echo "| connection storm soak ($cycles × $conns) | $t | $((first / 1024)) | $((rss / 1024)) |" \
		"$(awk -v a="$first" -v b="$rss" 'BEGIN { printf "%+.0f %%", (b - a) * 100 / a }') |" \
		"$(awk -v a="$first" -v b="$rss" 'BEGIN { print (b <= a * 1.2) ? "yes" : "no" }') |$series |"
}

echo "| scenario | tls | RSS after cycle 1 MiB | after last MiB | change | within 20 % | series MiB |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for t in "${transports[@]}"; do
	soak "$t"
done
