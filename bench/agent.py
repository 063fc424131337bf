#!/usr/bin/env python3
"""Agent figures: idle RSS and CPU with many systems, scheduling accuracy, spool replay rate.

    cargo build --release
    python3 bench/agent.py [--lifeboat target/release/lifeboat] [--systems 50]

1. idle: N systems (hourly schedules, one local repository each). After every system's first
   backup, the agent's resident memory and CPU are sampled from /proc for --idle seconds.
2. accuracy: 10 systems backing up every 20 s with jitter 0 and a free slot for each; the
   start delay of every run (the agent logs `delay_ms` = start - scheduled time) for
   --accuracy seconds; p50 / p99 / max.
3. spool replay: a stand-in coordinator (in this script, on 127.0.0.1) refuses run records
   (503) while the agent backs up --systems systems every second for --down seconds; the agent
   stops, its spool is topped up to --records records (clones with new run ids), the
   coordinator accepts again and the agent starts: records / time to the last arrival.

Everything runs in a temporary directory; nothing is left behind.
"""

import argparse
import hashlib
import http.server
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PASSWORD = "bench-agent-password"
TOKEN = "bench-agent-token-0123456789"

TIER = """
[tiers.TB]
name = "Bench tier"
rpo = "1h"
rto-it = "24h"
rto-business = "48h"
copies = 1
media = 1
offsite = 0
immutable = 0
drill-every = "365d"
restore-test-every = "90d"
check-every = "1d"
read-data-window = "7d"

[sites.branch]
name = "Bench branch"
role = "branch"
region = "bench"
timezone = "Asia/Shanghai"
"""


def write_policy(work, n, backup_cron):
    """A policy with n systems on host bench-host, one small source and one repository each."""
    parts = [TIER]
    for i in range(n):
        src = os.path.join(work, "src", f"s{i:03d}")
        os.makedirs(src, exist_ok=True)
        for j in range(5):
            with open(os.path.join(src, f"f{j}.txt"), "w") as f:
                f.write(f"system {i} file {j}\n" * 200)
        parts.append(f"""
[repositories.r{i:03d}]
url = "{os.path.join(work, 'repos', f'r{i:03d}')}"
location = "local"
password = {{ env = "BENCH_PASSWORD" }}

[systems.s{i:03d}]
name = "System {i}"
department = "dept{i % 5}"
site = "branch"
host = "bench-host"
tier = "TB"
paths = ["{src}"]
repositories = ["r{i:03d}"]
retention = {{ keep-last = 3 }}
schedules = [
    {{ job = "backup", cron = "{backup_cron}" }},
    {{ job = "check", cron = "0 30 3 * * *" }},
    {{ job = "read-data", cron = "0 0 4 * * *" }},
    {{ job = "forget", cron = "0 0 5 * * *" }},
]
""")
    os.makedirs(os.path.join(work, "policies"), exist_ok=True)
    text = "".join(parts)
    with open(os.path.join(work, "policies", "policy.toml"), "w") as f:
        f.write(text)
    return text


def write_config(work, extra="", coordinator=None, concurrency=2):
    text = f"""host = "bench-host"
site = "branch"
state-dir = "{os.path.join(work, 'state')}"
policy-dir = "{os.path.join(work, 'policies')}"
jitter = "0s"
reload-every = "1m"
max-concurrent-jobs = {concurrency}
{extra}
"""
    if coordinator:
        text += f"""
[coordinator]
url = "{coordinator}"
token = {{ env = "BENCH_TOKEN" }}
heartbeat-every = "5s"
request-timeout = "10s"
"""
    path = os.path.join(work, "agent.toml")
    with open(path, "w") as f:
        f.write(text)
    return path


def start_agent(lifeboat, config, log_path):
    env = dict(os.environ, BENCH_PASSWORD=PASSWORD, BENCH_TOKEN=TOKEN)
    log = open(log_path, "w")
    return subprocess.Popen(
        [lifeboat, "agent", "--config", config, "--log-format", "json", "--log", "info"],
        stdout=subprocess.DEVNULL, stderr=log, env=env)


