#!/usr/bin/env python3
"""Redis memory of the analytics layout (src/store/redis/keys.rs), on a private
redis-server: a campaign's series over 90 days, and what firstClickedAt and deliveredAt
add to a link's stats hash. Run: python3 bench/analytics_memory.py

The series is written as the service writes it (hash per 6-hour block of quarter-hour
buckets, field = the bucket's place in the block, value = BucketCounts::encode, base 36),
with a bucket in every quarter hour of the 90 days, for three shapes of bucket: a busy
campaign's (clicks, bots, events, uniques, three systems, two time-to-click bands, two or
three decimal digits each), all 19 numbers at 999, and all 19 at 46,655 (three base-36
digits: 75 bytes, over Redis' 64-byte listpack value limit, so the hashes become
hashtables)."""
import socket, subprocess, tempfile, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True).stdout.strip()

def used(port):
    info = cli(port, "INFO", "memory")
    return int(next(l.split(":")[1] for l in info.splitlines() if l.startswith("used_memory:")))

def pipe(port, commands):
    data = "".join("*%d\r\n" % len(c) + "".join("$%d\r\n%s\r\n" % (len(str(a).encode()), a) for a in c) for c in commands)
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True, text=True, check=True)

port = free_port()
work = tempfile.mkdtemp()
server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", work],
                          stdout=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            cli(port, "PING"); break
        except subprocess.CalledProcessError:
            time.sleep(0.05)
    block_ms, quarter_ms = 6 * 3600_000, 900_000
    start = (1_790_000_000_000 // block_ms) * block_ms
    shapes = [("busy", "14,c,c,f,0,0,p,c,0,3,0,0,0,0,5,4"), ("full", ",".join(["rr"] * 19)),
              ("huge", ",".join(["zzz"] * 19))]
    results = []
    for shape, value in shapes:
      campaigns = 20
      before = used(port)
      commands = []
      for c in range(campaigns):
        for b in range(90 * 4):
            block = start + b * block_ms
            key = "akti:{p3.2}:series:q:%s-%04d:%d" % (shape, c, block // block_ms)
            for q in range(24):
                commands.append(["HSET", key, q, value])
      pipe(port, commands)
      series = (used(port) - before) / campaigns
      encoding = cli(port, "OBJECT", "ENCODING", "akti:{p3.2}:series:q:%s-0000:%d" % (shape, start // block_ms))
      results.append((shape, len(value), series, encoding))

    links = 100_000
    commands = [["HSET", "akti:{p3.2}:stats:link:code%07d" % i, "clicks", 2, "clickEvents", 1, "botClicks", 3,
                 "lastClickedAt", 1_790_000_123_456] for i in range(links)]
    pipe(port, commands)
    before = used(port)
    commands = [["HSET", "akti:{p3.2}:stats:link:code%07d" % i, "firstClickedAt", 1_790_000_100_000,
                 "deliveredAt", 1_790_000_000_000] for i in range(links)]
    pipe(port, commands)
    per_link = (used(port) - before) / links
    for shape, length, series, encoding in results:
        print("campaign series, 90 days, a %s bucket (%d bytes) every quarter hour: %.0f KB per campaign (%s)"
              % (shape, length, series / 1024, encoding))
    print("firstClickedAt + deliveredAt on a link's stats hash: %.1f bytes per link" % per_link)
finally:
    server.terminate(); server.wait()
