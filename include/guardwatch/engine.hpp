// The pipeline: bytes -> Record -> Observation -> series windows, with event-time bookkeeping.
// One thread applies records (ingest); readers take a consistent view under lock().
#pragma once
#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>

#include "guardwatch/config.hpp"
#include "guardwatch/decode.hpp"
#include "guardwatch/extract.hpp"
#include "guardwatch/metrics.hpp"
#include "guardwatch/record.hpp"
#include "guardwatch/rules.hpp"
#include "guardwatch/store.hpp"

namespace gw {

class Engine {
 public:
  // `wall_clock_ms` bounds future timestamps in live mode; pass nullptr for replay.
  // `custom` metrics (declared in rule files) are registered after the built-ins.
  Engine(const Config& cfg, std::function<int64_t()> wall_clock_ms = nullptr, const std::vector<CustomMetric>& custom = {});
  ~Engine();

  // Decodes, extracts and aggregates one record. Returns what happened to it.
  // `obs_out`, when given, receives the observation (for `extract` and exemplars); it is filled
  // for applied and late records. `detail_out`, when given, receives why a record was not
  // applied, for every such record (the log's samples of them are rate-limited).
  Outcome ingest(std::string_view bytes, const SourcePos& pos, Observation* obs_out = nullptr,
                 Record** rec_out = nullptr, std::string* detail_out = nullptr);

  // Batches: the same as ingest() on each record, in input order, but decoding and extracting
  // on two threads (input.threads). submit() queues a batch and returns at once, so the caller
  // can read the next batch while a helper thread prepares this one; wait(ticket) applies every
  // batch up to that one on the calling thread, which prepares chunks itself whenever the next
  // one is not ready. The bytes of a batch must stay valid until it is applied. Only the thread
  // that submits may wait, ingest, or drain.
  // `readable_after`: bytes after each record that may be read (Decoder::decode); a source whose
  // buffer has Decoder::kPadding spare bytes saves the decoder a copy of each record.
  uint64_t submit(const std::vector<std::string_view>& bytes, const std::vector<SourcePos>& pos, size_t readable_after = 0);
  void wait(uint64_t ticket);
  void drain();  // applies everything submitted
  void ingest_batch(const std::vector<std::string_view>& bytes, const std::vector<SourcePos>& pos) {
    wait(submit(bytes, pos));
  }

  std::unique_lock<std::mutex> lock() const { return std::unique_lock(mu_); }
  const Store& store() const { return *store_; }
  const MetricRegistry& metrics() const { return metrics_; }
  const FieldSet& fields() const { return *fields_; }
  const Matcher& matcher() const { return *matcher_; }
  const Config& config() const { return cfg_; }

  // Max event time seen, and the watermark: the newest event time that every input partition has
  // reached (the minimum over partitions of their newest event), minus the allowed lateness.
  // A Kafka consumer reads partitions at different paces; judging lateness per partition keeps a
  // partition that is read later from counting as late.
  int64_t max_event_ms() const { return max_event_ms_.load(std::memory_order_relaxed); }
  int64_t watermark_ms() const { return watermark_.load(std::memory_order_relaxed); }
  // Called on the ingesting thread after each applied record (replay drives rule evaluation).
  void on_applied(std::function<void()> f) { on_applied_ = std::move(f); }
  // Tests only: called before each record of a batch is prepared, on the thread preparing it; it
  // may throw, as a failed allocation there would. wait() rethrows such an error when the batch
  // reaches that record, after applying every record before it; the next wait() goes on there.
  void on_prepare(std::function<void(const SourcePos&)> f) { prepare_hook_ = std::move(f); }
  // Partitions revoked (they belong to another replica now): forgets their progress and empties
  // the series built only from them. A series that also holds records of a partition this replica
  // keeps cannot be split: then every series is emptied and the function returns true, and the
  // caller re-reads its remaining partitions (Kafka source: rewind and warm-up).
  bool revoke_partitions(const std::vector<std::pair<std::string, int32_t>>& parts);
  // Records applied from new input (warmup == false) or re-read during a warm-up.
  uint64_t outcome_count(Outcome o, bool warmup = false) const {
    return (warmup ? warm_outcomes_ : outcomes_)[size_t(o)].load(std::memory_order_relaxed);
  }
  uint64_t records_seen() const;
  // Series dropped by series.expire_after since start.
  uint64_t series_expired() const { return series_expired_.load(std::memory_order_relaxed); }
  // Live mode: a pass when one is due, also while no record arrives (the daemon's 1 s timer), so
  // a stream that stops altogether still loses its series after expire_after. No-op in event time,
  // whose clock only records move.
  void expire_idle_series();

