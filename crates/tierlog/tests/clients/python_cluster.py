"""Many topics through one broker URL of a tierlog cluster, with the official Pulsar Python
client: the client looks every topic up at that broker and follows its redirects to the owners.

For each of TOPICS topics: a subscription at Earliest, PER_TOPIC messages produced (payload
names topic and index), then every one received in order and acknowledged. Prints "OK" and
exits 0, or prints "FAIL: ..." and exits 1.

usage: python_cluster.py SERVICE_URL TOPICS PER_TOPIC [TRUST_CERTS]
  TRUST_CERTS: the CA file for pulsar+ssl:// and https:// service URLs.
"""
import sys

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

url, topics, per_topic = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
trust = sys.argv[4] if len(sys.argv) > 4 else None


def fail(msg):
    print("FAIL:", msg, flush=True)
    sys.exit(1)


client = (pulsar.Client(url, operation_timeout_seconds=30, tls_trust_certs_file_path=trust)
          if trust else pulsar.Client(url, operation_timeout_seconds=30))
names = [f"persistent://public/default/cluster-t{i}" for i in range(topics)]
consumers = {n: client.subscribe(n, "s", initial_position=pulsar.InitialPosition.Earliest)
             for n in names}
for n in names:
    p = client.create_producer(n, batching_enabled=False)
    for i in range(per_topic):
        p.send(f"{n}|{i}".encode())
    p.close()
for n, c in consumers.items():
    for i in range(per_topic):
        m = c.receive(timeout_millis=20000)
        want = f"{n}|{i}".encode()
        if m.data() != want:
            fail(f"{n}: got {m.data()!r}, wanted {want!r}")
        c.acknowledge(m)
    c.close()
client.close()
print("OK", flush=True)
