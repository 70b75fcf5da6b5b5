// Config loading. The option table below is the single description of every key: it drives
// unknown-key errors, `guardwatch check`, and docs/configuration.md (`guardwatch config-reference`).
#include <yaml-cpp/yaml.h>

#include "guardwatch/yaml_util.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "guardwatch/config.hpp"
#include "guardwatch/decode.hpp"

namespace gw {
namespace {

struct Option {
  const char* path;   // dotted; "*" stands for a free key
  const char* type;
  const char* def;
  const char* help;
};

const Option kOptions[] = {
    {"listen", "address", "127.0.0.1:9464", "HTTP address for /metrics, /healthz, /readyz and /api. `--listen` overrides it. Use port 0 for any free port."},
    {"web", "map", "", "The HTTP endpoints (read-only: GET and HEAD)."},
    {"web.basic_auth_users", "map user->password hash", "{}", "When set, every endpoint but /healthz and /readyz requires HTTP basic auth. Hashes are crypt(3) strings, e.g. bcrypt from `htpasswd -nbB user pass` or `mkpasswd -m bcrypt` (as in Prometheus's web config)."},
    {"web.max_connections", "count", "64", "Concurrent HTTP connections; further ones are closed at once. Requests are limited to 16 KiB."},
    {"web.tls", "{cert_file, key_file, client_ca_file}", "", "Serve HTTPS only (TLS 1.2+) when cert_file and key_file are set (PEM, as in Prometheus's web config). Files are read at start."},
    {"web.tls.cert_file", "path", "", "Server certificate chain (PEM)."},
    {"web.tls.key_file", "path", "", "Server private key (PEM)."},
    {"web.tls.client_ca_file", "path", "", "When set, clients must present a certificate signed by this CA (mutual TLS)."},
    {"shutdown_timeout", "duration", "10s", "On SIGTERM: stop reading, commit offsets, deliver pending (resolved) notifications, and exit within this deadline; past it guardwatch exits 1. `--shutdown-timeout` overrides it."},
    {"input", "map", "", "How records are read and decoded."},
    {"input.preset", "flat|openai", "flat", "Field layout preset (DESIGN §2): `flat` (one object with top-level fields) or `openai` (a proxy's log of an OpenAI-style chat completion)."},
    {"input.fields", "map field->JSON pointer", "{}", "Per-field overrides of the preset, e.g. `response: /output/text`. Fields: ts, request_id, model, model_version, endpoint, variant, latency_ms, ttft_ms, prompt_tokens, completion_tokens, finish_reason, status, response, judge_score, user_feedback, cost_usd."},
    {"input.dimensions", "map label->JSON pointer", "{}", "Extra series labels, e.g. `region: /meta/region`. Each is capped like the built-in labels."},
    {"input.max_record_bytes", "bytes", "1048576", "Larger records are counted as `oversized` and skipped."},
    {"input.threads", "1|2", "2", "Threads that decode and extract records (file, stdin and Kafka input, in chunks of 32, while the reading thread reads on); records are still applied in input order by one thread, so results are identical. 1 keeps everything on the reading thread."},
    {"kafka", "map", "", "Kafka source. Without `kafka.topics` guardwatch reads `--input` instead."},
    {"kafka.topics", "list of strings", "[]", "Topics to subscribe to (consumer group from `group.id`)."},
    {"kafka.rewind", "duration|auto|off", "auto", "On a partition assignment, re-read the partition from the first record at or after now minus this (Kafka timestamps) up to its committed offset, so windows and baselines are whole before rules evaluate (warm-up: rules hold, /readyz is 503, re-read records count in guardwatch_warmup_records_total). `auto`: the longest span a loaded rule looks back (window + offset), at least the longest report window."},
    {"kafka.properties", "map", "{group.id: guardwatch}", "librdkafka properties passed through unchanged (bootstrap.servers, security.protocol, sasl.*, ssl.*, ...). Values may use `${ENV_VAR}`. guardwatch sets enable.auto.offset.store=false and stores an offset only after its record is applied. librdkafka's warnings and errors are logged as warnings (at most one a second), the lines its `debug` property asks for (`debug: consumer,fetch`, say) at info. With `group.instance.id` the replica is a static member: a stop does not leave the group, and a restart within `session.timeout.ms` keeps its partitions (docs/operations.md)."},
    {"windows", "map", "", "Rolling windows."},
    {"windows.report", "list of durations", "[1m, 5m, 15m, 1h]", "Windows exported on /metrics and in replay reports (label `window`)."},
    {"windows.tiers", "list of {resolution, slots}", "[{resolution: 1m, slots: 64}, {resolution: 30m, slots: 54}]", "Rings of time buckets. A window is answered from the finest tier that retains it; the coarsest tier's retention (resolution x slots, 27h by default) bounds the longest window plus offset (enough for a 2h baseline 1d ago)."},
    {"windows.allowed_lateness", "duration", "2m", "Records older than the newest event time of their input (for Kafka, of their partition, so a partition read later is not late) minus this are counted as `late` and skipped."},
    {"windows.max_future", "duration", "5m", "Live mode: records further ahead of the wall clock are counted as `bad_timestamp`."},
    {"series", "map", "", "Cardinality caps."},
    {"series.max_series", "count", "10000", "Global cap on series; new label sets beyond it fold into one series whose labels are all `__other__`."},
    {"series.max_values_per_label", "count", "200", "Distinct values kept per label; further values become `__other__` (counted in guardwatch_series_folded_total)."},
    {"series.label_caps", "map label->count", "{}", "Per-label overrides of max_values_per_label."},
    {"series.expire_after", "duration|auto|off", "auto", "A series that has had no record for this long (in event time; on the wall clock when reading Kafka) is dropped: its memory, its /metrics series and its label values, which new values may then take under the caps (counted in guardwatch_series_expired_total). `auto`: the coarsest tier's retention (27h by default), after which the series holds no data any window can read. Shorter drops data still inside windows: keep it at least as long as your rules' longest window plus offset; it cannot be shorter than the longest report window."},
    {"extract", "map", "", "Proxy-metric extraction."},
    {"extract.refusal_lexicon", "path", "rules/lexicon/refusal.yaml", "Refusal lexicon (patterns, scan limit, code exclusion)."},
    {"extract.citation_patterns", "path", "rules/lexicon/citation.yaml", "Citation patterns."},
    {"extract.pattern_cache", "auto|off|path", "auto", "Directory that keeps the compiled pattern database between starts, keyed by every pattern and the Vectorscan version (a start then loads it in ~1 ms instead of compiling for ~0.4 s). `auto`: $CACHE_DIRECTORY (systemd CacheDirectory=), else $XDG_CACHE_HOME/guardwatch, else ~/.cache/guardwatch. Failures to read or write it only mean compiling."},
    {"extract.error_statuses", "list of strings", "[error, failed, failure, timeout, cancelled]", "Status words that count as errors (HTTP codes >= 400 always do)."},
    {"extract.prices", "map model->{input_per_million, output_per_million}", "{}", "USD per million prompt/completion tokens; key `*` is the fallback. A record's own cost_usd field wins."},
    {"rules", "list of paths", "[]", "Rule files or directories (used by the rule engine). `--rules` adds to it."},
    {"alerting", "map", "", "Where alerts go."},
    {"alerting.alertmanagers", "list of URLs", "[]", "Alertmanager base URLs; alerts are POSTed to <url>/api/v2/alerts. `--alertmanager URL` adds to it."},
    {"alerting.webhooks", "list of URLs", "[]", "URLs that receive the same alert JSON array (POST)."},
    {"alerting.resend_interval", "duration", "1m", "Firing alerts are re-sent this often, with endsAt = now + 4 x max(resend_interval, evaluation interval)."},
    {"alerting.timeout", "duration", "10s", "Timeout of one POST."},
    {"alerting.queue_capacity", "count", "10000", "Alerts queued per target; beyond it the oldest are dropped and counted in guardwatch_notifications_dropped_total."},
    {"alerting.max_backoff", "duration", "1m", "Failed POSTs are retried after 0.5 s, doubling up to this."},
    {"alerting.external_url", "URL", "http://<listen>", "Base of each alert's generatorURL."},
    {"alerting.basic_auth", "{username, password}", "", "HTTP basic auth for every target (values may use ${ENV})."},
    {"alerting.bearer_token", "string", "", "Bearer token for every target."},
    {"alerting.tls", "{ca_file, cert_file, key_file, insecure_skip_verify}", "", "TLS options for https targets."},
    {"alerting.basic_auth.username", "string", "", "Basic auth user."},
    {"alerting.basic_auth.password", "string", "", "Basic auth password (never logged, never in /api output)."},
    {"alerting.tls.ca_file", "path", "", "CA bundle to verify targets."},
    {"alerting.tls.cert_file", "path", "", "Client certificate."},
    {"alerting.tls.key_file", "path", "", "Client key."},
    {"alerting.tls.insecure_skip_verify", "bool", "false", "Skip certificate verification (testing only)."},
    {"log", "map", "", "Logging."},
    {"log.level", "debug|info|warn|error", "info", "Least severe level written to stderr."},
    {"log.samples_per_second", "number", "1", "Rate limit for per-record warnings (e.g. malformed records), per reason."},
};

const Option* find_option(const std::string& path) {
  for (auto& o : kOptions)
    if (path == o.path) return &o;
  return nullptr;
}

class Reader {
 public:
  Reader(std::string file, std::vector<ConfigError>& errs) : file_(std::move(file)), errs_(errs) {}

