"""Round trip through tierlog with the official Pulsar Python client (pulsar-client, C++ core).

Produces TOTAL messages with keys, properties and event times through four producers (batching
off/on, compression none/LZ4/ZSTD), then consumes the topic with each subscription type and checks
contents, keys, properties and order (log order for Exclusive/Failover, per key and per consumer
for Shared/Key_Shared; every key on one consumer for Key_Shared). Exits non-zero on any mismatch.

usage: python_roundtrip.py SERVICE_URL TOPIC TOTAL
"""
import sys
import threading

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url, topic, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
KEYS = 37
BASE_TS = 1_700_000_000_000

producers = [
    dict(batching_enabled=False),
    dict(batching_enabled=False, compression_type=pulsar.CompressionType.LZ4),
    dict(batching_enabled=True, batching_type=pulsar.BatchingType.KeyBased,
         batching_max_messages=100, compression_type=pulsar.CompressionType.LZ4),
    dict(batching_enabled=True, batching_type=pulsar.BatchingType.KeyBased,
         batching_max_messages=100, compression_type=pulsar.CompressionType.ZSTD),
]


def expected(i):
    return dict(
        data=(f"msg-{i:06d}-" + "x" * (i % 200)).encode(),
        key=f"key-{i % KEYS}",
        props={"i": str(i), "parity": "odd" if i % 2 else "even"},
        event=BASE_TS + i,
    )


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


client = pulsar.Client(url, operation_timeout_seconds=30)
# Subscriptions exist before the first message, so every type sees everything from Latest.
subs = {}
for name, ty in [("exclusive", pulsar.ConsumerType.Exclusive),
                 ("failover", pulsar.ConsumerType.Failover),
                 ("shared", pulsar.ConsumerType.Shared),
                 ("key_shared", pulsar.ConsumerType.KeyShared)]:
    n = 1 if ty == pulsar.ConsumerType.Exclusive else 2
    subs[name] = [client.subscribe(topic, name, consumer_type=ty, receiver_queue_size=500)
                  for _ in range(n)]

per_producer = total // len(producers)
i = 0
for cfg in producers:
    p = client.create_producer(topic, block_if_queue_full=True, batching_max_publish_delay_ms=5, **cfg)
    errors = []

    def done(res, _msg_id):
        if res != pulsar.Result.Ok:
            errors.append(res)

    for _ in range(per_producer):
        e = expected(i)
        p.send_async(e["data"], done, properties=e["props"], partition_key=e["key"],
                     event_timestamp=e["event"])
        i += 1
    p.flush()
    p.close()
    if errors:
        fail(f"send errors with {cfg}: {errors[:3]}")
sent = i


def drain(consumer, out, expect_more):
    while True:
        try:
            m = consumer.receive(timeout_millis=3000 if expect_more() else 1000)
        except pulsar.Timeout:
            if not expect_more():
                return
            continue
        out.append(m)
        consumer.acknowledge(m)


for name, consumers in subs.items():
    got = [[] for _ in consumers]
    count = lambda: sum(len(g) for g in got)  # noqa: E731
    threads = [threading.Thread(target=drain, args=(c, got[k], lambda: count() < sent))
               for k, c in enumerate(consumers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    seen = {}
    for k, msgs in enumerate(got):
        last_by_key = {}
        for m in msgs:
            i = int(m.properties()["i"])
            e = expected(i)
            if m.data() != e["data"] or m.partition_key() != e["key"] or \
                    m.properties() != e["props"] or m.event_timestamp() != e["event"]:
                fail(f"{name}: message {i} differs: {m.data()[:20]!r} {m.partition_key()} "
                     f"{m.properties()} {m.event_timestamp()}")
            if i in seen:
                fail(f"{name}: message {i} delivered twice")
            seen[i] = k
            if last_by_key.get(e["key"], -1) > i:
                fail(f"{name}: key {e['key']} out of order at {i} on consumer {k}")
            last_by_key[e["key"]] = i
        if name in ("exclusive", "failover"):
            # Log order: message ids strictly increasing (key-based batching reorders keys,
            # so the producers' counters are only ordered per key).
            ids = [(m.message_id().ledger_id(), m.message_id().entry_id(),
                    m.message_id().batch_index()) for m in msgs]
            if any(a >= b for a, b in zip(ids, ids[1:])):
                fail(f"{name}: consumer {k} got messages out of log order")
    if len(seen) != sent:
        missing = sorted(set(range(sent)) - set(seen))
        fail(f"{name}: {len(seen)} of {sent} messages, missing e.g. {missing[:5]}")
    if name == "key_shared":
        owner = {}
        for i, k in seen.items():
            key = expected(i)["key"]
            if owner.setdefault(key, k) != k:
                fail(f"key_shared: key {key} went to two consumers")
        if len(got[0]) == 0 or len(got[1]) == 0:
            fail("key_shared: one consumer got nothing")
    if name == "shared" and (len(got[0]) == 0 or len(got[1]) == 0):
        fail("shared: one consumer got nothing")
    if name == "failover" and min(len(got[0]), len(got[1])) != 0:
        fail("failover: both consumers received messages")
    print(f"{name}: {sent} messages verified over {len(consumers)} consumer(s)", flush=True)

client.close()
print("OK", flush=True)
