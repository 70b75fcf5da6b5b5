#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>
#include <unistd.h>

#include "guardwatch/decode.hpp"
#include "helpers.hpp"

using namespace gw;

TEST_SUITE("unit") {
TEST_CASE("decode: flat preset reads every field") {
  Config cfg = gwtest::default_config();
  FieldSet fs(cfg);
  Decoder d(fs, cfg.max_record_bytes);
  Record r;
  auto res = d.decode(R"({"ts":"2026-11-26T06:00:00.123Z","request_id":"r-91","model":"gpt-x","model_version":"2026-11-20",
    "endpoint":"chat","variant":"candidate","latency_ms":1234,"ttft_ms":210,"prompt_tokens":512,
    "completion_tokens":180,"finish_reason":"stop","status":"ok","response":"hi \"there\"\n","judge_score":0.82,"user_feedback":-1,
    "unused":{"deep":[1,2,{"x":"y"}]}})", r);
  REQUIRE(res.outcome == Outcome::kApplied);
  CHECK(r[kTs].str == "2026-11-26T06:00:00.123Z");
  CHECK(r[kRequestId].str == "r-91");
  CHECK(r[kModel].str == "gpt-x");
  CHECK(r[kVariant].str == "candidate");
  CHECK(r[kLatencyMs].num == 1234);
  CHECK(r[kCompletionTokens].num == 180);
  CHECK(r[kStatus].str == "ok");
  CHECK(r[kResponse].str == "hi \"there\"\n");
  CHECK(r[kUserFeedback].num == -1);
  CHECK(r[kJudgeScore].num == doctest::Approx(0.82));
  CHECK_FALSE(r[kCostUsd].present());
}

TEST_CASE("decode: openai preset reads nested choices and usage") {
  Config cfg = gwtest::config("input: {preset: openai}");
  FieldSet fs(cfg);
  Decoder d(fs, cfg.max_record_bytes);
  Record r;
  auto res = d.decode(R"({"timestamp":1795672800123,"request_id":"abc","endpoint":"/v1/chat/completions","latency_ms":800,"status":200,
    "request":{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]},
    "response":{"id":"chatcmpl-1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"length"}],
                "usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}},
    "metadata":{"variant":"control"}})", r);
  REQUIRE(res.outcome == Outcome::kApplied);
  CHECK(r[kModel].str == "gpt-4o");
  CHECK(r[kModelVersion].str == "gpt-4o-2024-08-06");
  CHECK(r[kResponse].str == "Hello!");
  CHECK(r[kFinishReason].str == "length");
  CHECK(r[kPromptTokens].num == 9);
  CHECK(r[kCompletionTokens].num == 12);
  CHECK(r[kVariant].str == "control");
  CHECK(r[kStatus].num == 200);
}

TEST_CASE("decode: JSON pointer overrides and dimensions") {
  Config cfg = gwtest::config(R"(input: {fields: {response: "/out/text", ts: "/time"}, dimensions: {region: "/meta/region", tier: "/meta/a~1b"}})");
  FieldSet fs(cfg);
  Decoder d(fs, cfg.max_record_bytes);
  Record r;
  REQUIRE(d.decode(R"({"time":1795672800,"out":{"text":"yo"},"response":"ignored","meta":{"region":"eu","a/b":7}})", r).outcome == Outcome::kApplied);
  CHECK(r[kResponse].str == "yo");
  CHECK(r[kTs].num == 1795672800);
  REQUIRE(fs.dimension_ids().size() == 2);
  CHECK(r[fs.dimension_ids()[0]].str == "eu");
  CHECK(r[fs.dimension_ids()[1]].str == "7");
}

