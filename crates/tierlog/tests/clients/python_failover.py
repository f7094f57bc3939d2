"""One producer under load through broker failovers, with the official Pulsar Python client.

produce SERVICE_URL TOPIC STOP_FILE: sends messages (payload from the index) asynchronously,
  as fast as the client takes them (at most 500 pending), until STOP_FILE exists; prints
  "ACK i" for every message the broker acknowledged and "ERR i why" for every failed one,
  then "DONE".
consume SERVICE_URL TOPIC: reads the topic from the earliest message on a new subscription
  until nothing comes for 10 s; prints "GOT i" per message in the order received ("BAD ..."
  for a payload that is not what its index says), then "DONE".
"""
import os
import sys
import time

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()


def payload(i):
    return f"{i}|".encode() + bytes([i % 251]) * (i % 300)


def produce(url, topic, stop_file):
    client = pulsar.Client(url, operation_timeout_seconds=30)
    producer = client.create_producer(
        topic, batching_enabled=False, send_timeout_millis=120_000,
        max_pending_messages=500, block_if_queue_full=True)

    def done(i):
        def callback(res, _msg_id):
            if res == pulsar.Result.Ok:
                print(f"ACK {i}", flush=True)
            else:
                print(f"ERR {i} {res}", flush=True)
        return callback

    i = 0
    while not os.path.exists(stop_file):
        producer.send_async(payload(i), done(i))
        i += 1
        if i % 50 == 0:
            time.sleep(0.01)
    producer.flush()
    producer.close()
    client.close()
    print("DONE", flush=True)


def consume(url, topic):
    client = pulsar.Client(url, operation_timeout_seconds=30)
    consumer = client.subscribe(topic, "verify", initial_position=pulsar.InitialPosition.Earliest)
    while True:
        try:
            m = consumer.receive(timeout_millis=10_000)
        except pulsar.Timeout:
            break
        data = m.data()
        i = int(data.split(b"|", 1)[0])
        if data != payload(i):
            print(f"BAD {i} {data[:40]!r}", flush=True)
        else:
            print(f"GOT {i}", flush=True)
        consumer.acknowledge(m)
    client.close()
    print("DONE", flush=True)


if sys.argv[1] == "produce":
    produce(sys.argv[2], sys.argv[3], sys.argv[4])
else:
    consume(sys.argv[2], sys.argv[3])
