// guardwatch: command line entry point. Subcommands share one engine; see `guardwatch --help`.
// Exit codes: 0 success; 1 invalid config/rules or a runtime failure; 2 usage error.
#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <thread>

#include <yaml-cpp/yaml.h>

#include "guardwatch/config.hpp"
#include "guardwatch/dashboard.hpp"
#include "guardwatch/decode.hpp"
#include "guardwatch/demo.hpp"
#include "guardwatch/engine.hpp"
#include "guardwatch/export.hpp"
#include "guardwatch/generate.hpp"
#include "guardwatch/producer.hpp"
#include "guardwatch/runtime.hpp"
#include "guardwatch/http.hpp"
#include "guardwatch/log.hpp"
#include "guardwatch/notify.hpp"
#include "guardwatch/source.hpp"
#include "guardwatch/systemd.hpp"

namespace {

using namespace gw;

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

struct Common {
  uint64_t stop_after = 0;  // run: exit once this many records were read (benchmarks)
  std::vector<std::string> alertmanagers;
  double shutdown_timeout_s = -1;  // -1: the config's shutdown_timeout
  std::string config;
  std::string input;
  std::string listen;
  std::vector<std::string> rules;
};

// Loads the config (or the defaults) and applies flags; prints errors and returns false on any.
bool load(const Common& c, Config& out) {
  ConfigResult r = c.config.empty() ? config_from_yaml("", "") : load_config(c.config);
  if (!r.ok()) {
    for (auto& e : r.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    std::fprintf(stderr, "guardwatch: %zu error(s) in the configuration\n", r.errors.size());
    return false;
  }
  out = std::move(r.config);
  static const std::map<std::string, log::Level> levels = {
      {"debug", log::Level::kDebug}, {"info", log::Level::kInfo}, {"warn", log::Level::kWarn}, {"error", log::Level::kError}};
  log::set_level(levels.at(out.log_level));
  if (!c.listen.empty()) out.listen = c.listen;
  for (auto& a : c.alertmanagers) out.alerting.alertmanagers.push_back(a);
  for (auto& p : c.rules) out.rule_paths.push_back(p);
  return true;
}

int cmd_check(const Common& c) {
  ConfigResult r = c.config.empty() ? config_from_yaml("", "") : load_config(c.config);
  std::vector<ConfigError> errs = r.errors;
  std::printf("%s config %s\n", r.ok() ? "ok  " : "FAIL", c.config.empty() ? "(defaults)" : c.config.c_str());
  if (r.ok()) {
    std::vector<ConfigError> lex;
    auto m = build_matcher(r.config, lex);
    std::printf("%s lexicons (%zu patterns compiled into one matcher)\n", lex.empty() ? "ok  " : "FAIL", m ? m->size() : size_t(0));
    errs.insert(errs.end(), lex.begin(), lex.end());
    if (!c.rules.empty() || !r.config.rule_paths.empty()) {
      Config cfg = r.config;
      for (auto& p : c.rules) cfg.rule_paths.push_back(p);
      try {
        Engine engine(cfg, nullptr, custom_metrics_for(cfg));
        RuleLoad rl = load_rules(cfg.rule_paths, engine.metrics(), engine.store().label_names(), engine.store().retention_ms());
        std::printf("%s rules (%zu files, %zu groups, %zu rules, %zu custom metrics)\n", rl.ok() ? "ok  " : "FAIL", rl.rules.files.size(),
                    rl.rules.groups.size(), rl.rules.rule_count(), rl.rules.metrics.size());
        errs.insert(errs.end(), rl.errors.begin(), rl.errors.end());
        if (std::string w = rl.ok() ? expiry_warning(cfg, rl.rules) : ""; !w.empty()) std::printf("warn %s\n", w.c_str());
      } catch (const std::exception& e) {
        std::printf("FAIL rules\n");
        errs.push_back({"", 0, 0, "rules", e.what()});
      }
    }
    if (!r.config.kafka_topics.empty()) {
      try {
        KafkaSource probe(r.config);  // validates every librdkafka property without connecting
        std::printf("ok   kafka properties (%s)\n", probe.describe().c_str());
      } catch (const std::exception& e) {
        std::printf("FAIL kafka properties\n");
        errs.push_back({r.config.source_file, 0, 0, "kafka", e.what()});
      }
    }
  }
  for (auto& e : errs) std::fprintf(stderr, "%s\n", e.str().c_str());
  if (!errs.empty()) std::fprintf(stderr, "guardwatch check: %zu error(s)\n", errs.size());
  return errs.empty() ? 0 : 1;
}

struct ReplayOptions {
  std::string report = "json";     // final windows: json, prometheus, none
  std::string timeline = "";       // alert timeline: jsonl, table ("" = jsonl when rules are given)
  std::string incidents;
  std::string grace = "15m";
};

void print_event_table(const AlertEvent& e) {
  const Alert& a = e.alert;
  std::string labels;
  for (auto& [k, v] : a.labels)
    if (k != "alertname") labels += (labels.empty() ? "" : ",") + k + "=" + v;
  std::printf("%-24s %-9s %-28s %-44s eff=%+.4g rel=%+.1f%% p=%.2g n=%llu/%llu cur=%.4g base=%.4g\n", format_rfc3339(e.ts_ms).c_str(),
              e.kind.c_str(), a.rule.c_str(), labels.c_str(), a.evidence.effect, 100 * a.evidence.relative, a.evidence.p_value,
              (unsigned long long)a.evidence.current.n, (unsigned long long)a.evidence.baseline.n, a.evidence.current.value,
              a.evidence.baseline.value);
}

int cmd_replay(const Common& c, const ReplayOptions& ro) {
  Config cfg;
  if (!load(c, cfg)) return 1;
  Engine engine(cfg, nullptr, custom_metrics_for(cfg));
  RuleRuntime rules(engine);
  std::vector<AlertEvent> timeline;
  std::string timeline_fmt = ro.timeline;
  if (!cfg.rule_paths.empty()) {
    auto errs = rules.load();
    if (!errs.empty()) {
      for (auto& e : errs) std::fprintf(stderr, "%s\n", e.str().c_str());
      return 1;
    }
    if (timeline_fmt.empty()) timeline_fmt = "jsonl";
    rules.on_event([&](const AlertEvent& e) {
      timeline.push_back(e);
      if (timeline_fmt == "jsonl") std::cout << RuleRuntime::event_json(e, engine.metrics()).dump() << "\n";
      else if (timeline_fmt == "table") print_event_table(e);
    });
    engine.on_applied([&] { rules.advance(engine.watermark_ms()); });
  }
  std::vector<Incident> incidents;
  if (!ro.incidents.empty()) {
    auto errs = load_incidents(ro.incidents, incidents);
    if (!errs.empty()) {
      for (auto& e : errs) std::fprintf(stderr, "%s\n", e.str().c_str());
      return 1;
    }
  }
  std::atomic<bool> stop{false};
  std::unique_ptr<Source> src;
  try {
    src = make_jsonl_source(c.input.empty() ? "-" : c.input);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "guardwatch replay: %s\n", e.what());
    return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  if (!src->run(engine, stop)) return 1;
  if (rules.loaded()) rules.advance(engine.max_event_ms());  // the input is complete: evaluate up to its end
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log::info("replayed {} records from {} in {:.3f}s ({:.0f} records/s); applied {}", engine.records_seen(), src->describe(), secs,
            double(engine.records_seen()) / std::max(secs, 1e-9), engine.outcome_count(Outcome::kApplied));
  if (!incidents.empty()) {
    std::vector<std::string> names;
    const nlohmann::json rj = rules.rules_json();
    for (auto& g : rj["groups"])
      for (auto& r : g["rules"]) names.push_back(r["alert"]);
    auto score = score_incidents(timeline, incidents, names, *parse_duration(ro.grace));
    if (timeline_fmt == "table") {
      std::printf("\n%-28s %8s %9s %9s %10s %10s %14s\n", "rule", "firings", "incidents", "detected", "precision", "recall", "delay p50 (s)");
      for (auto& r : score)
        std::printf("%-28s %8d %9d %9d %10s %10s %14s\n", std::string(r["alert"]).c_str(), int(r["firing_events"]), int(r["incidents"]),
                    int(r["detected"]), r["precision"].is_null() ? "-" : fmt::format("{:.3f}", double(r["precision"])).c_str(),
                    r["recall"].is_null() ? "-" : fmt::format("{:.3f}", double(r["recall"])).c_str(),
                    r["detection_delay_seconds"].is_null() ? "-" : fmt::format("{:.0f}", double(r["detection_delay_seconds"]["p50"])).c_str());
    } else {
      std::cout << nlohmann::json({{"incident_scores", score}}).dump() << "\n";
    }
  }
  if (ro.report == "json" && !rules.loaded()) std::cout << window_report(engine, engine.max_event_ms() + 1).dump(2) << "\n";
  else if (ro.report == "prometheus") {
    EngineCollector coll(engine, [&] { return engine.max_event_ms() + 1; });
    std::cout << serialize_metrics({&coll, &rules.collector()});
  }
  return 0;
}

int cmd_extract(const Common& c) {
  Config cfg;
  if (!load(c, cfg)) return 1;
  Engine engine(cfg, nullptr, custom_metrics_for(cfg));  // --rules: their custom metrics are extracted too
  FILE* f = c.input.empty() || c.input == "-" ? stdin : std::fopen(c.input.c_str(), "rb");
  if (!f) {
    std::fprintf(stderr, "guardwatch extract: cannot open input %s: %s\n", c.input.c_str(), std::strerror(errno));
    return 1;
  }
  char* line = nullptr;
  size_t cap = 0;
  ssize_t n;
  int64_t no = 0;
  Observation obs;
  std::string detail;
  while ((n = getline(&line, &cap, f)) >= 0) {
    SourcePos pos;
    pos.line = ++no;
    Record* rec = nullptr;
    std::string_view bytes(line, size_t(n));
    if (no == 1 && bytes.starts_with("\xEF\xBB\xBF")) bytes.remove_prefix(3);  // a byte order mark, as the JSONL source
    Outcome o = engine.ingest(bytes, pos, &obs, &rec, &detail);
    std::cout << explain_record(engine, *rec, obs, o, detail).dump() << "\n";
  }
  const int read_errno = std::ferror(f) ? errno : 0;  // a directory opens, then fails to read
  std::free(line);
  if (f != stdin) std::fclose(f);
  if (read_errno) {
    std::fprintf(stderr, "guardwatch extract: cannot read input %s: %s\n", c.input.empty() ? "-" : c.input.c_str(), std::strerror(read_errno));
    return 1;
  }
  return 0;
}

int cmd_run(const Common& c) {
  Config cfg;
  if (!load(c, cfg)) return 1;
  bool use_kafka = c.input.empty() && !cfg.kafka_topics.empty();
  if (c.input.empty() && !use_kafka) {
    std::fprintf(stderr, "guardwatch run: nothing to read: give --input FILE|- or configure kafka.topics\n");
    return 2;
  }
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Source> source;
  KafkaSource* kafka = nullptr;
  try {
    engine = std::make_unique<Engine>(cfg, use_kafka ? std::function<int64_t()>(wall_ms) : nullptr, custom_metrics_for(cfg));
    if (use_kafka) {
      auto k = std::make_unique<KafkaSource>(cfg);
      kafka = k.get();
      source = std::move(k);
    } else {
      source = make_jsonl_source(c.input);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "guardwatch run: %s\n", e.what());
    return 1;
  }
  Engine& eng = *engine;
  RuleRuntime rules(eng);
  if (!cfg.rule_paths.empty()) {
    auto errs = rules.load();
    if (!errs.empty()) {
      for (auto& e : errs) std::fprintf(stderr, "%s\n", e.str().c_str());
      std::fprintf(stderr, "guardwatch run: %zu error(s) in the rules\n", errs.size());
      return 1;
    }
    rules.on_event([&](const AlertEvent& e) {
      std::string labels;
      for (auto& [k, v] : e.alert.labels) labels += (labels.empty() ? "" : ",") + k + "=" + v;
      log::info("alert {} {} {{{}}} effect={:.4g} p={:.3g} n={}/{}", e.kind, e.alert.rule, labels, e.alert.evidence.effect,
                e.alert.evidence.p_value, e.alert.evidence.current.n, e.alert.evidence.baseline.n);
    });
    // A file is replayed in event time: its records drive the evaluations, as in `replay`.
    if (!use_kafka) eng.on_applied([&] { rules.advance(eng.watermark_ms()); });
  }
  boost::asio::io_context io;
  std::atomic<bool> stop{false}, input_done{false};
  std::unique_ptr<Notifier> notifier;
  auto end_ms = [&]() -> int64_t { return use_kafka ? wall_ms() : eng.max_event_ms() + 1; };
  EngineCollector collector(eng, end_ms, kafka ? std::function<KafkaStats()>([kafka] { return kafka->stats(); }) : nullptr);
  std::unique_ptr<HttpServer> server;
  try {
    server = std::make_unique<HttpServer>(io, cfg.listen);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "guardwatch run: %s\n", e.what());
    return 1;
  }
  if (!cfg.web_tls_cert.empty()) {
    try {
      server->enable_tls(cfg.web_tls_cert, cfg.web_tls_key, cfg.web_tls_client_ca);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "guardwatch run: %s\n", e.what());
      return 1;
    }
  }
  server->require_auth(cfg.web_users, {"/healthz", "/readyz"});
  server->max_connections(cfg.web_max_connections);
  server->route("/metrics", [&](const std::string&) {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                        serialize_metrics({&collector, &rules.collector(), &notifier->collector()})};
  });
  server->route("/healthz", [](const std::string&) { return HttpResponse{200, "application/json", "{\"status\":\"ok\"}\n"}; });
  server->route("/readyz", [&](const std::string&) {
    std::string why;
    if (use_kafka) {
      KafkaStats ks = kafka->stats();
      if (!ks.broker_up) why = "kafka broker unreachable";
      else if (!ks.assigned) why = "waiting for a partition assignment";
      else if (ks.warming) why = "warming up: " + std::to_string(ks.warmup_remaining) + " records left to re-read";
    } else if (!input_done) {
      why = "reading the input";
    }
    nlohmann::json j = why.empty() ? nlohmann::json{{"status", "ready"}} : nlohmann::json{{"status", "not ready"}, {"reason", why}};
    return HttpResponse{why.empty() ? 200 : 503, "application/json", j.dump() + "\n"};
  });
  server->route("/api/v1/rules", [&](const std::string&) { return HttpResponse{200, "application/json", rules.rules_json().dump(2) + "\n"}; });
  server->route("/api/v1/alerts", [&](const std::string&) { return HttpResponse{200, "application/json", rules.alerts_json().dump(2) + "\n"}; });
  server->route("/api/v1/report", [&](const std::string&) {
    return HttpResponse{200, "application/json", window_report(eng, end_ms()).dump(2) + "\n"};
  });
  if (cfg.alerting.external_url.empty()) cfg.alerting.external_url = (server->tls() ? "https://" : "http://") + server->address();
  notifier = std::make_unique<Notifier>(cfg.alerting, wall_ms, rules.max_interval_ms());
  if (notifier->enabled()) {
    rules.on_event([&](const AlertEvent& e) { notifier->on_event(e); });
    log::info("sending alerts to {} Alertmanager(s) and {} webhook(s)", cfg.alerting.alertmanagers.size(), cfg.alerting.webhooks.size());
  }
  server->start();
  log::info("guardwatch {} listening on {}://{} reading {}", build_version(), server->tls() ? "https" : "http", server->address(),
            source->describe());
  // Warm-up span on assignment: what the rules look back over, at least the longest report window.
  auto set_rewind = [&] {
    if (!kafka) return;
    int64_t rw = cfg.kafka_rewind_ms;
    if (rw < 0) {
      rw = rules.lookback_ms();
      for (auto& w : cfg.report_windows) rw = std::max(rw, w.second);
    }
    kafka->set_rewind_ms(std::min(rw, eng.store().retention_ms()));
  };
  set_rewind();
  // Live evaluation on the wall clock; rule files are reloaded on SIGHUP and when they change.
  auto reload = [&](const char* why) {
    if (cfg.rule_paths.empty()) return;
    auto errs = rules.load();
    if (errs.empty()) {
      set_rewind();
      log::info("rules reloaded ({})", why);
    } else {
      for (auto& e : errs) log::error("rule reload failed, keeping the previous rules: {}", e.str());
    }
  };
  auto stamp = [&]() {
    std::string s;
    std::vector<std::string> paths = cfg.rule_paths;
    for (auto& f : rules.watched_files()) paths.push_back(f);
    for (auto& p : paths) {
      std::error_code ec;
      if (std::filesystem::is_directory(p, ec))
        for (auto& e : std::filesystem::directory_iterator(p, ec)) s += e.path().string() + ";";
      auto t = std::filesystem::last_write_time(p, ec);
      s += p + "@" + (ec ? "-" : std::to_string(t.time_since_epoch().count())) + ";";
    }
    return s;
  };
  std::string last_stamp = stamp();
  boost::asio::steady_timer timer(io);
  int ticks = 0;
  std::function<void()> arm = [&] {
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      // Rules hold while a warm-up re-reads partitions: their windows are not whole yet.
      if (use_kafka && rules.loaded() && !kafka->stats().warming) rules.tick(wall_ms());
      eng.expire_idle_series();  // live mode: also when no record comes (at most once a minute)
      notifier->tick();
      if (++ticks % 2 == 0) {
        std::string now = stamp();
        if (now != last_stamp) {
          last_stamp = now;
          reload("a rule file changed");
        }
      }
      arm();
    });
  };
  arm();
  // systemd: READY=1 once the HTTP endpoints listen and the consumer loop runs (a file input is
  // being read); WATCHDOG=1 from this event loop, and only while the consumer loop is alive.
  bool ready_sent = false;
  auto service_status = [&]() -> std::string {
    std::string st = fmt::format("{} records applied", eng.outcome_count(Outcome::kApplied));
    if (kafka) {
      KafkaStats ks = kafka->stats();
      if (!ks.broker_up) st += "; kafka broker unreachable";
      if (ks.warming) st += fmt::format("; warming up, {} records to re-read", ks.warmup_remaining);
    }
    return st;
  };
  boost::asio::steady_timer sd_timer(io);
  const int64_t wd_ms = systemd::watchdog_interval_ms();
  std::function<void()> sd_arm = [&] {
    sd_timer.expires_after(std::chrono::milliseconds(wd_ms ? std::clamp<int64_t>(wd_ms / 3, 50, 1000) : 200));
    sd_timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec || stop) return;
      int64_t age = kafka ? kafka->loop_age_ms() : 0;
      bool alive = age >= 0 && (wd_ms == 0 || age < wd_ms / 2 + 1000);
      if (!ready_sent && age >= 0) {
        systemd::ready(service_status());
        ready_sent = true;
        log::info("ready");
      } else if (ready_sent && wd_ms) {
        if (alive) systemd::watchdog();
        else log::sampled("watchdog", 0.2, log::Level::kError, fmt::format("consumer loop stuck for {} ms: withholding the watchdog ping", age));
      }
      static int n = 0;
      if (ready_sent && ++n % 10 == 0) systemd::status(service_status());
      sd_arm();
    });
  };
  sd_arm();
  // SIGHUP re-reads the config file too. What can change in a running process does (rule paths,
  // kafka.rewind, log.level, shutdown_timeout); other changed sections are named in a warning
  // and wait for a restart. A config with errors changes nothing. State is never dropped.
  auto config_sections = [](const std::string& path) {
    std::map<std::string, std::string> out;
    try {
      YAML::Node root = YAML::LoadFile(path);
      if (root.IsMap())
        for (auto it = root.begin(); it != root.end(); ++it) {
          std::string k = it->first.Scalar();
          if (k == "kafka" && it->second.IsMap()) {  // kafka.rewind applies live
            YAML::Node copy = YAML::Clone(it->second);
            copy.remove("rewind");
            out[k] = YAML::Dump(copy);
          } else {
            out[k] = YAML::Dump(it->second);
          }
        }
    } catch (const YAML::Exception&) {
    }
    return out;
  };
  auto running_sections = c.config.empty() ? std::map<std::string, std::string>{} : config_sections(c.config);
  int64_t deadline_ms = c.shutdown_timeout_s >= 0 ? int64_t(c.shutdown_timeout_s * 1000) : cfg.shutdown_timeout_ms;
  auto reload_config = [&] {
    if (c.config.empty()) return;
    Config next;
    if (!load(c, next)) {
      log::error("config reload failed ({}): keeping the running configuration", c.config);
      return;
    }
    auto now = config_sections(c.config);
    std::string restart;
    static const std::set<std::string> live = {"rules", "log", "shutdown_timeout"};
    for (auto& k : std::set<std::string>{"listen", "web", "input", "kafka", "windows", "series", "extract", "alerting"})
      if (!live.count(k) && now[k] != running_sections[k]) restart += (restart.empty() ? "" : ", ") + k;
    if (!restart.empty()) log::warn("config changed in {}: takes effect after a restart", restart);
    cfg.rule_paths = next.rule_paths;
    cfg.kafka_rewind_ms = next.kafka_rewind_ms;
    cfg.log_level = next.log_level;
    if (c.shutdown_timeout_s < 0) deadline_ms = next.shutdown_timeout_ms;
    log::info("config reloaded ({})", c.config);
  };
  boost::asio::signal_set hup(io, SIGHUP);
  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      systemd::reloading();
      reload_config();
      reload("SIGHUP");
      set_rewind();
      systemd::ready("reloaded");
      wait_hup();
    });
  };
  wait_hup();
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  std::chrono::steady_clock::time_point shutdown_started{};
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("received signal {}, shutting down (deadline {})", sig, format_duration(deadline_ms));
    systemd::stopping();
    shutdown_started = std::chrono::steady_clock::now();
    // The whole shutdown (drain, commit, notifications) has one deadline: a broker or an
    // Alertmanager that does not answer must not keep the process (and a rollout) waiting.
    std::thread([deadline_ms] {
      std::this_thread::sleep_for(std::chrono::milliseconds(deadline_ms));
      log::error("shutdown did not finish within {}: exiting now", format_duration(deadline_ms));
      std::_Exit(1);
    }).detach();
    stop = true;
    server->stop();
    timer.cancel();
    sd_timer.cancel();
    io.stop();
  });
  int rc = 0;
  std::thread worker([&] {
    std::thread stopper;
    if (c.stop_after)
      stopper = std::thread([&] {
        while (!stop && eng.records_seen() < c.stop_after) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (!stop) {
          log::info("read {} records (--stop-after): stopping", eng.records_seen());
          systemd::stopping();
          stop = true;
          source->wake();
          boost::asio::post(io, [&] {
            server->stop();
            timer.cancel();
            io.stop();
          });
        }
      });
    try {
      if (!source->run(eng, stop)) rc = 1;
    } catch (const std::exception& e) {
      // The input failed: the process stops with an error (exit 1), as a failed start does.
      // The count tells what the partitions' next owner skips (Kafka commits what was applied).
      log::error("input {}: {}: stopping ({} records applied)", source->describe(), e.what(), eng.outcome_count(Outcome::kApplied));
      rc = 1;
      stop = true;
      boost::asio::post(io, [&] {
        server->stop();
        timer.cancel();
        sd_timer.cancel();
        io.stop();
      });
    }
    if (stopper.joinable()) stopper.join();
    if (!use_kafka && rules.loaded()) rules.advance(eng.max_event_ms());
    input_done = true;
    if (!use_kafka && !stop)
      log::info("input {} done: {} records, {} applied; serving results until SIGTERM", source->describe(), eng.records_seen(),
                eng.outcome_count(Outcome::kApplied));
  });
  std::thread http_thread([&] { io.run(); });
  http_thread.join();
  stop = true;
  worker.join();
  // Deliver what is queued (resolved alerts above all) before exiting, within the deadline.
  if (notifier->enabled()) {
    int64_t spent = shutdown_started == std::chrono::steady_clock::time_point{}
                        ? 0
                        : std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - shutdown_started).count();
    // Leave part of the deadline for the exit itself: aborting a POST in flight takes up to a
    // second (libcurl checks for the abort about once per second while a peer is silent).
    int64_t margin = std::min<int64_t>(1250, deadline_ms / 2);
    size_t left = notifier->drain(std::max<int64_t>(0, deadline_ms - spent - margin));
    if (left) log::warn("exiting with {} undelivered alert notification(s)", left);
  }
  if (source->needs_quick_exit()) {
    log::info("exiting without tearing down the kafka consumer (no broker reachable)");
    std::fflush(nullptr);
    std::_Exit(rc);
  }
  return rc;
}