TEST_CASE("decode: every malformed class is classified, and the decoder keeps working") {
  Config cfg = gwtest::config("input: {max_record_bytes: 200}");
  FieldSet fs(cfg);
  Decoder d(fs, cfg.max_record_bytes);
  Record r;
  CHECK(d.decode("", r).outcome == Outcome::kEmpty);
  CHECK(d.decode("   \r\n", r).outcome == Outcome::kEmpty);
  CHECK(d.decode("{not json", r).outcome == Outcome::kInvalidJson);
  CHECK(d.decode("[1,2,3]", r).outcome == Outcome::kInvalidJson);
  CHECK(d.decode(R"({"ts":1} trailing)", r).outcome == Outcome::kInvalidJson);
  CHECK(d.decode(std::string(300, ' ') + "{}" + std::string(300, 'x'), r).outcome == Outcome::kOversized);
  CHECK(d.decode("{\"response\":\"bad \xff\xfe utf8\"}", r).outcome == Outcome::kInvalidUtf8);
  CHECK(d.decode(R"({"latency_ms":"fast"})", r).outcome == Outcome::kWrongType);
  CHECK(d.decode(R"({"model":{"name":"x"}})", r).outcome == Outcome::kWrongType);
  CHECK(d.decode(R"({"response":42})", r).outcome == Outcome::kWrongType);
  std::string deep = std::string(150, '[') + std::string(150, ']');
  CHECK(d.decode("{\"x\":" + deep.substr(0, 120) + "}", r).outcome == Outcome::kInvalidJson);
  // still fine afterwards
  CHECK(d.decode(R"({"ts":1795672800,"model":"m","latency_ms":null})", r).outcome == Outcome::kApplied);
  CHECK(r[kLatencyMs].type == FieldValue::kNull);
}

TEST_CASE("decode: in-place parsing of padded input gives what the copying path gives") {
  Config cfg = gwtest::config("input: {max_record_bytes: 400}");
  FieldSet fs(cfg);
  Decoder copying(fs, cfg.max_record_bytes), in_place(fs, cfg.max_record_bytes);
  // Lines as a file source holds them: followed by the next line's bytes (here digits, quotes
  // and braces that would change the result if the parser read past the line's end).
  const std::vector<std::string> lines = {
      R"({"ts":1795672800,"model":"m","latency_ms":12,"response":"ok"})",
      " \t{\"ts\":\"2026-11-26T06:00:00Z\",\"latency_ms\":7}\r",
      R"({"ts":1795672800,"latency_ms":1)",
      R"({"ts":1795672800,"response":"unterminated)",
      R"({"ts":1} trailing)",
      "   \r",
      "",
      R"({"ts":1795672800,"model":"m"}   )",
      "{\"response\":\"bad \xff utf8\"}",
      std::string(500, 'x')};
  const std::string after = R"(99999"}]},{"ts":123,"latency_ms":5})" + std::string(Decoder::kPadding, '9');
  for (auto& line : lines) {
    CAPTURE(line);
    std::string buf = line + after;
    Record a, b;
    DecodeResult ra = copying.decode(line, a);
    DecodeResult rb = in_place.decode(std::string_view(buf.data(), line.size()), b, buf.size() - line.size());
    CHECK(ra.outcome == rb.outcome);
    CHECK(ra.detail == rb.detail);
    if (ra.outcome != Outcome::kApplied) continue;
    REQUIRE(a.fields.size() == b.fields.size());
    for (size_t i = 0; i < a.fields.size(); ++i) {
      CHECK(a.fields[i].type == b.fields[i].type);
      CHECK(a.fields[i].num == b.fields[i].num);
      CHECK(a.fields[i].str == b.fields[i].str);
    }
  }
}

