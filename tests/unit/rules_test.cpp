#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>

#include "guardwatch/engine.hpp"
#include "guardwatch/runtime.hpp"
#include "helpers.hpp"

using namespace gw;

namespace {
// One directory per test process (ctest runs test cases in parallel processes), removed at exit.
struct TempDir {
  std::filesystem::path path = std::filesystem::temp_directory_path() / ("gw-rules-test-" + std::to_string(::getpid()));
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

std::string write_temp(const std::string& name, const std::string& text) {
  static TempDir tmp;
  const auto& dir = tmp.path;
  std::filesystem::create_directories(dir);
  auto p = (dir / name).string();
  std::ofstream(p) << text;
  return p;
}

constexpr int64_t T0 = 1'795'672'800;  // 2026-11-26T06:00:00Z (seconds)

// Feeds `seconds` of traffic at 10 records/s per cohort; the candidate refuses at rate(t).
template <typename F>
void feed(Engine& e, int64_t from_s, int64_t seconds, F candidate_rate) {
  uint64_t state = 12345;
  auto rnd = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return double(state >> 11) / double(1ULL << 53);
  };
  int id = 0;
  for (int64_t s = from_s; s < from_s + seconds; ++s)
    for (int k = 0; k < 10; ++k)
      for (const char* v : {"control", "candidate"}) {
        double rate = std::string(v) == "candidate" ? candidate_rate(s - T0) : 0.04;
        const char* text = rnd() < rate ? "I can't help with that." : "Sure, here you go.";
        e.ingest(fmt::format(R"({{"ts":{}.{:03d},"request_id":"r{}","model":"m","endpoint":"chat","variant":"{}","status":"ok","response":"{}"}})",
                             s, k * 100, ++id, v, text),
                 {});
      }
}

const char* kRule = R"(
groups:
  - name: g
    interval: 30s
    by: [model]
    rules:
      - alert: RefusalUp
        metric: refusal
        current:  {window: 5m, cohort: {variant: candidate}}
        baseline: {window: 5m, cohort: {variant: control}}
        test: {kind: two_proportion, alternative: greater, alpha: 0.001}
        min_effect: {absolute: 0.05}
        recovery: {absolute: 0.03}
        min_samples: 100
        for: 2m
        keep_firing_for: 1m
        labels: {severity: warning}
        annotations:
          summary: "{{ $labels.model }} refuses {{ $value | humanizePercentage }} (n={{ $current.n }}) vs {{ $baseline.value | humanizePercentage }}"
)";
}  // namespace

