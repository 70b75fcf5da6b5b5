// The proxy metrics guardwatch measures: built-in ones first, then custom ones from rules.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace gw {

enum class MetricKind : uint8_t { kProportion, kDistribution };

struct MetricDef {
  std::string name;       // rule-facing name, e.g. "refusal", "latency"
  MetricKind kind;
  std::string prom_name;  // exported family: guardwatch_<prom_name>
  std::string unit;       // unit suffix of prom_name: "seconds", "chars", ... ("" when none)
  std::string help;
};

// Built-in metric ids (index into Observation and the store's per-metric arrays).
enum BuiltinMetric : uint16_t {
  // proportions
  kRefusal,
  kCitation,
  kEmpty,
  kTruncated,
  kContentFiltered,
  kError,
  kNegativeFeedback,
  // distributions
  kLatency,
  kTtft,
  kTokensPerSecond,
  kResponseChars,
  kResponseWords,
  kCompletionTokensMetric,
  kCost,
  kJudge,
  kBuiltinMetricCount
};

class MetricRegistry {
 public:
  MetricRegistry();  // registers the built-ins
  uint16_t add(MetricDef def);
  const MetricDef& operator[](size_t id) const { return defs_[id]; }
  size_t size() const { return defs_.size(); }
  int find(std::string_view name) const;  // -1 when unknown
  std::string known_names() const;       // "refusal, citation, ..." for error messages
  const std::vector<MetricDef>& all() const { return defs_; }

 private:
  std::vector<MetricDef> defs_;
};

}  // namespace gw
