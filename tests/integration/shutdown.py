#!/usr/bin/env python3
"""SIGTERM has one deadline (shutdown_timeout) for the whole shutdown, whatever does not answer:
1. alerts are firing and the Alertmanager accepts connections but never replies: the daemon
   gives up on the notifications at the deadline, says so, and exits 0 in time;
2. the Kafka broker is unreachable: the consumer's close and final commit cannot complete, and
   the daemon still exits within the deadline.
"""
import os
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, http_get, run, scratch_dir, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
part = sys.argv[3] if len(sys.argv) > 3 else "all"  # alertmanager | kafka (CTest runs them apart: kafka is not run under TSan)
work = scratch_dir("gw-shutdown-")

# A peer that accepts connections and never answers.
hole = socket.socket()
hole.bind(("127.0.0.1", 0))
hole.listen(64)
held = []
threading.Thread(target=lambda: [held.append(hole.accept()) for _ in iter(int, 1)], daemon=True).start()
hole_url = "http://127.0.0.1:%d" % hole.getsockname()[1]


def timed_stop(d, budget):
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    rc = d.proc.wait(budget + 5)
    return rc, time.time() - t0


data = os.path.join(work, "in.jsonl")
if part in ("all", "alertmanager"):
    run([binary, "generate", "--seed", "3", "-o", data])  # the built-in scenario: a candidate regresses
    rules = os.path.join(root, "rules", "guardrails.yaml")
    d = Daemon(binary, f"shutdown_timeout: 2s\nalerting: {{alertmanagers: [{hole_url}], timeout: 30s}}\n",
               ["--input", data, "--rules", rules])
    wait_for(lambda: '"firing"' in http_get(d.url + "/api/v1/alerts")[1], 60, "alerts to fire")
    time.sleep(1)  # the notifier has started a POST that will never be answered
    rc, took = timed_stop(d, 2)
    assert rc == 0, f"exit code {rc}\n{d.output()}"
    assert took < 3.5, f"took {took:.1f} s with a 2 s deadline"
    assert "undelivered" in d.output(), d.output()[-2000:]
    print(f"ok: unanswered Alertmanager: exit 0 after {took:.1f} s (deadline 2 s), undelivered alerts reported")

if part in ("all", "kafka"):
    # An unreachable broker.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    d = Daemon(binary, f"shutdown_timeout: 2s\nkafka:\n  topics: [t]\n  properties: {{bootstrap.servers: '127.0.0.1:{dead}', group.id: g}}\n")
    time.sleep(2)
    rc, took = timed_stop(d, 2)
    assert took < 3.5, f"took {took:.1f} s with a 2 s deadline\n{d.output()}"
    assert rc in (0, 1), rc
    print(f"ok: unreachable broker: exit {rc} after {took:.1f} s (deadline 2 s)")
