#!/usr/bin/env python3
"""systemd's notification protocol, against a socket this test owns (as systemd would):
READY=1 after start, WATCHDOG=1 at least every WatchdogSec/2 (WATCHDOG_USEC), RELOADING=1 then
READY=1 on SIGHUP, STOPPING=1 on SIGTERM, and nothing at all without NOTIFY_SOCKET."""
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import run, scratch_dir  # noqa: E402

binary = sys.argv[1]
work = scratch_dir("gw-sd-")
data = os.path.join(work, "in.jsonl")
run([binary, "generate", "--count", "2000", "-o", data])

path = os.path.join(work, "notify.sock")
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
sock.settimeout(0.2)
messages = []  # (time, datagram)


def collect(seconds):
    end = time.time() + seconds
    while time.time() < end:
        try:
            messages.append((time.time(), sock.recv(4096).decode()))
        except socket.timeout:
            pass


def first(prefix, after=0.0):
    for t, m in messages:
        if t >= after and any(line.startswith(prefix) for line in m.splitlines()):
            return t
    return None


env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="1000000")
log = open(os.path.join(work, "daemon.log"), "w")
t0 = time.time()
p = subprocess.Popen([binary, "run", "--input", data, "--listen", "127.0.0.1:0"], env=env, stdout=log, stderr=subprocess.STDOUT)
try:
    collect(3.5)
    ready = first("READY=1")
    assert ready is not None, messages
    pings = [t for t, m in messages if "WATCHDOG=1" in m.splitlines()]
    assert len(pings) >= 4, f"expected a ping at least every 0.5 s, got {len(pings)} in 3.5 s: {messages}"
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < 0.5, f"watchdog gap {max(gaps):.2f} s exceeds WatchdogSec/2: {gaps}"
    assert any(m.startswith("STATUS=") or "\nSTATUS=" in m for _, m in messages), "no STATUS= sent"
    print(f"ok: READY=1 {ready - t0:.2f} s after start; {len(pings)} WATCHDOG=1 in 3.5 s, largest gap {max(gaps):.2f} s")

    t_hup = time.time()
    p.send_signal(signal.SIGHUP)
    collect(1.0)
    rel, again = first("RELOADING=1", t_hup), first("READY=1", t_hup)
    assert rel is not None and again is not None and again >= rel, messages[-5:]
    print("ok: SIGHUP -> RELOADING=1 then READY=1")

    t_term = time.time()
    p.send_signal(signal.SIGTERM)
    rc = p.wait(15)
    collect(0.3)
    assert rc == 0, rc
    assert first("STOPPING=1", t_term) is not None, messages[-5:]
    print("ok: SIGTERM -> STOPPING=1, exit 0")
finally:
    if p.poll() is None:
        p.kill()

# Without NOTIFY_SOCKET nothing is sent (and nothing breaks).
messages.clear()
env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
p = subprocess.Popen([binary, "run", "--input", data, "--listen", "127.0.0.1:0"], env=env, stdout=log, stderr=subprocess.STDOUT)
collect(1.5)
p.send_signal(signal.SIGTERM)
assert p.wait(15) == 0
assert not messages, messages
print("ok: no NOTIFY_SOCKET, no notifications")
