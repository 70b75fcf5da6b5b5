// Detection quality of the shipped rules (rules/guardrails.yaml, group ab-guardrails):
//  - delay from a shift in the candidate cohort to the rule firing, over many seeded trials;
//  - false alarms per 30 days on null streams (candidate and control identical).
// Records are simulated straight into the store (the decode path is measured by bench/replay.sh),
// 20 records/s per series, in event time, evaluated every 30 s as the daemon does.
//   detection [RULES=rules/guardrails.yaml] [TRIALS=20] [NULL_DAYS=30]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>

#include "guardwatch/rules.hpp"
#include "guardwatch/store.hpp"

using namespace gw;

namespace {
struct Profile {
  double refusal = 0.05, citation = 0.30, latency_median = 0.9, latency_sigma = 0.45, error = 0.005, truncated = 0.01;
  double chars_median = 900, chars_sigma = 0.55;
};

struct Sim {
  Config cfg;
  MetricRegistry reg;
  Store store;
  std::mt19937_64 rng;
  Series *control, *candidate;
  Observation o;
  Sim(const Config& c, uint64_t seed)
      : cfg(c), store(cfg, reg, {"model", "model_version", "endpoint", "variant"}), rng(seed) {
    control = &store.series_for({"m", "v1", "chat", "control"});
    candidate = &store.series_for({"m", "v2", "chat", "candidate"});
    o.values.assign(reg.size(), std::nan(""));
  }
  void record(Series& s, int64_t ts, const Profile& p) {
    std::uniform_real_distribution<double> u(0, 1);
    std::normal_distribution<double> z(0, 1);
    bool err = u(rng) < p.error;
    for (auto& v : o.values) v = std::nan("");
    o.values[kError] = err;
    double lat = p.latency_median * std::exp(p.latency_sigma * z(rng));
    o.values[kLatency] = lat;
    if (!err) {
      o.values[kTtft] = std::min(lat * 0.9, 0.22 * std::exp(0.35 * z(rng)));
      bool refusal = u(rng) < p.refusal;
      o.values[kRefusal] = refusal;
      o.values[kCitation] = !refusal && u(rng) < p.citation;
      o.values[kEmpty] = 0;
      o.values[kTruncated] = u(rng) < p.truncated;
      o.values[kContentFiltered] = 0;
      double chars = std::clamp(p.chars_median * std::exp(p.chars_sigma * z(rng)), 40.0, 8000.0);
      o.values[kResponseChars] = chars;
      o.values[kResponseWords] = chars / 6.5;
      o.values[kCompletionTokensMetric] = chars / 4;
    }
    store.add(s, ts, o);
  }
  // One second of traffic at `rate` per series; Poisson arrivals are approximated by a fixed count.
  void second(int64_t t_ms, const Profile& ctl, const Profile& cand, int rate) {
    for (int i = 0; i < rate; ++i) {
      int64_t ts = t_ms + i * 1000 / rate;
      record(*control, ts, ctl);
      record(*candidate, ts, cand);
    }
  }
};

constexpr int64_t kStart = 1'795'600'000'000;  // minute-aligned

struct Scenario {
  const char* name;
  const char* rule;
  void (*shift)(Profile&);
};
}  // namespace

int main(int argc, char** argv) {
  std::string rules_path = argc > 1 ? argv[1] : std::string(GW_SOURCE_DIR) + "/rules/guardrails.yaml";
  int trials = argc > 2 ? std::atoi(argv[2]) : 20;
  int null_days = argc > 3 ? std::atoi(argv[3]) : 30;
  Config cfg = config_from_yaml("", "").config;
  MetricRegistry reg;
  RuleLoad rl = load_rules({rules_path}, reg, {"model", "model_version", "endpoint", "variant"}, 27 * 3'600'000LL);
  if (!rl.ok()) {
    for (auto& e : rl.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    return 1;
  }
  // The A/B group only: the day-over-day group needs a day of history per trial.
  RuleSet ab;
  for (auto& g : rl.rules.groups)
    if (g.name == "ab-guardrails") ab.groups.push_back(g);
  const int rate = 20;
  const Scenario scenarios[] = {
      {"refusal 5% -> 7%", "CandidateRefusalRateUp", [](Profile& p) { p.refusal = 0.07; }},
      {"p95 latency +25%", "CandidateLatencyP95Up", [](Profile& p) { p.latency_median *= 1.25; }},
      {"citation 30% -> 24%", "CandidateCitationRateDown", [](Profile& p) { p.citation = 0.24; }},
  };
  std::printf("%-22s %-28s %7s %9s %12s %12s\n", "scenario", "rule", "trials", "detected", "delay p50", "delay p90");
  for (auto& sc : scenarios) {
    std::vector<double> delays;
    int detected = 0;
    for (int t = 0; t < trials; ++t) {
      Sim sim(cfg, 1000 + uint64_t(t));
      Evaluator ev(ab, sim.reg, sim.store);
      Profile base, shifted;
      sc.shift(shifted);
      std::uniform_int_distribution<int> jitter(0, 59);
      int64_t shift_at = kStart + 60 * 60'000 + jitter(sim.rng) * 1000;  // after 1h of warm-up
      double delay = -1;
      for (int64_t ts = kStart; ts < shift_at + 30 * 60'000 && delay < 0; ts += 1000) {
        if (ts % 30'000 == 0)
          for (auto& e : ev.evaluate(ts))
            if (e.kind == "firing" && e.alert.rule == sc.rule && ts >= shift_at) delay = double(ts - shift_at) / 60'000.0;
        sim.second(ts, base, ts >= shift_at ? shifted : base, rate);
      }
      if (delay >= 0) {
        ++detected;
        delays.push_back(delay);
      }
    }
    std::sort(delays.begin(), delays.end());
    auto pct = [&](double q) { return delays.empty() ? NAN : delays[size_t(q * double(delays.size() - 1))]; };
    std::printf("%-22s %-28s %7d %9d %10.2f m %10.2f m\n", sc.name, sc.rule, trials, detected, pct(0.5), pct(0.9));
  }
  // Null streams: count firings per rule.
  Sim sim(cfg, 7);
  Evaluator ev(ab, sim.reg, sim.store);
  Profile base;
  std::map<std::string, int> firings;
  int64_t end = kStart + int64_t(null_days) * 86'400'000;
  for (int64_t ts = kStart; ts < end; ts += 1000) {
    if (ts % 30'000 == 0)
      for (auto& e : ev.evaluate(ts))
        if (e.kind == "firing") ++firings[e.alert.rule];
    sim.second(ts, base, base, rate);
  }
  std::printf("\nnull streams: %d simulated days at %d records/s per series, 1 series pair per rule\n", null_days, rate);
  std::printf("%-30s %10s %18s\n", "rule", "firings", "per 30 days");
  for (auto& g : ab.groups)
    for (auto& r : g.rules)
      std::printf("%-30s %10d %18.2f\n", r.alert.c_str(), firings[r.alert], firings[r.alert] * 30.0 / null_days);
  return 0;
}
