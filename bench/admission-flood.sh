#!/usr/bin/env bash
# The admission under a connection flood, measured (docs/benchmarks.md):
#  - time for a real peer to get in: a `shoal serve` dials the target and we take the time from
#    its Started event to its peerFound (both timeMs on its own clock) — with no flood (the
#    baseline, same run), with 1,000 idle + 1,000 slowloris connections held from the real peer's
#    own address, and from 16 other loopback addresses;
#  - RSS per pending connection: the target's VmRSS with 1,000 idle (then 1,000 slowloris)
#    connections pending, minus its VmRSS before, over 1,000.
# Usage: bench/admission-flood.sh build/release/peer/shoal [ROUNDS]
set -euo pipefail
shoal="$(realpath "$1")"
rounds="${2:-3}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
flood_py="$here/../peer/test/cli/flood.py"
source "$here/../peer/test/cli/lib.sh"

ms_of() {  # ms_of FILE EVENT: the timeMs of the first EVENT line
  grep "\"$2\"" "$1" | head -1 | grep -o '"timeMs":"[0-9]*"' | grep -o '[0-9]*'
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

library "$work/target" 1
serve target "$work/target"
port="$(port_of "$work/target.json")"

get_in() {  # get_in NAME: ms from the real peer's start to its session with the target
  library "$work/$1" 1
  serve "$1" "$work/$1" --peer "127.0.0.1:$port"
  until_true 60 grep -q '"peerFound"' "$work/$1.json" || fail "$1 never got in"
  echo $(( $(ms_of "$work/$1.json" peerFound) - $(ms_of "$work/$1.json" started) ))
  "$shoal" stop --library "$work/$1" > /dev/null
}

flooded() {  # flooded SHAPE SOURCES ROUND
  "$flood_py" "127.0.0.1:$port" --sources "$2" --idle 1000 --slowloris 1000 \
      > "$work/flood-$1-$3.out" 2>&1 &
  local flood=$!
  pids+=($flood)
  until_true 60 grep -q '^ready' "$work/flood-$1-$3.out" || fail "flood $1 never opened"
  get_in "peer_$1_$3"
  kill "$flood"; wait "$flood" 2>/dev/null || true
}

for r in $(seq 1 "$rounds"); do
  echo "round $r: no flood $(get_in "quiet_$r") ms," \
       "flood from the peer's address $(flooded own 127.0.0.1 "$r") ms," \
       "flood from 16 addresses $(flooded sixteen 127.0.0.2-17 "$r") ms"
done
"$shoal" stop --library "$work/target" > /dev/null

# Memory: room for 1,000 pending connections, deadlines out of reach.
library "$work/mem" 1
serve mem "$work/mem" --max-handshakes 1000 --max-handshakes-per-address 1000 \
    --first-bytes-timeout 600000 --handshake-timeout 600000
mport="$(port_of "$work/mem.json")"
for kind in idle slowloris; do
  before="$(rss_kib "$pid_mem")"
  args=(--idle 0 --slowloris 0); [ "$kind" = idle ] && args[1]=1000 || args[3]=1000
  "$flood_py" "127.0.0.1:$mport" "${args[@]}" > "$work/mem-$kind.out" 2>&1 &
  flood=$!; pids+=($flood)
  until_true 60 grep -q '^ready' "$work/mem-$kind.out" || fail "memory flood never opened"
  until_true 60 bash -c "[ \"\$('$shoal' status --library '$work/mem' --json | grep -o '\"handshakesPending\":[0-9]*' | grep -o '[0-9]*$')\" = 1000 ]" \
      || fail "the target never held 1,000 pending connections"
  after="$(rss_kib "$pid_mem")"
  echo "RSS with 1,000 pending $kind connections: $before KiB -> $after KiB," \
       "$(( (after - before) * 1024 / 1000 )) bytes per connection"
  kill "$flood"; wait "$flood" 2>/dev/null || true
  until_true 60 bash -c "[ \"\$('$shoal' status --library '$work/mem' --json | grep -o '\"handshakesPending\":[0-9]*' | grep -o '[0-9]*$')\" = 0 ]" || true
done
