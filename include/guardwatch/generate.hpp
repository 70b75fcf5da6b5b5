// generate: deterministic synthetic inference logs for tests, benchmarks and the demo.
// A scenario (YAML) names the series, each series' traffic profile, and scripted changes over
// event time ("after 10m the candidate's refusal rate goes 4% -> 9%").
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "guardwatch/config.hpp"

namespace gw {

struct Profile {
  double rate = 20;              // records per second of event time
  double refusal_rate = 0.04;
  double citation_rate = 0.30;
  double truncation_rate = 0.01;
  double error_rate = 0.005;
  double empty_rate = 0.002;
  double content_filter_rate = 0.002;
  double feedback_rate = 0.2;    // share of records with user feedback
  double negative_feedback_rate = 0.1;  // of those with feedback
  double latency_median_ms = 900, latency_sigma = 0.45;
  double ttft_median_ms = 220, ttft_sigma = 0.35;
  double chars_median = 900, chars_sigma = 0.55;
  double chars_min = 40, chars_max = 8000;
  double judge_mean = 0.8, judge_sd = 0.08;
  double prompt_tokens_median = 400;
};

struct SeriesSpec {
  std::map<std::string, std::string> labels;  // model, model_version, endpoint, variant, others
  Profile profile;
};

struct Change {
  int64_t at_ms = 0;  // offset from start
  std::map<std::string, std::string> match;   // empty = all series
  std::map<std::string, double> set;           // profile key -> value
  std::map<std::string, double> scale;         // profile key -> factor
};

struct Scenario {
  uint64_t seed = 42;
  int64_t start_ms = 1'795'672'800'000;  // 2026-11-26T06:00:00Z
  int64_t duration_ms = 3'600'000;
  std::vector<SeriesSpec> series;
  std::vector<Change> changes;
};

// Parses a scenario; errors name the file, line and key.
std::vector<ConfigError> load_scenario(const std::string& path, Scenario& out);
std::vector<ConfigError> scenario_from_yaml(const std::string& text, const std::string& name, Scenario& out);
// A profile key by name ("refusal_rate", "latency_median_ms", ...); nullptr when unknown.
double* profile_field(Profile& p, const std::string& key);
std::vector<std::string> profile_keys();

// The built-in scenario: two models, control and candidate of one, a regression at 1/3.
Scenario default_scenario();

struct GeneratedRecord {
  int64_t ts_ms;
  size_t series;       // index into Scenario::series
  std::string json;    // one flat-preset JSON object, no newline
  bool refusal, citation;
};

class Generator {
 public:
  explicit Generator(const Scenario& s);
  // Produces the next record in event-time order; false when the scenario's duration is over
  // or `max_records` were produced (0 = unlimited).
  bool next(GeneratedRecord& out);
  uint64_t produced() const { return produced_; }

 private:
  void apply_changes(int64_t now);
  void write_record(size_t si, int64_t ts, GeneratedRecord& out);
  Scenario sc_;
  std::vector<Profile> current_;
  std::vector<int64_t> next_ts_;
  std::vector<bool> applied_;
  std::mt19937_64 rng_;
  uint64_t produced_ = 0;
};

}  // namespace gw
