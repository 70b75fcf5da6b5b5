#!/usr/bin/env python3
"""Every query of the shipped Grafana dashboard, with its variables filled in, returns data from
a real Prometheus scraping guardwatch, which consumes a regression scenario from a real Kafka
broker with the shipped rules."""
import json
import os
import re
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, kafka_broker, Prometheus, run, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
brokers = kafka_broker(root)
topic = "dash-" + uuid.uuid4().hex[:8]
# The built-in scenario (gpt-x control and candidate, small-y; the candidate regresses a third of
# the way in), ending now, plus a few malformed records for the input-health panels.
run([binary, "generate", "--duration", "40m", "--start", "now-40m", "--kafka-brokers", brokers, "--topic", topic, "--partitions", "3"])
dashboard = json.load(open(os.path.join(root, "docs/grafana/guardwatch.json")))
config = f"""
kafka:
  topics: [{topic}]
  properties: {{bootstrap.servers: "{brokers}", group.id: {topic}}}
windows: {{allowed_lateness: 1h}}
extract:
  prices: {{gpt-x: {{input_per_million: 2.5, output_per_million: 10}}, "*": {{input_per_million: 0.5, output_per_million: 1.5}}}}
rules: [{os.path.join(root, "rules/guardrails.yaml")}]
"""
d = Daemon(binary, config)
prom = None
try:
    wait_for(lambda: "kafka: assigned" in d.output(), 30, "partition assignment")
    prom = Prometheus([d.url.replace("http://", "")])
    # Rules evaluate on the wall clock every 30 s; wait for the alerts and two minutes of scrapes.
    wait_for(lambda: prom.query('guardwatch_alert_state{alertname="CandidateRefusalRateUp"}'), 120, "the refusal alert")
    # Both rule groups evaluated (the day-over-day group runs every minute) and were scraped.
    wait_for(lambda: prom.query('guardwatch_rule_current_value{group="drift-vs-yesterday"}'), 150, "the day-over-day group's first evaluation")
    time.sleep(5)
    # Day-over-day rules have no baseline a day ago in a 40-minute test: their baseline query is
    # expected to be empty until a day of history exists.
    expected_empty = set()
    for p in dashboard["panels"]:
        for t in p.get("targets", []):
            if "VsYesterday" in t["expr"] and "guardwatch_rule_baseline_value" in t["expr"]:
                expected_empty.add(t["expr"])
    checked, empty = 0, []
    for p in dashboard["panels"]:
        for t in p.get("targets", []):
            expr = t["expr"].replace("$model", ".*").replace("$endpoint", ".*").replace("$window", "5m")
            assert "$" not in expr, expr
            res = prom.query(expr)
            checked += 1
            if not res and t["expr"] not in expected_empty:
                empty.append((p["title"], expr))
    assert not empty, "queries without data:\n" + "\n".join(f"  {a}: {b}" for a, b in empty)
    print(f"ok: {checked} dashboard queries return data ({len(expected_empty)} day-over-day baselines skipped: no history a day ago)")
finally:
    rc = d.stop()
    if prom:
        prom.stop()
assert rc == 0, d.output()
