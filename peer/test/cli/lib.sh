# Helpers for the process tests (sourced): real `shoal` processes on loopback, bounded polls with
# deadlines (nothing sleeps to synchronise), everything under one temp folder removed at exit.
# The sourcing script sets $shoal first (and may set $work_parent: where the temp folder goes).
work="$(mktemp -d "${work_parent:-/tmp}/shoal-cli-XXXXXX")"
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

source "$(dirname "${BASH_SOURCE[0]}")/../poll.sh"  # fail, until_true
library() {  # library DIR ITEMS
  local i
  mkdir -p "$1"
  for i in $(seq 1 "$2"); do
    mkdir -p "$1/item-$i/sub"
    head -c $((100000 * i)) /dev/zero > "$1/item-$i/sub/data.bin"
    echo "item $i" > "$1/item-$i/readme.txt"
  done
}
port_of() {  # the port a peer listens on, from its Started event
  grep -o '"listen":"127.0.0.1:[0-9]*"' "$1" | head -1 | grep -o '[0-9]*"$' | tr -d '"'
}
# serve [--deadline SECONDS] NAME LIBDIR [ARGS...] -> starts in background, events in
# $work/NAME.json, pid in $pid_NAME; fails unless it has started within the deadline (default 20 s;
# a first scan of a big library needs more).
serve() {
  local deadline=20
  if [ "$1" = --deadline ]; then deadline="$2"; shift 2; fi
  local name="$1" lib="$2"; shift 2
  "$shoal" serve --library "$lib" --listen 127.0.0.1:0 --name "$name" --json "$@" \
      > "$work/$name.json" 2> "$work/$name.err" &
  pids+=($!)
  eval "pid_$name=$!"
  until_true "$deadline" grep -q '"started"' "$work/$name.json" \
    || fail "$name did not start: $(cat "$work/$name.err")"
}
