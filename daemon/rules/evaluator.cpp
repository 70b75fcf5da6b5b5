// The evaluator: for each due group and rule, merge the current and baseline windows per group
// key, test, correct for multiple comparisons, and move each alert through its lifecycle.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "guardwatch/rules.hpp"
#include "guardwatch/store.hpp"

namespace gw {

const char* state_name(AlertState s) {
  switch (s) {
    case AlertState::kInactive: return "inactive";
    case AlertState::kPending: return "pending";
    case AlertState::kFiring: return "firing";
  }
  return "?";
}

Evaluator::Evaluator(const RuleSet& rules, const MetricRegistry& metrics, const Store& store)
    : rules_(rules), metrics_(metrics), store_(store) {
  next_eval_.assign(rules_.groups.size(), std::numeric_limits<int64_t>::min());
  health_.resize(rules_.groups.size());
  for (size_t g = 0; g < rules_.groups.size(); ++g) health_[g].resize(rules_.groups[g].rules.size());
}

int64_t Evaluator::next_due_ms() const {
  int64_t m = std::numeric_limits<int64_t>::max();
  for (auto v : next_eval_) m = std::min(m, v);
  return m;
}

uint64_t Evaluator::skip_to(int64_t t) {
  uint64_t skipped = 0;
  for (size_t g = 0; g < next_eval_.size(); ++g) {
    int64_t iv = rules_.groups[g].interval_ms;
    int64_t boundary = (t / iv + (t % iv != 0)) * iv;
    if (boundary > next_eval_[g]) {
      if (next_eval_[g] != std::numeric_limits<int64_t>::min()) skipped += uint64_t((boundary - next_eval_[g]) / iv);
      next_eval_[g] = boundary;
    }
  }
  return skipped;
}

void Evaluator::adopt(const Evaluator& old) {
  for (auto& [k, a] : old.alerts_) {
    // Keep alerts whose rule still exists under the same group and name.
    for (size_t g = 0; g < rules_.groups.size(); ++g)
      for (size_t r = 0; r < rules_.groups[g].rules.size(); ++r)
        if (rules_.groups[g].name == old.rules_.groups[a.group_index].name && rules_.groups[g].rules[r].alert == a.rule) {
          Alert copy = a;
          copy.group_index = g;
          copy.rule_index = r;
          alerts_[k] = copy;
        }
  }
  for (size_t g = 0; g < rules_.groups.size(); ++g)
    for (size_t og = 0; og < old.rules_.groups.size(); ++og)
      if (rules_.groups[g].name == old.rules_.groups[og].name) next_eval_[g] = old.next_eval_[og];
}

namespace {

struct SideAgg {
  WindowAgg agg;
  std::vector<const Series*> series;
  SideAgg() : agg(0) {}
};

bool matches(const Series& s, const std::vector<std::string>& names, const LabelMap& sel) {
  for (auto& [k, v] : sel) {
    auto it = std::find(names.begin(), names.end(), k);
    if (it == names.end() || s.labels[size_t(it - names.begin())] != v) return false;
  }
  return true;
}

bool meets(const Effect& e, double abs_effect, double rel_effect, stats::Alternative alt) {
  if (!e.any()) return true;
  double a = abs_effect, r = rel_effect;
  if (alt == stats::Alternative::kLess) {
    a = -a;
    r = -r;
  } else if (alt == stats::Alternative::kTwoSided) {
    a = std::fabs(a);
    r = std::fabs(r);
  }
  if (e.absolute && !(a >= *e.absolute)) return false;
  if (e.relative && !(r >= *e.relative)) return false;
  return true;
}

Evidence evidence_for(const Condition& c, const WindowAgg& cur, const WindowAgg& base, uint64_t min_samples, const MetricRegistry& reg) {
  Evidence ev;
  size_t m = size_t(c.metric);
  const bool prop = reg[m].kind == MetricKind::kProportion;
  stats::TestResult tr;
  double var_diff = 0;
  if (prop) {
    const PropAgg &a = cur.props[m], &b = base.props[m];
    ev.current = {a.trials, a.ratio()};
    ev.baseline = {b.trials, b.ratio()};
    if (a.trials && b.trials) {
      double p1 = ev.current.value, p2 = ev.baseline.value;
      var_diff = p1 * (1 - p1) / double(a.trials) + p2 * (1 - p2) / double(b.trials);
    }
    if (c.test.kind != TestKind::kSequential) tr = stats::two_proportion(a.successes, a.trials, b.successes, b.trials, c.test.alternative);
  } else {
    const DistAgg &a = cur.dists[m], &b = base.dists[m];
    ev.current.n = a.count;
    ev.baseline.n = b.count;
    if (c.test.kind == TestKind::kQuantileShift) {
      ev.current.value = a.count ? a.sketch.quantile(c.test.quantile) : NAN;
      ev.baseline.value = b.count ? b.sketch.quantile(c.test.quantile) : NAN;
      tr = stats::quantile_shift(a.sketch, b.sketch, c.test.quantile, c.test.alternative);
    } else {
      ev.current.value = a.mean();
      ev.baseline.value = b.mean();
      if (a.count > 1 && b.count > 1) var_diff = a.variance() / double(a.count) + b.variance() / double(b.count);
      if (c.test.kind == TestKind::kWelch)
        tr = stats::welch(a.mean(), a.variance(), a.count, b.mean(), b.variance(), b.count, c.test.alternative);
    }
  }
  ev.effect = ev.current.value - ev.baseline.value;
  ev.relative = ev.baseline.value != 0 ? ev.current.value / ev.baseline.value - 1 : (ev.effect > 0 ? INFINITY : ev.effect < 0 ? -INFINITY : 0);
  if (c.test.kind == TestKind::kSequential && var_diff > 0) {
    double tau = c.test.tau;
    if (tau <= 0) tau = c.min_effect.absolute ? *c.min_effect.absolute
                        : c.min_effect.relative ? *c.min_effect.relative * std::fabs(ev.baseline.value)
                                                : 0.1 * std::fabs(ev.baseline.value);
    if (tau <= 0) tau = 0.01;
    double diff = ev.effect;
    bool wrong_way = (c.test.alternative == stats::Alternative::kGreater && diff <= 0) ||
                     (c.test.alternative == stats::Alternative::kLess && diff >= 0);
    tr.valid = true;
    tr.statistic = diff / std::sqrt(var_diff);
    tr.p_value = wrong_way ? 1.0 : stats::msprt_p(diff, var_diff, tau);
  }
  ev.statistic = tr.statistic;
  ev.p_value = tr.p_value;
  ev.tested = tr.valid && ev.current.n >= min_samples && ev.baseline.n >= min_samples;
  ev.meets_effect = std::isfinite(ev.effect) && meets(c.min_effect, ev.effect, ev.relative, c.test.alternative);
  return ev;
}

// Per-comparison threshold for m tests at level alpha.
void correct(std::vector<Evidence*>& evs, double alpha, Correction how) {
  size_t m = evs.size();
  if (!m) return;
  if (how == Correction::kNone || m == 1) {
    for (auto* e : evs) e->alpha = alpha;
  } else if (how == Correction::kBonferroni) {
    for (auto* e : evs) e->alpha = alpha / double(m);
  } else {  // Benjamini-Hochberg: reject the k smallest, k = max{i : p_(i) <= i/m alpha}
    std::vector<Evidence*> sorted = evs;
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->p_value < b->p_value; });
    size_t k = 0;
    for (size_t i = 0; i < m; ++i)
      if (sorted[i]->p_value <= double(i + 1) / double(m) * alpha) k = i + 1;
    double thr = double(k) / double(m) * alpha;
    for (auto* e : evs) e->alpha = k ? thr : alpha / double(m);
  }
  for (auto* e : evs) e->significant = e->p_value <= e->alpha;
}

