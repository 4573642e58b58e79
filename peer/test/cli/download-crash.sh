#!/usr/bin/env bash
# Crash consistency of downloads, with real processes on loopback over TLS: the receiving daemon is
# killed with -9 at $SHOAL_KILLS random moments of a download from two sources (10 in `./dev test`,
# 100 under the CTest label `soak`) and restarted each time. After every kill the item is either
# absent from the library or there complete and byte-identical — never a partial item under its
# final name — and the download always ends byte-identical. Then a daemon whose file size limit
# (RLIMIT_FSIZE) is below the item's largest file fails the download with one clear downloadFailed
# (exit 3, the path and the errno text), keeps running and keeps the partial state.
# The kill moments are random delays after a download started: they choose when to strike, they
# synchronise nothing (every wait is a bounded poll).
set -euo pipefail
shoal="$1"
kills="${SHOAL_KILLS:-10}"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/download-lib.sh"

start_sources game --max-upload-rate 1048576
mkdir -p "$work/c"
partial_ok() {  # nothing but a complete, identical item under the final name
  [ ! -e "$work/c/game" ] || same_item "$work/a/game" "$work/c/game"
}

completed=0
for i in $(seq 1 "$kills"); do
  serve "gamma$i" "$work/c" --peer "127.0.0.1:$a_port" --peer "127.0.0.1:$b_port"
  until_true 30 lists_from game 2 || fail "kill $i: gamma never saw game from both sources"
  "$shoal" get game --library "$work/c" --json > "$work/get$i.json" 2> /dev/null &
  get_pid=$!
  until_true 30 grep -q '"downloadStarted"\|already in the library' "$work/get$i.json" \
      || fail "kill $i: the download did not start"
  sleep "0.$(printf '%03d' $((RANDOM % 1000)))"  # the random moment (see the header)
  pid_var="pid_gamma$i"
  kill -KILL "${!pid_var}"
  wait "${!pid_var}" 2> /dev/null || true
  wait "$get_pid" 2> /dev/null || true
  partial_ok
  if [ -e "$work/c/game" ]; then
    # It finished before the kill: start over, so every kill strikes a download.
    completed=$((completed + 1))
    rm -rf "$work/c/game"
  fi
done
serve gamma "$work/c" --peer "127.0.0.1:$a_port" --peer "127.0.0.1:$b_port"
until_true 30 lists_from game 2 || fail "gamma never saw game again"
get_expect 0 game "$work/c" last
same_item "$work/a/game" "$work/c/game"
echo "crash: $kills kills ($completed after the download had finished), the item byte-identical"

# --- a file size limit below the item: one clear failure, nothing lost -------------------------
mkdir -p "$work/f"
bash -c 'ulimit -f 2048; exec "$0" serve --library "$1" --listen 127.0.0.1:0 --name phi --json \
    --peer "$2"' "$shoal" "$work/f" "127.0.0.1:$a_port" > "$work/phi.json" 2> "$work/phi.err" &
pids+=($!)
pid_phi=$!
until_true 20 grep -q '"started"' "$work/phi.json" || fail "phi did not start: $(cat "$work/phi.err")"
until_true 30 lists_from game 1 "$work/f" || fail "phi never saw game"
get_expect 3 game "$work/f" full
[ "$(grep -c '"outcome":"failed"' "$work/full.json")" -eq 1 ] || fail "not one failure: $(cat "$work/full.json")"
ended "$work/full.json" | grep -q 'big.bin.*File too large' || fail "unclear failure: $(ended "$work/full.json")"
kill -0 "$pid_phi" || fail "phi died: $(tail -3 "$work/phi.err")"
"$shoal" status --library "$work/f" --json | grep -q '"downloads":\[\]' || fail "phi still lists the download"
ls "$work"/f/.shoal/partial/*/manifest > /dev/null || fail "the partial state was not kept"
[ ! -e "$work/f/game" ] || fail "a failed item is in the library"
echo "disk full: $(ended "$work/full.json" | grep -o '"message":"[^"]*"')"
echo "download-crash: ok"
