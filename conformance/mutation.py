#!/usr/bin/env python3
"""The conformance suite's self-test by mutation (docs/conformance.md, "The mutation self-test").

The reference peer, built with SHOAL_MUTANTS, takes `shoal serve --mutant NAME`: one deliberate
defect (mutant/include/shoal/mutant.h). This script runs shoal-conform against it with each
mutant switched on and records which cases FAIL: the mutation matrix. Every mutant must be caught
by at least one case, and every case must fail against at least one mutant.

  mutation.py OPTIONS list                        the mutants of this build
  mutation.py OPTIONS catch MUTANT CASE-GLOB...   those cases must FAIL against MUTANT
  mutation.py OPTIONS soak MATRIX [--update]      every case x every mutant (by hand: an hour)
  mutation.py OPTIONS check MATRIX                the CI check: each mutant against its cheapest
                                                  catching case, each case against one mutant
  mutation.py html MATRIX OUT.html                the matrix as one self-contained HTML file
  mutation.py summarize MATRIX                    recompute the summary (no runs)

OPTIONS: --shoal PATH --conform PATH --launch TEMPLATE [--control TEMPLATE] [-j N] [--temp DIR].
TEMPLATE is shoal-conform's --launch command with `--mutant {mutant}` in it.

Rules (what "caught" means):
- A verdict of FAIL, or NON-STRICT for a SHOULD case, is a catch.
- A mutant whose sanity case fails is *loud*: it breaks every handshake, so every case fails
  against it. A loud mutant only counts for the cases of the requirements it declares it breaks
  (`shoal serve --mutant list`, third column); its other catches prove nothing. The same holds
  for the TIMING mutants, whose other catches depend on how the stream splits frames.
- Cases run in TLS mode; a case the baseline (no mutant) reports UNIMPLEMENTED in TLS mode (a
  plaintext-only case) runs in plaintext mode.
"""

import argparse
import concurrent.futures
import datetime
import fnmatch
import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

FORMAT = "shoal-mutation/1"
CAUGHT = ("FAIL", "NON-STRICT")
BASELINE = "none"
CHUNK = 24  # cases per shoal-conform run in the check, so that the workers stay balanced
# The case id prefix of each area a mutant names (`shoal serve --mutant list`, second column).
AREA_PREFIX = {"transport": "tr", "framing": "fr", "handshake": "hs", "requests": "rq",
               "library": "lib", "manifests": "man", "chunks": "chk", "liveness": "liv",
               "goodbye": "bye", "errors": "err", "discovery": "dsc"}
# Areas whose cases run only inside a network namespace: conformance/test/discovery.sh (CTest
# conformance-discovery) checks their mutants; the soak and the check leave them out.
NETNS_AREAS = {"discovery"}
# Mutants whose defect can show in a case of any area: the related scope runs them everywhere.
BROAD = {"answer-twice", "wrong-answer-id", "talks-after-error", "ignore-bad-frames",
         "no-close-notify", "error-code-outside-table"}
# Mutants whose defect shows outside their own cases only when the stream happens to join or split
# frames (a matter of timing): like a loud mutant, only their catches in the cases of the
# requirements they name count.
TIMING = {"reads-are-frames"}


def die(message):
    print(f"mutation.py: {message}", file=sys.stderr)
    sys.exit(2)


# --- running shoal and shoal-conform -------------------------------------------------------------


