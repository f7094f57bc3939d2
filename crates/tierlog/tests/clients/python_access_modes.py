"""Producer access modes with the official Python client: Exclusive, WaitForExclusive,
ExclusiveWithFencing, and what Shared producers meet beside them.

usage: python_access_modes.py SERVICE_URL TOPIC
Prints one line per case: `<case> OK` or `<case> ERR <exception class>: <message>`.
"""
import sys
import threading
import time

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url, topic = sys.argv[1:3]
Mode = pulsar.ProducerAccessMode
c = pulsar.Client(url, operation_timeout_seconds=10)


def attempt(case, f):
    try:
        r = f()
        print(case, "OK", flush=True)
        return r
    except Exception as e:  # noqa: BLE001 - the class is the result
        print(case, "ERR", f"{type(e).__name__}: {e}", flush=True)
        return None


consumer = c.subscribe(topic, "all", initial_position=pulsar.InitialPosition.Earliest)
first = attempt("exclusive", lambda: c.create_producer(topic, access_mode=Mode.Exclusive))
first.send(b"a")
attempt("second-exclusive", lambda: c.create_producer(topic, access_mode=Mode.Exclusive))
attempt("shared-beside-exclusive", lambda: c.create_producer(topic))

# WaitForExclusive blocks until the exclusive producer leaves.
waited = {}


def wait_for_it():
    waited["producer"] = c.create_producer(topic, access_mode=Mode.WaitForExclusive)
    waited["at"] = time.monotonic()


t = threading.Thread(target=wait_for_it)
t.start()
time.sleep(1.5)
print("waiting-while-held", "still-waiting" if t.is_alive() else "returned", flush=True)
closed_at = time.monotonic()
first.close()
t.join(timeout=10)
print("waiting-after-close", "OK" if "producer" in waited and waited["at"] >= closed_at else "ERR",
      flush=True)
waited["producer"].send(b"b")

waited["producer"].close()

# ExclusiveWithFencing takes the topic: the exclusive producer holding it is closed by the
# broker, and when it comes back its older topic epoch fences it for good.
holder = attempt("exclusive-again",
                 lambda: c.create_producer(topic, access_mode=Mode.Exclusive,
                                           send_timeout_millis=5000))
holder.send(b"c")
fencer = attempt("fencing", lambda: c.create_producer(topic, access_mode=Mode.ExclusiveWithFencing))
fencer.send(b"d")
time.sleep(1)
attempt("fenced-send", lambda: holder.send(b"never"))

got = []
while True:
    try:
        m = consumer.receive(timeout_millis=2000)
    except Exception:  # noqa: BLE001 - a timeout ends the log
        break
    got.append(m.data().decode())
    consumer.acknowledge(m)
print("log", ",".join(got), flush=True)
c.close()
