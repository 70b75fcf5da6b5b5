#!/usr/bin/env python3
"""`guardwatch run --input FILE` serves what it read until SIGTERM; its /metrics, scraped over
HTTP, passes `promtool check metrics` with no complaint, and /healthz and /readyz answer."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, http_get, metric, parse_metrics, run, scratch_dir, wait_for  # noqa: E402

binary = sys.argv[1]
d_tmp = scratch_dir("gw-promtool-")
path = os.path.join(d_tmp, "in.jsonl")
run([binary, "generate", "--count", "5000", "-o", path])
with open(path, "a") as f:  # malformed lines are counted, not fatal
    f.write("not json\n{\"ts\":\"never\"}\n\n{\"ts\":1795672800,\"latency_ms\":\"x\"}\n")
d = Daemon(binary, "", ["--input", path])
try:
    wait_for(lambda: http_get(d.url + "/readyz")[0] == 200, 30, "readyz after the input is read")
    assert http_get(d.url + "/healthz")[0] == 200
    text = http_get(d.url + "/metrics")[1]
    m = parse_metrics(text)
    assert metric(m, "guardwatch_records_total", outcome="applied") == [5000], metric(m, "guardwatch_records_total")
    assert metric(m, "guardwatch_records_total", outcome="invalid_json") == [1]
    assert metric(m, "guardwatch_records_total", outcome="bad_timestamp") == [1]
    assert metric(m, "guardwatch_records_total", outcome="empty") == [1]
    assert metric(m, "guardwatch_records_total", outcome="wrong_type") == [1]
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    builds = [(dict(k[1]), v) for k, v in m.items() if k[0] == "guardwatch_build_info"]
    assert len(builds) == 1 and builds[0][1] == 1, builds
    assert builds[0][0]["version"] == version and builds[0][0]["revision"], (builds, version)
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    print(r.stdout + r.stderr)
    assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), "promtool check metrics complained"
    print(f"ok: {len(text.splitlines())} lines of /metrics pass promtool check metrics")
finally:
    rc = d.stop()
assert rc == 0, d.output()
