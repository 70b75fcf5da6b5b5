// extract: Record -> Observation (one value per proxy metric, NaN when not observed).
#pragma once
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "guardwatch/config.hpp"
#include "guardwatch/metrics.hpp"
#include "guardwatch/record.hpp"

namespace gw {

struct Observation {
  std::vector<double> values;      // indexed by metric id; NaN = not observed
  std::vector<uint32_t> matches;   // pattern ids that matched (refusal/citation/custom)
  bool observed(size_t m) const { return !std::isnan(values[m]); }
};

// One pattern of a lexicon, as written in a lexicon file.
struct Pattern {
  std::string name;
  std::string regex;
  uint16_t group = 0;       // metric id the pattern counts toward
  ConfigError where;        // file, line and key of the regex, for compile errors
};

struct LexiconSpec {
  uint16_t metric;                  // which proportion metric the lexicon feeds
  std::vector<Pattern> patterns;
  uint32_t scan_first_chars = 0;    // 0 = whole response
  bool ignore_code = false;         // matches inside ``` fences or `inline code` do not count
};

// Loads a lexicon file (YAML: scan_first_chars, ignore_code, patterns[{name, regex}]).
// Errors name the file, line and key.
std::vector<ConfigError> load_lexicon(const std::string& path, uint16_t metric, LexiconSpec& out);

// All patterns of all lexicons compiled into one Vectorscan database; scanned once per text.
struct MatcherError : std::runtime_error {
  ConfigError error;
  explicit MatcherError(ConfigError e) : std::runtime_error(e.str()), error(std::move(e)) {}
};

class Matcher {
 public:
  // Compiles every pattern at once; a bad regex throws MatcherError naming its file and line.
  // With a `cache_dir`, the compiled database is kept there, keyed by every pattern, flag and
  // the Vectorscan version, and loaded instead of compiling when nothing changed (compiling the
  // shipped lexicons takes ~0.4 s, loading ~1 ms). Cache failures only fall back to compiling.
  // `split_lead_bytes` false keeps every pattern in the one database (tests and lexicon_cost
  // compare the two layouts; see rare_lead_byte in matcher.cpp).
  explicit Matcher(std::vector<LexiconSpec> lexicons, const std::string& cache_dir = "", bool split_lead_bytes = true);
  // True when the database came from the cache (for tests and the debug log).
  bool from_cache() const { return from_cache_; }
  // The cache directory `extract.pattern_cache` names: "" (off) for "off", the path itself, or
  // for "auto" $CACHE_DIRECTORY (systemd's CacheDirectory=), else $XDG_CACHE_HOME/guardwatch,
  // else $HOME/.cache/guardwatch, else off.
  static std::string resolve_cache_dir(const std::string& setting);
  ~Matcher();
  Matcher(const Matcher&) = delete;
  Matcher& operator=(const Matcher&) = delete;
  // Appends to `hits` the ids of matching patterns, honouring scan limits and code exclusion.
  void scan(std::string_view text, std::vector<uint32_t>& hits);
  const Pattern& pattern(uint32_t id) const { return patterns_[id]; }
  size_t size() const { return patterns_.size(); }
  // Validates one regex as the matcher would compile it; "" when fine.
  static std::string check_regex(const std::string& regex);
  // A matcher for another thread: shares the compiled databases, has its own scratch space.
  std::unique_ptr<Matcher> fork() const;

  struct Impl;

 private:
  Matcher();
  std::unique_ptr<Impl> impl_;
  std::vector<Pattern> patterns_;
  bool from_cache_ = false;
};

class FieldSet;

// A custom metric as the extractor evaluates it (declared in rule files).
struct CustomExtract {
  uint16_t metric;
  bool from_pattern = false;  // proportion over the response text (the matcher's group `metric`)
  uint16_t field = 0;         // record field id (FieldSet)
  enum class Op { kValue, kEq, kNe, kLt, kLe, kGt, kGe, kPresent } op = Op::kValue;
  std::string operand;
  double operand_num = 0;
  bool operand_is_num = false;
};

class Extractor {
 public:
  Extractor(const Config& cfg, const MetricRegistry& metrics, Matcher& matcher, std::vector<CustomExtract> custom = {});
  void extract(const Record& r, Observation& out);

 private:
  std::vector<CustomExtract> custom_;
  const Config& cfg_;
  const MetricRegistry& metrics_;
  Matcher& matcher_;
  std::vector<std::string> error_statuses_;
};

// Counts of characters (UTF-8 code points) and words: whitespace-separated, except that each
// Chinese or Japanese character is a word (text_stats in extractor.cpp says which code points).
struct TextStats {
  size_t chars = 0, words = 0;
  bool blank = true;
};
TextStats text_stats(std::string_view s);
TextStats text_stats_bytes(std::string_view s);  // the same, a byte at a time (no AVX2)
size_t utf8_length(std::string_view s);
size_t word_count(std::string_view s);

}  // namespace gw
