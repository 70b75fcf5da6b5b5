// Kafka source: librdkafka's high-level consumer in a consumer group.
// Offsets are stored (enable.auto.offset.store=false) only after the engine applied the record,
// and committed by librdkafka's auto-commit and once more, synchronously, on revoke and close.
// On an assignment a partition is rewound to `now - rewind` and its records up to the committed
// offset are re-read as warm-up (DESIGN §8): windows are whole again before rules evaluate.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include "guardwatch/config.hpp"
#include "guardwatch/log.hpp"
#include "guardwatch/source.hpp"

namespace gw {

struct KafkaSource::Impl : public RdKafka::RebalanceCb, public RdKafka::EventCb {
  const Config& cfg;
  Engine* engine = nullptr;  // set while run() runs, for per-partition bookkeeping on revoke
  std::unique_ptr<RdKafka::KafkaConsumer> consumer;
  mutable std::mutex mu;
  KafkaStats st;
  // Highest applied offset + 1 per partition, not yet stored.
  struct Pending {
    std::string topic;
    int32_t partition;
    int64_t next;
  };
  std::vector<Pending> pending;  // a handful of partitions: linear search, no allocation per record
  bool dirty = false;
  // Highest offset + 1 this process applied from each partition it no longer holds: a partition
  // whose session expired comes back at the last commit, and the records after it that were
  // applied here are re-reads (warm-up), not new records (tests/integration/kafka_session_lost.py).
  std::vector<Pending> released;
  // Partitions re-reading records applied before (by this or another replica) up to `end`.
  // Re-read offsets from `store_from` on were applied here but never committed: they are stored,
  // so that the commit covers them this time.
  struct Warm {
    std::string topic;
    int32_t partition;
    int64_t end;
    int64_t store_from = std::numeric_limits<int64_t>::max();
    uint64_t reread = 0;
  };
  std::vector<Warm> warm;
  std::atomic<int64_t> rewind_ms{0};
  std::atomic<int64_t> loop_steady_ms{-1};
  static int64_t steady_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  }
  // librdkafka 2.0 stops fetching once its prefetch queue holds queued.min.messages or
  // queued.max.messages.kbytes, and looks at the queue again only at its broker thread's next
  // one-second tick (2.1 made that wait `fetch.queue.backoff.ms`, default 1 s as well). A
  // consumer that drains a full queue in less than a second then idles for the rest of it: a
  // 256 MiB queue of 1.4 KiB records is ~0.4 s of work here, and bench/kafka.sh spent ~0.7 s of
  // 2.7 in such waits. So once the queue has been near full and has drained to 40% of that, a
  // request to the broker wakes its thread, which sees the room and fetches at once.
  struct FetchWake {
    rd_kafka_queue_t* queue = nullptr;  // the consumer queue all partitions' messages go to (set under mu)
    double min_msgs = 0, max_bytes = 0;  // the effective prefetch limits
    uint64_t bytes = 0, msgs = 0;       // consumed so far: the mean message size
    bool armed = false;
    // The wake-up request is sent from a thread of its own: the consume loop only asks for it.
    // Its answer is not needed, and waiting for it held the loop 1.5-4 ms each time, and 200 ms
    // (the time-out) when the request queued behind a fetch the broker held open.
    std::mutex m;
    std::condition_variable cv;
    bool pending = false, quit = false;
    std::thread thread;
  } fw;
  int64_t reset_lookup = 0;  // auto.offset.reset as a ListOffsets time (-2 earliest, -1 latest), 0 for "error"
  bool rebuild = false;  // a revoke emptied every series: re-read the kept partitions too
  bool closing = false;  // the revoke of close(): this process stops, its windows stay for the read-out
  bool abandoned = false;  // the consumer was left undestroyed at shutdown (no broker): see run()
  // A static member (group.instance.id, KIP-345) keeps its place in the group when it stops: its
  // partitions wait for it (up to session.timeout.ms) instead of moving to another replica and
  // back, each move a warm-up. See stop_consumer().
  std::string instance_id;
  // A connection error was reported (under mu): the next lag refresh asks for metadata, and if
  // no broker answers, reports the broker down. librdkafka raises ALL_BROKERS_DOWN only from the
  // broker whose disconnection makes every counted broker down, and does not count brokers
  // without an address, such as the group coordinator's logical broker once the coordinator is
  // lost: when that one goes down last, the event never comes (a CI run's outage test waited
  // 60 s for /readyz to say 503). GUARDWATCH_TEST_IGNORE_ALL_BROKERS_DOWN makes tests rely on this.
  bool suspect_down = false;
  bool ignore_all_down = std::getenv("GUARDWATCH_TEST_IGNORE_ALL_BROKERS_DOWN") != nullptr;
  std::function<void()> flush;  // applies the messages consumed but not yet applied
  // Test hook (kafka_fault_test.cpp, kafka_stop.py): once this many records are consumed, run()
  // throws right after it submits its next batch (full, or at a pause in the input), so the
  // engine holds a batch whose offsets are not stored yet: the case the way out has to finish.
  uint64_t throw_after = [] {
    const char* n = std::getenv("GUARDWATCH_TEST_THROW_AFTER_RECORDS");
    return n ? std::strtoull(n, nullptr, 10) : 0;
  }();

