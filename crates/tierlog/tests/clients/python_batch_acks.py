"""Batch-index acknowledgement with the official Python client.

usage: python_batch_acks.py SERVICE_URL TOPIC PHASE [SUBSCRIPTION]
  PHASE send:        sends m0..m9 in one batch; prints `entries <n>` (entries they landed in).
  PHASE ack-even:    a Shared consumer receives the batch and acknowledges m0, m2, m4, m6, m8.
  PHASE ack-rest:    a Shared consumer acknowledges everything it receives.
  PHASE cumulative:  an Exclusive consumer acknowledges up to m4 cumulatively.
  PHASE receive:     a consumer receives what is delivered (nothing acknowledged).
Each consuming phase prints `got <payloads, comma-separated>`.
"""
import sys

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url, topic, phase = sys.argv[1:4]
sub = sys.argv[4] if len(sys.argv) > 4 else "sub"
c = pulsar.Client(url, operation_timeout_seconds=15)


def consumer(kind=pulsar.ConsumerType.Shared):
    return c.subscribe(topic, sub, consumer_type=kind,
                       initial_position=pulsar.InitialPosition.Earliest,
                       batch_index_ack_enabled=True)


def drain(k, timeout_millis=2000):
    got = []
    while True:
        try:
            got.append(k.receive(timeout_millis=timeout_millis))
        except pulsar.Timeout:
            return got


if phase == "send":
    p = c.create_producer(topic, batching_enabled=True, batching_max_messages=10,
                          batching_max_publish_delay_ms=5000)
    ids = []
    for i in range(10):
        p.send_async(f"m{i}".encode(), lambda res, mid: ids.append((str(res), mid)))
    p.flush()
    assert all(r == str(pulsar.Result.Ok) for r, _ in ids), ids
    print("entries", len({(m.ledger_id(), m.entry_id()) for _, m in ids}), flush=True)
else:
    kind = pulsar.ConsumerType.Exclusive if phase == "cumulative" else pulsar.ConsumerType.Shared
    k = consumer(kind)
    got = drain(k)
    for m in got:
        n = int(m.data().decode()[1:])
        if phase == "ack-even" and n % 2 == 0 or phase == "ack-rest":
            k.acknowledge(m)
        elif phase == "cumulative" and n == 4:
            k.acknowledge_cumulative(m)
    print("got", ",".join(m.data().decode() for m in got), flush=True)
    # Closing sends the acknowledgements still grouped in the client.
    k.close()
c.close()
