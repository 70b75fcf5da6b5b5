// deliver: window values and self metrics as Prometheus families (prometheus-cpp's data model
// and text serializer), and the same values as a JSON report.
#pragma once
#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "guardwatch/engine.hpp"
#include "guardwatch/source.hpp"

namespace gw {

inline constexpr double kQuantiles[] = {0.5, 0.9, 0.95, 0.99};

// Collects the engine's windows and counters on every scrape.
class EngineCollector : public prometheus::Collectable {
 public:
  // `end_ms` says where windows end: the wall clock when live, the newest event in replay.
  EngineCollector(const Engine& engine, std::function<int64_t()> end_ms,
                  std::function<KafkaStats()> kafka_stats = nullptr);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const Engine& engine_;
  std::function<int64_t()> end_ms_;
  std::function<KafkaStats()> kafka_stats_;
};

// An empty family (name as given, e.g. "guardwatch_alert_state"); every collector builds its
// families with this.
prometheus::MetricFamily metric_family(std::string name, std::string help, prometheus::MetricType type);

// Text exposition of several collectables.
std::string serialize_metrics(const std::vector<const prometheus::Collectable*>& collectables);

// Final window values per series, as printed by `guardwatch replay --report json`.
nlohmann::json window_report(const Engine& engine, int64_t end_ms);
// One record's extracted values, as printed by `guardwatch extract`: for an applied record and a
// late one (extracted, then dropped by the store), its labels, metrics and matched patterns; for
// any other, its outcome and `detail`, why it was skipped.
nlohmann::json explain_record(const Engine& engine, const Record& r, const Observation& o, Outcome outcome,
                              std::string_view detail = {});

std::string build_version();

}  // namespace gw
