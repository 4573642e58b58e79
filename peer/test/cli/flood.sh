#!/usr/bin/env bash
# A connection flood does not keep a real peer out. A target `shoal serve` whose handshake and
# first-bytes deadlines are pushed out of reach (so only the admission's eviction can make room)
# is flooded with 1,000 idle and 1,000 slowloris connections held open — from the real peer's own
# address (a NAT), then from 16 other loopback addresses — and each time a real `shoal serve`
# dials it and must complete its handshake. The flood's failures are reported in a handful of
# rate-limited lines and counted in `shoal status`. Bounded polls only; nothing is timed here
# (bench/admission-flood.sh measures the time to get in).
set -euo pipefail
shoal="$1"
flood_py="$(dirname "${BASH_SOURCE[0]}")/flood.py"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

library "$work/target" 1
serve target "$work/target" --handshake-timeout 600000 --first-bytes-timeout 600000
port="$(port_of "$work/target.json")"

run_shape() {  # run_shape NAME SOURCES
  local name="$1" sources="$2"
  "$flood_py" "127.0.0.1:$port" --sources "$sources" --idle 1000 --slowloris 1000 \
      > "$work/flood-$name.out" 2>&1 &
  local flood=$!
  pids+=($flood)
  until_true 60 grep -q '^ready' "$work/flood-$name.out" || fail "$name: the flood never opened"
  echo "$name: flood $(cat "$work/flood-$name.out")"
  library "$work/real_$name" 1
  serve "real_$name" "$work/real_$name" --peer "127.0.0.1:$port"
  until_true 60 grep -q '"peerFound"' "$work/real_$name.json" \
      || fail "$name: the real peer never got in: $(tail -3 "$work/real_$name.json")"
  "$shoal" stop --library "$work/real_$name" > /dev/null || fail "$name: stop"
  kill "$flood"
  wait "$flood" 2>/dev/null || true
}

run_shape "one_address" "127.0.0.1"
run_shape "sixteen_addresses" "127.0.0.2-17"

status="$("$shoal" status --library "$work/target" --json)"
echo "target status: $status"
echo "$status" | grep -q '"admissionDrops":"[1-9]' || fail "no admission drops counted: $status"
reports="$(grep -c '"handshakeFailed"' "$work/target.json" || true)"
echo "target: $reports handshakeFailed lines for the whole flood"
[ "$reports" -lt 200 ] || fail "handshake failures were not rate limited ($reports lines)"
"$shoal" stop --library "$work/target" > /dev/null || fail "stop target"
echo "PASS: a real peer got in through both floods"
