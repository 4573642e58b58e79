"""Turns one benchmark run into bench/results/<date>.json (the `ratios` object and the top-level
figures issue 10 names), the generated table in docs/benchmarks.md and gnuplot SVG plots in
docs/bench/. Run by bench/run.py; `python3 bench/report.py RESULTS.json` redoes the table and the
plots from a saved run."""

import json
import os
import subprocess
import sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def med(stage, key):
    v = (stage or {}).get(key)
    return v["median"] if isinstance(v, dict) and "median" in v else None


def ratio(a, b):
    return a / b if a is not None and b else None


def shoal_figures(stages):
    """shoal's own transfer figures; null until `shoal get` exists (issue 8)."""
    t = stages.get("transfers") or {}
    return {k: med(t, k) for k in ("plain_gbps", "plain_sink_gbps", "raw_tcp_sink_gbps", "tls_gbps",
                                   "start_to_done_s", "small_files_per_s")}


def ratios(results):
    st = results["stages"]
    bulk, small = st.get("bulk_baselines") or {}, st.get("small_files_baselines") or {}
    scan, hs = st.get("first_scan") or {}, st.get("handshake") or {}
    me = shoal_figures(st)
    st_done = med(bulk, "syncthing_start_to_done_s")
    return {
        "plain_vs_nginx": ratio(me["plain_gbps"], med(bulk, "nginx_http_gbps")),
        "plain_overhead_vs_raw_tcp": ratio(me["plain_sink_gbps"], me["raw_tcp_sink_gbps"]),
        "tls_vs_nginx_https": ratio(me["tls_gbps"], med(bulk, "nginx_https_gbps")),
        "tls_vs_gnutls": ratio(me["tls_gbps"], med(bulk, "gnutls_stream_gbps")),
        "tls_vs_syncthing": ratio(me["tls_gbps"], med(bulk, "syncthing_gbps")),
        "start_to_done_vs_syncthing": ratio(st_done, me["start_to_done_s"]),
        "small_files_vs_curl": ratio(me["small_files_per_s"],
                                     med(small, "curl_keepalive_files_per_s")),
        "small_files_vs_rsync": ratio(me["small_files_per_s"], med(small, "rsync_files_per_s")),
        "small_files_vs_syncthing": ratio(me["small_files_per_s"],
                                          med(small, "syncthing_files_per_s")),
        "scan_vs_sha256sum": ratio(med(scan, "shoal_gbps"), med(scan, "sha256sum_parallel_gbps")),
        "scan_vs_syncthing": ratio(med(scan, "shoal_gbps"), med(scan, "syncthing_gbps")),
        "handshake_vs_gnutls_kx": hs.get("ratio"),
    }


# (ratio key, target, higher is better)
TARGETS = [
    ("plain_vs_nginx", 1.0, True), ("plain_overhead_vs_raw_tcp", 0.8, True),
    ("tls_vs_nginx_https", 1.5, True), ("tls_vs_gnutls", 0.8, True),
    ("tls_vs_syncthing", 2.0, True), ("start_to_done_vs_syncthing", 3.0, True),
    ("small_files_vs_curl", 1.0, True), ("small_files_vs_rsync", 2.0, True),
    ("small_files_vs_syncthing", 10.0, True), ("scan_vs_sha256sum", 0.9, True),
    ("scan_vs_syncthing", 1.5, True), ("handshake_vs_gnutls_kx", 1.5, False),
    ("shutdown_p99_ms", 100.0, False), ("idle_conn_rss_kib", 64.0, False),
    ("delta_bytes_one_item", 1024.0, False),
]


# What each ratio needs, to say why one is null.
NEEDS = {
    "plain_vs_nginx": ("transfers", "bulk_baselines"),
    "plain_overhead_vs_raw_tcp": ("transfers",),
    "tls_vs_nginx_https": ("transfers", "bulk_baselines"),
    "tls_vs_gnutls": ("transfers", "bulk_baselines"),
    "tls_vs_syncthing": ("transfers", "bulk_baselines"),
    "start_to_done_vs_syncthing": ("transfers", "bulk_baselines"),
    "small_files_vs_curl": ("transfers", "small_files_baselines"),
    "small_files_vs_rsync": ("transfers", "small_files_baselines"),
    "small_files_vs_syncthing": ("transfers", "small_files_baselines"),
    "scan_vs_sha256sum": ("first_scan",),
    "scan_vs_syncthing": ("first_scan",),
    "handshake_vs_gnutls_kx": ("handshake",),
}


