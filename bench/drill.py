#!/usr/bin/env python3
"""Restore throughput from S3 during a drill vs the raw restore rate.

Usage:
  python3 bench/drill.py [--size MIB] [--seed N] [--work DIR] [--rounds N] [--lifeboat BIN]
                         [--garage BIN]

Builds nothing: pass the release binary (default target/release/lifeboat; build it first with
`cargo build --release`) and a garage 2.x binary (default ~/.cache/lifeboat/garage/bin/garage,
where ./tests/run.sh installs it). Generates the data set with ../shared/bench/gen-dataset.py (or
$LIFEBOAT_GEN_DATASET), starts a single-node Garage on 127.0.0.1 and a coordinator (SQLite) with
two agents: a branch (backs the data set up to a local repository on "back up now" and copies
it to Garage) and a standby host. Then, for each round, alternating:
  raw    `lifeboat restore --repo offsite` of the copied snapshot into a fresh directory
  drill  a one-system restore-test drill of the same snapshot at the standby agent
and prints seconds and MiB/s (source bytes / second). The raw figure is the command's wall time
(process start, repository open, index, restore); the drill figure is from the record: bytes
restored / (T_restore_end − T_restore_start) as the standby agent reported them, plus the
drill's whole duration from its start to its sealed end. Results also go to WORK/drill.json.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PASSWORD = "bench-password-not-secret"
OPERATOR_PASSWORD = "bench-operator-password"
KEY_ID = "GK0123456789abcdef01234567"
SECRET = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
BUCKET = "lifeboat-bench"
MIB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def ts(text):
    """RFC 3339 (nanoseconds allowed) → seconds since the epoch."""
    head, _, frac = text.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    return seconds + (float("0." + frac) if frac else 0.0)


class Garage:
    """A single-node garage server in WORK/garage with the bucket and key above."""

    def __init__(self, binary, work):
        self.bin = binary
        self.dir = os.path.join(work, "garage")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.s3_port, rpc, admin = free_port(), free_port(), free_port()
        self.config = os.path.join(self.dir, "garage.toml")
        with open(self.config, "w") as f:
            f.write(f"""metadata_dir = "{self.dir}/meta"
data_dir = "{self.dir}/data"
db_engine = "sqlite"
metadata_fsync = false
data_fsync = false
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{os.urandom(32).hex()}"