  void error(const YAML::Node& n, const std::string& key, const std::string& msg) {
    ConfigError e;
    e.file = file_;
    if (n.IsDefined() && !n.Mark().is_null()) {
      e.line = n.Mark().line + 1;
      e.column = n.Mark().column + 1;
    }
    e.key = key;
    e.message = msg;
    errs_.push_back(std::move(e));
  }

  std::optional<std::string> str(const YAML::Node& n, const std::string& key) {
    if (!gw::yaml::is_scalar(n)) {
      error(n, key, "expected a scalar value");
      return std::nullopt;
    }
    std::string missing;
    std::string v = expand_env(n.Scalar(), &missing);
    if (!missing.empty()) {
      error(n, key, "environment variable ${" + missing + "} is not set");
      return std::nullopt;
    }
    return v;
  }

  template <typename T>
  std::optional<T> number(const YAML::Node& n, const std::string& key, double lo, double hi) {
    auto s = str(n, key);
    if (!s) return std::nullopt;
    char* end = nullptr;
    double v = std::strtod(s->c_str(), &end);
    if (s->empty() || *end != '\0' || !(v >= lo && v <= hi)) {
      error(n, key, fmt_range("expected a number", lo, hi) + ", got \"" + *s + "\"");
      return std::nullopt;
    }
    return T(v);
  }