def null_reasons(results):
    """For each null ratio, why: the stage it needs was not run, failed, or is pending."""
    st, out = results["stages"], {}
    for key, value in results["ratios"].items():
        if value is not None:
            continue
        for stage in NEEDS.get(key, ()):
            got = st.get(stage)
            if got is None:
                out[key] = f"stage {stage} was not run"
            elif "error" in got:
                out[key] = f"stage {stage} failed: {got['error']}"
            elif "pending" in got:
                out[key] = got["pending"]
            else:
                continue
            break
    return out


def finish(results, root, write=True):
    st = results["stages"]
    results["ratios"] = ratios(results)
    results["null_ratios"] = null_reasons(results)
    results["shutdown_p99_ms"] = (st.get("shutdown") or {}).get("p99_ms")
    results["idle_conn_rss_kib"] = (st.get("idle_connections") or {}).get("per_connection_kib")
    results["delta_bytes_one_item"] = (st.get("library_scale") or {}).get("delta_bytes")
    text = json.dumps(results, indent=1, sort_keys=True)
    if not write:
        print(text)
        return
    out_dir = os.path.join(root, "bench", "results")
    os.makedirs(out_dir, exist_ok=True)
    name = results["date"] + ("-quick" if results.get("quick") else "") + ".json"
    path = os.path.join(out_dir, name)
    with open(path, "w") as f:
        f.write(text + "\n")
    print(f"results: {os.path.relpath(path, root)}", file=sys.stderr)
    plots(results, root)
    table(results, root, os.path.relpath(path, root))


def fmt(v, unit="", digits=2):
    if v is None:
        return "—"
    if isinstance(v, dict):
        return f"{v['median']:.{digits}f}{unit} ({v['min']:.{digits}f}–{v['max']:.{digits}f})"
    return f"{v:.{digits}f}{unit}"


def held(value, target, higher):
    if value is None:
        return "not measured yet"
    ok = value >= target if higher else value <= target
    return "holds" if ok else "**missed**"


