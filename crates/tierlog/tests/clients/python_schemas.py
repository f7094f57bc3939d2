"""Schema evolution with the official Python client: Avro schemas get versions, messages carry
them, and a consumer decodes each message with the schema it was written with.

usage: python_schemas.py SERVICE_URL TOPIC
Prints one line per case: `<case> <result>`; the Rust test decides what each must be.
"""
import sys

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()
from pulsar.schema import AvroSchema, Integer, Record, String

url, topic = sys.argv[1:3]


# One record name across versions, as an application evolving its type would have it (Avro
# resolves records by name).
def v0():
    class User(Record):
        name = String()
    return User


def v1():
    class User(Record):
        name = String()
        # A default keeps the new field FULL-compatible (readable both ways).
        age = Integer(required_default=True)
    return User


def incompatible():
    class User(Record):
        name = Integer()
    return User


def attempt(case, f):
    try:
        f()
        print(case, "OK", flush=True)
    except Exception as e:  # noqa: BLE001 - the class is the result
        print(case, "ERR", f"{type(e).__name__}: {e}", flush=True)


c = pulsar.Client(url, operation_timeout_seconds=10)
U0, U1 = v0(), v1()
p0 = c.create_producer(topic, schema=AvroSchema(U0))
p0.send(U0(name="first"))
p1 = c.create_producer(topic, schema=AvroSchema(U1))
p1.send(U1(name="second", age=42))
# The first schema's producer keeps writing version 0 after version 1 exists.
p0.send(U0(name="third"))
# A producer of the first schema created now gets version 0 again, not a new version.
p0b = c.create_producer(topic, schema=AvroSchema(U0))
p0b.send(U0(name="fourth"))

consumer = c.subscribe(topic, "reader", schema=AvroSchema(U1),
                       initial_position=pulsar.InitialPosition.Earliest)
seen = []
for _ in range(4):
    m = consumer.receive(timeout_millis=10000)
    seen.append(f"{m.value().name}/{m.value().age}@{m._message.int_schema_version()}")
    consumer.acknowledge(m)
print("decoded", ",".join(seen), flush=True)

attempt("incompatible-producer",
        lambda: c.create_producer(topic, schema=AvroSchema(incompatible())))
attempt("incompatible-consumer",
        lambda: c.subscribe(topic, "other", schema=AvroSchema(incompatible())))
attempt("compatible-consumer-v0",
        lambda: c.subscribe(topic, "old-reader", schema=AvroSchema(U0)))
c.close()
