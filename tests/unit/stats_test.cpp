#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "guardwatch/stats.hpp"

using namespace gw;
using namespace gw::stats;

namespace {
nlohmann::json vectors() {
  std::ifstream f(std::string(GW_SOURCE_DIR) + "/tests/unit/data/stat_vectors.json");
  REQUIRE(f);
  return nlohmann::json::parse(f);
}
Alternative alt(const std::string& s) {
  return s == "greater" ? Alternative::kGreater : s == "less" ? Alternative::kLess : Alternative::kTwoSided;
}
// Agreement to 1e-6, absolute for ordinary p-values and relative for tiny ones.
void close(double got, double want) {
  CHECK(std::fabs(got - want) <= 1e-6 * std::max(1e-3, std::fabs(want)));
}
}  // namespace

TEST_SUITE("unit") {
TEST_CASE("stats: normal and Student t tails agree with scipy") {
  auto v = vectors();
  for (auto& c : v["normal_sf"]) {
    CAPTURE(c.dump());
    close(normal_sf(c["z"]), c["p"]);
  }
  for (auto& c : v["t_sf"]) {
    CAPTURE(c.dump());
    close(student_t_sf(c["t"], c["df"]), c["p"]);
  }
}

TEST_CASE("stats: two-proportion z-test agrees with scipy") {
  const auto v = vectors();
  for (auto& c : v["two_proportion"]) {
    CAPTURE(c.dump());
    auto r = two_proportion(c["x1"], c["n1"], c["x2"], c["n2"], alt(c["alternative"]));
    REQUIRE(r.valid);
    CHECK(r.statistic == doctest::Approx(double(c["z"])).epsilon(1e-9));
    close(r.p_value, c["p"]);
  }
}

TEST_CASE("stats: Welch's t-test agrees with scipy.stats.ttest_ind_from_stats") {
  const auto v = vectors();
  for (auto& c : v["welch"]) {
    CAPTURE(c.dump());
    auto r = welch(c["mean1"], c["var1"], c["n1"], c["mean2"], c["var2"], c["n2"], alt(c["alternative"]));
    REQUIRE(r.valid);
    CHECK(r.statistic == doctest::Approx(double(c["t"])).epsilon(1e-9));
    close(r.p_value, c["p"]);
  }
}

TEST_CASE("stats: degenerate inputs do not claim significance") {
  CHECK_FALSE(two_proportion(0, 0, 5, 10, Alternative::kGreater).valid);
  CHECK(two_proportion(0, 100, 0, 100, Alternative::kGreater).p_value == 1);
  CHECK_FALSE(welch(1, 1, 1, 1, 1, 10, Alternative::kGreater).valid);
}

TEST_CASE("stats: quantile shift detects a 25% p95 shift and not a null") {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> base(0.0, 0.4), shifted(std::log(1.25), 0.4);
  Sketch a, b, c;
  for (int i = 0; i < 20000; ++i) {
    a.add(base(rng));
    b.add(base(rng));
    c.add(shifted(rng));
  }
  auto null = quantile_shift(b, a, 0.95, Alternative::kGreater);
  auto shift = quantile_shift(c, a, 0.95, Alternative::kGreater);
  REQUIRE(shift.valid);
  CHECK(shift.p_value < 1e-12);
  CHECK(null.p_value > 0.001);
  CHECK(quantile_shift(a, c, 0.95, Alternative::kLess).p_value < 1e-12);
}

TEST_CASE("stats: the always-valid p-value falls with evidence and stays 1 without") {
  CHECK(msprt_p(0, 0.001, 0.02) == 1);
  double weak = msprt_p(0.01, 0.0001, 0.02), strong = msprt_p(0.08, 0.0001, 0.02);
  CHECK(strong < weak);
  CHECK(strong < 1e-6);
}
}