def table(results, root, results_path):
    st, r = results["stages"], results["ratios"]
    bulk, small = st.get("bulk_baselines") or {}, st.get("small_files_baselines") or {}
    scan, rescan = st.get("first_scan") or {}, st.get("rescan") or {}
    hs, sd = st.get("handshake") or {}, st.get("shutdown") or {}
    idle, lib = st.get("idle_connections") or {}, st.get("library_scale") or {}
    me = st.get("transfers") or {}
    gb = " GB/s"
    lines = [
        BEGIN,
        f"Generated by `./dev bench{' --quick' if results.get('quick') else ''}` on "
        f"{results['date']} ({results['machine']['cores']} cores, {results['machine']['cpu']}, "
        f"load {results['machine']['load_at_start']} at the start"
        + (f", {results['machine']['load_at_end']} at the end" if "load_at_end" in
           results["machine"] else "")
        + f"; whole run {results.get('runtime_s', 0)} s). Median of the runs, min–max in "
        f"brackets; raw figures in `{results_path}`.",
        "",
        "| measurement | shoal | baseline (same run) | ratio | target | |",
        "| --- | --- | --- | --- | --- | --- |",
    ]

    def row(what, mine, base, key, target, higher):
        value = r.get(key) if key in r else results.get(key)
        lines.append(f"| {what} | {mine} | {base} | {fmt(value)} | "
                     f"{'≥' if higher else '≤'} {target:g}{'×' if key in r else ''} | "
                     f"{held(value, target, higher)} |")

    row("bulk, plaintext → tmpfs", fmt(me.get("plain_gbps"), gb),
        "nginx sendfile → curl " + fmt(bulk.get("nginx_http_gbps"), gb), "plain_vs_nginx", 1.0,
        True)
    row("protocol overhead, chunks into a sink", fmt(me.get("plain_sink_gbps"), gb),
        "iperf3, one TCP stream into its sink " + fmt(me.get("raw_tcp_sink_gbps"), gb),
        "plain_overhead_vs_raw_tcp", 0.8, True)
    row("bulk, TLS → tmpfs", fmt(me.get("tls_gbps"), gb),
        "nginx HTTPS → curl " + fmt(bulk.get("nginx_https_gbps"), gb), "tls_vs_nginx_https",
        1.5, True)
    row("bulk, TLS", fmt(me.get("tls_gbps"), gb),
        "GnuTLS alone " + fmt(bulk.get("gnutls_stream_gbps"), gb), "tls_vs_gnutls", 0.8, True)
    row("bulk, TLS", fmt(me.get("tls_gbps"), gb),
        "Syncthing, connected → in sync " + fmt(bulk.get("syncthing_gbps"), gb),
        "tls_vs_syncthing", 2.0, True)
    for n in (2, 3):
        mine = me.get(f"tls_{n}_sources_gbps")
        lines.append(f"| bulk, TLS, {n} sources → 1 | {fmt(mine, gb)} | one source "
                     f"{fmt(me.get('tls_gbps'), gb)} | "
                     f"{fmt(ratio(med(me, f'tls_{n}_sources_gbps'), med(me, 'tls_gbps')))} | | |")
    row("fresh pair, start → done", fmt(me.get("start_to_done_s"), " s"),
        "Syncthing " + fmt(bulk.get("syncthing_start_to_done_s"), " s"),
        "start_to_done_vs_syncthing", 3.0, True)
    fps = " files/s"
    row(f"{small.get('files', 0):,} × 16 KiB files", fmt(me.get("small_files_per_s"), fps, 0),
        "curl, one keep-alive connection " + fmt(small.get("curl_keepalive_files_per_s"), fps, 0),
        "small_files_vs_curl", 1.0, True)
    row("small files", fmt(me.get("small_files_per_s"), fps, 0),
        "rsync daemon " + fmt(small.get("rsync_files_per_s"), fps, 0), "small_files_vs_rsync",
        2.0, True)
    row("small files", fmt(me.get("small_files_per_s"), fps, 0),
        "Syncthing " + fmt(small.get("syncthing_files_per_s"), fps, 0),
        "small_files_vs_syncthing", 10.0, True)
    size = f"{scan.get('bytes', 0) / (1 << 30):.0f} GiB" if scan else ""
    row(f"first scan of {size} ({scan.get('files', 0)} files)", fmt(scan.get("shoal_gbps"), gb),
        f"sha256sum × {scan.get('cores', '?')} in parallel "
        + fmt(scan.get("sha256sum_parallel_gbps"), gb), "scan_vs_sha256sum", 0.9, True)
    row("first scan", fmt(scan.get("shoal_gbps"), gb),
        "Syncthing's scan " + fmt(scan.get("syncthing_gbps"), gb), "scan_vs_syncthing", 1.5, True)
    row("handshake (TLS 1.3 + Hello/HelloAck), CPU time",
        fmt(hs.get("shoal_us"), " µs", 0) + f" (wall {fmt(hs.get('shoal_wall_us'), ' µs', 0)})",
        "gnutls-cli --benchmark-tls-kx X25519 + Ed25519 "
        + fmt(hs.get("gnutls_kx_x25519_ed25519_us"), " µs", 0), "handshake_vs_gnutls_kx", 1.5,
        False)
    row(f"shutdown with {sd.get('sessions', 0)} sessions and {sd.get('downloads', 0)} downloads, "
        f"p99 of {sd.get('rounds', 0)}",
        f"p50 {fmt(sd.get('p50_ms'), ' ms')}, p99 {fmt(sd.get('p99_ms'), ' ms')}",
        f"Goodbye to all in {sd.get('rounds_with_goodbye_to_all', 0)}/{sd.get('rounds', 0)} "
        f"rounds; downloads running in {sd.get('rounds_with_downloads_running', 0)}",
        "shutdown_p99_ms", 100, False)
    row(f"RSS per idle connection ({idle.get('connections', 0)} connections)",
        fmt(idle.get("per_connection_kib"), " KiB", 1),
        f"{idle.get('rss_before_kib', 0):,} → {idle.get('rss_after_kib', 0):,} KiB",
        "idle_conn_rss_kib", 64, False)
    row(f"one-item delta in a {lib.get('items', 0):,}-item library",
        f"{lib.get('delta_bytes', 0)} B", f"snapshot {lib.get('snapshot_bytes', 0):,} B "
        f"in {lib.get('snapshot_pages', 0)} pages", "delta_bytes_one_item", 1024, False)
    lines += [
        "",
        f"Scale: applying the snapshot of {lib.get('items', 0):,} items took "
        f"{fmt(lib.get('snapshot_apply_ms'), ' ms', 1)}, the one-item delta "
        f"{fmt(lib.get('delta_apply_ms'), ' ms', 1)} (the receiver re-hashes its whole view to "
        f"check the digest); a rescan of an unchanged {rescan.get('files', 0):,}-file library "
        f"{fmt(rescan.get('rescan_ms'), ' ms', 1)}; start-up with a warm index cache (exec → "
        f"Started) {fmt(rescan.get('startup_warm_cache_ms'), ' ms', 0)}.",
        "",
        "Plots: [throughput beside the baselines](bench/throughput.svg), "
        "[first scan](bench/scan.svg), [shutdown latency](bench/shutdown.svg)"
        + (", [per-source share](bench/sources.svg)" if me.get("sources") else "") + ".",
    ]
    if results.get("stage_s"):
        lines += ["", "Time of each stage: " + ", ".join(
            f"{n} {t:.0f} s" for n, t in results["stage_s"].items()) + "."]
    prof = st.get("profile") or {}
    for what, title in (("tls_bulk", "bulk"), ("small_files", "small files")):
        run = prof.get(what)
        if not run or "receiver" not in run:
            continue
        roles = [r for r in ("source", "receiver") if r in run]
        kinds = []
        for r in roles:
            kinds += [k for k in run[r]["split"] if k not in kinds]
        lines += ["", f"Where the time goes, {title} over TLS (`perf record` on each process "
                  f"during one `shoal get`, {run.get('seconds', 0):.1f} s; % of each process's "
                  "samples, self time; the one-source item):", "",
                  "| | " + " | ".join(roles) + " |", "| --- |" + " --- |" * len(roles),
                  "| CPU seconds (user + system, the kernel's count) | " + " | ".join(
                      fmt(run[r].get("cpu_s"), " s") for r in roles) + " |"]
        for k in kinds:
            lines.append(f"| {k} | " + " | ".join(
                f"{run[r]['split'].get(k, 0):.1f} %" for r in roles) + " |")
    if results.get("null_ratios"):
        lines += ["", "Null in this run:"]
        lines += [f"- `{k}`: {v}." for k, v in sorted(results["null_ratios"].items())]
    lines.append(END)
    path = os.path.join(root, "docs", "benchmarks.md")
    with open(path) as f:
        doc = f.read()
    block = "\n".join(lines)
    if BEGIN in doc:
        doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
    else:
        marker = "\n## "
        at = doc.index(marker)
        doc = doc[:at] + "\n## Against the alternatives (`./dev bench`)\n\n" + block + "\n" + \
            doc[at:]
    with open(path, "w") as f:
        f.write(doc)


