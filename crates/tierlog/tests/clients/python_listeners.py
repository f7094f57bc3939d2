"""The official Python client naming an advertised listener (`listener_name`).

usage: python_listeners.py SERVICE_URL LISTENER TOPIC...
Sends one message to each topic and reads it back through the listener's addresses; prints
`result OK` or `result ERR <exception class>: <message>`.
"""
import sys

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url, listener, topics = sys.argv[1], sys.argv[2], sys.argv[3:]
c = pulsar.Client(url, listener_name=listener, operation_timeout_seconds=5)
try:
    for t in topics:
        consumer = c.subscribe(t, "s", initial_position=pulsar.InitialPosition.Earliest)
        c.create_producer(t).send(t.encode())
        got = consumer.receive(timeout_millis=10000).data().decode()
        assert got == t, (got, t)
    print("result OK", flush=True)
except Exception as e:  # noqa: BLE001 - the test reads which error it was
    print("result ERR", f"{type(e).__name__}: {e}", flush=True)
c.close()
