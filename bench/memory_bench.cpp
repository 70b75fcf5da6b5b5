// Memory per active series with all built-in metrics and the default windows and tiers.
// Fills every bucket of every tier (27h of event time) with realistic values, then prints the
// store's own accounting and the process's peak RSS.
//   memory_bench [SERIES=1000] [RATE_PER_SECOND=0.5]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include "guardwatch/store.hpp"

using namespace gw;

static long rss_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atol(line.c_str() + std::string(key).size());
  return -1;
}

int main(int argc, char** argv) {
  int series = argc > 1 ? std::atoi(argv[1]) : 1000;
  double rate = argc > 2 ? std::atof(argv[2]) : 0.5;
  auto cfg_res = config_from_yaml("", "");
  Config cfg = cfg_res.config;
  MetricRegistry reg;
  Store st(cfg, reg, {"model", "model_version", "endpoint", "variant"});
  long rss0 = rss_kib("VmRSS:");
  std::mt19937_64 rng(1);
  std::normal_distribution<double> z(0, 1);
  std::uniform_real_distribution<double> u(0, 1);
  const int64_t start = 1'795'600'000'000, span = st.retention_ms();
  const int64_t step = int64_t(1000.0 / rate);
  Observation o;
  o.values.assign(reg.size(), std::nan(""));
  std::vector<Series*> ss;
  for (int i = 0; i < series; ++i)
    ss.push_back(&st.series_for({"model-" + std::to_string(i % 50), "v" + std::to_string(i / 50), "chat", i % 2 ? "candidate" : "control"}));
  uint64_t adds = 0;
  for (int64_t t = start; t < start + span; t += step)
    for (Series* s : ss) {
      for (size_t m = 0; m < kLatency; ++m) o.values[m] = u(rng) < 0.05;
      double lat = 0.9 * std::exp(0.45 * z(rng));
      o.values[kLatency] = lat;
      o.values[kTtft] = 0.22 * std::exp(0.35 * z(rng));
      double chars = std::clamp(1200 * std::exp(0.6 * z(rng)), 200.0, 4000.0);
      o.values[kResponseChars] = chars;
      o.values[kResponseWords] = chars / 6.5;
      o.values[kCompletionTokens] = chars / 4;
      o.values[kTokensPerSecond] = chars / 4 / lat;
      o.values[kCost] = (400 * 2.5 + chars / 4 * 10) / 1e6;
      o.values[kJudge] = std::clamp(0.8 + 0.08 * z(rng), 0.0, 1.0);
      st.add(*s, t + int64_t(u(rng) * double(step)), o);
      ++adds;
    }
  long rss1 = rss_kib("VmRSS:"), hwm = rss_kib("VmHWM:");
  double per_series = double(st.memory_bytes()) / series;
  std::printf("series=%d rate_per_series=%.2f/s records=%llu event_time=%s\n", series, rate, (unsigned long long)adds,
              format_duration(span).c_str());
  std::printf("store_bytes_per_series=%.0f (%.1f KiB) target=512 KiB ratio_to_target=%.2f\n", per_series, per_series / 1024,
              per_series / (512.0 * 1024));
  std::printf("rss_growth_per_series=%.1f KiB peak_rss=%.1f MiB\n", double(rss1 - rss0) / series, double(hwm) / 1024);
  return 0;
}
