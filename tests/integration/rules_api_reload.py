#!/usr/bin/env python3
"""guardwatch run with rules: alerts on /api/v1/alerts (with exemplars) and /metrics, every
evaluation on /api/v1/rules; a rule file that changes is reloaded; a broken one leaves the last
good rules running and sets guardwatch_config_last_reload_successful to 0; SIGHUP reloads."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, http_get, metric, run, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
work = tempfile.mkdtemp(prefix="gw-rules-")
rules_dir = os.path.join(work, "rules")
os.makedirs(rules_dir)
rule_file = os.path.join(rules_dir, "guardrails.yaml")
shutil.copy(os.path.join(root, "rules/guardrails.yaml"), rule_file)
data = os.path.join(work, "in.jsonl")
run([binary, "generate", "--duration", "40m", "-o", data])  # built-in scenario: candidate regresses at 13m20s

d = Daemon(binary, "", ["--input", data, "--rules", rules_dir])
try:
    wait_for(lambda: http_get(d.url + "/readyz")[0] == 200, 60, "the input to be read")
    alerts = json.loads(http_get(d.url + "/api/v1/alerts")[1])["alerts"]
    names = sorted(a["alertname"] for a in alerts if a["state"] == "firing")
    assert "CandidateRefusalRateUp" in names and "CandidateCitationRateDown" in names, names
    refusal = [a for a in alerts if a["alertname"] == "CandidateRefusalRateUp"][0]
    assert refusal["labels"]["model"] == "gpt-x" and refusal["evidence"]["p_value"] < 1e-4, refusal
    assert 1 <= len(refusal["exemplars"]) <= 5 and refusal["exemplars"][0]["request_id"].startswith("req-"), refusal
    assert "refuses more" in refusal["annotations"]["summary"], refusal["annotations"]
    rules = json.loads(http_get(d.url + "/api/v1/rules")[1])
    r0 = rules["groups"][0]["rules"][0]
    assert r0["alert"] == "CandidateRefusalRateUp" and r0["last_evaluation"] and r0["groups"], r0
    m = d.metrics()
    assert metric(m, "guardwatch_alert_state", alertname="CandidateRefusalRateUp", model="gpt-x") == [2]
    assert metric(m, "guardwatch_config_last_reload_successful") == [1]
    print(f"ok: firing {names}; exemplars {[e['request_id'] for e in refusal['exemplars']]}")

    # A broken rule file: the last good rules keep running, the gauge says so.
    with open(rule_file, "a") as f:
        f.write("      - alert: Broken\n        metric: no_such_metric\n")
    wait_for(lambda: metric(d.metrics(), "guardwatch_config_last_reload_successful") == [0], 20, "a failed reload")
    assert metric(d.metrics(), "guardwatch_alert_state", alertname="CandidateRefusalRateUp", model="gpt-x") == [2]
    assert "no_such_metric" in d.output() and "guardrails.yaml:" in d.output()
    # Fixed: reloaded, alerts kept.
    shutil.copy(os.path.join(root, "rules/guardrails.yaml"), rule_file)
    wait_for(lambda: metric(d.metrics(), "guardwatch_config_last_reload_successful") == [1], 20, "a good reload")
    ok_before = metric(d.metrics(), "guardwatch_config_reloads_total", result="success")[0]
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: metric(d.metrics(), "guardwatch_config_reloads_total", result="success")[0] == ok_before + 1, 20, "SIGHUP reload")
    assert metric(d.metrics(), "guardwatch_alert_state", alertname="CandidateRefusalRateUp", model="gpt-x") == [2]
    print("ok: broken file kept the last good rules; fixed file and SIGHUP reloaded; alerts kept")
finally:
    rc = d.stop()
assert rc == 0, d.output()

# Replay is deterministic: byte-identical timelines.
a = subprocess.run([binary, "replay", "--input", data, "--rules", rule_file], capture_output=True).stdout
b = subprocess.run([binary, "replay", "--input", data, "--rules", rule_file], capture_output=True).stdout
assert a == b and len(a.splitlines()) >= 4, (len(a), len(b))
print(f"ok: replay timeline identical across runs ({len(a.splitlines())} events)")
