// source: where record bytes come from. A source hands each record to the engine and, for
// Kafka, stores its offset only after the engine applied it.
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "guardwatch/config.hpp"
#include "guardwatch/engine.hpp"

namespace gw {

class Source {
 public:
  virtual ~Source() = default;
  // Reads until the input ends or `stop` becomes true. Returns false on a fatal error.
  virtual bool run(Engine& engine, const std::atomic<bool>& stop) = 0;
  virtual std::string describe() const = 0;
  // After `stop` was set: makes run() see it now rather than when its wait for input times out
  // (Kafka: up to 100 ms). Used by `run --stop-after`; a signal does not call it (docs/design.md).
  virtual void wake() {}
  // After run() returned: true when it had to leave something running that cannot be shut down
  // (a Kafka consumer whose teardown waits for a broker that is gone). The process must then end
  // with std::_Exit, without destructors, once the rest of its shutdown is done.
  virtual bool needs_quick_exit() const { return false; }
};

// A JSONL file, or "-" for stdin. Lines are decoded in order; event time comes from the records.
// Opens the file at once: throws std::runtime_error, with the path and the reason, when it cannot.
// run() returns false after a read error (the records before it are applied).
std::unique_ptr<Source> make_jsonl_source(const std::string& path);

struct PartitionLag {
  std::string topic;
  int32_t partition;
  int64_t position;    // next offset to read (-1 unknown)
  int64_t high_watermark;
  int64_t warmup_end = -1;  // re-reading up to this offset (exclusive) to rebuild windows; -1 none
  int64_t lag() const { return position >= 0 && high_watermark >= 0 ? std::max<int64_t>(0, high_watermark - position) : -1; }
};

struct KafkaStats {
  std::vector<PartitionLag> partitions;
  uint64_t errors = 0;       // consumer errors (informational, non-fatal)
  uint64_t rebalances = 0;
  uint64_t rewinds = 0;           // partitions rewound to now - rewind on assignment
  uint64_t fetch_wakeups = 0;     // broker threads woken to refill a drained prefetch queue
  bool assigned = false;
  bool warming = false;           // some partition is still re-reading (rules hold, readyz 503)
  int64_t warmup_remaining = 0;   // records left to re-read over all partitions
  bool broker_up = true;          // false after "all brokers down" until the broker answers again
};

class KafkaSource : public Source {
 public:
  // Throws std::runtime_error with librdkafka's message on a bad property.
  explicit KafkaSource(const Config& cfg);
  ~KafkaSource() override;
  bool run(Engine& engine, const std::atomic<bool>& stop) override;
  std::string describe() const override;
  void wake() override;
  bool needs_quick_exit() const override;
  KafkaStats stats() const;
  // On an assignment each partition that has a committed offset is read again from the first
  // record at or after now - rewind_ms (Kafka timestamps), so its windows are whole before rules
  // run; records before the committed offset count as warm-up. 0 turns rewinding off.
  void set_rewind_ms(int64_t ms);
  // Milliseconds since the consume loop last went round (it does at least every 100 ms while
  // healthy); a large value means it is stuck. -1 before the loop started.
  int64_t loop_age_ms() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gw