  std::optional<int64_t> duration(const YAML::Node& n, const std::string& key) {
    auto s = str(n, key);
    if (!s) return std::nullopt;
    auto d = parse_duration(*s);
    if (!d || *d <= 0) {
      error(n, key, "expected a positive duration like 90s, 5m, 1h or 1d (at most 36525d), got \"" + *s + "\"");
      return std::nullopt;
    }
    return d;
  }

  // `auto` (-1), `off` (0) or a positive duration.
  std::optional<int64_t> auto_off_duration(const YAML::Node& n, const std::string& key, const char* example) {
    auto s = str(n, key);
    if (!s) return std::nullopt;
    if (*s == "auto") return -1;
    if (*s == "off" || *s == "0" || *s == "false") return 0;
    if (auto d = parse_duration(*s); d && *d > 0) return d;
    error(n, key, std::string("expected auto, off or a duration like ") + example + ", got \"" + *s + "\"");
    return std::nullopt;
  }

  std::vector<std::string> strings(const YAML::Node& n, const std::string& key) {
    std::vector<std::string> out;
    if (gw::yaml::is_scalar(n)) {
      if (auto s = str(n, key)) out.push_back(*s);
      return out;
    }
    if (!gw::yaml::is_seq(n)) {
      error(n, key, "expected a list");
      return out;
    }
    for (size_t i = 0; i < n.size(); ++i)
      if (auto s = str(n[i], key + "[" + std::to_string(i) + "]")) out.push_back(*s);
    return out;
  }

  // Reports keys of a map that the option table does not know.
  void check_keys(const YAML::Node& map, const std::string& prefix) {
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string k = it->first.Scalar();
      std::string path = prefix.empty() ? k : prefix + "." + k;
      if (!find_option(path)) {
        std::string known;
        for (auto& o : kOptions) {
          std::string p = o.path;
          auto dot = p.rfind('.');
          std::string parent = dot == std::string::npos ? "" : p.substr(0, dot);
          if (parent == prefix) known += (known.empty() ? "" : ", ") + p.substr(dot == std::string::npos ? 0 : dot + 1);
        }
        error(it->first, path, "unknown key \"" + k + "\"; known: " + known);
      }
    }
  }

