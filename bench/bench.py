#!/usr/bin/env python3
"""lifeboat vs restic on the same data, phase by phase, alternating.

Usage:
  python3 bench/bench.py [--size MIB] [--seed N] [--work DIR] [--rounds N] [--lifeboat BIN] [--cold]

Builds nothing: pass the release binary (default target/release/lifeboat; build it first with
`cargo build --release`). Generates the data set with ../shared/bench/gen-dataset.py (or
$LIFEBOAT_GEN_DATASET), then for each round runs, alternating lifeboat and restic:
  initial backup, no-change backup, incremental backup after `--mutate 2`, full restore to a
  fresh directory, `check --read-data`
and prints wall seconds, MB/s (source bytes / second), peak RSS and the ratio restic/lifeboat
(> 1 means lifeboat is faster; for RSS, lifeboat/restic). Every command starts after a `sync`,
so neither tool pays for write-back of the phase before. Results also go to WORK/results.json.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PASSWORD = "bench-password-not-secret"


def run(argv, env=None, quiet=True):
    """Runs a command; returns (seconds, peak RSS bytes). Raises on failure."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL if quiet else None,
                            stderr=subprocess.PIPE)
    _, status, rusage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"command failed ({code}): {' '.join(argv)}\n{err[-2000:]}")
    return seconds, rusage.ru_maxrss * 1024


