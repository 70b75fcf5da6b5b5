#!/usr/bin/env python3
"""Scale-out against a real Kafka broker (KRaft): three replicas in one consumer group share a
6-partition topic while records keep arriving. One replica is killed with SIGKILL mid-stream and
restarted later. After each warm-up the union (sum) of the replicas' window counts must equal what
was produced, exactly: a partition that moves is re-read by its new owner (rewind to now - window)
and emptied at its old owner, so nothing is missed and nothing is counted twice.

Also checks the warm-up bookkeeping: re-read records are counted in
guardwatch_warmup_records_total, not in guardwatch_records_total, and /readyz is 503 while a
replica re-reads.
"""
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, kafka_broker, kafka_config, metric, run, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
brokers = kafka_broker(root)
topic = "scale-" + uuid.uuid4().hex[:8]
scenario = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scaleout-scenario.yaml")
BATCH, BATCHES = 400, 24
produced = 0
produced_lock = threading.Lock()


def produce(seed, count):
    """One batch of seeded records, keyed by series (guardwatch generate keys by model/endpoint)."""
    global produced
    run([binary, "generate", "--scenario", scenario, "--seed", str(seed), "--start", "now-3m", "--count", str(count),
         "--kafka-brokers", brokers, "--topic", topic, "--partitions", "6"])
    with produced_lock:
        produced += count


config = kafka_config(topic, brokers, {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500},
                      {"allowed_lateness": "50m", "max_future": "1h"})


def window_total(d):
    return sum(metric(d.metrics(), "guardwatch_window_records", window="1h"))


last = {}


def union_equals_produced(replicas, want):
    """True once every replica is ready and their 1h window counts add up to `want`."""
    ready = [r.ready() for r in replicas]
    totals = [window_total(r) for r in replicas]
    last.update(ready=ready, totals=totals, sum=sum(totals), want=want)
    return all(ready) and sum(totals) == want and totals


produce(1, BATCH)  # the topic exists with 6 partitions before the group forms
replicas = [Daemon(binary, config) for _ in range(3)]
killed = None
try:
    def owned():
        return [len(metric(r.metrics(), "guardwatch_kafka_consumer_lag_messages", topic=topic)) for r in replicas]
    wait_for(lambda: sorted(owned()) == [2, 2, 2], 60, "6 partitions to split 2/2/2 over 3 replicas")
    got = wait_for(lambda: union_equals_produced(replicas, produced), 120, f"union of windows = {produced}")
    owned = owned()
    print(f"ok: 3 replicas own {owned} partitions; windows {got} add up to {produced}")

    # Mid-stream: a producer keeps sending batches while a replica dies and comes back.
    events = {}

    def stream():
        for i in range(BATCHES):
            produce(100 + i, BATCH)
            if i == 5:
                events["kill"] = threading.Event()
                events["kill"].set()
            time.sleep(0.4)

    t = threading.Thread(target=stream)
    t.start()
    wait_for(lambda: "kill" in events, 60, "the stream to be under way")
    killed = replicas.pop(0)
    killed.kill()
    print(f"SIGKILLed one replica after {produced} records")
    # The group notices after session.timeout.ms; the two survivors take over and re-read.
    wait_for(lambda: sum(len(metric(r.metrics(), "guardwatch_kafka_consumer_lag_messages", topic=topic)) for r in replicas) == 6,
             60, "the survivors to own all 6 partitions")
    time.sleep(2)
    restarted = Daemon(binary, config)
    replicas.append(restarted)
    t.join()
    total = produced
    try:
        got = wait_for(lambda: union_equals_produced(replicas, total), 180, f"union of windows = {total}")
    except AssertionError:
        for i, r in enumerate(replicas):
            m = r.metrics()
            print(f"replica {i}: ready={r.ready()} windows={window_total(r)} "
                  f"applied={metric(m, 'guardwatch_records_total', outcome='applied')} "
                  f"warm={metric(m, 'guardwatch_warmup_records_total', outcome='applied')} "
                  f"lag={metric(m, 'guardwatch_kafka_consumer_lag_messages', topic=topic)}")
            print("\n".join(l for l in r.output().splitlines() if "kafka:" in l or "revoked" in l or "warm" in l)[-3000:])
        # Which series lost or gained records: the batches are seeded, so regenerate their counts.
        import collections
        import json as _json
        want = collections.Counter()
        for seed in [1] + [100 + i for i in range(BATCHES)]:
            out = run([binary, "generate", "--scenario", scenario, "--seed", str(seed), "--start", "now-3m", "--count", str(BATCH), "-o", "-"])
            for line in out.splitlines():
                r = _json.loads(line)
                want[(r["model"], r["endpoint"])] += 1
        have = collections.Counter()
        for r in replicas:
            text = __import__("gwtest").http_get(r.url + "/metrics")[1]
            for line in text.splitlines():
                if line.startswith("guardwatch_window_records{") and 'window="1h"' in line:
                    lab = dict(kv.split("=", 1) for kv in line[line.index("{") + 1:line.index("}")].split(","))
                    have[(lab["model"].strip('"'), lab["endpoint"].strip('"'))] += int(float(line.rsplit(" ", 1)[1]))
        for k in sorted(want):
            if want[k] != have[k]:
                print(f"series {k}: produced {want[k]}, windows {have[k]}")
        raise AssertionError(f"union of windows: {last}")
    print(f"ok: after SIGKILL and restart the windows {got} add up to {total}, exactly")

    owned = [len(metric(r.metrics(), "guardwatch_kafka_consumer_lag_messages", topic=topic)) for r in replicas]
    assert sum(owned) == 6 and all(owned), f"every replica should own partitions again: {owned}"
    rewinds = sum(metric(r.metrics(), "guardwatch_kafka_rewinds_total")[0] for r in replicas)
    assert rewinds > 0, "moved partitions should have been rewound"
    warm = metric(restarted.metrics(), "guardwatch_warmup_records_total", outcome="applied")[0]
    assert warm > 0, "the restarted replica re-read records of the partitions it took over"
    new = metric(restarted.metrics(), "guardwatch_records_total", outcome="applied")[0]
    wtotal = window_total(restarted)
    assert warm + new == wtotal, f"restarted replica: re-read {warm} + new {new} != its windows {wtotal}"
    for r in replicas:
        assert metric(r.metrics(), "guardwatch_warmup_active")[0] == 0
    print(f"ok: {int(rewinds)} partition rewinds; the restarted replica re-read {int(warm)} records "
          f"(counted apart) and applied {int(new)} new ones")
finally:
    for r in replicas:
        rc = r.stop()
        assert rc == 0, f"exit code {rc}\n{r.output()}"
