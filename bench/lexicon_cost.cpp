// What the lexicons cost per response, and what each pattern adds: for rule authors who edit
// rules/lexicon/*.yaml and for anyone chasing the replay's pattern-scan time.
//   lexicon_cost FILE [RESPONSES=20000] [--each]
// Decodes up to RESPONSES responses of FILE (JSONL, flat preset) into memory, then times the
// default lexicons (rules/lexicon/, every one in one database, as guardwatch builds it), each lexicon alone,
// and with --each the matcher without one pattern at a time. Rounds alternate the variants;
// each line is the median of 5 rounds in ns per response, on one thread, texts in memory.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "guardwatch/config.hpp"
#include "guardwatch/decode.hpp"
#include "guardwatch/engine.hpp"
#include "guardwatch/extract.hpp"
#include "guardwatch/metrics.hpp"
#include "read_lines.hpp"

using namespace gw;

namespace {

struct Variant {
  std::string label;
  std::unique_ptr<Matcher> matcher;
  std::vector<double> ns;
  size_t hits = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: lexicon_cost FILE [RESPONSES=20000] [--each]\n");
    return 2;
  }
  size_t limit = 20000;
  bool each = false;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--each") == 0) each = true;
    else limit = size_t(std::max(1L, std::atol(argv[i])));
  }

  Config cfg;
  FieldSet fields{cfg};
  Decoder decoder{fields, cfg.max_record_bytes};
  Record rec;
  std::vector<std::string> texts;
  size_t bytes = 0;
  long n = bench::for_each_line(argv[1], Decoder::kPadding, [&](const char* line, size_t len, size_t after) {
    if (texts.size() >= limit) return;
    if (decoder.decode(std::string_view(line, len), rec, after).outcome != Outcome::kApplied) return;
    texts.emplace_back(rec[kResponse].str);
    bytes += texts.back().size();
  });
  if (n < 0) {
    std::perror(argv[1]);
    return 1;
  }
  if (texts.empty()) {
    std::fprintf(stderr, "no responses in %s\n", argv[1]);
    return 1;
  }

  std::vector<Variant> vs;
  std::vector<ConfigError> errors;
  auto lex = load_lexicons(cfg, errors);  // the configured lexicon files, as guardwatch loads them
  for (auto& e : errors) std::fprintf(stderr, "%s:%d: %s: %s\n", e.file.c_str(), int(e.line), e.key.c_str(), e.message.c_str());
  if (lex.empty()) return 1;
  vs.push_back({"every lexicon (as shipped)", std::make_unique<Matcher>(lex)});
  vs.push_back({"one database (no lead-byte split)", std::make_unique<Matcher>(lex, "", false)});
  for (size_t l = 0; l < lex.size(); ++l)
    vs.push_back({std::string(l == 0 ? "refusal" : "citation") + " lexicon alone", std::make_unique<Matcher>(std::vector{lex[l]})});
  if (each)
    for (size_t l = 0; l < lex.size(); ++l)
      for (size_t p = 0; p < lex[l].patterns.size(); ++p) {
        auto without = lex;
        without[l].patterns.erase(without[l].patterns.begin() + long(p));
        vs.push_back({"without " + lex[l].patterns[p].name, std::make_unique<Matcher>(without)});
      }

  std::vector<uint32_t> hits;
  for (int round = 0; round < 5; ++round)
    for (auto& v : vs) {
      size_t h = 0;
      auto t0 = std::chrono::steady_clock::now();
      for (auto& t : texts) {
        hits.clear();
        v.matcher->scan(t, hits);
        h += hits.size();
      }
      v.ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / double(texts.size()));
      v.hits = h;
    }
  std::printf("%zu responses, mean %zu bytes\n", texts.size(), bytes / texts.size());
  double base = 0;
  for (auto& v : vs) {
    std::sort(v.ns.begin(), v.ns.end());
    double med = v.ns[v.ns.size() / 2];
    if (&v == &vs[0]) base = med;
    std::printf("%-40s %7.1f ns/response  %+7.1f  (pattern hits %zu)\n", v.label.c_str(), med, med - base, v.hits);
  }
  return 0;
}
