#include "guardwatch/runtime.hpp"

#include <prometheus/metric_family.h>
#include <sys/stat.h>

#include <algorithm>
#include <yaml-cpp/yaml.h>

#include "guardwatch/yaml_util.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>

#include "guardwatch/decode.hpp"
#include "guardwatch/export.hpp"
#include "guardwatch/log.hpp"

namespace gw {

using nlohmann::json;

std::vector<CustomMetric> custom_metrics_for(const Config& cfg) {
  std::vector<ConfigError> ignore;
  return load_custom_metrics(cfg.rule_paths, ignore);
}

class RuleCollector : public prometheus::Collectable {
 public:
  explicit RuleCollector(const RuleRuntime& rt) : rt_(rt) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    using prometheus::ClientMetric;
    using prometheus::MetricFamily;
    using prometheus::MetricType;
    std::vector<MetricFamily> out;
    auto state = metric_family("guardwatch_alert_state", "Alerts that are pending (1) or firing (2), with their labels.", MetricType::Gauge);
    auto effect = metric_family("guardwatch_alert_effect", "Effect (current minus baseline) of each pending or firing alert.", MetricType::Gauge);
    auto pval = metric_family("guardwatch_alert_p_value", "p-value of each pending or firing alert's test.", MetricType::Gauge);
    auto evals = metric_family("guardwatch_rule_evaluations_total", "Rule evaluations (one per rule per group evaluation).", MetricType::Counter);
    auto fails = metric_family("guardwatch_rule_evaluation_failures_total", "Rule evaluations that failed internally (the rule's health shows the error).", MetricType::Counter);
    auto dur = metric_family("guardwatch_rule_evaluation_duration_seconds", "Duration of each rule's last evaluation.", MetricType::Gauge);
    auto tested = metric_family("guardwatch_rule_groups_tested", "Label groups each rule tested in its last evaluation (after min_samples).", MetricType::Gauge);
    auto last = metric_family("guardwatch_rule_last_evaluation_timestamp_seconds", "Event time of each rule's last evaluation.", MetricType::Gauge);
    auto cur = metric_family("guardwatch_rule_current_value", "The current side of each rule's last comparison (ratio, mean or quantile), per label group.", MetricType::Gauge);
    auto base = metric_family("guardwatch_rule_baseline_value", "The baseline side of each rule's last comparison, per label group.", MetricType::Gauge);
    auto rp = metric_family("guardwatch_rule_p_value", "p-value of each rule's last comparison, per label group.", MetricType::Gauge);
    auto reload_ok = metric_family("guardwatch_config_last_reload_successful", "Whether the last rule reload succeeded (1) or kept the previous rules (0).", MetricType::Gauge);
    auto reload_ts = metric_family("guardwatch_config_last_reload_success_timestamp_seconds", "Wall-clock time of the last successful rule load.", MetricType::Gauge);
    auto reloads = metric_family("guardwatch_config_reloads_total", "Rule reloads, by result.", MetricType::Counter);
    std::lock_guard g(rt_.mu_);
    if (rt_.evaluator_) {
      const Evaluator& ev = *rt_.evaluator_;
      for (auto& [k, a] : ev.alerts()) {
        std::vector<ClientMetric::Label> ls;
        for (auto& [lk, lv] : a.labels) ls.push_back({lk, lv});
        ClientMetric m;
        m.label = ls;
        m.gauge.value = a.state == AlertState::kFiring ? 2 : 1;
        state.metric.push_back(m);
        m.gauge.value = a.evidence.effect;
        effect.metric.push_back(m);
        m.gauge.value = a.evidence.p_value;
        pval.metric.push_back(m);
      }
      ClientMetric c;
      c.counter.value = double(ev.evaluations());
      evals.metric.push_back(c);
      c.counter.value = double(ev.failures());
      fails.metric.push_back(c);
      for (size_t gi = 0; gi < ev.rules().groups.size(); ++gi)
        for (size_t ri = 0; ri < ev.rules().groups[gi].rules.size(); ++ri) {
          const RuleHealth& h = ev.health()[gi][ri];
          ClientMetric m;
          m.label = {{"group", ev.rules().groups[gi].name}, {"alertname", ev.rules().groups[gi].rules[ri].alert}};
          m.gauge.value = h.last_duration_s;
          dur.metric.push_back(m);
          m.gauge.value = double(h.groups_tested);
          tested.metric.push_back(m);
          m.gauge.value = double(h.last_eval_ms) / 1000.0;
          last.metric.push_back(m);
          for (auto& [labels, e] : h.last) {
            ClientMetric g;
            g.label = {{"group", ev.rules().groups[gi].name}, {"alertname", ev.rules().groups[gi].rules[ri].alert}};
            for (auto& [lk, lv] : labels) g.label.push_back({lk, lv});
            if (std::isfinite(e.current.value)) {
              g.gauge.value = e.current.value;
              cur.metric.push_back(g);
            }
            if (std::isfinite(e.baseline.value)) {
              g.gauge.value = e.baseline.value;
              base.metric.push_back(g);
            }
            g.gauge.value = e.p_value;
            rp.metric.push_back(g);
          }
        }
    }
    ClientMetric r;
    r.gauge.value = rt_.last_reload_ok_ ? 1 : 0;
    reload_ok.metric.push_back(r);
    r.gauge.value = double(rt_.last_reload_ms_) / 1000.0;
    reload_ts.metric.push_back(r);
    ClientMetric c1, c2;
    c1.label = {{"result", "success"}};
    c1.counter.value = double(rt_.reloads_ok_);
    c2.label = {{"result", "failure"}};
    c2.counter.value = double(rt_.reloads_failed_);
    reloads.metric = {c1, c2};
    for (auto* f : {&state, &effect, &pval, &evals, &fails, &dur, &tested, &last, &cur, &base, &rp, &reload_ok, &reload_ts, &reloads})
      out.push_back(std::move(*f));
    return out;
  }

