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
work_parent=/dev/shm  # the item and every copy in tmpfs
source "$root/peer/test/cli/lib.sh"  # work, pids, cleanup, serve, port_of; poll.sh's fail, until_true
source "$root/peer/test/cli/download-lib.sh"  # lists_from

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

stop() { local p="pid_$1"; "$shoal" stop --library "$2" > /dev/null; wait "${!p}" || true; }
shoal_get() {  # shoal_get MODE SOURCES: ns for `shoal get`
  local mode="$1" n="$2" flags=() peers=() start elapsed
  [ "$mode" = plaintext ] && flags=(--plaintext)
  peers=(--peer "127.0.0.1:$(port_of "$work/alpha.json")")
  [ "$n" -eq 2 ] && peers+=(--peer "127.0.0.1:$(port_of "$work/beta.json")")
  rm -rf "$work/c" && mkdir -p "$work/c"
  serve --deadline 300 gamma "$work/c" "${flags[@]}" "${peers[@]}"
  until_true 60 lists_from data "$n" "$work/c" || fail "gamma never listed the item from $n sources"
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
  serve --deadline 300 alpha "$work/a" "${flags[@]}"
  serve --deadline 300 beta "$work/b" "${flags[@]}"
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
