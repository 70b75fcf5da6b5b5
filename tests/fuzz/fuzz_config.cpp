// libFuzzer target: arbitrary bytes as a config file, a scenario and a rule file. Parsing never
// crashes; problems come back as errors with a position.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "guardwatch/config.hpp"
#include "guardwatch/generate.hpp"
#include "guardwatch/metrics.hpp"
#include "guardwatch/rules.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = gw::config_from_yaml(text, "fuzz.yaml");
  gw::Scenario sc;
  (void)gw::scenario_from_yaml(text, "fuzz.yaml", sc);
  static std::string path = (std::filesystem::temp_directory_path() / ("guardwatch-fuzz-rules-" + std::to_string(getpid()) + ".yaml")).string();
  if (FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    gw::MetricRegistry reg;
    auto rl = gw::load_rules({path}, reg, {"model", "model_version", "endpoint", "variant"}, 27 * 3'600'000LL);
    for (auto& e : rl.errors)
      if (e.file.empty()) __builtin_trap();  // every error names its file
  }
  return 0;
}
