#!/usr/bin/env python3
"""Instructions per redirect, counted by callgrind: repeatable on a noisy shared machine.

    bench/callgrind.py [BINARY] [BASELINE]   # defaults: target/prof/release/{akti-link,examples/baseline}

Build with line tables so that the breakdown names functions and lines:

    CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=target/prof \
        cargo build --release --bin akti-link --example baseline

Each server runs under `valgrind --tool=callgrind` with instrumentation off; after its
warm-up, instrumentation is switched on for exactly one wrk run of a scenario, then off,
and the counts are dumped. The figure is the process's instructions (every thread,
including the periodic work that ran meanwhile) divided by the requests wrk completed.
Under valgrind a request takes ~50 times longer, so per-request shares of time-driven work
(the counts flush, the change-feed markers, the dispatcher's polls) are inflated by as
much: the breakdown (`callgrind_annotate` of the dumps in the work directory) shows them
apart. Scenarios: the bare axum baseline, S1 (bot clicks), S2 (human clicks in open
windows), S2 on links with device destinations, S3 (each click opens a window; Redis' own
work is not counted, only the service's). BENCH_CG_LINKS (default 20,000) links each.
"""

import glob
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
args = sys.argv[1:]
sys.argv = sys.argv[:1]
import run as bench  # noqa: E402  (reads sys.argv at import)

ROOT = bench.ROOT
BINARY = args[0] if args else os.path.join(ROOT, "target/prof/release/akti-link")
BASELINE = args[1] if len(args) > 1 else os.path.join(ROOT, "target/prof/release/examples/baseline")
LINKS = int(os.environ.get("BENCH_CG_LINKS", "20000"))
SECONDS = int(os.environ.get("BENCH_CG_SECONDS", "10"))
DEVICE = {"iosUrl": "https://apps.apple.com/app/id123", "androidUrl": "https://play.google.com/store/apps/details?id=com.shop"}


def under_callgrind(name, cmd, env=None):
    out = os.path.join(bench.WORK, f"callgrind.{name}.out")
    proc = bench.spawn(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", *cmd],
                       env=env, name=f"cg-{name}")
    return proc, out


def measure(proc, out, name, url, codes_file, agent):
    """Instructions per request of one wrk run against a server under callgrind."""
    control = ["callgrind_control"]
    subprocess.run([*control, "-i", "on", str(proc.pid)], check=True, capture_output=True)
    wrk = subprocess.run(["taskset", "-c", bench.LOAD_CPU, "wrk", "-t1", "-c4", f"-d{SECONDS}s", "-s", bench.LUA, url],
                         env={**os.environ, "CODES": codes_file, "UA": agent}, capture_output=True, text=True).stdout
    subprocess.run([*control, "-i", "off", str(proc.pid)], check=True, capture_output=True)
    before = set(glob.glob(out + "*"))
    subprocess.run([*control, "-d", name, str(proc.pid)], check=True, capture_output=True)
    time.sleep(1)
    dump = max(set(glob.glob(out + "*")) - before, key=os.path.getmtime)
    requests = int(re.search(r"(\d+) requests in", wrk).group(1))
    non_redirects = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
    if non_redirects:
        bench.log(f"  {name}: {non_redirects.group(1)} answers that are not redirects")
    with open(dump) as f:
        # A dump's `totals:` is what was collected since the last one (its `summary:` is not).
        total = int(next(line for line in f if line.startswith("totals:")).split()[1])
    per_request = total / requests
    bench.log(f"  {name}: {requests} requests, {per_request:,.0f} instructions each ({dump})")
    return {"requests": requests, "instructions": total, "per_request": per_request, "dump": dump}


class Profiled(bench.Service):
    def start(self):
        self.proc, self.out = under_callgrind(self.name, [BINARY], self.env)
        bench.wait_for(f"{self.admin}/healthz", timeout=120)


def main():
    bench.BIN = BINARY
    results = {}
    codes_file = bench.write_codes([f"c{i}" for i in range(LINKS)], "cg-baseline")
    port = bench.free_port()
    proc, out = under_callgrind("baseline", [BASELINE, f"127.0.0.1:{port}", codes_file])
    bench.wait_for(f"http://127.0.0.1:{port}/c1", timeout=120)
    results["axum baseline"] = measure(proc, out, "baseline", f"http://127.0.0.1:{port}", codes_file, bench.HUMAN)

    redis = bench.Redis()
    repeat = Profiled("repeat", {"AKTI_REDIS_URL": redis.url}, AKTI_DEDUP_WINDOW="1h")
    plain, _ = repeat.bulk(LINKS, "plain", "1")
    device, _ = repeat.bulk(LINKS, "device", "2", **DEVICE)
    plain_file, device_file = bench.write_codes(plain, "cg-plain"), bench.write_codes(device, "cg-device")
    # Opens every lead's window (and caches every link) before anything is counted.
    for codes in (plain_file, device_file):
        for _ in range(3):
            bench.wrk(repeat.public, codes, bench.HUMAN, seconds=SECONDS)
    for name, codes, agent in [("S1 bots", plain_file, bench.BOT), ("S2 repeats", plain_file, bench.HUMAN),
                               ("S2 repeats, device links", device_file, bench.HUMAN)]:
        results[name] = measure(repeat.proc, repeat.out, name.replace(" ", "_").replace(",", ""), repeat.public, codes, agent)
    repeat.stop()

    fresh = Profiled("fresh", {"AKTI_REDIS_URL": redis.url}, AKTI_DEDUP_WINDOW="1ms")
    fresh_codes, _ = fresh.bulk(LINKS, "fresh", "3")
    fresh_file = bench.write_codes(fresh_codes, "cg-fresh")
    bench.wrk(fresh.public, fresh_file, bench.BOT, seconds=SECONDS)
    results["S3 new window + event"] = measure(fresh.proc, fresh.out, "S3", fresh.public, fresh_file, bench.HUMAN)
    fresh.stop()

    base = results["axum baseline"]["per_request"]
    print(f"\ninstructions per request (callgrind), {LINKS} links, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print("\n| scenario | instructions | ÷ bare axum |\n| --- | ---: | ---: |")
    for name, r in results.items():
        print(f"| {name} | {r['per_request']:,.0f} | {r['per_request'] / base:.2f} |")
    print(f"\ndumps: {bench.WORK} (callgrind_annotate --inclusive=yes <dump>)")
    with open(os.path.join(bench.WORK, "callgrind.json"), "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    bench.run_then_stop(main)
