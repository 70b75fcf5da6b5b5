// Annotation templates, a small subset of Prometheus's: {{ $labels.name }}, {{ $value }},
// {{ $effect }}, {{ $relative }}, {{ $p_value }}, {{ $current.n }}, {{ $current.value }},
// {{ $baseline.n }}, {{ $baseline.value }}, {{ $primary.effect }} (alignment-tax rules),
// {{ $primary.relative }}, each optionally piped through humanizePercentage, humanize or
// printf "FORMAT".
#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "guardwatch/rules.hpp"

namespace gw {
namespace {

std::string trim(std::string s) {
  size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

std::string humanize(double v) {
  if (std::isnan(v)) return "NaN";
  double a = std::fabs(v);
  const char* suffix = "";
  if (a >= 1e9) { v /= 1e9; suffix = "G"; }
  else if (a >= 1e6) { v /= 1e6; suffix = "M"; }
  else if (a >= 1e3) { v /= 1e3; suffix = "k"; }
  return fmt::format("{:.4g}{}", v, suffix);
}

std::optional<double> number_of(const std::string& var, const Alert& a) {
  const Evidence& e = a.evidence;
  if (var == "$value" || var == "$current.value") return e.current.value;
  if (var == "$effect" || var == "$delta") return e.effect;
  if (var == "$relative") return e.relative;
  if (var == "$p_value") return e.p_value;
  if (var == "$alpha") return e.alpha;
  if (var == "$current.n") return double(e.current.n);
  if (var == "$baseline.n") return double(e.baseline.n);
  if (var == "$baseline.value") return e.baseline.value;
  if (a.primary) {
    if (var == "$primary.effect") return a.primary->effect;
    if (var == "$primary.relative") return a.primary->relative;
    if (var == "$primary.value") return a.primary->current.value;
    if (var == "$primary.baseline") return a.primary->baseline.value;
    if (var == "$primary.p_value") return a.primary->p_value;
  }
  return std::nullopt;
}

std::string render_expr(const std::string& expr, const Alert& a) {
  std::string var = expr, pipe;
  if (auto p = expr.find('|'); p != std::string::npos) {
    var = trim(expr.substr(0, p));
    pipe = trim(expr.substr(p + 1));
  }
  if (var.rfind("$labels.", 0) == 0) {
    auto it = a.labels.find(var.substr(8));
    return it == a.labels.end() ? "" : it->second;
  }
  auto v = number_of(var, a);
  if (!v) return "{{" + expr + "}}";
  if (pipe.empty()) {
    bool integral = var == "$current.n" || var == "$baseline.n";
    return integral ? fmt::format("{:.0f}", *v) : fmt::format("{:.6g}", *v);
  }
  if (pipe == "humanizePercentage") return fmt::format("{:.4g}%", *v * 100);
  if (pipe == "humanize") return humanize(*v);
  if (pipe.rfind("printf", 0) == 0) {
    auto q1 = pipe.find('"'), q2 = pipe.rfind('"');
    if (q1 != std::string::npos && q2 > q1) {
      std::string f = pipe.substr(q1 + 1, q2 - q1 - 1);
      char buf[128];
      std::snprintf(buf, sizeof buf, f.c_str(), *v);
      return buf;
    }
  }
  return fmt::format("{:.6g}", *v);
}

}  // namespace

std::string render_template(const std::string& t, const Alert& a) {
  std::string out;
  size_t i = 0;
  while (i < t.size()) {
    size_t b = t.find("{{", i);
    if (b == std::string::npos) {
      out += t.substr(i);
      break;
    }
    size_t e = t.find("}}", b + 2);
    if (e == std::string::npos) {
      out += t.substr(i);
      break;
    }
    out += t.substr(i, b - i);
    out += render_expr(trim(t.substr(b + 2, e - b - 2)), a);
    i = e + 2;
  }
  return out;
}

}  // namespace gw