TEST_SUITE("unit") {
TEST_CASE("rules: lifecycle pending -> firing -> resolved with for, keep_firing_for and hysteresis") {
  Config cfg = gwtest::default_config();
  cfg.rule_paths = {write_temp("lifecycle.yaml", kRule)};
  Engine e(cfg);
  RuleRuntime rt(e);
  REQUIRE(rt.load().empty());
  std::vector<AlertEvent> ev;
  rt.on_event([&](const AlertEvent& x) { ev.push_back(x); });
  e.on_applied([&] { rt.advance(e.watermark_ms()); });
  // 0-20m: same rate; 20-40m: candidate refuses 25%; 40-60m: 6% (above recovery? effect 0.02 < 0.03).
  feed(e, T0, 3600, [](int64_t t) { return t < 1200 ? 0.04 : t < 2400 ? 0.25 : 0.04; });
  rt.advance(e.max_event_ms());
  std::vector<std::string> kinds;
  for (auto& x : ev) kinds.push_back(x.kind);
  REQUIRE(kinds == std::vector<std::string>{"pending", "firing", "resolved"});
  int64_t shift = (T0 + 1200) * 1000;
  CHECK(ev[0].ts_ms > shift);
  CHECK(ev[1].ts_ms - ev[0].ts_ms >= 120'000);  // for: 2m
  CHECK(ev[1].ts_ms - shift < 6 * 60'000);
  CHECK(ev[2].ts_ms > (T0 + 2400) * 1000 + 60'000);  // keep_firing_for after the last active evaluation
  const Alert& a = ev[1].alert;
  CHECK(a.labels.at("model") == "m");
  CHECK(a.labels.at("alertname") == "RefusalUp");
  CHECK(a.evidence.current.value > 0.15);
  CHECK(a.evidence.p_value < 1e-6);
  CHECK(a.annotations.at("summary").find("m refuses ") == 0);
  // Exemplars: refused responses of the candidate in the current window.
  REQUIRE(!a.exemplars.empty());
  CHECK(a.exemplars.size() <= 5);
  for (auto& x : a.exemplars) {
    CHECK(x.request_id.rfind("r", 0) == 0);
    CHECK(x.ts_ms > ev[1].ts_ms - 5 * 60'000);
  }
}

TEST_CASE("rules: a short blip shorter than `for` never fires") {
  Config cfg = gwtest::default_config();
  std::string rule = kRule;
  rule.replace(rule.find("current:  {window: 5m"), 21, "current:  {window: 1m");
  cfg.rule_paths = {write_temp("blip.yaml", rule)};
  Engine e(cfg);
  RuleRuntime rt(e);
  REQUIRE(rt.load().empty());
  std::vector<AlertEvent> ev;
  rt.on_event([&](const AlertEvent& x) { ev.push_back(x); });
  e.on_applied([&] { rt.advance(e.watermark_ms()); });
  feed(e, T0, 1800, [](int64_t t) { return t >= 600 && t < 630 ? 0.9 : 0.04; });  // 30 s of refusals
  rt.advance(e.max_event_ms());
  REQUIRE(!ev.empty());
  CHECK(ev[0].kind == "pending");  // it was noticed...
  for (auto& x : ev) CHECK(x.kind != "firing");  // ...but did not last `for`
}

TEST_CASE("rules: a gap in event time skips the evaluations that see nothing, with the same alerts") {
  // 30 minutes with a refusal spike at the end (fires; resolves only once the gap empties the
  // windows), then a gap, then 30 quiet minutes. Evaluated interval by interval and with the gap
  // skipped, the alert timelines must be the same.
  struct Run {
    std::vector<std::string> timeline;
    uint64_t evaluations, skipped;
  };
  auto run = [](int64_t gap_s, bool skip) {
    Config cfg = gwtest::default_config();
    cfg.rule_paths = {write_temp("gap.yaml", kRule)};
    Engine e(cfg);
    RuleRuntime rt(e);
    REQUIRE(rt.load().empty());
    rt.set_skip_gaps(skip);
    Run r;
    rt.on_event([&](const AlertEvent& x) { r.timeline.push_back(x.kind + "@" + std::to_string(x.ts_ms) + " " + x.alert.labels.at("alertname")); });
    e.on_applied([&] { rt.advance(e.watermark_ms()); });
    feed(e, T0, 1800, [](int64_t t) { return t < 1200 ? 0.04 : 0.3; });
    feed(e, T0 + 1800 + gap_s, 1800, [](int64_t) { return 0.04; });
    rt.advance(e.max_event_ms());
    r.evaluations = rt.evaluations();
    r.skipped = rt.skipped_evaluations();
    return r;
  };
  Run stepped = run(3 * 86'400, false), skipped = run(3 * 86'400, true);
  REQUIRE(stepped.timeline.size() >= 3);
  CHECK(stepped.timeline[1].rfind("firing@", 0) == 0);
  CHECK(stepped.timeline.back().rfind("resolved@", 0) == 0);
  CHECK(skipped.timeline == stepped.timeline);
  CHECK(stepped.skipped == 0);
  CHECK(skipped.skipped > 8'000);  // 3 days at 30 s: 8,640 evaluations, all but the gap's edges
  CHECK(skipped.evaluations + skipped.skipped == stepped.evaluations);
  // A year-long gap (one evaluation per 30 s would be a million) costs what the data costs.
  Run year = run(365 * 86'400, true);
  CHECK(year.timeline == stepped.timeline);  // every event is before the gap ends
  CHECK(year.evaluations <= skipped.evaluations + 2);
  CHECK(year.skipped > 1'000'000);
}

TEST_CASE("rules: a custom metric that is not a mapping is an error, not a crash (fuzzer regression)") {
  std::string bad = write_temp("scalar_metric.yaml", "metrics:\n  - name: ok\n    kind: proportion\n    pattern: 'x'\n  - just a string\ngroups: []\n");
  MetricRegistry reg;
  auto r = load_rules({bad}, reg, {"model", "model_version", "endpoint", "variant"}, 27 * 3'600'000LL);
  bool found = false;
  for (auto& e : r.errors) found |= e.key == "metrics[1]" && e.line == 5 && e.message.find("expected a custom metric") != std::string::npos;
  CHECK(found);
}

TEST_CASE("rules: errors name file, line, column and key, and list what is known") {
  std::string bad = write_temp("bad.yaml", R"(groups:
  - name: chat
    interval: 30s
    by: [modle]
    rules:
      - alert: RefusalRateUp
        metric: refusals
        current: {window: 15m}
        baseline: {window: 2h, offset: 1d}
      - alert: TooLong
        metric: latency
        test: {kind: two_proportion}
        current: {window: 15m}
        baseline: {window: 2h, offset: 2d}
        for: soon
)");
  MetricRegistry reg;
  auto r = load_rules({bad}, reg, {"model", "model_version", "endpoint", "variant"}, 27 * 3'600'000LL);
  REQUIRE(r.errors.size() == 5);
  auto has = [&](int line, const std::string& key, const std::string& text) {
    for (auto& e : r.errors)
      if (e.file == bad && e.line == line && e.key.find(key) != std::string::npos && e.message.find(text) != std::string::npos) return true;
    return false;
  };
  CHECK(has(4, "by", "unknown label \"modle\""));
  CHECK(has(7, "rules[0] \"RefusalRateUp\": metric", "unknown metric \"refusals\"; known: refusal, citation"));
  CHECK(has(12, "rules[1] \"TooLong\": test.kind", "is a distribution"));
  CHECK(has(14, "baseline", "longer than the retained history"));
  CHECK(has(15, "for", "expected a duration"));
  CHECK(r.errors[0].str().rfind(bad + ":", 0) == 0);
}

TEST_CASE("rules: an error about the whole file is reported once") {
  // load_rules reads each file twice (custom metrics, then groups); each error once all the same.
  MetricRegistry reg;
  const std::vector<std::string> labels{"model", "model_version", "endpoint", "variant"};
  auto one = [&](const std::string& name, const std::string& text) {
    auto r = load_rules({write_temp(name, text)}, reg, labels, 27 * 3'600'000LL);
    REQUIRE(r.errors.size() == 1);
    return r.errors[0];
  };
  ConfigError e = one("unknown_root.yaml", "rules:\n  - alert: X\n");
  CHECK(e.line == 1);
  CHECK(e.message.find("unknown key \"rules\"; known: groups, metrics") != std::string::npos);
  e = one("syntax.yaml", "groups:\n  - name: [unclosed\n");
  CHECK(e.message.find("YAML syntax error") != std::string::npos);
  e = one("scalar_root.yaml", "just a string\n");
  CHECK(e.message.find("a rule file is a mapping") != std::string::npos);
}

TEST_CASE("rules: Benjamini-Hochberg lets one strong group through among many null ones") {
  Config cfg = gwtest::default_config();
  cfg.rule_paths = {write_temp("bh.yaml", R"(
groups:
  - name: g
    interval: 1m
    by: [endpoint]
    correction: bonferroni
    rules:
      - alert: Up
        metric: refusal
        current:  {window: 5m, cohort: {variant: candidate}}
        baseline: {window: 5m, cohort: {variant: control}}
        test: {kind: two_proportion, alternative: greater, alpha: 0.01}
        min_samples: 50
)")};
  Engine e(cfg);
  RuleRuntime rt(e);
  REQUIRE(rt.load().empty());
  for (int ep = 0; ep < 20; ++ep)
    for (int i = 0; i < 400; ++i)
      for (const char* v : {"control", "candidate"}) {
        bool refuse = std::string(v) == "candidate" && ep == 0 ? i % 4 == 0 : i % 20 == 0;
        e.ingest(fmt::format(R"({{"ts":{},"model":"m","endpoint":"e{}","variant":"{}","status":"ok","response":"{}"}})", T0 + i / 2, ep, v,
                             refuse ? "I must decline." : "ok"),
                 {});
      }
  rt.advance(e.max_event_ms());
  auto events = rt.tick((T0 + 240) * 1000);
  auto alerts = rt.alerts_json()["alerts"];
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0]["labels"]["endpoint"] == "e0");
  CHECK(double(alerts[0]["evidence"]["alpha"]) == doctest::Approx(0.01 / 20));
}

TEST_CASE("templates: labels, values and pipes") {
  Alert a;
  a.labels = {{"model", "gpt-x"}};
  a.evidence.current = {1200, 0.0912};
  a.evidence.baseline = {5000, 0.04};
  a.evidence.effect = 0.0512;
  a.evidence.p_value = 1.5e-9;
  CHECK(render_template("{{ $labels.model }}: {{ $value | humanizePercentage }} vs {{$baseline.value|humanizePercentage}}", a) ==
        "gpt-x: 9.12% vs 4%");
  CHECK(render_template("n={{ $current.n }}/{{ $baseline.n }} p={{ $p_value }} d={{ $effect | printf \"%.3f\" }}", a) ==
        "n=1200/5000 p=1.5e-09 d=0.051");
  CHECK(render_template("{{ $labels.missing }}|{{ $nope }}", a) == "|{{$nope}}");
}
}
