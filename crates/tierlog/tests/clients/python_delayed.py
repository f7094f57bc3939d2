"""Delayed delivery with the official Python client: `deliver_after` holds a message on Shared
subscriptions until its time, also across a broker restart.

usage: python_delayed.py SERVICE_URL TOPIC PHASE [SENT_AT]
  PHASE now:    a Shared consumer gets an immediate message first, the delayed one >= 2 s later.
  PHASE before: sends a message to be delivered 4 s later; prints when it was sent (epoch s).
  PHASE after:  (after a restart) receives it; prints how long after SENT_AT it arrived.
"""
import sys
import time
from datetime import timedelta

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url, topic, phase = sys.argv[1:4]
c = pulsar.Client(url, operation_timeout_seconds=15)


def shared():
    return c.subscribe(topic, "shared", consumer_type=pulsar.ConsumerType.Shared,
                       initial_position=pulsar.InitialPosition.Earliest)


if phase == "now":
    consumer = shared()
    exclusive = c.subscribe(topic, "exclusive", consumer_type=pulsar.ConsumerType.Exclusive,
                            initial_position=pulsar.InitialPosition.Earliest)
    p = c.create_producer(topic, batching_enabled=False)
    sent = time.time()
    p.send(b"later", deliver_after=timedelta(seconds=2))
    p.send(b"now")
    first = consumer.receive(timeout_millis=10000)
    print("first", first.data().decode(), flush=True)
    consumer.acknowledge(first)
    second = consumer.receive(timeout_millis=10000)
    print("second", second.data().decode(), f"{time.time() - sent:.2f}", flush=True)
    consumer.acknowledge(second)
    # An Exclusive subscription does not hold delayed messages (as in Pulsar).
    e1 = exclusive.receive(timeout_millis=10000)
    print("exclusive-first", e1.data().decode(), flush=True)
elif phase == "before":
    shared().close()
    p = c.create_producer(topic, batching_enabled=False)
    p.send(b"held", deliver_after=timedelta(seconds=4))
    print("sent-at", f"{time.time():.3f}", flush=True)
else:
    sent_at = float(sys.argv[4])
    consumer = shared()
    m = consumer.receive(timeout_millis=20000)
    print("after", m.data().decode(), f"{time.time() - sent_at:.2f}", flush=True)
    consumer.acknowledge(m)
c.close()
