// libFuzzer target: arbitrary bytes as one record through decode -> extract -> aggregate.
// Never crashes, never hangs; every input ends in exactly one outcome.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "guardwatch/engine.hpp"

namespace {
gw::Config& config() {
  static gw::Config c = [] {
    auto r = gw::config_from_yaml("input: {preset: flat, dimensions: {region: /meta/region}}\nseries: {max_series: 50}\n", "fuzz");
    return r.config;
  }();
  return c;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<gw::Engine> engine = std::make_unique<gw::Engine>(config());
  gw::SourcePos pos;
  pos.line = 1;
  uint64_t before = engine->records_seen();
  engine->ingest(std::string_view(reinterpret_cast<const char*>(data), size), pos);
  if (engine->records_seen() != before + 1) __builtin_trap();
  return 0;
}
