#!/usr/bin/env python3
"""Integration: a series that stops receiving records expires on the wall clock (real broker, KRaft).

Reading Kafka, the rules evaluate on the wall clock, so `series.expire_after` counts on it too
(event time would be held back by any partition gone quiet), and the daemon's timer runs the pass
when no record comes. With `expire_after: 1m` (the shortest allowed: the longest report window,
here 1m):
1. a retired model version's records, stamped 50 s ago, are applied and show in the report;
2. with no record since, a minute past them the series goes: it leaves /api/v1/report and
   /metrics, guardwatch_series_expired_total counts it, and the log says so;
3. the next version's records make a series of their own.
"""
import json
import os
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, http_get, kafka_broker, kafka_config, metric, stopped_cleanly, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
brokers = kafka_broker(root)
topic = "expiry-" + uuid.uuid4().hex[:8]


def produce(version, ts, count):
    """`count` records of model m's `version`, event time `ts` (Unix seconds), through kcat."""
    lines = "".join(json.dumps({"ts": ts, "model": "m", "model_version": version, "endpoint": "chat", "response": "ok",
                                "latency_ms": 100}) + "\n" for _ in range(count))
    subprocess.run(["kcat", "-P", "-b", brokers, "-t", topic], input=lines, text=True, check=True, timeout=60)


def versions(d):
    """The model versions of the series the daemon holds (/api/v1/report lists every one; /metrics
    leaves out windows without records, and a 1m window is the current minute's bucket)."""
    report = json.loads(http_get(d.url + "/api/v1/report")[1])
    return sorted(s["labels"]["model_version"] for s in report["series"])


t_retired = int(time.time()) - 50
produce("retired", t_retired, 50)
config = kafka_config(topic, brokers, windows={"report": "[1m]", "allowed_lateness": "1h"}) + "series:\n  expire_after: 1m\n"
with stopped_cleanly(Daemon(binary, config)) as d:
    wait_for(lambda: metric(d.metrics(), "guardwatch_records_total", outcome="applied") == [50], 60, "the retired version's 50 records")
    assert versions(d) == ["retired"], versions(d)
    assert metric(d.metrics(), "guardwatch_series_expired_total") == [0]
    # No record comes: the timer's pass (at most every 15 s, a quarter of expire_after) drops it
    # once the wall clock is a minute past its records.
    wait_for(lambda: metric(d.metrics(), "guardwatch_series_expired_total") == [1], 60, "the retired series expired")
    assert time.time() >= t_retired + 60, "expired before a minute had passed"
    assert versions(d) == [], versions(d)
    assert metric(d.metrics(), "guardwatch_series") == [0]
    assert "1 series expired (no record for 1m, series.expire_after); 0 remain" in d.output()
    produce("current", int(time.time()), 300)
    wait_for(lambda: metric(d.metrics(), "guardwatch_records_total", outcome="applied") == [350], 60, "the current version's 300 records")
    assert versions(d) == ["current"], versions(d)
    assert metric(d.metrics(), "guardwatch_series") == [1]
print("ok: with no record since, the retired version's series expired a minute after its records (wall clock); the next one has its own")
