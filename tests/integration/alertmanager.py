#!/usr/bin/env python3
"""Alert delivery to a real Alertmanager: a scripted regression fires and resolves, and the
alert read back from Alertmanager's /api/v2/alerts has the rule's labels, annotations (with the
evidence and exemplars), startsAt, endsAt and generatorURL. With Alertmanager down, the alert is
delivered once it is back."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from gwtest import Alertmanager, Daemon, free_port, metric, run, scratch_dir, wait_for  # noqa: E402

binary, root = sys.argv[1], sys.argv[2]
work = scratch_dir("gw-deliver-")
scenario = os.path.join(work, "scenario.yaml")
with open(scenario, "w") as f:
    f.write("""seed: 77
start: 2026-11-26T06:00:00Z
duration: 50m
series:
  - {model: gpt-x, model_version: "2026-11-20", endpoint: chat, variant: control}
  - {model: gpt-x, model_version: "2026-11-25", endpoint: chat, variant: candidate}
changes:
  - {at: 10m, match: {variant: candidate}, set: {refusal_rate: 0.12}}
  - {at: 25m, match: {variant: candidate}, set: {refusal_rate: 0.04}}
""")
data = os.path.join(work, "all.jsonl")
run([binary, "generate", "--scenario", scenario, "-o", data])
lines = open(data).read().splitlines(keepends=True)
split = next(i for i, l in enumerate(lines) if json.loads(l)["ts"] >= "2026-11-26T06:24:00")
first, rest = "".join(lines[:split]).encode(), "".join(lines[split:]).encode()
rules = os.path.join(root, "rules/guardrails.yaml")
# A webhook receiver: the same alert JSON arrays as Alertmanager gets.
import http.server  # noqa: E402
import threading  # noqa: E402

hook_posts = []


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        hook_posts.append((self.headers.get("Authorization"), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hook.serve_forever, daemon=True).start()
hook_url = "http://127.0.0.1:%d/hook" % hook.server_address[1]
config = "alerting: {resend_interval: 2s, max_backoff: 2s, webhooks: [%s], bearer_token: s3cret-token}\n" % hook_url
NAME = "CandidateRefusalRateUp"


def daemon(am_url):
    return Daemon(binary, config, ["--input", "-", "--rules", rules, "--alertmanager", am_url], stdin=subprocess.PIPE)


# 1. Fire, then resolve, against a running Alertmanager.
am = Alertmanager().start()
d = daemon(am.url)
try:
    d.proc.stdin.write(first)
    d.proc.stdin.flush()
    got = wait_for(lambda: am.alerts(alertname=NAME), 30, "the alert in Alertmanager")
    a = got[0]
    assert a["labels"]["model"] == "gpt-x" and a["labels"]["endpoint"] == "chat" and a["labels"]["severity"] in ("warning", "critical"), a
    assert a["labels"]["team"] == "model-quality", a["labels"]
    ann = a["annotations"]
    assert "refuses more" in ann["summary"] and ann["runbook_url"].endswith(NAME), ann
    assert float(ann["p_value"]) < 1e-4 and float(ann["effect"]) > 0.03, ann
    assert ann["exemplars"].startswith("req-"), ann
    assert a["startsAt"].startswith("2026-11-26T06:1"), a["startsAt"]  # event time the rule became active
    assert a["endsAt"] > a["startsAt"] and a["status"]["state"] == "active", a
    assert a["generatorURL"].startswith(d.url) and NAME in a["generatorURL"], a["generatorURL"]
    print(f"ok: firing in Alertmanager: {a['labels']} startsAt {a['startsAt']} exemplars {ann['exemplars'][:40]}...")
    sent = metric(d.metrics(), "guardwatch_notifications_sent_total")[0]
    wait_for(lambda: metric(d.metrics(), "guardwatch_notifications_sent_total")[0] > sent, 10, "a resend of the firing alert")
    # Recovery: the resolved notification ends the alert in Alertmanager.
    d.proc.stdin.write(rest)
    d.proc.stdin.close()
    wait_for(lambda: not am.alerts(alertname=NAME), 30, "the alert to resolve in Alertmanager")
    print("ok: resolved in Alertmanager after the recovery")
    # The webhook got the same alerts, firing (endsAt ahead) and then resolved (endsAt in the past).
    def hook_states():
        import datetime
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return [(a["labels"]["alertname"], a["endsAt"] < now) for auth, batch in hook_posts for a in batch if a["labels"]["alertname"] == NAME]
    wait_for(lambda: any(resolved for _, resolved in hook_states()), 20, "the resolved alert at the webhook")
    assert all(auth == "Bearer s3cret-token" for auth, _ in hook_posts), {a for a, _ in hook_posts}
    assert any(not resolved for _, resolved in hook_states()), "no firing notification at the webhook"
    assert "s3cret-token" not in d.output(), "a credential leaked into the log"
    print(f"ok: webhook received {len(hook_posts)} posts, firing then resolved, with the bearer token")
finally:
    rc = d.stop()
    am.stop()
assert rc == 0, d.output()

# 2. Alertmanager down while the alert fires: delivered once it is back.
am2 = Alertmanager(port=free_port())
d2 = daemon(am2.url)
try:
    d2.proc.stdin.write(first)
    d2.proc.stdin.flush()
    wait_for(lambda: metric(d2.metrics(), "guardwatch_notifications_failed_total")[0] > 0, 30, "failed deliveries while Alertmanager is down")
    am2.start()
    got = wait_for(lambda: am2.alerts(alertname=NAME), 30, "the alert after Alertmanager came back")
    assert got[0]["labels"]["model"] == "gpt-x"
    assert metric(d2.metrics(), "guardwatch_notifications_dropped_total")[0] == 0
    print(f"ok: delivered after Alertmanager returned ({metric(d2.metrics(), 'guardwatch_notifications_failed_total')[0]:.0f} failed attempts before)")
finally:
    d2.proc.stdin.close()
    rc = d2.stop()
    am2.stop()
assert rc == 0, d2.output()