struct GenOptions {
  std::string scenario, output = "-", brokers, topic;
  int partitions = 3;
  uint64_t count = 0;
  int64_t seed = -1;
  std::string duration, start;
};

int cmd_generate(const GenOptions& g) {
  Scenario sc = default_scenario();
  if (!g.scenario.empty()) {
    auto errs = load_scenario(g.scenario, sc);
    if (!errs.empty()) {
      for (auto& e : errs) std::fprintf(stderr, "%s\n", e.str().c_str());
      return 1;
    }
  }
  if (g.seed >= 0) sc.seed = uint64_t(g.seed);
  if (!g.duration.empty()) {
    auto d = parse_duration(g.duration);
    if (!d) {
      std::fprintf(stderr, "guardwatch generate: --duration: not a duration: %s\n", g.duration.c_str());
      return 2;
    }
    sc.duration_ms = *d;
  }
  if (!g.start.empty()) {
    int64_t ms;
    if (g.start == "now") {
      sc.start_ms = wall_ms();
    } else if (g.start.rfind("now-", 0) == 0 && parse_duration(g.start.substr(4))) {
      sc.start_ms = wall_ms() - *parse_duration(g.start.substr(4));
    } else if (parse_rfc3339(g.start, ms)) {
      sc.start_ms = ms;
    } else {
      std::fprintf(stderr, "guardwatch generate: --start: expected RFC 3339, now, or now-DURATION: %s\n", g.start.c_str());
      return 2;
    }
  }
  if (g.count) sc.duration_ms = std::numeric_limits<int64_t>::max() / 4;
  Generator gen(sc);
  GeneratedRecord rec;
  std::unique_ptr<KafkaProducer> producer;
  FILE* out = nullptr;
  if (!g.topic.empty()) {
    std::map<std::string, std::string> props{{"bootstrap.servers", g.brokers.empty() ? "127.0.0.1:9092" : g.brokers}};
    producer = std::make_unique<KafkaProducer>(props, g.topic);
    if (auto e = producer->ensure_topic(g.partitions); !e.empty()) {
      std::fprintf(stderr, "guardwatch generate: %s\n", e.c_str());
      return 1;
    }
  } else {
    out = g.output == "-" ? stdout : std::fopen(g.output.c_str(), "wb");
    if (!out) {
      std::fprintf(stderr, "guardwatch generate: cannot write %s\n", g.output.c_str());
      return 1;
    }
  }
  std::vector<std::string> keys;
  for (auto& s : sc.series) keys.push_back(s.labels["model"] + "/" + s.labels["endpoint"]);
  while ((!g.count || gen.produced() < g.count) && gen.next(rec)) {
    if (producer) {
      producer->produce(keys[rec.series], rec.json);
    } else {
      rec.json += '\n';
      std::fwrite(rec.json.data(), 1, rec.json.size(), out);
    }
  }
  if (producer) {
    uint64_t failed = producer->flush();
    log::info("produced {} records to {} ({} failed)", gen.produced(), g.topic, failed);
    return failed ? 1 : 0;
  }
  if (out != stdout) std::fclose(out);
  else std::fflush(stdout);
  return 0;
}

}  // namespace

