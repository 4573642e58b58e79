#!/usr/bin/env bash
# A peer that restarts before anyone noticed it died. Hosts 1 and 2 discover each other; host 2's
# cable is pulled and its process killed, and the host is removed, so nothing of the old
# connection (no FIN, no RST) ever reaches host 1. The same peer (same key and library, a new
# instanceId) starts on host 3, a new address on the LAN — a crash and a new DHCP lease. Host 1
# still holds the session to the dead instance (dead timeout 30 s), hears the new instance's
# Announce and must replace the stale session at once ([DSC-12], [HS-18]): within 5 s it lists
# the peer with the new instanceId, one session, and has never reported it lost.
#   discovery-restart.sh SHOAL
shoal="$1"
source "$(dirname "$0")/lib.sh"
netns_init
lan_create 3
slow_death=(--discover-interval 500 --idle-timeout 10000 --dead-timeout 30000)

serve_on 1 "${slow_death[@]}"
serve_on 2 "${slow_death[@]}"
until_true 10 has_peers 1 1 || fail "host 1 never saw host 2"
id2="$(peer_id 2)"
old="$(peer_field 1 "$id2" instanceId)"
[ -n "$old" ] || fail "no instanceId for peer 2"

link_down 2
kill -KILL "$peer_pid_2"
host_remove 2
mv "$work/peer2.out" "$work/peer2-first.out"
t0=$(now_ms)
serve_as 3 2 "${slow_death[@]}"
replaced() {
  local now
  now="$(peer_field 1 "$id2" instanceId)"
  [ -n "$now" ] && [ "$now" != "$old" ]
}
until_true 5 replaced || fail "host 1 still holds instance $old of peer 2 5 s after the restart"
took=$(( $(now_ms) - t0 ))
new="$(peer_field 1 "$id2" instanceId)"
has_peers 1 1 || fail "host 1 holds more than one session with peer 2"
[ -z "$(lost_reason 1 "$id2")" ] || fail "host 1 reported peer 2 lost; the session should be replaced"
address="$(peer_field 1 "$id2" address)"
[[ "$address" == 10.47.0.3:* ]] || fail "host 1 reaches peer 2 at $address, not on host 3"
until_true 5 has_peers 2 1 || fail "the restarted peer 2 does not list host 1"
note "peer 2 restarted on host 3 (instance $old -> $new): host 1 replaced the stale session $took ms after the restart began"
note "PASS"
