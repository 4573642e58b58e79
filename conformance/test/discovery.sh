#!/usr/bin/env bash
# The discovery cases of shoal-conform (dsc/*) against the reference peer, inside a network
# namespace of their own holding two veth pairs: the target is told to announce on dsc0,
# dsc1 is the interface it was not given ([DSC-3]). Nothing is sent outside the namespace; the
# harness's listeners for the target's dials ([DSC-7], [DSC-8]) exist only inside it too.
# Then each discovery mutant against the case that must catch it: the mutation check proper
# (mutation.py, CTest mutation-check) runs outside namespaces, where these cases are UNIMPLEMENTED.
#   discovery.sh SHOAL SHOAL_CONFORM
shoal="$1"
conform="$2"
source "$(dirname "$0")/../../peer/test/netns/lib.sh"
netns_init
ns="$netns_tag-dsc"
netns_add "$ns"
for i in 0 1; do
  # Both ends inside the namespace: what leaves dsc$i arrives at dsc${i}p and nowhere else.
  ip -n "$ns" link add "dsc$i" type veth peer name "dsc${i}p"
  ip -n "$ns" link set "dsc${i}p" up
  ip -n "$ns" link set "dsc$i" multicast on up
  ip -n "$ns" addr add "10.47.$((20 + i)).1/24" dev "dsc$i"
done
# 16 more addresses on dsc0: the [DSC-7]/[DSC-8] cases announce each round from an address of its
# own, so a per-source rate limit never hides a datagram and a dial tells which round caused it.
for k in $(seq 2 17); do
  ip -n "$ns" addr add "10.47.20.$k/24" dev dsc0
done

launch="$shoal serve --mutant {mutant} --library {library} --state {state} \
--listen 127.0.0.1:{port} --name conform-target {if:plaintext:--plaintext} \
--handshake-timeout {handshake-ms} --idle-timeout {idle-ms} --dead-timeout {dead-ms} \
--drain-timeout {drain-ms} --max-in-flight {max-in-flight} --max-connections {max-connections} \
--rescan {rescan-ms} --chunk-size {chunk-size} \
{if:discover:--discover-iface {iface} --no-mdns --discover-interval {discover-ms}}"

# verdicts MUTANT CASE-GLOB...: runs them, prints "id verdict" per case.
verdicts() {
  local mutant="$1" report="$work/report-$1" args=()
  shift
  for f in "$@"; do args+=(--filter "$f"); done
  ip netns exec "$ns" "$conform" --launch "$launch" --define "mutant=$mutant" \
    --control '{state}/control.sock' --discovery dsc0 --discovery-other dsc1 --keep-going \
    --temp "$work" --report "$report" "${args[@]}" > "$work/conform-$mutant.log" 2>&1 || true
  python3 - "$report/results.json" <<'PY'
import json, sys
for c in json.load(open(sys.argv[1]))["cases"]:
    print(c["id"], c["verdict"])
PY
}

note "the reference: every discovery case OK"
out="$(verdicts none 'dsc/*')"
echo "$out"
bad="$(echo "$out" | awk '$2 != "OK"')"
[ -z "$bad" ] || fail "the reference fails discovery cases: $bad"
[ "$(echo "$out" | grep -c '^dsc/')" -ge 10 ] || fail "fewer discovery cases ran than expected"

note "each discovery mutant is caught by its case"
for pair in discover-by-default:dsc/DSC-1/1 beacon-ttl-two:dsc/DSC-2/1 \
            announce-trailing-byte:dsc/DSC-4/1 announce-wrong-port:dsc/DSC-6/1 \
            discovery-any-interface:dsc/DSC-3/1 answers-announce:dsc/DSC-9/1 \
            datagram-first-frame:dsc/DSC-7/1 dials-own-announce:dsc/DSC-7/1 \
            datagram-truncation-ignored:dsc/DSC-7/2 dials-datagram-port:dsc/DSC-8/1 \
            trusts-announced-id:dsc/DSC-8/2; do
  mutant="${pair%%:*}"
  case_id="${pair#*:}"
  got="$(verdicts "$mutant" "$case_id" | awk -v c="$case_id" '$1 == c {print $2}')"
  [ "$got" = "FAIL" ] || fail "mutant $mutant: $case_id gave ${got:-nothing}, not FAIL"
  note "$mutant: $case_id FAIL"
done
note "discovery conformance: all good"