  static int64_t wall_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  }

  // Is this record a re-read? Ends the partition's warm-up when it reaches the end offset.
  // `store`: whether its offset is to be stored (a re-read one only if it was never committed).
  bool warmup_record(const std::string& topic, int32_t partition, int64_t offset, bool& store) {
    for (size_t i = 0; i < warm.size(); ++i) {
      Warm& w = warm[i];
      if (w.partition != partition || w.topic != topic) continue;
      bool re = offset < w.end;
      store = !re || offset >= w.store_from;
      w.reread += re;
      if (offset + 1 >= w.end) finish_warm(i);
      return re;
    }
    return false;
  }
  void finish_warm(size_t i) {
    log::info("kafka: warm-up of {}/{} done: {} records re-read", warm[i].topic, warm[i].partition, warm[i].reread);
    warm.erase(warm.begin() + long(i));
    if (warm.empty()) log::info("kafka: warm-up complete, rules evaluate again");
    publish_warm();
  }
  void publish_warm() {
    std::lock_guard g(mu);
    st.warming = !warm.empty();
    if (!st.warming) st.warmup_remaining = 0;
  }
  void add_warm(const std::string& topic, int32_t partition, int64_t end) {
    for (auto& w : warm)
      if (w.partition == partition && w.topic == topic) {
        w.end = std::max(w.end, end);
        return;
      }
    warm.push_back({topic, partition, end});
  }

  // Sets each partition's start to the first offset at or after now - rewind, when that is
  // before its committed offset, and notes the committed offset as the end of its warm-up.
  void plan_rewind(RdKafka::KafkaConsumer* c, std::vector<RdKafka::TopicPartition*>& parts) {
    int64_t span = rewind_ms.load();
    if (span <= 0 || parts.empty()) return;
    std::vector<RdKafka::TopicPartition*> committed, times;
    for (auto* p : parts) committed.push_back(RdKafka::TopicPartition::create(p->topic(), p->partition()));
    auto e1 = c->committed(committed, 10'000);
    // One offset lookup for all: a partition with a commit asks for now - span; one without asks
    // for where auto.offset.reset starts it (ListOffsets' -2 earliest, -1 latest), so it starts at
    // a concrete offset too. Left to librdkafka, such a partition starts 100 ms after the
    // assignment, each on its own lookup (bench/README.md, session 6).
    for (size_t i = 0; i < parts.size(); ++i) {
      bool fresh = !e1 && !committed[i]->err() && committed[i]->offset() < 0;
      int64_t at = fresh ? reset_lookup : wall_now_ms() - span;
      times.push_back(RdKafka::TopicPartition::create(parts[i]->topic(), parts[i]->partition(), at));
    }
    auto e2 = e1 ? e1 : c->offsetsForTimes(times, 10'000);
    if (e1 || e2) {
      log::warn("kafka: cannot rewind {} partition(s) for warm-up ({}); they start at the committed offsets", parts.size(),
                RdKafka::err2str(e1 ? e1 : e2));
    } else {
      for (size_t i = 0; i < parts.size(); ++i) {
        int64_t C = committed[i]->offset(), T = times[i]->offset();
        if (committed[i]->err() || times[i]->err()) continue;
        if (C < 0) {  // no commit: nothing was applied yet
          if (reset_lookup != 0 && T >= 0) parts[i]->set_offset(T);
          continue;
        }
        if (T < 0 || T >= C) continue;                                   // nothing recent before the commit
        parts[i]->set_offset(T);
        add_warm(parts[i]->topic(), parts[i]->partition(), C);
        log::info("kafka: {}/{} rewound to offset {} (now - {}), warm-up until {}", parts[i]->topic(), parts[i]->partition(), T,
                  format_duration(span), C);
        std::lock_guard g(mu);
        ++st.rewinds;
      }
    }
    RdKafka::TopicPartition::destroy(committed);
    RdKafka::TopicPartition::destroy(times);
    publish_warm();
  }

  // A partition this process held before and now gets back: if it applied records past the
  // commit (its session expired, so the commit on the revoke failed), they come again from the
  // commit on, and extend (or make) the partition's warm-up. Where a rewind starts the
  // partition before its commit, the re-reads up to the commit stay unstored as before.
  void plan_reread(RdKafka::KafkaConsumer* c, const std::vector<RdKafka::TopicPartition*>& parts) {
    struct Back {
      RdKafka::TopicPartition* part;
      int64_t applied_end;  // highest offset + 1 applied here
      Warm* warm;           // its rewind's warm-up (ending at the commit), if any
    };
    std::vector<Back> back;
    for (auto* p : parts) {
      auto it = std::find_if(released.begin(), released.end(),
                             [&](const Pending& q) { return q.partition == p->partition() && q.topic == p->topic(); });
      if (it == released.end()) continue;
      auto w = std::find_if(warm.begin(), warm.end(), [&](const Warm& q) { return q.partition == p->partition() && q.topic == p->topic(); });
      back.push_back({p, it->next, w == warm.end() ? nullptr : &*w});
      released.erase(it);
    }
    // Without a rewind's warm-up the commit is not known yet: one lookup for those partitions.
    std::vector<RdKafka::TopicPartition*> ask;
    for (auto& b : back)
      if (!b.warm) ask.push_back(RdKafka::TopicPartition::create(b.part->topic(), b.part->partition()));
    if (!ask.empty()) {
      if (auto e = c->committed(ask, 10'000); e != RdKafka::ERR_NO_ERROR) {
        log::warn("kafka: cannot look up the commits of {} partition(s) assigned back ({}): records applied here and not "
                  "committed may count twice", ask.size(), RdKafka::err2str(e));
        RdKafka::TopicPartition::destroy(ask);
        return;
      }
    }
    size_t k = 0;
    std::vector<Warm> added;
    for (auto& b : back) {
      int64_t commit;
      if (b.warm) {
        commit = b.warm->end;
      } else {
        auto* q = ask[k++];
        if (q->err()) continue;
        commit = q->offset();  // negative: none, the partition starts where auto.offset.reset says
      }
      if (b.applied_end <= commit) continue;  // the commit covers everything applied here
      if (b.warm) {
        b.warm->store_from = commit;
        b.warm->end = b.applied_end;
      } else {
        // It starts at its commit, so every record it reads before applied_end was applied here
        // and never committed. (Where none exists and it starts later, the lag refresh ends the
        // warm-up once the position is past applied_end.)
        added.push_back({b.part->topic(), b.part->partition(), b.applied_end, 0});
      }
      log::info("kafka: {}/{} was applied here up to offset {} but committed only up to {}: the records between are "
                "read again as warm-up", b.part->topic(), b.part->partition(), b.applied_end, commit);
    }
    for (auto& w : added) warm.push_back(std::move(w));  // after the pointers into warm are done with
    RdKafka::TopicPartition::destroy(ask);
    publish_warm();
  }

  // After every series was emptied: seek each kept partition back to now - rewind.
  void rewind_assigned(RdKafka::KafkaConsumer* c) {
    rebuild = false;
    std::vector<RdKafka::TopicPartition*> parts, times;
    if (c->assignment(parts) != RdKafka::ERR_NO_ERROR || parts.empty()) return;
    c->position(parts);
    int64_t span = rewind_ms.load();
    for (auto* p : parts) times.push_back(RdKafka::TopicPartition::create(p->topic(), p->partition(), wall_now_ms() - span));
    if (auto e = c->offsetsForTimes(times, 10'000); e != RdKafka::ERR_NO_ERROR) {
      log::error("kafka: cannot rebuild the windows of the kept partitions: {}", RdKafka::err2str(e));
    } else {
      for (size_t i = 0; i < parts.size(); ++i) {
        int64_t P = parts[i]->offset(), T = times[i]->offset();
        if (P < 0 || T < 0 || T >= P) continue;
        std::unique_ptr<RdKafka::TopicPartition> to(RdKafka::TopicPartition::create(parts[i]->topic(), parts[i]->partition(), T));
        if (auto e = c->seek(*to, 10'000); e != RdKafka::ERR_NO_ERROR) {
          log::error("kafka: seek {}/{} to {}: {}", parts[i]->topic(), parts[i]->partition(), T, RdKafka::err2str(e));
          continue;
        }
        add_warm(parts[i]->topic(), parts[i]->partition(), P);
        std::lock_guard g(mu);
        ++st.rewinds;
      }
    }
    RdKafka::TopicPartition::destroy(parts);
    RdKafka::TopicPartition::destroy(times);
    publish_warm();
  }

  void applied(const std::string& topic, int32_t partition, int64_t offset) {
    dirty = true;
    for (auto& p : pending)
      if (p.partition == partition && p.topic == topic) {
        p.next = offset + 1;
        return;
      }
    pending.push_back({topic, partition, offset + 1});
  }
  std::chrono::steady_clock::time_point last_store, last_lag;

  explicit Impl(const Config& c) : cfg(c) {}

  void store_pending() {
    if (!dirty || !consumer) return;
    std::vector<RdKafka::TopicPartition*> tps;
    for (auto& p : pending) tps.push_back(RdKafka::TopicPartition::create(p.topic, p.partition, p.next));
    auto err = consumer->offsets_store(tps);
    if (err != RdKafka::ERR_NO_ERROR && err != RdKafka::ERR__STATE)
      log::sampled("kafka_store", 1, log::Level::kWarn, "kafka: offsets_store failed: " + RdKafka::err2str(err));
    RdKafka::TopicPartition::destroy(tps);
    dirty = false;
  }

  // What the engine threw inside a rebalance callback. An exception must not unwind through
  // librdkafka's C frames: that is undefined, and with Debian's build (unwind tables) it gets
  // through while skipping what librdkafka does after the callback. So the callback keeps it,
  // finishes handing the partitions over, and run() rethrows it once the poll has returned.
  std::exception_ptr callback_error;
  // Test hook (tests/integration/kafka_stop.py): the first revoke's flush throws.
  bool throw_in_revoke = std::getenv("GUARDWATCH_TEST_THROW_IN_REVOKE") != nullptr;
  template <class F>
  void guarded(F&& f) {
    try {
      f();
    } catch (...) {
      if (!callback_error) callback_error = std::current_exception();
    }
  }

  void rebalance_cb(RdKafka::KafkaConsumer* c, RdKafka::ErrorCode err, std::vector<RdKafka::TopicPartition*>& parts) override {
    bool cooperative = c->rebalance_protocol() == "COOPERATIVE";
    // The batches in hand are applied and their offsets noted before the partitions change hands;
    // if that fails, they are neither stored nor committed here (the next owner reads them again).
    if (flush)
      guarded([&] {
        if (throw_in_revoke && err != RdKafka::ERR__ASSIGN_PARTITIONS) {
          throw_in_revoke = false;
          throw std::runtime_error("kafka: test exception in a revoke");
        }
        flush();
      });
    {
      std::lock_guard g(mu);
      ++st.rebalances;
    }
    std::string names;
    for (auto* p : parts) names += (names.empty() ? "" : ",") + p->topic() + "/" + std::to_string(p->partition());
    if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
      log::info("kafka: assigned {} ({})", names, cooperative ? "cooperative" : "eager");
      // Not while shutting down: nothing will be read, and when this callback runs inside close()
      // the committed-offset lookup did not return within the 10 s shutdown deadline (librdkafka
      // 2.0.2; tests/integration/kafka_rolling_stop.py).
      if (!closing) {
        plan_rewind(c, parts);
        plan_reread(c, parts);
      }
      if (cooperative) {
        if (auto e = c->incremental_assign(parts)) log::error("kafka: incremental_assign: {}", e->str());
      } else {
        c->assign(parts);
      }
      std::lock_guard g(mu);
      st.assigned = true;
    } else {
      log::info("kafka: revoked {}", names);
      // Commit what was applied before the partitions move to another replica.
      store_pending();
      c->commitSync();
      std::vector<std::pair<std::string, int32_t>> gone;
      for (auto* p : parts) {
        // Kept in case the partition comes back (see plan_reread); this process's commit of it
        // may just have failed.
        for (auto& q : pending)
          if (q.topic == p->topic() && q.partition == p->partition()) {
            std::erase_if(released, [&](const Pending& r) { return r.topic == q.topic && r.partition == q.partition; });
            released.push_back(q);
          }
        std::erase_if(pending, [&](const Pending& q) { return q.topic == p->topic() && q.partition == p->partition(); });
        std::erase_if(warm, [&](const Warm& q) { return q.topic == p->topic() && q.partition == p->partition(); });
        gone.emplace_back(p->topic(), p->partition());
      }
      publish_warm();
      // Empty what the revoked partitions brought, so the union over replicas stays exact.
      if (engine && !closing)
        guarded([&] {
          if (engine->revoke_partitions(gone) && cooperative && rewind_ms.load() > 0) rebuild = true;
        });
      if (cooperative) {
        if (auto e = c->incremental_unassign(parts)) log::error("kafka: incremental_unassign: {}", e->str());
      } else {
        c->unassign();
      }
      std::lock_guard g(mu);
      for (auto* p : parts)
        std::erase_if(st.partitions, [&](const PartitionLag& l) { return l.topic == p->topic() && l.partition == p->partition(); });
      if (!cooperative) st.partitions.clear();
    }
  }

  // The end of every stop: leaves the group and closes the consumer, or for a static member
  // closes it only. librdkafka (2.0.2) sends LeaveGroup on an unsubscribe even for a static
  // member, so leaving first would give its partitions away at every restart; close() revokes
  // them locally and keeps the member in the group. The coordinator gives them back when a member
  // with the same group.instance.id joins within session.timeout.ms, with no rebalance for the
  // other members; after that they go to the others. (The hang leave_group() avoids needs an
  // assignment arriving during close(), that is a rebalance in flight, which a restart of a static
  // member does not start; if one does meet the close, the shutdown deadline ends the process.)
  void stop_consumer() {
    if (instance_id.empty()) {
      leave_group();
    } else {
      log::info("kafka: static member {} (group.instance.id): its partitions wait for it for up to session.timeout.ms",
                instance_id);
    }
    consumer->close();
  }

  // Leaves the consumer group before close(), serving the rebalance callbacks until nothing is
  // assigned, so that close() finds no rebalance in flight: librdkafka before 2.4 can hang in
  // close() when a cooperative assignment is handled while it closes (confluentinc/librdkafka#4527).
  // Messages that still arrive are dropped unapplied, their offsets not stored: the next owner
  // reads them.
  //
  // An empty assignment is not enough: after the revoke librdkafka (2.0.2) commits the unassigned
  // partitions and only then sends LeaveGroup, and a close() before that terminates the group
  // without it. The partitions' next owner then waits for this member's session to expire (45 s).
  // Seen when a rebalance was in flight at the unsubscribe, which librdkafka postpones until the
  // rebalance completes: the revoke came late in a poll, and the next check closed 6 ms later
  // (tests/integration/kafka_stop.py, step 5, about 1 run in 4). librdkafka clears the member id
  // just before it queues the LeaveGroup, and close() then waits for the reply: so the loop waits
  // for that too.
  void leave_group() {
    auto* c = consumer.get();
    if (auto e = c->unsubscribe(); e != RdKafka::ERR_NO_ERROR) {
      log::warn("kafka: unsubscribe: {}", RdKafka::err2str(e));
      return;
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    bool empty = false;
    while (std::chrono::steady_clock::now() < until) {
      std::vector<RdKafka::TopicPartition*> parts;
      empty = c->assignment(parts) == RdKafka::ERR_NO_ERROR && parts.empty();
      RdKafka::TopicPartition::destroy(parts);
      if (empty && c->memberid().empty()) return;
      std::unique_ptr<RdKafka::Message> m(c->consume(5));
    }
    log::warn("kafka: {} 5 s after leaving the group; closing anyway",
              empty ? "the group is not left yet" : "partitions still assigned");
  }

  void event_cb(RdKafka::Event& e) override {
    switch (e.type()) {
      case RdKafka::Event::EVENT_ERROR: {
        {
          std::lock_guard g(mu);
          ++st.errors;
          if (e.err() == RdKafka::ERR__ALL_BROKERS_DOWN && !ignore_all_down) st.broker_up = false;
          if (e.err() == RdKafka::ERR__TRANSPORT || e.err() == RdKafka::ERR__RESOLVE || e.err() == RdKafka::ERR__ALL_BROKERS_DOWN)
            suspect_down = true;
        }
        log::sampled("kafka_error", 1, e.fatal() ? log::Level::kError : log::Level::kWarn,
                     fmt::format("kafka: {}{}", e.fatal() ? "FATAL " : "", e.str()));
        break;
      }
      case RdKafka::Event::EVENT_LOG:
        if (e.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING)
          log::sampled("kafka_log", 1, log::Level::kWarn, fmt::format("kafka: {} {}", e.fac(), e.str()));
        else if (e.severity() == RdKafka::Event::EVENT_SEVERITY_DEBUG)  // only when kafka.properties.debug asks
          log::write(log::Level::kInfo, fmt::format("kafka: {} {}", e.fac(), e.str()));
        // Notices and info lines repeat what the error events above say ("Disconnected"): dropped.
        break;
      default: break;
    }
  }

  // Called every 64 messages and on every pause in the input; a queue-length read, one lock.
  void wake_fetcher_if_drained() {
    if (!fw.queue || fw.msgs == 0) return;
    // How many messages fill the queue: librdkafka counts payload bytes (and a little more).
    double full = std::min(fw.min_msgs, fw.max_bytes / (double(fw.bytes) / double(fw.msgs) + 1));
    double len = double(rd_kafka_queue_length(fw.queue));
    if (len >= 0.6 * full) {
      fw.armed = true;
    } else if (fw.armed && len <= 0.4 * full) {
      fw.armed = false;
      {
        std::lock_guard g(fw.m);
        fw.pending = true;
      }
      fw.cv.notify_one();
    }
  }

  void start_fetch_waker(RdKafka::KafkaConsumer* c) {
    fw.quit = false;
    fw.thread = std::thread([this, c] {
      std::unique_lock g(fw.m);
      for (;;) {
        fw.cv.wait(g, [&] { return fw.pending || fw.quit; });
        if (fw.quit) return;
        fw.pending = false;
        g.unlock();
        // A metadata request for the subscribed topics: small, and it honours its time-out when
        // a broker is down (query_watermark_offsets does not before librdkafka 2.3, #2588). It
        // goes to one broker; with several, the others still refill at their next tick.
        RdKafka::Metadata* md = nullptr;
        c->metadata(false, nullptr, &md, 200);
        delete md;
        {
          std::lock_guard s(mu);
          ++st.fetch_wakeups;
        }
        g.lock();
      }
    });
  }
  void stop_fetch_waker() {
    if (fw.thread.joinable()) {
      {
        std::lock_guard g(fw.m);
        fw.quit = true;
      }
      fw.cv.notify_one();
      fw.thread.join();
    }
    std::lock_guard g(mu);
    if (fw.queue) rd_kafka_queue_destroy(fw.queue);
    fw.queue = nullptr;
  }

  void refresh_lag() {
    std::vector<RdKafka::TopicPartition*> parts;
    if (consumer->assignment(parts) != RdKafka::ERR_NO_ERROR) return;
    consumer->position(parts);
    std::vector<PartitionLag> out;
    int64_t remaining = 0;
    for (auto* p : parts) {
      int64_t lo = -1, hi = -1;
      consumer->get_watermark_offsets(p->topic(), p->partition(), &lo, &hi);
      // Nothing consumed yet: the consumer is at the low watermark (or the committed offset).
      int64_t pos = p->offset() >= 0 ? p->offset() : lo;
      int64_t wend = -1;
      for (size_t i = 0; i < warm.size(); ++i)
        if (warm[i].partition == p->partition() && warm[i].topic == p->topic()) {
          // Offsets up to the end may be gone (compaction, transaction markers): the position decides.
          if (p->offset() >= warm[i].end) finish_warm(i);
          else {
            wend = warm[i].end;
            remaining += wend - std::max<int64_t>(pos, 0);
          }
          break;
        }
      out.push_back({p->topic(), p->partition(), pos, hi, wend});
    }
    // A broker that was down answers again: probe it with one cheap request. A metadata request,
    // not query_watermark_offsets(): in librdkafka before 2.3 that ignores its time-out while the
    // broker is down (confluentinc/librdkafka#2588) and held this loop, and with it a shutdown,
    // until the broker came back.
    bool down, suspect;
    {
      std::lock_guard g(mu);
      down = !st.broker_up;
      suspect = suspect_down;
      suspect_down = false;
    }
    if (down || suspect) {
      RdKafka::Metadata* md = nullptr;
      if (consumer->metadata(false, nullptr, &md, 500) == RdKafka::ERR_NO_ERROR) mark_up();
      else if (!down) {
        std::lock_guard g(mu);
        if (st.broker_up) log::warn("kafka: no broker answers after a connection error: reporting the broker down");
        st.broker_up = false;
      }
      delete md;
    }
    RdKafka::TopicPartition::destroy(parts);
    std::lock_guard g(mu);
    st.partitions = std::move(out);
    st.warming = !warm.empty();
    st.warmup_remaining = st.warming ? remaining : 0;
  }
  void mark_up() {
    std::lock_guard g(mu);
    if (!st.broker_up) log::info("kafka: broker reachable again");
    st.broker_up = true;
  }
};

KafkaSource::KafkaSource(const Config& cfg) : impl_(std::make_unique<Impl>(cfg)) {
  std::string err;
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  auto set = [&](const std::string& k, const std::string& v) {
    if (conf->set(k, v, err) != RdKafka::Conf::CONF_OK) throw std::runtime_error("kafka.properties." + k + ": " + err);
  };
  // Defaults first; the user's properties override them, except the offset-store contract.
  set("client.id", "guardwatch");
  set("enable.auto.commit", "true");
  set("auto.commit.interval.ms", "1000");
  set("auto.offset.reset", "earliest");
  set("partition.assignment.strategy", "cooperative-sticky");
  set("statistics.interval.ms", "0");
  // librdkafka's own prefetch limits (64 MiB, 100k messages) stay: the consume loop wakes the
  // fetcher when it has drained a full queue (FetchWake), which made 64 MiB as fast as the
  // 256 MiB guardwatch used to set (bench/kafka.sh: 1.99 s and 2.06 s, medians of 5, peak RSS
  // 148 MiB against 408 MiB).
  for (auto& [k, v] : cfg.kafka_properties) set(k, v);
  set("enable.auto.offset.store", "false");
  if (auto it = cfg.kafka_properties.find("group.instance.id"); it != cfg.kafka_properties.end()) impl_->instance_id = it->second;
  {
    auto it = cfg.kafka_properties.find("auto.offset.reset");
    std::string reset = it == cfg.kafka_properties.end() ? "earliest" : it->second;
    if (reset == "earliest" || reset == "smallest" || reset == "beginning") impl_->reset_lookup = -2;
    else if (reset == "latest" || reset == "largest" || reset == "end") impl_->reset_lookup = -1;
    std::string v;
    if (conf->get("queued.min.messages", v) == RdKafka::Conf::CONF_OK) impl_->fw.min_msgs = std::atof(v.c_str());
    if (conf->get("queued.max.messages.kbytes", v) == RdKafka::Conf::CONF_OK) impl_->fw.max_bytes = std::atof(v.c_str()) * 1024;
  }
  if (conf->set("rebalance_cb", static_cast<RdKafka::RebalanceCb*>(impl_.get()), err) != RdKafka::Conf::CONF_OK) throw std::runtime_error(err);
  if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(impl_.get()), err) != RdKafka::Conf::CONF_OK) throw std::runtime_error(err);
  impl_->consumer.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!impl_->consumer) throw std::runtime_error("kafka: cannot create consumer: " + err);
  if (cfg.kafka_topics.empty()) throw std::runtime_error("kafka.topics is empty");
  if (auto e = impl_->consumer->subscribe(cfg.kafka_topics); e != RdKafka::ERR_NO_ERROR)
    throw std::runtime_error("kafka: subscribe: " + RdKafka::err2str(e));
}

KafkaSource::~KafkaSource() {
  // run() ends with the consumer closed, except when it is left by an exception (or never ran):
  // the group is left here first, or the partitions' next owner waits for this member's session
  // to expire.
  if (!impl_->consumer) return;
  impl_->closing = true;
  impl_->stop_consumer();
}

std::string KafkaSource::describe() const {
  std::string t;
  for (auto& s : impl_->cfg.kafka_topics) t += (t.empty() ? "" : ",") + s;
  auto it = impl_->cfg.kafka_properties.find("bootstrap.servers");
  return "kafka topics=" + t + " group=" + impl_->cfg.kafka_properties.at("group.id") +
         (it != impl_->cfg.kafka_properties.end() ? " brokers=" + it->second : "");
}

void KafkaSource::set_rewind_ms(int64_t ms) { impl_->rewind_ms.store(ms); }
int64_t KafkaSource::loop_age_ms() const {
  int64_t t = impl_->loop_steady_ms.load(std::memory_order_relaxed);
  return t < 0 ? -1 : Impl::steady_ms() - t;
}

void KafkaSource::wake() {
  std::lock_guard g(impl_->mu);
  if (impl_->fw.queue) rd_kafka_queue_yield(impl_->fw.queue);  // the waiting consume() returns
}

bool KafkaSource::needs_quick_exit() const { return impl_->abandoned; }

KafkaStats KafkaSource::stats() const {
  std::lock_guard g(impl_->mu);
  return impl_->st;
}

bool KafkaSource::run(Engine& engine, const std::atomic<bool>& stop) {
  auto& im = *impl_;
  im.engine = &engine;
  auto* c = im.consumer.get();
  using clock = std::chrono::steady_clock;
  im.last_store = im.last_lag = clock::now();
  // Messages are taken in batches of up to kBatch and submitted to the engine, which decodes and
  // extracts them on two threads and applies them in order: while one batch is prepared the next
  // is collected, and a batch's offsets are stored once it is applied. A rebalance (and any pause
  // in the input) applies everything consumed first, so nothing consumed before it is applied
  // after it.
  constexpr size_t kBatch = 1024;
  // Messages straight from the C API: the C++ consume() wraps each in a heap-allocated
  // RdKafka::Message, a malloc and a free per record for nothing this loop uses.
  struct MessageDeleter {
    void operator()(rd_kafka_message_t* m) const { rd_kafka_message_destroy(m); }
  };
  using Message = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
  struct Batch {
    std::vector<Message> msgs;
    std::vector<const std::string*> topics;  // into topic_names
    std::vector<std::string_view> views;
    std::vector<SourcePos> positions;
    std::vector<char> store;  // whether each record's offset is stored once applied
    uint64_t ticket = 0;
    bool submitted = false;
  };
  // Topic names, kept for the whole run (positions and batches point into it): no string is
  // built per message.
  std::deque<std::string> topic_names;
  auto topic_of = [&](const rd_kafka_message_t* m) -> const std::string& {
    const char* name = rd_kafka_topic_name(m->rkt);
    for (auto& t : topic_names)
      if (t == name) return t;
    return topic_names.emplace_back(name);
  };
  Batch batches[2];
  size_t cur = 0;
  uint64_t loop_iterations = 0;
  for (auto& b : batches) {
    b.msgs.reserve(kBatch);
    b.topics.reserve(kBatch);
    b.store.reserve(kBatch);
  }
  auto finish = [&](Batch& b) {
    // A re-read record's offset is mostly committed already: storing it would move the commit back.
    for (size_t i = 0; i < b.msgs.size(); ++i)
      if (b.store[i]) im.applied(*b.topics[i], b.positions[i].partition, b.positions[i].offset);
    b.msgs.clear();
    b.store.clear();
    b.topics.clear();
    b.views.clear();
    b.positions.clear();
    b.submitted = false;
  };
  auto submit = [&] {
    Batch& b = batches[cur];
    if (b.msgs.empty() || b.submitted) return;
    b.ticket = engine.submit(b.views, b.positions);
    b.submitted = true;
  };
  auto finish_submitted = [&] {
    for (size_t k : {cur ^ 1, cur})
      if (batches[k].submitted) finish(batches[k]);
  };
  im.flush = [&] {
    submit();
    engine.drain();
    finish_submitted();
  };
  auto next_batch = [&] {  // the current batch is full: submit it, collect the next meanwhile
    submit();
    Batch& prev = batches[cur ^ 1];
    if (prev.submitted) {
      engine.wait(prev.ticket);
      finish(prev);
    }
    cur ^= 1;
  };
  auto test_throw = [&] {  // the hook above; never from a librdkafka callback
    if (!im.throw_after || im.fw.msgs < im.throw_after) [[likely]]
      return;
    submit();
    throw std::runtime_error("kafka: test exception after " + std::to_string(im.fw.msgs) + " records");
  };
  {
    std::lock_guard g(im.mu);
    im.fw.queue = rd_kafka_queue_get_consumer(c->c_ptr());
  }
  // Leaving the loop by an exception (none is expected; a failed allocation would be one): the
  // waker thread is joined (a joinable std::thread's destruction ends the process in
  // std::terminate), the engine finishes with the batches' messages before they are freed, and
  // the flush that refers to this frame goes before the consumer's close() can call it. The
  // offsets of every record applied are stored, those of the batches the engine just finished
  // too, so the partitions' next owner reads on after them; only when finishing them fails as
  // well are theirs left out (the next owner reads them again: at least once, as after a crash).
  // The batch being collected was never submitted: its records are neither applied nor stored.
  struct Unwind {
    Impl& im;
    Engine& engine;
    decltype(finish_submitted)& finish_in_hand;
    ~Unwind() {
      im.stop_fetch_waker();
      if (!im.flush) return;  // the normal way out did all this
      im.flush = nullptr;
      try {
        engine.drain();
        finish_in_hand();
        im.store_pending();  // committed by the revoke when the source leaves the group
      } catch (const std::exception& e) {
        log::error("kafka: applying the batches in hand after an error failed too: {}", e.what());
      } catch (...) {
      }
    }
  } unwind{im, engine, finish_submitted};
  im.start_fetch_waker(c);
  while (!stop.load(std::memory_order_relaxed)) {
    bool idle = batches[cur].msgs.empty() && !batches[cur ^ 1].submitted;
    // What consume() does, minus the wrapper: rebalance and event callbacks are served here too.
    Message msg(rd_kafka_consumer_poll(c->c_ptr(), idle ? 100 : 0));
    if (im.callback_error) [[unlikely]]
      std::rethrow_exception(std::exchange(im.callback_error, nullptr));
    switch (msg ? msg->err : RD_KAFKA_RESP_ERR__TIMED_OUT) {
      case RD_KAFKA_RESP_ERR_NO_ERROR: {
        Batch& b = batches[cur];
        b.topics.push_back(&topic_of(msg.get()));
        SourcePos& pos = b.positions.emplace_back();
        pos.topic = *b.topics.back();
        pos.partition = msg->partition;
        pos.offset = msg->offset;
        bool store = true;
        pos.warmup = !im.warm.empty() && im.warmup_record(*b.topics.back(), pos.partition, pos.offset, store);
        b.store.push_back(store);
        b.views.emplace_back(static_cast<const char*>(msg->payload), msg->len);
        im.fw.bytes += msg->len;
        ++im.fw.msgs;
        b.msgs.push_back(std::move(msg));
        if (!im.st.broker_up) im.mark_up();
        if (b.msgs.size() >= kBatch) {
          next_batch();
          test_throw();
        }
        break;
      }
      case RD_KAFKA_RESP_ERR__TIMED_OUT:
      case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        test_throw();
        im.flush();
        break;
      default: {
        im.flush();
        std::lock_guard g(im.mu);
        ++im.st.errors;
        log::sampled("kafka_consume", 1, log::Level::kWarn, std::string("kafka: consume: ") + rd_kafka_message_errstr(msg.get()));
        break;
      }
    }
    if (im.rebuild) im.rewind_assigned(c);
    // The clock is read every 64 messages (and on every pause): cheap, and often enough for the
    // 200 ms offset store, the 1 s lag refresh and the watchdog's loop age.
    if (++loop_iterations % 64 != 0 && !batches[cur].msgs.empty()) continue;
    im.wake_fetcher_if_drained();
    auto now = clock::now();
    im.loop_steady_ms.store(std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count(),
                            std::memory_order_relaxed);
    if (now - im.last_store > std::chrono::milliseconds(200)) {
      im.store_pending();
      im.last_store = now;
    }
    if (now - im.last_lag > std::chrono::seconds(1)) {
      im.refresh_lag();
      im.last_lag = now;
    }
  }
  im.stop_fetch_waker();
  im.flush();
  im.flush = nullptr;
  im.store_pending();
  bool up;
  {
    std::lock_guard g(im.mu);
    up = im.st.broker_up;
  }
  // The outage may be too recent for the lag refresh to have noticed (it looks once a second):
  // one request tells. With partitions assigned it asks the group coordinator for their
  // committed offsets, on the coordinator's own connection: a metadata request would go to a
  // broker's connection behind the fetch it holds open for up to fetch.wait.max.ms (500 ms by
  // default; every shutdown of the Kafka benchmark waited 0.49 s here).
  if (up) {
    std::vector<RdKafka::TopicPartition*> parts;
    if (c->assignment(parts) == RdKafka::ERR_NO_ERROR && !parts.empty()) {
      up = c->committed(parts, 2000) == RdKafka::ERR_NO_ERROR;
    } else {
      RdKafka::Metadata* md = nullptr;
      up = c->metadata(false, nullptr, &md, 2000) == RdKafka::ERR_NO_ERROR;
      delete md;
    }
    RdKafka::TopicPartition::destroy(parts);
  }
  if (!up) {
    // Every broker is unreachable: the final commit and leaving the group would wait for a group
    // coordinator until the shutdown deadline (exit 1). Nor can the consumer be destroyed: even
    // without its close() (NO_CONSUMER_CLOSE), librdkafka 2.0.2 commits the stored offsets of the
    // partitions it removes and waits for that commit, spinning, as long as no coordinator
    // answers (seen when the broker went away within a second or two of an assignment). So the
    // consumer is left as it is, and the process ends with std::_Exit once the rest of its
    // shutdown is done (needs_quick_exit). The group drops this member after session.timeout.ms.
    log::warn("kafka: no broker reachable at shutdown: offsets of the records applied since the last commit are not "
              "committed (the partitions' next owner reads them again)");
    im.closing = true;
    im.abandoned = true;
    (void)im.consumer.release();  // see above: never destroyed
    return true;
  }
  if (auto e = c->commitSync(); e != RdKafka::ERR_NO_ERROR && e != RdKafka::ERR__NO_OFFSET)
    log::warn("kafka: final commit: {}", RdKafka::err2str(e));
  im.closing = true;
  // Test hook (tests/integration/kafka_rolling_stop.py): widens the gap in which a rebalance that
  // started before the stop reaches this consumer only while it shuts down.
  if (const char* d = std::getenv("GUARDWATCH_TEST_CLOSE_DELAY_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoi(d)));
  im.stop_consumer();
  im.consumer.reset();
  return true;
}

}  // namespace gw
