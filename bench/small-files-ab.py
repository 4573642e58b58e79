#!/usr/bin/env python3
"""bench/small-files-ab.py BUILD [BUILD...] [--rounds N] [--files N]: `shoal get` of an item of
many 16 KiB files (TLS, one source, into tmpfs) by each release build in turn, alternated for N
rounds, beside curl (one keep-alive connection from nginx) and rsync (daemon) fetching the same
files in the same rounds. Prints each sample and the medians as files/s and as ratios to curl and
rsync; for comparing two builds of one change on a loaded machine. Reuses bench/run.py's helpers.
"""

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True

import baselines  # noqa: E402
import run  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("builds", nargs="+")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--tmpfs", default="/dev/shm")
    args = parser.parse_args()
    bench = run.Bench(argparse.Namespace(quick=True, build=args.builds[0], tmpfs=args.tmpfs))
    size = 16 * run.KiB
    total = args.files * size
    samples = {b: [] for b in args.builds}
    samples.update(curl=[], rsync=[])
    try:
        lib = bench.fresh("small-lib")
        bench.make_files(os.path.join(lib, "small"), args.files, size, 1000)
        paths = sorted(os.path.relpath(os.path.join(d, f), lib)
                       for d, _, fs in os.walk(os.path.join(lib, "small")) for f in fs)
        nginx = baselines.Nginx(bench.procs, bench.work, lib)
        rsyncd = baselines.RsyncDaemon(bench.procs, bench.work, lib)
        for r in range(args.rounds):
            samples["curl"].append(baselines.curl_fetch(nginx, False, paths, bench.fresh("recv")))
            samples["rsync"].append(rsyncd.fetch("small", bench.fresh("recv")))
            for b in args.builds:
                bench.build = os.path.abspath(b)
                for key in list(bench.served):  # the source runs the build under test too
                    bench.stop_serve(bench.served.pop(key)[0], key[0])
                samples[b].append(bench.get_from([lib], "small", [], total)[0])
            print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in samples.items()),
                  file=sys.stderr)
    finally:
        bench.close()
    med = {k: statistics.median(v) for k, v in samples.items()}
    for b in args.builds:
        fps = [args.files / t for t in samples[b]]
        print(f"{b}: {args.files / med[b]:.0f} files/s (min {min(fps):.0f}, max {max(fps):.0f}); "
              f"vs curl {med['curl'] / med[b]:.2f}, vs rsync {med['rsync'] / med[b]:.2f}")
    print(f"curl {args.files / med['curl']:.0f} files/s, rsync {args.files / med['rsync']:.0f} files/s")


if __name__ == "__main__":
    main()
