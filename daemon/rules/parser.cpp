// Rule files: parsing and validation. Errors are collected (all of them, not the first), each
// with file, line, column and the key path, e.g.
//   rules/chat.yaml:12:17: groups[0] "chat", rules[1] "RefusalRateUp": metric: unknown metric "refusals"; known: ...
#include <yaml-cpp/yaml.h>

#include "guardwatch/yaml_util.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "guardwatch/extract.hpp"
#include "guardwatch/rules.hpp"

namespace gw {
namespace fs = std::filesystem;

size_t RuleSet::rule_count() const {
  size_t n = 0;
  for (auto& g : groups) n += g.rules.size();
  return n;
}

std::string expiry_warning(const Config& cfg, const RuleSet& rules) {
  const int64_t exp = cfg.expire_after_ms(), reach = rules.reach_ms();
  if (exp <= 0 || exp >= reach) return "";
  return "series.expire_after (" + format_duration(exp) + ") is shorter than the rules' longest window plus offset (" +
         format_duration(reach) + "): series idle that long are dropped while those rules still read their data";
}

int64_t RuleSet::reach_ms() const {
  int64_t m = 0;
  for (auto& g : groups)
    for (auto& r : g.rules) m = std::max({m, r.current.window_ms + r.current.offset_ms, r.baseline.window_ms + r.baseline.offset_ms});
  return m;
}

namespace {

std::vector<std::string> expand_paths(const std::vector<std::string>& paths, std::vector<ConfigError>& errors) {
  std::vector<std::string> files;
  for (auto& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (auto& e : fs::directory_iterator(p, ec)) {
        auto ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml")) found.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(p, ec)) {
      files.push_back(p);
    } else {
      errors.push_back({p, 0, 0, "", "no such rule file or directory"});
    }
  }
  return files;
}

struct Ctx {
  std::string file;
  std::vector<ConfigError>& errors;
  std::string prefix;  // groups[0] "chat", rules[1] "X": 
  void err(const YAML::Node& n, const std::string& key, const std::string& msg) {
    ConfigError e{file, 0, 0, prefix.empty() ? key : prefix + key, msg};
    if (n.IsDefined() && !n.Mark().is_null()) {
      e.line = n.Mark().line + 1;
      e.column = n.Mark().column + 1;
    }
    errors.push_back(std::move(e));
  }
  void keys(const YAML::Node& map, const std::string& where, std::initializer_list<const char*> known) {
    if (!gw::yaml::is_map(map)) return;
    for (auto it = map.begin(); it != map.end(); ++it) {
      std::string k = it->first.Scalar();
      bool ok = false;
      std::string list;
      for (auto* kk : known) {
        ok |= k == kk;
        list += std::string(list.empty() ? "" : ", ") + kk;
      }
      if (!ok) err(it->first, where.empty() ? k : where + "." + k, "unknown key \"" + k + "\"; known: " + list);
    }
  }
  std::optional<int64_t> duration(const YAML::Node& n, const std::string& key) {
    if (!gw::yaml::is_scalar(n)) {
      err(n, key, "expected a duration like 15m");
      return std::nullopt;
    }
    auto d = parse_duration(n.Scalar());
    if (!d) err(n, key, "expected a duration like 90s, 15m, 2h or 1d (at most 36525d), got \"" + n.Scalar() + "\"");
    return d;
  }
  std::optional<double> number(const YAML::Node& n, const std::string& key, double lo, double hi) {
    try {
      double v = n.as<double>();
      if (v >= lo && v <= hi) return v;
    } catch (const YAML::Exception&) {
    }
    std::ostringstream o;
    o << "expected a number in [" << lo << ", " << hi << "]";
    err(n, key, o.str());
    return std::nullopt;
  }
  LabelMap labels(const YAML::Node& n, const std::string& key) {
    LabelMap m;
    if (!n.IsDefined() || gw::yaml::is_null(n)) return m;
    if (!gw::yaml::is_map(n)) {
      err(n, key, "expected a mapping of label to value");
      return m;
    }
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (!gw::yaml::is_scalar(it->second)) err(it->second, key + "." + it->first.Scalar(), "expected a string");
      else m[it->first.Scalar()] = it->second.Scalar();
    }
    return m;
  }
};

void check_labels(Ctx& c, const YAML::Node& n, const std::string& key, const LabelMap& m, const std::vector<std::string>& known) {
  for (auto& [k, v] : m)
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (auto& l : known) list += (list.empty() ? "" : ", ") + l;
      c.err(n, key, "unknown label \"" + k + "\"; series labels: " + list);
    }
}