def stop_agent(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()


def state(work):
    try:
        with open(os.path.join(work, "state", "agent", "state.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def backups_done(work):
    return sum(len(s.get("recent_backups", [])) for s in state(work).get("systems", {}).values())


def wait_for(what, timeout, cond):
    start = time.time()
    while not cond():
        if time.time() - start > timeout:
            sys.exit(f"timed out waiting for {what}")
        time.sleep(0.5)


def proc_sample(pid):
    """(rss bytes, cpu seconds) of a process."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    return rss, cpu


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


def idle(lifeboat, n, seconds):
    work = tempfile.mkdtemp(prefix="lifeboat-agent-bench-")
    try:
        write_policy(work, n, "0 0 * * * *")
        cfg = write_config(work)
        p = start_agent(lifeboat, cfg, os.path.join(work, "agent.log"))
        t0 = time.time()
        wait_for(f"{n} first backups", 1800, lambda: backups_done(work) >= n)
        first = time.time() - t0
        time.sleep(3)
        rss0, cpu0 = proc_sample(p.pid)
        peak = rss0
        t1 = time.time()
        while time.time() - t1 < seconds:
            time.sleep(1)
            rss, _ = proc_sample(p.pid)
            peak = max(peak, rss)
        rss1, cpu1 = proc_sample(p.pid)
        elapsed = time.time() - t1
        stop_agent(p)
        return {
            "systems": n,
            "first_backups_seconds": round(first, 1),
            "idle_rss_mib": round(rss1 / 2**20, 1),
            "idle_peak_rss_mib": round(peak / 2**20, 1),
            "idle_cpu_percent": round(100 * (cpu1 - cpu0) / elapsed, 3),
            "idle_seconds": round(elapsed),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def accuracy(lifeboat, seconds):
    work = tempfile.mkdtemp(prefix="lifeboat-agent-bench-")
    try:
        n = 10
        # Every 20 s: a run never waits for the same system's previous one.
        write_policy(work, n, "*/20 * * * * *")
        cfg = write_config(work, concurrency=n)
        log = os.path.join(work, "agent.log")
        p = start_agent(lifeboat, cfg, log)
        wait_for("first backups", 600, lambda: backups_done(work) >= n)
        mark = os.path.getsize(log)
        time.sleep(seconds)
        stop_agent(p)
        delays = []
        with open(log) as f:
            f.seek(mark)
            for line in f:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                fields = ev.get("fields", {})
                if fields.get("message") == "starting" and "delay_ms" in fields:
                    delays.append(int(fields["delay_ms"]))
        return {
            "runs": len(delays),
            "start_delay_ms_p50": percentile(delays, 50),
            "start_delay_ms_p99": percentile(delays, 99),
            "start_delay_ms_max": max(delays) if delays else None,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


class StandIn:
    """A minimal coordinator: assignment, heartbeats, and run batches (503 while down)."""

    def __init__(self, policy_text):
        content = policy_text
        name = "policy.toml"
        h = hashlib.sha256()
        h.update(name.encode())
        h.update(b"\0")
        h.update(struct.pack("<Q", len(content.encode())))
        h.update(content.encode())
        self.assignment = {"digest": h.hexdigest(), "issued_at": now_iso(),
                           "files": [{"name": name, "content": content}]}
        self.up = False
        self.keys = set()
        self.last_arrival = None
        self.lock = threading.Lock()
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.endswith("/agents/assignment"):
                    return self.reply(200, standin.assignment)
                self.reply(404, {"error": "not-found", "message": self.path})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.path.endswith("/agents/heartbeat"):
                    return self.reply(200, {"server_time": now_iso(),
                                            "assignment_digest": standin.assignment["digest"],
                                            "commands": []})
                if self.path.endswith("/agents/runs"):
                    if not standin.up:
                        return self.reply(503, {"error": "unavailable", "message": "down"})
                    batch = json.loads(body)
                    keys = [r["key"] for r in batch["records"]]
                    with standin.lock:
                        dup = [k for k in keys if k in standin.keys]
                        standin.keys.update(keys)
                        standin.last_arrival = time.time()
                    return self.reply(200, {"accepted": keys, "duplicates": dup, "rejected": []})
                self.reply(404, {"error": "not-found", "message": self.path})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def now_iso():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def spool_files(work):
    d = os.path.join(work, "state", "agent", "spool")
    try:
        return sum(1 for f in os.listdir(d) if f.endswith(".rec"))
    except OSError:
        return 0


def top_up_spool(work, total):
    """Clones the spooled records (new run ids, next sequence numbers) until `total` wait."""
    d = os.path.join(work, "state", "agent", "spool")
    names = sorted(f for f in os.listdir(d) if f.endswith(".rec"))
    if not names:
        sys.exit("nothing was spooled while the coordinator was down")
    with open(os.path.join(d, names[-1]), "rb") as f:
        header, body = f.read().split(b"\n", 1)
    template = json.loads(body)
    seq = int(header.split()[1])
    import uuid
    for _ in range(total - len(names)):
        seq += 1
        rec = dict(template, run_id=str(uuid.uuid4()))
        data = json.dumps(rec).encode()
        head = f"lifeboat-spool/1 {seq} {len(data)} {hashlib.sha256(data).hexdigest()}\n".encode()
        with open(os.path.join(d, f"{seq:020d}.rec"), "wb") as f:
            f.write(head + data)
    return total


def replay(lifeboat, n, down, total):
    work = tempfile.mkdtemp(prefix="lifeboat-agent-bench-")
    try:
        policy = write_policy(work, n, "* * * * * *")
        standin = StandIn(policy)
        standin.up = False
        cfg = write_config(work, coordinator=standin.url(), concurrency=2)
        p = start_agent(lifeboat, cfg, os.path.join(work, "agent.log"))
        time.sleep(down)
        stop_agent(p)
        real = spool_files(work)
        spooled = top_up_spool(work, max(total, real))
        # The coordinator is back; the agent starts with a full spool.
        standin.up = True
        t0 = time.time()
        p = start_agent(lifeboat, cfg, os.path.join(work, "agent2.log"))
        wait_for("the backlog", 600, lambda: len(standin.keys) >= spooled)
        elapsed = standin.last_arrival - t0
        stop_agent(p)
        return {
            "records_spooled_while_down": real,
            "records_replayed": spooled,
            "replay_seconds_from_agent_start": round(elapsed, 2),
            "replay_records_per_second": round(spooled / elapsed, 1) if elapsed > 0 else None,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lifeboat", default=os.path.join(ROOT, "target", "release", "lifeboat"))
    ap.add_argument("--systems", type=int, default=50)
    ap.add_argument("--idle", type=int, default=60, help="seconds of idle sampling")
    ap.add_argument("--accuracy", type=int, default=120, help="seconds of 10 s schedules")
    ap.add_argument("--down", type=int, default=30, help="seconds the coordinator refuses")
    ap.add_argument("--records", type=int, default=5000, help="spooled records to replay")
    ap.add_argument("--only", choices=["idle", "accuracy", "replay"], help="run one phase")
    args = ap.parse_args()
    if not os.access(args.lifeboat, os.X_OK):
        sys.exit(f"{args.lifeboat} not found: run `cargo build --release` first")
    results = {}
    if args.only in (None, "idle"):
        print(f"idle: {args.systems} systems ...", flush=True)
        results["idle"] = idle(args.lifeboat, args.systems, args.idle)
        print(json.dumps(results["idle"]), flush=True)
    if args.only in (None, "accuracy"):
        print("scheduling accuracy: 10 systems every 20 s ...", flush=True)
        results["accuracy"] = accuracy(args.lifeboat, args.accuracy)
        print(json.dumps(results["accuracy"]), flush=True)
    if args.only in (None, "replay"):
        print(f"spool replay: {args.records} records ...", flush=True)
        results["replay"] = replay(args.lifeboat, args.systems, args.down, args.records)
        print(json.dumps(results["replay"]), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
