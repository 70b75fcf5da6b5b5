// The rule engine wired to an Engine: loads rules (and their custom metrics), evaluates them as
// event time advances, keeps the alert timeline, reloads, and renders the JSON the CLI and the
// HTTP API print.
#pragma once
#include <prometheus/collectable.h>

#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "guardwatch/engine.hpp"
#include "guardwatch/rules.hpp"

namespace gw {

// Custom metrics declared by the configured rule paths (empty on errors, which load_rules reports).
std::vector<CustomMetric> custom_metrics_for(const Config& cfg);

class RuleRuntime {
 public:
  explicit RuleRuntime(Engine& engine);
  // (Re)loads cfg.rule_paths. On errors the previous rules keep running; returns the errors.
  std::vector<ConfigError> load();
  bool loaded() const { return evaluator_ != nullptr; }
  // Replay/test: evaluate every due time up to the engine's watermark (or `until`, at the end).
  // Across a gap in event time it skips the evaluations that can see no data (see the .cpp).
  std::vector<AlertEvent> advance(int64_t until_ms);
  // Evaluate gaps in event time one interval at a time instead of skipping them (tests compare).
  void set_skip_gaps(bool on) { skip_gaps_ = on; }
  uint64_t evaluations() const;
  uint64_t skipped_evaluations() const { return skipped_; }
  // Live: evaluate the groups due at `now_ms` (wall clock).
  std::vector<AlertEvent> tick(int64_t now_ms);
  // Called for every event (delivery, timelines).
  void on_event(std::function<void(const AlertEvent&)> f) { listeners_.push_back(std::move(f)); }

  nlohmann::json rules_json() const;
  nlohmann::json alerts_json() const;
  static nlohmann::json event_json(const AlertEvent& e, const MetricRegistry& reg);
  uint64_t reloads_ok() const { return reloads_ok_; }
  uint64_t reloads_failed() const { return reloads_failed_; }
  bool last_reload_ok() const { return last_reload_ok_; }
  int64_t last_reload_ms() const { return last_reload_ms_; }
  const prometheus::Collectable& collector() const { return *collector_; }
  std::vector<std::string> watched_files() const;
  int64_t max_interval_ms() const;
  // The longest span a loaded rule looks back from its evaluation time (window + offset).
  int64_t lookback_ms() const;

 private:
  std::vector<AlertEvent> run_locked(int64_t t, bool all);
  int64_t lookback_locked() const;
  Engine& engine_;
  mutable std::mutex mu_;  // guards evaluator_ (evaluation vs. API readers)
  std::unique_ptr<Evaluator> evaluator_;
  std::vector<std::function<void(const AlertEvent&)>> listeners_;
  bool started_ = false;
  bool skip_gaps_ = true;
  uint64_t skipped_ = 0;  // group evaluations skipped across gaps
  uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
  bool last_reload_ok_ = true;
  int64_t last_reload_ms_ = 0;
  std::unique_ptr<prometheus::Collectable> collector_;
  friend class RuleCollector;
};

// Labelled incident windows for `replay --incidents`: precision, recall and detection delay.
struct Incident {
  LabelMap labels;
  int64_t start_ms, end_ms;
  std::string alert;  // optional: only this rule is judged against it
};
std::vector<ConfigError> load_incidents(const std::string& path, std::vector<Incident>& out);
nlohmann::json score_incidents(const std::vector<AlertEvent>& events, const std::vector<Incident>& incidents,
                               const std::vector<std::string>& rule_names, int64_t grace_ms);

}  // namespace gw
