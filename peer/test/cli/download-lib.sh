# Helpers for the download process tests (sourced after lib.sh): a multi-file item, two sources
# that serve identical copies, a receiver that dials both, and the checks every test makes.
chunk=65536  # small chunks: a few MiB make a hundred chunks, so windows and sources matter

# make_item DIR/ITEM: a few MiB of random bytes over nested files (one empty, one not chunk-sized).
make_item() {
  mkdir -p "$1/sub/deeper" "$1/empty-dir"
  head -c $((3 * 1024 * 1024 + 123)) /dev/urandom > "$1/big.bin"
  head -c $((1024 * 1024)) /dev/urandom > "$1/sub/mid.bin"
  head -c 70000 /dev/urandom > "$1/sub/deeper/small.bin"
  : > "$1/sub/empty.txt"
  echo "readme" > "$1/readme.txt"
}

# digests DIR: "sha256  path" of every file under DIR, sorted; the comparison every test makes.
digests() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

same_item() {  # same_item SRC DST: every file byte-identical
  [ -d "$2" ] || fail "$2 does not exist"
  diff <(digests "$1") <(digests "$2") > "$work/diff.txt" || fail "items differ: $(cat "$work/diff.txt")"
}

# start_sources ITEM [ARGS...]: alpha and beta serve identical copies of ITEM (same manifest
# digest), with ARGS (e.g. --max-upload-rate, which makes a download last long enough to be hit).
start_sources() {
  local item="$1"; shift
  make_item "$work/a/$item"
  mkdir -p "$work/b"
  cp -a "$work/a/$item" "$work/b/$item"
  serve alpha "$work/a" --chunk-size "$chunk" "$@"
  serve beta "$work/b" --chunk-size "$chunk" "$@"
  a_port="$(port_of "$work/alpha.json")"
  b_port="$(port_of "$work/beta.json")"
}

# lists_from ITEM N [LIBRARY]: the receiver's `shoal ls` shows ITEM with N peers.
lists_from() {
  "$shoal" ls --library "${3:-$work/c}" --json | python3 -c '
import json, sys
items = json.load(sys.stdin).get("items", [])
sys.exit(0 if any(i["itemId"] == sys.argv[1] and len(i.get("peers", [])) == int(sys.argv[2]) for i in items) else 1)' "$1" "$2"
}

# progress_at_least FILE BYTES: a `shoal get --json` output reports at least BYTES verified.
progress_at_least() {
  local last
  last="$(grep -o '"downloadProgress":{[^}]*' "$1" | tail -1 | grep -o '"bytesDone":"*[0-9]*' | grep -o '[0-9]*$')"
  [ -n "$last" ] && [ "$last" -ge "$2" ]
}

# field FILE NAME: a number from the downloadEnded event of FILE.
field() { ended "$1" | grep -o "\"$2\":\"*[0-9]*" | grep -o '[0-9]*$'; }

# fetched FILE: the chunk bytes every source delivered to the download FILE followed.
fetched() { share "$1" | awk '{ n += $2 } END { print n + 0 }'; }

# ended FILE: the downloadEnded event of a `shoal get --json` output, or nothing.
ended() { grep '"downloadEnded"' "$1" | tail -1; }

# share FILE: "peerId bytes" per source of the download that FILE followed.
share() {
  ended "$1" | python3 -c '
import json, sys
for s in json.loads(sys.stdin.read())["downloadEnded"].get("sources", []):
    print(s["peerId"], s.get("bytes", 0))'
}

# count EVENT FILE: how many EVENT events FILE holds.
count() { grep -c "\"$1\"" "$2" || true; }

# get_expect RC ITEM LIBRARY OUT: `shoal get ITEM --json` to its end (events in $work/OUT.json,
# stderr in $work/OUT.err); the test fails unless it exits RC.
get_expect() {
  local want="$1" item="$2" lib="$3" out="$4" rc
  set +e
  "$shoal" get "$item" --library "$lib" --json > "$work/$out.json" 2> "$work/$out.err"; rc=$?
  set -e
  [ "$rc" -eq "$want" ] ||
    fail "shoal get $item: exit $rc, not $want: $(cat "$work/$out.err") $(tail -2 "$work/$out.json")"
}
