"""Message deduplication with the official Python client: a producer that re-sends sequence
ids (as one does after a reconnect) has them acknowledged but not stored, and a new producer
with the same name continues after the last durable sequence id.

usage: python_dedup.py SERVICE_URL TOPIC PHASE
  PHASE first: sequence ids 0..4, then 2 and 3 again.
  PHASE again: (after a restart) the producer's last sequence id, 3 and 4 again, then 5.
  PHASE read: every payload on the topic, in order.
"""
import sys

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url, topic, phase = sys.argv[1:4]
c = pulsar.Client(url, operation_timeout_seconds=15)


def producer():
    # No batching: each sequence id is its own entry.
    return c.create_producer(topic, producer_name="dedup-producer", batching_enabled=False,
                             send_timeout_millis=15000)


if phase == "first":
    p = producer()
    print("last-before", p.last_sequence_id(), flush=True)
    for i in range(5):
        p.send(f"m{i}".encode(), sequence_id=i)
    for i in (2, 3):
        p.send(f"m{i}-again".encode(), sequence_id=i)
    print("sent", "OK", flush=True)
elif phase == "again":
    p = producer()
    print("last-after-restart", p.last_sequence_id(), flush=True)
    for i in (3, 4):
        p.send(f"m{i}-again".encode(), sequence_id=i)
    p.send(b"m5", sequence_id=5)
    print("sent", "OK", flush=True)
else:
    r = c.create_reader(topic, pulsar.MessageId.earliest)
    got = []
    while r.has_message_available():
        got.append(r.read_next(timeout_millis=10000).data().decode())
    print("log", ",".join(got), flush=True)
c.close()
