"""A TLS consumer stopped in the middle of a catch-up, then let go on.

usage: python_stalled_tls.py SERVICE_URL TLS_URL CA_FILE TOPIC PHASE COUNT SIZE
  PHASE produce: COUNT messages of SIZE bytes, unbatched, over SERVICE_URL; message i is the
                 4-byte big-endian i repeated.
  PHASE consume: over TLS_URL, subscribes from the earliest message with a receiver queue of
                 COUNT (so the broker may send them all at once), prints `subscribed`, then
                 receives COUNT messages and prints `consumed <received> <not as produced>`.
                 The test stops this process (SIGSTOP) after `subscribed` and continues it
                 (SIGCONT) later.
"""
import sys

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url, tls_url, ca, topic, phase, count, size = sys.argv[1:8]
count, size = int(count), int(size)


def payload(i):
    return i.to_bytes(4, "big") * (size // 4)


if phase == "produce":
    c = pulsar.Client(url, operation_timeout_seconds=30)
    p = c.create_producer(topic, batching_enabled=False, block_if_queue_full=True)
    acked = []

    def sent(result, _msg_id):
        if result == pulsar.Result.Ok:
            acked.append(1)

    for i in range(count):
        p.send_async(payload(i), sent)
    p.flush()
    c.close()
    print("produced", len(acked))
elif phase == "consume":
    c = pulsar.Client(tls_url, tls_trust_certs_file_path=ca, operation_timeout_seconds=30)
    consumer = c.subscribe(
        topic,
        "stalled",
        initial_position=pulsar.InitialPosition.Earliest,
        receiver_queue_size=count,
    )
    print("subscribed")
    received, bad = 0, 0
    try:
        while received < count:
            m = consumer.receive(timeout_millis=30000)
            if m.data() != payload(received):
                bad += 1
            received += 1
            consumer.acknowledge(m)
    except pulsar.Timeout:
        pass
    print("consumed", received, bad)
    c.close()
