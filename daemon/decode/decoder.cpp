// Decoder: one pass over each JSON document with simdjson On-Demand, guided by a trie of the
// configured JSON pointers, so a record costs one walk however many fields are configured.
#include <simdjson.h>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "guardwatch/decode.hpp"

namespace gw {
namespace {

const char* const kBuiltinNames[kBuiltinFieldCount] = {
    "ts", "request_id", "model", "model_version", "endpoint", "variant", "latency_ms", "ttft_ms",
    "prompt_tokens", "completion_tokens", "finish_reason", "status", "response", "judge_score",
    "user_feedback", "cost_usd"};

// Presets (DESIGN §2). Order matches Field.
const char* const kFlat[kBuiltinFieldCount] = {
    "/ts", "/request_id", "/model", "/model_version", "/endpoint", "/variant", "/latency_ms", "/ttft_ms",
    "/prompt_tokens", "/completion_tokens", "/finish_reason", "/status", "/response", "/judge_score",
    "/user_feedback", "/cost_usd"};
// A proxy's log of an OpenAI-style chat completion: request and response bodies side by side.
const char* const kOpenAI[kBuiltinFieldCount] = {
    "/timestamp", "/request_id", "/request/model", "/response/model", "/endpoint", "/metadata/variant",
    "/latency_ms", "/ttft_ms", "/response/usage/prompt_tokens", "/response/usage/completion_tokens",
    "/response/choices/0/finish_reason", "/status", "/response/choices/0/message/content",
    "/metadata/judge_score", "/metadata/user_feedback", "/cost_usd"};

enum class Want : uint8_t { kString, kNumber, kStatus, kTime, kLabel };
Want want_of(size_t id) {
  switch (id) {
    case kTs: return Want::kTime;
    case kStatus: return Want::kStatus;
    case kLatencyMs: case kTtftMs: case kPromptTokens: case kCompletionTokens:
    case kJudgeScore: case kUserFeedback: case kCostUsd: return Want::kNumber;
    case kRequestId: case kModel: case kModelVersion: case kEndpoint: case kVariant: return Want::kLabel;
    default: return id < kBuiltinFieldCount ? Want::kString : Want::kLabel;
  }
}

std::vector<std::string> split_pointer(const std::string& p) {
  std::vector<std::string> out;
  size_t i = 1;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string tok = p.substr(i, j - i);
    // RFC 6901 escapes
    std::string u;
    for (size_t k = 0; k < tok.size(); ++k) {
      if (tok[k] == '~' && k + 1 < tok.size()) {
        u += tok[k + 1] == '1' ? '/' : '~';
        ++k;
      } else {
        u += tok[k];
      }
    }
    out.push_back(u);
    i = j + 1;
  }
  return out;
}

}  // namespace

const char* FieldSet::builtin_name(size_t id) { return id < kBuiltinFieldCount ? kBuiltinNames[id] : "extra"; }
std::vector<std::string> FieldSet::preset_names() { return {"flat", "openai"}; }

FieldSet::FieldSet(const Config& cfg) {
  const char* const* preset = cfg.preset == "openai" ? kOpenAI : kFlat;
  for (size_t i = 0; i < kBuiltinFieldCount; ++i) {
    std::string p = preset[i];
    if (auto it = cfg.field_overrides.find(kBuiltinNames[i]); it != cfg.field_overrides.end()) p = it->second;
    pointers_.push_back(p);
  }
  for (auto& [name, ptr] : cfg.dimensions) {
    dim_names_.push_back(name);
    dim_ids_.push_back(add_pointer(ptr));
  }
}

uint16_t FieldSet::add_pointer(const std::string& pointer) {
  for (size_t i = kBuiltinFieldCount; i < pointers_.size(); ++i)
    if (pointers_[i] == pointer) return uint16_t(i);
  pointers_.push_back(pointer);
  return uint16_t(pointers_.size() - 1);
}

