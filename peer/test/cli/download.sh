#!/usr/bin/env bash
# Real `shoal` processes on loopback over TLS: a receiver downloads a multi-file item from two
# sources at once with `shoal get`; both sources deliver bytes, every file is byte-identical to the
# source, the item is in the receiver's library (and `shoal ls` says so), the sources hear the
# receiver's LibraryChanged, and the download's bookkeeping is gone afterwards.
# Waits are bounded polls with deadlines; nothing sleeps to synchronise.
set -euo pipefail
shoal="$1"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/download-lib.sh"

# --- usage and refusals ------------------------------------------------------------------------
mkdir -p "$work/c"
serve gamma "$work/c"
set +e
"$shoal" get --library "$work/c" 2> "$work/err.txt"; rc=$?
[ "$rc" -eq 2 ] || fail "get without ITEM: exit $rc, not 2"
"$shoal" get ../x --library "$work/c" 2> "$work/err.txt"; rc=$?
[ "$rc" -eq 3 ] || fail "get ../x: exit $rc, not 3: $(cat "$work/err.txt")"
grep -q "not an item id" "$work/err.txt" || fail "unclear refusal: $(cat "$work/err.txt")"
"$shoal" cancel nothing --library "$work/c" 2> "$work/err.txt"; rc=$?
[ "$rc" -eq 1 ] || fail "cancel of nothing: exit $rc, not 1"
grep -q "no download of 'nothing' is running" "$work/err.txt" || fail "unclear: $(cat "$work/err.txt")"
set -e
"$shoal" stop --library "$work/c" > /dev/null
wait "$pid_gamma"

# --- two sources, one receiver -----------------------------------------------------------------
start_sources game
serve gamma "$work/c" --peer "127.0.0.1:$a_port" --peer "127.0.0.1:$b_port"
until_true 30 lists_from game 2 || fail "gamma never saw game from both sources"

get_expect 0 game "$work/c" get
ended "$work/get.json" | grep -q '"outcome":"finished"' || fail "no finished event: $(tail -3 "$work/get.json")"
same_item "$work/a/game" "$work/c/game"
[ "$(count downloadProgress "$work/get.json")" -ge 1 ] || fail "no progress event"

# Both sources delivered chunk bytes.
share "$work/get.json" > "$work/share.txt"
[ "$(wc -l < "$work/share.txt")" -eq 2 ] || fail "not two sources: $(cat "$work/share.txt")"
while read -r peer bytes; do
  [ "$bytes" -gt 0 ] || fail "source $peer delivered nothing: $(cat "$work/share.txt")"
done < "$work/share.txt"
echo "shares: $(tr '\n' ' ' < "$work/share.txt")"

# In the library, listed by `shoal ls`, nothing left of the download, the sources told.
"$shoal" ls --library "$work/c" --json | grep -q '"local":"inLibrary"' || fail "ls: not in the library"
"$shoal" status --library "$work/c" --json > "$work/status.json"
grep -q '"downloads":\[\]' "$work/status.json" || fail "a download is still listed: $(cat "$work/status.json")"
grep -q '"downloadTasks":0' "$work/status.json" || fail "download tasks left: $(cat "$work/status.json")"
[ -z "$(ls -A "$work/c/.shoal/partial" 2>/dev/null)" ] || fail "partial folder left behind"
c_id="$("$shoal" id --library "$work/c")"
until_true 10 grep -q "\"libraryChanged\":{\"peerId\":\"$c_id\".*\"items\":1" "$work/alpha.json" \
    || fail "alpha never heard gamma's LibraryChanged"

# Asked again: already in the library, exit 0 at once.
"$shoal" get game --library "$work/c" > "$work/again.txt" || fail "get of a present item failed"
grep -q "already in the library" "$work/again.txt" || fail "again: $(cat "$work/again.txt")"
echo "download: ok"