namespace gw {
int run_rule_tests(const std::vector<std::string>& files, const std::string& config_path);

}

int main(int argc, char** argv) {
  CLI::App app{"guardwatch: watches LLM inference logs for quiet regressions (proxy metrics in rolling windows, compared statistically)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", gw::build_version());
  Common c;

  auto add_common = [&](CLI::App* s, bool input) {
    s->add_option("-c,--config", c.config, "YAML config file (defaults apply without one)");
    s->add_option("--rules", c.rules, "rule file or directory (repeatable)");
    if (input) s->add_option("-i,--input", c.input, "JSONL file to read, or - for stdin");
  };
  auto* run = app.add_subcommand("run", "Run the daemon: read Kafka (kafka.topics) or --input, serve /metrics");
  add_common(run, true);
  run->add_option("--listen", c.listen, "HTTP address host:port (default 127.0.0.1:9464)");
  run->add_option("--stop-after", c.stop_after, "exit after reading this many records (for benchmarks)");
  run->add_option("--alertmanager", c.alertmanagers, "Alertmanager base URL to send alerts to (repeatable)");
  run->add_option("--shutdown-timeout", c.shutdown_timeout_s, "seconds for the whole shutdown on SIGTERM (default: config shutdown_timeout, 10 s)");
  ReplayOptions ro;
  auto* replay = app.add_subcommand("replay", "Process a JSONL file at full speed in event time: final windows, or with --rules the alert timeline");
  add_common(replay, true);
  replay->add_option("--report", ro.report, "final windows: json (default without rules), prometheus, or none")
      ->check(CLI::IsMember({"json", "prometheus", "none"}));
  replay->add_option("--timeline", ro.timeline, "alert timeline with --rules: jsonl (default) or table")->check(CLI::IsMember({"jsonl", "table", "none"}));
  replay->add_option("--incidents", ro.incidents, "YAML list of labelled incidents {labels, start, end}: prints precision, recall, delay per rule");
  replay->add_option("--grace", ro.grace, "how long after an incident's end a firing still counts as detecting it (default 15m)");
  auto* extract = app.add_subcommand("extract", "Print each record's proxy-metric values and matched patterns as JSON lines");
  add_common(extract, true);
  auto* check = app.add_subcommand("check", "Validate the config, lexicons and rules; exit 0 when valid, 1 otherwise");
  add_common(check, false);
  GenOptions gen;
  auto* generate = app.add_subcommand("generate", "Write deterministic synthetic inference logs (JSONL, or produce to a Kafka topic)");
  generate->add_option("--scenario", gen.scenario, "scenario YAML (default: the built-in two-model scenario)");
  generate->add_option("-o,--output", gen.output, "JSONL file, or - for stdout");
  generate->add_option("--count", gen.count, "stop after this many records (overrides the duration)");
  generate->add_option("--duration", gen.duration, "event time to cover, e.g. 30m (overrides the scenario)");
  generate->add_option("--start", gen.start, "event time of the first record: RFC 3339, now, or now-DURATION (overrides the scenario)");
  generate->add_option("--seed", gen.seed, "random seed (overrides the scenario)");
  generate->add_option("--kafka-brokers", gen.brokers, "produce to Kafka at these brokers instead of writing JSONL");
  generate->add_option("--topic", gen.topic, "Kafka topic (created when missing)");
  generate->add_option("--partitions", gen.partitions, "partitions for a new topic");
  std::vector<std::string> test_files;
  auto* test = app.add_subcommand("test", "Run rule unit tests (YAML, in the spirit of promtool test rules); exit 1 on any failure");
  test->add_option("files", test_files, "test files")->required();
  test->add_option("-c,--config", c.config, "config to run the tests with (a test file's `config:` wins)");
  gw::DemoOptions demo_opts;
  auto* demo = app.add_subcommand("demo", "The whole story with no broker: generated traffic through an embedded Kafka cluster, the shipped rules, a live view");
  demo->add_option("--scenario", demo_opts.scenario, "scenario YAML (default: two models, the candidate of one regresses a third of the way in)");
  demo->add_option("--duration", demo_opts.duration, "event time to cover (default: the scenario's, 1h)");
  demo->add_option("--speed", demo_opts.speed, "event seconds per wall second (default: so the demo takes about a minute)");
  demo->add_option("--listen", demo_opts.listen, "HTTP address (default 127.0.0.1:9464; any free port if taken)");
  demo->add_option("--alertmanager", demo_opts.alertmanagers, "also send the alerts to this Alertmanager (repeatable)");
  demo->add_option("--rules", demo_opts.rules, "rule files or directories (default: the shipped rules)");
  demo->add_option("-c,--config", demo_opts.config, "config file (kafka settings are the demo's own)");
  auto* dashboard = app.add_subcommand("dashboard", "Print the Grafana dashboard for the built-in metrics and the rules' groups (JSON)");
  add_common(dashboard, false);
  app.add_subcommand("config-reference", "Print the configuration reference (docs/configuration.md)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    if (run->parsed()) return cmd_run(c);
    if (replay->parsed()) return cmd_replay(c, ro);
    if (extract->parsed()) return cmd_extract(c);
    if (check->parsed()) return cmd_check(c);
    if (generate->parsed()) return cmd_generate(gen);
    if (test->parsed()) return gw::run_rule_tests(test_files, c.config);
    if (demo->parsed()) return gw::run_demo(demo_opts);
    if (dashboard->parsed()) {
      Config cfg;
      if (!load(c, cfg)) return 1;
      Engine engine(cfg, nullptr, custom_metrics_for(cfg));
      RuleLoad rl = load_rules(cfg.rule_paths, engine.metrics(), engine.store().label_names(), engine.store().retention_ms());
      if (!rl.ok()) {
        for (auto& e : rl.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
        return 1;
      }
      std::cout << grafana_dashboard(engine.metrics(), rl.rules).dump(2) << "\n";
      return 0;
    }
    if (app.got_subcommand("config-reference")) {
      std::cout << gw::config_reference_markdown();
      return 0;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "guardwatch: %s\n", e.what());
    return 1;
  }
  return 2;
}