 private:
  static std::string fmt_range(const char* what, double lo, double hi) {
    std::ostringstream o;
    o << what << " in [" << lo << ", " << hi << "]";
    return o.str();
  }
  std::string file_;
  std::vector<ConfigError>& errs_;
};

void parse(const YAML::Node& root, Reader& rd, Config& c) {
  if (!root.IsDefined() || gw::yaml::is_null(root)) return;
  if (!gw::yaml::is_map(root)) {
    rd.error(root, "", "the config must be a YAML mapping");
    return;
  }
  rd.check_keys(root, "");
  auto section = [&](const char* name) -> YAML::Node {
    const YAML::Node& n = root;
    YAML::Node s = n[name];
    if (!s.IsDefined()) return YAML::Node();
    if (!gw::yaml::is_null(s) && !gw::yaml::is_map(s)) {
      rd.error(s, name, "expected a mapping");
      return YAML::Node();
    }
    if (gw::yaml::is_map(s)) rd.check_keys(s, name);
    return s;
  };
  if (const YAML::Node& n = root["listen"]; n.IsDefined())
    if (auto v = rd.str(n, "listen")) c.listen = *v;

  if (YAML::Node w = section("web"); gw::yaml::is_map(w)) {
    if (const YAML::Node u = w["basic_auth_users"]; u.IsDefined()) {
      if (!gw::yaml::is_map(u)) rd.error(u, "web.basic_auth_users", "expected a mapping of user to password hash");
      else
        for (auto it = u.begin(); it != u.end(); ++it) {
          std::string user = it->first.Scalar(), key = "web.basic_auth_users." + user;
          if (auto h = rd.str(it->second, key)) {
            if (h->size() < 13 || (*h)[0] != '$') rd.error(it->second, key, "expected a crypt(3) hash such as $2b$... (bcrypt), not a plain password");
            else c.web_users[user] = *h;
          }
        }
    }
    if (const YAML::Node& n = w["max_connections"]; n.IsDefined())
      if (auto v = rd.number<uint32_t>(n, "web.max_connections", 1, 100000)) c.web_max_connections = *v;
    if (const YAML::Node t = w["tls"]; t.IsDefined()) {
      if (!gw::yaml::is_map(t)) rd.error(t, "web.tls", "expected {cert_file, key_file, client_ca_file}");
      else {
        rd.check_keys(t, "web.tls");
        auto file = [&](const char* k, std::string& out) {
          if (!t[k].IsDefined()) return;
          std::string key = std::string("web.tls.") + k;
          if (auto v = rd.str(t[k], key)) {
            if (!std::filesystem::exists(*v)) rd.error(t[k], key, "no such file: " + *v);
            else out = *v;
          }
        };
        file("cert_file", c.web_tls_cert);
        file("key_file", c.web_tls_key);
        file("client_ca_file", c.web_tls_client_ca);
        if (c.web_tls_cert.empty() != c.web_tls_key.empty()) rd.error(t, "web.tls", "cert_file and key_file go together");
      }
    }
  }
  if (const YAML::Node& n = root["shutdown_timeout"]; n.IsDefined())
    if (auto v = rd.duration(n, "shutdown_timeout")) c.shutdown_timeout_ms = *v;

  if (YAML::Node in = section("input"); gw::yaml::is_map(in)) {
    if (const YAML::Node& n = in["preset"]; n.IsDefined())
      if (auto v = rd.str(n, "input.preset")) {
        bool ok = false;
        for (auto& p : FieldSet::preset_names()) ok |= p == *v;
        if (ok) c.preset = *v;
        else rd.error(n, "input.preset", "unknown preset \"" + *v + "\"; known: flat, openai");
      }
    if (const YAML::Node& n = in["fields"]; n.IsDefined()) {
      if (!gw::yaml::is_map(n)) rd.error(n, "input.fields", "expected a mapping of field name to JSON pointer");
      else
        for (auto it = n.begin(); it != n.end(); ++it) {
          std::string k = it->first.Scalar(), key = "input.fields." + k;
          bool known = false;
          std::string names;
          for (size_t i = 0; i < kBuiltinFieldCount; ++i) {
            known |= k == FieldSet::builtin_name(i);
            names += std::string(i ? ", " : "") + FieldSet::builtin_name(i);
          }
          if (!known) { rd.error(it->first, key, "unknown field \"" + k + "\"; known: " + names); continue; }
          if (auto v = rd.str(it->second, key)) {
            if (!v->empty() && (*v)[0] != '/') rd.error(it->second, key, "a JSON pointer starts with '/'");
            else c.field_overrides[k] = *v;
          }
        }
    }
    if (const YAML::Node& n = in["dimensions"]; n.IsDefined()) {
      if (!gw::yaml::is_map(n)) rd.error(n, "input.dimensions", "expected a mapping of label name to JSON pointer");
      else
        for (auto it = n.begin(); it != n.end(); ++it) {
          std::string k = it->first.Scalar(), key = "input.dimensions." + k;
          static const std::set<std::string> reserved = {"model", "model_version", "endpoint", "variant", "window", "quantile", "metric", "le", "job", "instance"};
          bool valid = !k.empty() && !std::isdigit(static_cast<unsigned char>(k[0]));
          for (char ch : k) valid &= std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
          if (!valid || reserved.count(k)) { rd.error(it->first, key, "\"" + k + "\" is not a usable label name (reserved or not [a-zA-Z_][a-zA-Z0-9_]*)"); continue; }
          if (auto v = rd.str(it->second, key)) {
            if (v->empty() || (*v)[0] != '/') rd.error(it->second, key, "a JSON pointer starts with '/'");
            else c.dimensions.emplace_back(k, *v);
          }
        }
    }
    if (const YAML::Node& n = in["threads"]; n.IsDefined())
      if (auto v = rd.number<uint32_t>(n, "input.threads", 1, 2)) c.input_threads = *v;
    if (const YAML::Node& n = in["max_record_bytes"]; n.IsDefined())
      if (auto v = rd.number<uint64_t>(n, "input.max_record_bytes", 64, 1e9)) c.max_record_bytes = *v;
  }

  if (YAML::Node k = section("kafka"); gw::yaml::is_map(k)) {
    if (const YAML::Node& n = k["topics"]; n.IsDefined()) c.kafka_topics = rd.strings(n, "kafka.topics");
    if (const YAML::Node& n = k["rewind"]; n.IsDefined())
      if (auto v = rd.auto_off_duration(n, "kafka.rewind", "2h")) c.kafka_rewind_ms = *v;
    if (const YAML::Node& n = k["properties"]; n.IsDefined()) {
      if (!gw::yaml::is_map(n)) rd.error(n, "kafka.properties", "expected a mapping of librdkafka property to value");
      else
        for (auto it = n.begin(); it != n.end(); ++it)
          if (auto v = rd.str(it->second, "kafka.properties." + it->first.Scalar())) c.kafka_properties[it->first.Scalar()] = *v;
    }
  }

  if (YAML::Node w = section("windows"); gw::yaml::is_map(w)) {
    if (const YAML::Node& n = w["report"]; n.IsDefined()) {
      c.report_windows.clear();
      auto list = rd.strings(n, "windows.report");
      for (size_t i = 0; i < list.size(); ++i) {
        auto d = parse_duration(list[i]);
        if (!d || *d <= 0) rd.error(gw::yaml::is_seq(n) ? n[i] : n, "windows.report", "expected a duration, got \"" + list[i] + "\"");
        else c.report_windows.emplace_back(list[i], *d);
      }
    }
    if (const YAML::Node& n = w["tiers"]; n.IsDefined()) {
      if (!gw::yaml::is_seq(n) || n.size() == 0) rd.error(n, "windows.tiers", "expected a non-empty list of {resolution, slots}");
      else {
        c.tiers.clear();
        for (size_t i = 0; i < n.size(); ++i) {
          std::string key = "windows.tiers[" + std::to_string(i) + "]";
          const YAML::Node& t = n[i];
          if (!gw::yaml::is_map(t) || !t["resolution"].IsDefined() || !t["slots"].IsDefined()) {
            rd.error(t, key, "expected {resolution: DURATION, slots: COUNT}");
            continue;
          }
          auto r = rd.duration(t["resolution"], key + ".resolution");
          auto s = rd.number<uint32_t>(t["slots"], key + ".slots", 2, 100000);
          if (r && s) {
            if (!c.tiers.empty() && *r < c.tiers.back().resolution_ms)
              rd.error(t, key, "tiers must be listed from finest to coarsest resolution");
            c.tiers.push_back({*r, *s});
          }
        }
      }
    }
    if (const YAML::Node& n = w["allowed_lateness"]; n.IsDefined())
      if (auto v = rd.duration(n, "windows.allowed_lateness")) c.allowed_lateness_ms = *v;
    if (const YAML::Node& n = w["max_future"]; n.IsDefined())
      if (auto v = rd.duration(n, "windows.max_future")) c.max_future_ms = *v;
  }

  if (YAML::Node s = section("series"); gw::yaml::is_map(s)) {
    if (const YAML::Node& n = s["max_series"]; n.IsDefined())
      if (auto v = rd.number<uint32_t>(n, "series.max_series", 1, 10'000'000)) c.max_series = *v;
    if (const YAML::Node& n = s["max_values_per_label"]; n.IsDefined())
      if (auto v = rd.number<uint32_t>(n, "series.max_values_per_label", 1, 10'000'000)) c.max_values_per_label = *v;
    if (const YAML::Node& n = s["label_caps"]; n.IsDefined()) {
      if (!gw::yaml::is_map(n)) rd.error(n, "series.label_caps", "expected a mapping of label to count");
      else
        for (auto it = n.begin(); it != n.end(); ++it)
          if (auto v = rd.number<uint32_t>(it->second, "series.label_caps." + it->first.Scalar(), 1, 10'000'000))
            c.label_caps[it->first.Scalar()] = *v;
    }
    if (const YAML::Node& n = s["expire_after"]; n.IsDefined())
      if (auto v = rd.auto_off_duration(n, "series.expire_after", "36h")) c.series_expire_after_ms = *v;
  }

  if (YAML::Node e = section("extract"); gw::yaml::is_map(e)) {
    if (const YAML::Node& n = e["refusal_lexicon"]; n.IsDefined())
      if (auto v = rd.str(n, "extract.refusal_lexicon")) c.refusal_lexicon = *v;
    if (const YAML::Node& n = e["citation_patterns"]; n.IsDefined())
      if (auto v = rd.str(n, "extract.citation_patterns")) c.citation_patterns = *v;
    if (const YAML::Node& n = e["pattern_cache"]; n.IsDefined())
      if (auto v = rd.str(n, "extract.pattern_cache")) c.pattern_cache = *v;
    if (const YAML::Node& n = e["error_statuses"]; n.IsDefined()) c.error_statuses = rd.strings(n, "extract.error_statuses");
    if (const YAML::Node& n = e["prices"]; n.IsDefined()) {
      if (!gw::yaml::is_map(n)) rd.error(n, "extract.prices", "expected a mapping of model to {input_per_million, output_per_million}");
      else
        for (auto it = n.begin(); it != n.end(); ++it) {
          std::string key = "extract.prices." + it->first.Scalar();
          const YAML::Node p = it->second;  // a copy: `it->` returns a temporary proxy
          if (!gw::yaml::is_map(p)) { rd.error(p, key, "expected {input_per_million, output_per_million}"); continue; }
          Price price;
          for (auto pit = p.begin(); pit != p.end(); ++pit) {
            std::string pk = pit->first.Scalar();
            auto v = rd.number<double>(pit->second, key + "." + pk, 0, 1e9);
            if (pk == "input_per_million") { if (v) price.input_per_million = *v; }
            else if (pk == "output_per_million") { if (v) price.output_per_million = *v; }
            else rd.error(pit->first, key + "." + pk, "unknown key; known: input_per_million, output_per_million");
          }
          c.prices[it->first.Scalar()] = price;
        }
    }
  }

  if (const YAML::Node& n = root["rules"]; n.IsDefined()) c.rule_paths = rd.strings(n, "rules");

  if (YAML::Node a = section("alerting"); gw::yaml::is_map(a)) {
    auto& al = c.alerting;
    if (const YAML::Node& n = a["alertmanagers"]; n.IsDefined()) al.alertmanagers = rd.strings(n, "alerting.alertmanagers");
    if (const YAML::Node& n = a["webhooks"]; n.IsDefined()) al.webhooks = rd.strings(n, "alerting.webhooks");
    if (const YAML::Node& n = a["resend_interval"]; n.IsDefined())
      if (auto v = rd.duration(n, "alerting.resend_interval")) al.resend_interval_ms = *v;
    if (const YAML::Node& n = a["timeout"]; n.IsDefined())
      if (auto v = rd.duration(n, "alerting.timeout")) al.timeout_ms = *v;
    if (const YAML::Node& n = a["max_backoff"]; n.IsDefined())
      if (auto v = rd.duration(n, "alerting.max_backoff")) al.max_backoff_ms = *v;
    if (const YAML::Node& n = a["queue_capacity"]; n.IsDefined())
      if (auto v = rd.number<uint32_t>(n, "alerting.queue_capacity", 1, 1e7)) al.queue_capacity = *v;
    if (const YAML::Node& n = a["external_url"]; n.IsDefined())
      if (auto v = rd.str(n, "alerting.external_url")) al.external_url = *v;
    if (const YAML::Node& n = a["bearer_token"]; n.IsDefined())
      if (auto v = rd.str(n, "alerting.bearer_token")) al.bearer_token = *v;
    if (const YAML::Node n = a["basic_auth"]; n.IsDefined()) {
      if (!gw::yaml::is_map(n)) rd.error(n, "alerting.basic_auth", "expected {username, password}");
      else {
        rd.check_keys(n, "alerting.basic_auth");
        if (n["username"].IsDefined())
          if (auto v = rd.str(n["username"], "alerting.basic_auth.username")) al.basic_auth_user = *v;
        if (n["password"].IsDefined())
          if (auto v = rd.str(n["password"], "alerting.basic_auth.password")) al.basic_auth_password = *v;
      }
    }
    if (const YAML::Node n = a["tls"]; n.IsDefined()) {
      if (!gw::yaml::is_map(n)) rd.error(n, "alerting.tls", "expected {ca_file, cert_file, key_file, insecure_skip_verify}");
      else {
        rd.check_keys(n, "alerting.tls");
        if (n["ca_file"].IsDefined())
          if (auto v = rd.str(n["ca_file"], "alerting.tls.ca_file")) al.ca_file = *v;
        if (n["cert_file"].IsDefined())
          if (auto v = rd.str(n["cert_file"], "alerting.tls.cert_file")) al.cert_file = *v;
        if (n["key_file"].IsDefined())
          if (auto v = rd.str(n["key_file"], "alerting.tls.key_file")) al.key_file = *v;
        if (n["insecure_skip_verify"].IsDefined())
          if (auto v = rd.str(n["insecure_skip_verify"], "alerting.tls.insecure_skip_verify")) al.insecure_skip_verify = *v == "true";
      }
    }
    for (auto& u : al.alertmanagers)
      if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) rd.error(a["alertmanagers"], "alerting.alertmanagers", "\"" + u + "\" is not an http(s) URL");
  }

