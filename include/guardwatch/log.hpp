// Structured, rate-limited logging to stderr (logfmt).
#pragma once
#include <fmt/format.h>

#include <string_view>

namespace gw::log {

enum class Level { kDebug, kInfo, kWarn, kError };
void set_level(Level l);
void write(Level l, std::string_view msg);
// Logs at most `per_second` messages for `key` (token bucket); returns false when dropped.
bool sampled(std::string_view key, double per_second, Level l, std::string_view msg);
// Takes a token for `key` if one is available; the caller then formats and writes (so a
// suppressed message costs no formatting). Returns how many were suppressed since, or -1.
long take(std::string_view key, double per_second);

template <typename... A>
void debug(fmt::format_string<A...> f, A&&... a) { write(Level::kDebug, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A>
void info(fmt::format_string<A...> f, A&&... a) { write(Level::kInfo, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A>
void warn(fmt::format_string<A...> f, A&&... a) { write(Level::kWarn, fmt::format(f, std::forward<A>(a)...)); }
template <typename... A>
void error(fmt::format_string<A...> f, A&&... a) { write(Level::kError, fmt::format(f, std::forward<A>(a)...)); }

}  // namespace gw::log
