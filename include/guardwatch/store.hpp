// aggregate: Observations -> series windows. A series is a label set; each keeps rings of time
// buckets per tier (DESIGN §4) so any window, offset window or cohort is a merge of buckets.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "guardwatch/config.hpp"
#include "guardwatch/extract.hpp"
#include "guardwatch/metrics.hpp"
#include "guardwatch/record.hpp"
#include "guardwatch/sketch.hpp"

namespace gw {

struct PropAgg {
  uint64_t trials = 0, successes = 0;
  void merge(const PropAgg& o) { trials += o.trials; successes += o.successes; }
  double ratio() const { return trials ? double(successes) / double(trials) : std::numeric_limits<double>::quiet_NaN(); }
};

struct DistAgg {
  uint64_t count = 0;
  double sum = 0, sumsq = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  Sketch sketch;
  void add(double v, int32_t key) {
    ++count;
    sum += v;
    sumsq += v * v;
    min = std::min(min, v);
    max = std::max(max, v);
    sketch.add_key(v, key);
  }
  void merge(const DistAgg& o);
  void clear();
  double mean() const { return count ? sum / double(count) : std::numeric_limits<double>::quiet_NaN(); }
  double variance() const;  // sample variance (n-1)
};

// The merged aggregates of one window of one series (or of several series).
struct WindowAgg {
  std::vector<PropAgg> props;  // indexed by metric id (only proportion ids used)
  std::vector<DistAgg> dists;  // indexed by metric id (only distribution ids used)
  uint64_t records = 0;
  explicit WindowAgg(size_t metrics = 0) : props(metrics), dists(metrics) {}
  void merge(const WindowAgg& o);
};

// Label values of a series: model, model_version, endpoint, variant, then dimensions.
using LabelValues = std::vector<std::string>;

// A recent record, kept so alerts can point at real examples.
struct ExemplarSlot {
  int64_t ts_ms = std::numeric_limits<int64_t>::min();  // its 15 s slot is ts_ms / 15000
  double value = 0;
  char id[48];
  uint8_t id_len = 0;
  uint16_t topic = 0;  // index into Store::topics(); 0 = not from Kafka
  int32_t partition = -1;
  int64_t offset = -1;
  int64_t line = 0;
};

struct Series {
  LabelValues labels;
  // Exemplar rings, one slot per 15 s of event time (3 minutes, longer than the default allowed
  // lateness of 2 minutes, so the slots before an evaluation time are still there when it runs):
  // per proportion metric the first success of each slot (e.g. a refused response); per
  // distribution metric the largest and the smallest value of each slot.
  static constexpr int64_t kExemplarSpacingMs = 15'000;
  static constexpr size_t kExemplarSlots = 12;
  std::vector<std::array<ExemplarSlot, kExemplarSlots>> rings;
  struct Bucket {
    int64_t epoch = std::numeric_limits<int64_t>::min();  // start / resolution
    uint64_t records = 0;
    std::vector<PropAgg> props;  // compact: one per proportion metric (Store::slot)
    std::vector<DistAgg> dists;  // compact: one per distribution metric
  };
  std::vector<std::vector<Bucket>> tiers;  // [tier][slot]
  int64_t last_ts_ms = 0;
  // Input partitions (Engine's ids) whose records are in this series: a revoked partition's
  // series are dropped, so a replica never keeps what another replica now counts.
  std::vector<uint32_t> sources;
  void note_source(uint32_t id) {
    if (!sources.empty() && sources.back() == id) return;
    for (auto s : sources)
      if (s == id) return;
    sources.push_back(id);
  }
};

class Store {
 public:
  Store(const Config& cfg, const MetricRegistry& metrics, std::vector<std::string> label_names);

  // Finds or creates the series of a record's labels, applying the caps.
  Series& series_for(const std::vector<std::string_view>& labels);
  // The same by a key from append_key: the engine builds it while preparing a record on any
  // thread, so the ordered part only looks it up.
  Series& series_for_key(std::string_view key);
  // Appends the series key of one label value to `key` (call once per label, in label order):
  // its length (LEB128) and its bytes, so any label value, control bytes included, splits back.
  static void append_key(std::string& key, std::string_view value) {
    size_t n = value.size();
    while (n >= 0x80) {
      key.push_back(char(0x80 | (n & 0x7F)));
      n >>= 7;
    }
    key.push_back(char(n));
    key.append(value);
  }
  // `rec` (optional) supplies the request id and source position kept as exemplars.
  void add(Series& s, int64_t ts_ms, const Observation& obs, const Record* rec = nullptr);

