#include "guardwatch/systemd.hpp"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <string>

namespace gw::systemd {

namespace {
void send(const std::string& s) { sd_notify(0, s.c_str()); }
}  // namespace

void ready(const std::string& st) { send("READY=1\nSTATUS=" + st); }
void reloading() {
  // systemd 253+ pairs RELOADING=1 with the monotonic time; older versions ignore the field.
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(uint64_t(ts.tv_sec) * 1'000'000 + uint64_t(ts.tv_nsec) / 1000));
}
void stopping() { send("STOPPING=1\nSTATUS=shutting down"); }
void status(const std::string& st) { send("STATUS=" + st); }
void watchdog() { send("WATCHDOG=1"); }

int64_t watchdog_interval_ms() {
  uint64_t usec = 0;
  return sd_watchdog_enabled(0, &usec) > 0 ? int64_t(usec / 1000) : 0;
}

}  // namespace gw::systemd
