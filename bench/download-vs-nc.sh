#!/usr/bin/env bash
# bench/download-vs-nc.sh [SHOAL] [MIB]: `shoal get` of a multi-file item (default 1024 MiB) into
# tmpfs (/dev/shm) over loopback — plaintext and TLS, from one source and from two — beside `nc`
# copying the same bytes into tmpfs in the same run (before and after, the better of the two).
# Prints a Markdown table for docs/benchmarks.md. Uses release builds: `./dev build release`.
# The item is generated once; the sources index it once (their index cache is kept across modes).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shoal="${1:-$root/build/release/peer/shoal}"
mib="${2:-1024}"
command -v nc > /dev/null || { echo "needs nc (netcat-openbsd; ./dev setup installs it)" >&2; exit 1; }
source "$root/peer/test/poll.sh"  # fail, until_true

work="$(mktemp -d /dev/shm/shoal-bench-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do kill -KILL "$p" 2> /dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
now_ns() { date +%s%N; }
rate() { python3 -c "import sys; print(f'{int(sys.argv[1]) * 1e9 / int(sys.argv[2]) / 1048576:.0f}')" "$1" "$2"; }  # BYTES NS -> MiB/s
secs() { python3 -c "import sys; print(f'{int(sys.argv[1]) / 1e9:.2f}')" "$1"; }

item="$work/a/data"
mkdir -p "$item/shards" "$work/b"
parts=8
for i in $(seq 1 $parts); do
  head -c $((mib * 1048576 / parts)) /dev/urandom > "$item/shards/part-$i.bin"
done
echo "bench" > "$item/README.txt"
cp -al "$item" "$work/b/data"
bytes="$(du -sb --apparent-size "$item" | cut -f1)"

listening() { ss -ltn "sport = :$1" | grep -q LISTEN; }
nc_copy() {  # ns to copy every file of the item through nc into tmpfs
  local port=$((20000 + RANDOM % 20000)) start
  nc -l 127.0.0.1 "$port" > "$work/nc.out" &
  local listener=$!
  until_true 10 listening "$port" || fail "nc did not listen"
  start="$(now_ns)"
  cat "$item"/shards/* "$item/README.txt" | nc -N 127.0.0.1 "$port"
  wait "$listener"
  echo $(( $(now_ns) - start ))
  rm -f "$work/nc.out"
}

serve() {  # serve NAME LIBRARY ARGS...
  local name="$1" lib="$2"; shift 2
  "$shoal" serve --library "$lib" --listen 127.0.0.1:0 --name "$name" --json "$@" \
      > "$work/$name.json" 2> "$work/$name.err" &
  pids+=($!)
  eval "pid_$name=$!"
  until_true 300 grep -q '"started"' "$work/$name.json" || fail "$name did not start: $(cat "$work/$name.err")"
}
port_of() { grep -o '"listen":"127.0.0.1:[0-9]*"' "$work/$1.json" | head -1 | grep -o '[0-9]*"$' | tr -d '"'; }
stop() { local p="pid_$1"; "$shoal" stop --library "$2" > /dev/null; wait "${!p}" || true; }
listed() {  # listed LIBRARY N: the item is listed by N peers
  "$shoal" ls --library "$1" --json | python3 -c '
import json, sys
items = json.load(sys.stdin).get("items", [])
sys.exit(0 if any(i["itemId"] == "data" and len(i.get("peers", [])) == int(sys.argv[1]) for i in items) else 1)' "$2"
}

shoal_get() {  # shoal_get MODE SOURCES: ns for `shoal get`
  local mode="$1" n="$2" flags=() peers=() start elapsed
  [ "$mode" = plaintext ] && flags=(--plaintext)
  peers=(--peer "127.0.0.1:$(port_of alpha)")
  [ "$n" -eq 2 ] && peers+=(--peer "127.0.0.1:$(port_of beta)")
  rm -rf "$work/c" && mkdir -p "$work/c"
  serve gamma "$work/c" "${flags[@]}" "${peers[@]}"
  until_true 60 listed "$work/c" "$n" || fail "gamma never listed the item from $n sources"
  start="$(now_ns)"
  "$shoal" get data --library "$work/c" > /dev/null 2>&1 || fail "shoal get failed"
  elapsed=$(( $(now_ns) - start ))
  cmp "$item/shards/part-1.bin" "$work/c/data/shards/part-1.bin" || fail "the copy differs"
  stop gamma "$work/c"
  echo "$elapsed"
}

nc_before="$(nc_copy)"
rows=()
for mode in plaintext tls; do
  flags=()
  [ "$mode" = plaintext ] && flags=(--plaintext)
  serve alpha "$work/a" "${flags[@]}"
  serve beta "$work/b" "${flags[@]}"
  for n in 1 2; do
    ns="$(shoal_get "$mode" "$n")"
    rows+=("| shoal get, $mode, $n source$([ "$n" -eq 2 ] && echo s) | $(secs "$ns") s | $(rate "$bytes" "$ns") MiB/s |")
  done
  stop alpha "$work/a"
  stop beta "$work/b"
done
nc_after="$(nc_copy)"
nc_ns=$(( nc_before < nc_after ? nc_before : nc_after ))

echo "item: $bytes bytes in $((parts + 1)) files, into tmpfs; $(nproc) cores; $(uname -r)"
echo
echo "| copy | time | throughput |"
echo "| --- | --- | --- |"
echo "| nc (baseline, best of 2) | $(secs "$nc_ns") s | $(rate "$bytes" "$nc_ns") MiB/s |"
for row in "${rows[@]}"; do echo "$row"; done
