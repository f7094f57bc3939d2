"""Broker features as the official Python client uses them: partitioned topics, negative acks
with redelivery counts, seek by message id and by publish time, readers and
has_message_available, regex subscriptions, an http:// service URL, schemas, and exclusive
subscriptions refusing a second consumer. Exits non-zero on the first mismatch.

usage: python_features.py PULSAR_URL HTTP_URL   (topic 'parts' must exist with 3 partitions)
"""
import re
import sys
import time

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()
from pulsar.schema import StringSchema

url, http_url = sys.argv[1], sys.argv[2]


def check(cond, what):
    if not cond:
        print("FAIL:", what, flush=True)
        sys.exit(1)
    print("ok:", what, flush=True)


def drain(consumer, timeout_ms=2000):
    out = []
    while True:
        try:
            m = consumer.receive(timeout_millis=timeout_ms)
        except pulsar.Timeout:
            return out
        out.append(m)
        consumer.acknowledge(m)


c = pulsar.Client(url, operation_timeout_seconds=20)

# Partitioned topic: keys spread over the three partitions, every message arrives once.
cons = c.subscribe("parts", "ps", consumer_type=pulsar.ConsumerType.Shared)
p = c.create_producer("parts")
for i in range(300):
    p.send(str(i).encode(), partition_key=f"k{i % 10}")
got = drain(cons)
check(sorted(int(m.data()) for m in got) == list(range(300)), "partitioned: 300 messages once each")
check({m.message_id().partition() for m in got} == {0, 1, 2}, "partitioned: all 3 partitions used")
check(all(m.topic_name().startswith("persistent://public/default/parts-partition-") for m in got),
      "partitioned: messages name their partition")

# Negative ack: redelivered with a redelivery count.
nc = c.subscribe("nack", "ns", consumer_type=pulsar.ConsumerType.Shared,
                 negative_ack_redelivery_delay_ms=200)
c.create_producer("nack").send(b"again")
m = nc.receive(timeout_millis=5000)
check(m.redelivery_count() == 0, "nack: first delivery has count 0")
nc.negative_acknowledge(m)
m = nc.receive(timeout_millis=5000)
check(m.data() == b"again" and m.redelivery_count() == 1, "nack: redelivered with count 1")
nc.acknowledge(m)
check(drain(nc, 1000) == [], "nack: nothing more after the ack")

# Seek by message id and by publish time.
sc = c.subscribe("seek", "s", initial_position=pulsar.InitialPosition.Earliest)
sp = c.create_producer("seek")
ids, mid_time = [], None
for i in range(10):
    if i == 5:
        time.sleep(0.05)
        mid_time = int(time.time() * 1000)
        time.sleep(0.05)
    ids.append(sp.send(str(i).encode()))
check([int(m.data()) for m in drain(sc)] == list(range(10)), "seek: first pass in order")
sc.seek(ids[3])
after = [int(m.data()) for m in drain(sc)]
# The broker resumes at the id itself; the client drops what it already saw up to the id.
check(after == list(range(4, 10)), f"seek by id resumes after the id: {after}")
sc.seek(mid_time)
after = [int(m.data()) for m in drain(sc)]
check(after == list(range(5, 10)), f"seek by publish time: {after}")
sc.seek(pulsar.MessageId.earliest)
check([int(m.data()) for m in drain(sc)] == list(range(10)), "seek to earliest replays all")

# Readers.
r = c.create_reader("seek", pulsar.MessageId.earliest)
n = 0
while r.has_message_available():
    r.read_next(timeout_millis=5000)
    n += 1
check(n == 10, "reader from earliest: has_message_available until 10 read")
r2 = c.create_reader("seek", pulsar.MessageId.latest)
check(not r2.has_message_available(), "reader at latest: nothing available")
r3 = c.create_reader("seek", ids[6])
check(int(r3.read_next(timeout_millis=5000).data()) == 7, "reader at an id starts after it")

# Regex subscription over the namespace's topics.
for t in ("re-a", "re-b"):
    c.create_producer(t)  # create the topics
rc = c.subscribe(re.compile("persistent://public/default/re-.*"), "rs",
                 initial_position=pulsar.InitialPosition.Earliest)
c.create_producer("re-a").send(b"A")
c.create_producer("re-b").send(b"B")
check(sorted(m.data() for m in drain(rc, 3000)) == [b"A", b"B"], "regex subscription")

# Exclusive: a second consumer is refused.
c.subscribe("excl", "only", consumer_type=pulsar.ConsumerType.Exclusive)
try:
    c.subscribe("excl", "only", consumer_type=pulsar.ConsumerType.Exclusive)
    check(False, "exclusive: second consumer refused")
except pulsar.ConsumerBusy:
    check(True, "exclusive: second consumer refused")

# Schema: a String schema travels with producer and consumer.
sp = c.create_producer("schema-topic", schema=StringSchema())
scn = c.subscribe("schema-topic", "s", schema=StringSchema())
sp.send("héllo")
check(scn.receive(timeout_millis=5000).value() == "héllo", "string schema round trip")
c.close()

# http:// service URL: lookups over HTTP, data over the binary port.
h = pulsar.Client(http_url, operation_timeout_seconds=20)
hc = h.subscribe("http-topic", "h")
h.create_producer("http-topic").send(b"via-http")
check(hc.receive(timeout_millis=5000).data() == b"via-http", "http service url: lookup + round trip")
hp = h.create_producer("parts")
hp.send(b"p")
h.close()
print("OK", flush=True)
