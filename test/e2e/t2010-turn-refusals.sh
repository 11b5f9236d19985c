#!/usr/bin/env bash
# t2010: what the built-in TURN refuses, with coturn's turnutils_uclient as the client: a wrong
# password, an expired REST username, the hex form of the HMAC (logged once, saying why), peers
# on loopback (also written as ::ffff:127.0.0.1, ::127.0.0.1, 64:ff9b::127.0.0.1, the 6to4
# 2002:7f00:1::1 or in the local-use NAT64 prefix) and 0.0.0.0
# without --turn-allow-peer, the per-user quota (486), a credential that expires while in use
# (the allocation ends, the closing Refresh is refused), and POST /bids/deny ending a booking's
# allocation within a second and its credential allocating nothing more.
# shellcheck source=test/e2e/turn-lib.sh
. "$(dirname "$0")/turn-lib.sh"

need_coturn turnutils_uclient
turn_secrets t2010

rest_hex() { printf %s "$1" | openssl dgst -sha1 -hmac "$TURN_SECRET" | awk '{print $NF}'; }

start_udp_peer

# uc SERVER PORT USER PASS ARGS...: a short uclient run, output in $UC
uc() {
	local server=$1 port=$2 user=$3 pass=$4
	shift 4
	UC=$(timeout 20 turnutils_uclient -p "$port" -r "$PEER_PORT" -n 3 -m 1 -l 100 -c \
		-u "$user" -w "$pass" "$@" "$server" 2>&1)
}

