#!/usr/bin/env python3
"""kafka.properties pass through to librdkafka, `debug` too: the lines it asks for reach the log
at info (they used to be dropped), and without it nothing of librdkafka's below a warning does
(its info lines repeat the error events). No broker is needed: nothing listens on port 1.
Labelled kafka: TSan builds cannot run librdkafka (its C11 threads are not instrumented)."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import scratch_dir  # noqa: E402

binary = sys.argv[1]
work = scratch_dir("gw-kafka-log-")


def kafka_log(props):
    cfg = os.path.join(work, "kafka.yaml")
    with open(cfg, "w") as f:
        f.write("kafka:\n  topics: [t]\n  properties: {bootstrap.servers: '127.0.0.1:1', group.id: g%s}\n" % props)
    d = subprocess.Popen([binary, "run", "--config", cfg, "--listen", "127.0.0.1:0"], stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    d.terminate()
    _, err = d.communicate(timeout=30)
    assert d.returncode == 0, (d.returncode, err[-2000:])
    return [e for e in err.splitlines() if "level=info" in e and 'msg="kafka: ' in e]


debug_lines = kafka_log(", debug: broker")
assert any("kafka: BROKER " in e for e in debug_lines) and any("kafka: STATE " in e for e in debug_lines), debug_lines[:5]
quiet = kafka_log("")
assert quiet == [], quiet
print(f"kafka debug log: {len(debug_lines)} lines with debug: broker, none without")
