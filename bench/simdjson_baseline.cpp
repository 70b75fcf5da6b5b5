// Baseline for bench/replay.sh: the least a decoder must do. Reads a JSONL file in large blocks,
// parses each line with simdjson On-Demand and reads the same fields guardwatch reads,
// response text included (unescaped), folding them into a checksum so nothing is optimised away.
// Lines are parsed in place, as guardwatch's file source does (bench/read_lines.hpp).
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <string_view>

#include "read_lines.hpp"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: simdjson_baseline FILE\n");
    return 2;
  }
  simdjson::ondemand::parser parser;
  uint64_t checksum = 0;
  auto t0 = std::chrono::steady_clock::now();
  long records = bench::for_each_line(argv[1], simdjson::SIMDJSON_PADDING, [&](const char* line, size_t len, size_t after) {
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
  });
  if (records < 0) {
    std::perror(argv[1]);
    return 1;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("records=%ld seconds=%.3f records_per_second=%.0f checksum=%llu\n", records, secs, double(records) / secs,
              (unsigned long long)checksum);
  return 0;
}
