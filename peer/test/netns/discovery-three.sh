#!/usr/bin/env bash
# Three hosts on one LAN, each running `shoal serve --discover` with no --peer and the default
# announce interval (5 s ± 1 s): every one must be connected to the two others, over TLS, within
# 5 s of the last one starting. Prints the discovery latency per host. Each pair must end up with
# one session, dialled because of the beacon.
#   discovery-three.sh SHOAL
shoal="$1"
source "$(dirname "$0")/lib.sh"
netns_init
lan_create 3

for i in 1 2 3; do serve_on "$i"; done
started=$(now_ms)
declare -A latency=()
deadline=$(( started + 5000 ))
while :; do
  now=$(now_ms)
  for i in 1 2 3; do
    [ -n "${latency[$i]:-}" ] && continue
    if has_peers "$i" 2; then latency[$i]=$(( now - started )); fi
  done
  [ "${#latency[@]}" -eq 3 ] && break
  [ "$now" -lt "$deadline" ] || fail "not all connected within 5 s (connected: ${#latency[@]} hosts)"
  sleep 0.05
done
note "discovery latency after the last peer started: host1 ${latency[1]} ms, host2 ${latency[2]} ms, host3 ${latency[3]} ms"

# Each peer's view: two TLS-authenticated peers with the right ids, and one session per pair
# that both ends see the same way round (one dialled, the other was dialled). The dialler found
# the other by the beacon; the one dialled says the beacon too once it has heard the dialler's
# announce, else that it was dialled.
for i in 1 2 3; do
  for j in 1 2 3; do
    [ "$i" = "$j" ] && continue
    id="$(peer_id "$j")"
    [ "$(peer_field "$i" "$id" authenticated)" = "True" ] || fail "host $i: peer $j not over TLS"
    mine="$(peer_field "$i" "$id" direction)"
    theirs="$(peer_field "$j" "$(peer_id "$i")" direction)"
    [ "$mine" != "$theirs" ] || fail "hosts $i and $j both see an $mine session: two sessions"
    found="beacon|incoming"
    [ "$mine" = outbound ] && found=beacon
    [[ "$(peer_field "$i" "$id" foundBy)" =~ ^($found)$ ]] \
        || fail "host $i: peer $j found by '$(peer_field "$i" "$id" foundBy)', not $found"
  done
done
shoal_cli peers --library "$work/lib1"
note "PASS"