  // Window [end - length, end) (bucket-aligned in the finest tier that retains it). With `only`,
  // just those metrics are merged.
  WindowAgg query(const Series& s, int64_t end_ms, int64_t length_ms, const std::vector<int>* only = nullptr) const;

  struct ExemplarOut {
    const ExemplarSlot* slot;
    double value;
  };
  // Exemplars of `metric` with event time in [from, to): for proportions the most recent
  // successes; for distributions the recent records with the largest (or smallest) values.
  void exemplars(const Series& s, int metric, int64_t from, int64_t to, bool largest, std::vector<ExemplarOut>& out) const;
  const std::vector<std::string>& topics() const { return topics_; }

  const std::vector<std::string>& label_names() const { return label_names_; }
  const std::vector<std::unique_ptr<Series>>& series() const { return series_; }
  size_t metric_count() const { return metrics_.size(); }
  int64_t retention_ms() const;
  // The start of the earliest non-empty bucket (any series, any tier) that ends after `from_ms`;
  // INT64_MAX when there is none. Lets the rule runtime skip evaluations across a gap.
  int64_t first_data_ms(int64_t from_ms) const;
  // Folded label values, per label name, since start.
  const std::vector<uint64_t>& folded() const { return folded_; }
  uint64_t folded_global() const { return folded_global_; }
  size_t memory_bytes() const;  // approximate, for benchmarks and docs
  // Empties a series (its buckets, exemplars and sources); it stays registered under its labels.
  void clear_series(Series& s) const;
  // Removes the series whose newest record is older than `cutoff_ms` (an emptied one has none)
  // and frees their label values for new ones under the caps. Every Series
  // reference is invalid afterwards. Returns how many went.
  size_t expire(int64_t cutoff_ms);
  static constexpr const char* kOther = "__other__";

 private:
  const Config& cfg_;
  const MetricRegistry& metrics_;
  std::vector<std::string> label_names_;
  std::vector<uint32_t> caps_;
  std::vector<std::unordered_set<std::string>> seen_values_;
  std::vector<uint64_t> folded_;
  uint64_t folded_global_ = 0;
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view k) const { return std::hash<std::string_view>{}(k); }
  };
  std::unordered_map<std::string, Series*, KeyHash, std::equal_to<>> index_;  // by append_key keys
  std::vector<std::unique_ptr<Series>> series_;
  Series* other_ = nullptr;
  std::string key_;  // reused lookup buffer
  std::vector<std::string_view> capped_;
  std::vector<std::string_view> split_;  // a key's label values (series_for_key on a miss)
  // Keys whose label sets the caps folded, with their series and what each record of them adds
  // to the folded counts: the caps decide a key once and for good (the seen sets only grow), so
  // its later records skip the cap checks. Bounded by count and by key bytes (label values can
  // be long); emptied when either is reached.
  struct FoldedKey {
    Series* series;
    std::vector<uint16_t> labels;  // label indices folded into __other__
    bool global;                   // folded by series.max_series
  };
  std::unordered_map<std::string, FoldedKey, KeyHash, std::equal_to<>> folded_keys_;
  static constexpr size_t kMaxFoldedKeys = 8192, kMaxFoldedKeyBytes = 4 << 20;
  size_t folded_key_bytes_ = 0;
  std::vector<uint16_t> folding_;  // the label indices folded for the key at hand
  std::vector<int32_t> keys_;  // per-metric sketch keys of the current observation
  std::vector<uint16_t> slot_;  // metric id -> index in Bucket::props or Bucket::dists
  std::vector<uint8_t> is_prop_;  // metric id -> proportion (1) or distribution (0), packed for add()
  size_t n_props_ = 0, n_dists_ = 0;
  std::vector<std::string> topics_{""};
  void init_series(Series& s) const;
  void fill_slot(ExemplarSlot& e, int64_t ts, double v, const Record& r);
};

}  // namespace gw
