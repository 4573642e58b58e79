#!/usr/bin/env bash
# Discovery stays on the interfaces the user chose ([DSC-3]). Host 2 has two cables: eth0 on LAN
# A (host 1) and eth1 on LAN B (host 3), and runs `--discover-iface eth0`. Hosts 1 and 3 run
# `--discover` on their one interface. Host 2 must find host 1, send nothing at all on LAN B
# (a listener on host 3 counts its datagrams), and neither hear nor reach host 3.
#   discovery-interfaces.sh SHOAL TOOL
shoal="$1"
tool="$2"
source "$(dirname "$0")/lib.sh"
netns_init
lan_create 2
lan_join 2 br1 eth1 10.48.0
lan_join 3 br1 eth0 10.48.0

serve_on 1 --discover-interval 500
serve_on 2 --discover-interval 500 --discover-iface eth0
serve_on 3 --discover-interval 500
# The same 3 s on both LANs: host 2's announces must show up on A (the listener works) and not B.
start_on_host 1 listenerA python3 "$tool" listen 10.47.0.1 10.47.0.2 3
start_on_host 3 listenerB python3 "$tool" listen 10.48.0.3 10.48.0.2 3
until_true 10 grep -q listening "$work/listenerA.out" || fail "listener A did not start"
until_true 10 grep -q listening "$work/listenerB.out" || fail "listener B did not start"
until_true 10 has_peers 1 1 || fail "host 1 never found host 2 on LAN A"
until_true 10 grep -q heard "$work/listenerA.out" || fail "listener A never finished"
until_true 10 grep -q heard "$work/listenerB.out" || fail "listener B never finished"
onA="$(awk '/heard/ {print $2}' "$work/listenerA.out")"
heard="$(awk '/heard/ {print $2}' "$work/listenerB.out")"
[ "$onA" -ge 3 ] || fail "only $onA announces of host 2 heard on LAN A in 3 s"
[ "$heard" = 0 ] || fail "host 2 sent $heard datagrams on LAN B, an interface not chosen"
has_peers 3 0 || fail "host 3 reached host 2 over LAN B"
has_peers 2 1 || fail "host 2 has peers beyond host 1"
[ -n "$(peer_field 2 "$(peer_id 1)" peerId)" ] || fail "host 2's one peer is not host 1"
note "host 2 (--discover-iface eth0) found host 1; in 3 s it sent $onA announces on LAN A, 0 on LAN B"
note "PASS"
