#!/usr/bin/env python3
"""The HTTP endpoints: read-only (GET/HEAD), request size limited, basic auth with crypt(3)
hashes (as in Prometheus's web config) on everything but /healthz and /readyz, a connection
limit, and credentials never in the log or the API output."""
import base64
import os
import socket
import sys
import urllib.error
import urllib.request
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, run, scratch_dir, wait_for  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt
binary = sys.argv[1]
work = scratch_dir("gw-web-")
data = os.path.join(work, "in.jsonl")
run([binary, "generate", "--count", "500", "-o", data])
pw = "s3cret-pass"
hashed = crypt.crypt(pw, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 8))
d = Daemon(binary, f'web: {{basic_auth_users: {{alice: "{hashed}"}}, max_connections: 4}}\n', ["--input", data])


def status(path, user=None, password=None, method="GET", body=None):
    req = urllib.request.Request(d.url + path, method=method, data=body)
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


try:
    wait_for(lambda: status("/readyz")[0] == 200, 30, "readyz (open without auth)")
    assert status("/healthz")[0] == 200
    assert status("/metrics")[0] == 401
    assert status("/metrics", "alice", "wrong")[0] == 401
    assert status("/metrics", "bob", pw)[0] == 401
    code, body = status("/metrics", "alice", pw)
    assert code == 200 and "guardwatch_records_total" in body
    assert status("/api/v1/alerts", "alice", pw)[0] == 200
    assert status("/metrics", "alice", pw, method="POST", body=b"x")[0] == 405
    assert status("/metrics", "alice", pw, method="DELETE")[0] == 405
    # An over-long request is refused: an error status or the connection closed unanswered.
    try:
        big = status("/metrics?" + "x" * 20000, "alice", pw)[0]
    except (ConnectionError, urllib.error.URLError):
        big = None
    assert big in (400, 413, 431, None), big
    # Connection limit: 4 idle connections held open, the 5th is closed at once.
    held = [socket.create_connection(("127.0.0.1", int(d.url.rsplit(":", 1)[1]))) for _ in range(4)]
    extra = socket.create_connection(("127.0.0.1", int(d.url.rsplit(":", 1)[1])))
    extra.settimeout(5)
    try:
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = extra.recv(100)
    except ConnectionError:
        got = b""
    assert got == b"", "the connection over the limit was served"
    for s in held:
        s.close()
    wait_for(lambda: status("/healthz")[0] == 200, 10, "service after the held connections closed")
    assert pw not in d.output() and hashed not in d.output(), "a credential leaked into the log"
    print("ok: auth on all but health endpoints, read-only, request size and connection limits, no credentials in the log")
finally:
    rc = d.stop()
assert rc == 0, d.output()

# TLS: a throwaway CA signs the server's and a client's certificate (openssl from Debian).
import ssl  # noqa: E402
import subprocess  # noqa: E402


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=work)


openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=gw-test-ca")
for name in ("server", "client"):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    with open(os.path.join(work, f"{name}.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n" if name == "server" else "extendedKeyUsage=clientAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", f"{name}.pem",
            "-days", "2", "-extfile", f"{name}.ext")
p = lambda f: os.path.join(work, f)  # noqa: E731


def tls_get(url, client_cert=False):
    ctx = ssl.create_default_context(cafile=p("ca.pem"))
    if client_cert:
        ctx.load_cert_chain(p("client.pem"), p("client.key"))
    with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
        return r.status, r.read().decode()


d = Daemon(binary, f"web: {{tls: {{cert_file: {p('server.pem')}, key_file: {p('server.key')}}}}}\n", ["--input", data])
try:
    assert d.url.startswith("https://"), d.url
    code, body = wait_for(lambda: tls_get(d.url + "/metrics"), 30, "/metrics over HTTPS")
    assert code == 200 and "guardwatch_records_total" in body
    try:  # plain HTTP on the TLS port gets no HTTP answer
        plain = urllib.request.urlopen(d.url.replace("https://", "http://") + "/metrics", timeout=5).status
    except Exception:  # noqa: BLE001
        plain = None
    assert plain is None, "plain HTTP was served on the TLS port"
    try:  # a client that does not trust the CA refuses the certificate
        urllib.request.urlopen(d.url + "/metrics", timeout=5, context=ssl.create_default_context())
        raise AssertionError("an untrusted certificate was accepted")
    except urllib.error.URLError as e:
        assert isinstance(e.reason, ssl.SSLCertVerificationError), e
finally:
    rc = d.stop()
assert rc == 0, d.output()

# Mutual TLS: without a client certificate the handshake fails; with one it is served.
d = Daemon(binary, f"web: {{tls: {{cert_file: {p('server.pem')}, key_file: {p('server.key')}, client_ca_file: {p('ca.pem')}}}}}\n",
           ["--input", data])
try:
    code, _ = wait_for(lambda: tls_get(d.url + "/healthz", client_cert=True), 30, "/healthz with a client certificate")
    assert code == 200
    try:
        tls_get(d.url + "/healthz")
        raise AssertionError("served a client without a certificate")
    except (ssl.SSLError, urllib.error.URLError, ConnectionError):
        pass
    print("ok: HTTPS with the configured certificate, plain HTTP and untrusted clients refused, client certificates required when configured")
finally:
    rc = d.stop()
assert rc == 0, d.output()