 private:
  const RuleRuntime& rt_;
};

RuleRuntime::RuleRuntime(Engine& engine) : engine_(engine), collector_(std::make_unique<RuleCollector>(*this)) {}

std::vector<std::string> RuleRuntime::watched_files() const {
  std::lock_guard g(mu_);
  return evaluator_ ? evaluator_->rules().files : std::vector<std::string>{};
}

int64_t RuleRuntime::max_interval_ms() const {
  std::lock_guard g(mu_);
  int64_t m = 60'000;
  if (evaluator_)
    for (auto& grp : evaluator_->rules().groups) m = std::max(m, grp.interval_ms);
  return m;
}

uint64_t RuleRuntime::evaluations() const {
  std::lock_guard g(mu_);
  return evaluator_ ? evaluator_->evaluations() : 0;
}

int64_t RuleRuntime::lookback_ms() const {
  std::lock_guard g(mu_);
  return lookback_locked();
}

int64_t RuleRuntime::lookback_locked() const { return evaluator_ ? evaluator_->rules().reach_ms() : 0; }

std::vector<ConfigError> RuleRuntime::load() {
  const Config& cfg = engine_.config();
  RuleLoad rl = load_rules(cfg.rule_paths, engine_.metrics(), engine_.store().label_names(), engine_.store().retention_ms());
  // Custom metrics are registered when the engine starts: a change needs a restart.
  if (rl.ok())
    for (auto& cm : rl.rules.metrics) {
      int id = engine_.metrics().find(cm.name);
      if (id < 0 || engine_.metrics()[size_t(id)].kind != cm.kind)
        rl.errors.push_back({cm.where.file, cm.where.line, cm.where.column, cm.where.key,
                             "custom metric \"" + cm.name + "\" is new or changed: custom metrics take effect on restart"});
    }
  int64_t wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard g(mu_);
  if (!rl.ok()) {
    ++reloads_failed_;
    last_reload_ok_ = false;
    return rl.errors;
  }
  auto ev = std::make_unique<Evaluator>(rl.rules, engine_.metrics(), engine_.store());
  if (evaluator_) ev->adopt(*evaluator_);
  evaluator_ = std::move(ev);
  ++reloads_ok_;
  last_reload_ok_ = true;
  last_reload_ms_ = wall;
  if (std::string w = expiry_warning(cfg, rl.rules); !w.empty()) log::warn("{}", w);
  return {};
}

std::vector<AlertEvent> RuleRuntime::run_locked(int64_t t, bool all) {
  auto lock = engine_.lock();
  return evaluator_->evaluate(t, all);
}

