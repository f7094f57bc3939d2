"""Message TTL and backlog quotas as the official Python client meets them.

usage: python_backlog.py SERVICE_URL TOPIC PHASE [ARGS]
  PHASE subscribe SUB:        creates the subscription (nothing consumed).
  PHASE produce N SIZE:       one producer sends N messages of SIZE bytes; prints `sent <n>`, and
                              `send ERR <exception class>` if a send failed (then stops).
  PHASE create-producer:      prints `producer OK` or `producer ERR <exception class>: <message>`.
  PHASE receive SUB:          receives until 2 s pass without a message, acknowledging nothing;
                              prints `got <count> <first payload index or -1>`.
  PHASE ack-all SUB:          receives and acknowledges everything; prints `acked <count>`.
"""
import sys

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url, topic, phase = sys.argv[1:4]
args = sys.argv[4:]
c = pulsar.Client(url, operation_timeout_seconds=5)


def drain(sub, ack):
    k = c.subscribe(topic, sub, consumer_type=pulsar.ConsumerType.Shared,
                    initial_position=pulsar.InitialPosition.Earliest)
    got = []
    while True:
        try:
            m = k.receive(timeout_millis=2000)
        except pulsar.Timeout:
            break
        got.append(m)
        if ack:
            k.acknowledge(m)
    k.close()
    return got


if phase == "subscribe":
    c.subscribe(topic, args[0], initial_position=pulsar.InitialPosition.Earliest).close()
elif phase == "produce":
    n, size = int(args[0]), int(args[1])
    p = c.create_producer(topic, batching_enabled=False, send_timeout_millis=5000)
    sent = 0
    try:
        for i in range(n):
            p.send(str(i).encode().ljust(size, b"."))
            sent += 1
    except Exception as e:  # noqa: BLE001 - the test reads which error it was
        print("send ERR", type(e).__name__, flush=True)
    print("sent", sent, flush=True)
elif phase == "create-producer":
    try:
        c.create_producer(topic)
        print("producer OK", flush=True)
    except Exception as e:  # noqa: BLE001
        print("producer ERR", f"{type(e).__name__}: {e}", flush=True)
elif phase == "receive":
    got = drain(args[0], ack=False)
    first = int(got[0].data().split(b".")[0]) if got else -1
    print("got", len(got), first, flush=True)
elif phase == "ack-all":
    print("acked", len(drain(args[0], ack=True)), flush=True)
c.close()