  if (YAML::Node l = section("log"); gw::yaml::is_map(l)) {
    if (const YAML::Node& n = l["level"]; n.IsDefined())
      if (auto v = rd.str(n, "log.level")) {
        if (*v != "debug" && *v != "info" && *v != "warn" && *v != "error") rd.error(n, "log.level", "expected one of debug, info, warn, error");
        else c.log_level = *v;
      }
    if (const YAML::Node& n = l["samples_per_second"]; n.IsDefined())
      if (auto v = rd.number<double>(n, "log.samples_per_second", 0, 1e6)) c.log_samples_per_second = *v;
  }

  // Cross-field checks.
  int64_t longest = 0;
  for (auto& [name, ms] : c.report_windows) longest = std::max(longest, ms);
  if (!c.tiers.empty() && longest > c.tiers.back().retention_ms())
    rd.error(root["windows"], "windows.report", "window longer than the retained history (" + format_duration(c.tiers.back().retention_ms()) + ")");
  if (c.series_expire_after_ms > 0 && c.series_expire_after_ms < longest) {
    const YAML::Node& s = root["series"];
    rd.error(s["expire_after"], "series.expire_after",
             "shorter than the longest report window (" + format_duration(longest) + "): series would go while their windows still hold data");
  }
}

}  // namespace

