#!/usr/bin/env python3
"""`guardwatch demo` in CI: short, non-interactive. It exits 0, says nothing was lost, reports
the scripted regression of gpt-x as detected and small-y (unchanged) as quiet."""
import subprocess
import sys

binary = sys.argv[1]
r = subprocess.run([binary, "demo", "--duration", "24m", "--speed", "160", "--listen", "127.0.0.1:0"], capture_output=True, text=True,
                   timeout=300)
out = r.stdout
print(out[-1500:])
assert r.returncode == 0, r.stderr[-3000:]
assert "(nothing lost)" in out, out
lines = {l.split()[0]: l for l in out.splitlines() if l.startswith("  gpt-x") or l.startswith("  small-y")}
assert "detected" in lines["gpt-x"] and "CandidateRefusalRateUp" in lines["gpt-x"] and "CandidateCitationRateDown" in lines["gpt-x"], lines
assert "quiet (no alert)" in lines["small-y"], lines
assert "alert " in out and "firing" in out  # plain alert lines when stdout is not a TTY
print("ok: demo detected the scripted regression, nothing else fired, nothing lost")