// Equality of two byte strings of length n, inline for the short keys of log records (a
// memcmp call per key was ~3% of a replay): two overlapping loads from each end, never past it.
[[gnu::always_inline]] inline bool key_eq(const char* a, const char* b, size_t n) {
  auto ld8 = [](const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  auto ld4 = [](const char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  };
  if (n >= 8) {
    if (n > 16) return std::memcmp(a, b, n) == 0;
    return ((ld8(a) ^ ld8(b)) | (ld8(a + n - 8) ^ ld8(b + n - 8))) == 0;
  }
  if (n >= 4) return ((ld4(a) ^ ld4(b)) | (ld4(a + n - 4) ^ ld4(b + n - 4))) == 0;
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

struct Decoder::Impl {
  struct Node {
    std::vector<std::pair<std::string, uint32_t>> children;  // key -> node index
    std::vector<uint16_t> fields;                            // fields located exactly here
    // Producers write keys in the same order record after record: the search starts after the
    // child found last, so a record in a familiar order finds each key at the first compare.
    mutable size_t hint = 0;
    const std::pair<std::string, uint32_t>* find(std::string_view k) const {
      const size_t n = children.size();
      for (size_t i = 0, j = hint; i < n; ++i, ++j) {
        if (j == n) j = 0;
        const std::string& c = children[j].first;
        if (c.size() == k.size() && key_eq(c.data(), k.data(), k.size())) {
          hint = j + 1;
          return &children[j];
        }
      }
      return nullptr;
    }
  };
  std::vector<Node> nodes;  // nodes[0] is the root
  std::vector<Want> wants;
  uint64_t max_bytes;
  simdjson::ondemand::parser parser;
  std::string padded;  // copy of unpadded input

  Impl(const FieldSet& fs, uint64_t max_record_bytes) : max_bytes(max_record_bytes), parser(max_record_bytes + 64) {
    nodes.emplace_back();
    for (size_t id = 0; id < fs.size(); ++id) {
      wants.push_back(want_of(id));
      const std::string& p = fs.pointer(id);
      if (p.empty() || p == "/") continue;  // field disabled
      uint32_t cur = 0;
      for (auto& tok : split_pointer(p)) {
        auto* c = nodes[cur].find(tok);
        if (c) {
          cur = c->second;
        } else {
          nodes.emplace_back();
          nodes[cur].children.emplace_back(tok, uint32_t(nodes.size() - 1));
          cur = uint32_t(nodes.size() - 1);
        }
      }
      nodes[cur].fields.push_back(uint16_t(id));
    }
  }

  // Returns false (and sets result) on a type error. Inlined into the top-level loop: a flat
  // record's fields are all leaves, and the call per field cost ~140 ns per record (bench/README).
  [[gnu::always_inline]] inline bool read_leaf(simdjson::ondemand::value& v, const Node& n, Record& r, DecodeResult& res) {
    using simdjson::ondemand::json_type;
    json_type t;
    if (v.type().get(t)) return fail(res, Outcome::kInvalidJson, "unreadable value");
    FieldValue fv;
    switch (t) {
      case json_type::null: fv.type = FieldValue::kNull; break;
      case json_type::number: {
        double d;
        if (v.get_double().get(d)) return fail(res, Outcome::kInvalidJson, "bad number");
        fv.type = FieldValue::kNumber;
        std::string_view raw = v.raw_json_token();
        while (!raw.empty() && (raw.back() == ' ' || raw.back() == '\n' || raw.back() == '\r' || raw.back() == '\t')) raw.remove_suffix(1);
        fv.str = raw;
        // simdjson 3.0.1 (Debian 12) misreads a fraction with 20 or more digits after a zero
        // integer part (0.95000000000000000000 as 0.0277; simdjson issue #2093, fixed in 3.6.3):
        // simdjson checks the grammar, std::from_chars gives the correctly rounded value.
        if (double c; std::from_chars(raw.data(), raw.data() + raw.size(), c).ec == std::errc()) d = c;
        fv.num = d;
        break;
      }
      case json_type::string: {
        std::string_view s;
        auto err = v.get_string().get(s);
        if (err) return fail(res, err == simdjson::UTF8_ERROR ? Outcome::kInvalidUtf8 : Outcome::kInvalidJson, "bad string");
        fv.type = FieldValue::kString;
        fv.str = s;
        break;
      }
      case json_type::boolean: {
        bool b;
        if (v.get_bool().get(b)) return fail(res, Outcome::kInvalidJson, "bad boolean");
        fv.type = FieldValue::kBool;
        fv.num = b ? 1 : 0;
        fv.str = b ? "true" : "false";
        break;
      }
      default: fv.type = FieldValue::kOther; break;
    }
    uint16_t bad = assign_leaf(fv, n, r);
    if (bad != kNoField) return fail(res, Outcome::kWrongType, std::string("field ") + FieldSet::builtin_name(bad) + " has the wrong JSON type");
    return true;
  }

  // Stores a leaf's value in every field located there; returns the first field whose type it
  // is not (kNoField when all took it).
  static constexpr uint16_t kNoField = 0xFFFF;
  [[gnu::always_inline]] inline uint16_t assign_leaf(const FieldValue& fv, const Node& n, Record& r) const {
    for (uint16_t id : n.fields) {
      Want w = wants[id];
      bool ok = fv.type == FieldValue::kNull || fv.type == FieldValue::kAbsent;
      switch (w) {
        case Want::kString: ok |= fv.type == FieldValue::kString; break;
        case Want::kNumber: ok |= fv.type == FieldValue::kNumber || (id == kUserFeedback && fv.type == FieldValue::kBool); break;
        case Want::kStatus: ok |= fv.type == FieldValue::kNumber || fv.type == FieldValue::kString; break;
        case Want::kTime: ok |= fv.type == FieldValue::kNumber || fv.type == FieldValue::kString; break;
        case Want::kLabel: ok |= fv.type == FieldValue::kString || fv.type == FieldValue::kNumber || fv.type == FieldValue::kBool; break;
      }
      if (!ok) return id;
      FieldValue out = fv;
      if (id == kUserFeedback && fv.type == FieldValue::kBool) out.num = fv.num > 0 ? 1 : -1;
      r.fields[id] = out;
    }
    return kNoField;
  }

  // The key as it stands in the document when it has no escapes (the usual case): no copy into
  // simdjson's string buffer. Otherwise the unescaped key. stage 1 has validated the quotes
  // and UTF-8, so the closing quote is there.
  // Keys are short: the first 16 bytes are compared at once (they are readable: at least the
  // document's padding follows the key), and only a longer key goes on byte by byte.
  static simdjson::error_code key_of(simdjson::ondemand::field& field, std::string_view& key) {
    const char* b = field.key().raw();
    const char* e = b;
#if defined(__SSE2__)
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
    const unsigned m = unsigned(_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')))));
    e = m ? b + __builtin_ctz(m) : b + 16;
#endif
    while (*e != '"' && *e != '\\') ++e;
    if (*e == '"') {
      key = std::string_view(b, size_t(e - b));
      return simdjson::SUCCESS;
    }
    return field.unescaped_key().get(key);
  }
  static simdjson::error_code key_of(simdjson::simdjson_result<simdjson::ondemand::field>& field, std::string_view& key) {
    if (auto err = field.error()) return err;
    return key_of(field.value_unsafe(), key);
  }

  bool fail(DecodeResult& res, Outcome o, std::string detail) {
    res.outcome = o;
    res.detail = std::move(detail);
    return false;
  }

  bool walk(simdjson::ondemand::value& v, const Node& n, Record& r, DecodeResult& res, int depth) {
    if (!n.fields.empty()) return read_leaf(v, n, r, res);  // a leaf wins over deeper pointers
    using simdjson::ondemand::json_type;
    json_type t;
    if (v.type().get(t)) return fail(res, Outcome::kInvalidJson, "unreadable value");
    if (t == json_type::object) {
      simdjson::ondemand::object obj;
      if (v.get_object().get(obj)) return fail(res, Outcome::kInvalidJson, "bad object");
      return walk_object(obj, n, r, res, depth);
    }
    if (t == json_type::array) {
      simdjson::ondemand::array arr;
      if (v.get_array().get(arr)) return fail(res, Outcome::kInvalidJson, "bad array");
      size_t idx = 0;
      char buf[24];
      for (auto el : arr) {
        simdjson::ondemand::value ev;
        if (el.get(ev)) return fail(res, Outcome::kInvalidJson, "bad array element");
        int len = snprintf(buf, sizeof buf, "%zu", idx++);
        if (auto* c = n.find(std::string_view(buf, size_t(len)))) {
          if (!walk(ev, nodes[c->second], r, res, depth + 1)) return false;
        }
      }
      return true;
    }
    return true;  // a scalar where an object was expected: the deeper fields are absent
  }

  bool walk_object(simdjson::ondemand::object& obj, const Node& n, Record& r, DecodeResult& res, int depth) {
    for (auto field : obj) {
      std::string_view key;
      auto err = key_of(field, key);
      if (err) return fail(res, err == simdjson::UTF8_ERROR ? Outcome::kInvalidUtf8 : Outcome::kInvalidJson, "bad key");
      auto* c = n.find(key);
      if (!c) continue;
      simdjson::ondemand::value v;
      if (field.value().get(v)) return fail(res, Outcome::kInvalidJson, "bad value");
      if (!walk(v, nodes[c->second], r, res, depth + 1)) return false;
    }
    return true;
  }

  // --- The fast path ----------------------------------------------------------------------
  // simdjson indexes every byte of a document (stage 1) before On-Demand walks it, and copies
  // every string it reads; a log record is mostly one long response string, so both passes are
  // mostly over that one string. The fast path reads a document in one strict pass instead:
  // strings are searched 32 bytes at a time for their end and read in place unless they hold an
  // escape. It only ever accepts: at anything it does not check itself (a \u escape, a control
  // character, invalid UTF-8, a number it cannot convert exactly, deep nesting, a field of the
  // wrong type, any syntax error) it gives up, and the document goes through simdjson, whose
  // verdict stands. What it accepts is valid JSON, read to the values simdjson reads from it
  // (tests/unit/decode_test.cpp and the decoder fuzz target compare the two).
  bool fast_enabled = true;
  uint64_t fast_reads = 0;
#if defined(__AVX2__) && defined(__BMI2__)
  std::unique_ptr<char[]> ubuf;  // unescaped strings of the current document
  size_t ubuf_cap = 0;
  char* uo = nullptr;
  const char* lim = nullptr;  // end of what may be read of the current document's buffer
  static constexpr int kFastMaxDepth = 32;

  static bool json_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
  static const char* skip_ws(const char* p, const char* end) {
    while (p < end && json_ws(*p)) ++p;
    return p;
  }

  // Every step below takes the position by value and returns the next one, or null where it
  // gives up: a position passed by reference lives in memory, and each step waited on the store
  // of the one before.

  // A string whose opening quote is at p[-1]; returns the position after the closing quote.
  // `o` writes chars, which may alias anything: the copy of `lim` keeps the loop's bound in a
  // register rather than reloaded after every store.
  const char* fast_string(const char* p, const char* end, std::string_view& out) {
    const char* const lim = this->lim;
    const char* start = p;
    char* o = nullptr;  // where unescaped bytes go, once an escape was seen
    uint32_t high = 0;
    const __m256i quote = _mm256_set1_epi8('"'), bslash = _mm256_set1_epi8('\\'), ctl = _mm256_set1_epi8(0x1F);
    // UTF-8 on the way: log text is mostly ASCII with a two-byte letter here and there (é, ü,
    // ß), and a string of ASCII and well-formed two-byte sequences only (a lead C2-DF, then one
    // continuation 80-BF) is valid UTF-8. Each block is checked for that, without a branch;
    // only a string that is not so (longer sequences: Chinese, emoji; or invalid bytes) goes
    // through simdjson's full check afterwards.
    const __m256i cont_below = _mm256_set1_epi8(-64), two_below = _mm256_set1_epi8(-32), lead_above = _mm256_set1_epi8(-63);
    __m256i not_two_byte = _mm256_setzero_si256();  // sign bits: a byte that is not ASCII or part of a two-byte sequence
    __m256i prev_lead = _mm256_setzero_si256();     // the leads of the block before
    // 32 bytes from kFirst + 31 - k: the first k + 1 set (a block up to and including byte k).
    alignas(32) static constexpr uint8_t kFirst[64] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                                       0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                                                       0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    // The bytes of block v up to `mask` against that rule. The byte after the last is checked
    // too: it is the next block's first, or the quote or escape that stopped the search.
    auto check_two_byte = [&](const __m256i v, const __m256i mask) {
      const __m256i cont = _mm256_cmpgt_epi8(cont_below, v);                                                   // 80-BF
      const __m256i lead = _mm256_andnot_si256(cont, _mm256_and_si256(_mm256_cmpgt_epi8(two_below, v), _mm256_cmpgt_epi8(v, lead_above)));  // C2-DF
      const __m256i before = _mm256_alignr_epi8(lead, _mm256_permute2x128_si256(prev_lead, lead, 0x21), 15);  // lead at i-1
      const __m256i bad = _mm256_or_si256(_mm256_xor_si256(cont, before), _mm256_andnot_si256(_mm256_or_si256(lead, cont), v));
      not_two_byte = _mm256_or_si256(not_two_byte, _mm256_and_si256(bad, mask));
      prev_lead = lead;
    };
    for (;;) {
      if (p >= end) return nullptr;
      // 32 bytes from p, unless fewer are readable there (an unpadded Kafka payload's end): then
      // the rest of the document and zeros, which stop the search as control characters.
      alignas(32) char tail[32];
      const char* q = p;
      if (size_t(lim - p) < 32) [[unlikely]] {
        std::memset(tail, 0, sizeof tail);
        std::memcpy(tail, p, size_t(end - p));
        q = tail;
      }
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
      const uint32_t stop = uint32_t(_mm256_movemask_epi8(_mm256_or_si256(
          _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, bslash)), _mm256_cmpeq_epi8(_mm256_min_epu8(v, ctl), v))));
      const uint32_t hi = uint32_t(_mm256_movemask_epi8(v));
      if (o) _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), v);
      // The usual block holds none of the three: the next address then does not wait on this
      // block's compare (a predicted branch, where a computed step would chain the loads).
      if (!stop) {
        high |= hi;
        check_two_byte(v, _mm256_set1_epi8(-1));
        if (o) o += 32;
        p += 32;
        continue;
      }
      const unsigned k = unsigned(__builtin_ctz(stop));
      high |= _bzhi_u32(hi, k);
      // Up to the quote or escape itself (ASCII: a lead right before it is cut short). An
      // escape's two bytes are ASCII, so no sequence runs on past it.
      check_two_byte(v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kFirst + 31 - k)));
      prev_lead = _mm256_setzero_si256();
      if (o) o += k;
      p += k;
      if (p >= end) return nullptr;  // the string does not end within the document
      if (*p == '"') break;
      if (*p != '\\' || p + 1 >= end) return nullptr;  // a control character, or a cut escape
      if (!o) {
        o = uo;
        std::memcpy(o, start, size_t(p - start));
        o += p - start;
      }
      switch (p[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        default: return nullptr;  // \u (left to simdjson) or not an escape
      }
      p += 2;
    }
    // Escapes are ASCII, so the raw bytes are valid UTF-8 exactly when the string is.
    if (high && _mm256_movemask_epi8(not_two_byte) && !simdjson::validate_utf8(start, size_t(p - start))) return nullptr;
    if (o) {
      out = std::string_view(uo, size_t(o - uo));
      uo = o;
    } else {
      out = std::string_view(start, size_t(p - start));
    }
    return p + 1;
  }

  // A number by JSON's grammar; its value is the double nearest to it (as simdjson's, which
  // read_leaf corrects for simdjson 3.0.1's misreading of long fractions).
  static const char* fast_number(const char* p, const char* end, FieldValue& fv) {
    const char* s = p;
    const bool neg = p < end && *p == '-';
    p += neg;
    auto digit = [&] { return p < end && unsigned(*p - '0') < 10u; };
    uint64_t v = 0;
    if (p < end && *p == '0') {
      ++p;
    } else if (digit()) {
      while (digit()) v = v * 10 + unsigned(*p++ - '0');
    } else {
      return nullptr;
    }
    const size_t int_digits = size_t(p - s) - neg;
    bool integral = true;
    size_t frac_digits = 0;
    if (p < end && *p == '.') {
      ++p;
      if (!digit()) return nullptr;
      const char* f = p;
      // The digits go on into v while it stays exact (int_digits + frac_digits <= 15).
      while (digit()) {
        if (size_t(p - f) + int_digits < 16) v = v * 10 + unsigned(*p - '0');
        ++p;
      }
      frac_digits = size_t(p - f);
      integral = false;
    }
    bool exponent = false;
    if (p < end && (*p == 'e' || *p == 'E')) {
      ++p;
      if (p < end && (*p == '+' || *p == '-')) ++p;
      const char* e = p;
      while (digit()) ++p;
      // simdjson rejects exponents of more than 18 digits, even 0e...: long ones are its to judge.
      if (p == e || p - e > 4) return nullptr;
      integral = false;
      exponent = true;
    }
    double d;
    if (integral && int_digits <= 15) {  // below 2^53: exact
      d = double(v);
      if (neg) d = -d;
    } else if (!exponent && int_digits + frac_digits <= 15) {
      // A decimal of at most 15 digits (judge scores, costs): its digits and the power of ten are
      // both exact doubles, so one division rounds to the nearest double (Clinger's fast path).
      static constexpr double kPow10[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                            1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
      d = double(v) / kPow10[frac_digits];
      if (neg) d = -d;
    } else {
      auto r = std::from_chars(s, p, d);
      if (r.ec != std::errc() || r.ptr != p || !std::isfinite(d)) return nullptr;
    }
    fv.type = FieldValue::kNumber;
    fv.num = d;
    fv.str = std::string_view(s, size_t(p - s));
    return p;
  }

  static const char* fast_literal(const char* p, const char* end, const char* word, size_t n) {
    if (size_t(end - p) < n || std::memcmp(p, word, n) != 0) return nullptr;
    return p + n;
  }

  // Any value at p (not at the end). n is the trie node it stands at, or null to skip it.
  const char* fast_value(const char* p, const char* end, const Node* n, Record& r, int depth) {
    if (n && !n->fields.empty()) {
      FieldValue fv;
      switch (*p) {
        case '"':
          p = fast_string(p + 1, end, fv.str);
          fv.type = FieldValue::kString;
          break;
        case '{':
        case '[':
          p = fast_value(p, end, nullptr, r, depth);
          fv.type = FieldValue::kOther;
          break;
        case 't':
          p = fast_literal(p, end, "true", 4);
          fv = {FieldValue::kBool, 1, "true"};
          break;
        case 'f':
          p = fast_literal(p, end, "false", 5);
          fv = {FieldValue::kBool, 0, "false"};
          break;
        case 'n':
          p = fast_literal(p, end, "null", 4);
          fv.type = FieldValue::kNull;
          break;
        default:
          p = fast_number(p, end, fv);
      }
      return p && assign_leaf(fv, *n, r) == kNoField ? p : nullptr;
    }
    if (n && n->children.empty()) n = nullptr;
    switch (*p) {
      case '"': {
        std::string_view s;
        return fast_string(p + 1, end, s);
      }
      case '{': return fast_object(p, end, n, r, depth + 1);
      case '[': return fast_array(p, end, n, r, depth + 1);
      case 't': return fast_literal(p, end, "true", 4);
      case 'f': return fast_literal(p, end, "false", 5);
      case 'n': return fast_literal(p, end, "null", 4);
      default: {
        FieldValue fv;
        return fast_number(p, end, fv);
      }
    }
  }

  // After a member or element: a comma (more follow; returns the next one's position) or the
  // closing byte (more = false; returns the position after it). Null on anything else.
  static const char* next_or_close(const char* p, const char* end, char close, bool& more) {
    p = skip_ws(p, end);
    if (p >= end) return nullptr;
    if (*p == close) {
      more = false;
      return p + 1;
    }
    if (*p != ',') return nullptr;
    more = true;
    return skip_ws(p + 1, end);
  }

  // A container whose opening byte is at p; returns the position after its closing byte.
  const char* fast_object(const char* p, const char* end, const Node* n, Record& r, int depth) {
    if (depth > kFastMaxDepth) return nullptr;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') return p + 1;
    for (bool more = true; more;) {
      if (p >= end || *p != '"') return nullptr;
      std::string_view key;
      if (!(p = fast_string(p + 1, end, key))) return nullptr;
      p = skip_ws(p, end);
      if (p >= end || *p != ':') return nullptr;
      p = skip_ws(p + 1, end);
      if (p >= end) return nullptr;
      const Node* child = nullptr;
      if (n)
        if (auto* c = n->find(key)) child = &nodes[c->second];
      if (!(p = fast_value(p, end, child, r, depth)) || !(p = next_or_close(p, end, '}', more))) return nullptr;
    }
    return p;
  }

  const char* fast_array(const char* p, const char* end, const Node* n, Record& r, int depth) {
    if (depth > kFastMaxDepth) return nullptr;
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') return p + 1;
    bool more = true;
    for (size_t idx = 0; more; ++idx) {
      if (p >= end) return nullptr;
      const Node* child = nullptr;
      if (n) {
        char buf[24];
        auto [e, ec] = std::to_chars(buf, buf + sizeof buf, idx);
        if (auto* c = n->find(std::string_view(buf, size_t(e - buf)))) child = &nodes[c->second];
      }
      if (!(p = fast_value(p, end, child, r, depth)) || !(p = next_or_close(p, end, ']', more))) return nullptr;
    }
    return p;
  }

  // True when the document was read; false leaves it to simdjson (r may hold some fields).
  // `cap` bytes from buf may be read (at least len; no padding needed).
  bool run_fast(const char* buf, size_t len, size_t cap, Record& r) {
    if (ubuf_cap < len + 64) {
      ubuf_cap = std::max(len + 64, size_t(4096));
      ubuf = std::make_unique<char[]>(ubuf_cap);
    }
    uo = ubuf.get();
    lim = buf + cap;
    const char* end = buf + len;
    const char* p = skip_ws(buf, end);
    if (p >= end || *p != '{' || !(p = fast_object(p, end, &nodes[0], r, 1))) return false;
    return skip_ws(p, end) == end;
  }
#else
  bool run_fast(const char*, size_t, size_t, Record&) { return false; }
#endif

  bool try_fast(const char* buf, size_t len, size_t cap, Record& r) {
    if (!fast_enabled) return false;
    r.fields.assign(wants.size(), FieldValue{});
    if (run_fast(buf, len, cap, r)) {
      ++fast_reads;
      return true;
    }
    return false;
  }

  // simdjson's reading: buf has at least SIMDJSON_PADDING readable bytes after len.
  DecodeResult run(const char* buf, size_t len, size_t cap, Record& r) {
    DecodeResult res;
    r.fields.assign(wants.size(), FieldValue{});
    simdjson::ondemand::document doc;
    auto err = parser.iterate(buf, len, cap).get(doc);
    if (err) {
      fail(res, err == simdjson::UTF8_ERROR ? Outcome::kInvalidUtf8 : Outcome::kInvalidJson, simdjson::error_message(err));
      return res;
    }
    simdjson::ondemand::object obj;
    err = doc.get_object().get(obj);
    if (err) {
      fail(res, err == simdjson::UTF8_ERROR ? Outcome::kInvalidUtf8 : Outcome::kInvalidJson,
           err == simdjson::INCORRECT_TYPE ? "the record is not a JSON object" : simdjson::error_message(err));
      return res;
    }
    // Iterating with error checks: a syntax error anywhere we walk surfaces here.
    for (auto field : obj) {
      std::string_view key;
      err = key_of(field, key);
      if (err) {
        fail(res, err == simdjson::UTF8_ERROR ? Outcome::kInvalidUtf8 : Outcome::kInvalidJson, simdjson::error_message(err));
        return res;
      }
      auto* c = nodes[0].find(key);
      simdjson::ondemand::value& v = field.value_unsafe().value();
      if (!c) {
        // Skipping still has to be valid JSON structure.
        continue;
      }
      const Node& child = nodes[c->second];
      if (!(child.fields.empty() ? walk(v, child, r, res, 1) : read_leaf(v, child, r, res))) return res;
    }
    const char* rest = nullptr;
    if (!doc.current_location().get(rest)) fail(res, Outcome::kInvalidJson, "trailing content after the JSON object");
    return res;
  }
};

