#!/usr/bin/env python3
"""Bad input never crashes or blocks guardwatch and is counted by reason: every class of the
malformed corpus (tests/malformed/make_corpus.py) replays with exactly the expected outcome
counts, and the good records around the bad ones are all applied. A cardinality bomb (10^6
distinct model names) stays within the series caps and a bounded memory."""
import json
import os
import resource
import subprocess
import sys
import tempfile

binary, root = sys.argv[1], sys.argv[2]
corpus = tempfile.mkdtemp(prefix="gw-corpus-")
subprocess.run([sys.executable, os.path.join(root, "tests/malformed/make_corpus.py"), corpus], check=True)
expected = json.load(open(os.path.join(corpus, "expected.json")))
for name, want in expected.items():
    path = os.path.join(corpus, name + ".jsonl")
    cfg = os.path.join(corpus, "cfg.yaml")
    with open(cfg, "w") as f:
        f.write("series: {max_series: 1000, max_values_per_label: 100}\n")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    r = subprocess.run([binary, "replay", "--config", cfg, "--input", path, "--report", "json"], capture_output=True, timeout=300)
    assert r.returncode == 0, (name, r.returncode, r.stderr[-2000:])
    rep = json.loads(r.stdout)
    got = {k: v for k, v in rep["records"].items() if v}
    assert got == want, (name, got, want)
    if name == "cardinality_bomb":
        series = rep["series"]
        models = {s["labels"]["model"] for s in series}
        assert len(series) <= 101 and "__other__" in models, (len(series), sorted(models)[:5])
        rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        assert rss_mib < 400, f"peak RSS {rss_mib:.0f} MiB"
        print(f"ok: {name}: 10^6 model names -> {len(series)} series ({len(models)} models incl. __other__), peak RSS {rss_mib:.0f} MiB")
    else:
        print(f"ok: {name}: {got}")