std::vector<AlertEvent> RuleRuntime::advance(int64_t until) {
  std::vector<AlertEvent> events;
  std::lock_guard g(mu_);
  if (!evaluator_ || until <= std::numeric_limits<int64_t>::min() / 4) return events;
  if (!started_) {
    // The first call aligns every group's schedule to its next interval boundary after the start
    // of the data (too little data to fire yet: min_samples).
    started_ = true;
    auto ev0 = run_locked(until, true);
    events.insert(events.end(), ev0.begin(), ev0.end());
  }
  // A gap in event time (a file spanning months with quiet weeks, one record from years ago)
  // would cost one evaluation per interval across it: ten years at 30 s are 10^7 of them. An
  // evaluation at t reads buckets in [t - lookback - bucket, t + bucket) (windows plus offsets,
  // widened to whole buckets of at most the coarsest tier's resolution). When the last evaluation
  // saw no data and holds no alert, the store is asked for its first bucket after that span;
  // every evaluation before that bucket comes within reach would see nothing and change nothing,
  // so the schedule moves past them. Evaluations up to `until` run now against the same store
  // either way: the outcome is the same (a test compares with skipping off).
  int64_t reach = -1, bucket = 0;
  for (int64_t due = evaluator_->next_due_ms(); due <= until; due = evaluator_->next_due_ms()) {
    if (skip_gaps_ && evaluator_->idle()) {
      if (reach < 0) {
        reach = lookback_locked();
        for (auto& t : engine_.config().tiers) bucket = std::max(bucket, t.resolution_ms);
      }
      int64_t first;
      {
        auto lock = engine_.lock();
        first = engine_.store().first_data_ms(due - reach - bucket);
      }
      int64_t resume = first == std::numeric_limits<int64_t>::max() ? until + 1 : std::min(first - bucket, until + 1);
      if (resume > due) {
        skipped_ += evaluator_->skip_to(resume);
        continue;
      }
    }
    auto ev = run_locked(due, false);
    events.insert(events.end(), ev.begin(), ev.end());
  }
  for (auto& e : events)
    for (auto& l : listeners_) l(e);
  return events;
}

std::vector<AlertEvent> RuleRuntime::tick(int64_t now) {
  std::vector<AlertEvent> events;
  {
    std::lock_guard g(mu_);
    if (!evaluator_) return events;
    events = run_locked(now, false);
  }
  for (auto& e : events)
    for (auto& l : listeners_) l(e);
  return events;
}

namespace {
json side_json(const Side& s) { return {{"n", s.n}, {"value", std::isfinite(s.value) ? json(s.value) : json(nullptr)}}; }
json finite(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
json evidence_json(const Evidence& e) {
  return {{"current", side_json(e.current)}, {"baseline", side_json(e.baseline)}, {"effect", finite(e.effect)},
          {"relative", finite(e.relative)},   {"p_value", finite(e.p_value)},       {"alpha", finite(e.alpha)},
          {"statistic", finite(e.statistic)}, {"tested", e.tested},                 {"significant", e.significant},
          {"meets_min_effect", e.meets_effect}};
}
json alert_json(const Alert& a) {
  json j = {{"alertname", a.rule}, {"state", state_name(a.state)}, {"labels", a.labels}, {"annotations", a.annotations},
            {"active_at", format_rfc3339(a.active_at)}, {"evidence", evidence_json(a.evidence)}};
  if (a.state == AlertState::kFiring) j["fired_at"] = format_rfc3339(a.fired_at);
  if (a.primary) j["primary"] = evidence_json(*a.primary);
  json ex = json::array();
  for (auto& e : a.exemplars) {
    json x = {{"request_id", e.request_id}, {"ts", format_rfc3339(e.ts_ms)}, {"value", e.value}};
    if (!e.topic.empty()) x["kafka"] = {{"topic", e.topic}, {"partition", e.partition}, {"offset", e.offset}};
    if (e.line) x["line"] = e.line;
    ex.push_back(x);
  }
  j["exemplars"] = ex;
  return j;
}
const char* test_name(TestKind k) {
  switch (k) {
    case TestKind::kTwoProportion: return "two_proportion";
    case TestKind::kWelch: return "welch";
    case TestKind::kQuantileShift: return "quantile_shift";
    case TestKind::kSequential: return "sequential";
  }
  return "?";
}
}  // namespace

json RuleRuntime::event_json(const AlertEvent& e, const MetricRegistry&) {
  json j = alert_json(e.alert);
  j["event"] = e.kind;
  j["ts"] = format_rfc3339(e.ts_ms);
  if (e.kind == "resolved") j["resolved_at"] = format_rfc3339(e.alert.resolved_at);
  return j;
}

json RuleRuntime::rules_json() const {
  std::lock_guard g(mu_);
  json groups = json::array();
  if (!evaluator_) return {{"groups", groups}};
  const Evaluator& ev = *evaluator_;
  for (size_t gi = 0; gi < ev.rules().groups.size(); ++gi) {
    const RuleGroup& grp = ev.rules().groups[gi];
    json rules = json::array();
    for (size_t ri = 0; ri < grp.rules.size(); ++ri) {
      const Rule& r = grp.rules[ri];
      const RuleHealth& h = ev.health()[gi][ri];
      json last = json::array();
      for (auto& [labels, e] : h.last) last.push_back({{"labels", labels}, {"evidence", evidence_json(e)}});
      json firing = json::array();
      for (auto& [k, a] : ev.alerts())
        if (a.group_index == gi && a.rule_index == ri) firing.push_back(alert_json(a));
      rules.push_back({{"alert", r.alert},
                       {"metric", r.cond.metric_name},
                       {"test", test_name(r.cond.test.kind)},
                       {"primary_metric", r.primary ? json(r.primary->metric_name) : json(nullptr)},
                       {"health", h.error.empty() ? "ok" : "err"},
                       {"last_error", h.error},
                       {"last_evaluation", h.last_eval_ms ? json(format_rfc3339(h.last_eval_ms)) : json(nullptr)},
                       {"evaluation_time_seconds", h.last_duration_s},
                       {"groups", last},
                       {"alerts", firing}});
    }
    groups.push_back({{"name", grp.name}, {"file", grp.file}, {"interval", format_duration(grp.interval_ms)}, {"rules", rules}});
  }
  return {{"groups", groups}};
}

json RuleRuntime::alerts_json() const {
  std::lock_guard g(mu_);
  json out = json::array();
  if (evaluator_)
    for (auto& [k, a] : evaluator_->alerts()) out.push_back(alert_json(a));
  return {{"alerts", out}};
}

// --- incidents ------------------------------------------------------------------------------

std::vector<ConfigError> load_incidents(const std::string& path, std::vector<Incident>& out) {
  std::vector<ConfigError> errs;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    errs.push_back({path, e.mark.line + 1, e.mark.column + 1, "", e.msg});
    return errs;
  }
  const YAML::Node list = gw::yaml::is_map(root) ? root["incidents"] : root;
  if (!gw::yaml::is_seq(list)) {
    errs.push_back({path, 0, 0, "incidents", "expected a list of {labels, start, end[, alert]}"});
    return errs;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node n = list[i];
    std::string key = "incidents[" + std::to_string(i) + "]";
    Incident inc{};
    int64_t s = 0, e = 0;
    if (!gw::yaml::is_scalar(n["start"]) || !parse_rfc3339(n["start"].Scalar(), s) || !gw::yaml::is_scalar(n["end"]) || !parse_rfc3339(n["end"].Scalar(), e)) {
      errs.push_back({path, n.Mark().line + 1, n.Mark().column + 1, key, "start and end must be RFC 3339 times"});
      continue;
    }
    inc.start_ms = s;
    inc.end_ms = e;
    if (gw::yaml::is_map(n["labels"]))
      for (auto it = n["labels"].begin(); it != n["labels"].end(); ++it) inc.labels[it->first.Scalar()] = it->second.Scalar();
    if (gw::yaml::is_scalar(n["alert"])) inc.alert = n["alert"].Scalar();
    out.push_back(inc);
  }
  return errs;
}

