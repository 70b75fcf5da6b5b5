#include <yaml-cpp/yaml.h>

#include "guardwatch/yaml_util.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "guardwatch/decode.hpp"
#include "guardwatch/generate.hpp"

namespace gw {
namespace {

const char* const kWords[] = {
    "the", "model", "answer", "data", "system", "request", "value", "function", "result", "example", "first", "second",
    "because", "however", "therefore", "which", "should", "could", "would", "about", "between", "through", "during", "before",
    "after", "above", "below", "under", "again", "further", "then", "once", "here", "there", "when", "where", "why", "how",
    "all", "any", "both", "each", "few", "more", "most", "other", "some", "such", "only", "own", "same", "so", "than", "too",
    "very", "can", "will", "just", "now", "also", "into", "over", "time", "people", "year", "way", "day", "thing", "world",
    "life", "hand", "part", "place", "case", "week", "company", "number", "group", "problem", "fact", "important", "large",
    "small", "different", "possible", "available", "specific", "general", "recent", "common", "simple", "clear", "useful",
    "performance", "latency", "memory", "network", "database", "query", "index", "cache", "server", "client", "protocol",
    "library", "framework", "compiler", "kernel", "thread", "process", "signal", "buffer", "stream", "window", "metric",
    "distribution", "variance", "median", "sample", "estimate", "confidence", "interval", "hypothesis", "evidence",
    "analysis", "approach", "method", "solution", "step", "option", "setting", "configuration", "deployment", "version",
    "update", "change", "increase", "decrease", "improve", "reduce", "measure", "compare", "consider", "explain", "describe",
    "recipe", "history", "science", "energy", "climate", "travel", "health", "exercise", "budget", "invoice", "contract",
    "policy", "customer", "service", "support", "account", "password", "email", "message", "document", "report", "summary",
    "Berlin", "Paris", "Tokyo", "river", "mountain", "ocean", "forest", "city", "country", "language", "music", "art",
    "quickly", "carefully", "usually", "often", "rarely", "typically", "roughly", "exactly", "probably", "certainly",
    "résumé", "naïve", "café", "über", "straße", "niño", "façade", "coöperate", "élan", "déjà"};
constexpr size_t kNumWords = sizeof(kWords) / sizeof(kWords[0]);

const char* const kRefusals[] = {
    "I'm sorry, but I can't help with that.",
    "I can't assist with that request.",
    "I’m not able to help with that.",
    "As an AI language model, I cannot provide that information.",
    "I must decline this request.",
    "Sorry, I can't help with that.",
    "I am unable to provide instructions for that.",
    "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen.",
    "Je suis désolé, mais je ne peux pas vous aider avec cela.",
    "Lo siento, pero no puedo ayudarte con eso.",
    "Desculpe, mas não posso ajudar com isso.",
    "抱歉，我无法帮助你完成这个请求。",
};
constexpr size_t kNumRefusals = sizeof(kRefusals) / sizeof(kRefusals[0]);

const char* const kCitations[] = {
    " See https://en.wikipedia.org/wiki/Statistics for background.",
    " [1]\n\nSources:\n[1] https://docs.example.org/guide",
    " More in [the reference](https://example.com/ref).",
    " As reported in [2], the effect is consistent.",
    "\n\nReferences:\n- Smith et al., doi:10.1000/182",
};
constexpr size_t kNumCitations = sizeof(kCitations) / sizeof(kCitations[0]);

void json_escape(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default: out += c;
    }
  }
}

struct Key {
  const char* name;
  double Profile::*field;
};
const Key kKeys[] = {
    {"rate", &Profile::rate}, {"refusal_rate", &Profile::refusal_rate}, {"citation_rate", &Profile::citation_rate},
    {"truncation_rate", &Profile::truncation_rate}, {"error_rate", &Profile::error_rate}, {"empty_rate", &Profile::empty_rate},
    {"content_filter_rate", &Profile::content_filter_rate}, {"feedback_rate", &Profile::feedback_rate},
    {"negative_feedback_rate", &Profile::negative_feedback_rate}, {"latency_median_ms", &Profile::latency_median_ms},
    {"latency_sigma", &Profile::latency_sigma}, {"ttft_median_ms", &Profile::ttft_median_ms}, {"ttft_sigma", &Profile::ttft_sigma},
    {"chars_median", &Profile::chars_median}, {"chars_sigma", &Profile::chars_sigma}, {"chars_min", &Profile::chars_min},
    {"chars_max", &Profile::chars_max}, {"judge_mean", &Profile::judge_mean}, {"judge_sd", &Profile::judge_sd},
    {"prompt_tokens_median", &Profile::prompt_tokens_median}};

}  // namespace