Effect parse_effect(Ctx& c, const YAML::Node& n, const std::string& key) {
  Effect e;
  if (!n.IsDefined()) return e;
  if (!gw::yaml::is_map(n)) {
    c.err(n, key, "expected {absolute: X} and/or {relative: Y}");
    return e;
  }
  c.keys(n, key, {"absolute", "relative"});
  if (n["absolute"].IsDefined()) e.absolute = c.number(n["absolute"], key + ".absolute", 0, 1e12);
  if (n["relative"].IsDefined()) e.relative = c.number(n["relative"], key + ".relative", 0, 1e6);
  return e;
}

WindowSpec parse_window(Ctx& c, const YAML::Node& n, const std::string& key, const std::vector<std::string>& labels) {
  WindowSpec w;
  if (!gw::yaml::is_map(n)) {
    c.err(n, key, "expected {window: DURATION, offset: DURATION} or {window: DURATION, cohort: {label: value}}");
    return w;
  }
  c.keys(n, key, {"window", "offset", "cohort"});
  if (!n["window"].IsDefined()) c.err(n, key, "missing key \"window\"");
  else if (auto d = c.duration(n["window"], key + ".window")) w.window_ms = *d;
  if (n["offset"].IsDefined())
    if (auto d = c.duration(n["offset"], key + ".offset")) w.offset_ms = *d;
  w.cohort = c.labels(n["cohort"], key + ".cohort");
  check_labels(c, n["cohort"], key + ".cohort", w.cohort, labels);
  return w;
}

