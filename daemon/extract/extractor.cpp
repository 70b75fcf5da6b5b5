#include <immintrin.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "guardwatch/extract.hpp"

namespace gw {

// One pass over the response for length, words and blankness, 32 bytes at a time (AVX2).
//
// Words are runs of bytes between whitespace, except in Chinese and Japanese, which are written
// without spaces: there every ideograph and kana counts as a word of its own (as word processors
// count them), and CJK punctuation separates like a space. By the lead byte (and the one or two
// after it), the code points counted so are U+3040-U+9FFF (kana, bopomofo, CJK ideographs and
// extension A), U+F900-U+FAFF (compatibility ideographs) and U+20000-U+3FFFF (extensions B-H);
// the punctuation is U+3000-U+303F (、。「」 and the ideographic space) and the fullwidth forms'
// punctuation (U+FF01-FF0F, FF1A-FF20, FF3B-FF3F, FF5B-FF65: ，！？：；（） ...). Hangul is left
// to whitespace: Korean puts spaces between words.
// Defined on bytes, so that the vector loop and the byte loop agree on any input, valid UTF-8 or
// not (the decoder has validated every response): a lead is judged by itself and the two bytes
// after it, and the bytes of a lead's code point (3 or 4 from the lead) are separators.
namespace {
// 3 or 4 when c (followed by d, e) leads a code point counted as a word; -3 for CJK punctuation.
int cjk_lead(unsigned char c, unsigned char d, unsigned char e) {
  if (c >= 0xE4 && c <= 0xE9) return 3;
  if (c == 0xE3) return d >= 0x81 ? 3 : d == 0x80 ? -3 : 0;
  if (c == 0xEF) {
    if (d >= 0xA4 && d <= 0xAB) return 3;
    if (d == 0xBC) return (e >= 0x90 && e <= 0x99) || (e >= 0xA1 && e <= 0xBA) ? 0 : -3;  // not a digit or letter
    if (d == 0xBD) return e >= 0x9B && e <= 0xA5 ? -3 : 0;
    return 0;
  }
  if (c == 0xF0) return d >= 0xA0 && d <= 0xBF ? 4 : 0;
  return 0;
}
}  // namespace

TextStats text_stats(std::string_view s) {
#ifndef __AVX2__
  return text_stats_bytes(s);
#else
  TextStats st;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  uint64_t nonspace = 0;
  uint32_t prev_sep = 1;  // the byte before the text counts as a separator
  uint32_t carry = 0;     // bytes at the start of the next block that belong to a CJK code point
  const __m256i sp = _mm256_set1_epi8(' '), lo = _mm256_set1_epi8(8), hi = _mm256_set1_epi8(14),
                cont = _mm256_set1_epi8(-65);
  auto bytes = [](int b) { return _mm256_set1_epi8(char(b)); };
  auto at_least = [](__m256i v, __m256i b) { return _mm256_cmpeq_epi8(_mm256_max_epu8(v, b), v); };
  auto within = [](__m256i v, __m256i a, __m256i b) { return _mm256_cmpeq_epi8(_mm256_min_epu8(_mm256_max_epu8(v, a), b), v); };
  // 32 bytes at q, of which those in `valid` are text; q[32] and q[33] are readable too (the
  // bytes after a lead).
  auto block = [&](const unsigned char* q, uint32_t valid) __attribute__((always_inline)) {
    __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
    __m256i is_sp = _mm256_or_si256(_mm256_cmpeq_epi8(v, sp), _mm256_and_si256(_mm256_cmpgt_epi8(v, lo), _mm256_cmpgt_epi8(hi, v)));
    uint32_t m = uint32_t(_mm256_movemask_epi8(is_sp));
    nonspace += size_t(__builtin_popcount(~m & valid));
    st.chars += size_t(__builtin_popcount(uint32_t(_mm256_movemask_epi8(_mm256_cmpgt_epi8(v, cont))) & valid));
    uint32_t sep = m | carry | ~valid;
    carry = 0;
    if (_mm256_movemask_epi8(at_least(v, bytes(0xE3)))) [[unlikely]] {  // no byte >= 0xE3: no lead
      __m256i d = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 1));
      __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 2));
      __m256i e3 = _mm256_cmpeq_epi8(v, bytes(0xE3)), ef = _mm256_cmpeq_epi8(v, bytes(0xEF));
      __m256i l3 = _mm256_or_si256(_mm256_or_si256(_mm256_and_si256(e3, at_least(d, bytes(0x81))), within(v, bytes(0xE4), bytes(0xE9))),
                                   _mm256_and_si256(ef, within(d, bytes(0xA4), bytes(0xAB))));
      __m256i l4 = _mm256_and_si256(_mm256_cmpeq_epi8(v, bytes(0xF0)), within(d, bytes(0xA0), bytes(0xBF)));
      __m256i wide = _mm256_or_si256(  // fullwidth punctuation: EF BC but digits and letters, EF BD 9B-A5
          _mm256_andnot_si256(_mm256_or_si256(within(e, bytes(0x90), bytes(0x99)), within(e, bytes(0xA1), bytes(0xBA))),
                              _mm256_cmpeq_epi8(d, bytes(0xBC))),
          _mm256_and_si256(_mm256_cmpeq_epi8(d, bytes(0xBD)), within(e, bytes(0x9B), bytes(0xA5))));
      __m256i punct = _mm256_or_si256(_mm256_and_si256(e3, _mm256_cmpeq_epi8(d, bytes(0x80))), _mm256_and_si256(ef, wide));
      const uint64_t w3 = uint32_t(_mm256_movemask_epi8(l3)), w4 = uint32_t(_mm256_movemask_epi8(l4));
      const uint64_t three = w3 | uint32_t(_mm256_movemask_epi8(punct));
      const uint64_t part = three | three << 1 | three << 2 | w4 | w4 << 1 | w4 << 2 | w4 << 3;
      st.words += size_t(__builtin_popcountll(w3 | w4));
      sep |= uint32_t(part);
      carry = uint32_t(part >> 32);
    }
    st.words += size_t(__builtin_popcount(~sep & ((sep << 1) | prev_sep)));
    prev_sep = sep >> 31;
  };
  size_t i = 0;
  for (; i + 34 <= n; i += 32) block(p + i, ~0u);
  // The last 1-33 bytes through a zeroed copy (a zero is no lead, and the bytes after the text
  // are marked as separators).
  for (; i < n; i += 32) {
    alignas(32) unsigned char tail[64] = {};
    std::memcpy(tail, p + i, std::min<size_t>(n - i, 34));
    block(tail, n - i >= 32 ? ~0u : (1u << (n - i)) - 1);
  }
  st.blank = nonspace == 0;
  return st;
#endif
}

// The same, a byte at a time: for builds without AVX2, and the tests' second opinion.
TextStats text_stats_bytes(std::string_view s) {
  TextStats st;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  uint64_t nonspace = 0;
  bool prev_sep = true;
  unsigned rem = 0;  // continuation bytes owed to the last CJK code point
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = p[i];
    const bool space = c == ' ' || (c >= 9 && c <= 13);
    const int lead = cjk_lead(c, i + 1 < n ? p[i + 1] : 0, i + 2 < n ? p[i + 2] : 0);
    st.words += lead > 0;
    const bool sep = space || rem > 0 || lead != 0;
    rem = std::max(rem ? rem - 1 : 0u, lead ? unsigned(std::abs(lead)) - 1 : 0u);
    st.words += !sep && prev_sep;
    nonspace += !space;
    prev_sep = sep;
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