json score_incidents(const std::vector<AlertEvent>& events, const std::vector<Incident>& incidents, const std::vector<std::string>& rule_names,
                     int64_t grace_ms) {
  json out = json::array();
  auto overlaps = [](const LabelMap& alert, const LabelMap& inc) {
    for (auto& [k, v] : inc) {
      auto it = alert.find(k);
      if (it != alert.end() && it->second != v) return false;
    }
    return true;
  };
  for (auto& rule : rule_names) {
    size_t fired = 0, true_pos = 0, detected = 0, judged = 0;
    std::vector<double> delays;
    for (auto& e : events)
      if (e.kind == "firing" && e.alert.rule == rule) {
        ++fired;
        for (auto& inc : incidents)
          if ((inc.alert.empty() || inc.alert == rule) && overlaps(e.alert.labels, inc.labels) && e.ts_ms >= inc.start_ms &&
              e.ts_ms <= inc.end_ms + grace_ms) {
            ++true_pos;
            break;
          }
      }
    for (auto& inc : incidents) {
      if (!inc.alert.empty() && inc.alert != rule) continue;
      ++judged;
      for (auto& e : events)
        if (e.kind == "firing" && e.alert.rule == rule && overlaps(e.alert.labels, inc.labels) && e.ts_ms >= inc.start_ms &&
            e.ts_ms <= inc.end_ms + grace_ms) {
          ++detected;
          delays.push_back(double(e.ts_ms - inc.start_ms) / 1000.0);
          break;
        }
    }
    std::sort(delays.begin(), delays.end());
    json j = {{"alert", rule}, {"firing_events", fired}, {"incidents", judged}, {"detected", detected}};
    j["precision"] = fired ? json(double(true_pos) / double(fired)) : json(nullptr);
    j["recall"] = judged ? json(double(detected) / double(judged)) : json(nullptr);
    j["detection_delay_seconds"] = delays.empty() ? json(nullptr)
                                                  : json({{"p50", delays[delays.size() / 2]},
                                                          {"max", delays.back()},
                                                          {"mean", std::accumulate(delays.begin(), delays.end(), 0.0) / double(delays.size())}});
    out.push_back(j);
  }
  return out;
}

}  // namespace gw
