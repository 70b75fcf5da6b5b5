#!/usr/bin/env python3
"""Rolling stop against a real Kafka broker (KRaft): replicas of one consumer group are stopped
one after another, each SIGTERMed as soon as the previous one exited, the way a rollout replaces
pods. Every stop starts a rebalance that hands the leaver's partitions to the replicas still
running, so the next replica is often told about its new partitions while it shuts down.

Regression test for a hang seen in CI: such an assignment reached the rebalance callback inside
librdkafka's close(), the callback looked up committed offsets for the warm-up, and that lookup
did not return there; the process ran into its 10 s shutdown deadline and exited 1.
GUARDWATCH_TEST_CLOSE_DELAY_MS widens the gap between the consume loop and close() so that the
race is hit in most rounds (without the fix, 8 of 36 replica stops hung here, in 9 rounds of 4
replicas; this test failed in its first round).

Checks: every replica exits 0 well inside the deadline; at least one received an assignment
after its stop signal (the race was exercised); and nothing was lost or left uncommitted: a fresh
replica afterwards applies no record anew and re-reads exactly what was produced as warm-up.
"""
import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, kafka_broker, kafka_config, metric, run, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
brokers = kafka_broker(root)
scenario = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scaleout-scenario.yaml")
COUNT, REPLICAS, MAX_ROUNDS, DEADLINE_S = 600, 4, 4, 10
windows = {"allowed_lateness": "50m", "max_future": "1h"}
props = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500}


def owned(d, topic):
    return len(metric(d.metrics(), "guardwatch_kafka_consumer_lag_messages", topic=topic))


def window_total(d):
    return sum(metric(d.metrics(), "guardwatch_window_records", window="1h"))


def assigned_after_signal(text):
    """An assignment logged after the stop signal: the rebalance reached a stopping replica."""
    after = text.split("received signal", 1)
    return len(after) == 2 and re.search(r'kafka: assigned \S', after[1]) is not None


raced = 0
for rnd in range(MAX_ROUNDS):
    topic = "rolling-" + uuid.uuid4().hex[:8]
    run([binary, "generate", "--scenario", scenario, "--seed", str(rnd + 1), "--start", "now-3m", "--count", str(COUNT),
         "--kafka-brokers", brokers, "--topic", topic, "--partitions", "6"])
    config = kafka_config(topic, brokers, props, windows)
    replicas = [Daemon(binary, config, env={"GUARDWATCH_TEST_CLOSE_DELAY_MS": "400"}) for _ in range(REPLICAS)]
    try:
        wait_for(lambda: sum(owned(d, topic) for d in replicas) == 6 and all(d.ready() for d in replicas)
                 and sum(window_total(d) for d in replicas) == COUNT, 90, f"{REPLICAS} replicas to share {COUNT} records")
        for d in replicas:
            t0 = time.monotonic()
            rc = d.stop(timeout=DEADLINE_S + 10)
            took = time.monotonic() - t0
            assert rc == 0, f"round {rnd}: exit code {rc} after {took:.1f}s\n{d.output()}"
            assert took < DEADLINE_S - 2, f"round {rnd}: shutdown took {took:.1f}s\n{d.output()}"
            raced += assigned_after_signal(d.output())
    finally:
        for d in replicas:
            if d.proc.poll() is None:
                d.kill()
    # Every record was applied and committed by the stopped replicas: a newcomer applies none anew
    # and its warm-up re-reads all of them (they are within the rewind of its 1h window).
    fresh = Daemon(binary, config)
    try:
        wait_for(lambda: owned(fresh, topic) == 6 and fresh.ready() and window_total(fresh) == COUNT, 90,
                 f"a fresh replica to own 6 partitions and re-read {COUNT} records")
        m = fresh.metrics()
        new = metric(m, "guardwatch_records_total", outcome="applied")
        warm = metric(m, "guardwatch_warmup_records_total", outcome="applied")
        lag = metric(m, "guardwatch_kafka_consumer_lag_messages", topic=topic)
        assert sum(new) == 0, f"round {rnd}: records applied anew after the rolling stop: {new}"
        assert sum(warm) == COUNT, f"round {rnd}: warm-up re-read {warm}, produced {COUNT}"
        assert sum(lag) == 0, f"round {rnd}: lag {lag}"
        assert fresh.stop() == 0
    finally:
        if fresh.proc.poll() is None:
            fresh.kill()
    print(f"ok: round {rnd}: {REPLICAS} replicas stopped one after another, each exit 0; "
          f"assignments during a stop so far: {raced}; a fresh replica re-read {COUNT}, applied 0 anew")
    if raced:
        break
assert raced, f"no replica received an assignment while stopping in {MAX_ROUNDS} rounds: the race was not exercised"
