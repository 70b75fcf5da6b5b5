#pragma once
#include <string>

#include "guardwatch/config.hpp"

namespace gwtest {
inline gw::Config default_config() {
  auto r = gw::config_from_yaml("", "");
  return r.config;
}
inline gw::Config config(const std::string& yaml) {
  auto r = gw::config_from_yaml(yaml, "test.yaml");
  if (!r.ok()) throw std::runtime_error(r.errors.front().str());
  return r.config;
}
}  // namespace gwtest
