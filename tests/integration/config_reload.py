#!/usr/bin/env python3
"""SIGHUP re-reads the config file without dropping state: a new rule path takes effect, a
section that needs a restart is named in a warning, and a broken config changes nothing."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, http_get, metric, run, scratch_dir, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
work = scratch_dir("gw-reload-")
data = os.path.join(work, "in.jsonl")
run([binary, "generate", "--duration", "30m", "-o", data])
custom = os.path.join(work, "extra.yaml")
with open(custom, "w") as f:
    f.write("""groups:
  - name: extra
    by: [model]
    rules:
      - alert: ExtraLatencyUp
        metric: latency
        current: {window: 5m}
        baseline: {window: 30m, offset: 5m}
        test: {kind: welch, alternative: greater}
        min_effect: {relative: 0.5}
""")
guardrails = os.path.join(root, "rules/guardrails.yaml")


def rule_names(d):
    groups = json.loads(http_get(d.url + "/api/v1/rules")[1])["groups"]
    return {r["alert"] for g in groups for r in g["rules"]}


d = Daemon(binary, f"rules: [{guardrails}]\n", ["--input", data])
try:
    wait_for(lambda: d.ready(), 60, "the input to be read")
    before = rule_names(d)
    m0 = d.metrics()
    applied = metric(m0, "guardwatch_records_total", outcome="applied")[0]
    windows = sum(metric(m0, "guardwatch_window_records", window="1h"))

    with open(d.config, "w") as f:  # one more rule file, a new listen address, more log
        f.write(f"rules: [{guardrails}, {custom}]\nlisten: 127.0.0.1:1\nlog: {{level: debug}}\n")
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in d.output(), 20, "the config reload")
    after = wait_for(lambda: (lambda n: n if n > before else None)(rule_names(d)), 20, "the new rule file's rules")
    assert "config changed in listen: takes effect after a restart" in d.output(), d.output()[-1500:]
    m1 = d.metrics()
    assert metric(m1, "guardwatch_records_total", outcome="applied")[0] == applied
    assert sum(metric(m1, "guardwatch_window_records", window="1h")) == windows, "state dropped on reload"
    print(f"ok: SIGHUP added {len(after - before)} rules from a new rule path, kept {int(windows)} windowed records, "
          "named the section that needs a restart")

    with open(d.config, "w") as f:
        f.write("rules: [\n")  # broken YAML
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "config reload failed" in d.output(), 20, "the failed reload")
    time.sleep(0.5)
    assert rule_names(d) == after, "a broken config changed the rules"
    print("ok: a broken config is reported and changes nothing")
finally:
    rc = d.stop()
assert rc == 0, d.output()
