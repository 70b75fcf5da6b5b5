// What bench/replay.sh's baseline does with each line: parse it with simdjson On-Demand and
// read every field, the response text unescaped, folding the values into a checksum so nothing
// is optimised away. Shared by simdjson_baseline and the stage bench, so both parse alike.
#pragma once
#include <simdjson.h>

#include <cstdint>
#include <string_view>

namespace bench {

inline void baseline_parse(simdjson::ondemand::parser& parser, const char* line, size_t len, size_t after, uint64_t& checksum) {
  simdjson::ondemand::document doc;
  if (parser.iterate(line, len, len + after).get(doc)) return;
  simdjson::ondemand::object obj;
  if (doc.get_object().get(obj)) return;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) break;
    simdjson::ondemand::value v;
    if (field.value().get(v)) break;
    simdjson::ondemand::json_type t;
    if (v.type().get(t)) break;
    if (t == simdjson::ondemand::json_type::string) {
      std::string_view s;
      if (!v.get_string().get(s)) checksum += s.size() + (s.empty() ? 0 : uint8_t(s[0]));
    } else if (t == simdjson::ondemand::json_type::number) {
      double d;
      if (!v.get_double().get(d)) checksum += uint64_t(d);
    }
  }
}

}  // namespace bench
