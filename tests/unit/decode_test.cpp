#include <doctest/doctest.h>

#include <cstdio>

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

TEST_CASE("decode: numbers with many digits are read to the nearest double") {
  // simdjson 3.0.1 read 0.95000000000000000000 as 0.0277 (its issue #2093).
  Config cfg = gwtest::default_config();
  FieldSet fs(cfg);
  Decoder d(fs, cfg.max_record_bytes);
  Record r;
  REQUIRE(d.decode(R"({"judge_score":0.95000000000000000000,"cost_usd":0.89999999999999999999999999999,"latency_ms":1000000000.000000001})", r).outcome == Outcome::kApplied);
  CHECK(r[kJudgeScore].num == 0.95);
  CHECK(r[kCostUsd].num == 0.9);
  CHECK(r[kLatencyMs].num == 1e9);
  CHECK(r[kJudgeScore].str == "0.95000000000000000000");
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
