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

// A decoder with the fast path and one without, for one field set.
struct Pair {
  gw::FieldSet fields;
  gw::Decoder fast, ref;
  explicit Pair(const gw::Config& c) : fields(c), fast(fields, c.max_record_bytes), ref(fields, c.max_record_bytes) { ref.set_fast_path(false); }
};

// Both decoders read the input in place, followed by bytes that would change the result if
// either read past its end; then the fast one reads it where libFuzzer put it, with nothing
// readable after it (as a Kafka payload): ASan reports any read past its end.
void compare_decoders(Pair& d, std::string_view in) {
  static std::string buf;
  buf.assign(in);
  buf.append("1\"}]\\");
  buf.append(gw::Decoder::kPadding, '9');
  std::string_view doc(buf.data(), in.size());
  const size_t after = buf.size() - in.size();
  gw::Record a, b, c;
  gw::DecodeResult ra = d.fast.decode(doc, a, after), rb = d.ref.decode(doc, b, after);
  same(ra, a, rb, b);
  gw::DecodeResult rc = d.fast.decode(in, c, 0);
  same(rc, c, rb, b);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<gw::Engine> engine = std::make_unique<gw::Engine>(config());
  std::string_view in(reinterpret_cast<const char*>(data), size);
  static Pair flat(config()), openai([] {
    auto r = gw::config_from_yaml("input: {preset: openai}\n", "fuzz");
    return r.config;
  }());
  compare_decoders(flat, in);
  compare_decoders(openai, in);
  gw::SourcePos pos;
  pos.line = 1;
  uint64_t before = engine->records_seen();
  engine->ingest(in, pos);
  if (engine->records_seen() != before + 1) __builtin_trap();
  return 0;
}
