// `guardwatch test`: rule unit tests in the spirit of `promtool test rules`. Each test feeds
// records (inline, a JSONL file, or a generated scenario) through a fresh engine in event time,
// and checks which alerts fire at given evaluation times.
#include <yaml-cpp/yaml.h>

#include "guardwatch/yaml_util.hpp"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "guardwatch/decode.hpp"
#include "guardwatch/generate.hpp"
#include "guardwatch/runtime.hpp"
#include "guardwatch/source.hpp"

namespace gw {
namespace fs = std::filesystem;

namespace {

std::string yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      std::string s = "{";
      bool first = true;
      for (auto it = n.begin(); it != n.end(); ++it) {
        s += (first ? "\"" : ",\"") + it->first.Scalar() + "\":" + yaml_to_json(it->second);
        first = false;
      }
      return s + "}";
    }
    case YAML::NodeType::Sequence: {
      std::string s = "[";
      for (size_t i = 0; i < n.size(); ++i) s += (i ? "," : "") + yaml_to_json(n[i]);
      return s + "]";
    }
    case YAML::NodeType::Scalar: {
      const std::string& v = n.Scalar();
      if (n.Tag() != "!" && !v.empty()) {
        char* end = nullptr;
        std::strtod(v.c_str(), &end);
        if (end && *end == '\0') return v;
        if (v == "true" || v == "false" || v == "null") return v;
      }
      nlohmann::json j = v;
      return j.dump();
    }
    default: return "null";
  }
}

std::string labels_str(const LabelMap& m) {
  std::string s = "{";
  for (auto& [k, v] : m) s += (s.size() > 1 ? ", " : "") + k + "=\"" + v + "\"";
  return s + "}";
}

}  // namespace

