#!/usr/bin/env bash
# A download across the lossy link (lib.sh, lan_join_lossy: 20 ms delay and 1 % loss towards
# host 1, 100 Mbit/s each way) between peers that found each other by beacon alone
# (--discover-iface eth0, no --peer). Hosts 2 and 3 on the switch hold identical copies of two
# items (64 KiB chunks, so the scheduler's window matters at this bandwidth-delay product); host
# 1, behind the link, fetches them with `shoal get`:
#   1. all three see each other (no --peer anywhere);
#   2. `bulk` (SIZE_MIB) crosses the link from both sources: every file's SHA-256 equals the
#      source's; prints the throughput against the link's rate and its bandwidth-delay product
#      (RTT measured through the link) and the sources' shares;
#   3. `solo` (SIZE_MIB / 2, on host 2 only) measures one source's window: by Little's law the
#      requests it had in flight averaged at least throughput x (RTT + a chunk's time on the
#      link) / chunk size; above the initial window (2), the window grew. Printed, not asserted
#      (measured figures depend on the machine);
#   4. `cut` (SIZE_MIB) is interrupted by pulling host 1's cable once a quarter has arrived, for
#      longer than the dead timeout; when the cable is back the peers find each other again and
#      the download goes on (the same `shoal get`, or a second one if the first ended with "all
#      peers gone"), fetching only what was missing; every file verifies.
# Waits are bounded polls; nothing sleeps to synchronise (the partition's length is the fault
# being injected, not a wait).
#   download-lossy.sh SHOAL LINK-EMULATOR MEASURE.PY [SIZE_MIB]
shoal="$1"
emulator="$2"
measure="$3"
size_mib="${4:-32}"
source "$(dirname "$0")/lib.sh"
netns_init

# Liveness fast enough that the partition outlasts it in seconds; beacons on eth0 only.
liveness=(--idle-timeout 1000 --dead-timeout 4000 --discover-interval 1000)
chunk=65536
discovery_flags=(--discover-iface eth0 --no-mdns)
get_limit=$(( 60 + size_mib * 4 ))  # seconds a `shoal get` may take: generous, still bounded

lan_create 0
lan_join_lossy 1 20 1 100mbit "$emulator"
lan_join 2
lan_join 3
note "lossy link: $link_kind (20 ms and 1 % loss towards host 1, 100 Mbit/s each way)"

# make_item DIR MIB: MIB of random bytes in three files, one of them not chunk-sized.
make_item() {
  local dir="$1" mib="$2"
  mkdir -p "$dir/data"
  head -c $(( mib * 1024 * 1024 / 2 )) /dev/urandom > "$dir/data/part-a.bin"
  head -c $(( mib * 1024 * 1024 / 2 - 4321 )) /dev/urandom > "$dir/data/part-b.bin"
  head -c 4321 /dev/urandom > "$dir/tail.bin"
}
digests() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }
same_item() {  # same_item SRC DST: every file's SHA-256 equal
  [ -d "$2" ] || fail "$2 does not exist"
  diff <(digests "$1") <(digests "$2") > "$work/diff.txt" \
      || fail "items differ: $(cat "$work/diff.txt")"
}
for i in 2 3; do mkdir -p "$work/lib$i"; done
make_item "$work/lib2/bulk" "$size_mib"
make_item "$work/lib2/cut" "$size_mib"
cp -a "$work/lib2/bulk" "$work/lib2/cut" "$work/lib3/"
make_item "$work/lib2/solo" $(( size_mib / 2 ))

# --- 1. discovery, no --peer --------------------------------------------------------------------
started=$(now_ms)
for i in 1 2 3; do serve_on "$i" "${liveness[@]}" --chunk-size "$chunk"; done
for i in 1 2 3; do
  until_true 15 has_peers "$i" 2 || fail "host $i never had both other peers: $(peers_json "$i")"
done
note "three hosts connected by beacon alone in $(( $(now_ms) - started )) ms (from the first start)"

# ls_peers ITEM: how many peers host 1's `shoal ls` lists for ITEM.
ls_peers() {
  shoal_cli ls --library "$work/lib1" --json | python3 -c '
import json, sys
for i in json.load(sys.stdin).get("items", []):
    if i["itemId"] == sys.argv[1]:
        print(len(i.get("peers", [])))' "$1"
}
listed_twice() { [ "$(ls_peers "$1")" = 2 ]; }
until_true 15 listed_twice bulk || fail "host 1 never saw bulk at both sources"
until_true 15 listed_twice cut || fail "host 1 never saw cut at both sources"
listed_once() { [ "$(ls_peers "$1")" = 1 ]; }
until_true 15 listed_once solo || fail "host 1 never saw solo at host 2"

