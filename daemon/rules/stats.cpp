#include "guardwatch/stats.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gw::stats {

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }
double normal_sf(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

namespace {
// Continued fraction for the incomplete beta function (modified Lentz).
double betacf(double a, double b, double x) {
  const int kMaxIter = 500;
  const double kEps = 1e-15, kFpMin = 1e-300;
  double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < kFpMin) d = kFpMin;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= kMaxIter; ++m) {
    int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kFpMin) d = kFpMin;
    c = 1 + aa / c;
    if (std::fabs(c) < kFpMin) c = kFpMin;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kFpMin) d = kFpMin;
    c = 1 + aa / c;
    if (std::fabs(c) < kFpMin) c = kFpMin;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < kEps) break;
  }
  return h;
}

double tail(double z, Alternative alt) {
  switch (alt) {
    case Alternative::kGreater: return normal_sf(z);
    case Alternative::kLess: return normal_cdf(z);
    case Alternative::kTwoSided: return std::min(1.0, 2 * normal_sf(std::fabs(z)));
  }
  return 1;
}
}  // namespace

double regularized_beta(double x, double a, double b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  double lfront = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  double front = std::exp(lfront);
  if (x < (a + 1) / (a + b + 2)) return front * betacf(a, b, x) / a;
  return 1 - front * betacf(b, a, 1 - x) / b;
}

double student_t_sf(double t, double df) {
  if (std::isinf(df)) return normal_sf(t);
  double x = df / (df + t * t);
  double half = 0.5 * regularized_beta(x, df / 2, 0.5);  // P(|T| > |t|) / 2
  return t > 0 ? half : 1 - half;
}

TestResult two_proportion(uint64_t x1, uint64_t n1, uint64_t x2, uint64_t n2, Alternative alt) {
  TestResult r;
  if (!n1 || !n2) return r;
  double p1 = double(x1) / double(n1), p2 = double(x2) / double(n2);
  double p = double(x1 + x2) / double(n1 + n2);
  double se = std::sqrt(p * (1 - p) * (1.0 / double(n1) + 1.0 / double(n2)));
  r.valid = true;
  if (se == 0) return r;  // both all-0 or all-1: no evidence of a difference (p = 1)
  r.statistic = (p1 - p2) / se;
  r.p_value = tail(r.statistic, alt);
  return r;
}

TestResult welch(double m1, double v1, uint64_t n1, double m2, double v2, uint64_t n2, Alternative alt) {
  TestResult r;
  if (n1 < 2 || n2 < 2 || !std::isfinite(v1) || !std::isfinite(v2)) return r;
  double a = v1 / double(n1), b = v2 / double(n2);
  double se2 = a + b;
  r.valid = true;
  if (se2 <= 0) return r;
  r.statistic = (m1 - m2) / std::sqrt(se2);
  r.df = se2 * se2 / (a * a / double(n1 - 1) + b * b / double(n2 - 1));
  switch (alt) {
    case Alternative::kGreater: r.p_value = student_t_sf(r.statistic, r.df); break;
    case Alternative::kLess: r.p_value = student_t_sf(-r.statistic, r.df); break;
    case Alternative::kTwoSided: r.p_value = std::min(1.0, 2 * student_t_sf(std::fabs(r.statistic), r.df)); break;
  }
  return r;
}

TestResult quantile_shift(const Sketch& cur, const Sketch& base, double q, Alternative alt) {
  TestResult r;
  if (!cur.count() || !base.count()) return r;
  Sketch pooled = cur;
  pooled.merge(base);
  double thr = pooled.quantile(q);
  uint64_t c_above = cur.count_above(thr), c_below = cur.count_below(thr);
  uint64_t b_above = base.count_above(thr), b_below = base.count_below(thr);
  uint64_t nc = c_above + c_below, nb = b_above + b_below;
  if (!nc || !nb) return r;
  return two_proportion(c_above, nc, b_above, nb, alt);
}

double msprt_p(double diff, double var_diff, double tau) {
  if (!(var_diff > 0) || !(tau > 0)) return 1;
  double t2 = tau * tau;
  double log_lambda = 0.5 * std::log(var_diff / (var_diff + t2)) + t2 * diff * diff / (2 * var_diff * (var_diff + t2));
  return std::min(1.0, std::exp(-log_lambda));
}

}  // namespace gw::stats
