// libFuzzer target: arbitrary bytes as one record through decode -> extract -> aggregate.
// Never crashes, never hangs; every input ends in exactly one outcome. And the decoder's fast
// path reads exactly what simdjson reads: the same outcome and detail, and the same fields.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "guardwatch/decode.hpp"
#include "guardwatch/engine.hpp"

namespace {
gw::Config& config() {
  static gw::Config c = [] {
    auto r = gw::config_from_yaml("input: {preset: flat, dimensions: {region: /meta/region}}\nseries: {max_series: 50}\n", "fuzz");
    return r.config;
  }();
  return c;
}

void same(const gw::DecodeResult& ra, const gw::Record& a, const gw::DecodeResult& rb, const gw::Record& b) {
  if (ra.outcome != rb.outcome || ra.detail != rb.detail) __builtin_trap();
  if (ra.outcome != gw::Outcome::kApplied) return;
  if (a.fields.size() != b.fields.size()) __builtin_trap();
  for (size_t i = 0; i < a.fields.size(); ++i)
    if (a.fields[i].type != b.fields[i].type || std::memcmp(&a.fields[i].num, &b.fields[i].num, sizeof(double)) != 0 ||
        a.fields[i].str != b.fields[i].str)
      __builtin_trap();
}

// Both decoders read the input in place, followed by bytes that would change the result if
// either read past its end.
void compare_decoders(std::string_view in) {
  static gw::FieldSet fields(config());
  static auto fast = std::make_unique<gw::Decoder>(fields, config().max_record_bytes);
  static auto ref = [] {
    auto d = std::make_unique<gw::Decoder>(fields, config().max_record_bytes);
    d->set_fast_path(false);
    return d;
  }();
  static std::string buf;
  buf.assign(in);
  buf.append("1\"}]\\");
  buf.append(gw::Decoder::kPadding, '9');
  std::string_view doc(buf.data(), in.size());
  const size_t after = buf.size() - in.size();
  gw::Record a, b, c;
  gw::DecodeResult ra = fast->decode(doc, a, after), rb = ref->decode(doc, b, after);
  same(ra, a, rb, b);
  // And where libFuzzer put it, with nothing readable after it (as a Kafka payload): ASan
  // reports any read past its end.
  gw::DecodeResult rc = fast->decode(in, c, 0);
  same(rc, c, rb, b);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<gw::Engine> engine = std::make_unique<gw::Engine>(config());
  std::string_view in(reinterpret_cast<const char*>(data), size);
  compare_decoders(in);
  gw::SourcePos pos;
  pos.line = 1;
  uint64_t before = engine->records_seen();
  engine->ingest(in, pos);
  if (engine->records_seen() != before + 1) __builtin_trap();
  return 0;
}