begin_case "settings TURN cannot run with are refused, with the reason"
base=(serve --listen 127.0.0.1:0 --insecure-http --audience http://127.0.0.1:0 --state-dir "$TMP/state-settings")
run_rc "$RELAY" "${base[@]}" --secret-file "$TMP/jwt" --turn-listen 127.0.0.1:0 --event-loop poll
check_eq "poll loop: exit 2" "$RC" 2
check_contains "poll loop: named" "$ERR" "need event_loop libuv"
run_rc timeout 10 "$RELAY" "${base[@]}" --secret-file "$TMP/jwt" --turn-listen 0.0.0.0:0
check_eq "wildcard without external IP: exit 2" "$RC" 2
check_contains "wildcard without external IP: named" "$ERR" "needs --turn-external-ip"
run_rc timeout 10 "$RELAY" "${base[@]}" --secret-file "$TMP/jwt" --turn-listen 127.0.0.1:0 --turn-allow-peer 10.0.0.0/33
check_eq "bad allow list: exit 2" "$RC" 2
check_contains "bad allow list: named" "$ERR" "10.0.0.0/33"
openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/es.pem" 2>/dev/null
openssl ec -in "$TMP/es.pem" -pubout -out "$TMP/es.pub" 2>/dev/null
run_rc timeout 10 "$RELAY" "${base[@]}" --algorithm ES256 --jwt-key "$TMP/es.pub" --turn-listen 127.0.0.1:0
check_eq "ES256 without a TURN secret: exit 2" "$RC" 2
check_contains "ES256 without a TURN secret: named" "$ERR" "needs --turn-secret-file"
head -c 300 /dev/zero | tr '\0' 'k' >"$TMP/long-secret"
run_rc timeout 10 "$RELAY" "${base[@]}" --secret-file "$TMP/jwt" --turn-listen 127.0.0.1:0 --turn-secret-file "$TMP/long-secret"
check_eq "a REST secret over 255 bytes: exit 2" "$RC" 2
check_contains "a REST secret over 255 bytes: named" "$ERR" "over 255 bytes"

# ---- a relay without --turn-allow-peer ----
start_turn_relay strict --turn-listen 127.0.0.1:0 --turn-max-allocations-per-user 4

begin_case "wrong password: 401, no allocation"
u=$(rest_user bk-a 600)
uc 127.0.0.1 "$TURN" "$u" "not-the-password" -e 127.0.0.1
check_contains "uclient cannot allocate" "$UC" "Cannot complete Allocation"
check "logged as wrong password" grep -q "('$u'): wrong password" "$TMP/strict.log"

begin_case "expired REST username: 401"
u="$(($(date +%s) - 10)):bk-a"
uc 127.0.0.1 "$TURN" "$u" "$(rest_pass "$u")" -e 127.0.0.1
check_contains "uclient cannot allocate" "$UC" "Cannot complete Allocation"
check "logged as expired" grep -q "('$u'): credential expired" "$TMP/strict.log"

begin_case "hex HMAC as password: 401, logged once with the reason"
u=$(rest_user bk-hex 600)
uc 127.0.0.1 "$TURN" "$u" "$(rest_hex "$u")" -e 127.0.0.1
check_contains "uclient cannot allocate" "$UC" "Cannot complete Allocation"
check_eq "one log line" "$(grep -c "refused '$u'.*hex HMAC-SHA1.*base64" "$TMP/strict.log")" 1
check "counted" test "$(curl -s "http://127.0.0.1:$HTTP/metrics" | grep -c 'reason="hex_credential"} [1-9]')" -eq 1

begin_case "forbidden peers: 127.0.0.1 and 0.0.0.0 (403)"
for peer in 127.0.0.1 0.0.0.0; do
	u=$(rest_user bk-peer 600)
	uc 127.0.0.1 "$TURN" "$u" "$(rest_pass "$u")" -e "$peer"
	check_contains "$peer: channel bind refused" "$UC" "error 403 (Forbidden)"
	check "$peer: logged" grep -q "refused peer $peer:" "$TMP/strict.log"
done
check_eq "nothing relayed" "$(metric relay_turn_to_peer_packets_total)" 0

begin_case "quota: a user's allocations past --turn-max-allocations-per-user get 486"
u=$(rest_user bk-quota 600)
uc 127.0.0.1 "$TURN" "$u" "$(rest_pass "$u")" -e 8.8.8.8 -m 3 # two allocations each
check_contains "486 answered" "$UC" "error 486 (Allocation Quota Reached)"
check "logged" grep -q "refused an allocation for 'bk-quota': 4 allocations already" "$TMP/strict.log"

# ---- the same filter on an IPv6 listener, for IPv4 written as IPv6 ----
begin_case "forbidden peers written as IPv6: ::ffff:127.0.0.1, ::127.0.0.1, 64:ff9b::127.0.0.1, 6to4, local NAT64"
start_turn_relay v6 --turn-listen "[::1]:0"
if [ -n "$TURN" ]; then
	for peer in ::ffff:127.0.0.1 ::127.0.0.1 64:ff9b::127.0.0.1 2002:7f00:1::1 64:ff9b:1::7f00:1; do
		u=$(rest_user bk-v6 600)
		uc ::1 "$TURN" "$u" "$(rest_pass "$u")" -e "$peer"
		check_contains "$peer: channel bind refused" "$UC" "error 403 (Forbidden)"
	done
	check_eq "refusals counted" "$(curl -s "http://127.0.0.1:$HTTP/metrics" | grep -o 'reason="forbidden_peer"} [0-9]*' | awk '{print $2}')" 5
else
	failed "no IPv6 loopback listener"
fi

# ---- a relay that allows loopback peers ----
start_turn_relay open --turn-listen 127.0.0.1:0 --turn-allow-peer 127.0.0.1/32

begin_case "a credential that expires in use: the allocation ends, the closing Refresh is refused"
u=$(rest_user bk-short 2)
uc 127.0.0.1 "$TURN" "$u" "$(rest_pass "$u")" -e 127.0.0.1 -n 150 # 3 s of sending
check "allocation ended at the credential's expiry" grep -q "'bk-short' from .* ended (credential expired)" "$TMP/open.log"
check "closing Refresh refused" grep -q "('$u'): credential expired" "$TMP/open.log"
check_eq "no allocation left" "$(metric relay_turn_allocations)" 0

begin_case "deny: POST /bids/deny ends the booking's allocation within a second"
u=$(rest_user bk-deny 600)
timeout 20 turnutils_uclient -p "$TURN" -e 127.0.0.1 -r "$PEER_PORT" -n 400 -m 1 -l 100 -c \
	-u "$u" -w "$(rest_pass "$u")" 127.0.0.1 >"$TMP/deny-uclient.out" 2>&1 &
PIDS+=($!)
check "relaying" wait_for "$TMP/open.log" "allocation for 'bk-deny'" 5
for ((i = 0; i < 100; i++)); do
	[ "$(metric relay_turn_to_peer_packets_total)" -gt 10 ] 2>/dev/null && break
	sleep 0.05
done
mint() { RELAY_TOKEN_SECRET_FILE="$TMP/jwt" "$RELAY" token --audience "http://127.0.0.1:$HTTP" --lifetime 5m "$@"; }
admin=$(mint --topic admin --scope-admin)
# /status: a websocket of booking bk-deny shows its TURN allocations
turn_allocs=$(cd "$ROOT/test" && LAB="$(mint --topic lab --booking-id bk-deny)" \
	STATS="$(mint --topic stats --scopes read,relay:stats)" BASE="http://127.0.0.1:$HTTP" node -e '
	const WebSocket = require("ws");
	(async () => {
	  const a = await (await fetch(`${process.env.BASE}/session/lab`, { method: "POST", headers: { Authorization: process.env.LAB } })).json();
	  const ws = new WebSocket(a.uri);
	  await new Promise((res, rej) => { ws.on("open", res); ws.on("error", rej); });
	  const st = await (await fetch(`${process.env.BASE}/status`, { headers: { Authorization: process.env.STATS } })).json();
	  console.log(st.filter((c) => c.booking_id === "bk-deny" && !c.kind).map((c) => c.turn_allocations).join(","));
	  ws.close();
	})().catch((e) => { console.log("error " + e.message); });
' 2>&1)
check_eq "/status shows the booking's allocations" "$turn_allocs" "$(metric relay_turn_allocations)"
t0=$(date +%s%N)
code=$(curl -s -o /dev/null -w "%{http_code}" -X POST --data "" -H "Authorization: $admin" \
	"http://127.0.0.1:$HTTP/bids/deny?bid=bk-deny&exp=$(($(date +%s) + 600))")
check_eq "deny answered" "$code" 204
ended=0
for ((i = 0; i < 20; i++)); do
	if [ "$(metric relay_turn_allocations)" = 0 ]; then ended=1; break; fi
	sleep 0.05
done
ms=$((($(date +%s%N) - t0) / 1000000))
check_eq "allocations ended ($ms ms)" "$ended" 1
check "within a second" test "$ms" -lt 1000
check "logged" grep -q "'bk-deny' from .* ended (booking denied)" "$TMP/open.log"
before=$(metric relay_turn_to_peer_packets_total)
sleep 0.3 # the client keeps sending for seconds: none of it may be relayed now
check_eq "nothing relayed after the deny" "$(metric relay_turn_to_peer_packets_total)" "$before"

begin_case "deny: the booking's credential (valid for minutes still) allocates no more (403)"
uc 127.0.0.1 "$TURN" "$u" "$(rest_pass "$u")" -e 127.0.0.1
check_contains "allocate refused: 403" "$UC" "error 403 (Forbidden)"
check "logged as denied" grep -q "('$u'): booking denied" "$TMP/open.log"
check_eq "no allocation" "$(metric relay_turn_allocations)" 0

finish
