"""Non-persistent topics with the official Python client.

usage: python_non_persistent.py SERVICE_URL
Prints one line per case:
  no-subscriber <first message a later consumer gets> <messages after it>
  shared <messages the two consumers of one Shared subscription got, each>
  regex <what a NonPersistentOnly regex consumer got>
"""
import re
import sys
import time

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url = sys.argv[1]
c = pulsar.Client(url, operation_timeout_seconds=10)
np_topic = "non-persistent://public/default/np-a"

# Sent while nobody is subscribed: acknowledged, and gone.
p = c.create_producer(np_topic, batching_enabled=False)
p.send(b"lost-1")
p.send(b"lost-2")
# Earliest: a persistent topic would deliver the two messages sent before.
consumer = c.subscribe(np_topic, "later", initial_position=pulsar.InitialPosition.Earliest)
p.send(b"kept-1")
first = consumer.receive(timeout_millis=5000).data().decode()
rest = 0
try:
    while True:
        consumer.receive(timeout_millis=1000)
        rest += 1
except pulsar.Timeout:
    pass
print("no-subscriber", first, rest, flush=True)
consumer.close()

# Two consumers of a Shared subscription share what is sent.
shared = [c.subscribe(np_topic, "shared", consumer_type=pulsar.ConsumerType.Shared,
                      receiver_queue_size=10) for _ in range(2)]
time.sleep(0.5)
for i in range(10):
    p.send(f"s-{i}".encode())
counts = []
for k in shared:
    n = 0
    try:
        while True:
            k.receive(timeout_millis=1000)
            n += 1
    except pulsar.Timeout:
        pass
    counts.append(n)
    k.close()
print("shared", *counts, flush=True)

# A regex consumer in NonPersistentOnly mode finds the non-persistent topic.
regex = c.subscribe(re.compile("non-persistent://public/default/np-.*"), "regex",
                    regex_subscription_mode=pulsar.RegexSubscriptionMode.NonPersistentOnly)
time.sleep(0.5)
p.send(b"via-regex")
print("regex", regex.receive(timeout_millis=5000).data().decode(), flush=True)
c.close()
