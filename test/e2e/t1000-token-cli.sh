#!/usr/bin/env bash
# t1000: `relay` command table and `relay token` on the command line: usage errors and exit
# codes, flag > environment > config file precedence, missing secret, verify's verdicts.
. "$(dirname "$0")/lib.sh"

unset "${!RELAY_@}"
SECRET=t1000-secret-value
printf '%s\n' "$SECRET" >"$TMP/secret"

# claims TOKEN: the payload as JSON (via relay token verify, which prints claims even if invalid).
claim() {
	"$RELAY" token verify --secret-file "$TMP/secret" "$1" 2>/dev/null |
		node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const v=JSON.parse(s)[process.argv[1]];console.log(typeof v==="object"?JSON.stringify(v):v)})' "$2"
}

# The command table
begin_case "the command table"
run_rc "$RELAY"
check_eq "no command is a usage error" "$RC" 2
run_rc "$RELAY" frobnicate
check_eq "unknown command exits 2" "$RC" 2
check_contains "unknown command is named" "$ERR" "unknown command 'frobnicate'"
run_rc "$RELAY" --help
check_eq "relay --help exits 0" "$RC" 0
for c in serve host token file version help; do
	check_contains "overview lists $c" "$OUT" "  $c "
done
run_rc "$RELAY" help token
check_contains "relay help token shows token options" "$OUT" "--lifetime"
run_rc "$RELAY" token --help
check_contains "relay token --help shows the env names" "$OUT" "RELAY_TOKEN_TOPIC"
run_rc "$RELAY" version
check_contains "relay version" "$OUT" "relay "

# Usage errors: exit 2 and a one-line reason naming the problem
begin_case "usage errors: exit 2 and a one-line reason"
run_rc "$RELAY" token --no-such-flag
check_eq "unknown flag exits 2" "$RC" 2
check_contains "unknown flag named" "$ERR" "--no-such-flag"
run_rc "$RELAY" token --lifetime soon
check_eq "bad duration exits 2" "$RC" 2
check_contains "bad duration names the key" "$ERR" "'lifetime'"
run_rc "$RELAY" token --scope-read=maybe
check_eq "bad boolean exits 2" "$RC" 2
RELAY_TOKEN_LIFETIME=abc run_rc "$RELAY" token
check_contains "bad env value names the variable" "$ERR" "RELAY_TOKEN_LIFETIME"
run_rc "$RELAY" token --topic
check_eq "flag without value exits 2" "$RC" 2
run_rc "$RELAY" token extra-arg
check_eq "stray argument exits 2" "$RC" 2

# Missing settings are failures (exit 1) that name what is missing
begin_case "missing settings: exit 1, named"
run_rc "$RELAY" token --audience https://r.example --topic t --lifetime 60
check_eq "missing secret exits 1" "$RC" 1
check_contains "missing secret is named" "$ERR" "no secret"
run_rc "$RELAY" token --audience https://r.example --lifetime 60 --secret-file "$TMP/secret"
check_contains "missing topic is named" "$ERR" "no topic"
run_rc "$RELAY" token --audience https://r.example --topic t --secret-file "$TMP/secret"
check_contains "missing lifetime is named" "$ERR" "no lifetime"
run_rc "$RELAY" token --audience https://r.example --topic t --lifetime 60 --secret-file "$TMP/nope"
check_eq "unreadable secret file exits 1" "$RC" 1
check_contains "unreadable secret file is named" "$ERR" "$TMP/nope"

# practable's environment names
begin_case "practable's environment names"
export RELAY_TOKEN_AUDIENCE=https://env.example/access RELAY_TOKEN_SECRET=$SECRET
export RELAY_TOKEN_TOPIC=env-topic RELAY_TOKEN_LIFETIME=3600 RELAY_TOKEN_BOOKING_ID=b-env
run_rc "$RELAY" token
check_eq "mint from the environment" "$RC" 0
tok=$OUT
check_eq "topic from env" "$(claim "$tok" topic)" env-topic
check_eq "booking_id from env" "$(claim "$tok" booking_id)" b-env
check_eq "default prefix" "$(claim "$tok" prefix)" session
check_eq "default scopes" "$(claim "$tok" scopes)" '["write","read"]'
check_eq "aud is an array" "$(claim "$tok" aud)" '["https://env.example/access"]'
exp=$(claim "$tok" exp)
iat=$(claim "$tok" iat)
check_eq "lifetime in seconds" "$((exp - iat))" 3600
RELAY_TOKEN_SCOPE_WRITE=false RELAY_TOKEN_SCOPE_ADMIN=true RELAY_TOKEN_SCOPE_OTHER=relay:stats run_rc "$RELAY" token
check_eq "scope booleans" "$(claim "$OUT" scopes)" '["relay:admin","read","relay:stats"]'
RELAY_TOKEN_SCOPE_READ=false RELAY_TOKEN_SCOPE_WRITE=false run_rc "$RELAY" token
check_eq "no scopes is refused" "$RC" 1