std::string ConfigError::str() const {
  std::string s = file.empty() ? "<config>" : file;
  if (line) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": ";
  if (!key.empty()) s += key + ": ";
  return s + message;
}

ConfigResult config_from_yaml(const std::string& text, const std::string& name) {
  ConfigResult r;
  r.config.source_file = name;
  try {
    YAML::Node root = YAML::Load(text);
    Reader rd(name, r.errors);
    parse(root, rd, r.config);
  } catch (const YAML::Exception& e) {
    r.errors.push_back({name, e.mark.is_null() ? 0 : e.mark.line + 1, e.mark.is_null() ? 0 : e.mark.column + 1, "", "YAML syntax error: " + e.msg});
  }
  if (r.config.kafka_properties.find("group.id") == r.config.kafka_properties.end())
    r.config.kafka_properties["group.id"] = "guardwatch";
  return r;
}

ConfigResult load_config(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    ConfigResult r;
    r.errors.push_back({path, 0, 0, "", "cannot read the file"});
    return r;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  return config_from_yaml(ss.str(), path);
}

std::string expand_env(const std::string& in, std::string* missing) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '$' && i + 1 < in.size() && in[i + 1] == '{') {
      auto end = in.find('}', i + 2);
      if (end != std::string::npos) {
        std::string body = in.substr(i + 2, end - i - 2), def;
        bool has_def = false;
        if (auto p = body.find(":-"); p != std::string::npos) {
          def = body.substr(p + 2);
          body = body.substr(0, p);
          has_def = true;
        }
        const char* v = std::getenv(body.c_str());
        if (v) out += v;
        else if (has_def) out += def;
        else if (missing && missing->empty()) *missing = body;
        i = end;
        continue;
      }
    }
    out += in[i];
  }
  return out;
}

