#!/usr/bin/env python3
"""Integration: a consumer whose group session expired (real broker, KRaft).

When a member misses its heartbeats for longer than `session.timeout.ms` (a long GC-like stall,
a broker outage longer than the session), the broker drops it, librdkafka revokes its partitions
as lost, and the commit of what it applied since its last commit fails. When it joins again it
is assigned the partitions back at the old committed offset and reads those records once more.
The windows were emptied at the revoke, so they need those records again; but this process
has counted them already. It must count the second reading as warm-up
(guardwatch_warmup_records_total), not as new records, or guardwatch_records_total jumps by the
uncommitted tail after every such stall. And the re-read records' offsets must still be
committed: a replica that takes over afterwards must not read them a third time.

The stall is a SIGSTOP of the daemon for longer than its session (6 s, the broker's minimum),
with auto-commit slowed to a minute so that nothing is committed before it: every record read
before the stall is the uncommitted tail.
"""
import os
import signal
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, kafka_broker, kafka_config, metric, produce, stopped_cleanly, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
brokers = kafka_broker(root)
topic = "lost-" + uuid.uuid4().hex[:8]
N1, N2 = 1500, 500
windows = {"allowed_lateness": "1h"}


def counts(d, family):
    return int(sum(metric(d.metrics(), family, outcome="applied")))


def window_records(d):
    return int(sum(metric(d.metrics(), "guardwatch_window_records", window="1h")))


produce(binary, brokers, topic, 1, N1)
props = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "auto.commit.interval.ms": 60000}
with stopped_cleanly(Daemon(binary, kafka_config(topic, brokers, props, windows))) as d:
    wait_for(lambda: counts(d, "guardwatch_records_total") == N1 and d.ready(), 60, f"{N1} records applied and ready")
    d.proc.send_signal(signal.SIGSTOP)
    time.sleep(10)
    d.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: d.output().count("kafka: assigned") >= 2, 60,
             "the partitions assigned again after the lost session")
    wait_for(lambda: window_records(d) == N1 and d.ready(), 60, f"windows rebuilt to {N1} records, ready")
    time.sleep(1)  # anything read a third time would show by now
    applied, rereads = counts(d, "guardwatch_records_total"), counts(d, "guardwatch_warmup_records_total")
    assert window_records(d) == N1, f"windows hold {window_records(d)} records, want {N1}"
    assert applied == N1, f"records_total counts {applied} applied records after the lost session, want {N1}"
    assert rereads == N1, f"warm-up counts {rereads} re-read records, want {N1}"
    print(f"ok: after the lost session, the {N1} uncommitted records were re-read as warm-up, counted once")

# The next owner starts at the commit, which must now cover the re-read records.
no_rewind = kafka_config(topic, brokers, {}, windows).replace("kafka:\n", "kafka:\n  rewind: off\n", 1)
with stopped_cleanly(Daemon(binary, no_rewind)) as d:
    produce(binary, brokers, topic, 2, N2)
    wait_for(lambda: counts(d, "guardwatch_records_total") >= N2, 60, f"the {N2} new records")
    time.sleep(1)
    assert counts(d, "guardwatch_records_total") == N2, \
        f"the next owner applied {counts(d, 'guardwatch_records_total')} records, want only the {N2} new ones"
    print(f"ok: the re-read records were committed: the next owner read only the {N2} new records")
