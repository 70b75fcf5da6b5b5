// guardwatch demo: the whole story on one machine, no broker needed. An in-process Kafka mock
// cluster (librdkafka's) receives generated traffic in event time sped up against the wall clock;
// the same Kafka source as `guardwatch run` consumes it; the shipped rules evaluate in event time;
// the terminal shows the key metrics per model and version and each alert as it changes.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "guardwatch/decode.hpp"
#include "guardwatch/demo.hpp"
#include "guardwatch/engine.hpp"
#include "guardwatch/export.hpp"
#include "guardwatch/generate.hpp"
#include "guardwatch/http.hpp"
#include "guardwatch/log.hpp"
#include "guardwatch/notify.hpp"
#include "guardwatch/producer.hpp"
#include "guardwatch/runtime.hpp"
#include "guardwatch/source.hpp"

namespace gw {


namespace {
int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
std::string labels_str(const LabelMap& l) {
  std::string s;
  for (auto& [k, v] : l)
    if (k != "alertname" && k != "team") s += (s.empty() ? "" : " ") + k + "=" + v;
  return s;
}
}  // namespace

int run_demo(const DemoOptions& o) {
  Scenario sc = default_scenario();
  if (!o.scenario.empty()) {
    auto errs = load_scenario(o.scenario, sc);
    if (!errs.empty()) {
      for (auto& e : errs) std::fprintf(stderr, "%s\n", e.str().c_str());
      return 1;
    }
  }
  if (!o.duration.empty()) {
    auto d = parse_duration(o.duration);
    if (!d) {
      std::fprintf(stderr, "guardwatch demo: --duration: not a duration: %s\n", o.duration.c_str());
      return 2;
    }
    // Changes keep their place relative to the scenario's length.
    for (auto& c : sc.changes) c.at_ms = int64_t(double(c.at_ms) * double(*d) / double(sc.duration_ms));
    sc.duration_ms = *d;
  }
  double speed = o.speed > 0 ? o.speed : std::max(1.0, double(sc.duration_ms) / 60'000.0);
  // Event time ends "now", so the windows and the dashboard look like live traffic.
  sc.start_ms = wall_ms() - sc.duration_ms;

  // The embedded cluster.
  char err[256];
  rd_kafka_conf_t* mconf = rd_kafka_conf_new();
  rd_kafka_conf_set(mconf, "log_level", "3", err, sizeof err);
  rd_kafka_t* mrk = rd_kafka_new(RD_KAFKA_PRODUCER, mconf, err, sizeof err);
  if (!mrk) {
    std::fprintf(stderr, "guardwatch demo: %s\n", err);
    return 1;
  }
  rd_kafka_mock_cluster_t* mcluster = rd_kafka_mock_cluster_new(mrk, 1);
  const std::string topic = "guardwatch-demo";
  rd_kafka_mock_topic_create(mcluster, topic.c_str(), o.partitions, 1);
  std::string brokers = rd_kafka_mock_cluster_bootstraps(mcluster);

  ConfigResult cr = o.config.empty() ? config_from_yaml("", "") : load_config(o.config);
  if (!cr.ok()) {
    for (auto& e : cr.errors) std::fprintf(stderr, "%s\n", e.str().c_str());
    return 1;
  }
  Config cfg = cr.config;
  cfg.listen = o.listen;
  cfg.kafka_topics = {topic};
  cfg.kafka_properties["bootstrap.servers"] = brokers;
  cfg.kafka_properties["group.id"] = "guardwatch-demo";
  cfg.allowed_lateness_ms = std::max<int64_t>(cfg.allowed_lateness_ms, int64_t(5000 * speed));  // partitions interleave
  cfg.rule_paths = o.rules.empty() ? std::vector<std::string>{data_dir() + "/rules/guardrails.yaml"} : o.rules;
  for (auto& a : o.alertmanagers) cfg.alerting.alertmanagers.push_back(a);

  Engine engine(cfg, nullptr, custom_metrics_for(cfg));
  RuleRuntime rules(engine);
  if (auto errs = rules.load(); !errs.empty()) {
    for (auto& e : errs) std::fprintf(stderr, "%s\n", e.str().c_str());
    return 1;
  }
  std::mutex view_mu;
  std::deque<std::string> event_lines;
  std::vector<AlertEvent> fired;
  bool tty = isatty(1);
  rules.on_event([&](const AlertEvent& e) {
    const Evidence& ev = e.alert.evidence;
    std::string line = fmt::format("{} {:<8} {:<30} {:<48} effect {:+.3g} ({:+.0f}%) p={:.1e} n={}/{}", format_rfc3339(e.ts_ms).substr(11, 8),
                                   e.kind, e.alert.rule, labels_str(e.alert.labels), ev.effect, 100 * ev.relative, ev.p_value, ev.current.n,
                                   ev.baseline.n);
    std::lock_guard g(view_mu);
    if (e.kind == "firing") fired.push_back(e);
    if (tty) {
      event_lines.push_back(line);
      if (event_lines.size() > 14) event_lines.pop_front();
    } else {
      std::printf("alert %s\n", line.c_str());
      std::fflush(stdout);
    }
  });
  engine.on_applied([&] { rules.advance(engine.watermark_ms()); });

  boost::asio::io_context io;
  std::unique_ptr<HttpServer> server;
  try {
    server = std::make_unique<HttpServer>(io, cfg.listen);
  } catch (const std::exception&) {
    server = std::make_unique<HttpServer>(io, "127.0.0.1:0");  // the default port is taken: any port
  }
  EngineCollector collector(engine, [&] { return engine.max_event_ms() + 1; });
  if (cfg.alerting.external_url.empty()) cfg.alerting.external_url = "http://" + server->address();
  Notifier notifier(cfg.alerting, wall_ms, rules.max_interval_ms());
  if (notifier.enabled()) rules.on_event([&](const AlertEvent& e) { notifier.on_event(e); });
  server->route("/metrics", [&](const std::string&) {
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", serialize_metrics({&collector, &rules.collector(), &notifier.collector()})};
  });
  server->route("/api/v1/alerts", [&](const std::string&) { return HttpResponse{200, "application/json", rules.alerts_json().dump(2) + "\n"}; });
  server->route("/api/v1/rules", [&](const std::string&) { return HttpResponse{200, "application/json", rules.rules_json().dump(2) + "\n"}; });
  server->route("/healthz", [](const std::string&) { return HttpResponse{200, "application/json", "{\"status\":\"ok\"}\n"}; });
  server->start();
  std::atomic<bool> stop{false}, produced_all{false};
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (!ec) stop = true;
  });
  std::thread http([&] { io.run(); });