[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:{self.s3_port}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
admin_token = "{os.urandom(16).hex()}"
""")
        log = open(os.path.join(self.dir, "garage.log"), "w")
        self.proc = subprocess.Popen([self.bin, "-c", self.config, "server"], stdout=log,
                                     stderr=log, env={**os.environ, "RUST_LOG": "garage=warn"})
        deadline = time.monotonic() + 30
        while self.cli("status", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise SystemExit("garage did not start; see " + self.dir)
            time.sleep(0.2)
        node = next(l.split()[0] for l in self.cli("status").stdout.splitlines()
                    if "NO ROLE" in l)
        self.cli("layout", "assign", "-z", "dc1", "-c", "10G", node)
        self.cli("layout", "apply", "--version", "1")
        self.cli("bucket", "create", BUCKET)
        self.cli("key", "import", "--yes", "-n", BUCKET, KEY_ID, SECRET)
        self.cli("bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", BUCKET)
        time.sleep(1)

    def cli(self, *args, check=True):
        return subprocess.run([self.bin, "-c", self.config, *args], capture_output=True,
                              text=True, check=check)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Coordinator:
    def __init__(self, lifeboat, work, policy):
        self.lifeboat = lifeboat
        self.dir = os.path.join(work, "coordinator")
        os.makedirs(os.path.join(self.dir, "policies"))
        with open(os.path.join(self.dir, "policies", "policy.toml"), "w") as f:
            f.write(policy)
        self.port = free_port()
        self.config = os.path.join(self.dir, "coordinator.toml")
        with open(self.config, "w") as f:
            f.write(f"""listen = "127.0.0.1:{self.port}"
database = "sqlite://{self.dir}/coordinator.db"
policy-dir = "{self.dir}/policies"
sweep-every = "2s"

[drills]
tick-every = "1s"
agent-lost-after = "60s"
""")
        self.admin("user", "add", "--name", "bench", "--role", "operator",
                   stdin=OPERATOR_PASSWORD + "\n")
        log = open(os.path.join(self.dir, "coordinator.log"), "w")
        self.proc = subprocess.Popen([lifeboat, "coordinator", "--config", self.config],
                                     stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise SystemExit("the coordinator did not start; see " + self.dir)
                time.sleep(0.2)
        self.token = self.call("POST", "/api/v1/login",
                               {"name": "bench", "password": OPERATOR_PASSWORD})[1]["token"]

    def admin(self, *args, stdin=""):
        out = subprocess.run([self.lifeboat, "coordinator", "--config", self.config, *args],
                             input=stdin, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"coordinator {' '.join(args)}: {out.stderr}")
        return out.stdout.strip()

    def call(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {getattr(self, 'token', '')}"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def agent(self, work, host, site, env):
        d = os.path.join(work, host)
        os.makedirs(d, exist_ok=True)
        token = self.admin("enrol-token", "--host", host, "--site", site)
        with open(os.path.join(d, "agent.toml"), "w") as f:
            f.write(f"""host = "{host}"
site = "{site}"
state-dir = "{d}/state"
jitter = "0s"

[coordinator]
url = "http://127.0.0.1:{self.port}"
enrol-token = {{ env = "BENCH_ENROL_TOKEN" }}
heartbeat-every = "1s"
""")
        log = open(os.path.join(d, "agent.log"), "w")
        return subprocess.Popen([self.lifeboat, "agent", "--config", os.path.join(d, "agent.toml")],
                                env={**env, "BENCH_ENROL_TOKEN": token},
                                stdout=subprocess.DEVNULL, stderr=log)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()


def policy(work, data, endpoint):
    return f"""
[tiers.BENCH]
name = "Benchmark"
rpo = "24h"
rto-it = "24h"
rto-business = "24h"
copies = 2
media = 1
offsite = 1
immutable = 0
drill-every = "365d"
restore-test-every = "365d"
check-every = "7d"
read-data-window = "90d"

[sites.branch]
name = "Branch"
role = "branch"
region = "bench"
timezone = "UTC"

[sites.dc]
name = "Data centre"
role = "data-centre"
region = "bench-dc"
timezone = "UTC"

[sites.dr]
name = "Standby"
role = "standby"
region = "bench-dr"
timezone = "UTC"

[repositories.local]
site = "branch"
url = "{work}/repo-local"
location = "local"
password = {{ env = "BENCH_PASSWORD" }}

[repositories.offsite]
site = "dc"
url = "s3://{BUCKET}/bench"
location = "remote"
endpoint = "{endpoint}"
allow-http = true
region = "us-east-1"
access-key-id = {{ env = "BENCH_S3_KEY_ID" }}
secret-access-key = {{ env = "BENCH_S3_SECRET" }}
password = {{ env = "BENCH_PASSWORD" }}

[systems.bench]
name = "Benchmark data"
department = "bench"
site = "branch"
host = "branch-01"
tier = "BENCH"
paths = ["{data}"]
repositories = ["local", "offsite"]
schedules = [
    {{ job = "backup", cron = "0 0 1 * * *" }},
    {{ job = "copy", cron = "*/5 * * * * *" }},
    {{ job = "check", cron = "0 0 3 * * *" }},
    {{ job = "read-data", cron = "0 0 4 * * *" }},
    {{ job = "forget", cron = "0 0 5 * * *" }},
]
retention = {{ keep-last = 5 }}

[drills.bench-restore]
title = "Restore throughput from S3"
type = "restore-test"
[drills.bench-restore.scenario]
kind = "site-loss"
lost-site = "branch"
[drills.bench-restore.scope]
systems = ["bench"]
[drills.bench-restore.standby]
site = "dr"
host = "dr-01"
restore-root = "{work}/drill-restore"
parallelism = 1
keep-restored = false
[[drills.bench-restore.steps]]
name = "restore"
action = "restore"
timeout = "2h"
"""


def wait(what, limit, done):
    deadline = time.monotonic() + limit
    while True:
        value = done()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {limit} s waiting for {what}")
        time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=512, help="data set size in MiB (default 512)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", default="/var/tmp/lifeboat-bench-drill")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--lifeboat", default=os.path.join(ROOT, "target/release/lifeboat"))
    ap.add_argument("--garage", default=os.path.expanduser("~/.cache/lifeboat/garage/bin/garage"))
    args = ap.parse_args()
    lifeboat = os.path.abspath(args.lifeboat)
    work = os.path.abspath(args.work)
    gen = os.environ.get("LIFEBOAT_GEN_DATASET",
                         os.path.join(ROOT, "..", "shared", "bench", "gen-dataset.py"))

    data = os.path.join(work, f"data-{args.size}-{args.seed}")
    if not os.path.isdir(data):
        print(f"generating {args.size} MiB (seed {args.seed}) into {data}", file=sys.stderr)
        subprocess.run([sys.executable, gen, data, str(args.size), str(args.seed)], check=True)
    for d in os.listdir(work):
        if not d.startswith("data-"):
            shutil.rmtree(os.path.join(work, d), ignore_errors=True)
    source = tree_bytes(data)

    garage = Garage(args.garage, work)
    endpoint = f"http://127.0.0.1:{garage.s3_port}"
    env = {**os.environ, "BENCH_PASSWORD": PASSWORD, "BENCH_S3_KEY_ID": KEY_ID,
           "BENCH_S3_SECRET": SECRET, "RUST_LOG": "warn"}
    coord = Coordinator(lifeboat, work, policy(work, data, endpoint))
    procs = []
    try:
        procs.append(coord.agent(work, "branch-01", "branch", env))
        procs.append(coord.agent(work, "dr-01", "dr", env))
        # The branch backs up (on "back up now") and copies to Garage on its schedule.
        wait("the backup-now to be queued", 60,
             lambda: coord.call("POST", "/api/v1/systems/bench/backup-now")[1].get("queued"))
        t0 = time.monotonic()

        def copied():
            code, inv = coord.call("GET", "/api/v1/snapshots?system=bench")
            if code != 200:
                return None
            for s in inv["snapshots"]:
                if s["complete"] and any(c["repository"] == "offsite" for c in s["copies"]):
                    return s["id"]
            return None

        snapshot = wait("the backup and its copy to Garage", 3600, copied)
        print(f"backed up and copied {source / MIB:.0f} MiB in {time.monotonic() - t0:.1f} s "
              f"(snapshot {snapshot[:8]})", file=sys.stderr)
        procs[0].kill()  # the branch is lost

        results = []
        cli_env = {**env, "LIFEBOAT_POLICY": os.path.join(coord.dir, "policies"),
                   "LIFEBOAT_STATE_DIR": os.path.join(work, "raw-state")}
        for rnd in range(1, args.rounds + 1):
            target = os.path.join(work, "raw-restore")
            shutil.rmtree(target, ignore_errors=True)
            start = time.monotonic()
            subprocess.run([lifeboat, "restore", "--system", "bench", "--repo", "offsite",
                            "--snapshot", snapshot, "--target", target, "--no-progress"],
                           env=cli_env, check=True, stdout=subprocess.DEVNULL)
            secs = time.monotonic() - start
            restored = tree_bytes(target)
            shutil.rmtree(target, ignore_errors=True)
            results.append({"round": rnd, "mode": "raw", "seconds": secs, "bytes": restored,
                            "mib_s": restored / MIB / secs})
            print(f"round {rnd} raw:   {secs:6.1f} s  {restored / MIB / secs:6.1f} MiB/s",
                  file=sys.stderr)

            start = time.monotonic()
            code, body = coord.call("POST", "/api/v1/drills", {"plan": "bench-restore"})
            if code != 201:
                raise SystemExit(f"drill start: {code} {body}")
            drill = body["id"]
            record = wait("the drill's sealed record", 7200, lambda: (
                lambda r: r[1] if r[0] == 200 else None)(
                coord.call("GET", f"/api/v1/drills/{drill}/record")))
            wall = time.monotonic() - start
            res = record["results"][0]
            marks = {m["mark"]: ts(m["at"]) for m in record["timeline"]}
            span = marks["restore-end:bench"] - marks["restore-start:bench"]
            restored = res["bytes_restored"]
            if record["header"]["status"] != "completed" or res["restore_point"]["snapshot"] != snapshot:
                raise SystemExit(f"the drill did not restore {snapshot}: {json.dumps(record)[:2000]}")
            results.append({"round": rnd, "mode": "drill", "seconds": span, "bytes": restored,
                            "mib_s": restored / MIB / span, "drill_seconds": wall,
                            "drill_id": drill})
            print(f"round {rnd} drill: {span:6.1f} s  {restored / MIB / span:6.1f} MiB/s "
                  f"(restore step; whole drill {wall:.1f} s)", file=sys.stderr)
    finally:
        for p in procs:
            p.kill()
            p.wait()
        coord.stop()
        garage.stop()

    raw = sorted(r["mib_s"] for r in results if r["mode"] == "raw")
    drill = sorted(r["mib_s"] for r in results if r["mode"] == "drill")
    med = lambda v: v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2
    summary = {"size_mib": args.size, "seed": args.seed, "source_bytes": source,
               "rounds": results, "raw_mib_s_median": med(raw), "drill_mib_s_median": med(drill),
               "drill_over_raw": med(drill) / med(raw)}
    with open(os.path.join(work, "drill.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print()
    print(f"{'mode':<8}{'median MiB/s':>14}")
    print(f"{'raw':<8}{med(raw):>14.1f}")
    print(f"{'drill':<8}{med(drill):>14.1f}")
    print(f"drill / raw = {summary['drill_over_raw']:.2f}")


if __name__ == "__main__":
    main()