int run_rule_tests(const std::vector<std::string>& files, const std::string& config_path) {
  int failures = 0, cases = 0;
  for (auto& file : files) {
    YAML::Node root;
    try {
      root = YAML::LoadFile(file);
    } catch (const YAML::Exception& e) {
      std::printf("%s:%d:%d: YAML syntax error: %s\n", file.c_str(), e.mark.line + 1, e.mark.column + 1, e.msg.c_str());
      ++failures;
      continue;
    }
    fs::path dir = fs::path(file).parent_path();
    auto rel = [&](const std::string& p) { return fs::path(p).is_absolute() ? p : (dir / p).string(); };
    ConfigResult cr = config_path.empty() ? config_from_yaml("", "") : load_config(config_path);
    if (gw::yaml::is_scalar(root["config"])) cr = load_config(rel(root["config"].Scalar()));
    if (!cr.ok()) {
      for (auto& e : cr.errors) std::printf("%s\n", e.str().c_str());
      ++failures;
      continue;
    }
    Config cfg = cr.config;
    cfg.rule_paths.clear();
    if (gw::yaml::is_seq(root["rule_files"]))
      for (size_t i = 0; i < root["rule_files"].size(); ++i) cfg.rule_paths.push_back(rel(root["rule_files"][i].Scalar()));
    std::printf("Unit testing: %s\n", file.c_str());
    const YAML::Node tests = root["tests"];
    if (!gw::yaml::is_seq(tests)) {
      std::printf("  FAILED: %s: `tests` must be a list\n", file.c_str());
      ++failures;
      continue;
    }
    for (size_t ti = 0; ti < tests.size(); ++ti) {
      const YAML::Node t = tests[ti];
      std::string name = gw::yaml::is_scalar(t["name"]) ? t["name"].Scalar() : "tests[" + std::to_string(ti) + "]";
      ++cases;
      Engine engine(cfg, nullptr, custom_metrics_for(cfg));
      RuleRuntime rt(engine);
      auto errs = rt.load();
      if (!errs.empty()) {
        std::printf("  FAILED: %s: the rules do not load:\n", name.c_str());
        for (auto& e : errs) std::printf("    %s\n", e.str().c_str());
        ++failures;
        continue;
      }
      std::vector<AlertEvent> events;
      rt.on_event([&](const AlertEvent& e) { events.push_back(e); });
      engine.on_applied([&] { rt.advance(engine.watermark_ms()); });
      // Input.
      const YAML::Node& tc = t;
      YAML::Node in = tc["input"];
      if (!in.IsDefined() || !gw::yaml::is_map(in)) {
        std::printf("  FAILED: %s: missing `input` (records, file or generate)\n", name.c_str());
        ++failures;
        continue;
      }
      int64_t start_ms = -1;
      SourcePos pos;
      if (gw::yaml::is_seq(in["records"])) {
        for (size_t i = 0; i < in["records"].size(); ++i) {
          pos.line = int64_t(i + 1);
          engine.ingest(yaml_to_json(in["records"][i]), pos);
        }
      }
      if (gw::yaml::is_scalar(in["file"])) {
        std::atomic<bool> stop{false};
        std::string why;
        try {
          if (!make_jsonl_source(rel(in["file"].Scalar()))->run(engine, stop)) why = "a read error (see the log)";
        } catch (const std::exception& e) {
          why = e.what();
        }
        if (!why.empty()) {
          std::printf("  FAILED: %s: input.file: %s\n", name.c_str(), why.c_str());
          ++failures;
          continue;
        }
      }
      if (in["generate"].IsDefined()) {
        Scenario sc;
        std::stringstream ss;
        ss << in["generate"];
        auto gerrs = scenario_from_yaml(ss.str(), file + " (tests[" + std::to_string(ti) + "].input.generate)", sc);
        if (!gerrs.empty()) {
          for (auto& e : gerrs) std::printf("  FAILED: %s: %s\n", name.c_str(), e.str().c_str());
          ++failures;
          continue;
        }
        start_ms = sc.start_ms;
        Generator gen(sc);
        GeneratedRecord rec;
        while (gen.next(rec)) engine.ingest(rec.json, pos);
      }
      rt.advance(engine.max_event_ms());
      if (start_ms < 0) start_ms = engine.max_event_ms() > 0 ? engine.max_event_ms() : 0;
      // Checks: alerts firing at eval_time, from the timeline.
      const YAML::Node checks = t["alert_rule_test"];
      bool ok = true;
      for (size_t ci = 0; gw::yaml::is_seq(checks) && ci < checks.size(); ++ci) {
        const YAML::Node c = checks[ci];
        std::string alertname = c["alertname"].Scalar();
        std::string et = c["eval_time"].Scalar();
        int64_t at = 0;
        if (!parse_rfc3339(et, at)) {
          auto d = parse_duration(et);
          if (!d) {
            std::printf("  FAILED: %s: eval_time \"%s\" is neither RFC 3339 nor a duration from the input's start\n", name.c_str(), et.c_str());
            ok = false;
            continue;
          }
          at = start_ms + *d;
        }
        // Replay the timeline to `at`.
        std::map<std::string, const Alert*> firing;
        for (auto& e : events) {
          if (e.ts_ms > at) break;
          if (e.alert.rule != alertname) continue;
          std::string k = labels_str(e.alert.labels);
          if (e.kind == "firing") firing[k] = &e.alert;
          else if (e.kind == "resolved") firing.erase(k);
        }
        std::vector<const Alert*> got;
        for (auto& [k, a] : firing) got.push_back(a);
        std::vector<LabelMap> exp;
        std::vector<LabelMap> exp_ann;
        const YAML::Node ea = c["exp_alerts"];
        for (size_t i = 0; gw::yaml::is_seq(ea) && i < ea.size(); ++i) {
          LabelMap l, an;
          if (gw::yaml::is_map(ea[i]["exp_labels"]))
            for (auto it = ea[i]["exp_labels"].begin(); it != ea[i]["exp_labels"].end(); ++it) l[it->first.Scalar()] = it->second.Scalar();
          if (gw::yaml::is_map(ea[i]["exp_annotations"]))
            for (auto it = ea[i]["exp_annotations"].begin(); it != ea[i]["exp_annotations"].end(); ++it)
              an[it->first.Scalar()] = it->second.Scalar();
          exp.push_back(l);
          exp_ann.push_back(an);
        }
        // Every expected alert matches a distinct firing alert (its labels a subset of the
        // alert's, its annotations equal); nothing else fires.
        std::vector<bool> used(got.size(), false);
        bool match = exp.size() == got.size();
        for (size_t i = 0; match && i < exp.size(); ++i) {
          bool found = false;
          for (size_t j = 0; j < got.size() && !found; ++j) {
            if (used[j]) continue;
            bool sub = true;
            for (auto& [k, v] : exp[i]) sub &= got[j]->labels.count(k) && got[j]->labels.at(k) == v;
            for (auto& [k, v] : exp_ann[i]) sub &= got[j]->annotations.count(k) && got[j]->annotations.at(k) == v;
            if (sub) found = used[j] = true;
          }
          match = found;
        }
        if (!match) {
          ok = false;
          std::printf("  FAILED: %s\n    alertname: %s, time: %s,\n        exp:[", name.c_str(), alertname.c_str(), et.c_str());
          for (size_t i = 0; i < exp.size(); ++i) std::printf("%s\n            labels: %s", i ? "," : "", labels_str(exp[i]).c_str());
          std::printf("],\n        got:[");
          for (size_t i = 0; i < got.size(); ++i)
            std::printf("%s\n            labels: %s effect=%.4g p=%.3g", i ? "," : "", labels_str(got[i]->labels).c_str(), got[i]->evidence.effect,
                        got[i]->evidence.p_value);
          std::printf("]\n");
        }
      }
      if (ok) std::printf("  PASSED: %s\n", name.c_str());
      else ++failures;
    }
  }
  std::printf("%d passed, %d failed\n", cases - failures, failures);
  return failures ? 1 : 0;
}

}  // namespace gw
