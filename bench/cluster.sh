#!/usr/bin/env bash
# make bench (cluster part): one relay against two relays sharing a redis-server (--redis), all on
# 127.0.0.1, measured with relay file bench. Scenarios, each BENCH_REPEAT times (default 3) for
# BENCH_SECONDS (default 3), medians shown:
#   1 KiB 1->10 unpaced and paced 1,000/s: one instance; two instances with the writer on A and
#   the readers split over A and B (--session-b);
#   two independent topics (1 KiB 1->10 unpaced each, two bench processes at once): both on one
#   instance, or one per instance (the one-per-core case).
# Figures: deliveries/s, p50/p99 latency, relay CPU per 1,000 deliveries (every relay summed)
# and redis-server CPU per 1,000 deliveries. Raw JSON lines go to build/bench/cluster.jsonl.
# usage: bench/cluster.sh RELAY_BINARY
set -euo pipefail

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init "$1"
live=() # PIDs started here and still running, killed on exit
cleanup() {
	for p in "${live[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
results="$out/cluster.jsonl"
: >"$results"
aud=http://bench.invalid # one audience shared by every instance

# CPU ticks (user + system) of a process so far.
ticks() {
	awk '{print $14 + $15}' "/proc/$1/stat"
}

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" &
redis=$!
live+=("$redis")
wait_for "$work/redis.log" "Ready to accept"

# start_relay NAME [--redis]: sets port_NAME and pid_NAME
start_relay() {
	local name=$1 port
	shift
	port=$(free_port)
	local args=(serve --listen "127.0.0.1:$port" --secret-file "$work/secret" --state-dir "$work/state-$name"
		--access-rate 0 --log-level notice --insecure-http --audience "$aud")
	[ "${1:-}" = --redis ] && args+=(--redis "redis://127.0.0.1:$rport" --instance "$name")
	"$relay" "${args[@]}" 2>"$work/relay-$name.log" &
	live+=($!)
	printf -v "pid_$name" %s $!
	printf -v "port_$name" %s "$port"
	wait_for "$work/relay-$name.log" "relay listening"
	[ "${1:-}" != --redis ] || wait_for "$work/relay-$name.log" "redis at .* up"
}

stop_relays() {
	local p q keep
	for p in "$@"; do
		kill "$p"
		wait "$p" || true
		keep=()
		for q in "${live[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
		live=("${keep[@]}")
	done
}

# Messages relay A could not send towards Redis (buffer full, Redis down, lost), from its /metrics.
not_crossed() {
	curl -s "http://127.0.0.1:$1/metrics" | awk '/^relay_cluster_not_crossed_total/ { n += $2 } END { print n + 0 }'
}

# bench URL [URL_B] [ARGS...]: one relay file bench run, its JSON line on stdout
bench() {
	local url=$1 b=$2
	shift 2
	"$relay" file bench --session "$url" ${b:+--session-b "$b"} --secret-file "$work/secret" \
		--audience "$aud" --json --duration "${secs}s" "$@" 2>/dev/null
}

# record NAME RUN JSON RELAY_TICKS REDIS_TICKS [NOT_CROSSED]
record() {
	local hz rc dc
	hz=$(getconf CLK_TCK)
	rc=$(awk -v t="$4" -v h="$hz" 'BEGIN { printf "%.3f", t / h }')
	dc=$(awk -v t="$5" -v h="$hz" 'BEGIN { printf "%.3f", t / h }')
	echo "$3" | sed "s#^{#{\"scenario\":\"$1\",\"run\":$2,\"relay_cpu_s\":$rc,\"redis_cpu_s\":$dc,\"not_crossed\":${6:-0},#" >>"$results"
}

# one_topic NAME MODE(one|two) ARGS...
one_topic() {
	local name=$1 mode=$2 i t0 r0 json
	shift 2
	for i in $(seq "$repeat"); do
		if [ "$mode" = one ]; then
			start_relay a
			t0=$(ticks "$pid_a")
			r0=$(ticks "$redis")
			json=$(bench "http://127.0.0.1:$port_a/session/b$i" "" "$@")
			record "$name" "$i" "$json" $(($(ticks "$pid_a") - t0)) $(($(ticks "$redis") - r0))
			stop_relays "$pid_a"
		else
			start_relay a --redis
			start_relay b --redis
			t0=$(($(ticks "$pid_a") + $(ticks "$pid_b")))
			r0=$(ticks "$redis")
			json=$(bench "http://127.0.0.1:$port_a/session/b$i" "http://127.0.0.1:$port_b/session/b$i" "$@")
			record "$name" "$i" "$json" $(($(ticks "$pid_a") + $(ticks "$pid_b") - t0)) $(($(ticks "$redis") - r0)) \
				"$(not_crossed "$port_a")"
			stop_relays "$pid_a" "$pid_b"
		fi
	done
	echo "bench: $name done" >&2
}

# two_topics NAME MODE(one|two): two bench processes at once on topics x and y
two_topics() {
	local name=$1 mode=$2 i t0 r0 ua ub
	for i in $(seq "$repeat"); do
		if [ "$mode" = one ]; then
			start_relay a
			ua=http://127.0.0.1:$port_a
			ub=$ua
			t0=$(ticks "$pid_a")
		else
			start_relay a --redis
			start_relay b --redis
			ua=http://127.0.0.1:$port_a
			ub=http://127.0.0.1:$port_b
			t0=$(($(ticks "$pid_a") + $(ticks "$pid_b")))
		fi
		r0=$(ticks "$redis")
		bench "$ua/session/x$i" "" --readers 10 --size 1024 >"$work/x.json" &
		local bx=$!
		bench "$ub/session/y$i" "" --readers 10 --size 1024 >"$work/y.json"
		wait "$bx"
		local t1 r1
		if [ "$mode" = one ]; then t1=$(($(ticks "$pid_a") - t0)); else t1=$(($(ticks "$pid_a") + $(ticks "$pid_b") - t0)); fi
		r1=$(($(ticks "$redis") - r0))
		# the two runs as one line: deliveries/s summed, latency of the worse of the two
		json=$(node -e '
			const [x, y] = [process.argv[1], process.argv[2]].map((f) => JSON.parse(require("fs").readFileSync(f, "utf8")));
			const o = { ...x, msgs_per_s: x.msgs_per_s + y.msgs_per_s, delivered: x.delivered + y.delivered,
				drops: x.drops + y.drops, p50_us: Math.max(x.p50_us, y.p50_us), p99_us: Math.max(x.p99_us, y.p99_us) };
			console.log(JSON.stringify(o));' "$work/x.json" "$work/y.json")
		record "$name" "$i" "$json" "$t1" "$r1"
		if [ "$mode" = one ]; then stop_relays "$pid_a"; else stop_relays "$pid_a" "$pid_b"; fi
	done
	echo "bench: $name done" >&2
}

one_topic "1 KiB 1->10 unpaced, one instance" one --readers 10 --size 1024
one_topic "1 KiB 1->10 unpaced, two instances (writer on A, readers A+B)" two --readers 10 --size 1024
one_topic "1 KiB 1->10 paced 1000/s, one instance" one --readers 10 --size 1024 --rate 1000
one_topic "1 KiB 1->10 paced 1000/s, two instances (writer on A, readers A+B)" two --readers 10 --size 1024 --rate 1000
two_topics "two topics 1 KiB 1->10 unpaced, both on one instance" one
two_topics "two topics 1 KiB 1->10 unpaced, one instance each" two

node -e '
const lines = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const by = new Map();
for (const l of lines) { if (!by.has(l.scenario)) by.set(l.scenario, []); by.get(l.scenario).push(l); }
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
console.log("| scenario | deliveries/s | p50 ms | p99 ms | drops | messages that did not cross (A) | relay CPU ms / 1k deliveries | redis CPU ms / 1k deliveries |");
console.log("|---|---:|---:|---:|---:|---:|---:|---:|");
for (const [name, runs] of by) {
	const per1k = (k) => med(runs.map((r) => (r[k] * 1000) / (r.delivered / 1000 || 1)));
	console.log(`| ${name} | ${med(runs.map((r) => r.msgs_per_s)).toFixed(0)} | ${(med(runs.map((r) => r.p50_us)) / 1000).toFixed(2)} | ` +
		`${(med(runs.map((r) => r.p99_us)) / 1000).toFixed(2)} | ${med(runs.map((r) => r.drops))} | ` +
		`${med(runs.map((r) => r.not_crossed || 0))} | ` +
		`${per1k("relay_cpu_s").toFixed(2)} | ${per1k("redis_cpu_s").toFixed(2)} |`);
}' "$results"
