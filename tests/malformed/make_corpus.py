#!/usr/bin/env python3
"""Writes the malformed-input corpus into DIR: one JSONL file per class of bad input, each
mixed with good records, and `expected.json` with the outcome counts guardwatch must report.
Generated rather than committed because one class is a 10 MB message."""
import json
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
T = 1795672800  # 2026-11-26T06:00:00Z


def good(i, **over):
    r = {"ts": T + i, "request_id": f"ok-{i}", "model": "m", "endpoint": "chat", "variant": "control", "latency_ms": 500,
         "status": "ok", "response": "fine"}
    r.update(over)
    return json.dumps(r)


classes = {
    "invalid_utf8": ([b'{"ts":%d,"model":"m","response":"bad \xff\xfe bytes"}' % T,
                      b'{"ts":%d,"model":"\xc3\x28"}' % T], "invalid_utf8"),
    "oversized_10mb": ([b'{"ts":%d,"model":"m","response":"' % T + b"x" * (10 * 1024 * 1024) + b'"}'], "oversized"),
    # Nesting 20,000 deep where a field is read is a wrong type; unbalanced nesting is invalid.
    # (Deep but valid nesting in a field no pointer reads is skipped unread: see "deep_unread".)
    "deep_nesting": ([b'{"ts":%d,"response":' % T + b"[" * 20000 + b"]" * 20000 + b"}",
                      b'{"ts":%d,"model":' % T + b'{"a":' * 5000 + b"1" + b"}" * 5000 + b"}"], "wrong_type"),
    "deep_unbalanced": ([b'{"ts":%d,"x":' % T + b"[" * 20000 + b"}"], "invalid_json"),
    "wrong_types": ([b'{"ts":%d,"model":"m","latency_ms":"slow"}' % T, b'{"ts":%d,"model":{"name":"m"}}' % T,
                     b'{"ts":%d,"response":["a","b"]}' % T, b'{"ts":true}'], None),
    "nan_inf": ([b'{"ts":%d,"model":"m","latency_ms":NaN}' % T, b'{"ts":%d,"model":"m","latency_ms":Infinity}' % T,
                 b'{"ts":%d,"model":"m","latency_ms":1e999}' % T], "invalid_json"),
    "absurd_values": ([b'{"ts":%d,"model":"m","latency_ms":-5}' % T, b'{"ts":%d,"model":"m","latency_ms":1e12}' % T,
                       b'{"ts":%d,"model":"m","completion_tokens":-1}' % T, b'{"ts":%d,"model":"m","cost_usd":-0.5}' % T],
                      "invalid_value"),
    "timestamps": ([b'{"ts":"3026-11-26T06:00:00Z","model":"m"}', b'{"ts":"1970-01-01T00:00:00Z","model":"m"}',
                    b'{"ts":-5,"model":"m"}', b'{"ts":"yesterday","model":"m"}', b'{"ts":"2026-13-45T99:00:00Z"}'], "bad_timestamp"),
    "empty": ([b"", b"   ", b"\t"], "empty"),
    "not_an_object": ([b"[1,2,3]", b'"just a string"', b"42", b"null", b"{", b'{"ts":1}garbage'], "invalid_json"),
    "missing_timestamp": ([b'{"model":"m","response":"hi"}', b'{"ts":null,"model":"m"}'], "missing_timestamp"),
}
expected = {}
# Valid JSON nested 20,000 deep in a field no pointer reads: skipped without descending, applied.
with open(os.path.join(out, "deep_unread.jsonl"), "wb") as f:
    f.write(b'{"ts":%d,"model":"m","x":' % T + b"[" * 20000 + b"]" * 20000 + b"}\n")
expected["deep_unread"] = {"applied": 1}
# Long but within input.max_record_bytes (1 MiB): the file source reads 256 KiB at a time, so
# this line spans several reads and must still be applied whole.
with open(os.path.join(out, "long_valid.jsonl"), "wb") as f:
    f.write(good(0).encode() + b"\n")
    f.write(good(1, response="I can't help with that. " + "y" * (900 * 1024)).encode() + b"\n")
    f.write(good(2).encode() + b"\n")
expected["long_valid"] = {"applied": 3}
for name, (bad, outcome) in classes.items():
    with open(os.path.join(out, name + ".jsonl"), "wb") as f:
        for i in range(5):
            f.write(good(i).encode() + b"\n")
        for b in bad:
            f.write(b + b"\n")
        for i in range(5, 10):
            f.write(good(i).encode() + b"\n")
    if outcome:
        expected[name] = {"applied": 10, outcome: len(bad)}
    else:
        expected[name] = {"applied": 10, "wrong_type": 4}
# Cardinality bomb: 10^6 distinct model names.
with open(os.path.join(out, "cardinality_bomb.jsonl"), "w") as f:
    for i in range(1_000_000):
        f.write('{"ts":%d,"model":"model-%d","endpoint":"chat","latency_ms":%d,"status":"ok","response":"x"}\n' % (T + i // 1000, i, 100 + i % 900))
expected["cardinality_bomb"] = {"applied": 1_000_000}
json.dump(expected, open(os.path.join(out, "expected.json"), "w"), indent=1)
