#include "guardwatch/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>

namespace gw::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};  // SIGHUP may change it while other threads log
std::mutex g_mu;
struct Bucket {
  double tokens;
  std::chrono::steady_clock::time_point last;
  uint64_t dropped = 0;
};
std::unordered_map<std::string, Bucket> g_buckets;

const char* name(Level l) {
  switch (l) {
    case Level::kDebug: return "debug";
    case Level::kInfo: return "info";
    case Level::kWarn: return "warn";
    case Level::kError: return "error";
  }
  return "?";
}
}  // namespace

void set_level(Level l) { g_level = l; }

void write(Level l, std::string_view msg) {
  if (l < g_level) return;
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = ms / 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  std::string line = fmt::format("ts={:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z level={} msg=\"", tm.tm_year + 1900,
                                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms % 1000), name(l));
  for (char c : msg) {
    if (c == '"' || c == '\\') line += '\\';
    if (c == '\n') { line += "\\n"; continue; }
    line += c;
  }
  line += "\"\n";
  std::lock_guard g(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

long take(std::string_view key, double per_second) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard g(g_mu);
  auto it = g_buckets.find(std::string(key));
  if (it == g_buckets.end()) it = g_buckets.emplace(std::string(key), Bucket{per_second, now}).first;
  else {
    Bucket& b = it->second;
    double dt = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(std::max(per_second, 1.0), b.tokens + dt * per_second);
    b.last = now;
  }
  Bucket& b = it->second;
  if (b.tokens < 1.0) {
    ++b.dropped;
    return -1;
  }
  b.tokens -= 1.0;
  long d = long(b.dropped);
  b.dropped = 0;
  return d;
}

bool sampled(std::string_view key, double per_second, Level l, std::string_view msg) {
  auto now = std::chrono::steady_clock::now();
  uint64_t dropped = 0;
  {
    std::lock_guard g(g_mu);
    auto [it, fresh] = g_buckets.try_emplace(std::string(key), Bucket{per_second, now});
    Bucket& b = it->second;
    if (!fresh) {
      double dt = std::chrono::duration<double>(now - b.last).count();
      b.tokens = std::min(std::max(per_second, 1.0), b.tokens + dt * per_second);
      b.last = now;
    }
    if (b.tokens < 1.0) {
      ++b.dropped;
      return false;
    }
    b.tokens -= 1.0;
    dropped = b.dropped;
    b.dropped = 0;
  }
  if (dropped)
    write(l, fmt::format("{} ({} similar messages suppressed)", msg, dropped));
  else
    write(l, msg);
  return true;
}

}  // namespace gw::log
