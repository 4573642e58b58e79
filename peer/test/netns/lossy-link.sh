#!/usr/bin/env bash
# The lossy link the multi-host tests use (lib.sh, lan_join_lossy) really delays and drops:
# host 1 sits behind a link with 20 ms delay and 1 % loss towards it, capped at 100 Mbit/s each
# way; host 2 is on the switch. Measured from the two ends: TCP handshake round trips (SYN,
# SYN-ACK) and the share of 4000 UDP datagrams that arrive. Prints which link ran (netem or
# link-emulator) and what was measured.
#   lossy-link.sh LINK-EMULATOR MEASURE.PY
emulator="$1"
measure="$2"
source "$(dirname "$0")/lib.sh"
netns_init

lan_create 0
lan_join_lossy 1 20 1 100mbit "$emulator"
lan_join 2
note "lossy link: $link_kind (delay 20 ms and 1 % loss towards host 1, tbf 100mbit each way)"

# Round trips: the link adds 20 ms one way, so every handshake takes at least that.
start_on_host 2 rtt-server python3 "$measure" rtt-server 7000
until_true 10 on_host 1 python3 "$measure" rtt 10.47.0.2 7000 1 || fail "no TCP through the link"
on_host 1 python3 "$measure" rtt 10.47.0.2 7000 50 > "$work/rtt.txt"
read -r _ min median _ < <(sed 's/[a-z]*=//g' "$work/rtt.txt")
note "TCP handshake round trip over the link: min $min ms, median $median ms (50 handshakes)"
awk -v m="$min" 'BEGIN { exit !(m >= 19.0) }' || fail "round trip $min ms is below the 20 ms delay"
awk -v m="$median" 'BEGIN { exit !(m < 200) }' || fail "round trip $median ms: far above the delay"

# Loss towards host 1: 4000 datagrams, 1 % expected (40; below 12 or above 100 is
# astronomically unlikely for a working 1 % link).
start_on_host 1 udp-sink python3 "$measure" udp-sink 7001
until_true 10 grep -q listening "$work/udp-sink.out" || fail "udp sink did not start"
on_host 2 python3 "$measure" udp-send 10.47.0.1 7001 4000
until_true 15 grep -q received "$work/udp-sink.out" || fail "udp sink never saw the end marker"
received="$(awk '/received/ {print $2}' "$work/udp-sink.out")"
lost=$(( 4000 - received ))
note "UDP towards host 1: $received of 4000 datagrams arrived ($lost lost, expected about 40)"
[ "$lost" -ge 12 ] && [ "$lost" -le 100 ] || fail "lost $lost of 4000, not about 1 %"
counts="$(emulator_counts 1)"
[ -z "$counts" ] || note "link-emulator: $counts"
note "PASS"
