// systemd's service notification protocol (sd_notify through libsystemd): READY, WATCHDOG,
// RELOADING, STOPPING and STATUS. Every call is a no-op when NOTIFY_SOCKET is not set.
#pragma once
#include <cstdint>
#include <string>

namespace gw::systemd {

void ready(const std::string& status);
void reloading();  // followed by ready() when the reload is done
void stopping();
void status(const std::string& status);
void watchdog();
// The watchdog interval systemd expects pings within (WatchdogSec=), in ms; 0 when disabled.
int64_t watchdog_interval_ms();

}  // namespace gw::systemd