class Runner:
    def __init__(self, args):
        self.shoal = args.shoal
        self.conform = args.conform
        self.launch = args.launch
        self.control = args.control
        self.jobs = args.jobs
        self.temp = args.temp
        if "{mutant}" not in self.launch:
            die("--launch must contain --mutant {mutant}")

    def mutants(self):
        """[{name, area, requirements, breaks}] from `shoal serve --mutant list`."""
        out = subprocess.run([self.shoal, "serve", "--mutant", "list"], capture_output=True,
                             text=True)
        if out.returncode != 0:
            die(f"`shoal serve --mutant list` failed: {out.stderr.strip()}")
        mutants = []
        for line in out.stdout.splitlines():
            parts = line.split(None, 3)
            if len(parts) == 4 and parts[1] not in NETNS_AREAS:
                mutants.append({"name": parts[0], "area": parts[1],
                                "requirements": parts[2].split(","), "breaks": parts[3]})
        return mutants

    def cases(self):
        """[{id, role, level, title, requirement}] from `shoal-conform --list`."""
        out = subprocess.run([self.conform, "--list"], capture_output=True, text=True, check=True)
        cases = []
        for line in out.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) != 4 or parts[0].startswith("sanity/"):
                continue
            case_id, role, level, title = parts
            cases.append({"id": case_id, "role": role, "level": level, "title": title,
                          "requirement": case_id.split("/")[1]})
        return cases

    def run(self, mutant, case_ids, plaintext=False, jobs=None):
        """Verdicts {case id: (verdict, ms, why)} of `case_ids` (None: all) against `mutant`,
        sanity/first included."""
        report = tempfile.mkdtemp(prefix="shoal-mutation-", dir=self.temp)
        try:
            cmd = [self.conform, "--launch", self.launch, "--define", f"mutant={mutant}",
                   "--keep-going", "-j", str(jobs or self.jobs), "--report", report,
                   "--temp", self.temp]
            if self.control:
                cmd += ["--control", self.control]
            if plaintext:
                cmd.append("--plaintext")
            for case_id in case_ids or []:
                cmd += ["--filter", case_id]
            done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True)
            path = os.path.join(report, "results.json")
            if not os.path.exists(path):
                die(f"shoal-conform wrote no results ({done.returncode}): {done.stderr[-2000:]}")
            with open(path) as f:
                results = json.load(f)
            verdicts = {}
            for c in results["cases"]:
                why = c.get("reason") or (f"{c['broken']}: expected {c['expected']}; actual: "
                                          f"{c['actual']}" if c.get("broken") else "")
                verdicts[c["id"]] = (c["verdict"], round(c["ms"]), why[:300])
            return verdicts
        finally:
            shutil.rmtree(report, ignore_errors=True)


def caught(verdict):
    return verdict in CAUGHT


# --- the matrix ------------------------------------------------------------------------------------


def load(path):
    with open(path) as f:
        matrix = json.load(f)
    if matrix.get("format") != FORMAT:
        die(f"{path}: not a {FORMAT} file")
    return matrix


