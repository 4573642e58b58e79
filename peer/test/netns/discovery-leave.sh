#!/usr/bin/env bash
# Peers that go away. Three hosts discover each other (announce interval 500 ms, liveness idle
# 300 ms / dead 1500 ms). Host 3 stops cleanly: hosts 1 and 2 report it lost through its Goodbye.
# Host 2's cable is pulled and its process killed: host 1 reports it lost through liveness (the
# dead timeout), since no FIN or Goodbye can reach it.
#   discovery-leave.sh SHOAL
shoal="$1"
source "$(dirname "$0")/lib.sh"
netns_init
connected_lan 3 "${fast_discovery[@]}"
id2="$(peer_id 2)"
id3="$(peer_id 3)"

# Clean leave: Goodbye.
shoal_cli stop --library "$work/lib3" > /dev/null
for i in 1 2; do
  until_true 5 has_peers "$i" 1 || fail "host $i still lists host 3 after its Goodbye"
  reason="$(lost_reason "$i" "$id3")"
  [ "$reason" = "goodbye" ] || fail "host $i lost host 3 with reason '$reason', not goodbye"
done
note "host 3 stopped: hosts 1 and 2 reported peerLost (goodbye)"

# Killed: the cable first, so nothing of its death reaches host 1; then the process.
link_down 2
kill -KILL "$peer_pid_2"
t0=$(now_ms)
until_true 10 has_peers 1 0 || fail "host 1 still lists host 2 after its death"
took=$(( $(now_ms) - t0 ))
reason="$(lost_reason 1 "$id2")"
[[ "$reason" == deadTimeout* ]] || fail "host 1 lost host 2 with reason '$reason', not deadTimeout"
note "host 2 killed behind a pulled cable: host 1 reported peerLost ($reason) after $took ms"
note "PASS"
