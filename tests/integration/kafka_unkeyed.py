#!/usr/bin/env python3
"""Integration: producers that do not key records by series (real broker, KRaft).

guardwatch's scale-out contract is that producers key records by series, so that a series lives
on one partition and so on one replica (docs/operations.md, "Scale-out and warm-up"). Without
keys a series is spread over every partition. A revoke then cannot empty just what the revoked
partitions brought, since buckets and sketches do not subtract: the replica empties every series
and re-reads its kept partitions too (docs/design.md). This checks that this path is exact with
two replicas, against a real broker and an unkeyed producer (kcat -P, random partitions):

1. replica A alone reads everything;
2. replica B joins: the group moves partitions to B; A warns, empties every series and re-reads
   the partitions it kept, B re-reads the ones it got; the union of the windows is still every
   record once, and no record counts twice in guardwatch_records_total;
3. more records arrive and are counted once;
4. B stops: A gets B's partitions back and re-reads them; A alone holds every record once.
"""
import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, kafka_broker, kafka_config, metric, run, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
brokers = kafka_broker(root)
topic = "unkeyed-" + uuid.uuid4().hex[:8]
scenario = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scaleout-scenario.yaml")
N1, N2 = 2400, 1200


def produce_unkeyed(seed, count):
    """guardwatch generate's lines through kcat without keys: each lands on a random partition
    (sticky partitioning off, which would send a whole batch to one)."""
    lines = run([binary, "generate", "--scenario", scenario, "--seed", str(seed), "--start", "now-3m",
                 "--count", str(count)])
    r = subprocess.run(["kcat", "-P", "-b", brokers, "-t", topic, "-X", "topic.partitioner=random",
                        "-X", "sticky.partitioning.linger.ms=0"], input=lines,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def windows(d):
    return int(sum(metric(d.metrics(), "guardwatch_window_records", window="1h")))


def applied(d):
    return int(sum(metric(d.metrics(), "guardwatch_records_total", outcome="applied")))


def partitions(d):
    return len(metric(d.metrics(), "guardwatch_kafka_consumer_lag_messages", topic=topic))


# The topic with 4 partitions first, through guardwatch generate (kcat would create it with the
# broker's default of one): its one record is keyed, every other one is not.
run([binary, "generate", "--scenario", scenario, "--seed", "9", "--start", "now-3m", "--count", "1",
     "--kafka-brokers", brokers, "--topic", topic, "--partitions", "4"])
produce_unkeyed(1, N1 - 1)
props = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
config = kafka_config(topic, brokers, props, {"allowed_lateness": "50m", "max_future": "1h"})
a = Daemon(binary, config)
b = None
try:
    wait_for(lambda: a.ready() and windows(a) == N1, 60, f"replica A alone: {N1} records")
    series = len(metric(a.metrics(), "guardwatch_window_records", window="1h"))
    print(f"ok: replica A alone holds all {N1} records in {series} series")

    b = Daemon(binary, config)
    wait_for(lambda: partitions(a) + partitions(b) == 4 and partitions(b) > 0, 60, "the partitions split over A and B")
    wait_for(lambda: a.ready() and b.ready() and windows(a) + windows(b) == N1, 60,
             f"the union of A's and B's windows back to {N1}")
    assert "producers do not key records by series" in a.output(), a.output()[-4000:]
    # Spread for real: each replica holds a fair share, of every series.
    shares = [windows(a), windows(b)]
    assert min(shares) > N1 // 4, f"records not spread over the partitions: {shares}"
    for d in (a, b):
        n = len([v for v in metric(d.metrics(), "guardwatch_window_records", window="1h") if v > 0])
        assert n == series, f"a replica holds {n} of the {series} series: the records are keyed after all"
    assert applied(a) + applied(b) == N1, f"records_total A {applied(a)} + B {applied(b)}, want {N1}"
    print(f"ok: after B joined ({partitions(a)}/{partitions(b)} partitions), windows {windows(a)} + {windows(b)} = {N1}; "
          f"A warned and re-read its kept partitions")

    produce_unkeyed(2, N2)
    wait_for(lambda: windows(a) + windows(b) == N1 + N2, 60, f"the union at {N1 + N2}")
    assert applied(a) + applied(b) == N1 + N2, f"records_total A {applied(a)} + B {applied(b)}, want {N1 + N2}"
    print(f"ok: {N2} more records: windows {windows(a)} + {windows(b)} ({partitions(a)}/{partitions(b)} partitions), "
          "each record counted once")

    assert b.stop() == 0, b.output()[-4000:]
    b = None
    wait_for(lambda: partitions(a) == 4 and a.ready() and windows(a) == N1 + N2, 60, f"A alone again at {N1 + N2}")
    print(f"ok: B stopped: A holds all 4 partitions and all {N1 + N2} records once")
    assert a.stop() == 0, a.output()[-4000:]
except BaseException:
    for name, d in (("A", a), ("B", b)):
        if d:
            print(f"replica {name} log (last 6,000 characters):\n" + d.output()[-6000:])
            d.stop()
    raise
