#!/usr/bin/env bash
# A partition that heals. Three hosts discover each other; host 3's cable is pulled for longer
# than the dead timeout, so every session with it ends (liveness) and its candidates expire; with
# the cable back, announcements resume and all three reconnect without anyone restarting.
#   discovery-partition.sh SHOAL
shoal="$1"
source "$(dirname "$0")/lib.sh"
netns_init
connected_lan 3 "${fast_discovery[@]}"

link_down 3
for i in 1 2; do until_true 10 has_peers "$i" 1 || fail "host $i still lists host 3"; done
until_true 10 has_peers 3 0 || fail "host 3 still lists peers behind the partition"
note "partitioned: hosts 1 and 2 see each other, host 3 sees nobody"
# Hosts 1 and 2 keep their own session through all of it.
[ -z "$(lost_reason 1 "$(peer_id 2)")" ] || fail "hosts 1 and 2 lost each other"

link_up 3
t0=$(now_ms)
for i in 1 2 3; do until_true 10 has_peers "$i" 2 || fail "host $i did not reconnect after the partition"; done
note "partition healed: all three connected again $(( $(now_ms) - t0 )) ms after the cable came back"
note "PASS"