TEST_CASE("decode: escaped keys are unescaped before lookup, plain keys are read in place") {
  Config cfg = gwtest::config("input: {dimensions: {tier: /meta/tier}}");
  FieldSet fs(cfg);
  Decoder d(fs, cfg.max_record_bytes);
  Record r;
  REQUIRE(d.decode(R"({"ts":1795672800,"la\u0074ency_ms":42,"model\u005fversion":"v\u0031","meta":{"t\u0069er":"gold"},"x\\y":1,"response":"ok"})", r).outcome ==
          Outcome::kApplied);
  CHECK(r[kLatencyMs].num == 42);
  CHECK(r[kModelVersion].str == "v1");
  CHECK(r[kResponse].str == "ok");
  CHECK(r[fs.dimension_ids().at(0)].str == "gold");
  // A near miss in the raw bytes is no match, and bad keys are still classified.
  REQUIRE(d.decode(R"({"ts":1795672800,"latency_msx":42,"latency_m":7})", r).outcome == Outcome::kApplied);
  CHECK_FALSE(r[kLatencyMs].present());
  CHECK(d.decode(R"({"ts":1795672800,"lat)", r).outcome == Outcome::kInvalidJson);
  CHECK(d.decode("{\"ts\":1795672800,\"k\\ud800\":1}", r).outcome != Outcome::kApplied);
}

TEST_CASE("decode: keys of every length up to 40, plain or escaped anywhere, last in the document or not") {
  // The decoder finds a plain key's closing quote 16 bytes at a time: keys around and past
  // that width, escapes before and after it, and a key right before the end of the input.
  for (size_t len = 1; len <= 40; ++len) {
    std::string key;
    for (size_t i = 0; i < len; ++i) key += char('a' + i % 26);
    Config cfg = gwtest::config("input: {dimensions: {d: /" + key + "}}");
    FieldSet fs(cfg);
    Decoder d(fs, cfg.max_record_bytes);
    std::vector<std::string> spellings{key};
    for (size_t at : {size_t(0), len / 2, size_t(15), size_t(16), len - 1})
      if (at < len) {
        char esc[8];
        std::snprintf(esc, sizeof esc, "\\u%04x", unsigned(key[at]));
        spellings.push_back(key.substr(0, at) + esc + key.substr(at + 1));
      }
    for (auto& k : spellings) {
      for (bool last : {false, true}) {
        std::string doc = last ? R"({"ts":1795672800,")" + k + R"(":"v"})" : R"({")" + k + R"(":"v","ts":1795672800})";
        CAPTURE(doc);
        // In place with only the required padding after it, and through the decoder's own copy.
        std::string buf = doc + std::string(Decoder::kPadding, ' ');
        Record a, b;
        REQUIRE(d.decode(std::string_view(buf.data(), doc.size()), a, Decoder::kPadding).outcome == Outcome::kApplied);
        REQUIRE(d.decode(doc, b).outcome == Outcome::kApplied);
        CHECK(a[fs.dimension_ids().at(0)].str == "v");
        CHECK(b[fs.dimension_ids().at(0)].str == "v");
        // One byte more is another key.
        std::string longer = doc;
        longer.insert(doc.find(k) + k.size(), "z");
        REQUIRE(d.decode(longer, b).outcome == Outcome::kApplied);
        CHECK_FALSE(b[fs.dimension_ids().at(0)].present());
      }
    }
  }
}

namespace {
// Decodes `doc` with the fast path on and off (each in place, with `after` behind it) and checks
// both read the same: outcome, detail and every field. Returns whether the fast path read it.
bool same_both_ways(Decoder& fast, Decoder& ref, const std::string& doc, const std::string& after = std::string(Decoder::kPadding, ' ')) {
  std::string buf = doc + after;
  Record a, b;
  uint64_t before = fast.fast_path_reads();
  DecodeResult ra = fast.decode(std::string_view(buf.data(), doc.size()), a, after.size());
  bool took = fast.fast_path_reads() == before + 1;
  DecodeResult rb = ref.decode(std::string_view(buf.data(), doc.size()), b, after.size());
  CAPTURE(doc);
  CHECK(ra.outcome == rb.outcome);
  CHECK(ra.detail == rb.detail);
  if (took) CHECK(ra.outcome == Outcome::kApplied);  // the fast path never rejects
  if (ra.outcome != Outcome::kApplied || rb.outcome != Outcome::kApplied) return took;
  REQUIRE(a.fields.size() == b.fields.size());
  for (size_t i = 0; i < a.fields.size(); ++i) {
    CAPTURE(i);
    CHECK(a.fields[i].type == b.fields[i].type);
    CHECK(std::memcmp(&a.fields[i].num, &b.fields[i].num, sizeof(double)) == 0);  // -0 too
    CHECK(a.fields[i].str == b.fields[i].str);
  }
  return took;
}

// Deterministic random numbers below n (xorshift64), so a failing input comes back every run.
struct Rng {
  uint64_t x;
  size_t operator()(uint64_t n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return size_t(x % n);
  }
};
}  // namespace

namespace {
// Two decoders over the same fields: `fast` with the fast path, `ref` through simdjson only.
struct Decoders {
  Config cfg;
  FieldSet fs;
  Decoder fast, ref;
  explicit Decoders(Config c) : cfg(std::move(c)), fs(cfg), fast(fs, cfg.max_record_bytes), ref(fs, cfg.max_record_bytes) {
    ref.set_fast_path(false);
  }
};
}  // namespace

TEST_CASE("decode: the fast path reads plain documents, and reads what simdjson reads") {
  Decoders d(gwtest::config("input: {max_record_bytes: 100000, dimensions: {tier: /meta/tier, first: /tags/0}}"));
  Decoder &fast = d.fast, &ref = d.ref;
  // Read by the fast path: every JSON form it handles itself.
  const std::vector<std::string> plain = {
      R"({"ts":"2026-11-26T06:00:00.123Z","model":"m","latency_ms":1234,"response":"hi \"there\"\n\\ \/ \b\f\r\t end","judge_score":0.82})",
      R"({})",
      " {\n\t\"ts\" :\r\n 1795672800 , \"model\" : \"m\" }\n",
      R"({"latency_ms":-0,"ttft_ms":0,"prompt_tokens":123456789012345,"completion_tokens":1234567890123456789,"cost_usd":1.5e-3,"judge_score":-2E+2})",
      R"({"judge_score":0.1,"user_feedback":true,"cost_usd":null,"status":200,"request_id":false})",
      R"({"user_feedback":false,"status":"error","variant":12.5,"model_version":true})",
      R"({"ts":1,"ts":2,"model":"a","model":"b"})",
      R"({"unused":{"deep":[1,2.5e3,{"x":"y\n"},[],{},true,false,null,"s"]},"meta":{"tier":"gold","other":[{}]},"tags":["a","b"]})",
      R"({"response":"café über 的 😀 naïve","model":"模型"})",
      R"({"k\"ey":1,"la\/tency_ms":5,"response":""})",
  };
  const bool built = Decoder::has_fast_path();  // else every document goes to simdjson
  for (auto& d : plain) CHECK(same_both_ways(fast, ref, d) == built);
  // Strings whose escapes, quote or non-ASCII bytes fall at and around the 32-byte steps.
  for (size_t pre = 0; pre < 70; ++pre)
    for (const char* tail : {"\\n", "\\\"", "é", "\\\\x", ""}) {
      std::string doc = "{\"response\":\"" + std::string(pre, 'a') + tail + std::string(pre % 7, 'b') + "\",\"model\":\"m\"}";
      CHECK(same_both_ways(fast, ref, doc) == built);
    }
  // Left to simdjson (and so read or rejected exactly as before): what the fast path does not
  // check itself.
  const std::vector<std::string> other = {
      R"({"response":"\u00e9t\u00E9","model":"x"})",
      R"({"response":"\ud83d\ude00"})",
      R"({"response":"\ud800"})",
      "{\"response\":\"tab\there\"}",
      "{\"response\":\"bad \xff\xfe utf8\"}",
      "{\"response\":\"cut \xe2\x82\"}",
      "{\"model\":\"m\"}\xef\xbb\xbf",
      "\xef\xbb\xbf{\"model\":\"m\"}",
      R"({"latency_ms":1e400})",
      R"({"latency_ms":1e-400})",
      R"({"latency_ms":01})",
      R"({"latency_ms":1.})",
      R"({"latency_ms":.5})",
      R"({"latency_ms":+1})",
      R"({"latency_ms":-})",
      R"({"latency_ms":1e})",
      R"({"ts":0e22222222222222222222222})",  // simdjson rejects it, from_chars reads 0 (fuzz)
      R"({"ts":1e00000000000000000000002})",
      R"({"latency_ms":1x})",
      R"({"latency_ms":tru})",
      R"({"latency_ms":nul,"model":"m"})",
      R"({"latency_ms":"fast"})",
      R"({"model":{"name":"x"}})",
      R"({"response":["an","array"]})",
      R"({"unused":[1 2],"model":"m"})",
      R"({"unused":tru,"model":"m"})",
      R"({"unused":{"a" 1},"model":"m"})",
      R"({"model":"m",})",
      R"({"model":"m"} trailing)",
      R"({"model":"m"}})",
      R"({"model" "m"})",
      R"({model:"m"})",
      R"({"model":"m")",
      R"({"response":"unterminated)",
      R"({"response":"bad escape \x"})",
      R"([1,2,3])",
      R"("just a string")",
      "{\"x\":" + std::string(40, '[') + std::string(40, ']') + ",\"model\":\"m\"}",
      "{\"x\":" + std::string(150, '[') + "}",
  };
  for (auto& d : other) CHECK_FALSE(same_both_ways(fast, ref, d));
  // Bytes after the document that would change the result if it read past its end.
  for (const char* doc : {R"({"ts":1795672800,"latency_ms":1)", R"({"ts":1795672800,"response":"unterminated)", R"({"response":"a\)"})
    CHECK_FALSE(same_both_ways(fast, ref, doc, R"(99999"}]},{"ts":123,"latency_ms":5})" + std::string(Decoder::kPadding, '9')));
}

