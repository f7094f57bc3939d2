"""The official Python client against a broker whose disk fills up.

usage: python_disk_full.py fill PULSAR_URL TOPIC
    Sends 8 KiB messages one by one until a send fails, then retries 200 times as an application
    would (a new producer, the send again). Prints one line RESULT <json>: the indices
    acknowledged, the first error, how long the failing send took and how long the retries took.
usage: python_disk_full.py resume PULSAR_URL TOPIC FIRST N
    Sends messages FIRST..FIRST+N-1, retrying each until it is acknowledged (at most 60 s in all).
    Prints one line RESULT <json> with the indices acknowledged.
usage: python_disk_full.py read PULSAR_URL TOPIC
    Reads the whole topic from the start; prints one line RESULT <json> with the indices found.
"""
import json
import sys
import time

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

mode, url, topic = sys.argv[1], sys.argv[2], sys.argv[3]
PAD = b"x" * 8192


def payload(i):
    return str(i).encode() + b":" + PAD


def index(data):
    return int(data.split(b":", 1)[0])


client = pulsar.Client(url, operation_timeout_seconds=10)

if mode == "fill":
    # A long send timeout: a hang must show as a slow failure, not as a timeout that hides it.
    producer = client.create_producer(topic, send_timeout_millis=60000, batching_enabled=False)
    acked, first_error, first_fail_s = [], None, None
    for i in range(100000):
        t0 = time.monotonic()
        try:
            producer.send(payload(i))
            acked.append(i)
        except Exception as e:  # the client's own exception types
            first_error, first_fail_s = f"{type(e).__name__}: {e}", time.monotonic() - t0
            break
    # As an application would: drop the failed producer, make a new one, send again.
    retries, retry_errors, t0 = 0, {}, time.monotonic()
    for j in range(200):
        retries += 1
        try:
            producer.close()
        except Exception:
            pass
        try:
            producer = client.create_producer(
                topic, send_timeout_millis=60000, batching_enabled=False)
        except Exception as e:
            name = "create:" + type(e).__name__
            retry_errors[name] = retry_errors.get(name, 0) + 1
            continue
        try:
            producer.send(payload(-1))
            # Acknowledged after all (space came back): -1 is never checked by the reader.
        except Exception as e:
            name = "send:" + type(e).__name__
            retry_errors[name] = retry_errors.get(name, 0) + 1
    print("RESULT", json.dumps({
        "acked": acked,
        "first_error": first_error,
        "first_fail_s": first_fail_s,
        "retries": retries,
        "retry_errors": retry_errors,
        "retry_s": time.monotonic() - t0,
    }), flush=True)
elif mode == "resume":
    first, n = int(sys.argv[4]), int(sys.argv[5])
    deadline = time.monotonic() + 60
    producer = None
    acked = []
    for i in range(first, first + n):
        while True:
            try:
                if producer is None:
                    producer = client.create_producer(
                        topic, send_timeout_millis=10000, batching_enabled=False)
                producer.send(payload(i))
                acked.append(i)
                break
            except Exception as e:
                if time.monotonic() > deadline:
                    print("RESULT", json.dumps({"acked": acked, "error": f"{type(e).__name__}: {e}"}),
                          flush=True)
                    sys.exit(1)
                if producer is not None:
                    producer.close()
                producer = None
                time.sleep(0.2)
    print("RESULT", json.dumps({"acked": acked}), flush=True)
elif mode == "read":
    reader = client.create_reader(topic, pulsar.MessageId.earliest)
    found = []
    while True:
        try:
            m = reader.read_next(timeout_millis=3000)
        except pulsar.Timeout:
            break
        found.append(index(m.data()))
    print("RESULT", json.dumps({"found": found}), flush=True)
client.close()
