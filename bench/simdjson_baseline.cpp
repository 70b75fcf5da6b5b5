// Baseline for bench/replay.sh: the least a decoder must do. Reads a JSONL file in large blocks,
// parses each line with simdjson On-Demand and reads the same fields guardwatch reads,
// response text included (unescaped; bench/baseline_parse.hpp). Lines are parsed in place, as
// guardwatch's file source does (bench/read_lines.hpp).
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <string_view>

#include "baseline_parse.hpp"
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
    bench::baseline_parse(parser, line, len, after, checksum);
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
