#!/usr/bin/env python3
"""`guardwatch extract` explains each record as the daemon sees it: one JSON line per input line,
with its outcome; for an applied or late record its labels, every proxy metric and the lexicon
patterns that matched; for a skipped one, why. Checked on hand-written records (refusals, hard
negatives, code, citations, each class of bad input) and against `guardwatch replay` on a
generated log: summing extract's per-record values per series gives replay's window values."""
import datetime
import json
import math
import os
import subprocess
import sys
from collections import Counter, defaultdict

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import scratch_dir  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
work = scratch_dir("gw-extract-")


def extract(lines, *extra):
    path = os.path.join(work, "in.jsonl")
    with open(path, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    p = subprocess.run([binary, "extract", "--input", path, *extra], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    out = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(out) == len(lines), (len(out), len(lines), p.stdout[-2000:])
    assert [o["line"] for o in out] == list(range(1, len(lines) + 1)), out
    return out


def rec(ts, response, **kw):
    r = {"ts": ts, "model": "m1", "model_version": "v1", "endpoint": "chat", "latency_ms": 250, "status": "ok",
         "response": response}
    r.update(kw)
    return json.dumps(r, ensure_ascii=False)


T = "2026-11-27T10:00:00Z"
EPOCH_MS = int(datetime.datetime(2026, 11, 27, 10, 0, 0, tzinfo=datetime.timezone.utc).timestamp()) * 1000 + 123
cases = [
    rec(T, "I'm sorry, but I can't help with that request."),                            # 1 refusal
    rec(T, "I can't wait to show you how this works: first, open the settings page."),  # 2 hard negative
    rec(T, "Here is the log line you asked about:\n```\nI cannot help with that.\n```\nIt comes from the filter."),  # 3 code
    rec(T, "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen."),                  # 4 German refusal
    rec(T, "Paris is the capital of France [1].\n\nSources:\n[1] https://en.wikipedia.org/wiki/Paris"),  # 5 citation
    rec(T, ""),                                                                          # 6 empty response
    '{"ts": "2026-11-27T10:00:01Z", "model": ',                                          # 7 cut JSON
    json.dumps({"model": "m1", "response": "no time"}),                                  # 8 no timestamp
    rec("yesterday", "bad time"),                                                        # 9 bad timestamp
    rec(T, "negative latency", latency_ms=-5),                                           # 10 invalid value
    rec("2026-11-20T10:00:00Z", "Sorry, I cannot help with that."),                      # 11 late
    rec(EPOCH_MS, "epoch milliseconds", status=503),                                     # 12 error, epoch ms
]
out = extract(cases)
outcomes = [o["outcome"] for o in out]
assert outcomes == ["applied"] * 6 + ["invalid_json", "missing_timestamp", "bad_timestamp", "invalid_value", "late",
                                      "applied"], outcomes

one = out[0]
assert one["labels"] == {"model": "m1", "model_version": "v1", "endpoint": "chat", "variant": ""}, one
assert one["ts"] == "2026-11-27T10:00:00.000Z", one
assert one["metrics"]["refusal"] is True and one["metrics"]["citation"] is False, one
assert one["metrics"]["latency"] == 0.25, one  # seconds: the base unit
assert one["metrics"]["response_chars"] == len("I'm sorry, but I can't help with that request."), one
assert "en_sorry_but_cant" in one["matched"]["refusal"], one
assert "detail" not in one, one

assert out[1]["metrics"]["refusal"] is False and "refusal" not in out[1]["matched"], out[1]
# Inside a fenced block the phrase is quoted, not said: no refusal, and no pattern reported.
assert out[2]["metrics"]["refusal"] is False and "refusal" not in out[2]["matched"], out[2]
assert out[3]["metrics"]["refusal"] is True and any(n.startswith("de_") for n in out[3]["matched"]["refusal"]), out[3]
five = out[4]
assert five["metrics"]["citation"] is True and five["metrics"]["refusal"] is False, five
assert {"url", "bracket_ref", "sources_section"} <= set(five["matched"]["citation"]), five
assert out[5]["metrics"]["empty"] is True, out[5]

# Skipped records say why, in the output itself (the log's samples are rate-limited).
for o in out[6:10]:
    assert o.get("detail") and "metrics" not in o, o
assert "/ts" in out[7]["detail"], out[7]
assert "yesterday" in out[8]["detail"], out[8]
assert "latency" in out[9]["detail"], out[9]
# A late record was extracted before the store dropped it: its values are shown with the reason.
late = out[10]
assert "watermark" in late["detail"] and late["ts"] == "2026-11-20T10:00:00.000Z", late
assert late["metrics"]["refusal"] is True and late["matched"]["refusal"], late
twelve = out[11]
assert twelve["ts"] == "2026-11-27T10:00:00.123Z" and twelve["metrics"]["error"] is True, twelve

# A custom metric declared in a rule file (--rules) is extracted too.
rules = os.path.join(work, "custom.yaml")
with open(rules, "w") as f:
    f.write("metrics:\n  - name: mentions_paris\n    kind: proportion\n    pattern: '\\bparis\\b'\nrules: []\n")
custom = extract([cases[0], cases[4]], "--rules", rules)
assert [o["metrics"].get("mentions_paris") for o in custom] == [False, True], custom
assert custom[1]["matched"].get("mentions_paris"), custom[1]

# Against replay: extract's values, summed per series, are replay's window values.
gen = os.path.join(work, "gen.jsonl")
subprocess.run([binary, "generate", "--count", "3000", "-o", gen], check=True, capture_output=True)
lines = open(gen).read().splitlines()
out = extract(lines)
rep = json.loads(subprocess.run([binary, "replay", "--input", gen, "--report", "json"], check=True,
                                capture_output=True, text=True).stdout)
tally = Counter(o["outcome"] for o in out)
assert {k: v for k, v in rep["records"].items() if v} == dict(tally), (rep["records"], tally)
assert tally["applied"] == 3000, tally
sums = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))  # series -> metric -> [n, sum]
for o in out:
    key = tuple(sorted(o["labels"].items()))
    for m, v in o["metrics"].items():
        s = sums[key][m]
        s[0] += 1
        s[1] += float(v)
checked = 0
assert len(rep["series"]) == len(sums), (len(rep["series"]), len(sums))
for series in rep["series"]:
    key = tuple(sorted(series["labels"].items()))
    window = series["windows"]["1h"]["metrics"]  # the generated records span under a minute
    for m, (n, total) in sums[key].items():
        w = window[m]
        if "trials" in w:
            assert (w["trials"], w["successes"]) == (n, total), (key, m, w, n, total)
        else:
            assert w["count"] == n and math.isclose(w["sum"], total, rel_tol=1e-9), (key, m, w, n, total)
        checked += 1
assert checked > 50, checked
print(f"extract: {len(cases)} hand-written records, {len(lines)} generated ones in {len(sums)} series "
      f"({checked} metric sums) agree with replay")