def save(matrix, path):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(matrix, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def counts_for(mutant, case):
    """Whether a catch of `case` by `mutant` counts (see the module's rules)."""
    narrow = mutant.get("loud") or mutant["name"] in TIMING
    return not narrow or case["requirement"] in mutant["requirements"]


def catches(matrix):
    """{(mutant, case id)} of the catches that count, flaky ones left out."""
    mutants = {m["name"]: m for m in matrix["mutants"]}
    out = set()
    for case in matrix["cases"]:
        for name, cell in matrix["results"].get(case["id"], {}).items():
            if name in mutants and caught(cell[0]) and "flaky" not in cell[2:]:
                if counts_for(mutants[name], case):
                    out.add((name, case["id"]))
    return out


def load_exempt(path):
    """[(glob, reason)] of the cases no mutant can fail (mutation-exempt.txt)."""
    out = []
    if path and os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    glob, _, reason = line.partition(" ")
                    out.append((glob, reason.strip()))
    return out


def summary(matrix, exempt=()):
    got = catches(matrix)
    names = [m["name"] for m in matrix["mutants"]]
    ids = [c["id"] for c in matrix["cases"]]
    caught_mutants = {m for m, _ in got}
    able_cases = {c for _, c in got}
    return {
        "mutants": len(names),
        "mutantsCaught": len(caught_mutants),
        "uncaughtMutants": [m for m in names if m not in caught_mutants],
        "cases": len(ids),
        "casesAbleToFail": len(able_cases),
        "casesNeverFailing": [c for c in ids if c not in able_cases
                              and not any(fnmatch.fnmatchcase(c, g) for g, _ in exempt)],
        "casesExempt": [c for c in ids if c not in able_cases
                        and any(fnmatch.fnmatchcase(c, g) for g, _ in exempt)],
        "staleExemptions": [g for g, _ in exempt
                            if not any(fnmatch.fnmatchcase(c, g) for c in ids if c not in able_cases)],
        "loudMutants": [m["name"] for m in matrix["mutants"] if m.get("loud")],
        "baselineFailures": [c for c, cell in matrix.get("baseline", {}).items()
                             if cell[0] not in ("OK", "UNIMPLEMENTED")],
    }


def plan(matrix):
    """{mutant: [case ids]} for the CI check: each mutant with its cheapest catching case, and
    each case not yet in the plan with its cheapest catching mutant (preferring mutants already
    planned)."""
    got = catches(matrix)
    cost = {}
    for case_id, row in matrix["results"].items():
        for name, cell in row.items():
            cost[(name, case_id)] = cell[1]
    chosen = {}
    for m in matrix["mutants"]:
        options = sorted((cost[p], p[1]) for p in got if p[0] == m["name"])
        if options:
            chosen.setdefault(m["name"], set()).add(options[0][1])
    planned = {c for cs in chosen.values() for c in cs}
    for case in matrix["cases"]:
        if case["id"] in planned:
            continue
        options = sorted((cost[(name, case["id"])], name not in chosen, name)
                         for name, c in got if c == case["id"])
        if options:
            chosen.setdefault(options[0][2], set()).add(case["id"])
    return {m: sorted(cs) for m, cs in chosen.items()}


# --- commands --------------------------------------------------------------------------------------


def cmd_list(runner, _args):
    for m in runner.mutants():
        print(f"{m['name']:32} {m['area']:10} {','.join(m['requirements']):20} {m['breaks']}")


def cmd_catch(runner, args):
    cases = [c["id"] for c in runner.cases()
             if any(fnmatch.fnmatchcase(c["id"], g) for g in args.cases)]
    if not cases:
        die("no case matches")
    verdicts = runner.run(args.mutant, cases)
    bad = [(c, verdicts.get(c, ("NOT RUN", 0, ""))) for c in cases
           if not caught(verdicts.get(c, ("NOT RUN",))[0])]
    for case_id, (verdict, _, why) in bad:
        print(f"NOT CAUGHT  {args.mutant} by {case_id}: {verdict} {why}")
    print(f"{len(cases) - len(bad)} of {len(cases)} cases catch {args.mutant}")
    sys.exit(1 if bad else 0)


def run_mutant(runner, name, cases, plaintext_ids):
    """One mutant's verdicts: TLS for everything, plaintext for the plaintext-only cases."""
    tls_ids = None if cases is None else [c for c in cases if c not in plaintext_ids]
    verdicts = {}
    if tls_ids is None or tls_ids:
        verdicts.update(runner.run(name, tls_ids))
    pt = [c for c in (cases if cases is not None else plaintext_ids) if c in plaintext_ids]
    if pt:
        plain = runner.run(name, pt, plaintext=True)
        verdicts.update({c: v for c, v in plain.items() if c in plaintext_ids})
    return verdicts


def related(mutant, cases):
    """The cases of the mutant's own area and of the requirements it declares."""
    if mutant["name"] in BROAD:
        return None
    prefix = AREA_PREFIX.get(mutant["area"])
    return [c["id"] for c in cases
            if c["id"].split("/")[0] == prefix or c["requirement"] in mutant["requirements"]]


def cmd_soak(runner, args):
    started = time.monotonic()
    mutants = runner.mutants()
    cases = runner.cases()
    ids = [c["id"] for c in cases]
    old = load(args.matrix) if args.update and os.path.exists(args.matrix) else None
    matrix = {"format": FORMAT, "mutants": [], "cases": cases, "results": {}, "baseline": {}}
    known_cases, known_mutants = set(), set()
    if old:
        known_cases = {c["id"] for c in old["cases"]}
        known_mutants = {m["name"] for m in old["mutants"]} - set(args.redo)
        matrix["results"] = {c: {m: cell for m, cell in row.items() if m not in args.redo}
                             for c, row in old["results"].items() if c in ids}
        matrix["baseline"] = {c: v for c, v in old["baseline"].items() if c in ids}

    # The baseline decides each case's mode and must pass everything.
    new_ids = [c for c in ids if c not in known_cases]
    if not old or new_ids:
        base = runner.run(BASELINE, None if not old else new_ids)
        plain_ids = {c for c in (new_ids if old else ids) if base.get(c, ("",))[0] ==
                     "UNIMPLEMENTED"}
        if plain_ids:
            base.update(runner.run(BASELINE, sorted(plain_ids), plaintext=True))
        for c in new_ids if old else ids:
            matrix["baseline"][c] = list(base.get(c, ("NOT RUN", 0, "")))
            if c in plain_ids:
                matrix["baseline"][c].append("plaintext")
    plaintext_ids = {c for c, cell in matrix["baseline"].items() if "plaintext" in cell}
    for case in cases:
        case["mode"] = "plaintext" if case["id"] in plaintext_ids else "tls"
    failing = [c for c, cell in matrix["baseline"].items() if cell[0] not in ("OK",)
               and not (cell[0] == "UNIMPLEMENTED" and c in plaintext_ids)]
    if failing:
        print(f"warning: the reference fails without a mutant: {', '.join(failing)}",
              file=sys.stderr)

    for i, m in enumerate(mutants):
        scope = None if args.scope == "all" else related(m, cases)
        fresh = m["name"] not in known_mutants
        if fresh:
            todo = scope
        else:
            todo = [c for c in (ids if scope is None else scope) if c in new_ids]
        if todo == []:
            loud = next(x.get("loud", False) for x in old["mutants"] if x["name"] == m["name"])
            m["loud"] = loud
            matrix["mutants"].append(m)
            continue
        t0 = time.monotonic()
        verdicts = run_mutant(runner, m["name"], todo, plaintext_ids)
        if fresh:
            m["loud"] = verdicts.get("sanity/first", ("",))[0] != "OK"
        else:
            m["loud"] = next(x.get("loud", False) for x in old["mutants"]
                             if x["name"] == m["name"])
        matrix["mutants"].append(m)
        for c in todo if todo is not None else ids:
            matrix["results"].setdefault(c, {})[m["name"]] = list(
                verdicts.get(c, ("NOT RUN", 0, ""))[:2])
        n = sum(1 for c in ids
                if caught(matrix["results"].get(c, {}).get(m["name"], ("NOT RUN",))[0]))
        print(f"[{i + 1}/{len(mutants)}] {m['name']}: caught by {n} cases"
              f"{' (loud)' if m['loud'] else ''} in {time.monotonic() - t0:.0f} s", flush=True)
        save(matrix, args.matrix)  # progress survives an interrupted soak

    # Confirm the catches the CI check will rely on: a catch that does not repeat is flaky.
    for attempt in range(args.rounds):
        result = execute_plan(runner, matrix, plan(matrix))
        flaky = [(m, c) for m, c, verdict, _ in result["misses"]]
        for m, c in flaky:
            matrix["results"][c][m] = matrix["results"][c][m][:2] + ["flaky"]
        if not flaky:
            break
        print(f"{len(flaky)} catches did not repeat (marked flaky): "
              f"{', '.join(f'{m}/{c}' for m, c in flaky)}", flush=True)
    matrix["generated"] = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    matrix["soakSeconds"] = round(time.monotonic() - started)
    matrix["scope"] = args.scope
    matrix["summary"] = summary(matrix, load_exempt(args.exempt))
    save(matrix, args.matrix)
    if args.html:
        write_html(matrix, args.html)
    report_summary(matrix["summary"])
    sys.exit(0 if complete(matrix["summary"]) else 1)


def execute_plan(runner, matrix, chosen):
    """Runs the planned (mutant, case) pairs on `runner.jobs` workers, one shoal-conform run (-j 1)
    each; returns the misses (pairs that did not catch) and the quiet mutants found loud."""
    plaintext_ids = {c["id"] for c in matrix["cases"] if c.get("mode") == "plaintext"}
    loud = {m["name"] for m in matrix["mutants"] if m.get("loud")}
    batches = []
    for name, cases in sorted(chosen.items()):
        for mode in ("tls", "plaintext"):
            part = [c for c in cases if (c in plaintext_ids) == (mode == "plaintext")]
            for i in range(0, len(part), CHUNK):
                batches.append((name, part[i:i + CHUNK], mode == "plaintext"))
    batches.sort(key=lambda b: -len(b[1]))  # large first: the workers end together
    misses, louder = [], set()

    def one(batch):
        name, cases, plaintext = batch
        return batch, runner.run(name, cases, plaintext=plaintext, jobs=1)

    with concurrent.futures.ThreadPoolExecutor(max_workers=runner.jobs) as pool:
        for (name, cases, _), verdicts in pool.map(one, batches):
            if name not in loud and verdicts.get("sanity/first", ("",))[0] != "OK":
                louder.add(name)
            for c in cases:
                verdict, _, why = verdicts.get(c, ("NOT RUN", 0, ""))
                if not caught(verdict):
                    misses.append((name, c, verdict, why))
    return {"misses": misses, "louder": sorted(louder), "pairs": sum(len(b[1]) for b in batches),
            "runs": len(batches)}


def stale(runner, matrix):
    """What changed since the matrix was made: cases or mutants it does not know."""
    ids = {c["id"] for c in matrix["cases"]}
    names = {m["name"] for m in matrix["mutants"]}
    new_cases = [c["id"] for c in runner.cases() if c["id"] not in ids]
    new_mutants = [m["name"] for m in runner.mutants() if m["name"] not in names]
    return new_cases, new_mutants


def cmd_check(runner, args):
    started = time.monotonic()
    matrix = load(args.matrix)
    if args.html:
        write_html(matrix, args.html)
    problems = []
    new_cases, new_mutants = stale(runner, matrix)
    if new_cases or new_mutants:
        problems.append("the matrix is out of date (run the soak with --update): new cases "
                        f"{new_cases or '-'}, new mutants {new_mutants or '-'}")
    cited = {c["requirement"] for c in runner.cases()}
    for m in runner.mutants():
        unknown = [r for r in m["requirements"] if r not in cited]
        if unknown:
            problems.append(f"mutant {m['name']} names requirements no case checks: {unknown}")
    s = summary(matrix, load_exempt(args.exempt))
    if not complete(s):
        problems.append(f"the committed matrix is incomplete: {s['uncaughtMutants']} uncaught, "
                        f"{s['casesNeverFailing']} never failing and not in {args.exempt}, "
                        f"{s['staleExemptions']} exempt but failing now")
    chosen = plan(matrix)
    result = execute_plan(runner, matrix, chosen)
    for name, case_id, verdict, why in result["misses"]:
        problems.append(f"{case_id} no longer catches {name}: {verdict} {why}")
    for name in result["louder"]:
        problems.append(f"mutant {name} now fails the sanity case (it breaks every handshake)")
    print(f"mutation check: {len(chosen)} mutants, {result['pairs']} (mutant, case) pairs in "
          f"{result['runs']} runs, -j {runner.jobs}: {time.monotonic() - started:.0f} s")
    for p in problems:
        print(f"  {p}")
    sys.exit(1 if problems else 0)


def complete(s):
    return not (s["uncaughtMutants"] or s["casesNeverFailing"] or s["baselineFailures"]
                or s["staleExemptions"])


def report_summary(s):
    print(f"mutants caught: {s['mutantsCaught']}/{s['mutants']}"
          f" ({100 * s['mutantsCaught'] / max(s['mutants'], 1):.0f} %)"
          f"; cases able to fail: {s['casesAbleToFail']}/{s['cases']}"
          f" ({100 * s['casesAbleToFail'] / max(s['cases'], 1):.0f} %)")
    for key in ("uncaughtMutants", "casesNeverFailing", "staleExemptions", "loudMutants",
                "baselineFailures"):
        if s[key]:
            print(f"  {key}: {', '.join(s[key])}")


# --- HTML --------------------------------------------------------------------------------------------

STYLE = """
body{font:13px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em}table{border-collapse:collapse}
.m th.v{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:normal;
 padding:4px 1px;vertical-align:bottom}
.m td,.m th{border:1px solid #ddd;padding:0 2px;text-align:center}
.m td.id{text-align:left;white-space:nowrap;font-family:monospace}
.m thead th{position:sticky;top:0;background:#fff}
td.c{background:#2e7d32;color:#fff}td.x{background:#a5d6a7}td.f{background:#ffb300}
td.n{background:#ef9a9a}td.e{background:#90a4ae}th.loud{color:#b71c1c}td.u{background:#f3f3f3}
.s td,.s th{border:1px solid #ddd;padding:2px 6px;text-align:left}
"""


def area_table(matrix, got):
    """Mutant x area: how many cases of each area catch each mutant."""
    areas = []
    for case in matrix["cases"]:
        area = case["id"].split("/")[0]
        if area not in areas:
            areas.append(area)
    area_of = {c["id"]: c["id"].split("/")[0] for c in matrix["cases"]}
    out = ["<h2>Mutant &times; area</h2><p>Cases of each area that catch each mutant.</p>"
           "<table class=m><thead><tr><th>mutant</th><th>area</th>"]
    out += [f"<th>{html.escape(a)}</th>" for a in areas]
    out.append("<th>all</th></tr></thead><tbody>")
    for m in matrix["mutants"]:
        n = {a: 0 for a in areas}
        for name, case_id in got:
            if name == m["name"]:
                n[area_of[case_id]] += 1
        total = sum(n.values())
        out.append(f"<tr><td class=id>{html.escape(m['name'])}</td>"
                   f"<td>{html.escape(m['area'])}</td>")
        out += [f"<td class=c>{n[a]}</td>" if n[a] else "<td></td>" for a in areas]
        out.append(f"<td{' class=n' if total == 0 else ''}>{total}</td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def write_html(matrix, path):
    s = matrix.get("summary") or summary(matrix)
    got = catches(matrix)
    mutants = matrix["mutants"]
    out = [f"<!doctype html><meta charset=utf-8><title>shoal mutation matrix</title>"
           f"<style>{STYLE}</style><h1>shoal-conform: mutation matrix</h1>"]
    out.append(
        f"<p>Generated {html.escape(matrix.get('generated', '?'))} in "
        f"{matrix.get('soakSeconds', '?')} s. <b>{s['mutantsCaught']}/{s['mutants']}</b> mutants "
        f"caught, <b>{s['casesAbleToFail']}/{s['cases']}</b> cases able to fail. A cell is a "
        f"case (row) against a mutant (column): <span style='background:#2e7d32;color:#fff'>"
        f"&nbsp;F&nbsp;</span> FAIL (caught), <span style='background:#a5d6a7'>&nbsp;f&nbsp;"
        f"</span> FAIL against a loud mutant outside its requirements (does not count), "
        f"<span style='background:#ffb300'>&nbsp;?&nbsp;</span> flaky, blank OK, grey not run, "
        f"<span style='background:#90a4ae'>&nbsp;E&nbsp;</span> ERROR / other. Loud mutants "
        f"(red) fail the sanity case.</p>")
    for key, label in (("uncaughtMutants", "Mutants no case catches"),
                       ("casesNeverFailing", "Cases no mutant fails"),
                       ("casesExempt", "Cases no mutant fails, with a reason in "
                        "mutation-exempt.txt"),
                       ("baselineFailures", "Cases failing without a mutant")):
        if s.get(key):
            out.append(f"<p><b>{label}:</b> {html.escape(', '.join(s[key]))}</p>")
    out.append("<h2>Mutants</h2><table class=s><tr><th>mutant</th><th>area</th>"
               "<th>requirements</th><th>what it breaks</th><th>caught by</th></tr>")
    for m in mutants:
        n = sum(1 for name, _ in got if name == m["name"])
        out.append(f"<tr><td>{html.escape(m['name'])}{' (loud)' if m.get('loud') else ''}</td>"
                   f"<td>{html.escape(m['area'])}</td>"
                   f"<td>{html.escape(', '.join(m['requirements']))}</td>"
                   f"<td>{html.escape(m['breaks'])}</td><td>{n}</td></tr>")
    out.append("</table>")
    out.append(area_table(matrix, got))
    out.append("<h2>Matrix</h2><table class=m><thead><tr><th>case</th><th>n</th>")
    for m in mutants:
        cls = "v loud" if m.get("loud") else "v"
        out.append(f"<th class='{cls}' title='{html.escape(m['breaks'], quote=True)}'>"
                   f"{html.escape(m['name'])}</th>")
    out.append("</tr></thead><tbody>")
    for case in matrix["cases"]:
        row = matrix["results"].get(case["id"], {})
        n = sum(1 for name, c in got if c == case["id"])
        title = html.escape(f"{case['title']} [{case['role']}, {case['level']}]", quote=True)
        cls = " class=n" if n == 0 else ""
        out.append(f"<tr><td class=id title='{title}'>{html.escape(case['id'])}</td>"
                   f"<td{cls}>{n}</td>")
        for m in mutants:
            cell = row.get(m["name"])
            if cell is None:
                out.append("<td class=u></td>")
                continue
            verdict = cell[0]
            tip = html.escape(f"{case['id']} x {m['name']}: {verdict}, {cell[1]} ms", quote=True)
            if caught(verdict) and "flaky" in cell[2:]:
                out.append(f"<td class=f title='{tip}'>?</td>")
            elif caught(verdict):
                counted = (m["name"], case["id"]) in got
                out.append(f"<td class={'c' if counted else 'x'} title='{tip}'>"
                           f"{'F' if counted else 'f'}</td>")
            elif verdict in ("OK", "UNIMPLEMENTED"):
                out.append("<td></td>")
            else:
                out.append(f"<td class=e title='{tip}'>E</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    with open(path, "w") as f:
        f.write("".join(out))


def cmd_html(args):
    write_html(load(args.matrix), args.out)


def cmd_summarize(args):
    """Recomputes a matrix's summary (after editing mutation-exempt.txt, say) without running."""
    matrix = load(args.matrix)
    matrix["summary"] = summary(matrix, load_exempt(args.exempt))
    save(matrix, args.matrix)
    report_summary(matrix["summary"])
    sys.exit(0 if complete(matrix["summary"]) else 1)


# --- command line ------------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shoal")
    parser.add_argument("--conform")
    parser.add_argument("--launch", help="shoal-conform --launch template with {mutant}")
    parser.add_argument("--control", default=None)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--temp", default=tempfile.gettempdir())
    parser.add_argument("--exempt", default=os.path.join(os.path.dirname(__file__),
                                                         "mutation-exempt.txt"),
                        help="cases no mutant can fail, each with why")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list")
    p = sub.add_parser("catch")
    p.add_argument("mutant")
    p.add_argument("cases", nargs="+")
    p = sub.add_parser("soak")
    p.add_argument("matrix")
    p.add_argument("--html")
    p.add_argument("--scope", choices=("related", "all"), default="all",
                   help="all: every case x every mutant; related: each mutant against the cases "
                   "of its area and its requirements (the broad mutants against all)")
    p.add_argument("--rounds", type=int, default=3,
                   help="times the planned catches are repeated to find flaky ones")
    p.add_argument("--redo", action="append", default=[], metavar="MUTANT",
                   help="with --update: run this mutant again (its hook changed)")
    p.add_argument("--update", action="store_true",
                   help="keep the matrix's verdicts; run only new cases and new mutants")
    p = sub.add_parser("check")
    p.add_argument("matrix")
    p.add_argument("--html", help="also write the committed matrix as HTML here")
    p = sub.add_parser("summarize")
    p.add_argument("matrix")
    p = sub.add_parser("html")
    p.add_argument("matrix")
    p.add_argument("out")
    args = parser.parse_args()
    if args.command == "html":
        return cmd_html(args)
    if args.command == "summarize":
        return cmd_summarize(args)
    for needed in ("shoal", "conform", "launch"):
        if not getattr(args, needed):
            die(f"--{needed} is required")
    runner = Runner(args)
    {"list": cmd_list, "catch": cmd_catch, "soak": cmd_soak, "check": cmd_check}[args.command](
        runner, args)


if __name__ == "__main__":
    main()
