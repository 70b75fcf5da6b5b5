// rules: YAML rule files (DESIGN §5) -> a RuleSet; the evaluator compares windows per group and
// drives each alert through inactive -> pending -> firing -> resolved.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "guardwatch/config.hpp"
#include "guardwatch/metrics.hpp"
#include "guardwatch/stats.hpp"

namespace gw {

class Store;
class Engine;

using LabelMap = std::map<std::string, std::string>;

// A custom metric declared in a rule file.
struct CustomMetric {
  std::string name;
  MetricKind kind = MetricKind::kProportion;
  std::string pattern;  // proportion: regex on the response text
  std::string field;    // JSON pointer: proportion predicate or distribution value
  enum class Op { kNone, kEq, kNe, kLt, kLe, kGt, kGe, kPresent } op = Op::kNone;
  std::string operand;  // compared as a number when both sides are numbers, else as a string
  ConfigError where;
};

struct WindowSpec {
  int64_t window_ms = 0;
  int64_t offset_ms = 0;
  LabelMap cohort;  // empty: the group itself
};

struct Effect {
  std::optional<double> absolute, relative;
  bool any() const { return absolute || relative; }
};

enum class TestKind { kTwoProportion, kWelch, kQuantileShift, kSequential };

struct TestSpec {
  TestKind kind = TestKind::kTwoProportion;
  stats::Alternative alternative = stats::Alternative::kGreater;
  double alpha = 0.001;
  double quantile = 0.95;  // quantile_shift
  double tau = 0;          // sequential: mixture scale; 0 = derived from min_effect
};

struct Condition {  // one metric compared between the two windows
  int metric = -1;
  std::string metric_name;
  TestSpec test;
  Effect min_effect;
};

struct Rule {
  std::string alert;
  Condition cond;                 // the guardrail (the only condition of a plain rule)
  std::optional<Condition> primary;  // alignment-tax rules: the metric that improved
  WindowSpec current, baseline;
  uint64_t min_samples = 100;
  Effect recovery;                // hysteresis: firing until the effect falls below this
  Effect critical;                // effect at which severity becomes critical
  int64_t for_ms = 0, keep_firing_for_ms = 0;
  LabelMap labels, annotations;
  ConfigError where;
};

enum class Correction { kNone, kBonferroni, kBenjaminiHochberg };

struct RuleGroup {
  std::string name;
  int64_t interval_ms = 60'000;
  LabelMap match;
  std::vector<std::string> by;
  Correction correction = Correction::kBenjaminiHochberg;
  std::vector<Rule> rules;
  std::string file;
};

struct RuleSet {
  std::vector<RuleGroup> groups;
  std::vector<CustomMetric> metrics;
  std::vector<std::string> files;
  size_t rule_count() const;
  // The longest span any rule looks back over: window plus offset, current or baseline.
  int64_t reach_ms() const;
};

// Loads rule files and directories (*.yaml, *.yml, sorted). Metric names resolve against
// `metrics` plus the custom metrics the files declare; labels against `label_names`; windows
// against `retention_ms`. Every problem becomes an error naming file, line, column and key.
struct RuleLoad {
  RuleSet rules;
  std::vector<ConfigError> errors;
  bool ok() const { return errors.empty(); }
};
RuleLoad load_rules(const std::vector<std::string>& paths, const MetricRegistry& metrics,
                    const std::vector<std::string>& label_names, int64_t retention_ms);
// A warning when series.expire_after would drop series while `rules` still read their data (it
// is shorter than their reach), else "". `guardwatch check` prints it; a running daemon logs it.
std::string expiry_warning(const Config& cfg, const RuleSet& rules);
// First pass only: the custom metrics the files declare (so the engine can register them).
std::vector<CustomMetric> load_custom_metrics(const std::vector<std::string>& paths, std::vector<ConfigError>& errors);

struct Exemplar {
  std::string request_id;
  int64_t ts_ms = 0;
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  int64_t line = 0;
  double value = 0;  // the metric's value for distributions; 1 for proportions
};

struct Side {
  uint64_t n = 0;
  double value = 0;  // ratio, mean or quantile
};

struct Evidence {
  Side current, baseline;
  double effect = 0;           // current - baseline
  double relative = 0;         // current / baseline - 1
  double statistic = 0;
  double p_value = 1;
  double alpha = 0;            // threshold after the multiple-testing correction
  bool tested = false;         // enough samples and a valid test
  bool significant = false;
  bool meets_effect = false;
};

enum class AlertState { kInactive, kPending, kFiring };
const char* state_name(AlertState s);

struct Alert {
  std::string rule;            // alertname
  size_t group_index = 0, rule_index = 0;
  LabelMap labels;             // group labels + rule labels + alertname + severity
  LabelMap annotations;        // rendered
  AlertState state = AlertState::kInactive;
  int64_t active_at = 0, fired_at = 0, resolved_at = 0, last_active = 0, last_eval = 0;
  double min_p = 1;            // sequential tests: running minimum of the always-valid p-value
  Evidence evidence;           // the guardrail
  std::optional<Evidence> primary;  // alignment-tax rules
  std::vector<Exemplar> exemplars;
};

// What the evaluator reports as alerts change state (replay timelines, delivery).
struct AlertEvent {
  int64_t ts_ms;
  std::string kind;  // pending, firing, resolved
  Alert alert;
};

struct RuleHealth {
  int64_t last_eval_ms = 0;
  double last_duration_s = 0;
  size_t groups_tested = 0;
  std::string error;
  std::vector<std::pair<LabelMap, Evidence>> last;  // per group, the last evaluation
};

// Renders annotation templates: {{ $labels.x }}, {{ $value }}, {{ $effect }}, {{ $relative }},
// {{ $p_value }}, {{ $current.n }}, {{ $baseline.n }}, {{ $current.value }},
// {{ $baseline.value }}, with optional pipes: humanizePercentage, humanize, printf "%.3f".
std::string render_template(const std::string& tmpl, const Alert& a);

class Evaluator {
 public:
  Evaluator(const RuleSet& rules, const MetricRegistry& metrics, const Store& store);
  // Evaluates every group due at `now_ms` (event time); the store must be locked by the caller.
  // Returns the events that happened.
  std::vector<AlertEvent> evaluate(int64_t now_ms, bool force_all = false);
  // Takes over alert state from a previous evaluator (reload keeps pending/firing alerts).
  void adopt(const Evaluator& old);
  const std::map<std::string, Alert>& alerts() const { return alerts_; }
  const RuleSet& rules() const { return rules_; }
  const std::vector<std::vector<RuleHealth>>& health() const { return health_; }
  int64_t next_due_ms() const;
  // Moves every group's next evaluation to its first interval boundary at or after `t_ms` (never
  // back): evaluations in a stretch where they cannot see data are skipped (RuleRuntime::advance).
  // Returns how many group evaluations that skipped.
  uint64_t skip_to(int64_t t_ms);
  uint64_t evaluations() const { return evaluations_; }
  // The last evaluation saw no data in any window and no alert is pending or firing.
  bool idle() const { return !saw_data_ && alerts_.empty(); }
  uint64_t failures() const { return failures_; }

 private:
  void evaluate_rule(size_t group, size_t rule, int64_t now, std::vector<AlertEvent>& events);
  RuleSet rules_;
  const MetricRegistry& metrics_;
  const Store& store_;
  std::vector<int64_t> next_eval_;  // per group
  std::map<std::string, Alert> alerts_;  // key: group/rule/labels
  std::vector<std::vector<RuleHealth>> health_;
  uint64_t evaluations_ = 0, failures_ = 0;
  bool saw_data_ = true;
};

}  // namespace gw