std::string key_of(const LabelMap& m) {
  std::string k;
  for (auto& [a, b] : m) k += a + "=" + b + ",";
  return k;
}

}  // namespace

std::vector<AlertEvent> Evaluator::evaluate(int64_t now, bool force_all) {
  std::vector<AlertEvent> events;
  saw_data_ = false;
  for (size_t gi = 0; gi < rules_.groups.size(); ++gi) {
    const RuleGroup& g = rules_.groups[gi];
    if (!force_all && next_eval_[gi] != std::numeric_limits<int64_t>::min() && now < next_eval_[gi]) continue;
    next_eval_[gi] = (now / g.interval_ms + 1) * g.interval_ms;
    for (size_t ri = 0; ri < g.rules.size(); ++ri) {
      try {
        evaluate_rule(gi, ri, now, events);
        health_[gi][ri].error.clear();
      } catch (const std::exception& e) {
        // An internal failure of one rule must not stop the others; it is counted and shown.
        ++failures_;
        health_[gi][ri].error = e.what();
      }
    }
  }
  return events;
}

void Evaluator::evaluate_rule(size_t gi, size_t ri, int64_t now, std::vector<AlertEvent>& events) {
  const auto& names = store_.label_names();
  const RuleGroup& g = rules_.groups[gi];
  {
    {
      auto t0 = std::chrono::steady_clock::now();
      const Rule& rule = g.rules[ri];
      ++evaluations_;
      std::vector<int> only = {rule.cond.metric};
      if (rule.primary) only.push_back(rule.primary->metric);
      // Merge windows per group key, per side.
      std::map<LabelMap, std::pair<SideAgg, SideAgg>> groups;
      for (auto& sp : store_.series()) {
        const Series& s = *sp;
        if (!matches(s, names, g.match)) continue;
        LabelMap key;
        for (auto& b : g.by) key[b] = s.labels[size_t(std::find(names.begin(), names.end(), b) - names.begin())];
        for (int side = 0; side < 2; ++side) {
          const WindowSpec& w = side == 0 ? rule.current : rule.baseline;
          if (!matches(s, names, w.cohort)) continue;
          int64_t end = now - w.offset_ms;
          WindowAgg agg = store_.query(s, end, w.window_ms, &only);
          if (!agg.records) continue;
          auto& slot = groups[key];
          SideAgg& sa = side == 0 ? slot.first : slot.second;
          if (sa.agg.props.empty()) sa.agg = WindowAgg(metrics_.size());
          sa.agg.merge(agg);
          sa.series.push_back(&s);
        }
      }
      if (!groups.empty()) saw_data_ = true;
      // Evidence per group key, then the correction across the keys tested.
      struct Row {
        LabelMap key;
        Evidence ev;
        std::optional<Evidence> primary;
        const SideAgg* cur;
      };
      std::vector<Row> rows;
      for (auto& [key, sides] : groups) {
        // A group with no baseline data yet is reported (its current value), never tested.
        if (sides.first.agg.props.empty()) continue;
        if (sides.second.agg.props.empty()) sides.second.agg = WindowAgg(metrics_.size());
        Row row{key, evidence_for(rule.cond, sides.first.agg, sides.second.agg, rule.min_samples, metrics_), std::nullopt, &sides.first};
        if (rule.primary) row.primary = evidence_for(*rule.primary, sides.first.agg, sides.second.agg, rule.min_samples, metrics_);
        rows.push_back(std::move(row));
      }
      std::vector<Evidence*> tested, tested_primary;
      for (auto& r : rows) {
        if (r.ev.tested) tested.push_back(&r.ev);
        if (r.primary && r.primary->tested) tested_primary.push_back(&*r.primary);
      }
      // Sequential tests use the running minimum of the always-valid p-value per alert.
      auto alert_key = [&](const LabelMap& k) { return g.name + "/" + rule.alert + "/" + key_of(k); };
      if (rule.cond.test.kind == TestKind::kSequential)
        for (auto& r : rows)
          if (auto it = alerts_.find(alert_key(r.key)); it != alerts_.end()) r.ev.p_value = std::min(r.ev.p_value, it->second.min_p);
      correct(tested, rule.cond.test.alpha, g.correction);
      if (rule.primary) correct(tested_primary, rule.primary->test.alpha, g.correction);

      RuleHealth& h = health_[gi][ri];
      h.last.clear();
      h.groups_tested = tested.size();
      h.last_eval_ms = now;
      for (auto& r : rows) {
        h.last.emplace_back(r.key, r.ev);
        bool active = r.ev.tested && r.ev.significant && r.ev.meets_effect;
        if (r.primary) active = active && r.primary->tested && r.primary->significant && r.primary->meets_effect;
        std::string k = alert_key(r.key);
        auto it = alerts_.find(k);
        if (it == alerts_.end()) {
          if (!active) continue;
          Alert a;
          a.rule = rule.alert;
          a.group_index = gi;
          a.rule_index = ri;
          it = alerts_.emplace(k, std::move(a)).first;
        }
        Alert& a = it->second;
        a.last_eval = now;
        if (rule.cond.test.kind == TestKind::kSequential) a.min_p = std::min(a.min_p, r.ev.p_value);
        // Labels: the group's, the rule's, alertname, severity (critical once the effect reaches it).
        LabelMap labels = r.key;
        for (auto& [lk, lv] : rule.labels) labels[lk] = lv;
        labels["alertname"] = rule.alert;
        if (!labels.count("severity")) labels["severity"] = "warning";
        if (rule.critical.any() && meets(rule.critical, r.ev.effect, r.ev.relative, rule.cond.test.alternative)) labels["severity"] = "critical";
        bool recovering = rule.recovery.any() && r.ev.tested && meets(rule.recovery, r.ev.effect, r.ev.relative, rule.cond.test.alternative);
        // Labels are an alert's identity (as in Prometheus): when they change while it fires
        // (severity escalates or de-escalates), the old alert resolves and the new one fires.
        bool relabel = active && a.state == AlertState::kFiring && labels != a.labels;
        if (relabel) {
          a.resolved_at = now;
          for (auto& [ak, av] : rule.annotations) a.annotations[ak] = render_template(av, a);
          events.push_back({now, "resolved", a});
        }
        if (active || a.state == AlertState::kInactive) {
          a.labels = labels;
          a.evidence = r.ev;
          a.primary = r.primary;
        }
        if (relabel) {
          for (auto& [ak, av] : rule.annotations) a.annotations[ak] = render_template(av, a);
          events.push_back({now, "firing", a});
        }
        auto snapshot_exemplars = [&]() {
          a.exemplars.clear();
          std::vector<Store::ExemplarOut> found, all;
          // Examples of the regression: successes / large values when the metric went up.
          bool largest = rule.cond.test.alternative == stats::Alternative::kGreater ||
                         (rule.cond.test.alternative == stats::Alternative::kTwoSided && a.evidence.effect >= 0);
          for (const Series* s : r.cur->series) {
            store_.exemplars(*s, rule.cond.metric, now - rule.current.window_ms, now, largest, found);
            all.insert(all.end(), found.begin(), found.end());
          }
          bool prop = metrics_[size_t(rule.cond.metric)].kind == MetricKind::kProportion;
          std::sort(all.begin(), all.end(), [&](auto& x, auto& y) {
            if (prop) return x.slot->ts_ms > y.slot->ts_ms;
            return largest ? x.value > y.value : x.value < y.value;
          });
          for (size_t i = 0; i < all.size() && a.exemplars.size() < 5; ++i) {
            const ExemplarSlot& e = *all[i].slot;
            a.exemplars.push_back({std::string(e.id, e.id_len), e.ts_ms, store_.topics()[e.topic], e.partition, e.offset, e.line, all[i].value});
          }
        };
        auto emit = [&](const char* kind) {
          for (auto& [ak, av] : rule.annotations) a.annotations[ak] = render_template(av, a);
          events.push_back({now, kind, a});
        };
        switch (a.state) {
          case AlertState::kInactive:
            if (!active) break;
            a.active_at = now;
            a.last_active = now;
            snapshot_exemplars();
            if (rule.for_ms == 0) {
              a.state = AlertState::kFiring;
              a.fired_at = now;
              emit("firing");
            } else {
              a.state = AlertState::kPending;
              emit("pending");
            }
            break;
          case AlertState::kPending:
            if (!active) {
              a.state = AlertState::kInactive;
              break;
            }
            a.last_active = now;
            if (now - a.active_at >= rule.for_ms) {
              a.state = AlertState::kFiring;
              a.fired_at = now;
              snapshot_exemplars();
              emit("firing");
            }
            break;
          case AlertState::kFiring:
            if (active) {
              a.last_active = now;
              break;
            }
            if (now - a.last_active < rule.keep_firing_for_ms || recovering) break;
            a.state = AlertState::kInactive;
            a.resolved_at = now;
            a.evidence = r.ev;
            emit("resolved");
            break;
        }
        if (a.state == AlertState::kInactive) alerts_.erase(it);
      }
      // Alerts whose group no longer has data in either window: resolve them too.
      for (auto it = alerts_.begin(); it != alerts_.end();) {
        Alert& a = it->second;
        if (a.group_index == gi && a.rule_index == ri && a.last_eval != now) {
          if (a.state == AlertState::kFiring && now - a.last_active >= rule.keep_firing_for_ms) {
            a.resolved_at = now;
            for (auto& [ak, av] : rule.annotations) a.annotations[ak] = render_template(av, a);
            events.push_back({now, "resolved", a});
            it = alerts_.erase(it);
            continue;
          }
          if (a.state == AlertState::kPending) {
            it = alerts_.erase(it);
            continue;
          }
        }
        ++it;
      }
      h.last_duration_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
  }
}

}  // namespace gw