Decoder::Decoder(const FieldSet& fields, uint64_t max_record_bytes) : impl_(std::make_unique<Impl>(fields, max_record_bytes)) {}
Decoder::~Decoder() = default;
void Decoder::set_fast_path(bool on) { impl_->fast_enabled = on; }
uint64_t Decoder::fast_path_reads() const { return impl_->fast_reads; }
bool Decoder::has_fast_path() {
#if defined(__AVX2__) && defined(__BMI2__)
  return true;
#else
  return false;
#endif
}

static_assert(Decoder::kPadding >= simdjson::SIMDJSON_PADDING);

DecodeResult Decoder::decode(std::string_view data, Record& out, size_t readable_after) {
  const size_t end_of_readable = data.size() + readable_after;
  // Trim trailing whitespace (a JSONL line's '\r').
  while (!data.empty() && (data.back() == '\r' || data.back() == '\n' || data.back() == ' ' || data.back() == '\t')) data.remove_suffix(1);
  size_t start = 0;
  while (start < data.size() && (data[start] == ' ' || data[start] == '\t')) ++start;
  data.remove_prefix(start);
  if (data.empty()) {
    out.fields.assign(impl_->wants.size(), FieldValue{});
    return {Outcome::kEmpty, "empty message"};
  }
  if (data.size() > impl_->max_bytes) {
    out.fields.assign(impl_->wants.size(), FieldValue{});
    return {Outcome::kOversized, "record of " + std::to_string(data.size()) + " bytes exceeds input.max_record_bytes"};
  }
  // Trimming only adds to the readable bytes after the document. The fast path needs no padding,
  // so an unpadded document (a Kafka payload) is copied only when simdjson has to read it.
  const size_t cap = end_of_readable - start;
  if (impl_->try_fast(data.data(), data.size(), cap, out)) return {};
  if (readable_after >= kPadding) return impl_->run(data.data(), data.size(), cap, out);
  auto& p = impl_->padded;
  if (p.size() < data.size() + simdjson::SIMDJSON_PADDING) p.resize(data.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(p.data(), data.data(), data.size());
  std::memset(p.data() + data.size(), 0, simdjson::SIMDJSON_PADDING);
  return impl_->run(p.data(), data.size(), p.size(), out);
}

// --- time ---------------------------------------------------------------------------------

namespace {
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = unsigned(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + int64_t(doe) - 719468;
}
bool digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}
}  // namespace

