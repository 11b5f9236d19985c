#!/usr/bin/env bash
# Benchmark of relay host: CPU per video stream (640x480, 25 fps, mpeg1video in MPEG-TS) and
# encode time per frame, with a reader on the topic through a local relay. Figures, not pass/fail.
# usage: bench/host.sh RELAY_BINARY [SECONDS]
set -euo pipefail
relay=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
secs=${2:-${BENCH_SECONDS:-10}}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"' EXIT
openssl rand -hex 32 >"$work/secret"
port=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
base="http://127.0.0.1:$port"
"$relay" serve --listen "127.0.0.1:$port" --audience "$base" --insecure-http --secret-file "$work/secret" \
	--state-dir "$work/state" --log-level notice 2>"$work/relay.log" &
pids+=($!)
until grep -q "relay listening" "$work/relay.log"; do sleep 0.05; done
"$relay" file --session "$base/session/cam" --secret-file "$work/secret" --mode binary --file "$work/video.ts" \
	2>"$work/reader.log" &
pids+=($!)
"$relay" host --session "$base/session/cam" --secret-file "$work/secret" --video test --fps 25 \
	--width 640 --height 480 2>"$work/host.log" &
host=$!
pids+=($host)
until grep -q "relay link up" "$work/host.log"; do sleep 0.05; done
ticks=$(getconf CLK_TCK)
cpu0=$(awk '{print $14 + $15}' "/proc/$host/stat")
t0=$(date +%s.%N)
sleep "$secs" # the measurement window itself
cpu1=$(awk '{print $14 + $15}' "/proc/$host/stat")
t1=$(date +%s.%N)
kill -TERM "$host"
wait "$host" || true
enc=$(grep -o 'encode time median [0-9]* us, p99 [0-9]* us' "$work/host.log" || echo "encode time unknown")
bytes=$(stat -c %s "$work/video.ts")
awk -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v hz="$ticks" -v enc="$enc" -v b="$bytes" 'BEGIN {
	printf "relay host, 640x480 at 25 fps, mpeg1video in MPEG-TS, %.1f s: CPU %.1f %% of one core, %s, %.0f kbit/s received\n",
		t1 - t0, 100 * (c1 - c0) / hz / (t1 - t0), enc, b * 8 / (t1 - t0) / 1000 }'
