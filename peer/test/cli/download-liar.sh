#!/usr/bin/env bash
# A lying source, with real processes on loopback over TLS: `liar` serves every chunk with one bit
# flipped (the test build's fault switch `shoal serve --mutant corrupt-chunks`), `honest` serves the
# same item, paced. The receiver reports the liar's bad chunks and drops it at the fifth ([CHK-8]);
# mid-download, every chunk-sized region of the partial files is either never written (zeros) or
# exactly the source's bytes: no corrupt byte ever reaches the disk; the item completes from the
# honest source, byte-identical. Exit 77 (skipped) when the binary has no fault switches.
set -euo pipefail
shoal="$1"
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/download-lib.sh"
"$shoal" serve --mutant list > /dev/null 2>&1 || { echo "no --mutant in this build: skipped"; exit 77; }

make_item "$work/a/game"
mkdir -p "$work/b" "$work/c"
cp -a "$work/a/game" "$work/b/game"
serve honest "$work/a" --chunk-size "$chunk" --max-upload-rate 524288
serve liar "$work/b" --chunk-size "$chunk" --mutant corrupt-chunks
serve gamma "$work/c" --peer "127.0.0.1:$(port_of "$work/honest.json")" \
    --peer "127.0.0.1:$(port_of "$work/liar.json")"
until_true 30 lists_from game 2 || fail "gamma never saw game from both sources"
liar_id="$("$shoal" id --library "$work/b")"

"$shoal" get game --library "$work/c" --json > "$work/get.json" 2> "$work/get.err" &
get_pid=$!
until_true 30 grep -q "\"downloadSourceDropped\":{[^}]*\"peerId\":\"$liar_id\"[^}]*\"reason\":\"badChunks\"" \
    "$work/get.json" || fail "the liar was not dropped: $(grep -c downloadBadChunk "$work/get.json") bad chunks"

# Mid-download (the honest source is paced): only zeros or the source's bytes in the partial files.
python3 - "$work/a/game" "$work"/c/.shoal/partial/*/item "$chunk" <<'EOF' || fail "a corrupt byte reached the partial file"
import os, sys
source, partial, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
written = 0
for folder, _, files in os.walk(partial):
    for name in files:
        path = os.path.join(folder, name)
        mine = open(path, "rb").read()
        theirs = open(os.path.join(source, os.path.relpath(path, partial)), "rb").read()
        for at in range(0, len(mine), chunk):
            region = mine[at:at + chunk]
            if region == theirs[at:at + chunk]:
                written += any(region)
            elif any(region):
                sys.exit(f"{path} at {at}: neither unwritten nor the source's bytes")
print(f"partial files: {written} chunks written, every one the source's bytes")
EOF

set +e; wait "$get_pid"; rc=$?; set -e
[ "$rc" -eq 0 ] || fail "get: exit $rc: $(cat "$work/get.err") $(tail -2 "$work/get.json")"
same_item "$work/a/game" "$work/c/game"
bad="$(grep -c "\"downloadBadChunk\":{[^}]*\"peerId\":\"$liar_id\"" "$work/get.json" || true)"
[ "$bad" -ge 1 ] && [ "$bad" -le 5 ] || fail "$bad bad-chunk events for the liar (1..5 expected)"
echo "download-liar: $bad bad chunks reported, the liar dropped, the item byte-identical"
