// Where a replayed record's time goes, stage by stage, on one thread: each pass reads the file
// the way `guardwatch replay` does (8 MiB blocks, lines parsed in place) and does one more stage
// than the pass before, so the differences are the stages' costs. The last pass is the replay
// itself on one thread (file source, engine, store): what it adds over the extraction is the
// ordered part (series, windows, sketches, exemplars). The baseline pass is what
// bench/replay.sh's simdjson-only program does per line, for comparison with "+ decode".
//   stages FILE [PASSES=3]   (prints the best of PASSES for each stage, ns per record)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "guardwatch/config.hpp"
#include "guardwatch/decode.hpp"
#include "guardwatch/engine.hpp"
#include "guardwatch/extract.hpp"
#include "guardwatch/metrics.hpp"
#include "guardwatch/source.hpp"
#include "baseline_parse.hpp"
#include "read_lines.hpp"

using namespace gw;

namespace {

enum class Stage { kRead, kDecode, kTextStats, kScan, kExtract, kReplay, kBaseline };
const char* const kNames[] = {"read lines",       "+ decode",     "+ text statistics", "+ pattern scan",
                              "whole extraction", "+ store etc.", "baseline parse"};

struct Tools {
  Config cfg;
  FieldSet fields{cfg};
  Decoder decoder{fields, cfg.max_record_bytes};
  std::unique_ptr<Matcher> matcher;
  MetricRegistry metrics;
  std::unique_ptr<Extractor> extractor;
  Record rec;
  Observation obs;
  std::vector<uint32_t> hits;
  simdjson::ondemand::parser baseline_parser;
};

// Returns ns per record; `sink` keeps results alive so nothing is optimised away.
double pass(const char* path, Stage stage, Tools& t, size_t& records, uint64_t& sink) {
  if (stage == Stage::kReplay) {
    // guardwatch replay on one thread (input.threads: 1), engine built before the clock starts.
    Config cfg = t.cfg;
    cfg.input_threads = 1;
    Engine engine(cfg, nullptr);
    auto source = make_jsonl_source(path);
    std::atomic<bool> stop{false};
    auto t0 = std::chrono::steady_clock::now();
    if (!source->run(engine, stop)) std::exit(1);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    records = size_t(engine.records_seen());
    sink += records;
    return records ? secs * 1e9 / double(records) : 0;
  }
  auto t0 = std::chrono::steady_clock::now();
  long n = bench::for_each_line(path, Decoder::kPadding, [&](const char* line, size_t len, size_t after) {
    if (stage == Stage::kRead) return;
    if (stage == Stage::kBaseline) {
      bench::baseline_parse(t.baseline_parser, line, len, after, sink);
      return;
    }
    sink += size_t(t.decoder.decode(std::string_view(line, len), t.rec, after).outcome);
    std::string_view text = t.rec[kResponse].str;
    switch (stage) {
      case Stage::kTextStats: sink += text_stats(text).words; break;
      case Stage::kScan:
        sink += text_stats(text).words;
        t.hits.clear();
        t.matcher->scan(text, t.hits);
        sink += t.hits.size();
        break;
      case Stage::kExtract:
        t.extractor->extract(t.rec, t.obs);
        sink += t.obs.matches.size();
        break;
      default: break;
    }
  });
  if (n < 0) {
    std::perror(path);
    std::exit(1);
  }
  records = size_t(n);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return records ? secs * 1e9 / double(records) : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: stages FILE [PASSES=3]\n");
    return 2;
  }
  int passes = argc > 2 ? std::max(1, std::atoi(argv[2])) : 3;
  Tools t;
  std::vector<ConfigError> errors;
  t.matcher = build_matcher(t.cfg, errors);
  if (!t.matcher) {
    for (auto& e : errors) std::fprintf(stderr, "%s\n", e.message.c_str());
    return 1;
  }
  t.extractor = std::make_unique<Extractor>(t.cfg, t.metrics, *t.matcher);
  uint64_t sink = 0;
  size_t records = 0;
  double prev = 0;
  double read = 0;
  for (Stage s : {Stage::kRead, Stage::kDecode, Stage::kTextStats, Stage::kScan, Stage::kExtract, Stage::kReplay, Stage::kBaseline}) {
    double best = 1e18;
    for (int i = 0; i < passes; ++i) best = std::min(best, pass(argv[1], s, t, records, sink));
    if (s == Stage::kRead) read = best;
    if (s == Stage::kBaseline)  // not cumulative: read lines plus the baseline's parse
      std::printf("%-20s %6.0f ns/record  (%+.0f over read lines; compare with + decode)\n", kNames[int(s)], best, best - read);
    else
      std::printf("%-20s %6.0f ns/record  (%+.0f)\n", kNames[int(s)], best, s == Stage::kRead ? best : best - prev);
    prev = best;
  }
  std::printf("records=%zu checksum=%llu\n", records, static_cast<unsigned long long>(sink));
  return 0;
}
