#include <doctest/doctest.h>

#include <atomic>

#include "guardwatch/export.hpp"
#include "guardwatch/notify.hpp"

using namespace gw;

namespace {
Alert sample_alert() {
  Alert a;
  a.rule = "RefusalUp";
  a.labels = {{"alertname", "RefusalUp"}, {"model", "gpt-x"}, {"severity", "warning"}};
  a.annotations = {{"summary", "refusals up"}};
  a.active_at = 1'795'672'800'000;
  a.evidence.current = {1200, 0.09};
  a.evidence.baseline = {5000, 0.04};
  a.evidence.effect = 0.05;
  a.evidence.p_value = 1e-9;
  a.exemplars.push_back({"r-1", a.active_at, "logs", 2, 77, 0, 1});
  return a;
}
double value(const prometheus::Collectable& c, const std::string& name) {
  for (auto& f : c.Collect())
    if (f.name == name && !f.metric.empty()) return f.metric[0].counter.value + f.metric[0].gauge.value;
  return -1;
}
}  // namespace

TEST_SUITE("unit") {
TEST_CASE("notify: exponential backoff from 500 ms, capped") {
  CHECK(backoff_ms(0) == 500);
  CHECK(backoff_ms(1) == 1000);
  CHECK(backoff_ms(3) == 4000);
  CHECK(backoff_ms(20) == 60'000);
  CHECK(backoff_ms(5, 2000) == 2000);
}

TEST_CASE("notify: Alertmanager payload carries labels, annotations, evidence and times") {
  Alert a = sample_alert();
  auto j = Notifier::alert_payload(a, false, a.active_at + 240'000, "http://gw:9464");
  CHECK(j["labels"]["model"] == "gpt-x");
  CHECK(j["annotations"]["summary"] == "refusals up");
  CHECK(j["annotations"]["p_value"] == "1e-09");
  CHECK(j["annotations"]["current"] == "0.09 (n=1200)");
  CHECK(j["annotations"]["exemplars"] == "r-1 [logs/2@77]");
  CHECK(j["startsAt"] == "2026-11-26T06:00:00.000Z");
  CHECK(j["endsAt"] == "2026-11-26T06:04:00.000Z");
  CHECK(j["generatorURL"] == "http://gw:9464/api/v1/alerts?alertname=RefusalUp");
  a.annotations["p_value"] = "rule wins";
  CHECK(Notifier::alert_payload(a, false, 0, "")["annotations"]["p_value"] == "rule wins");
}

TEST_CASE("notify: firing alerts are re-sent every resend_interval, resolved ones once, a full queue drops the oldest") {
  AlertingConfig cfg;
  cfg.alertmanagers = {"http://127.0.0.1:9"};  // discard port: every POST fails, so the queue shows what was sent
  cfg.resend_interval_ms = 60'000;
  cfg.queue_capacity = 3;
  cfg.timeout_ms = 200;
  cfg.max_backoff_ms = 60'000;
  std::atomic<int64_t> now{1'000'000};
  Notifier n(cfg, [&] { return now.load(); }, 30'000);
  REQUIRE(n.enabled());
  Alert a = sample_alert();
  n.on_event({now, "pending", a});  // pending alerts are not sent
  CHECK(value(n.collector(), "guardwatch_notifications_active_alerts") == 0);
  n.on_event({now, "firing", a});
  CHECK(value(n.collector(), "guardwatch_notifications_active_alerts") == 1);
  n.tick();  // not due yet
  now += 59'000;
  n.tick();
  CHECK(value(n.collector(), "guardwatch_notifications_dropped_total") == 0);
  now += 1'000;
  n.tick();  // due: re-sent
  now += 60'000;
  n.tick();  // due again; queue of 3 is full by now (the first POST is in flight or failed)
  now += 60'000;
  n.tick();
  CHECK(value(n.collector(), "guardwatch_notifications_dropped_total") >= 1);
  a.resolved_at = now;
  n.on_event({now, "resolved", a});
  CHECK(value(n.collector(), "guardwatch_notifications_active_alerts") == 0);
  now += 120'000;
  double dropped = value(n.collector(), "guardwatch_notifications_dropped_total");
  n.tick();  // resolved: nothing more to re-send
  CHECK(value(n.collector(), "guardwatch_notifications_dropped_total") == dropped);
}
}
