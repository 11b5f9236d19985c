#!/usr/bin/env bash
# t1010: `relay token turn`: TURN REST credentials from the relay's secret (pkg/turncred). The
# username and credential are checked against an independent computation (node's crypto), and
# Debian's coturn, given the secret --print-secret prints, accepts them (turnutils_uclient).
. "$(dirname "$0")/lib.sh"

unset "${!RELAY_@}"
SECRET=t1010-secret-value
printf '%s\n' "$SECRET" >"$TMP/secret"

# hkdf SECRET: the REST secret as pkg/turncred derives it (HKDF-SHA256, salt and info as there).
hkdf() {
	node -e 'const c=require("crypto");console.log(Buffer.from(c.hkdfSync("sha256",process.argv[1],"relay-turn","turn rest secret v1",32)).toString("hex"))' "$1"
}
# cred SECRET USERNAME: base64(HMAC-SHA1(SECRET, USERNAME)).
cred() {
	node -e 'console.log(require("crypto").createHmac("sha1",process.argv[1]).update(process.argv[2]).digest("base64"))' "$1" "$2"
}

begin_case "usage and missing settings"
run_rc "$RELAY" token turn --secret-file "$TMP/secret"
check_eq "no user exits 1" "$RC" 1
check_contains "no user is named" "$ERR" "no user"
run_rc "$RELAY" token turn --user lab1
check_eq "no secret exits 1" "$RC" 1
check_contains "no secret is named" "$ERR" "no secret"
run_rc "$RELAY" token turn --secret-file "$TMP/secret" --user 'a:b'
check_eq "a ':' in the user exits 1" "$RC" 1
check_contains "bad user is named" "$ERR" "bad user"
run_rc "$RELAY" token turn --secret-file "$TMP/secret" --user lab1 --json
check_contains "--json without --urls is named" "$ERR" "--urls"
run_rc "$RELAY" token turn --secret-file "$TMP/secret" --user lab1 --lifetime soon
check_eq "bad lifetime is a usage error" "$RC" 2
run_rc "$RELAY" token turn --secret-file "$TMP/secret" --user lab1 stray
check_eq "stray argument is a usage error" "$RC" 2
run_rc "$RELAY" token turn --turn-secret-file "$TMP/nope" --user lab1
check_contains "unreadable turn secret file is named" "$ERR" "$TMP/nope"
run_rc "$RELAY" token --help
check_contains "relay token --help mentions turn" "$OUT" "relay token turn"

begin_case "the REST secret: derived from the relay's, or --turn-secret-file as it is"
run_rc "$RELAY" token turn --secret-file "$TMP/secret" --print-secret
check_eq "--print-secret exits 0" "$RC" 0
check_eq "derived with HKDF-SHA256" "$OUT" "$(hkdf "$SECRET")"
check "the derived secret is not the relay's secret" test "$OUT" != "$SECRET"
REST=$OUT
RELAY_TOKEN_SECRET=$SECRET run_rc "$RELAY" token turn --print-secret
check_eq "the secret from RELAY_TOKEN_SECRET" "$OUT" "$REST"
printf 'coturn-static-secret\n' >"$TMP/turnsecret"
run_rc "$RELAY" token turn --turn-secret-file "$TMP/turnsecret" --print-secret
check_eq "--turn-secret-file is used as it is" "$OUT" coturn-static-secret
printf 'spaced-secret \r\n\n' >"$TMP/spaced"
run_rc "$RELAY" token turn --turn-secret-file "$TMP/spaced" --print-secret
check_eq "trailing blanks and line ends dropped, as relay serve does" "$OUT" spaced-secret
printf ' \n' >"$TMP/blank"
run_rc "$RELAY" token turn --turn-secret-file "$TMP/blank" --print-secret
check_contains "a blank turn secret file is refused" "$ERR" "is empty"

begin_case "username and credential"
now=$(date +%s)
run_rc "$RELAY" token turn --secret-file "$TMP/secret" --user lab1 --lifetime 1h
check_eq "exits 0" "$RC" 0
user=$(sed -n 1p "$TMP/out")
pass=$(sed -n 2p "$TMP/out")
check_eq "two lines" "$(wc -l <"$TMP/out")" 2
check_eq "user part" "${user#*:}" lab1
exp=${user%%:*}
check "expiry is now + 1h (within 5 s)" test $((exp - now - 3600)) -ge 0 -a $((exp - now - 3600)) -le 5
check_eq "credential is base64(HMAC-SHA1(rest secret, username))" "$pass" "$(cred "$REST" "$user")"
run_rc "$RELAY" token turn --turn-secret-file "$TMP/turnsecret" --user lab1 --lifetime 1h
check_eq "credential under --turn-secret-file" "$(sed -n 2p "$TMP/out")" \
	"$(cred coturn-static-secret "$(sed -n 1p "$TMP/out")")"
run_rc "$RELAY" token turn --secret-file "$TMP/secret" --user lab1 --json \
	--urls 'stun:127.0.0.1:3478,turn:127.0.0.1:3478?transport=udp'
check_eq "--json exits 0" "$RC" 0
shape=$(node -e 'const v=JSON.parse(process.argv[1]);const s=v.iceServers[0];console.log([v.iceServers.length,s.urls.join(" "),s.username.split(":")[1],s.username.split(":")[0]==String(v.expires),s.credential.length].join("|"))' "$OUT")
check_eq "--json is /ice's shape" "$shape" "1|stun:127.0.0.1:3478 turn:127.0.0.1:3478?transport=udp|lab1|true|28"

begin_case "coturn accepts what it prints (static-auth-secret)"
port=$(free_port)
base=$((40000 + RANDOM % 20000))
bg turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port="$port" \
	--min-port="$base" --max-port=$((base + 200)) --no-tls --no-dtls --no-cli --use-auth-secret \
	--static-auth-secret="$REST" --realm=t1010 --allow-loopback-peers --pidfile="$TMP/coturn.pid" \
	--db="$TMP/coturn.db" --log-file=stdout >"$TMP/coturn.log" 2>&1
check "coturn started" wait_for "$TMP/coturn.log" "Total General servers|IPv4. UDP listener opened on : 127.0.0.1:$port" 10
peer=$(free_port)
bg turnutils_peer -L 127.0.0.1 -p "$peer" >"$TMP/peer.log" 2>&1
{ read -r user; read -r pass; } < <("$RELAY" token turn --secret-file "$TMP/secret" --user lab1 --lifetime 10m)
run_rc timeout 20 turnutils_stunclient -p "$port" 127.0.0.1
check_contains "Binding answered" "$OUT$ERR" "UDP reflexive addr"
run_rc timeout 25 turnutils_uclient -p "$port" -e 127.0.0.1 -r "$peer" -u "$user" -w "$pass" -n 10 -m 1 -l 100 127.0.0.1
check_contains "uclient relays with the printed credential" "$OUT$ERR" "Total lost packets 0 (0.000000%)"
run_rc timeout 25 turnutils_uclient -p "$port" -e 127.0.0.1 -r "$peer" -u "$user" -w "$(cred other "$user")" -n 10 -m 1 -l 100 127.0.0.1
check_contains "coturn refuses a credential of another secret" "$OUT$ERR" "Cannot complete Allocation"

finish
