#!/usr/bin/env bash
# Real `shoal` processes on loopback over TLS: two peers list each other's libraries through
# `shoal ls`; a peer with 32 connected sessions stops on SIGTERM (and another on `shoal stop`)
# cleanly (everything drained within its deadline), and every connected peer reports the Goodbye
# in its --json events.
# Waits are bounded polls with deadlines; nothing sleeps to synchronise.
set -euo pipefail
shoal="$1"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- errors are one line and a non-zero exit --------------------------------------------------
if "$shoal" ls --library "$work/nowhere" 2> "$work/err.txt"; then fail "ls without a daemon succeeded"; fi
grep -q "no peer is running here" "$work/err.txt" || fail "unclear error: $(cat "$work/err.txt")"
if "$shoal" serve 2> "$work/err.txt"; then fail "serve without --library succeeded"; fi
grep -q -- "--library is required" "$work/err.txt" || fail "unclear error: $(cat "$work/err.txt")"
if "$shoal" serve --library "$work/nowhere" --listen 127.0.0.1:0 2> "$work/err.txt"; then
  fail "serve on a missing folder succeeded"
fi
grep -q "cannot start" "$work/err.txt" || fail "unclear error: $(cat "$work/err.txt")"
if "$shoal" serve --library "$work" --listen nonsense 2> "$work/err.txt"; then fail "bad --listen accepted"; fi
if "$shoal" serve --library "$work" --allow NOT-AN-ID 2> "$work/err.txt"; then fail "bad --allow accepted"; fi

# --- two peers list each other -----------------------------------------------------------------
library "$work/a" 3
library "$work/b" 1
serve alpha "$work/a"
a_port="$(port_of "$work/alpha.json")"
serve beta "$work/b" --peer "127.0.0.1:$a_port"
until_true 20 bash -c "'$shoal' ls --library '$work/b' | grep -q item-3" || fail "beta never listed alpha's items"
"$shoal" ls --library "$work/b" > "$work/ls.txt"
grep -q "item-1" "$work/ls.txt" && grep -q "item-2" "$work/ls.txt" || fail "ls incomplete: $(cat "$work/ls.txt")"
"$shoal" ls --library "$work/b" --json | grep -q '"itemId":"item-2"' || fail "ls --json"
"$shoal" peers --library "$work/b" | grep -q alpha || fail "peers does not show alpha"
"$shoal" status --library "$work/a" --json | grep -q '"peers":1' || fail "status"
a_id="$("$shoal" id --library "$work/a")"
"$shoal" peers --library "$work/b" --json | grep -q "$a_id" || fail "peer id mismatch"

# --- 32 more peers connect to alpha; SIGTERM stops it cleanly -------------------------------
for i in $(seq 1 32); do
  library "$work/p$i" 1
  serve "p$i" "$work/p$i" --peer "127.0.0.1:$a_port" --rescan 60000
done
until_true 30 bash -c "'$shoal' status --library '$work/a' --json | grep -q '\"peers\":33'" \
    || fail "alpha never had 33 peers: $("$shoal" status --library "$work/a")"
kill -TERM "$pid_alpha"
until_true 10 grep -q '"stopped"' "$work/alpha.json" || fail "alpha did not stop"
wait "$pid_alpha" || fail "alpha exited non-zero: $(cat "$work/alpha.err")"
stopped="$(grep '"stopped"' "$work/alpha.json")"
echo "alpha: $stopped"
echo "$stopped" | grep -q '"clean":true' || fail "alpha's stop was not clean"
echo "$stopped" | grep -q '"goodbyes":33' || fail "not every session was sent Goodbye"
elapsed="$(echo "$stopped" | grep -o '"elapsedMs":[0-9]*' | grep -o '[0-9]*$')"
for name in beta $(seq -f 'p%g' 1 32); do
  until_true 10 grep -q '"goodbyeReceived"' "$work/$name.json" || fail "$name saw no Goodbye"
done

# --- `shoal stop` stops another peer cleanly and reports the time -----------------------------
"$shoal" stop --library "$work/b" > "$work/stop.txt" || fail "shoal stop failed"
grep -q "stopped cleanly" "$work/stop.txt" || fail "stop said: $(cat "$work/stop.txt")"
wait "$pid_beta" || fail "beta exited non-zero"
for i in $(seq 1 32); do "$shoal" stop --library "$work/p$i" > /dev/null || fail "stop p$i"; done
echo "PASS: ls across TLS, SIGTERM with 33 sessions in ${elapsed} ms, shoal stop: $(cat "$work/stop.txt")"