double* profile_field(Profile& p, const std::string& key) {
  for (auto& k : kKeys)
    if (key == k.name) return &(p.*(k.field));
  return nullptr;
}

std::vector<std::string> profile_keys() {
  std::vector<std::string> v;
  for (auto& k : kKeys) v.push_back(k.name);
  return v;
}

Scenario default_scenario() {
  Scenario s;
  s.duration_ms = 3'600'000;
  SeriesSpec ctl{{{"model", "gpt-x"}, {"model_version", "2026-11-20"}, {"endpoint", "chat"}, {"variant", "control"}}, {}};
  SeriesSpec cand{{{"model", "gpt-x"}, {"model_version", "2026-11-25"}, {"endpoint", "chat"}, {"variant", "candidate"}}, {}};
  // A second model whose candidate does not change: nothing may fire for it.
  SeriesSpec other{{{"model", "small-y"}, {"model_version", "2026-10-02"}, {"endpoint", "search"}, {"variant", "control"}}, {}};
  other.profile.latency_median_ms = 450;
  other.profile.citation_rate = 0.6;
  SeriesSpec other_cand = other;
  other_cand.labels["model_version"] = "2026-11-24";
  other_cand.labels["variant"] = "candidate";
  s.series = {ctl, cand, other, other_cand};
  Change c;
  c.at_ms = s.duration_ms / 3;
  c.match = {{"model", "gpt-x"}, {"variant", "candidate"}};
  c.set = {{"refusal_rate", 0.09}, {"citation_rate", 0.22}, {"chars_median", 600}};
  c.scale = {{"latency_median_ms", 1.3}};
  s.changes = {c};
  return s;
}

