#!/usr/bin/env bash
# Downloads survive their sources' faults, with real processes on loopback over TLS:
#  1. kill -9 of one of two sources mid-download: completes from the other, byte-identical;
#  2. every source killed: exactly one downloadAllPeersGone and no failure (exit 5), progress
#     kept; a source restarted, `shoal get` resumes and fetches again no more than what was lost;
#  3. `shoal cancel` mid-download: exit 4, the download's bookkeeping and tasks gone, no item in
#     the library, partial state kept; `shoal get` then resumes to a byte-identical item;
#  4. `shoal stop` of the receiver mid-download: a clean stop within its deadline, exit 6, the
#     progress kept.
# The sources pace their uploads (--max-upload-rate) so that a download lasts seconds and "mid-
# download" is a state the test waits for (bounded polls), never a guess.
set -euo pipefail
shoal="$1"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/download-lib.sh"
rate=524288  # per source: ~4 MiB take seconds
total_bytes() { field "$1" bytesTotal; }

start_sources game --max-upload-rate "$rate"

# --- 1. one of two sources killed mid-download -----------------------------------------------
mkdir -p "$work/c"
serve gamma "$work/c" --peer "127.0.0.1:$a_port" --peer "127.0.0.1:$b_port"
until_true 30 lists_from game 2 || fail "gamma never saw game from both sources"
"$shoal" get game --library "$work/c" --json > "$work/one.json" 2> "$work/one.err" &
get_pid=$!
until_true 30 progress_at_least "$work/one.json" $((1536 * 1024)) || fail "no progress: $(tail -2 "$work/one.json")"
kill -KILL "$pid_beta"
wait "$pid_beta" 2> /dev/null || true
set +e; wait "$get_pid"; rc=$?; set -e
[ "$rc" -eq 0 ] || fail "get after losing beta: exit $rc: $(cat "$work/one.err") $(tail -2 "$work/one.json")"
same_item "$work/a/game" "$work/c/game"
echo "1. one source killed: $(share "$work/one.json" | tr '\n' ' ')"

# --- 2. every source killed, then one back -------------------------------------------------------
serve beta2 "$work/b" --chunk-size "$chunk" --max-upload-rate "$rate"
b_port="$(port_of "$work/beta2.json")"
mkdir -p "$work/d"
serve delta "$work/d" --peer "127.0.0.1:$a_port" --peer "127.0.0.1:$b_port"
until_true 30 lists_from game 2 "$work/d" || fail "delta never saw game from both sources"
"$shoal" get game --library "$work/d" --json > "$work/gone.json" 2> "$work/gone.err" &
get_pid=$!
until_true 30 progress_at_least "$work/gone.json" $((1536 * 1024)) || fail "no progress: $(tail -2 "$work/gone.json")"
kill -KILL "$pid_alpha" "$pid_beta2"
wait "$pid_alpha" "$pid_beta2" 2> /dev/null || true
set +e; wait "$get_pid"; rc=$?; set -e
[ "$rc" -eq 5 ] || fail "get with every source gone: exit $rc, not 5: $(cat "$work/gone.err") $(tail -2 "$work/gone.json")"
[ "$(count downloadAllPeersGone "$work/gone.json")" -eq 1 ] || fail "not exactly one downloadAllPeersGone"
ended "$work/gone.json" | grep -q '"outcome":"allPeersGone"' || fail "ended: $(ended "$work/gone.json")"
grep -q '"outcome":"failed"' "$work/gone.json" && fail "a failure was reported"
[ ! -e "$work/d/game" ] || fail "an incomplete item is in the library"
done_before="$(field "$work/gone.json" bytesDone)"
total="$(total_bytes "$work/gone.json")"
[ "$done_before" -gt 0 ] && [ "$done_before" -lt "$total" ] || fail "not mid-download: $done_before of $total"

