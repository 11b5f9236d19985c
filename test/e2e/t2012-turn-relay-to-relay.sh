#!/usr/bin/env bash
# t2012: two clients of one relay reach each other through it with no --turn-allow-peer at all:
# coturn's turnutils_uclient -y (client to client: each allocation sends to the other's relayed
# address, 127.0.0.1:PORT here, one of the relay's own addresses) with channels and with Send
# indications, over UDP and TCP. A live UDP allocation's relayed address is a socket the relay
# owns, so it is allowed while the rest of the relay's own IP stays refused (t2011). Before, the
# relayed port range was refused as the relay's own: 403 on every CreatePermission and
# ChannelBind, nothing received. The node side of it is t2012-turn-relay-to-relay.js.
# shellcheck source=test/e2e/turn-lib.sh
. "$(dirname "$0")/turn-lib.sh"

need_coturn turnutils_uclient
turn_secrets t2012
start_turn_relay relay --turn-listen 127.0.0.1:0 || give_up "relay did not start"

# uclient_start NAME FLAGS...: client to client (-y) through this relay (turn-lib.sh's uclient_bg)
uclient_start() { uclient_bg "$1" -y -p "$TURN" "${@:2}"; }

# uclient_check NAME: every message sent arrived at the other client, no 403
uclient_check() {
	local out
	out=$(uclient_totals "$1")
	check_contains "$1: every message sent" "$out" "tot_send_msgs=20,"
	check_contains "$1: every message arrived" "$out" "tot_recv_msgs=20"
	check "$1: no 403" bash -c "! grep -q 'error 403' '$TMP/uclient-$1.out'"
}

uclient_start udp-channels
uclient_start udp-send -s
uclient_start tcp-channels -t
for p in "${UC[@]}"; do wait "$p"; done

begin_case "client to client over UDP, with channels"
uclient_check udp-channels

begin_case "client to client over UDP, with Send and Data indications"
uclient_check udp-send

begin_case "client to client over TCP (UDP relayed), with channels"
uclient_check tcp-channels

begin_case "/metrics: nothing refused as a forbidden peer, packets relayed"
check_eq "forbidden_peer" "$(curl -s "http://127.0.0.1:$HTTP/metrics" | grep -o 'reason="forbidden_peer"} [0-9]*' | awk '{print $2}')" 0
check "packets relayed ($(metric relay_turn_to_peer_packets_total))" test "$(metric relay_turn_to_peer_packets_total)" -ge 60

finish
