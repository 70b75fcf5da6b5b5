// guardwatch demo (daemon/app/demo.cpp).
#pragma once
#include <string>
#include <vector>

namespace gw {
struct DemoOptions {
  std::string scenario, listen = "127.0.0.1:9464", duration, config;
  double speed = 0;  // event seconds per wall second; 0: so the demo takes about a minute
  std::vector<std::string> alertmanagers, rules;
  int partitions = 6;
};
int run_demo(const DemoOptions& o);
}  // namespace gw