std::vector<ConfigError> scenario_from_yaml(const std::string& text, const std::string& name, Scenario& out) {
  std::vector<ConfigError> errs;
  auto err = [&](const YAML::Node& n, const std::string& key, const std::string& msg) {
    ConfigError e{name, 0, 0, key, msg};
    if (n.IsDefined() && !n.Mark().is_null()) {
      e.line = n.Mark().line + 1;
      e.column = n.Mark().column + 1;
    }
    errs.push_back(e);
  };
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    errs.push_back({name, e.mark.line + 1, e.mark.column + 1, "", "YAML syntax error: " + e.msg});
    return errs;
  }
  const YAML::Node& r = root;
  if (!gw::yaml::is_map(r)) {
    err(r, "", "a scenario is a mapping (seed, start, duration, defaults, series, changes)");
    return errs;
  }
  auto read_profile = [&](const YAML::Node& n, const std::string& key, Profile& p) {
    if (!gw::yaml::is_map(n)) return err(n, key, "expected a mapping of profile keys");
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.Scalar();
      double* f = profile_field(p, k);
      if (!f) {
        std::string known;
        for (auto& kk : profile_keys()) known += (known.empty() ? "" : ", ") + kk;
        err(it->first, key + "." + k, "unknown profile key; known: " + known);
        continue;
      }
      try {
        *f = it->second.as<double>();
      } catch (const YAML::Exception&) {
        err(it->second, key + "." + k, "expected a number");
      }
    }
  };
  Profile defaults;
  for (auto it = r.begin(); it != r.end(); ++it) {
    std::string k = it->first.Scalar();
    const YAML::Node v = it->second;  // a copy: `it->` returns a temporary proxy
    if (k == "seed") {
      try { out.seed = v.as<uint64_t>(); } catch (const YAML::Exception&) { err(v, k, "expected a whole number"); }
    } else if (k == "start") {
      int64_t ms;
      if (!gw::yaml::is_scalar(v) || !parse_rfc3339(v.Scalar(), ms)) err(v, k, "expected an RFC 3339 time");
      else out.start_ms = ms;
    } else if (k == "duration") {
      auto d = gw::yaml::is_scalar(v) ? parse_duration(v.Scalar()) : std::nullopt;
      if (!d) err(v, k, "expected a duration like 30m");
      else out.duration_ms = *d;
    } else if (k == "defaults") {
      read_profile(v, "defaults", defaults);
    } else if (k != "series" && k != "changes" && k != "description") {
      err(it->first, k, "unknown key; known: description, seed, start, duration, defaults, series, changes");
    }
  }
  const YAML::Node& series = r["series"];
  if (series.IsDefined()) {
    if (!gw::yaml::is_seq(series) || series.size() == 0) err(series, "series", "expected a non-empty list");
    else {
      out.series.clear();
      for (size_t i = 0; i < series.size(); ++i) {
        const YAML::Node& s = series[i];
        std::string key = "series[" + std::to_string(i) + "]";
        SeriesSpec spec;
        spec.profile = defaults;
        if (!gw::yaml::is_map(s)) { err(s, key, "expected a mapping"); continue; }
        for (auto it = s.begin(); it != s.end(); ++it) {
          std::string k = it->first.Scalar();
          if (k == "profile") read_profile(it->second, key + ".profile", spec.profile);
          else if (gw::yaml::is_scalar(it->second)) spec.labels[k] = it->second.Scalar();
          else err(it->second, key + "." + k, "a label value must be a string");
        }
        out.series.push_back(spec);
      }
    }
  } else {
    for (auto& s : out.series) s.profile = defaults;
  }
  const YAML::Node& changes = r["changes"];
  if (changes.IsDefined()) {
    out.changes.clear();
    if (!gw::yaml::is_seq(changes)) err(changes, "changes", "expected a list");
    else
      for (size_t i = 0; i < changes.size(); ++i) {
        const YAML::Node& c = changes[i];
        std::string key = "changes[" + std::to_string(i) + "]";
        Change ch;
        if (!gw::yaml::is_map(c) || !c["at"].IsDefined()) { err(c, key, "expected {at: DURATION, match: {...}, set: {...}, scale: {...}}"); continue; }
        auto at = gw::yaml::is_scalar(c["at"]) ? parse_duration(c["at"].Scalar()) : std::nullopt;
        if (!at) err(c["at"], key + ".at", "expected a duration from the start, like 10m");
        else ch.at_ms = *at;
        Profile probe;
        for (auto it = c.begin(); it != c.end(); ++it) {
          std::string k = it->first.Scalar();
          if (k == "at") continue;
          if (k != "match" && k != "set" && k != "scale") { err(it->first, key + "." + k, "unknown key; known: at, match, set, scale"); continue; }
          const YAML::Node section = it->second;
          if (!gw::yaml::is_map(section)) { err(section, key + "." + k, "expected a mapping"); continue; }
          for (auto jt = section.begin(); jt != section.end(); ++jt) {
            std::string kk = jt->first.Scalar();
            if (k == "match") { ch.match[kk] = jt->second.Scalar(); continue; }
            if (!profile_field(probe, kk)) { err(jt->first, key + "." + k + "." + kk, "unknown profile key"); continue; }
            try {
              (k == "set" ? ch.set : ch.scale)[kk] = jt->second.as<double>();
            } catch (const YAML::Exception&) {
              err(jt->second, key + "." + k + "." + kk, "expected a number");
            }
          }
        }
        out.changes.push_back(ch);
      }
  }
  return errs;
}

std::vector<ConfigError> load_scenario(const std::string& path, Scenario& out) {
  std::ifstream f(path);
  if (!f) return {{path, 0, 0, "", "cannot read the scenario file"}};
  std::stringstream ss;
  ss << f.rdbuf();
  return scenario_from_yaml(ss.str(), path, out);
}

Generator::Generator(const Scenario& s) : sc_(s), rng_(s.seed) {
  for (auto& spec : sc_.series) current_.push_back(spec.profile);
  applied_.assign(sc_.changes.size(), false);
  for (size_t i = 0; i < current_.size(); ++i) {
    std::exponential_distribution<double> gap(current_[i].rate);
    next_ts_.push_back(sc_.start_ms + int64_t(gap(rng_) * 1000.0));
  }
}

void Generator::apply_changes(int64_t now) {
  for (size_t c = 0; c < sc_.changes.size(); ++c) {
    const Change& ch = sc_.changes[c];
    if (applied_[c] || now < sc_.start_ms + ch.at_ms) continue;
    applied_[c] = true;
    for (size_t i = 0; i < current_.size(); ++i) {
      bool match = true;
      for (auto& [k, v] : ch.match) {
        auto it = sc_.series[i].labels.find(k);
        match &= it != sc_.series[i].labels.end() && it->second == v;
      }
      if (!match) continue;
      for (auto& [k, v] : ch.set) *profile_field(current_[i], k) = v;
      for (auto& [k, v] : ch.scale) *profile_field(current_[i], k) *= v;
    }
  }
}

