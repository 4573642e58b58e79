#!/usr/bin/env bash
# Hostile text through every printer of `shoal`: a peer (hostile_peer.py, plaintext) puts ESC,
# BEL, CR, an OSC title change, a screen clear, DEL, a C1 CSI, bidi overrides and isolates and a
# line separator into a Reject, a Goodbye and an Error, and names its items and itself with
# U+202E; our own library holds a folder named with ESC and a FIFO named with U+202E; the error
# paths get hostile paths and values. Everything `shoal serve` (text, --verbose stderr, --json),
# `shoal ls | peers | status | stop` (text and --json) and every error path printed is checked:
# no raw control byte, no bidi control, valid UTF-8, JSON that parses and keeps the exact text.
set -euo pipefail
shoal="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
schema="$here/../../../schema/shoal.capnp"
peer_py="$here/hostile_peer.py"
source "$here/lib.sh"
out="$work/out"
mkdir -p "$out"

rlo=$'\u202e'
esc=$'\e'

scenario() {  # scenario text|json
  local mode="$1" flag=(--verbose) ext=txt
  [ "$mode" = json ] && { flag=(--json); ext=json; }
  # The hostile responder our target dials: it answers every Hello with Reject{busy, HOSTILE}.
  python3 "$peer_py" "$schema" listen > "$work/listen-$mode.out" 2>&1 &
  pids+=($!)
  until_true 20 grep -q '^port' "$work/listen-$mode.out" || fail "hostile listener did not start"
  local hport
  hport="$(awk '/^port/ {print $2}' "$work/listen-$mode.out")"

  local lib="$work/target-$mode"
  mkdir -p "$lib/evil${rlo}txt.exe" "$lib/esc${esc}[2Jname" "$lib/plain"
  echo x > "$lib/evil${rlo}txt.exe/f"
  echo y > "$lib/esc${esc}[2Jname/f"
  echo z > "$lib/plain/f"
  mkfifo "$lib/plain/pipe${rlo}x"
  "$shoal" serve --plaintext --library "$lib" --listen 127.0.0.1:0 --name "tar${rlo}get" \
      --peer "127.0.0.1:$hport" "${flag[@]}" > "$out/serve-$mode.$ext" 2> "$out/serve-$mode.err" &
  pids+=($!)
  until_true 20 grep -q 'started' "$out/serve-$mode.$ext" || fail "target did not start"
  local tport
  tport="$(grep -o '127.0.0.1:[0-9]*' "$out/serve-$mode.$ext" | head -1 | cut -d: -f2)"
  until_true 20 grep -q -e 'refused us' -e '"peerRefused"' "$out/serve-$mode.$ext" \
      || fail "$mode: no peerRefused"

  # A real peer whose name and item name carry U+202E.
  local blib="$work/b-$mode"
  mkdir -p "$blib/b-evil${rlo}gpj.exe"
  echo b > "$blib/b-evil${rlo}gpj.exe/f"
  "$shoal" serve --plaintext --library "$blib" --listen 127.0.0.1:0 --name "b${rlo}live" \
      --peer "127.0.0.1:$tport" --json > "$out/b-$mode.json" 2> "$out/b-$mode.err" &
  pids+=($!)
  until_true 20 grep -q '"libraryChanged":{"peerId":"[A-Z2-7]' "$out/b-$mode.json" \
      || fail "$mode: b never synced the target: $(cat "$out/b-$mode.json" "$out/b-$mode.err"; tail -5 "$out/serve-$mode.$ext")"
  until_true 20 bash -c "'$shoal' ls --library '$lib' | grep -q gpj" || fail "$mode: target never listed b"

  # The hostile session: established (its name in `shoal peers`), then a hostile Goodbye.
  python3 "$peer_py" "$schema" session "127.0.0.1:$tport" "$work/go-$mode" \
      > "$work/session-$mode.out" 2>&1 &
  pids+=($!)
  until_true 20 grep -q established "$work/session-$mode.out" || fail "$mode: hostile session"
  for cmd in peers ls status; do
    "$shoal" "$cmd" --library "$lib" > "$out/$cmd-$mode.txt"
    "$shoal" "$cmd" --library "$lib" --json > "$out/$cmd-$mode.json"
  done
  touch "$work/go-$mode"
  until_true 20 grep -q done "$work/session-$mode.out" || fail "$mode: hostile goodbye"
  python3 "$peer_py" "$schema" error "127.0.0.1:$tport"
  python3 "$peer_py" "$schema" badhello "127.0.0.1:$tport"
  until_true 20 grep -q -e 'goodbye from' -e '"goodbyeReceived"' "$out/serve-$mode.$ext" \
      || fail "$mode: no goodbyeReceived"
  until_true 20 grep -q -e 'handshake from' -e '"handshakeFailed"' "$out/serve-$mode.$ext" \
      || fail "$mode: no handshakeFailed"
  local stopflag=(); [ "$mode" = json ] && stopflag=(--json)
  "$shoal" stop --library "$lib" "${stopflag[@]}" > "$out/stop-$mode.$ext"
  "$shoal" stop --library "$blib" > /dev/null
}