std::optional<Condition> parse_condition(Ctx& c, const YAML::Node& n, const std::string& prefix, const MetricRegistry& metrics,
                                         const std::vector<CustomMetric>& custom) {
  Condition cond;
  const YAML::Node m = n["metric"];
  if (!m.IsDefined()) {
    c.err(n, prefix + "metric", "missing key \"metric\"");
    return std::nullopt;
  }
  cond.metric_name = m.Scalar();
  cond.metric = metrics.find(cond.metric_name);
  MetricKind kind = MetricKind::kProportion;
  if (cond.metric < 0) {
    auto it = std::find_if(custom.begin(), custom.end(), [&](const CustomMetric& cm) { return cm.name == cond.metric_name; });
    if (it == custom.end()) {
      std::string known = metrics.known_names();
      for (auto& cm : custom) known += ", " + cm.name;
      c.err(m, prefix + "metric", "unknown metric \"" + cond.metric_name + "\"; known: " + known);
      return std::nullopt;
    }
    kind = it->kind;
    cond.metric = int(metrics.size() + size_t(it - custom.begin()));  // resolved again after registration
  } else {
    kind = metrics[size_t(cond.metric)].kind;
  }
  const YAML::Node t = n["test"];
  cond.test.kind = kind == MetricKind::kProportion ? TestKind::kTwoProportion : TestKind::kWelch;
  if (t.IsDefined()) {
    if (!gw::yaml::is_map(t)) {
      c.err(t, prefix + "test", "expected {kind, alternative, alpha}");
    } else {
      c.keys(t, prefix + "test", {"kind", "alternative", "alpha", "quantile", "tau"});
      if (t["kind"].IsDefined()) {
        std::string k = t["kind"].Scalar();
        if (k == "two_proportion") cond.test.kind = TestKind::kTwoProportion;
        else if (k == "welch") cond.test.kind = TestKind::kWelch;
        else if (k == "quantile_shift") cond.test.kind = TestKind::kQuantileShift;
        else if (k == "sequential") cond.test.kind = TestKind::kSequential;
        else c.err(t["kind"], prefix + "test.kind", "unknown test \"" + k + "\"; known: two_proportion, welch, quantile_shift, sequential");
      }
      bool prop = kind == MetricKind::kProportion;
      if (prop && (cond.test.kind == TestKind::kWelch || cond.test.kind == TestKind::kQuantileShift))
        c.err(t["kind"], prefix + "test.kind", "\"" + cond.metric_name + "\" is a proportion: use two_proportion or sequential");
      if (!prop && cond.test.kind == TestKind::kTwoProportion)
        c.err(t["kind"], prefix + "test.kind", "\"" + cond.metric_name + "\" is a distribution: use welch, quantile_shift or sequential");
      if (t["alternative"].IsDefined()) {
        std::string a = t["alternative"].Scalar();
        if (a == "greater") cond.test.alternative = stats::Alternative::kGreater;
        else if (a == "less") cond.test.alternative = stats::Alternative::kLess;
        else if (a == "two_sided" || a == "two-sided") cond.test.alternative = stats::Alternative::kTwoSided;
        else c.err(t["alternative"], prefix + "test.alternative", "expected greater, less or two_sided");
      }
      if (t["alpha"].IsDefined())
        if (auto v = c.number(t["alpha"], prefix + "test.alpha", 1e-12, 0.5)) cond.test.alpha = *v;
      if (t["quantile"].IsDefined())
        if (auto v = c.number(t["quantile"], prefix + "test.quantile", 0.01, 0.999)) cond.test.quantile = *v;
      if (t["tau"].IsDefined())
        if (auto v = c.number(t["tau"], prefix + "test.tau", 1e-12, 1e12)) cond.test.tau = *v;
    }
  }
  cond.min_effect = parse_effect(c, n["min_effect"], prefix + "min_effect");
  return cond;
}

CustomMetric parse_custom(Ctx& c, const YAML::Node& n, const std::string& key) {
  CustomMetric cm;
  if (!gw::yaml::is_map(n)) {  // a scalar or list item: subscripting it would throw (found by fuzzing)
    c.err(n, key, "expected a custom metric: {name, kind, pattern | field, ...}");
    return cm;
  }
  c.keys(n, key, {"name", "kind", "pattern", "field", "equals", "not_equals", "lt", "le", "gt", "ge", "present", "help"});
  cm.where = {c.file, n.Mark().line + 1, n.Mark().column + 1, key, ""};
  if (!gw::yaml::is_scalar(n["name"])) c.err(n, key, "missing key \"name\"");
  else cm.name = n["name"].Scalar();
  std::string kind = gw::yaml::is_scalar(n["kind"]) ? n["kind"].Scalar() : "proportion";
  if (kind == "distribution") cm.kind = MetricKind::kDistribution;
  else if (kind != "proportion") c.err(n["kind"], key + ".kind", "expected proportion or distribution");
  if (gw::yaml::is_scalar(n["pattern"])) cm.pattern = n["pattern"].Scalar();
  if (gw::yaml::is_scalar(n["field"])) {
    cm.field = n["field"].Scalar();
    if (cm.field.empty() || cm.field[0] != '/') c.err(n["field"], key + ".field", "a JSON pointer starts with '/'");
  }
  static const std::pair<const char*, CustomMetric::Op> ops[] = {{"equals", CustomMetric::Op::kEq}, {"not_equals", CustomMetric::Op::kNe},
                                                                 {"lt", CustomMetric::Op::kLt},     {"le", CustomMetric::Op::kLe},
                                                                 {"gt", CustomMetric::Op::kGt},     {"ge", CustomMetric::Op::kGe},
                                                                 {"present", CustomMetric::Op::kPresent}};
  for (auto& [name, op] : ops)
    if (n[name].IsDefined()) {
      if (cm.op != CustomMetric::Op::kNone) c.err(n[name], key + "." + name, "one comparison per metric");
      cm.op = op;
      cm.operand = gw::yaml::is_scalar(n[name]) ? n[name].Scalar() : "";
    }
  if (cm.kind == MetricKind::kProportion) {
    if (cm.pattern.empty() == (cm.field.empty() || cm.op == CustomMetric::Op::kNone))
      c.err(n, key, "a proportion needs either `pattern` (on the response) or `field` with one of equals, not_equals, lt, le, gt, ge, present");
  } else {
    if (cm.field.empty() || !cm.pattern.empty() || cm.op != CustomMetric::Op::kNone)
      c.err(n, key, "a distribution needs `field` (a numeric JSON field) and nothing else");
  }
  if (!cm.pattern.empty())
    if (auto m = Matcher::check_regex(cm.pattern); !m.empty()) c.err(n["pattern"], key + ".pattern", m);
  return cm;
}