 private:
  const Config& cfg_;
  std::function<int64_t()> wall_clock_ms_;
  MetricRegistry metrics_;
  std::unique_ptr<FieldSet> fields_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<Matcher> matcher_;
  std::unique_ptr<Extractor> extractor_;
  std::unique_ptr<Store> store_;
  mutable std::mutex mu_;
  std::atomic<int64_t> max_event_ms_{std::numeric_limits<int64_t>::min() / 2};
  std::array<std::atomic<uint64_t>, size_t(Outcome::kCount)> outcomes_{}, warm_outcomes_{};
  Record rec_;
  Observation obs_;
  std::string series_key_;  // the record's Store::append_key key (ingest)
  struct PartitionClock {
    std::string topic;
    int32_t partition;
    int64_t max_ms;
    uint32_t id;  // noted in Series::sources
  };
  uint32_t next_partition_id_ = 0;
  std::vector<PartitionClock> partitions_;  // guarded by mu_
  int64_t watermark_locked() const;
  template <class F>
  Outcome reject(Outcome o, const SourcePos& pos, F&& detail);
  // `max_ts_ms`: the newest event time accepted (wall clock + max_future), read once per chunk.
  Outcome prepare(Decoder& decoder, Extractor& extractor, std::string_view bytes, const SourcePos& pos, Record& r, Observation& o,
                  int64_t max_ts_ms, size_t readable_after = 0);
  int64_t max_ts_ms() const;
  // The record's series key (Store::append_key over model, model_version, endpoint, variant,
  // then the dimensions) into `key`.
  void series_key(const Record& r, std::string& key) const;
  // Called with lock() held in `g`; may release it briefly to log a late record.
  Outcome apply(int64_t ms, const SourcePos& pos, const Observation& o, const Record* rec, std::string_view series_key,
                std::unique_lock<std::mutex>& g);
  struct Prepared;
  struct Job;
  struct Pipeline;
  struct Worker;
  void helper_run();
  // Prepares records [max(from, chunk start), chunk end). Returns what a record's preparation
  // threw (a failed allocation; the test hook), with that record's index in `stopped_at`.
  std::exception_ptr prepare_chunk(Worker& w, Job& j, size_t chunk, size_t from, size_t& stopped_at) noexcept;
  // Marks a prepared chunk done, or failed with `error`. Call with Pipeline::mu held.
  static void finish_chunk(Job& j, size_t chunk, std::exception_ptr error, size_t stopped_at);
  void apply_prepared(const Prepared& p, std::unique_lock<std::mutex>& g);
  // Applies the job's prepared records [b, e) not applied yet, on the submitting thread.
  void apply_range(Job& j, size_t b, size_t e);
  std::unique_ptr<Pipeline> pipe_;
  std::vector<CustomExtract> custom_extracts_;
  Record exemplar_rec_;
  std::atomic<int64_t> watermark_{std::numeric_limits<int64_t>::min() / 2};
  std::function<void()> on_applied_;
  std::function<void(const SourcePos&)> prepare_hook_;
  // Set by ingest() for its one record only; no batch is in flight then (it drains first).
  std::string* detail_sink_ = nullptr;
  // series.expire_after (0: off). Looked at every kExpiryCheckRecords applied records, and run at
  // most once a minute (a quarter of expire_after if that is shorter) of its clock: the wall
  // clock in live mode, where the rules evaluate on it, else the watermark, which the event-time
  // evaluations never pass; in live mode the daemon's timer also calls expire_idle_series().
  // Guarded by mu_.
  static constexpr uint32_t kExpiryCheckRecords = 256;
  static constexpr int64_t kExpiryIntervalMs = 60'000;
  int64_t expire_after_ms_ = 0;
  int64_t next_expiry_ms_ = std::numeric_limits<int64_t>::min();
  uint32_t expiry_countdown_ = 1;
  std::atomic<uint64_t> series_expired_{0};
  void maybe_expire_locked();
};

// The configured lexicon files (refusal, then citation); empty, with errors naming file, line
// and key, when one cannot be loaded.
std::vector<LexiconSpec> load_lexicons(const Config& cfg, std::vector<ConfigError>& errors);

// Builds the matcher from the configured lexicon files; errors name file, line and key.
std::unique_ptr<Matcher> build_matcher(const Config& cfg, std::vector<ConfigError>& errors,
                                       std::vector<LexiconSpec> extra = {});

}  // namespace gw