# Flags beat the environment; the environment beats the config file
begin_case "flag > environment > config file"
run_rc "$RELAY" token --topic flag-topic --lifetime 2m --scopes read
check_eq "flag beats env (topic)" "$(claim "$OUT" topic)" flag-topic
check_eq "--scopes replaces scope settings" "$(claim "$OUT" scopes)" '["read"]'
exp=$(claim "$OUT" exp)
iat=$(claim "$OUT" iat)
check_eq "flag lifetime 2m" "$((exp - iat))" 120
cat >"$TMP/token.json" <<JSON
{"topic": "file-topic", "booking_id": "b-file", "connection_type": "shell", "lifetime": "30s"}
JSON
run_rc "$RELAY" token --config "$TMP/token.json"
check_eq "env beats file (topic)" "$(claim "$OUT" topic)" env-topic
check_eq "file beats default (prefix)" "$(claim "$OUT" prefix)" shell
run_rc "$RELAY" token --config "$TMP/token.json" --booking-id b-flag
check_eq "flag beats env and file" "$(claim "$OUT" booking_id)" b-flag
echo '{"topic": "x", "colour": "blue"}' >"$TMP/bad.json"
run_rc "$RELAY" token --config "$TMP/bad.json"
check_eq "unknown config key exits 2" "$RC" 2
check_contains "unknown config key named" "$ERR" "'colour'"
echo '{"topic": ' >"$TMP/broken.json"
run_rc "$RELAY" token --config "$TMP/broken.json"
check_eq "malformed config file exits 2" "$RC" 2
check_contains "malformed config names the file" "$ERR" "$TMP/broken.json"
unset RELAY_TOKEN_SECRET
run_rc "$RELAY" token --secret-file "$TMP/secret"
check_eq "secret from --secret-file" "$RC" 0

# The secret never appears in anything relay prints
begin_case "the secret never appears in what relay prints"
RELAY_TOKEN_SECRET=$SECRET RELAY_TOKEN_LIFETIME=bad run_rc "$RELAY" token
check "secret not echoed in errors" test "${ERR#*"$SECRET"}" = "$ERR"

# verify: exit 0 valid, 1 invalid with a reason
begin_case "verify: exit 0 valid, 1 invalid with a reason"
run_rc "$RELAY" token --secret-file "$TMP/secret"
tok=$OUT
run_rc "$RELAY" token verify --secret-file "$TMP/secret" --audience https://env.example/access/ "$tok"
check_eq "verify valid (trailing / ignored)" "$RC" 0
check_contains "verify says valid" "$ERR" "valid"
run_rc sh -c "echo '$tok' | '$RELAY' token verify --secret-file '$TMP/secret' --audience https://env.example/access"
check_eq "verify reads stdin" "$RC" 0
run_rc "$RELAY" token verify --secret-file "$TMP/secret" --audience https://other.example "$tok"
check_eq "verify wrong audience exits 1" "$RC" 1
check_contains "verify names the reason" "$ERR" "audience"
echo other >"$TMP/other"
run_rc "$RELAY" token verify --secret-file "$TMP/other" "$tok"
check_contains "verify wrong secret" "$ERR" "signature"
check_contains "claims still printed for an invalid token" "$OUT" '"topic"'
run_rc "$RELAY" token verify --secret-file "$TMP/secret" --algorithm HS512 "$tok"
check_contains "verify algorithm mismatch" "$ERR" "algorithm"
run_rc "$RELAY" token --secret-file "$TMP/secret" --lifetime 1s --not-before @1000000000
run_rc "$RELAY" token verify --secret-file "$TMP/secret" "$OUT"
check_contains "verify expired" "$ERR" "expired"
run_rc "$RELAY" token --secret-file "$TMP/secret" --not-before 1h
run_rc "$RELAY" token verify --secret-file "$TMP/secret" "$OUT"
check_contains "verify not yet valid" "$ERR" "not yet valid"
run_rc "$RELAY" token verify --secret-file "$TMP/secret" not.a.token
check_eq "verify garbage exits 1" "$RC" 1

finish
