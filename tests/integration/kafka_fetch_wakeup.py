#!/usr/bin/env python3
"""Integration: a consumer that drains librdkafka's prefetch queue wakes the fetcher.

librdkafka 2.0 stops fetching while its prefetch queue is at queued.max.messages.kbytes and looks
again only at its broker thread's next one-second tick; the daemon wakes it once the queue has
drained from near full (daemon/source/kafka.cpp, FetchWake). Here a real broker holds a 3-partition
backlog of ~40 MB and the daemon runs with a 1 MiB prefetch limit, so the queue is full after
every fetch: the daemon must wake the fetcher (guardwatch_kafka_fetch_wakeups_total counts it)
and apply every record exactly once. The time taken is printed, not asserted: without the
wake-ups each of the ~40 refills would wait for the next tick.

Then `run --stop-after N` (what bench/kafka.sh times) on the same backlog in a fresh group: it
wakes its own consume loop once N records are read, and must say so and exit 0.
"""
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, kafka_broker, kafka_config, metric, run, scratch_dir, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
brokers = kafka_broker(root)
topic = "wake-" + uuid.uuid4().hex[:8]
N = 30000
run([binary, "generate", "--seed", "5", "--start", "now-20m", "--count", str(N),
     "--kafka-brokers", brokers, "--topic", topic, "--partitions", "3"])

config = kafka_config(topic, brokers, {"queued.max.messages.kbytes": 1024}, {"allowed_lateness": "1h"})
t0 = time.time()
d = Daemon(binary, config)
try:
    applied = lambda: metric(d.metrics(), "guardwatch_records_total", outcome="applied")[0]  # noqa: E731
    wait_for(lambda: applied() >= N, 120, f"{N} applied records")
    took = time.time() - t0
    time.sleep(1)  # anything applied twice would show up by now
    m = d.metrics()
    assert applied() == N and sum(metric(m, "guardwatch_records_total")) == N, (applied(), N)
    wakeups = metric(m, "guardwatch_kafka_fetch_wakeups_total")
    assert len(wakeups) == 1 and wakeups[0] >= 3, f"fetcher woken {wakeups} times for a backlog of ~40 full queues"
    print(f"ok: {N} records applied once each in {took:.1f} s with a 1 MiB prefetch; fetcher woken {wakeups[0]:.0f} times")
finally:
    d.stop()

config_b = os.path.join(scratch_dir(topic + "-"), "stop-after.yaml")
with open(config_b, "w") as f:
    f.write(kafka_config(topic, brokers, {"group.id": topic + "-b"}, {"allowed_lateness": "1h"}))
t0 = time.time()
r = subprocess.run([binary, "run", "--config", config_b, "--listen", "127.0.0.1:0", "--stop-after", str(N)],
                   capture_output=True, text=True, timeout=120)
took = time.time() - t0
assert r.returncode == 0, r.stderr
assert f"read {N} records (--stop-after): stopping" in r.stderr, r.stderr
print(f"ok: run --stop-after {N} read its records and exited 0 after {took:.1f} s")