serve alpha2 "$work/a" --chunk-size "$chunk" --max-upload-rate "$rate" --listen "127.0.0.1:$a_port"
until_true 30 lists_from game 1 "$work/d" || fail "delta never saw alpha again"
get_expect 0 game "$work/d" resume
same_item "$work/a/game" "$work/d/game"
again="$(fetched "$work/resume.json")"
missing=$((total - done_before))
# What was verified before the loss is never fetched again: the resume fetches what was missing,
# plus at most the chunks that were in flight (here: at most one window of 16 chunks).
[ "$again" -le $((missing + 16 * chunk)) ] || fail "resume fetched $again bytes, $missing were missing"
echo "2. all sources gone at $done_before of $total bytes; the resume fetched $again (missing: $missing)"

# --- 3. cancel mid-download, then resume ---------------------------------------------------------
mkdir -p "$work/e"
serve epsilon "$work/e" --peer "127.0.0.1:$a_port"
until_true 30 lists_from game 1 "$work/e" || fail "epsilon never saw game"
"$shoal" status --library "$work/e" --json | grep -q '"downloadTasks":0' || fail "tasks before any download"
"$shoal" get game --library "$work/e" --json > "$work/cancel.json" 2> "$work/cancel.err" &
get_pid=$!
until_true 30 progress_at_least "$work/cancel.json" $((1024 * 1024)) || fail "no progress: $(tail -2 "$work/cancel.json")"
"$shoal" ls --library "$work/e" --json | grep -q '"local":"downloading"' || fail "ls does not say downloading"
"$shoal" status --library "$work/e" | grep -q "game" || fail "status does not list the download"
"$shoal" cancel game --library "$work/e" > "$work/cancel.txt" || fail "shoal cancel failed"
grep -q "cancelled 'game'" "$work/cancel.txt" || fail "cancel said: $(cat "$work/cancel.txt")"
set +e; wait "$get_pid"; rc=$?; set -e
[ "$rc" -eq 4 ] || fail "cancelled get: exit $rc, not 4"
"$shoal" status --library "$work/e" --json > "$work/status.json"
grep -q '"downloads":\[\]' "$work/status.json" || fail "still listed: $(cat "$work/status.json")"
grep -q '"downloadTasks":0' "$work/status.json" || fail "tasks left: $(cat "$work/status.json")"
[ ! -e "$work/e/game" ] || fail "a cancelled item is in the library"
ls "$work"/e/.shoal/partial/*/progress > /dev/null || fail "the progress was not kept"
get_expect 0 game "$work/e" after
same_item "$work/a/game" "$work/e/game"
echo "3. cancelled at $(field "$work/cancel.json" bytesDone) bytes, resumed: ok"

# --- 4. the receiving peer stops mid-download: clean, within its deadline, progress kept -----------
mkdir -p "$work/z"
serve zeta "$work/z" --peer "127.0.0.1:$a_port"
until_true 30 lists_from game 1 "$work/z" || fail "zeta never saw game"
"$shoal" get game --library "$work/z" --json > "$work/stop.json" 2> "$work/stop.err" &
get_pid=$!
until_true 30 progress_at_least "$work/stop.json" $((768 * 1024)) || fail "no progress: $(tail -2 "$work/stop.json")"
"$shoal" stop --library "$work/z" > "$work/stop.txt" || fail "shoal stop failed"
grep -q "stopped cleanly" "$work/stop.txt" || fail "zeta's stop: $(cat "$work/stop.txt")"
wait "$pid_zeta" || fail "zeta exited non-zero"
set +e; wait "$get_pid"; rc=$?; set -e
[ "$rc" -eq 6 ] || fail "get of a stopping peer: exit $rc, not 6"
ls "$work"/z/.shoal/partial/*/progress > /dev/null || fail "the progress was not kept at shutdown"
[ ! -e "$work/z/game" ] || fail "an incomplete item is in the library"
echo "4. stopped mid-download: $(cat "$work/stop.txt")"
echo "download-faults: ok"
