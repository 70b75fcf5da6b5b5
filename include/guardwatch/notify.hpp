// deliver: alerts to Alertmanager (API v2) and webhooks, resent while firing, retried with
// exponential backoff from a bounded queue per target, in the manner of Prometheus's notifier.
#pragma once
#include <prometheus/collectable.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "guardwatch/config.hpp"
#include "guardwatch/rules.hpp"

namespace gw {

class Notifier {
 public:
  // `wall_ms` is the clock for resends and endsAt; `eval_interval_ms` the longest rule interval.
  Notifier(const AlertingConfig& cfg, std::function<int64_t()> wall_ms, int64_t eval_interval_ms);
  ~Notifier();
  bool enabled() const;
  void on_event(const AlertEvent& e);
  void tick();                          // resends firing alerts that are due
  // Waits until every queue is empty or the deadline passes; returns alerts still queued.
  size_t drain(int64_t timeout_ms);
  const prometheus::Collectable& collector() const;
  // The Alertmanager v2 JSON for one alert (also what webhooks receive, in an array).
  static nlohmann::json alert_payload(const Alert& a, bool resolved, int64_t ends_at_ms, const std::string& external_url);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Backoff before retry `attempt` (0-based): 500 ms doubling to at most `max_ms`.
int64_t backoff_ms(int attempt, int64_t max_ms = 60'000);

}  // namespace gw