  std::printf("guardwatch demo: %s of traffic for %zu series at %.0fx speed through an embedded Kafka cluster (%s, %d partitions)\n",
              format_duration(sc.duration_ms).c_str(), sc.series.size(), speed, brokers.c_str(), o.partitions);
  std::printf("  metrics: http://%s/metrics   alerts: http://%s/api/v1/alerts%s\n\n", server->address().c_str(), server->address().c_str(),
              notifier.enabled() ? "   (also sent to Alertmanager)" : "");
  std::fflush(stdout);

  // Producer: paced in event time / speed.
  std::atomic<uint64_t> produced{0};
  uint64_t produce_failed = 0;
  std::thread producer([&] {
    KafkaProducer p({{"bootstrap.servers", brokers}, {"linger.ms", "5"}}, topic);
    Generator gen(sc);
    GeneratedRecord rec;
    std::vector<std::string> keys;
    for (auto& s : sc.series) keys.push_back(s.labels["model"] + "/" + s.labels["endpoint"]);
    auto t0 = std::chrono::steady_clock::now();
    while (!stop && gen.next(rec)) {
      auto due = t0 + std::chrono::microseconds(int64_t(double(rec.ts_ms - sc.start_ms) * 1000.0 / speed));
      if (due > std::chrono::steady_clock::now()) std::this_thread::sleep_until(due);
      // Back-pressure: the mock cluster keeps ~5 MiB per partition, so never run more than ~1 MiB
      // per partition ahead of the consumer (a slow machine slows the demo instead of losing data).
      while (!stop && produced.load() > engine.records_seen() + uint64_t(1000 * o.partitions))
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      // No key: records spread over all partitions, so none outgrows the mock cluster's ~5 MiB
      // per-partition retention before it is consumed (a real deployment keys by series).
      p.produce({}, rec.json);
      ++produced;
    }
    produce_failed = p.flush(30000);
    produced_all = true;
  });
  // Consumer: the same source as `guardwatch run`.
  KafkaSource source(cfg);
  std::thread consumer([&] { source.run(engine, stop); });

