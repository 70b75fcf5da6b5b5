#include "guardwatch/metrics.hpp"

#include "guardwatch/record.hpp"

namespace gw {

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kApplied: return "applied";
    case Outcome::kLate: return "late";
    case Outcome::kEmpty: return "empty";
    case Outcome::kOversized: return "oversized";
    case Outcome::kInvalidJson: return "invalid_json";
    case Outcome::kInvalidUtf8: return "invalid_utf8";
    case Outcome::kMissingTimestamp: return "missing_timestamp";
    case Outcome::kBadTimestamp: return "bad_timestamp";
    case Outcome::kWrongType: return "wrong_type";
    case Outcome::kInvalidValue: return "invalid_value";
    case Outcome::kCount: break;
  }
  return "unknown";
}

MetricRegistry::MetricRegistry() {
  using K = MetricKind;
  // Order must match BuiltinMetric.
  defs_ = {
      {"refusal", K::kProportion, "refusal_ratio", "", "Share of responses that refuse (refusal lexicon)."},
      {"citation", K::kProportion, "citation_ratio", "", "Share of responses that cite a source (URL, link, [n], Sources:)."},
      {"empty", K::kProportion, "empty_response_ratio", "", "Share of successful requests with an empty or blank response."},
      {"truncated", K::kProportion, "truncated_ratio", "", "Share of responses cut off by the token limit (finish_reason length)."},
      {"content_filtered", K::kProportion, "content_filtered_ratio", "", "Share of responses stopped by a content filter."},
      {"error", K::kProportion, "error_ratio", "", "Share of requests that failed (HTTP status >= 400 or an error word)."},
      {"negative_feedback", K::kProportion, "negative_feedback_ratio", "", "Share of rated responses with negative user feedback."},
      {"latency", K::kDistribution, "request_latency_seconds", "seconds", "End-to-end request latency."},
      {"ttft", K::kDistribution, "time_to_first_token_seconds", "seconds", "Time to first token."},
      {"tokens_per_second", K::kDistribution, "output_tokens_per_second", "tokens_per_second", "Completion tokens per second after the first token."},
      {"response_chars", K::kDistribution, "response_length_chars", "chars", "Response length in characters (code points)."},
      {"response_words", K::kDistribution, "response_length_words", "words", "Response length in whitespace-separated words."},
      {"completion_tokens", K::kDistribution, "completion_tokens", "tokens", "Completion tokens per response."},
      {"cost", K::kDistribution, "request_cost_usd", "usd", "Cost per request in US dollars (tokens x price table, or the cost field)."},
      {"judge_score", K::kDistribution, "judge_score", "", "Score from an LLM-as-a-judge or other numeric quality field."},
  };
}

uint16_t MetricRegistry::add(MetricDef def) {
  defs_.push_back(std::move(def));
  return uint16_t(defs_.size() - 1);
}

int MetricRegistry::find(std::string_view name) const {
  for (size_t i = 0; i < defs_.size(); ++i)
    if (defs_[i].name == name) return int(i);
  return -1;
}

std::string MetricRegistry::known_names() const {
  std::string s;
  for (auto& d : defs_) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}

}  // namespace gw