scenario text
scenario json

# Error paths, each with hostile text in what it reports.
hostile_dir="$work/no${esc}]0;pwned${esc}\\where${rlo}"
"$shoal" ls --library "$hostile_dir" > "$out/err-ls.txt" 2>&1 && fail "ls succeeded"
"$shoal" status --control "$hostile_dir/control.sock" > "$out/err-status.txt" 2>&1 && fail "status"
"$shoal" stop --state "$hostile_dir" > "$out/err-stop.txt" 2>&1 && fail "stop"
"$shoal" peers --library "$hostile_dir" --json > "$out/err-peers.txt" 2>&1 && fail "peers"
"$shoal" id --library "$hostile_dir" > "$out/err-id.txt" 2>&1 && fail "id"
"$shoal" serve --library "$hostile_dir" --listen 127.0.0.1:0 > "$out/err-serve.txt" 2>&1 \
    && fail "serve on a missing folder"
set +e
"$shoal" serve --library "$work" --listen "${esc}[31m:1" > "$out/err-listen.txt" 2>&1
[ $? -eq 2 ] || fail "a bad --listen is not a usage error"
"$shoal" serve --library "$work" --name "n${esc}]0;x"$'\a' > "$out/err-name.txt" 2>&1
[ $? -eq 2 ] || fail "a bad --name is not a usage error"
"$shoal" serve --library "$work" --peer "h${rlo}:1" > "$out/err-peer.txt" 2>&1
[ $? -eq 2 ] || fail "a bad --peer is not a usage error"
"$shoal" "bad${esc}[2Jcommand" > "$out/err-command.txt" 2>&1
[ $? -eq 2 ] || fail "an unknown command is not a usage error"
set -e

echo "--- every output, checked:"
python3 "$here/check_output.py" "$out"/* || fail "raw control characters reached the output"

# The escapes are visible, not dropped, and JSON keeps the exact text.
grep -qF 'x\x1B]0;pwned\x07\r\x1B[2J' "$out/serve-text.txt" || fail "the Goodbye is not shown escaped"
grep -qF 'evil\u202Etxt.exe' "$out/peers-text.txt" || fail "the bidi name is not shown escaped"
grep -qF 'b-evil\u202Egpj.exe' "$out/ls-text.txt" || fail "the bidi item is not shown escaped"
grep -qF 'esc\x1B[2Jname' "$out/serve-text.err" || fail "the left-out folder is not said escaped"
python3 - "$out" "$(python3 "$peer_py" "$schema" show)" <<'EOF' || fail "JSON lost the exact text"
import json, sys
out, texts = sys.argv[1], json.loads(sys.argv[2])
events = [json.loads(l) for l in open(f"{out}/serve-json.json") if l.strip()]
goodbye = next(e["goodbyeReceived"] for e in events if "goodbyeReceived" in e)
refused = next(e["peerRefused"] for e in events if "peerRefused" in e)
found = [e["peerFound"]["name"] for e in events if "peerFound" in e]
assert goodbye["message"] == texts["hostile"], goodbye
assert refused["message"] == texts["hostile"], refused
assert texts["bidiName"] in found, found
items = json.load(open(f"{out}/ls-json.json"))["items"]
assert any(i["name"] == "b-evil\u202egpj.exe" for i in items), items
print("JSON keeps the hostile text exactly")
EOF
echo "--- a sample, as a terminal shows it:"
grep -e 'goodbye from' -e 'refused us' -e 'handshake from' "$out/serve-text.txt" | head -4
head -3 "$out/peers-text.txt"
cat "$out/err-listen.txt"
echo "PASS: no printer let a control character through"
