#!/usr/bin/env python3
"""The HTTP endpoints: read-only (GET/HEAD), request size limited, basic auth with crypt(3)
hashes (as in Prometheus's web config) on everything but /healthz and /readyz, a connection
limit, and credentials never in the log or the API output."""
import base64
import os
import socket
import sys
import tempfile
import urllib.error
import urllib.request
import warnings

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Daemon, run, wait_for  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt
binary = sys.argv[1]
work = tempfile.mkdtemp(prefix="gw-web-")
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
