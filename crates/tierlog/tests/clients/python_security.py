"""The official Python client against a broker with TLS, token, basic and TLS-certificate
authentication, and authorization (Pulsar's standalone-ssl.conf keys).

Each case prints one line: `<case> OK` or `<case> ERR <exception class>: <message>`; the Rust
test decides which cases must pass and which must fail how.

usage: python_security.py PLAIN_PORT TLS_PORT WEB_PORT WEB_TLS_PORT CA CERTS_DIR TOKENS_JSON
         BASIC_JSON
  BASIC_JSON: {"basicuser": password, "crypter": password}
  TOKENS_JSON: {"app": …, "admin": …, "expired": …, "forged": …}
  CERTS_DIR holds certuser.cert.pem / certuser.key-pk8.pem (a client certificate, CN certuser).
"""
import base64
import json
import ssl
import sys
import urllib.request
import urllib.error

import pulsar

from client_output import results_alone_on_stdout

results_alone_on_stdout()

plain, tls, web, web_tls, ca, certs = sys.argv[1:7]
tokens = json.loads(sys.argv[7])
passwords = json.loads(sys.argv[8])


def client(url, auth=None, validate_hostname=False):
    return pulsar.Client(
        url,
        authentication=auth,
        tls_trust_certs_file_path=ca,
        tls_validate_hostname=validate_hostname,
        operation_timeout_seconds=5,
        connection_timeout_ms=3000,
    )


def round_trip(case, url, topic, auth=None, validate_hostname=False):
    c = None
    try:
        c = client(url, auth, validate_hostname)
        topic = f"{topic}-{case}"
        consumer = c.subscribe(topic, "sub-" + case,
                               initial_position=pulsar.InitialPosition.Earliest)
        producer = c.create_producer(topic)
        producer.send(case.encode())
        msg = consumer.receive(timeout_millis=5000)
        consumer.acknowledge(msg)
        assert msg.data() == case.encode(), msg.data()
        print(case, "OK", flush=True)
    except Exception as e:  # noqa: BLE001 - the class is the result
        print(case, "ERR", f"{type(e).__name__}: {e}", flush=True)
    finally:
        if c is not None:
            c.close()


tok = pulsar.AuthenticationToken
app_topic = "persistent://acme/app/orders"
open_topic = "persistent://acme/open/events"

round_trip("token-plain", f"pulsar://localhost:{plain}", app_topic, tok(tokens["app"]))
round_trip("token-tls", f"pulsar+ssl://localhost:{tls}", app_topic, tok(tokens["app"]), True)
round_trip("token-https-lookup", f"https://localhost:{web_tls}", app_topic, tok(tokens["app"]), True)
round_trip("token-http-lookup", f"http://localhost:{web}", app_topic, tok(tokens["app"]))
round_trip("token-other-namespace", f"pulsar://localhost:{plain}", open_topic, tok(tokens["app"]))
round_trip("anonymous-open", f"pulsar://localhost:{plain}", open_topic)
round_trip("anonymous-app", f"pulsar://localhost:{plain}", app_topic)
round_trip("expired-plain", f"pulsar://localhost:{plain}", app_topic, tok(tokens["expired"]))
round_trip("expired-tls", f"pulsar+ssl://localhost:{tls}", app_topic, tok(tokens["expired"]), True)
round_trip("forged-plain", f"pulsar://localhost:{plain}", app_topic, tok(tokens["forged"]))
round_trip("forged-tls", f"pulsar+ssl://localhost:{tls}", app_topic, tok(tokens["forged"]), True)
round_trip("cert-tls", f"pulsar+ssl://localhost:{tls}", app_topic,
           pulsar.AuthenticationTLS(f"{certs}/certuser.cert.pem", f"{certs}/certuser.key-pk8.pem"),
           True)
basic = pulsar.AuthenticationBasic
round_trip("basic-apr1-plain", f"pulsar://localhost:{plain}", app_topic,
           basic("basicuser", passwords["basicuser"]))
round_trip("basic-crypt-tls", f"pulsar+ssl://localhost:{tls}", app_topic,
           basic("crypter", passwords["crypter"]), True)
round_trip("basic-https-lookup", f"https://localhost:{web_tls}", app_topic,
           basic("basicuser", passwords["basicuser"]), True)
round_trip("basic-wrong-password", f"pulsar://localhost:{plain}", app_topic,
           basic("basicuser", passwords["basicuser"] + "x"))
round_trip("basic-unknown-user", f"pulsar://localhost:{plain}", app_topic,
           basic("nobody", passwords["basicuser"]))
round_trip("basic-other-namespace", f"pulsar://localhost:{plain}", open_topic,
           basic("basicuser", passwords["basicuser"]))
round_trip("hostname-right", f"pulsar+ssl://localhost:{tls}", open_topic, None, True)
round_trip("hostname-wrong", f"pulsar+ssl://127.0.0.1:{tls}", open_topic, None, True)
round_trip("hostname-unchecked", f"pulsar+ssl://127.0.0.1:{tls}", open_topic, None, False)


def rest(case, url, token=None, cert=None, basic_auth=None):
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(f"{certs}/{cert}.cert.pem", f"{certs}/{cert}.key-pk8.pem")
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if basic_auth:
        encoded = base64.b64encode(":".join(basic_auth).encode()).decode()
        req.add_header("Authorization", f"Basic {encoded}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            print(case, "HTTP", r.status, flush=True)
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        print(case, "HTTP", e.code, body, flush=True)


rest("rest-admin-https", f"https://localhost:{web_tls}/admin/v2/tenants", tokens["admin"])
rest("rest-app-https", f"https://localhost:{web_tls}/admin/v2/tenants", tokens["app"])
rest("rest-none-https", f"https://localhost:{web_tls}/admin/v2/namespaces/acme/app")
rest("rest-expired-http", f"http://localhost:{web}/admin/v2/tenants", tokens["expired"])
rest("rest-forged-http", f"http://localhost:{web}/admin/v2/tenants", tokens["forged"])
rest("rest-app-topics", f"http://localhost:{web}/admin/v2/persistent/acme/app", tokens["app"])
rest("rest-cert-topics", f"https://localhost:{web_tls}/admin/v2/persistent/acme/app", None, "certuser")
rest("rest-cert-tenants", f"https://localhost:{web_tls}/admin/v2/tenants", None, "certuser")
rest("rest-basic-topics", f"http://localhost:{web}/admin/v2/persistent/acme/app", None, None,
     ("basicuser", passwords["basicuser"]))
rest("rest-basic-wrong", f"http://localhost:{web}/admin/v2/persistent/acme/app", None, None,
     ("basicuser", "wrong"))
