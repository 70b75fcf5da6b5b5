#include <immintrin.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "guardwatch/extract.hpp"

namespace gw {

// One pass over the response for length, words and blankness, 32 bytes at a time (AVX2).
TextStats text_stats(std::string_view s) {
  TextStats st;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  uint32_t prev_space = 1;  // the byte before the text counts as space
  uint64_t nonspace = 0;
#ifdef __AVX2__
  const __m256i sp = _mm256_set1_epi8(' '), lo = _mm256_set1_epi8(8), hi = _mm256_set1_epi8(14),
                cont = _mm256_set1_epi8(-65);
  for (; i + 32 <= n; i += 32) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    __m256i is_sp = _mm256_or_si256(_mm256_cmpeq_epi8(v, sp), _mm256_and_si256(_mm256_cmpgt_epi8(v, lo), _mm256_cmpgt_epi8(hi, v)));
    uint32_t m = uint32_t(_mm256_movemask_epi8(is_sp));
    uint32_t starts = ~m & ((m << 1) | prev_space);
    st.words += size_t(__builtin_popcount(starts));
    nonspace += size_t(__builtin_popcount(~m));
    prev_space = m >> 31;
    st.chars += size_t(__builtin_popcount(uint32_t(_mm256_movemask_epi8(_mm256_cmpgt_epi8(v, cont)))));
  }
#endif
  for (; i < n; ++i) {
    unsigned char c = p[i];
    uint32_t space = c == ' ' || (c >= 9 && c <= 13);
    st.words += (space ^ 1u) & prev_space;
    nonspace += space ^ 1u;
    prev_space = space;
    st.chars += (c & 0xC0) != 0x80;
  }
  st.blank = nonspace == 0;
  return st;
}

size_t utf8_length(std::string_view s) { return text_stats(s).chars; }
size_t word_count(std::string_view s) { return text_stats(s).words; }

namespace {
bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}
}  // namespace

Extractor::Extractor(const Config& cfg, const MetricRegistry& metrics, Matcher& matcher, std::vector<CustomExtract> custom)
    : custom_(std::move(custom)), cfg_(cfg), metrics_(metrics), matcher_(matcher), error_statuses_(cfg.error_statuses) {
  for (auto& c : custom_) {
    char* end = nullptr;
    c.operand_num = std::strtod(c.operand.c_str(), &end);
    c.operand_is_num = !c.operand.empty() && end && *end == '\0';
  }
}

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
      // An HTTP code as a string; anything longer than 3 digits is not one (and must not
      // overflow: found by the decoder fuzzer).
      ok = w.size() > 3 ? 0 : (std::stoi(std::string(w)) < 400);
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
    TextStats ts = text_stats(resp.str);
    o.values[kEmpty] = ts.blank;
    if (!ts.blank) {
      for (auto& c : custom_)
        if (c.from_pattern) o.values[c.metric] = 0;
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
      o.values[kResponseChars] = double(ts.chars);
      o.values[kResponseWords] = double(ts.words);
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

  for (auto& c : custom_) {
    if (c.from_pattern) continue;
    const FieldValue& f = r[c.field];
    using Op = CustomExtract::Op;
    if (c.op == Op::kPresent) {
      o.values[c.metric] = f.present() ? 1 : 0;
      continue;
    }
    if (!f.present()) continue;  // not observed
    if (c.op == Op::kValue) {
      if (f.type == FieldValue::kNumber || f.type == FieldValue::kBool) o.values[c.metric] = f.num;
      continue;
    }
    bool numeric = c.operand_is_num && (f.type == FieldValue::kNumber || f.type == FieldValue::kBool);
    int cmp = numeric ? (f.num < c.operand_num ? -1 : f.num > c.operand_num ? 1 : 0) : f.str.compare(c.operand);
    bool v = false;
    switch (c.op) {
      case Op::kEq: v = cmp == 0; break;
      case Op::kNe: v = cmp != 0; break;
      case Op::kLt: v = cmp < 0; break;
      case Op::kLe: v = cmp <= 0; break;
      case Op::kGt: v = cmp > 0; break;
      case Op::kGe: v = cmp >= 0; break;
      default: break;
    }
    o.values[c.metric] = v ? 1 : 0;
  }
}

}  // namespace gw
