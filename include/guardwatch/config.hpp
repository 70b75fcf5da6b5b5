// guardwatch's configuration: one YAML file, every key with a default (docs/configuration.md
// is generated from the option table in daemon/config/options.cpp).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace gw {

struct TierSpec {
  int64_t resolution_ms;
  uint32_t slots;
  int64_t retention_ms() const { return resolution_ms * slots; }
};

struct Price {
  double input_per_million = 0;   // USD per 1e6 prompt tokens
  double output_per_million = 0;  // USD per 1e6 completion tokens
};

struct AlertingConfig {
  std::vector<std::string> alertmanagers;  // base URLs; /api/v2/alerts is appended
  std::vector<std::string> webhooks;       // full URLs
  int64_t resend_interval_ms = 60'000;
  int64_t timeout_ms = 10'000;
  uint32_t queue_capacity = 10'000;
  int64_t max_backoff_ms = 60'000;
  std::string external_url;                // for generatorURL; default http://<listen>
  std::string basic_auth_user, basic_auth_password, bearer_token;
  std::string ca_file, cert_file, key_file;
  bool insecure_skip_verify = false;
};

struct Config {
  std::string source_file;  // where it was loaded from ("" for defaults)

  // http
  std::string listen = "127.0.0.1:9464";
  std::map<std::string, std::string> web_users;  // user -> crypt(3) hash (bcrypt $2b$, yescrypt $y$, ...)
  uint32_t web_max_connections = 64;
  std::string web_tls_cert, web_tls_key, web_tls_client_ca;  // TLS when cert and key are set
  int64_t shutdown_timeout_ms = 10'000;  // SIGTERM: drain, commit, deliver, exit within this

  // input
  std::string preset = "flat";
  std::map<std::string, std::string> field_overrides;  // field name -> JSON pointer
  std::vector<std::pair<std::string, std::string>> dimensions;  // label name -> JSON pointer
  uint64_t max_record_bytes = 1 << 20;
  uint32_t input_threads = 2;  // decode+extract threads for file input (1: the reading thread only)

  // kafka
  std::vector<std::string> kafka_topics;
  std::map<std::string, std::string> kafka_properties;  // passed to librdkafka unchanged
  int64_t kafka_rewind_ms = -1;  // on assignment re-read from now - this; -1 auto (rules' lookback), 0 off

  // windows
  std::vector<std::pair<std::string, int64_t>> report_windows = {
      {"1m", 60'000}, {"5m", 300'000}, {"15m", 900'000}, {"1h", 3'600'000}};
  std::vector<TierSpec> tiers = {{60'000, 64}, {1'800'000, 54}};
  int64_t allowed_lateness_ms = 120'000;
  int64_t max_future_ms = 300'000;  // live mode: records further ahead of the wall clock are rejected

  // series
  uint32_t max_series = 10'000;
  uint32_t max_values_per_label = 200;
  std::map<std::string, uint32_t> label_caps;  // per-label overrides
  int64_t series_expire_after_ms = -1;  // -1 auto (the coarsest tier's retention), 0 off
  // The resolved series.expire_after: 0 when off.
  int64_t expire_after_ms() const {
    if (series_expire_after_ms >= 0) return series_expire_after_ms;
    return tiers.empty() ? 0 : tiers.back().retention_ms();
  }

  // extract
  std::string refusal_lexicon;   // "" -> rules/lexicon/refusal.yaml next to the binary's data dir
  std::string citation_patterns; // "" -> rules/lexicon/citation.yaml
  std::string pattern_cache = "auto";  // off | auto | directory (Matcher::resolve_cache_dir)
  std::map<std::string, Price> prices;  // model -> price ("*" is the fallback)
  std::vector<std::string> error_statuses = {"error", "failed", "failure", "timeout", "cancelled"};

  // rules
  std::vector<std::string> rule_paths;

  // alerting
  AlertingConfig alerting;

  // logging
  std::string log_level = "info";
  double log_samples_per_second = 1.0;
};

struct ConfigError {
  std::string file;
  int line = 0, column = 0;  // 1-based, 0 when unknown
  std::string key;           // dotted path
  std::string message;
  std::string str() const;   // file:line:col: key: message
};

struct ConfigResult {
  Config config;
  std::vector<ConfigError> errors;
  bool ok() const { return errors.empty(); }
};

// Loads and validates; never throws for bad input: every problem becomes a ConfigError.
ConfigResult load_config(const std::string& path);
ConfigResult config_from_yaml(const std::string& text, const std::string& name);
// Markdown reference generated from the option table.
std::string config_reference_markdown();
// Expands ${VAR} and ${VAR:-default}; unknown variables without default become errors.
std::string expand_env(const std::string& in, std::string* missing_var);
// The longest duration guardwatch accepts: 36,525 days (100 years). Longer ones mean nothing here
// and, added to a timestamp or multiplied, would overflow 64-bit milliseconds.
inline constexpr int64_t kMaxDurationMs = 36'525LL * 86'400'000;
// "90s", "5m", "1h30m", "1d", "250ms" -> milliseconds; nullopt when malformed or longer than
// kMaxDurationMs.
std::optional<int64_t> parse_duration(std::string_view s);
std::string format_duration(int64_t ms);
// Where shipped data files (lexicons, rules) live: $GUARDWATCH_DATA_DIR, else the source tree or
// the install prefix.
std::string data_dir();

}  // namespace gw
