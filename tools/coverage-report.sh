#!/usr/bin/env bash
# The report of `./dev coverage`: merges BUILD/profiles/*.profraw, then, over every instrumented
# binary of BUILD, reports branch and region coverage of three areas, writes the HTML report to
# BUILD/html and lists every branch of codec/src/validate.c++ and codec/src/path.c++ never taken
# (so "every reject branch hit" can be checked). Usage: tools/coverage-report.sh [BUILD]
# Exits non-zero only when the tools fail, never because of a coverage figure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(cd "${1:-$root/build/coverage}" && pwd)"
profdata="$out/coverage.profdata"
cd "$root"

# Areas: name, then its sources (relative to the root).
codec_sources=(codec/src/*.c++)
areas=(
  "codec|${codec_sources[*]}"
  "path validation|codec/src/path.c++ codec/src/text.c++"
  "chunk verification|codec/src/manifest.c++ peer/src/runtime/request-server.c++ peer/src/library/item.c++"
)
untaken_sources=(codec/src/validate.c++ codec/src/path.c++)

sources=()
for area in "${areas[@]}"; do
  for s in ${area#*|}; do
    [[ " ${sources[*]} " == *" $root/$s "* ]] || sources+=("$root/$s")
  done
done

shopt -s nullglob
profiles=("$out"/profiles/*.profraw)
if [ "${#profiles[@]}" -eq 0 ]; then
  echo "coverage-report: no profiles in $out/profiles" >&2
  exit 1
fi
printf '%s\n' "${profiles[@]}" > "$out/profiles.list"
llvm-profdata-14 merge -sparse -f "$out/profiles.list" -o "$profdata"

# Every executable the build produced with a coverage mapping: tests, fuzz replay drivers, shoal.
objects=()
while IFS= read -r f; do
  # grep reads to the end (no -q): under pipefail an early exit would fail llvm-readelf with SIGPIPE.
  if llvm-readelf-14 -S "$f" 2>/dev/null | grep __llvm_covmap >/dev/null; then objects+=("$f"); fi
done < <(find "$out" -path '*/CMakeFiles' -prune -o -type f -perm -u+x -print | sort)
if [ "${#objects[@]}" -eq 0 ]; then
  echo "coverage-report: no instrumented binaries in $out" >&2
  exit 1
fi
cov_args=(-instr-profile="$profdata" "${objects[0]}")
for o in "${objects[@]:1}"; do cov_args+=(-object "$o"); done

echo "${#profiles[@]} profiles, ${#objects[@]} binaries: ${objects[*]##*/}"
echo
# llvm-cov may warn that "N functions have mismatched data" (a name that binaries compile
# differently, such as main): the report shows it once, the later runs keep it in llvm-cov.log.
llvm-cov-14 report -use-color=false "${cov_args[@]}" "${sources[@]}" | sed "s|$root/||"
cov() {
  if ! llvm-cov-14 "$@" 2>>"$out/llvm-cov.log"; then
    cat "$out/llvm-cov.log" >&2
    exit 1
  fi
}
rm -rf "$out/html" "$out/llvm-cov.log"
cov show "${cov_args[@]}" -format=html -output-dir "$out/html" -show-branches=count \
  -show-line-counts-or-regions "${sources[@]}"
cov export "${cov_args[@]}" "${sources[@]}" > "$out/coverage.json"
cov show -use-color=false "${cov_args[@]}" -show-branches=count \
  "${untaken_sources[@]/#/$root/}" > "$out/untaken.txt"

python3 - "$root" "$out/coverage.json" "$out/untaken.txt" "${areas[@]}" <<'PY'
import json, re, subprocess, sys

root, export, untaken, areas = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
data = json.load(open(export))["data"][0]
files = {f["filename"]: f["summary"] for f in data["files"]}

def pct(covered, count):
    return "%6.1f %%" % (100.0 * covered / count) if count else "     n/a"

print("\narea                 branches          regions           files")
below = []
for area in areas:
    name, srcs = area.split("|")
    srcs = [root + "/" + s for s in srcs.split()]
    b = [0, 0]
    r = [0, 0]
    for s in srcs:
        summary = files.get(s)
        if summary is None:
            continue  # no binary holds it
        b[0] += summary["branches"]["covered"]; b[1] += summary["branches"]["count"]
        r[0] += summary["regions"]["covered"]; r[1] += summary["regions"]["count"]
    print("%-20s %s %-9s %s %-9s %d" % (name, pct(*b), "%d/%d" % tuple(b), pct(*r),
                                         "%d/%d" % tuple(r), len(srcs)))
    if b[1] and b[0] < 0.9 * b[1]:
        below.append((name, set(srcs)))

# Functions with branches never taken, for each area below 90 %.
if below:
    fns = {}
    for f in data["functions"]:
        if not f["branches"]:
            continue
        key = (f["name"], f["filenames"][0])
        missed = 0
        for br in f["branches"]:
            missed += (br[4] == 0) + (br[5] == 0)
        total = 2 * len(f["branches"])
        old = fns.get(key)
        if old is None or missed < old[0]:
            fns[key] = (missed, total)
    names = sorted({k[0] for k in fns})
    demangled = dict(zip(names, subprocess.run(
        ["llvm-cxxfilt-14"], input="\n".join(names), capture_output=True, text=True,
        check=True).stdout.splitlines()))
    for name, srcs in below:
        print("\n%s is below 90 %% branch coverage; functions with branches never taken:" % name)
        rows = sorted(((m, t, demangled.get(n, n), fl) for (n, fl), (m, t) in fns.items()
                       if fl in srcs and m), key=lambda x: (-x[0], x[2]))
        for m, t, n, fl in rows[:25]:
            n = re.sub(r"\(.*", "", n.replace("shoal::", "").replace("(anonymous namespace)::", ""))
            print("  %3d/%-3d missed  %-60s %s" % (m, t, n[:60], fl[len(root) + 1:]))
        if len(rows) > 25:
            print("  ... %d more" % (len(rows) - 25))

# Branches of validate.c++ and path.c++ never taken, one line per condition: the direction never
# taken, or "never reached". Validator::bad() always returns false, so the True side of a
# condition that is a bad(...) call is never taken by construction: its reject was hit when the
# False side was, and it is listed only when never reached.
print("\nbranches never taken in codec/src/validate.c++ and codec/src/path.c++ "
      "(file:line:col, direction, source):")
current, seen, lines_of, constant = None, set(), {}, 0
for line in open(untaken):
    m = re.match(r"^(/\S+\.c\+\+):$", line.strip())
    if m:
        current = m.group(1)
        continue
    m = re.search(r"Branch \((\d+):(\d+)\): \[True: ([^,]+), False: ([^\]]+)\]", line)
    if not m or current is None:
        continue
    ln, col, t, f = int(m.group(1)), int(m.group(2)), m.group(3).strip(), m.group(4).strip()
    if t != "0" and f != "0":
        continue
    key = (current, ln, col)
    if key in seen:
        continue
    seen.add(key)
    if current not in lines_of:
        lines_of[current] = open(current, errors="replace").read().splitlines()
    source = lines_of[current][ln - 1] if ln <= len(lines_of[current]) else ""
    text = source.strip()
    if t == "0" and f != "0" and source[col - 1:].startswith("bad("):
        constant += 1
        continue
    what = "never reached" if t == "0" and f == "0" else ("True never" if t == "0" else "False never")
    print("  %s:%d:%d  %-13s  %s" % (current[len(root) + 1:], ln, col, what, text[:90]))
if len(seen) == constant:
    print("  none")
if constant:
    print("  (and %d bad(...) calls whose True side is never taken by construction; each of "
          "their rejects was hit)" % constant)
PY
echo
echo "HTML report: ${out#"$root"/}/html/index.html"
