#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "guardwatch/sketch.hpp"

using gw::Sketch;

namespace {
double exact_quantile(std::vector<double> v, double q) {
  size_t k = size_t(std::floor(q * double(v.size() - 1)));
  std::nth_element(v.begin(), v.begin() + long(k), v.end());
  return v[k];
}

void check_accuracy(const std::vector<double>& values) {
  Sketch s;
  for (double v : values) s.add(v);
  REQUIRE(s.count() == values.size());
  for (double q : {0.5, 0.9, 0.95, 0.99}) {
    double exact = exact_quantile(values, q), est = s.quantile(q);
    CAPTURE(q);
    CAPTURE(exact);
    CAPTURE(est);
    CHECK(std::fabs(est - exact) <= Sketch::kAlpha * std::fabs(exact) * (1 + 1e-9));
  }
}
}  // namespace

TEST_SUITE("unit") {
TEST_CASE("sketch: <=1% relative error on 10^6 lognormal values") {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> d(0.0, 0.8);
  std::vector<double> v(1'000'000);
  for (auto& x : v) x = d(rng);
  check_accuracy(v);
}

TEST_CASE("sketch: <=1% relative error on 10^6 heavy-tailed (Pareto alpha=1.2) values") {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> v(1'000'000);
  for (auto& x : v) x = 0.05 / std::pow(1.0 - u(rng), 1.0 / 1.2);
  check_accuracy(v);
}

TEST_CASE("sketch: zeros, negatives and merge") {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> d(0.0, 5.0);
  std::vector<double> v;
  Sketch a, b, whole;
  for (int i = 0; i < 200'000; ++i) {
    double x = i % 10 == 0 ? 0.0 : d(rng);
    v.push_back(x);
    (i % 2 ? a : b).add(x);
    whole.add(x);
  }
  a.merge(b);
  CHECK(a.count() == whole.count());
  for (double q : {0.05, 0.5, 0.9, 0.99}) {
    CHECK(a.quantile(q) == whole.quantile(q));
    double exact = exact_quantile(v, q);
    CHECK(std::fabs(a.quantile(q) - exact) <= Sketch::kAlpha * std::fabs(exact) + 1e-12);
  }
}

TEST_CASE("sketch: bins stay bounded for extreme ranges") {
  Sketch s;
  for (int e = -300; e <= 300; ++e) s.add(std::pow(10.0, e / 3.0));
  CHECK(s.count() == 601);
  CHECK(s.memory_bytes() < 2 * Sketch::kMaxBins * sizeof(uint32_t) + 256);
  CHECK(s.quantile(1.0) == doctest::Approx(1e100).epsilon(0.011));
}
}
