#include <prometheus/text_serializer.h>

#include <cmath>
#include <sstream>

#include "guardwatch/export.hpp"

#ifndef GUARDWATCH_VERSION
#define GUARDWATCH_VERSION "0.0.0"
#endif
#ifndef GUARDWATCH_REVISION
#define GUARDWATCH_REVISION "unknown"
#endif

namespace gw {

std::string build_version() { return GUARDWATCH_VERSION; }

prometheus::MetricFamily metric_family(std::string name, std::string help, prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

namespace {
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily family(std::string name, std::string help, MetricType t) { return metric_family("guardwatch_" + name, std::move(help), t); }

ClientMetric gauge(std::vector<ClientMetric::Label> labels, double v) {
  ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = v;
  return m;
}
ClientMetric counter(std::vector<ClientMetric::Label> labels, double v) {
  ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = v;
  return m;
}
}  // namespace

EngineCollector::EngineCollector(const Engine& engine, std::function<int64_t()> end_ms, std::function<KafkaStats()> kafka_stats)
    : engine_(engine), end_ms_(std::move(end_ms)), kafka_stats_(std::move(kafka_stats)) {}

std::vector<MetricFamily> EngineCollector::Collect() const {
  std::vector<MetricFamily> out;
  const auto& reg = engine_.metrics();
  const auto& cfg = engine_.config();

  // Self metrics first.
  auto records = family("records_total", "Records read, by what happened to them.", MetricType::Counter);
  for (size_t o = 0; o < size_t(Outcome::kCount); ++o)
    records.metric.push_back(counter({{"outcome", outcome_name(Outcome(o))}}, double(engine_.outcome_count(Outcome(o)))));
  out.push_back(std::move(records));
  auto warm = family("warmup_records_total",
                     "Records re-read after a partition assignment to rebuild the windows (counted apart from records_total).",
                     MetricType::Counter);
  for (size_t o = 0; o < size_t(Outcome::kCount); ++o)
    if (Outcome(o) == Outcome::kApplied || engine_.outcome_count(Outcome(o), true))
      warm.metric.push_back(counter({{"outcome", outcome_name(Outcome(o))}}, double(engine_.outcome_count(Outcome(o), true))));
  out.push_back(std::move(warm));

  auto build = family("build_info", "Build information; the value is always 1.", MetricType::Gauge);
  build.metric.push_back(gauge({{"version", GUARDWATCH_VERSION}, {"revision", GUARDWATCH_REVISION}}, 1));
  out.push_back(std::move(build));

  if (kafka_stats_) {
    KafkaStats ks = kafka_stats_();
    auto lag = family("kafka_consumer_lag_messages", "Messages between the consumer's position and the partition's high watermark.", MetricType::Gauge);
    for (auto& p : ks.partitions)
      if (p.lag() >= 0) lag.metric.push_back(gauge({{"topic", p.topic}, {"partition", std::to_string(p.partition)}}, double(p.lag())));
    out.push_back(std::move(lag));
    auto errs = family("kafka_errors_total", "Consumer errors reported by librdkafka (informational; the consumer keeps going).", MetricType::Counter);
    errs.metric.push_back(counter({}, double(ks.errors)));
    out.push_back(std::move(errs));
    auto reb = family("kafka_rebalances_total", "Partition assignment changes.", MetricType::Counter);
    reb.metric.push_back(counter({}, double(ks.rebalances)));
    out.push_back(std::move(reb));
    auto rew = family("kafka_rewinds_total", "Partitions rewound to now - kafka.rewind to rebuild their windows.", MetricType::Counter);
    rew.metric.push_back(counter({}, double(ks.rewinds)));
    out.push_back(std::move(rew));
    auto wake = family("kafka_fetch_wakeups_total",
                       "Times the consumer woke librdkafka's fetcher after draining a full prefetch queue (instead of waiting for its 1 s re-check).",
                       MetricType::Counter);
    wake.metric.push_back(counter({}, double(ks.fetch_wakeups)));
    out.push_back(std::move(wake));
    auto up = family("kafka_broker_up", "0 after librdkafka reported all brokers down, until a broker answers again.", MetricType::Gauge);
    up.metric.push_back(gauge({}, ks.broker_up ? 1 : 0));
    out.push_back(std::move(up));
    auto wa = family("warmup_active", "1 while assigned partitions are re-read to rebuild windows (rules hold, /readyz is 503).", MetricType::Gauge);
    wa.metric.push_back(gauge({}, ks.warming ? 1 : 0));
    out.push_back(std::move(wa));
    auto wr = family("warmup_remaining_records", "Records left to re-read before the warm-up ends.", MetricType::Gauge);
    wr.metric.push_back(gauge({}, double(ks.warmup_remaining)));
    out.push_back(std::move(wr));
  }

  int64_t end = end_ms_();
  auto lock = engine_.lock();
  const Store& store = engine_.store();

  auto ev = family("event_time_seconds", "Newest event time seen (Unix seconds).", MetricType::Gauge);
  if (engine_.max_event_ms() > 0) ev.metric.push_back(gauge({}, double(engine_.max_event_ms()) / 1000.0));
  out.push_back(std::move(ev));
  auto active = family("series", "Series (label sets) held in memory.", MetricType::Gauge);
  active.metric.push_back(gauge({}, double(store.series().size())));
  out.push_back(std::move(active));
  auto folded = family("series_folded_total", "New label values or label sets folded into __other__ by the cardinality caps.", MetricType::Counter);
  for (size_t i = 0; i < store.label_names().size(); ++i)
    folded.metric.push_back(counter({{"label", store.label_names()[i]}}, double(store.folded()[i])));
  folded.metric.push_back(counter({{"label", "__series__"}}, double(store.folded_global())));
  out.push_back(std::move(folded));
  auto expired = family("series_expired_total", "Series dropped after no record for series.expire_after.", MetricType::Counter);
  expired.metric.push_back(counter({}, double(engine_.series_expired())));
  out.push_back(std::move(expired));

  // Window families: one per proportion, two per distribution, plus counts.
  // Distributions are summaries: quantiles from the window's sketch (<=1% relative error), and
  // _sum and _count over the same window (so _sum/_count is the window mean). Unlike a client
  // library's summary, _sum and _count cover the window, not the process lifetime.
  std::vector<MetricFamily> fams(reg.size());
  for (size_t m = 0; m < reg.size(); ++m) {
    const MetricDef& d = reg[m];
    if (d.kind == MetricKind::kProportion)
      fams[m] = family(d.prom_name, d.help + " Over the window named by `window`.", MetricType::Gauge);
    else
      fams[m] = family(d.prom_name, d.help + " Over the window named by `window`: quantiles, _sum and _count.", MetricType::Summary);
  }
  auto samples = family("window_samples", "Observations of `metric` in the window (the sample count behind ratios and quantiles).", MetricType::Gauge);
  auto recs = family("window_records", "Records applied to the series in the window.", MetricType::Gauge);
  auto cost = family("window_cost_usd", "Total cost of the requests in the window, in US dollars.", MetricType::Gauge);

  for (auto& sp : store.series()) {
    const Series& s = *sp;
    std::vector<ClientMetric::Label> base;
    for (size_t i = 0; i < s.labels.size(); ++i) base.push_back({store.label_names()[i], s.labels[i]});
    for (auto& [wname, wlen] : cfg.report_windows) {
      WindowAgg w = store.query(s, end, wlen);
      if (w.records == 0) continue;
      auto lw = base;
      lw.push_back({"window", wname});
      recs.metric.push_back(gauge(lw, double(w.records)));
      for (size_t m = 0; m < reg.size(); ++m) {
        const MetricDef& d = reg[m];
        auto lm = lw;
        lm.push_back({"metric", d.name});
        if (d.kind == MetricKind::kProportion) {
          const PropAgg& p = w.props[m];
          if (!p.trials) continue;
          fams[m].metric.push_back(gauge(lw, p.ratio()));
          samples.metric.push_back(gauge(lm, double(p.trials)));
        } else {
          const DistAgg& da = w.dists[m];
          if (!da.count) continue;
          ClientMetric sm;
          sm.label = lw;
          sm.summary.sample_count = da.count;
          sm.summary.sample_sum = da.sum;
          for (double q : kQuantiles) sm.summary.quantile.push_back({q, da.sketch.quantile(q)});
          fams[m].metric.push_back(std::move(sm));
          samples.metric.push_back(gauge(lm, double(da.count)));
          if (m == kCost) cost.metric.push_back(gauge(lw, da.sum));
        }
      }
    }
  }
  for (auto& f : fams) out.push_back(std::move(f));
  out.push_back(std::move(samples));
  out.push_back(std::move(recs));
  out.push_back(std::move(cost));
  return out;
}

std::string serialize_metrics(const std::vector<const prometheus::Collectable*>& cs) {
  std::vector<MetricFamily> all;
  for (auto* c : cs) {
    auto f = c->Collect();
    all.insert(all.end(), std::make_move_iterator(f.begin()), std::make_move_iterator(f.end()));
  }
  return prometheus::TextSerializer().Serialize(all);
}

nlohmann::json window_report(const Engine& engine, int64_t end_ms) {
  using nlohmann::json;
  const auto& reg = engine.metrics();
  auto lock = engine.lock();
  const Store& store = engine.store();
  json series = json::array();
  for (auto& sp : store.series()) {
    json labels = json::object();
    for (size_t i = 0; i < sp->labels.size(); ++i) labels[store.label_names()[i]] = sp->labels[i];
    json windows = json::object();
    for (auto& [wname, wlen] : engine.config().report_windows) {
      WindowAgg w = store.query(*sp, end_ms, wlen);
      json jw = json::object();
      jw["records"] = w.records;
      json metrics = json::object();
      for (size_t m = 0; m < reg.size(); ++m) {
        const MetricDef& d = reg[m];
        if (d.kind == MetricKind::kProportion) {
          const PropAgg& p = w.props[m];
          if (!p.trials) continue;
          metrics[d.name] = {{"ratio", p.ratio()}, {"successes", p.successes}, {"trials", p.trials}};
        } else {
          const DistAgg& da = w.dists[m];
          if (!da.count) continue;
          json q = json::object();
          for (double qq : kQuantiles) q["p" + std::to_string(int(std::lround(qq * 100)))] = da.sketch.quantile(qq);
          metrics[d.name] = {{"count", da.count}, {"mean", da.mean()}, {"sum", da.sum}, {"min", da.min}, {"max", da.max}, {"quantiles", q}};
        }
      }
      jw["metrics"] = metrics;
      windows[wname] = jw;
    }
    series.push_back({{"labels", labels}, {"windows", windows}});
  }
  json outcomes = json::object();
  for (size_t o = 0; o < size_t(Outcome::kCount); ++o) outcomes[outcome_name(Outcome(o))] = engine.outcome_count(Outcome(o));
  return {{"end", end_ms > 0 ? format_rfc3339(end_ms) : ""}, {"records", outcomes}, {"series", series}};
}

nlohmann::json explain_record(const Engine& engine, const Record& r, const Observation& o, Outcome outcome, std::string_view detail) {
  using nlohmann::json;
  json j = json::object();
  if (r.pos.line) j["line"] = r.pos.line;
  if (!r.pos.topic.empty()) j["source"] = {{"topic", r.pos.topic}, {"partition", r.pos.partition}, {"offset", r.pos.offset}};
  j["outcome"] = outcome_name(outcome);
  if (!detail.empty()) j["detail"] = std::string(detail);
  if (outcome != Outcome::kApplied && outcome != Outcome::kLate) return j;
  const FieldValue& id = r[kRequestId];
  if (id.present()) j["request_id"] = std::string(id.str);
  j["ts"] = format_rfc3339(r.ts_ms);
  json labels = json::object();
  static constexpr std::pair<size_t, const char*> lf[] = {{kModel, "model"}, {kModelVersion, "model_version"}, {kEndpoint, "endpoint"}, {kVariant, "variant"}};
  for (auto [f, n] : lf) labels[n] = r[f].present() ? std::string(r[f].str) : "";
  const auto& dims = engine.fields().dimension_ids();
  for (size_t i = 0; i < dims.size(); ++i) labels[engine.fields().dimension_names()[i]] = r[dims[i]].present() ? std::string(r[dims[i]].str) : "";
  j["labels"] = labels;
  json metrics = json::object();
  const auto& reg = engine.metrics();
  for (size_t m = 0; m < reg.size(); ++m)
    if (o.observed(m)) {
      if (reg[m].kind == MetricKind::kProportion) metrics[reg[m].name] = o.values[m] != 0;
      else metrics[reg[m].name] = o.values[m];
    }
  j["metrics"] = metrics;
  json matched = json::object();
  for (uint32_t pid : o.matches) {
    const Pattern& p = engine.matcher().pattern(pid);
    matched[reg[p.group].name].push_back(p.name);
  }
  j["matched"] = matched;
  return j;
}

}  // namespace gw
