#!/usr/bin/env python3
"""Bad input never crashes or blocks guardwatch and is counted by reason: every class of the
malformed corpus (tests/malformed/make_corpus.py) replays with exactly the expected outcome
counts, and the good records around the bad ones are all applied. A cardinality bomb (10^6
distinct model names) stays within the series caps and a bounded memory."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import scratch_dir  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
corpus = scratch_dir("gw-corpus-")
subprocess.run([sys.executable, os.path.join(root, "tests/malformed/make_corpus.py"), corpus], check=True)
expected = json.load(open(os.path.join(corpus, "expected.json")))
for name, want in expected.items():
    path = os.path.join(corpus, name + ".jsonl")
    cfg = os.path.join(corpus, "cfg.yaml")
    with open(cfg, "w") as f:
        f.write("series: {max_series: 1000, max_values_per_label: 100}\n")
    # Peak RSS of this replay alone (wait4 on the child), not the maximum over all children.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([binary, "replay", "--config", cfg, "--input", path, "--report", "json"], stdout=out, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    assert p.returncode == 0, (name, p.returncode, stderr[-2000:])
    rep = json.loads(stdout)
    got = {k: v for k, v in rep["records"].items() if v}
    assert got == want, (name, got, want)
    if name == "cardinality_bomb":
        series = rep["series"]
        models = {s["labels"]["model"] for s in series}
        assert len(series) <= 101 and "__other__" in models, (len(series), sorted(models)[:5])
        rss_mib = usage.ru_maxrss / 1024
        # ASan's quarantine and shadow memory alone exceed the bound (a 10 MB record: ~470 MiB):
        # the bound is checked on the real binary, the sanitizer run checks for errors.
        if "ASAN_OPTIONS" not in os.environ:
            assert rss_mib < 400, f"peak RSS {rss_mib:.0f} MiB"
        print(f"ok: {name}: 10^6 model names -> {len(series)} series ({len(models)} models incl. __other__), peak RSS {rss_mib:.0f} MiB")
    else:
        print(f"ok: {name}: {got}")