bool Generator::next(GeneratedRecord& out) {
  if (current_.empty()) return false;
  size_t si = size_t(std::min_element(next_ts_.begin(), next_ts_.end()) - next_ts_.begin());
  int64_t ts = next_ts_[si];
  if (ts >= sc_.start_ms + sc_.duration_ms) return false;
  apply_changes(ts);
  write_record(si, ts, out);
  std::exponential_distribution<double> gap(std::max(1e-6, current_[si].rate));
  next_ts_[si] = ts + std::max<int64_t>(1, int64_t(gap(rng_) * 1000.0));
  ++produced_;
  return true;
}

void Generator::write_record(size_t si, int64_t ts, GeneratedRecord& out) {
  const Profile& p = current_[si];
  auto& rng = rng_;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> z(0.0, 1.0);
  out.ts_ms = ts;
  out.series = si;
  out.refusal = out.citation = false;
  std::string& j = out.json;
  j.clear();
  j += "{\"ts\":\"";
  j += format_rfc3339(ts);
  j += "\",\"request_id\":\"req-";
  j += std::to_string(produced_ + 1);
  j += "\"";
  for (auto& [k, v] : sc_.series[si].labels) {
    j += ",\"";
    json_escape(j, k);
    j += "\":\"";
    json_escape(j, v);
    j += "\"";
  }
  bool error = u(rng) < p.error_rate;
  double latency = p.latency_median_ms * std::exp(p.latency_sigma * z(rng));
  double ttft = std::min(latency * 0.9, p.ttft_median_ms * std::exp(p.ttft_sigma * z(rng)));
  double chars = std::clamp(p.chars_median * std::exp(p.chars_sigma * z(rng)), p.chars_min, p.chars_max);
  int prompt = int(std::max(1.0, p.prompt_tokens_median * std::exp(0.5 * z(rng))));
  j += ",\"latency_ms\":" + std::to_string(int64_t(latency));
  if (error) {
    j += ",\"status\":";
    j += u(rng) < 0.5 ? "500" : "\"error\"";
    j += ",\"prompt_tokens\":" + std::to_string(prompt) + "}";
    return;
  }
  j += ",\"ttft_ms\":" + std::to_string(int64_t(ttft));
  j += ",\"status\":\"ok\",\"prompt_tokens\":" + std::to_string(prompt);
  double r = u(rng);
  const char* finish = "stop";
  if (r < p.truncation_rate) finish = "length";
  else if (r < p.truncation_rate + p.content_filter_rate) finish = "content_filter";
  bool empty = u(rng) < p.empty_rate;
  std::string text;
  if (!empty) {
    bool refusal = u(rng) < p.refusal_rate;
    bool citation = !refusal && u(rng) < p.citation_rate;
    if (refusal) {
      text = kRefusals[size_t(u(rng) * kNumRefusals) % kNumRefusals];
      chars = std::min(chars, 300.0);
      text += ' ';
    }
    std::uniform_int_distribution<size_t> w(0, kNumWords - 1);
    bool sentence_start = true;
    while (double(text.size()) < chars) {
      std::string_view word = kWords[w(rng)];
      if (sentence_start && word[0] >= 'a' && word[0] <= 'z') {
        text += char(word[0] - 32);
        text += word.substr(1);
      } else {
        text += word;
      }
      sentence_start = u(rng) < 0.08;
      text += sentence_start ? (u(rng) < 0.2 ? ".\n" : ". ") : " ";
    }
    if (citation) text += kCitations[size_t(u(rng) * kNumCitations) % kNumCitations];
    out.refusal = refusal;
    out.citation = citation;
  }
  int completion = int(std::max(1.0, double(text.size()) / 4.0));
  j += ",\"completion_tokens\":" + std::to_string(completion);
  j += ",\"finish_reason\":\"";
  j += finish;
  j += "\",\"response\":\"";
  json_escape(j, text);
  j += "\"";
  if (u(rng) < p.feedback_rate) j += u(rng) < p.negative_feedback_rate ? ",\"user_feedback\":-1" : ",\"user_feedback\":1";
  char buf[64];
  snprintf(buf, sizeof buf, ",\"judge_score\":%.3f}", std::clamp(p.judge_mean + p.judge_sd * z(rng), 0.0, 1.0));
  j += buf;
}

}  // namespace gw
