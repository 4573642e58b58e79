#!/usr/bin/env bash
# Opens a shoal-conform HTML report in Debian's chromium, headless and offline, and checks that it
# rendered: its script writes "rendered N cases" into the page, N must equal results.json's count.
set -euo pipefail
dir="$1"
browser="$(command -v chromium || true)"
[ -n "$browser" ] || { echo "chromium is not installed (./dev setup installs it)"; exit 1; }
[ -f "$dir/report.html" ] && [ -f "$dir/results.json" ] || { echo "no report in $dir"; exit 1; }
expected="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["cases"])' "$dir/results.json")"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
dom="$(timeout 90 "$browser" --headless --no-sandbox --disable-gpu --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --dump-dom "file://$(realpath "$dir/report.html")" 2>/dev/null)"
if grep -q "rendered $expected cases" <<<"$dom"; then
  echo "report rendered: $expected cases"
else
  echo "expected 'rendered $expected cases' in the rendered page; got:"
  grep -o 'id="rendered">[^<]*' <<<"$dom" || echo "(no rendered marker)"
  exit 1
fi