  // The live view.
  auto t_start = std::chrono::steady_clock::now();
  int drawn = 0;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 500 : 2000));
    bool done = produced_all && engine.records_seen() >= produced.load();
    bool stalled = produced_all && std::chrono::steady_clock::now() - t_start > std::chrono::seconds(30) &&
                   std::chrono::steady_clock::now() - t_start > std::chrono::milliseconds(int64_t(double(sc.duration_ms) / speed) + 30000);
    std::string frame;
    {
      nlohmann::json rep = window_report(engine, engine.max_event_ms() + 1);
      frame += fmt::format("event time {}  records {}  applied {}\n", engine.max_event_ms() > 0 ? format_rfc3339(engine.max_event_ms()).substr(0, 19) : "-",
                           engine.records_seen(), engine.outcome_count(Outcome::kApplied));
      frame += fmt::format("{:<8} {:<11} {:<9} {:>8} {:>8} {:>9} {:>8} {:>9}   (last 5m)\n", "model", "version", "variant", "records", "refusal",
                           "citation", "p95 lat", "mean len");
      for (auto& s : rep["series"]) {
        auto& w = s["windows"]["5m"];
        auto& m = w["metrics"];
        auto ratio = [&](const char* k) { return m.contains(k) ? fmt::format("{:.1f}%", 100 * double(m[k]["ratio"])) : std::string("-"); };
        frame += fmt::format("{:<8} {:<11} {:<9} {:>8} {:>8} {:>9} {:>8} {:>9}\n", std::string(s["labels"]["model"]), std::string(s["labels"]["model_version"]),
                             std::string(s["labels"]["variant"]), int(w["records"]), ratio("refusal"), ratio("citation"),
                             m.contains("latency") ? fmt::format("{:.2f}s", double(m["latency"]["quantiles"]["p95"])) : "-",
                             m.contains("response_chars") ? fmt::format("{:.0f}", double(m["response_chars"]["mean"])) : "-");
      }
    }
    if (tty) {
      std::lock_guard g(view_mu);
      frame += "\nalerts:\n";
      for (auto& l : event_lines) frame += "  " + l + "\n";
      if (drawn) std::printf("\033[%dA\033[J", drawn);
      std::fputs(frame.c_str(), stdout);
      drawn = int(std::count(frame.begin(), frame.end(), '\n'));
      std::fflush(stdout);
    } else if (done || stop) {
      std::fputs(frame.c_str(), stdout);
    }
    if (done || stop || stalled) break;
  }
  stop = true;
  producer.join();
  consumer.join();
  rules.advance(engine.max_event_ms());
  if (notifier.enabled()) notifier.drain(5000);

  // Summary: every changed series' model must have fired; no unchanged model may have.
  std::set<std::string> changed_models, quiet_models;
  for (auto& s : sc.series) quiet_models.insert(s.labels.count("model") ? s.labels.at("model") : "");
  for (auto& c : sc.changes)
    for (auto& s : sc.series) {
      bool match = true;
      for (auto& [k, v] : c.match) match &= s.labels.count(k) && s.labels.at(k) == v;
      if (match) changed_models.insert(s.labels.count("model") ? s.labels.at("model") : "");
    }
  for (auto& m : changed_models) quiet_models.erase(m);
  std::map<std::string, std::set<std::string>> fired_by_model;
  for (auto& e : fired) fired_by_model[e.alert.labels.count("model") ? e.alert.labels.at("model") : ""].insert(e.alert.rule);
  uint64_t seen = engine.records_seen();
  std::printf("\nsummary: produced %llu records, consumed %llu (%s), %llu applied\n", (unsigned long long)produced.load(), (unsigned long long)seen,
              seen == produced.load() && !produce_failed ? "nothing lost" : "RECORDS LOST", (unsigned long long)engine.outcome_count(Outcome::kApplied));
  bool ok = seen == produced.load() && !produce_failed;
  for (auto& m : changed_models) {
    auto& f = fired_by_model[m];
    std::string list;
    for (auto& r : f) list += (list.empty() ? "" : ", ") + r;
    std::printf("  %-8s scripted regression   %s: %s\n", m.c_str(), f.empty() ? "MISSED" : "detected", f.empty() ? "-" : list.c_str());
    ok &= !f.empty();
  }
  for (auto& m : quiet_models) {
    auto& f = fired_by_model[m];
    std::string list;
    for (auto& r : f) list += (list.empty() ? "" : ", ") + r;
    std::printf("  %-8s unchanged             %s\n", m.c_str(), f.empty() ? "quiet (no alert)" : ("FALSE ALARM: " + list).c_str());
    ok &= f.empty();
  }
  std::printf("%s\n", ok ? "demo passed: the scripted regressions were detected and nothing else fired" : "demo FAILED");
  std::fflush(stdout);
  server->stop();
  io.stop();
  http.join();
  rd_kafka_mock_cluster_destroy(mcluster);
  rd_kafka_destroy(mrk);
  return ok ? 0 : 1;
}

}  // namespace gw