bool parse_rfc3339(std::string_view s, int64_t& ms) {
  int Y, M, D, h, m, sec;
  if (!digits(s, 0, 4, Y) || s.size() < 19 || s[4] != '-' || !digits(s, 5, 2, M) || s[7] != '-' || !digits(s, 8, 2, D) ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s, 11, 2, h) || s[13] != ':' || !digits(s, 14, 2, m) ||
      s[16] != ':' || !digits(s, 17, 2, sec))
    return false;
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return false;
  size_t i = 19;
  int frac_ms = 0;
  if (i < s.size() && (s[i] == '.' || s[i] == ',')) {
    ++i;
    int nd = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (nd < 3) frac_ms = frac_ms * 10 + (s[i] - '0');
      ++nd;
      ++i;
    }
    if (nd == 0) return false;
    for (int k = nd; k < 3; ++k) frac_ms *= 10;
  }
  int64_t offset_min = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!digits(s, i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(s, i + 4, 2, om)) return false;
    offset_min = (oh * 60 + om) * (s[i] == '+' ? 1 : -1);
    i += 6;
  } else {
    return false;
  }
  if (i != s.size()) return false;
  int64_t days = days_from_civil(Y, unsigned(M), unsigned(D));
  ms = ((days * 86400 + h * 3600 + m * 60 + std::min(sec, 59)) - offset_min * 60) * 1000 + frac_ms;
  return true;
}

std::string format_rfc3339(int64_t ms) {
  std::time_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  int64_t rem = ms - int64_t(secs) * 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, int(rem));
  return buf;
}

}  // namespace gw
