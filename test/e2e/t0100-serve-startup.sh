#!/usr/bin/env bash
# t0100: `relay serve` starts only with what it needs, binds exactly the configured address,
# says clearly why it cannot start, reopens its log on SIGHUP and stops cleanly on SIGTERM.
. "$(dirname "$0")/lib.sh"

unset "${!RELAY_@}"
dev_cert "$TMP"
echo "startup-secret" >"$TMP/secret"
# Port 0 everywhere: the kernel picks a free port and relay serve logs it (no free-port guess).
port=0
common=(--audience "https://127.0.0.1:0" --state-dir "$TMP/state")
tls=(--cert "$TMP/cert.pem" --key "$TMP/key.pem")

# Refusals: exit 2 for settings, 1 for the environment, one clear line each
begin_case "refusals: exit 2 for settings, one clear line each"
run_rc "$RELAY" serve --listen "127.0.0.1:$port" "${common[@]}" "${tls[@]}"
check_eq "missing secret exits 2" "$RC" 2
check_contains "missing secret is named" "$ERR" "no secret"
run_rc "$RELAY" serve --listen "127.0.0.1:$port" "${common[@]}" --secret-file "$TMP/secret"
check_eq "no certificate exits 2" "$RC" 2
check_contains "no certificate is named" "$ERR" "--cert"
run_rc "$RELAY" serve --listen "127.0.0.1:$port" "${common[@]}" --secret-file "$TMP/secret" --cert "$TMP/nope.pem" --key "$TMP/key.pem"
check_contains "unreadable certificate is named" "$ERR" "$TMP/nope.pem"
run_rc "$RELAY" serve --listen "nowhere" "${common[@]}" --secret-file "$TMP/secret" "${tls[@]}"
check_eq "bad listen address exits 2" "$RC" 2
run_rc "$RELAY" serve --listen "127.0.0.1:$port" --state-dir "$TMP/state" --secret-file "$TMP/secret" "${tls[@]}"
check_contains "missing audience is named" "$ERR" "audience"
run_rc "$RELAY" serve --queue-policy sometimes "${common[@]}" --secret-file "$TMP/secret" "${tls[@]}"
check_contains "bad queue policy is named" "$ERR" "queue_policy"
run_rc "$RELAY" serve --max-message 0 "${common[@]}" --secret-file "$TMP/secret" "${tls[@]}"
check_eq "out-of-range value exits 2" "$RC" 2
echo '{"listen": "127.0.0.1:1", "colour": "red"}' >"$TMP/bad.json"
run_rc "$RELAY" serve --config "$TMP/bad.json"
check_contains "unknown config key is named" "$ERR" "'colour'"
run_rc "$RELAY" serve --config-reference
check_contains "config reference lists settings" "$OUT" "RELAY_QUEUE_POLICY"

run_rc "$RELAY" serve --listen "127.0.0.1:" "${common[@]}" --secret-file "$TMP/secret" "${tls[@]}"
check_eq "listen address without a port exits 2" "$RC" 2

# A taken port: exit 1 with the reason (the holder listens on a port of the kernel's choice)
begin_case "a taken port: exit 1 with the reason"
node -e 's = require("net").createServer().listen(0, "127.0.0.1", () => console.log(s.address().port))' >"$TMP/holder.out" &
PIDS+=($!)
wait_for "$TMP/holder.out" '^[0-9]+$'
taken=$(cat "$TMP/holder.out")
run_rc "$RELAY" serve --listen "127.0.0.1:$taken" "${common[@]}" --secret-file "$TMP/secret" "${tls[@]}"
check_eq "taken port exits 1" "$RC" 1
check_contains "taken port is named" "$ERR" "cannot listen on '127.0.0.1:$taken'"
kill "${PIDS[-1]}"
wait "${PIDS[-1]}" 2>/dev/null

# Start for real on port 0: the log names the bound port, which is the only one it listens on,
# and the audience "https://127.0.0.1:0" became the bound port's
begin_case "starts on port 0 and listens only on the bound port"
"$RELAY" serve --listen "127.0.0.1:0" "${common[@]}" --secret-file "$TMP/secret" "${tls[@]}" \
	--log-file "$TMP/relay.log" &
pid=$!
PIDS+=($pid)
check "relay starts" wait_for "$TMP/relay.log" "relay listening"
port=$(sed -n 's|.*relay listening on https://127\.0\.0\.1:\([0-9]*\) .*|\1|p' "$TMP/relay.log")
check "the log names the bound port ($port)" test "${port:-0}" -gt 0
binds=$(ss -Hltn "sport = :$port" | awk '{print $4}' | sort -u | tr '\n' ' ')
check_eq "listens on 127.0.0.1 only" "$binds" "127.0.0.1:$port "
check_contains "audience has the bound port" "$(grep 'relay listening' "$TMP/relay.log")" "audience https://127.0.0.1:$port,"
tok=$("$RELAY" token --secret-file "$TMP/secret" --audience "https://127.0.0.1:$port" --topic x --lifetime 1m)
code=$(curl -sk -o /dev/null -w '%{http_code}' -X POST -H 'Content-Length: 0' -H "Authorization: $tok" "https://127.0.0.1:$port/session/x")
check_eq "a token naming the bound port is accepted" "$code" 200
check "state database created" test -s "$TMP/state/relay.db"

# SIGHUP reopens the log file: lines after the rotation go to a new file at the same path
begin_case "SIGHUP reopens the log file"
mv "$TMP/relay.log" "$TMP/relay.log.1"
kill -HUP "$pid"
curl -sk -o /dev/null -X POST -H 'Content-Length: 0' "https://127.0.0.1:$port/session/x" -H "Authorization: bad.token.here"
check "new log file after SIGHUP" wait_for "$TMP/relay.log" "refused token"
check "old file kept its lines" grep -q "relay listening" "$TMP/relay.log.1"

# SIGTERM: exit 0 within 5 s
begin_case "SIGTERM stops it cleanly"
kill -TERM "$pid"
wait_exit "$pid" 6
check_eq "SIGTERM exits 0 promptly" "$EXIT_RC" 0
check "shutdown logged" grep -q "stopped" "$TMP/relay.log"

# The example configs parse (they fail later, on files that exist only in production)
begin_case "the example configs parse"
for f in "$ROOT"/configs/relay.*.json; do
	run_rc "$RELAY" serve --config "$f" --listen 127.0.0.1:1 --cert /nonexistent.pem
	check_contains "$(basename "$f") parses" "$ERR" "cannot read certificate '/nonexistent.pem'"
done
run_rc "$RELAY" token --config "$ROOT/configs/token.example.json" --secret-file "$TMP/secret"
check_eq "token.example.json mints" "$RC" 0

# The configuration reference is generated from the same tables: it must be current
begin_case "docs/configuration.md is current"
"$ROOT"/scripts/gen-docs.sh "$RELAY" >"$TMP/configuration.md"
check "docs/configuration.md is current (run make docs)" cmp -s "$TMP/configuration.md" "$ROOT"/docs/configuration.md

finish
