#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "guardwatch/generate.hpp"

using namespace gw;

TEST_SUITE("unit") {
TEST_CASE("generate: rates and distributions match the scenario within sampling error (10^5 records)") {
  Scenario sc;
  auto errs = scenario_from_yaml(R"(
seed: 5
duration: 2h
defaults: {rate: 7, refusal_rate: 0.05, citation_rate: 0.3, error_rate: 0.01, latency_median_ms: 800, latency_sigma: 0.5}
series:
  - {model: a, variant: control}
  - {model: a, variant: candidate}
changes:
  - {at: 1h, match: {variant: candidate}, set: {refusal_rate: 0.10}, scale: {latency_median_ms: 1.5}}
)",
                                 "t.yaml", sc);
  REQUIRE(errs.empty());
  Generator g(sc);
  GeneratedRecord r;
  struct Acc {
    double n = 0, ok = 0, refusals = 0, citations = 0, errors = 0;
    std::vector<double> lat;
  } acc[2][2];  // [series][after change]
  int64_t last = 0;
  bool ordered = true;
  while (g.next(r)) {
    ordered &= r.ts_ms >= last;  // event-time order
    last = r.ts_ms;
    auto j = nlohmann::json::parse(r.json);
    Acc& a = acc[r.series][r.ts_ms - sc.start_ms >= 3'600'000];
    ++a.n;
    bool err = j.contains("status") && j["status"] != "ok";
    a.errors += err;
    a.lat.push_back(j["latency_ms"]);
    if (!err && j.contains("response") && !std::string(j["response"]).empty()) {
      ++a.ok;
      a.refusals += r.refusal;
      a.citations += r.citation;
    }
  }
  CHECK(ordered);
  CHECK(g.produced() > 90'000);
  auto within = [](double x, double n, double p) {  // 4 standard errors
    return std::fabs(x / n - p) <= 4 * std::sqrt(p * (1 - p) / n);
  };
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + long(v.size() / 2), v.end());
    return v[v.size() / 2];
  };
  for (int s = 0; s < 2; ++s)
    for (int after = 0; after < 2; ++after) {
      Acc& a = acc[s][after];
      bool shifted = s == 1 && after == 1;
      CAPTURE(s);
      CAPTURE(after);
      CHECK(within(a.errors, a.n, 0.01));
      CHECK(within(a.refusals, a.ok, shifted ? 0.10 : 0.05));
      CHECK(within(a.citations, a.ok, (1 - (shifted ? 0.10 : 0.05)) * 0.3));  // citations only on non-refusals
      CHECK(median(a.lat) == doctest::Approx(shifted ? 1200 : 800).epsilon(0.03));
      CHECK(a.n / 3600.0 == doctest::Approx(7).epsilon(0.05));  // Poisson arrivals at the rate
    }
  // Seeded: the same scenario gives the same records.
  Generator g1(sc), g2(sc);
  GeneratedRecord a, b;
  for (int i = 0; i < 1000; ++i) {
    REQUIRE(g1.next(a));
    REQUIRE(g2.next(b));
    CHECK(a.json == b.json);
  }
}
}