void parse_file(const std::string& file, const MetricRegistry& metrics, const std::vector<std::string>& labels, int64_t retention,
                RuleSet& out, std::vector<ConfigError>& errors, bool custom_only, bool skip_metrics = false) {
  Ctx c{file, errors, ""};
  YAML::Node root;
  try {
    std::ifstream f(file);
    std::stringstream ss;
    ss << f.rdbuf();
    root = YAML::Load(ss.str());
  } catch (const YAML::Exception& e) {
    if (!skip_metrics) errors.push_back({file, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax error: " + e.msg});
    return;
  }
  // load_rules reads each file twice (custom metrics first, then groups, with skip_metrics):
  // what concerns the whole file is reported by the first reading only.
  const YAML::Node& r = root;
  if (gw::yaml::is_null(r)) return;
  if (!gw::yaml::is_map(r)) {
    if (!skip_metrics) c.err(r, "", "a rule file is a mapping with `groups` (and optionally `metrics`)");
    return;
  }
  if (!skip_metrics) c.keys(r, "", {"groups", "metrics"});
  const YAML::Node ms = r["metrics"];
  if (ms.IsDefined() && !skip_metrics) {
    if (!gw::yaml::is_seq(ms)) c.err(ms, "metrics", "expected a list of custom metrics");
    else
      for (size_t i = 0; i < ms.size(); ++i) {
        CustomMetric cm = parse_custom(c, ms[i], "metrics[" + std::to_string(i) + "]");
        if (!cm.name.empty()) {
          bool dup = metrics.find(cm.name) >= 0 ||
                     std::any_of(out.metrics.begin(), out.metrics.end(), [&](const CustomMetric& o) { return o.name == cm.name; });
          if (dup) c.err(ms[i]["name"], "metrics[" + std::to_string(i) + "].name", "metric \"" + cm.name + "\" is already defined");
          else out.metrics.push_back(cm);
        }
      }
  }
  if (custom_only) return;
  const YAML::Node gs = r["groups"];
  if (!gs.IsDefined()) return;
  if (!gw::yaml::is_seq(gs)) {
    c.err(gs, "groups", "expected a list of groups");
    return;
  }
  for (size_t gi = 0; gi < gs.size(); ++gi) {
    const YAML::Node g = gs[gi];
    std::string gkey = "groups[" + std::to_string(gi) + "]";
    RuleGroup group;
    group.file = file;
    if (!gw::yaml::is_map(g)) {
      c.err(g, gkey, "expected a mapping");
      continue;
    }
    c.keys(g, gkey, {"name", "interval", "match", "by", "correction", "rules"});
    if (!gw::yaml::is_scalar(g["name"])) c.err(g, gkey, "missing key \"name\"");
    else group.name = g["name"].Scalar();
    for (auto& other : out.groups)
      if (other.name == group.name && other.file == file) c.err(g["name"], gkey + ".name", "duplicate group name \"" + group.name + "\"");
    c.prefix = gkey + " \"" + group.name + "\": ";
    if (g["interval"].IsDefined())
      if (auto d = c.duration(g["interval"], "interval")) group.interval_ms = std::max<int64_t>(*d, 1000);
    group.match = c.labels(g["match"], "match");
    check_labels(c, g["match"], "match", group.match, labels);
    if (g["by"].IsDefined()) {
      if (!gw::yaml::is_seq(g["by"])) c.err(g["by"], "by", "expected a list of labels");
      else
        for (size_t i = 0; i < g["by"].size(); ++i) {
          std::string l = g["by"][i].Scalar();
          if (std::find(labels.begin(), labels.end(), l) == labels.end()) check_labels(c, g["by"][i], "by", {{l, ""}}, labels);
          else group.by.push_back(l);
        }
    }
    if (g["correction"].IsDefined()) {
      std::string v = g["correction"].Scalar();
      if (v == "none") group.correction = Correction::kNone;
      else if (v == "bonferroni") group.correction = Correction::kBonferroni;
      else if (v == "bh" || v == "benjamini_hochberg") group.correction = Correction::kBenjaminiHochberg;
      else c.err(g["correction"], "correction", "expected bh (Benjamini-Hochberg), bonferroni or none");
    }
    const YAML::Node rs = g["rules"];
    if (!gw::yaml::is_seq(rs)) {
      c.err(rs.IsDefined() ? rs : g, "rules", "expected a list of rules");
      continue;
    }
    std::string gprefix = c.prefix;
    for (size_t ri = 0; ri < rs.size(); ++ri) {
      const YAML::Node rn = rs[ri];
      Rule rule;
      std::string rkey = "rules[" + std::to_string(ri) + "]";
      rule.where = {file, rn.Mark().line + 1, rn.Mark().column + 1, gkey + "." + rkey, ""};
      if (!gw::yaml::is_map(rn)) {
        c.err(rn, rkey, "expected a mapping");
        continue;
      }
      if (!gw::yaml::is_scalar(rn["alert"])) c.err(rn, rkey, "missing key \"alert\"");
      else rule.alert = rn["alert"].Scalar();
      c.prefix = gprefix + rkey + " \"" + rule.alert + "\": ";
      c.keys(rn, "", {"alert", "metric", "test", "min_effect", "tax", "current", "baseline", "min_samples", "recovery", "critical", "for",
                      "keep_firing_for", "labels", "annotations"});
      bool bad = false;  // keep checking the rest of the rule, but do not keep the rule
      const YAML::Node tax = rn["tax"];
      if (tax.IsDefined()) {
        if (rn["metric"].IsDefined()) c.err(rn["metric"], "metric", "an alignment-tax rule names its metrics under tax.primary and tax.guardrail");
        if (!gw::yaml::is_map(tax) || !gw::yaml::is_map(tax["primary"]) || !gw::yaml::is_map(tax["guardrail"])) {
          c.err(tax, "tax", "expected {primary: {metric, test, min_effect}, guardrail: {metric, test, min_effect}}");
          continue;
        }
        c.keys(tax, "tax", {"primary", "guardrail"});
        c.keys(tax["primary"], "tax.primary", {"metric", "test", "min_effect"});
        c.keys(tax["guardrail"], "tax.guardrail", {"metric", "test", "min_effect"});
        auto p = parse_condition(c, tax["primary"], "tax.primary.", metrics, out.metrics);
        auto gr = parse_condition(c, tax["guardrail"], "tax.guardrail.", metrics, out.metrics);
        bad = !p || !gr;
        if (p) rule.primary = *p;
        if (gr) rule.cond = *gr;
      } else {
        auto cond = parse_condition(c, rn, "", metrics, out.metrics);
        bad = !cond;
        if (cond) rule.cond = *cond;
      }
      if (!rn["current"].IsDefined()) c.err(rn, "current", "missing key \"current\"");
      else rule.current = parse_window(c, rn["current"], "current", labels);
      if (!rn["baseline"].IsDefined()) c.err(rn, "baseline", "missing key \"baseline\"");
      else rule.baseline = parse_window(c, rn["baseline"], "baseline", labels);
      if (rule.current.offset_ms == 0 && rule.baseline.offset_ms == 0 && rule.current.cohort.empty() && rule.baseline.cohort.empty() &&
          rule.current.window_ms >= rule.baseline.window_ms && rn["baseline"].IsDefined())
        c.err(rn["baseline"], "baseline", "the baseline overlaps the current window: give it an offset, a longer window, or a cohort");
      for (auto* w : {&rule.current, &rule.baseline})
        if (w->window_ms + w->offset_ms > retention)
          c.err(rn[w == &rule.current ? "current" : "baseline"], w == &rule.current ? "current" : "baseline",
                "window + offset (" + format_duration(w->window_ms + w->offset_ms) + ") is longer than the retained history (" +
                    format_duration(retention) + ", windows.tiers)");
      if (rn["min_samples"].IsDefined())
        if (auto v = c.number(rn["min_samples"], "min_samples", 1, 1e12)) rule.min_samples = uint64_t(*v);
      rule.recovery = parse_effect(c, rn["recovery"], "recovery");
      rule.critical = parse_effect(c, rn["critical"], "critical");
      if (rn["for"].IsDefined())
        if (auto d = c.duration(rn["for"], "for")) rule.for_ms = *d;
      if (rn["keep_firing_for"].IsDefined())
        if (auto d = c.duration(rn["keep_firing_for"], "keep_firing_for")) rule.keep_firing_for_ms = *d;
      rule.labels = c.labels(rn["labels"], "labels");
      rule.annotations = c.labels(rn["annotations"], "annotations");
      if (auto it = rule.labels.find("severity"); it != rule.labels.end() && it->second != "critical" && it->second != "warning" &&
                                                  it->second != "info")
        c.err(rn["labels"]["severity"], "labels.severity", "expected critical, warning or info");
      if (!bad) group.rules.push_back(std::move(rule));
    }
    c.prefix.clear();
    out.groups.push_back(std::move(group));
  }
}

}  // namespace

std::vector<CustomMetric> load_custom_metrics(const std::vector<std::string>& paths, std::vector<ConfigError>& errors) {
  RuleSet rs;
  MetricRegistry builtin;
  for (auto& f : expand_paths(paths, errors)) parse_file(f, builtin, {}, 0, rs, errors, true);
  return rs.metrics;
}

RuleLoad load_rules(const std::vector<std::string>& paths, const MetricRegistry& metrics, const std::vector<std::string>& label_names,
                    int64_t retention_ms) {
  RuleLoad r;
  r.rules.files = expand_paths(paths, r.errors);
  // Custom metrics are known across files: declare them all first.
  RuleSet declared;
  MetricRegistry builtin;  // duplicates are judged against the built-ins, not the registered customs
  for (auto& f : r.rules.files) parse_file(f, builtin, label_names, retention_ms, declared, r.errors, true);
  r.rules.metrics = declared.metrics;
  for (auto& f : r.rules.files) {
    RuleSet one;
    one.metrics = declared.metrics;
    parse_file(f, metrics, label_names, retention_ms, one, r.errors, false, true);
    for (auto& g : one.groups) r.rules.groups.push_back(std::move(g));
  }
  // Metric ids of custom metrics: by name in the registry (registered by the engine).
  for (auto& g : r.rules.groups)
    for (auto& rule : g.rules)
      for (Condition* c : {&rule.cond, rule.primary ? &*rule.primary : nullptr})
        if (c) c->metric = metrics.find(c->metric_name);
  return r;
}

}  // namespace gw
