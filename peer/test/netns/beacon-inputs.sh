#!/usr/bin/env bash
# The beacon's receive path against hostile input, on real sockets ([DSC-4], [DSC-7], [DSC-9],
# [DSC-10], [DSC-14]). Host 2 runs `shoal serve --discover`; host 1 sends it a datagram over 1200
# bytes, noise, a valid frame of another kind, an Announce with host 2's own id, one with an
# incompatible version range; host 3 then floods it with 3000 Announces with random ids.
# Every one must be dropped for its reason (host 2's --verbose log: drops are logged at the 1st,
# 2nd, 4th... of each reason, and host 2's announce interval is a minute so that its own looped-
# back announce is the only other "own"), the flood must reach the candidate table only at the
# per-source rate (exactly the burst of 4: the next is 12 s away), host 2 must send nothing in
# reply and must stay responsive.
#   beacon-inputs.sh SHOAL SCHEMA_DIR
shoal="$1"
schema="$2/shoal.capnp"
tool="$(dirname "$0")/beacon-tool.py"
source "$(dirname "$0")/lib.sh"
command -v capnp >/dev/null || skip "the capnp tool is not installed"
netns_init
lan_create 3

octal() {  # octal TEXT-ID | BYTE: a Cap'n Proto text literal of the 32 bytes
  python3 - "$1" <<'PY'
import base64, sys
arg = sys.argv[1]
if len(arg) <= 3:
    raw = bytes([int(arg)]) * 32
else:
    t = arg.replace("-", "")
    raw = base64.b32decode("".join(t[g * 14:g * 14 + 13] for g in range(4)) + "====")
print("".join("\\%03o" % b for b in raw))
PY
}
announce() {  # announce ID-LITERAL VMIN VMAX > frame
  capnp encode -I/usr/include "$schema" Frame <<TXT
( announce = ( peerId = "$1", instanceId = 7, port = 9, name = "probe",
  versionMin = $2, versionMax = $3,
  summary = ( epoch = 1, rev = 1, digest = "$(octal 1)" ) ) )
TXT
}

serve_on 2 --discover-interval 60000
id2="$(peer_id 2)"
head -c 1500 /dev/zero > "$work/too-large.bin"
head -c 200 /dev/urandom > "$work/noise.bin"
echo '( ping = ( nonce = 5 ) )' | capnp encode -I/usr/include "$schema" Frame > "$work/ping.bin"
announce "$(octal "$id2")" 1 1 > "$work/own.bin"
announce "$(octal 7)" 2 3 > "$work/incompatible.bin"
announce "$(octal 165)" 1 1 > "$work/template.bin"  # 165 = 0xA5, the flood's marker

on_host 1 python3 "$tool" send 10.47.0.1 "$work/too-large.bin" "$work/noise.bin" \
    "$work/ping.bin" "$work/own.bin" "$work/incompatible.bin"
for reason in tooLarge invalid notAnnounce own incompatible; do
  until_true 10 grep -q "reason) = $reason; drop.detail = .*10.47.0.1" "$work/peer2.err" \
      || fail "no $reason drop for host 1's datagram: $(grep dropped "$work/peer2.err" | tail -5)"
done
note "dropped, each for its reason: tooLarge, invalid, notAnnounce, own, incompatible"

# The flood, while host 1 counts what host 2 sends.
start_on_host 1 listener python3 "$tool" listen 10.47.0.1 10.47.0.2 4
until_true 10 grep -q listening "$work/listener.out" || fail "listener did not start"
t0=$(now_ms)
on_host 3 python3 "$tool" flood 10.47.0.3 "$work/template.bin" 3000
flood_ms=$(( $(now_ms) - t0 ))
until_true 10 grep -q heard "$work/listener.out" || fail "listener never finished"
heard="$(awk '/heard/ {print $2}' "$work/listener.out")"
found="$(grep -c 'discovery: found' "$work/peer2.err" || true)"
limited="$(grep -o 'reason) = rateLimited; drop.detail = from 10.47.0.3; count = [0-9]*' "$work/peer2.err" | tail -1 | grep -o '[0-9]*$')"
# What the kernel's receive buffer did not hold is dropped before we see it: the drops counted
# here are only a lower bound.
note "3000 announces in $flood_ms ms: $found became candidates, rate-limit drops logged up to #$limited; host 2 sent $heard datagrams meanwhile"
[ "$found" = 4 ] || fail "$found candidates from one source, not the burst of 4"
[ -n "$limited" ] && [ "$limited" -ge 64 ] || fail "rate-limit drops not counted: '$limited'"
[ "$heard" = 0 ] || fail "host 2 sent $heard datagrams while flooded; nothing is ever answered"
shoal_cli status --library "$work/lib2" > /dev/null || fail "host 2 does not answer after the flood"
note "PASS"
