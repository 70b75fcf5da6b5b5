#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>

#include "guardwatch/extract.hpp"

namespace gw {

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

size_t word_count(std::string_view s) {
  size_t n = 0;
  bool prev_space = true;
  for (unsigned char c : s) {
    bool sp = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
    n += prev_space & !sp;
    prev_space = sp;
  }
  return n;
}

namespace {
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}
bool blank(std::string_view s) {
  for (unsigned char c : s)
    if (!std::isspace(c)) return false;
  return true;
}
}  // namespace

Extractor::Extractor(const Config& cfg, const MetricRegistry& metrics, Matcher& matcher)
    : cfg_(cfg), metrics_(metrics), matcher_(matcher), error_statuses_(cfg.error_statuses) {}

void Extractor::extract(const Record& r, Observation& o) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  o.values.assign(metrics_.size(), kNaN);
  o.matches.clear();

  // Status: an HTTP code or a word.
  const FieldValue& st = r[kStatus];
  int ok = -1;  // -1 unknown, 0 error, 1 ok
  if (st.type == FieldValue::kNumber) {
    ok = st.num < 400;
  } else if (st.type == FieldValue::kString) {
    const std::string_view w = st.str;
    bool numeric = !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) {
      ok = std::stoi(std::string(w)) < 400;
    } else {
      ok = 1;
      for (auto& e : error_statuses_)
        if (iequals(w, e)) ok = 0;
    }
  }
  if (ok >= 0) o.values[kError] = ok ? 0 : 1;

  const FieldValue& fr = r[kFinishReason];
  if (fr.type == FieldValue::kString) {
    o.values[kTruncated] = (fr.str == "length" || fr.str == "max_tokens") ? 1 : 0;
    o.values[kContentFiltered] = fr.str == "content_filter" ? 1 : 0;
  }

  const FieldValue& resp = r[kResponse];
  if (ok != 0 && resp.type == FieldValue::kString) {
    bool empty = blank(resp.str);
    o.values[kEmpty] = empty;
    if (!empty) {
      matcher_.scan(resp.str, o.matches);
      double refusal = 0, citation = 0;
      for (uint32_t id : o.matches) {
        uint16_t g = matcher_.pattern(id).group;
        if (g == kRefusal) refusal = 1;
        else if (g == kCitation) citation = 1;
        else if (g < o.values.size()) o.values[g] = 1;
      }
      o.values[kRefusal] = refusal;
      o.values[kCitation] = citation;
      o.values[kResponseChars] = double(utf8_length(resp.str));
      o.values[kResponseWords] = double(word_count(resp.str));
    }
  } else if (ok != 0 && resp.type == FieldValue::kNull) {
    o.values[kEmpty] = 1;
  }

  const FieldValue& lat = r[kLatencyMs];
  const FieldValue& ttft = r[kTtftMs];
  const FieldValue& ct = r[kCompletionTokens];
  const FieldValue& pt = r[kPromptTokens];
  if (lat.type == FieldValue::kNumber) o.values[kLatency] = lat.num / 1000.0;
  if (ttft.type == FieldValue::kNumber) o.values[kTtft] = ttft.num / 1000.0;
  if (ct.type == FieldValue::kNumber) {
    o.values[kCompletionTokensMetric] = ct.num;
    if (lat.type == FieldValue::kNumber) {
      double gen_ms = lat.num - (ttft.type == FieldValue::kNumber ? ttft.num : 0);
      if (gen_ms > 0 && ct.num > 0) o.values[kTokensPerSecond] = ct.num / (gen_ms / 1000.0);
    }
  }
  const FieldValue& cost = r[kCostUsd];
  if (cost.type == FieldValue::kNumber) {
    o.values[kCost] = cost.num;
  } else if (!cfg_.prices.empty() && (ct.type == FieldValue::kNumber || pt.type == FieldValue::kNumber)) {
    const Price* price = nullptr;
    const FieldValue& model = r[kModel];
    if (model.present())
      if (auto it = cfg_.prices.find(std::string(model.str)); it != cfg_.prices.end()) price = &it->second;
    if (!price)
      if (auto it = cfg_.prices.find("*"); it != cfg_.prices.end()) price = &it->second;
    if (price) {
      double in = pt.type == FieldValue::kNumber ? pt.num : 0, out = ct.type == FieldValue::kNumber ? ct.num : 0;
      o.values[kCost] = (in * price->input_per_million + out * price->output_per_million) / 1e6;
    }
  }
  if (r[kJudgeScore].type == FieldValue::kNumber) o.values[kJudge] = r[kJudgeScore].num;
  if (r[kUserFeedback].type == FieldValue::kNumber) o.values[kNegativeFeedback] = r[kUserFeedback].num < 0 ? 1 : 0;
}

}  // namespace gw