# The link's round trip, measured through it (TCP handshakes to host 2).
start_on_host 2 rtt-server python3 "$measure" rtt-server 7000
until_true 10 on_host 1 python3 "$measure" rtt 10.47.0.2 7000 1 || fail "no TCP through the link"
on_host 1 python3 "$measure" rtt 10.47.0.2 7000 20 > "$work/rtt.txt"
read -r _ rtt_min rtt_median _ < <(sed 's/[a-z]*=//g' "$work/rtt.txt")

# --- helpers over `shoal get --json` outputs ----------------------------------------------------
# get_start ITEM NAME: `shoal get ITEM` for host 1 in the background (the control socket is a
# file: no namespace needed), NDJSON in $work/NAME.json, its exit status in $work/NAME.rc.
get_start() {
  ( set +e
    timeout "$get_limit" "$shoal" get "$1" --library "$work/lib1" --json \
        > "$work/$2.json" 2> "$work/$2.err"
    echo $? > "$work/$2.rc" ) &
  netns_pids+=($!)
}
get_done() { [ -s "$work/$1.rc" ]; }
get_rc() { cat "$work/$1.rc"; }
ended() { grep '"downloadEnded"' "$work/$1.json" | tail -1; }
outcome() { ended "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["downloadEnded"]["outcome"])'; }
# shares NAME: "peerId bytes" per source of the download NAME followed.
shares() {
  ended "$1" | python3 -c '
import json, sys
for s in json.loads(sys.stdin.read())["downloadEnded"].get("sources", []):
    print(s["peerId"][:8], s.get("bytes", 0))'
}
fetched() { shares "$1" | awk '{ n += $2 } END { print n + 0 }'; }
# progress NAME: the last bytesDone a download NAME followed reported (0 before any).
progress() {
  local last
  last="$(grep -o '"downloadProgress":{[^}]*' "$work/$1.json" 2>/dev/null | tail -1 \
          | grep -o '"bytesDone":"*[0-9]*' | grep -o '[0-9]*$' || true)"
  echo "${last:-0}"
}
progress_at_least() { [ "$(progress "$1")" -ge "$2" ]; }
# get_finished ITEM NAME: `shoal get ITEM` for host 1 (as get_start) to its end, which must be
# exit 0, outcome finished and every file equal to host 2's copy. $finished_ms: when it ended.
get_finished() {
  get_start "$1" "$2"
  until_true "$get_limit" get_done "$2" || fail "shoal get $1 ($2) did not end within $get_limit s"
  finished_ms=$(now_ms)
  [ "$(get_rc "$2")" = 0 ] || fail "shoal get $1 ($2): exit $(get_rc "$2"): $(cat "$work/$2.err")"
  [ "$(outcome "$2")" = finished ] || fail "$2: $(ended "$2")"
  same_item "$work/lib2/$1" "$work/lib1/$1"
}

# --- 2. an uninterrupted download across the link -------------------------------------------------
bulk_bytes=$(( $(du -sb --apparent-size "$work/lib2/bulk" | cut -f1) ))
t0=$(now_ms)
get_finished bulk bulk
ms=$(( finished_ms - t0 ))
shares bulk > "$work/bulk-shares.txt"
python3 - "$bulk_bytes" "$ms" "$rtt_min" "$rtt_median" <<'PY'
import sys
size, ms, rtt_min, rtt_med = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
rate = 100e6 / 8                        # the link, bytes/s
mbit = size * 8 / (ms / 1000) / 1e6
bdp = rate * rtt_min / 1000
# Mathis et al.: one TCP flow with loss p at round trip RTT gets at most MSS/RTT * 1.22/sqrt(p).
mathis = 1448 * 8 / (rtt_min / 1000) * 1.22 / 0.01 ** 0.5 / 1e6
print(f"-- bulk: {size / 2**20:.1f} MiB in {ms / 1000:.1f} s = {mbit:.1f} Mbit/s "
      f"({mbit / 100 * 100:.0f} % of the link's 100 Mbit/s)")
print(f"-- link RTT min {rtt_min:.1f} ms, median {rtt_med:.1f} ms: bandwidth-delay product "
      f"{bdp / 1024:.0f} KiB; one Reno flow at 1 % loss: ~{mathis:.1f} Mbit/s (Mathis et al.; Linux runs CUBIC with RACK)")
PY
note "bulk shares per source: $(tr '\n' ' ' < "$work/bulk-shares.txt")"
[ "$(wc -l < "$work/bulk-shares.txt")" -eq 2 ] || fail "bulk did not use both sources"
while read -r peer bytes; do
  [ "$bytes" -gt 0 ] || fail "source $peer delivered nothing to bulk"
done < "$work/bulk-shares.txt"

# --- 3. one source's window ----------------------------------------------------------------------
solo_bytes=$(( $(du -sb --apparent-size "$work/lib2/solo" | cut -f1) ))
t0=$(now_ms)
get_finished solo solo
python3 - "$solo_bytes" $(( finished_ms - t0 )) "$rtt_min" "$chunk" <<'PY'
import sys
size, ms, rtt_min, chunk = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rate = size / (ms / 1000)                        # bytes/s from one source
latency = rtt_min / 1000 + chunk / (100e6 / 8)   # the least a request can take
in_flight = rate * latency / chunk               # Little's law: a lower bound on the average
verdict = "the window grew past its initial 2" if in_flight > 2 else "no proof of growth"
print(f"-- solo (one source): {size / 2**20:.1f} MiB in {ms / 1000:.1f} s = "
      f"{rate * 8 / 1e6:.1f} Mbit/s; requests in flight averaged >= {in_flight:.1f} "
      f"(throughput x {latency * 1000:.1f} ms / {chunk // 1024} KiB): {verdict}")
PY

# --- 4. a partition mid-download --------------------------------------------------------------------
cut_bytes=$(( $(du -sb --apparent-size "$work/lib2/cut" | cut -f1) ))
get_start cut cut1
until_true "$get_limit" progress_at_least cut1 $(( cut_bytes / 4 )) \
    || fail "cut never reached a quarter: $(tail -3 "$work/cut1.json")"
link_down 1
before=$(progress cut1)
get_done cut1 && fail "cut ended before the cable was pulled: the item is too small to cut"
note "cable of host 1 pulled at $(( before * 100 / cut_bytes )) % of cut"
# Longer than the dead timeout: both sides drop their sessions, nothing crosses meanwhile.
lost_both() { has_peers 1 0 && has_peers 2 1 && has_peers 3 1; }
until_true 20 lost_both || fail "the partition was not noticed: host 1 $(peers_json 1), host 2 \
$(peers_json 2), host 3 $(peers_json 3)"
partitioned=$(progress cut1)
link_up 1
note "cable back after the sessions were dropped (host 1 had $partitioned bytes of cut)"
until_true 20 has_peers 1 2 || fail "host 1 did not find its peers again: $(peers_json 1)"
until_true 15 listed_twice cut || fail "host 1 never saw cut at both sources again"

# The first `shoal get` may still be following (the download waited for sources) or may have
# ended with "all peers gone" (exit 5, progress kept): then a second one resumes.
until_true "$get_limit" get_done cut1 || fail "shoal get cut did not end"
runs=cut1
if [ "$(get_rc cut1)" = 5 ]; then
  [ "$(outcome cut1)" = allPeersGone ] || fail "exit 5 without allPeersGone: $(ended cut1)"
  note "the first get ended with allPeersGone after $(fetched cut1) bytes; resuming"
  get_finished cut cut2
  resumed=$(fetched cut2)
  # Only what was missing: at most the part not verified at the cut, plus what was in flight.
  [ "$resumed" -lt "$cut_bytes" ] || fail "the resume fetched $resumed of $cut_bytes: not resumed"
  [ "$resumed" -le $(( cut_bytes - partitioned + 16 * 1024 * 1024 )) ] \
      || fail "the resume fetched $resumed bytes; $partitioned of $cut_bytes were verified before"
  note "the resumed download fetched $resumed of $cut_bytes bytes"
  runs="cut1 cut2"
else
  [ "$(get_rc cut1)" = 0 ] || fail "shoal get cut: exit $(get_rc cut1): $(cat "$work/cut1.err")"
  [ "$(outcome cut1)" = finished ] || fail "cut1: $(ended cut1)"
  same_item "$work/lib2/cut" "$work/lib1/cut"
  note "the same shoal get went on after the partition and finished"
fi
note "cut complete and verified after the partition ($runs)"
counts="$(emulator_counts 1)"
[ -z "$counts" ] || note "link-emulator: $counts"
note "PASS"