std::optional<int64_t> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i || j - i > 12) return std::nullopt;  // more than 12 digits is no duration (and would overflow)
    int64_t n = std::stoll(std::string(s.substr(i, j - i)));
    size_t k = j;
    while (k < s.size() && std::isalpha(static_cast<unsigned char>(s[k]))) ++k;
    std::string_view unit = s.substr(j, k - j);
    int64_t mult = 0;
    if (unit == "ms") mult = 1;
    else if (unit == "s") mult = 1000;
    else if (unit == "m") mult = 60'000;
    else if (unit == "h") mult = 3'600'000;
    else if (unit == "d") mult = 86'400'000;
    else if (unit == "w") mult = 7 * 86'400'000LL;
    else return std::nullopt;
    int64_t part = 0;
    if (__builtin_mul_overflow(n, mult, &part) || __builtin_add_overflow(total, part, &total) || total > kMaxDurationMs)
      return std::nullopt;
    i = k;
  }
  return total;
}

std::string format_duration(int64_t ms) {
  if (ms == 0) return "0s";
  std::string s;
  const std::pair<int64_t, const char*> units[] = {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  for (auto [u, n] : units)
    if (ms >= u) {
      s += std::to_string(ms / u) + n;
      ms %= u;
    }
  return s;
}

std::string config_reference_markdown() {
  std::string s =
      "# Configuration reference\n\n"
      "Generated from the option table in `daemon/config/config.cpp` by `guardwatch config-reference`;\n"
      "a test keeps this file in step with the code. Every key is optional: with no `--config` at all,\n"
      "guardwatch runs on these defaults. Strings may use `${ENV_VAR}` or `${ENV_VAR:-default}`.\n"
      "Durations are written like `250ms`, `90s`, `5m`, `1h30m`, `1d` (units ms, s, m, h, d, w; at most\n"
      "36525d, 100 years).\n\n"
      "| key | type | default | description |\n|---|---|---|---|\n";
  // A `|` in a cell ends the cell in GitHub's tables (`duration|auto|off`): escaped.
  auto cell = [](std::string_view v) {
    std::string out;
    for (char ch : v) {
      if (ch == '|') out += '\\';
      out += ch;
    }
    return out;
  };
  for (auto& o : kOptions) {
    std::string def = o.def;
    s += "| `" + std::string(o.path) + "` | " + cell(o.type) + " | " + (def.empty() ? "" : "`" + cell(def) + "`") + " | " + cell(o.help) + " |\n";
  }
  s += "\n## Example\n\n```yaml\n"
       "listen: 0.0.0.0:9464\n"
       "input:\n  preset: openai\n  fields: {variant: /metadata/variant}\n  dimensions: {region: /metadata/region}\n"
       "kafka:\n  topics: [llm-inference-logs]\n  properties:\n    bootstrap.servers: kafka-1:9092,kafka-2:9092\n"
       "    group.id: guardwatch\n    security.protocol: SASL_SSL\n    sasl.mechanisms: SCRAM-SHA-512\n"
       "    sasl.username: guardwatch\n    sasl.password: ${KAFKA_PASSWORD}\n"
       "windows:\n  report: [1m, 5m, 15m, 1h]\n  allowed_lateness: 2m\n"
       "series:\n  max_series: 5000\n  label_caps: {model_version: 20}\n"
       "extract:\n  prices:\n    gpt-x: {input_per_million: 2.5, output_per_million: 10}\n    \"*\": {input_per_million: 1, output_per_million: 4}\n"
       "rules: [/etc/guardwatch/rules]\n```\n";
  return s;
}

std::string data_dir() {
  if (const char* d = std::getenv("GUARDWATCH_DATA_DIR"); d && *d) return d;
  // An installed binary finds its data next to it (PREFIX/bin -> PREFIX/share/guardwatch), so an
  // install under another prefix or DESTDIR still works.
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto share = exe.parent_path().parent_path() / "share" / "guardwatch";
    if (std::filesystem::exists(share / "rules" / "lexicon", ec)) return share.string();
  }
#ifdef GUARDWATCH_SOURCE_DIR
  if (std::filesystem::exists(std::string(GUARDWATCH_SOURCE_DIR) + "/rules/lexicon")) return GUARDWATCH_SOURCE_DIR;
#endif
#ifdef GUARDWATCH_INSTALL_DATA_DIR
  return GUARDWATCH_INSTALL_DATA_DIR;
#else
  return ".";
#endif
}

}  // namespace gw
