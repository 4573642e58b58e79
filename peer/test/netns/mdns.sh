#!/usr/bin/env bash
# DNS-SD over mDNS through Avahi ([DSC-15]). Two hosts, each with its own D-Bus system bus and
# avahi-daemon started here (a private /run in the daemon's mount namespace, so daemons of
# parallel tests never meet, and nothing of the machine's own bus or daemon is touched). Both
# run `shoal serve --discover --no-beacon`: they must find and connect to each other through
# mDNS alone, `avahi-browse -r _shoal._tcp` must list both with their peer ids, and a peer
# whose bus has no Avahi daemon must say so once and go on with the beacon.
#   mdns.sh SHOAL
shoal="$1"
source "$(dirname "$0")/lib.sh"
for tool in avahi-daemon avahi-browse dbus-daemon; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (./dev setup installs it)"
done
netns_init
lan_create 2

bus_conf() {  # bus_conf SOCKET: a system bus that lets everyone own and call anything
  cat <<CONF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$1</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
CONF
}

for i in 1 2; do
  dir="$work/avahi$i"
  mkdir -p "$dir/run"
  bus_conf "$dir/bus" > "$dir/bus.conf"
  cat > "$dir/avahi.conf" <<CONF
[server]
host-name=$netns_tag-h$i
use-ipv4=yes
use-ipv6=no
allow-interfaces=eth0
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
CONF
  start_on_host "$i" "dbus$i" dbus-daemon --nofork --config-file="$dir/bus.conf"
  until_true 10 test -S "$dir/bus" || fail "dbus-daemon $i did not start"
  # The daemon's pid file and socket go to a /run of its own (ip netns exec gives it a mount
  # namespace whose mounts stay inside).
  start_on_host "$i" "avahi$i" env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/bus" sh -c \
      "mount -t tmpfs tmpfs /run && mkdir /run/avahi-daemon && exec avahi-daemon -f '$dir/avahi.conf' --no-drop-root --no-chroot --no-rlimits"
  until_true 15 grep -q 'Server startup complete' "$work/avahi$i.err" \
      || fail "avahi-daemon $i did not start: $(cat "$work/avahi$i.err")"
done

# mDNS alone: the beacon is off, so every session below came from Avahi.
discovery_flags=(--discover --no-beacon)
for i in 1 2; do DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/avahi$i/bus" serve_on "$i"; done
t0=$(now_ms)
for i in 1 2; do until_true 20 has_peers "$i" 1 || fail "host $i found no peer through mDNS"; done
note "both peers connected through mDNS $(( $(now_ms) - t0 )) ms after the second started"
id1="$(peer_id 1)"
id2="$(peer_id 2)"
for pair in "1 $id2" "2 $id1"; do
  read -r i id <<< "$pair"
  [ "$(peer_field "$i" "$id" authenticated)" = "True" ] || fail "host $i: not over TLS"
  direction="$(peer_field "$i" "$id" direction)"
  found="$(peer_field "$i" "$id" foundBy)"
  if [ "$direction" = outbound ] || [ "$found" != incoming ]; then
    [ "$found" = mdns ] || fail "host $i: the peer was found by '$found', not mdns"
  fi
done

# What any mDNS tool sees: both services, with the ids in their TXT records.
on_host 1 env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/avahi1/bus" timeout 10 \
    avahi-browse -r -t -p _shoal._tcp > "$work/browse.txt" 2> "$work/browse.err" || true
grep '^=' "$work/browse.txt" | cut -d';' -f4,8,9,10 | sed 's/^/   /'
grep -q "\"id=$id1\"" "$work/browse.txt" || fail "avahi-browse does not list peer 1"
grep -q "\"id=$id2\"" "$work/browse.txt" || fail "avahi-browse does not list peer 2"
note "avahi-browse -r _shoal._tcp lists both peers"

# A _shoal._tcp service whose id is not a peer id names nobody: dropped, logged, no dial.
start_on_host 1 bogus env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/avahi1/bus" \
    avahi-publish -s bogus _shoal._tcp 4747 "id=NOT-A-PEER-ID" "instance=zz"
until_true 15 grep -q 'service without a valid id' "$work/peer2.err" \
    || fail "peer 2 did not drop the service without a valid id"
has_peers 2 1 || fail "peer 2's peers changed because of a bogus service"
note "a _shoal._tcp service with id=NOT-A-PEER-ID was dropped"

# A bus without an Avahi daemon: one line saying so, and the peer runs on (beacon only).
mkdir -p "$work/nobus"
discovery_flags=(--discover)
DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/nobus/none" serve_as 2 3 --listen 0.0.0.0:4748
until_true 10 grep -q 'mDNS off, beacon only' "$work/peer3.err" \
    || fail "no word about the missing Avahi daemon: $(cat "$work/peer3.err")"
[ "$(grep -c 'mDNS off' "$work/peer3.err")" = 1 ] || fail "the missing daemon was reported more than once"
note "without a daemon: $(grep -o 'mDNS off.*' "$work/peer3.err" | head -1 | cut -c1-120)"

# A clean stop joins the Avahi thread and withdraws the service: host 2 sees it go.
shoal_cli stop --library "$work/lib1" > /dev/null
until_true 10 grep -q '"stopped":{"clean":true' "$work/peer1.out" || fail "peer 1 did not stop cleanly"
until_true 10 bash -c "! kill -0 $peer_pid_1 2>/dev/null" || fail "peer 1 did not exit"
if grep -q 'Sanitizer' "$work/peer1.err"; then fail "peer 1: $(grep -A5 Sanitizer "$work/peer1.err")"; fi
# Browsed without -r: resolving a service that is going away can take the resolver's timeout.
withdrawn() {
  ! on_host 2 env DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/avahi2/bus" timeout 10 \
      avahi-browse -t -p _shoal._tcp 2>/dev/null | grep -q ';peer1;'
}
until_true 10 withdrawn || fail "peer 1's service is still listed after it stopped"
note "peer 1 stopped cleanly; its service is withdrawn"
note "PASS"
