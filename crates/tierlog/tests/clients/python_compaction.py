"""Topic compaction as the official Python client sees it.

usage: python_compaction.py SERVICE_URL TOPIC PHASE
  PHASE produce:        k0..k4 = v1, then k0..k4 = v2, then an empty value for k4 (a deletion)
                        and a message without a key.
  PHASE produce-batch:  one batch of b0 = x1, b1 = x1, b0 = x2, b2 = x1.
  PHASE produce-more:   k0 = v3.
  PHASE read-compacted: a read_compacted reader from the start; prints `read <key=value,...>`.
  PHASE read-available: as read-compacted, looping on has_message_available; prints
                        `available <key=value,...>`.
  PHASE read-all:       a plain reader from the start; prints `all <count>`.
"""
import sys

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url, topic, phase = sys.argv[1:4]
c = pulsar.Client(url, operation_timeout_seconds=15)


def read(compacted):
    r = c.create_reader(topic, pulsar.MessageId.earliest, is_read_compacted=compacted)
    got = []
    try:
        while True:
            got.append(r.read_next(timeout_millis=2000))
    except pulsar.Timeout:
        pass
    r.close()
    return got


if phase == "produce":
    p = c.create_producer(topic, batching_enabled=False)
    for v in ("v1", "v2"):
        for k in range(5):
            p.send(v.encode(), partition_key=f"k{k}")
    p.send(b"", partition_key="k4")
    p.send(b"no key")
elif phase == "produce-batch":
    # One batch: b0=x1, b1=x1, b0=x2, b2=x1.
    p = c.create_producer(topic, batching_enabled=True, batching_max_messages=4,
                          batching_max_publish_delay_ms=5000)
    for k, v in (("b0", "x1"), ("b1", "x1"), ("b0", "x2"), ("b2", "x1")):
        p.send_async(v.encode(), None, partition_key=k)
    p.flush()
elif phase == "produce-more":
    c.create_producer(topic, batching_enabled=False).send(b"v3", partition_key="k0")
elif phase == "read-compacted":
    got = read(True)
    print("read", ",".join(f"{m.partition_key()}={m.data().decode()}" for m in got), flush=True)
elif phase == "read-available":
    # The usual reader loop: has_message_available asks for the last message id.
    r = c.create_reader(topic, pulsar.MessageId.earliest, is_read_compacted=True)
    got = []
    while r.has_message_available():
        got.append(r.read_next(timeout_millis=5000))
    r.close()
    print("available", ",".join(f"{m.partition_key()}={m.data().decode()}" for m in got),
          flush=True)
elif phase == "read-all":
    print("all", len(read(False)), flush=True)
c.close()