TEST_CASE("decode: unpadded documents are read where they lie, never past their end") {
  // A Kafka payload has nothing readable after it: each document here ends at a page whose next
  // page is unmapped, so a read past its end would fault. Ends fall at every offset of a 32-byte
  // step, inside and after strings with and without escapes.
  Decoders d(gwtest::default_config());
  Decoder &fast = d.fast, &ref = d.ref;
  const long page = sysconf(_SC_PAGESIZE);
  char* mem = static_cast<char*>(mmap(nullptr, size_t(2 * page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  REQUIRE(mem != MAP_FAILED);
  REQUIRE(mprotect(mem + page, size_t(page), PROT_NONE) == 0);
  size_t read_fast = 0;
  for (size_t n = 0; n < 70; ++n)
    for (const char* body : {"abc", "a\\nb", "caf\xc3\xa9"}) {
      for (bool cut : {false, true}) {
        std::string doc = "{\"model\":\"m\",\"response\":\"" + std::string(n, 'x') + body + "\"}";
        if (cut) doc.resize(doc.size() - 2);  // ends inside the string: invalid, left to simdjson
        char* at = mem + page - long(doc.size());
        std::memcpy(at, doc.data(), doc.size());
        Record a, b;
        uint64_t before = fast.fast_path_reads();
        DecodeResult ra = fast.decode(std::string_view(at, doc.size()), a);
        read_fast += fast.fast_path_reads() - before;
        DecodeResult rb = ref.decode(doc, b);
        CAPTURE(doc);
        CHECK(ra.outcome == rb.outcome);
        CHECK(ra.detail == rb.detail);
        if (ra.outcome == Outcome::kApplied) CHECK(a[kResponse].str == b[kResponse].str);
      }
    }
  munmap(mem, size_t(2 * page));
  if (Decoder::has_fast_path()) CHECK(read_fast == 70 * 3);  // every whole document
}

TEST_CASE("decode: numbers with many digits are read to the nearest double on both paths") {
  // simdjson 3.0.1 read 0.95000000000000000000 as 0.0277 (its issue #2093); the fuzz target
  // found the fast path and simdjson disagreeing on such a number.
  Config cfg = gwtest::default_config();
  FieldSet fs(cfg);
  for (bool fast : {true, false}) {
    CAPTURE(fast);
    Decoder d(fs, cfg.max_record_bytes);
    d.set_fast_path(fast);
    Record r;
    REQUIRE(d.decode(R"({"judge_score":0.95000000000000000000,"cost_usd":0.89999999999999999999999999999,"latency_ms":1000000000.000000001})", r).outcome == Outcome::kApplied);
    CHECK(r[kJudgeScore].num == 0.95);
    CHECK(r[kCostUsd].num == 0.9);
    CHECK(r[kLatencyMs].num == 1e9);
    CHECK(r[kJudgeScore].str == "0.95000000000000000000");
  }
}

TEST_CASE("decode: short decimals are read to the nearest double, as simdjson and strtod read them") {
  // The fast path divides a decimal of up to 15 digits by its power of ten (exact operands, one
  // rounding); longer ones and exponents go through from_chars.
  Decoders d(gwtest::default_config());
  Decoder &fast = d.fast, &ref = d.ref;
  Rng rnd{0x853C49E6748FEA9Bull};
  size_t read_fast = 0;
  for (int it = 0; it < 20000; ++it) {
    std::string num = rnd(4) ? "" : "-";
    const size_t int_digits = 1 + rnd(9), frac_digits = 1 + rnd(16);
    num += char('0' + (int_digits > 1 ? 1 + rnd(9) : rnd(10)));
    for (size_t i = 1; i < int_digits; ++i) num += char('0' + rnd(10));
    num += '.';
    for (size_t i = 0; i < frac_digits; ++i) num += char('0' + (rnd(3) ? rnd(10) : 9 * rnd(2)));  // runs of 0 and 9
    CAPTURE(num);
    read_fast += same_both_ways(fast, ref, "{\"judge_score\":" + num + ",\"cost_usd\":" + num + "e-3}");
    Record r;
    REQUIRE(fast.decode("{\"judge_score\":" + num + "}", r).outcome == Outcome::kApplied);
    const double want = std::strtod(num.c_str(), nullptr);
    CHECK(std::memcmp(&r[kJudgeScore].num, &want, sizeof want) == 0);
  }
  CHECK(read_fast == (Decoder::has_fast_path() ? 20000u : 0u));
}

TEST_CASE("decode: fast path and simdjson agree on mutated records") {
  // Random byte edits of realistic records, deterministic: whatever the fast path reads, it reads
  // as simdjson does, and everything else gets simdjson's verdict. Flat records with a nested
  // dimension, and OpenAI-style records (fields under objects and array indexes).
  const char alphabet[] = "\"\\{}[]:,0123456789.eE+-tfnulrsa \n\t\x01\x7f\xc3\xa9\xff";
  Rng rnd{0x9E3779B97F4A7C15ull};
  auto run = [&](const std::string& yaml, const std::vector<std::string>& seeds) {
    Decoders d(gwtest::config(yaml));
    Decoder &fast = d.fast, &ref = d.ref;
    size_t fast_read = 0, total = 0;
    for (int it = 0; it < 6000; ++it) {
      std::string d = seeds[size_t(it) % seeds.size()];
      for (size_t edits = 1 + rnd(3); edits > 0; --edits) {
        size_t at = rnd(d.size() + 1);
        char c = alphabet[rnd(sizeof alphabet - 1)];
        switch (rnd(3)) {
          case 0: if (at < d.size()) d[at] = c; break;
          case 1: d.insert(d.begin() + long(at), c); break;
          default: if (at < d.size()) d.erase(d.begin() + long(at)); break;
        }
      }
      fast_read += same_both_ways(fast, ref, d);
      ++total;
    }
    // Both kinds occur: edits inside strings keep records valid, edits in the structure do not.
    CAPTURE(yaml);
    if (Decoder::has_fast_path()) CHECK(fast_read > total / 10);
    CHECK(fast_read < total - total / 10);
  };
  run("input: {max_record_bytes: 100000, dimensions: {tier: /meta/tier}}",
      {R"({"ts":"2026-11-26T00:00:00.008Z","request_id":"req-1","endpoint":"chat","model":"tiny-t","model_version":"2026-07-30","variant":"control","latency_ms":1491,"ttft_ms":189,"status":"ok","prompt_tokens":579,"completion_tokens":276,"finish_reason":"stop","response":"Can Berlin too coöperate why before model.\nScience own value buffer über group \"quoted\" further large Paris, [1] https://example.org/x","judge_score":0.585})",
       R"({"ts":1795672800123,"meta":{"tier":"gold","list":[1,-2.5e-3,true,null,{"a":"b"}]},"cost_usd":0.00012,"user_feedback":-1,"response":"短い 応答\tです"})"});
  run("input: {preset: openai, max_record_bytes: 100000}",
      {R"({"timestamp":1795672800123,"request_id":"abc","endpoint":"/v1/chat/completions","latency_ms":800,"status":200,"request":{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]},"response":{"id":"c-1","model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!\nSee [2]."},"finish_reason":"length"},{"index":1,"message":{"content":"no"}}],"usage":{"prompt_tokens":9,"completion_tokens":12}},"metadata":{"variant":"control","judge_score":0.5}})"});
}

TEST_CASE("decode: the fast path's UTF-8 check agrees with simdjson's on every kind of sequence") {
  // The fast path vouches for ASCII plus two-byte sequences itself and hands anything else to
  // simdjson's full check: random strings of well-formed and broken sequences of every length,
  // around the 32-byte steps, before escapes and quotes.
  Decoders d(gwtest::config("input: {max_record_bytes: 100000}"));
  Decoder &fast = d.fast, &ref = d.ref;
  const std::vector<std::string> pieces = {
      "a", "bc", " ", "\xc3\xa9", "\xc2\x80", "\xdf\xbf", "\xc3", "\xa9", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe2\x82\xac",
      "\xe2\x82", "\xf0\x9f\x98\x80", "\xed\x9f\xbf", "\xed\xa0\x80", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80",
      "\xff", "\\n", "\\\"", "\\\\", "\xc0", "\xc1", "\xc3\xc1", "\xdf\xc0", "\xc2\x7f", "\xe0", "\xe0\xa9", "\xe0\x80", "\xf5\x80"};
  Rng rnd{0x2545F4914F6CDD1Dull};
  // Mostly good pieces, a bad one now and then, so that both verdicts are common.
  const size_t good[] = {0, 1, 2, 3, 4, 5, 11, 13, 14, 20, 21, 22};
  size_t valid = 0, total = 0, fast_read = 0;
  for (int it = 0; it < 20000; ++it) {
    std::string text;
    const size_t n = rnd(48);
    for (size_t i = 0; i < n; ++i) text += rnd(12) ? pieces[good[rnd(std::size(good))]] : pieces[rnd(pieces.size())];
    std::string doc = "{\"response\":\"" + std::string(rnd(40), 'x') + text + "\",\"model\":\"" + text + "\"}";
    fast_read += same_both_ways(fast, ref, doc);
    Record r;
    valid += ref.decode(doc, r).outcome == Outcome::kApplied;
    ++total;
  }
  CHECK(valid > total / 5);
  CHECK(valid < total - total / 5);
  if (Decoder::has_fast_path()) CHECK(fast_read == valid);  // every valid one: it has no \u escapes
  // A lead byte cut short right at a step, before a quote, an escape or another lead.
  for (size_t pre = 0; pre < 70; ++pre)
    for (const char* tail : {"\xc3", "\xc3\\n", "\xa9", "\xc3\xa9\xa9", "\xc3\xc3\xa9", "\xc3\xa9", "\xc3\xa9\\n\xc3\xa9"}) {
      std::string doc = "{\"response\":\"" + std::string(pre, 'a') + tail + "\",\"model\":\"m\"}";
      Record r;
      const bool ok = ref.decode(doc, r).outcome == Outcome::kApplied;
      CHECK(ok == (std::strcmp(tail, "\xc3\xa9") == 0 || std::strcmp(tail, "\xc3\xa9\\n\xc3\xa9") == 0));
      CHECK(same_both_ways(fast, ref, doc) == (Decoder::has_fast_path() && ok));
    }
}

TEST_CASE("decode: RFC 3339 timestamps") {
  int64_t ms = 0;
  REQUIRE(parse_rfc3339("2026-11-26T06:00:00.123Z", ms));
  CHECK(ms == 1795672800123);
  REQUIRE(parse_rfc3339("2026-11-26T08:00:00+02:00", ms));
  CHECK(ms == 1795672800000);
  REQUIRE(parse_rfc3339("2026-11-26 06:00:00.1234567z", ms));
  CHECK(ms == 1795672800123);
  CHECK_FALSE(parse_rfc3339("2026-13-26T06:00:00Z", ms));
  CHECK_FALSE(parse_rfc3339("yesterday", ms));
  CHECK_FALSE(parse_rfc3339("2026-11-26T06:00:00", ms));
  CHECK(format_rfc3339(1795672800123) == "2026-11-26T06:00:00.123Z");
}
}
