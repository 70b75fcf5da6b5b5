// Statistical tests behind rule `test.kind` (docs/statistics.md has the formulas).
#pragma once
#include <cstdint>

#include "guardwatch/store.hpp"

namespace gw::stats {

enum class Alternative { kGreater, kLess, kTwoSided };

double normal_cdf(double z);
double normal_sf(double z);                        // 1 - cdf, accurate in the tail
double student_t_sf(double t, double df);          // P(T > t)
double regularized_beta(double x, double a, double b);

struct TestResult {
  double statistic = 0;  // z or t
  double p_value = 1;
  double df = 0;         // Welch only
  bool valid = false;    // false when the inputs cannot support the test (n or variance zero)
};

// Pooled two-proportion z-test of p1 (current) against p2 (baseline).
TestResult two_proportion(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2, Alternative alt);
// Welch's unequal-variance t-test on means.
TestResult welch(double mean1, double var1, uint64_t n1, double mean2, double var2, uint64_t n2, Alternative alt);
// Quantile shift: is current's q-quantile above (below) baseline's? A two-sample quantile test
// (Mood's median test generalised to q): both samples are split at the pooled q-quantile and
// the shares above it compared with a two-proportion test. The split uses sketch bins only
// (samples in the threshold's own bin count for neither side), which keeps the sketch's 1%
// error from manufacturing a difference.
TestResult quantile_shift(const Sketch& current, const Sketch& baseline, double q, Alternative alt);
// mSPRT (Johari et al. 2017) with a normal mixture prior N(0, tau^2) on the difference of two
// estimates with variance `var_diff`; returns 1/Lambda, an always-valid p-value when tracked as a
// running minimum over evaluations of a growing sample.
double msprt_p(double diff, double var_diff, double tau);

}  // namespace gw::stats
