#!/usr/bin/env bash
# Discovery over IPv6 alone ([DSC-2]): two hosts with no IPv4 address at all, only their
# link-local IPv6 ones, listening on [::]:4747. They must find each other through ff12::4747 and
# connect to each other's link-local address (dialled with its interface scope, fe80::…%eth0).
#   discovery-ipv6.sh SHOAL
shoal="$1"
source "$(dirname "$0")/lib.sh"
netns_init
lan_create 2
for i in 1 2; do ip -n "$(host_ns "$i")" -4 addr flush dev eth0; done
# Link-local addresses come up with the link (DAD is off in these namespaces).
for i in 1 2; do
  until_true 10 bash -c "ip -n $(host_ns "$i") -6 addr show dev eth0 | grep -q 'inet6 fe80'" \
      || fail "host $i has no link-local address"
done

for i in 1 2; do serve_on "$i" --listen '[::]:4747' --discover-interval 500; done
until_true 10 has_peers 1 1 || fail "the hosts did not find each other over IPv6"
until_true 10 has_peers 2 1 || fail "host 2 does not list host 1"
address="$(peer_field 1 "$(peer_id 2)" address)"
[[ "$address" == \[fe80:* ]] || fail "host 1 reaches host 2 at '$address', not a link-local address"
[ "$(peer_field 1 "$(peer_id 2)" authenticated)" = "True" ] || fail "not over TLS"
note "two IPv6-only hosts connected over link-local addresses ($address)"
note "PASS"