def tree_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def write_policy(work, data):
    pol = os.path.join(work, "policy")
    os.makedirs(pol, exist_ok=True)
    with open(os.path.join(pol, "bench.toml"), "w") as f:
        f.write(f"""
[tiers.BENCH]
name = "Benchmark"
rpo = "24h"
rto-it = "24h"
rto-business = "24h"
copies = 1
media = 1
offsite = 0
immutable = 0
drill-every = "365d"
restore-test-every = "365d"
check-every = "7d"
read-data-window = "90d"

[sites.bench]
name = "Benchmark site"
role = "branch"
region = "bench"
timezone = "UTC"

[repositories.bench-repo]
url = "{work}/repo-lifeboat"
location = "local"
password = {{ env = "BENCH_PASSWORD" }}

[systems.bench]
name = "Benchmark data"
department = "bench"
site = "bench"
host = "bench-host"
tier = "BENCH"
paths = ["{data}"]
repositories = ["bench-repo"]
schedules = [
    {{ job = "backup", cron = "@daily" }},
    {{ job = "check", cron = "@daily" }},
    {{ job = "read-data", cron = "@weekly" }},
    {{ job = "forget", cron = "@weekly" }},
]

[systems.bench.retention]
keep-last = 10
""")
    return pol


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=1024, help="data set size in MiB (default 1024)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default="/var/tmp/lifeboat-bench")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--lifeboat", default=os.path.join(ROOT, "target/release/lifeboat"))
    ap.add_argument("--cold", action="store_true",
                    help="drop the page cache before each restore and check (needs root): the "
                         "repository is read from disk, as in a real recovery, and a VM that "
                         "reclaims cache at random no longer decides which tool reads from memory")
    a = ap.parse_args()
    if a.cold and not os.access("/proc/sys/vm/drop_caches", os.W_OK):
        raise SystemExit("--cold needs root (it writes /proc/sys/vm/drop_caches)")

    gen = os.environ.get("LIFEBOAT_GEN_DATASET",
                         os.path.join(ROOT, "..", "shared", "bench", "gen-dataset.py"))
    restic = shutil.which("restic")
    if not restic:
        raise SystemExit("restic not found: apt-get install restic")
    if not os.access(a.lifeboat, os.X_OK):
        raise SystemExit(f"{a.lifeboat} missing: run `cargo build --release` first")
    rv = subprocess.run([restic, "version"], capture_output=True, text=True).stdout.strip()

    results = {}
    for rnd in range(a.rounds):
        work = os.path.join(a.work, f"round{rnd}")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        data = os.path.join(work, "data")
        print(f"== round {rnd + 1}: generating {a.size} MiB (seed {a.seed})", flush=True)
        subprocess.run([sys.executable, gen, data, str(a.size), str(a.seed)], check=True,
                       stdout=subprocess.DEVNULL)
        pol = write_policy(work, data)
        env = dict(os.environ, BENCH_PASSWORD=PASSWORD, RESTIC_PASSWORD=PASSWORD,
                   LIFEBOAT_POLICY=pol, LIFEBOAT_STATE_DIR=os.path.join(work, "state"),
                   RESTIC_CACHE_DIR=os.path.join(work, "restic-cache"), LIFEBOAT_LOG="error")
        lb = [a.lifeboat, "--no-progress"]
        rrepo = os.path.join(work, "repo-restic")
        run(lb + ["init", "--system", "bench"], env)
        run([restic, "-r", rrepo, "init", "--repository-version", "2"], env)

        def drop_caches():
            if a.cold:
                os.sync()
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("3\n")

        def phase(name, lifeboat_argv, restic_argv, nbytes, before=None):
            order = [("lifeboat", lifeboat_argv), ("restic", restic_argv)]
            if rnd % 2 == 1:
                order.reverse()
            for tool, argv in order:
                if before:
                    before(tool)
                # Each command starts with the previous one's writes on disk: write-back of
                # earlier phases (the data set, the other tool's repository or restore) must
                # not be billed to whichever command happens to run next.
                os.sync()
                secs, rss = run(argv, env)
                results.setdefault(name, {}).setdefault(tool, []).append(
                    {"seconds": secs, "rss": rss, "bytes": nbytes})
                print(f"   {name:<12} {tool:<8} {secs:8.2f} s  {nbytes / secs / 1e6:8.1f} MB/s"
                      f"  {rss / 2**20:8.0f} MiB", flush=True)

        size = tree_bytes(data)
        phase("initial", lb + ["backup", "--system", "bench"],
              [restic, "-r", rrepo, "backup", data], size)
        phase("no-change", lb + ["backup", "--system", "bench"],
              [restic, "-r", rrepo, "backup", data], size)
        subprocess.run([sys.executable, gen, "--mutate", "2", data, str(a.seed)], check=True,
                       stdout=subprocess.DEVNULL)
        size = tree_bytes(data)
        phase("incremental", lb + ["backup", "--system", "bench"],
              [restic, "-r", rrepo, "backup", data], size)

        def clean(tool):
            shutil.rmtree(os.path.join(work, f"restore-{tool}"), ignore_errors=True)
            drop_caches()

        phase("restore", lb + ["restore", "--system", "bench", "--target",
                               os.path.join(work, "restore-lifeboat")],
              [restic, "-r", rrepo, "restore", "latest", "--target",
               os.path.join(work, "restore-restic")], size, before=clean)
        phase("check", lb + ["check", "--repo", "bench-repo", "--read-data"],
              [restic, "-r", rrepo, "check", "--read-data"], tree_bytes(rrepo),
              before=lambda _tool: drop_caches())
        for tool in ("lifeboat", "restic"):
            clean(tool)

    print()
    print(f"lifeboat {a.lifeboat}  vs  {rv};  {a.size} MiB, seed {a.seed}, {a.rounds} round(s), "
          f"{os.cpu_count()} cores; medians")
    header = (f"{'phase':<12} {'lifeboat s':>10} {'MB/s':>8} {'RSS MiB':>8}   "
              f"{'restic s':>9} {'MB/s':>8} {'RSS MiB':>8}   {'speed-up':>8} {'RSS ratio':>9}")
    print(header)
    print("-" * len(header))
    summary = {}
    for name, tools in results.items():
        def med(tool, key):
            vals = sorted(r[key] for r in tools[tool])
            mid = len(vals) // 2
            return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2
        ls, rs = med("lifeboat", "seconds"), med("restic", "seconds")
        lr, rr = med("lifeboat", "rss"), med("restic", "rss")
        nb = tools["lifeboat"][0]["bytes"]
        summary[name] = {"lifeboat_s": ls, "restic_s": rs, "lifeboat_rss": lr, "restic_rss": rr,
                         "speedup": rs / ls, "rss_ratio": lr / rr, "bytes": nb}
        print(f"{name:<12} {ls:10.2f} {nb / ls / 1e6:8.1f} {lr / 2**20:8.0f}   "
              f"{rs:9.2f} {nb / rs / 1e6:8.1f} {rr / 2**20:8.0f}   {rs / ls:7.2f}x {lr / rr:8.2f}x")
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump({"size_mib": a.size, "seed": a.seed, "restic": rv, "phases": summary,
                   "raw": results}, f, indent=2)


if __name__ == "__main__":
    main()
