#!/usr/bin/env python3
"""Integration: where a consumer group with no committed offsets starts (real broker, KRaft).

guardwatch looks up the start of such partitions itself, in the same ListOffsets request as the
warm-up's rewind (daemon/source/kafka.cpp, plan_rewind), instead of leaving it to librdkafka's
reset path (which starts 100 ms late). The result must still follow `auto.offset.reset`:
1. `latest`: the records already in the topic are not read; records produced after the
   assignment are, each once.
2. the default (`earliest`): a fresh group reads every record from the beginning, each once.
"""
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, kafka_broker, kafka_config, metric, produce, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
brokers = kafka_broker(root)
topic = "start-" + uuid.uuid4().hex[:8]
N1, N2 = 600, 400


def records(d):
    return sum(metric(d.metrics(), "guardwatch_records_total"))


produce(binary, brokers, topic, 1, N1)
windows = {"allowed_lateness": "1h"}
d = Daemon(binary, kafka_config(topic, brokers, {"group.id": topic + "-latest", "auto.offset.reset": "latest"}, windows))
try:
    wait_for(lambda: d.ready() and len(metric(d.metrics(), "guardwatch_kafka_consumer_lag_messages", topic=topic)) == 3,
             60, "assigned and ready")
    time.sleep(1)
    assert records(d) == 0, f"auto.offset.reset latest read {records(d)} of the {N1} earlier records"
    produce(binary, brokers, topic, 2, N2)
    wait_for(lambda: records(d) >= N2, 60, f"the {N2} new records")
    time.sleep(1)
    assert records(d) == N2, f"read {records(d)}, want the {N2} new records only"
    print(f"ok: latest: skipped the {N1} earlier records, read the {N2} new ones once")
finally:
    d.stop()

d = Daemon(binary, kafka_config(topic, brokers, {"group.id": topic + "-earliest"}, windows))
try:
    wait_for(lambda: records(d) >= N1 + N2, 60, f"{N1 + N2} records from the beginning")
    time.sleep(1)
    assert records(d) == N1 + N2, f"read {records(d)}, want {N1 + N2}"
    print(f"ok: earliest: read all {N1 + N2} records once")
finally:
    d.stop()