def gnuplot(script: str):
    subprocess.run(["gnuplot"], input=script.encode(), check=True)


def bars(path, title, ylabel, rows):
    """A bar chart with min–max error bars; rows: (label, summary or None)."""
    rows = [(l, v) for l, v in rows if v]
    if not rows:
        return
    data = "\n".join(f'"{l}" {v["median"]} {v["min"]} {v["max"]}' for l, v in rows)
    gnuplot(f"""set terminal svg size 820,420 dynamic font "sans,11"
set output "{path}"
set title "{title}"
set ylabel "{ylabel}"
set style fill solid 0.6 border -1
set boxwidth 0.6
set yrange [0:*]
set xtics rotate by -25
set grid ytics
unset key
$data << EOD
{data}
EOD
plot $data using 0:2:xtic(1) with boxes lc rgb "#4a7ab5", \\
     $data using 0:2:3:4 with yerrorbars lc rgb "black" pt 0
""")


def plots(results, root):
    out = os.path.join(root, "docs", "bench")
    os.makedirs(out, exist_ok=True)
    st = results["stages"]
    bulk, me = st.get("bulk_baselines") or {}, st.get("transfers") or {}
    bars(os.path.join(out, "throughput.svg"), "Bulk transfer on loopback into tmpfs", "GB/s", [
        ("shoal plaintext", me.get("plain_gbps")), ("shoal TLS", me.get("tls_gbps")),
        ("iperf3 (sink)", bulk.get("raw_tcp_sink_gbps")),
        ("nginx→curl", bulk.get("nginx_http_gbps")),
        ("nginx→curl HTTPS", bulk.get("nginx_https_gbps")),
        ("GnuTLS alone", bulk.get("gnutls_stream_gbps")), ("rsync", bulk.get("rsync_gbps")),
        ("Syncthing", bulk.get("syncthing_gbps"))])
    scan = st.get("first_scan") or {}
    bars(os.path.join(out, "scan.svg"), "First scan (SHA-256 of every chunk)", "GB/s", [
        ("shoal", scan.get("shoal_gbps")),
        ("sha256sum in parallel", scan.get("sha256sum_parallel_gbps")),
        ("Syncthing", scan.get("syncthing_gbps"))])
    sd = st.get("shutdown") or {}
    if sd.get("samples_ms"):
        samples = sorted(sd["samples_ms"])
        data = "\n".join(f"{(i + 1) / len(samples):.4f} {v}" for i, v in enumerate(samples))
        gnuplot(f"""set terminal svg size 820,420 dynamic font "sans,11"
set output "{os.path.join(out, 'shutdown.svg')}"
set title "shutdown() → waitStopped() with {sd.get('sessions')} live sessions, {len(samples)} runs"
set xlabel "ms"
set ylabel "fraction of runs"
set yrange [0:1.05]
set grid
unset key
$data << EOD
{data}
EOD
plot $data using 2:1 with steps lw 2 lc rgb "#4a7ab5"
""")
    sources = me.get("sources")
    if sources:
        bars(os.path.join(out, "sources.svg"), "Per-source share, several sources → one receiver",
             "share of bytes", [(k, v) for k, v in sources.items()])


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        saved = json.load(f)
    finish(saved, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
