#include "guardwatch/engine.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <thread>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "guardwatch/log.hpp"
#include "guardwatch/rules.hpp"

namespace gw {

namespace {
constexpr int64_t kMinTs = 946'684'800'000;    // 2000-01-01
constexpr int64_t kMaxTs = 4'102'444'800'000;  // 2100-01-01

std::string resolve(const std::string& configured, const char* fallback, const Config& cfg) {
  std::string p = configured.empty() ? data_dir() + "/" + fallback : configured;
  if (!configured.empty() && !std::filesystem::path(p).is_absolute() && !cfg.source_file.empty() &&
      !std::filesystem::exists(p)) {
    auto rel = std::filesystem::path(cfg.source_file).parent_path() / p;
    if (std::filesystem::exists(rel)) return rel.string();
  }
  return p;
}
}  // namespace

// A record prepared on either thread, with what the ordered part needs copied out of the
// decoder's buffers (slots are reused, so their strings and vectors keep their capacity).
struct Engine::Prepared {
  Outcome outcome = Outcome::kApplied;
  int64_t ts_ms = 0;
  SourcePos pos;
  std::string series_key;  // Store::append_key of the label values
  std::string request_id;
  Observation obs;
};

// What prepares records: a decoder, extractor and matcher of its own, and a scratch record.
struct Engine::Worker {
  std::unique_ptr<Matcher> own_matcher;
  std::unique_ptr<Decoder> own_decoder;
  std::unique_ptr<Extractor> own_extractor;
  Decoder* decoder = nullptr;
  Extractor* extractor = nullptr;
  Record own_rec;
  Record* rec = nullptr;
};

// A submitted batch, prepared in chunks of kChunk records by whichever thread claims them first
// and applied in order by the submitting thread. Jobs are pooled: their vectors keep capacity.
struct Engine::Job {
  static constexpr size_t kChunk = 32;
  uint64_t ticket = 0;
  std::vector<std::string_view> bytes;
  std::vector<SourcePos> pos;
  std::vector<Prepared> slots;
  // Per chunk, guarded by Pipeline::mu: kPending (unclaimed or being prepared), kDone, kFailed
  // (its preparation threw: the error waits in `failures` for wait() to rethrow it in order) or
  // kRedo (rethrown: the submitting thread prepares the rest of it at the next wait()).
  enum : uint8_t { kPending, kDone, kFailed, kRedo };
  std::vector<uint8_t> done;
  struct Failure {
    size_t chunk, from;  // `from`: the record whose preparation threw; those before it are ready
    std::exception_ptr error;
  };
  std::vector<Failure> failures;  // guarded by Pipeline::mu; rare
  size_t chunks = 0, next = 0;  // next chunk to claim; guarded by Pipeline::mu
  size_t readable_after = 0;
  // Records applied so far (by the submitting thread). An exception out of an apply (an
  // on_applied callback, a failed allocation) leaves the job here: a later wait() or drain()
  // goes on from the next record instead of applying the chunk again.
  size_t applied = 0;
};

struct Engine::Pipeline {
  Worker main, helper;
  bool has_helper = false;
  std::thread thread;
  std::mutex mu;
  std::condition_variable work_cv, done_cv;
  std::deque<std::unique_ptr<Job>> active;  // submitted, not yet applied, in order
  std::vector<std::unique_ptr<Job>> pool;
  uint64_t submitted = 0;
  bool main_waiting = false, quit = false;
  // The first unclaimed chunk of the oldest job that has one; claims it. Call with mu held.
  bool claim(Job*& job, size_t& chunk) {
    for (auto& j : active)
      if (j->next < j->chunks) {
        job = j.get();
        chunk = j->next++;
        return true;
      }
    return false;
  }
};

std::vector<LexiconSpec> load_lexicons(const Config& cfg, std::vector<ConfigError>& errors) {
  std::vector<LexiconSpec> lex(2);
  auto e1 = load_lexicon(resolve(cfg.refusal_lexicon, "rules/lexicon/refusal.yaml", cfg), kRefusal, lex[0]);
  auto e2 = load_lexicon(resolve(cfg.citation_patterns, "rules/lexicon/citation.yaml", cfg), kCitation, lex[1]);
  errors.insert(errors.end(), e1.begin(), e1.end());
  errors.insert(errors.end(), e2.begin(), e2.end());
  if (!e1.empty() || !e2.empty()) return {};
  return lex;
}

std::unique_ptr<Matcher> build_matcher(const Config& cfg, std::vector<ConfigError>& errors, std::vector<LexiconSpec> extra) {
  std::vector<LexiconSpec> lex = load_lexicons(cfg, errors);
  if (lex.empty()) return nullptr;
  for (auto& x : extra) lex.push_back(std::move(x));
  try {
    return std::make_unique<Matcher>(std::move(lex), Matcher::resolve_cache_dir(cfg.pattern_cache));
  } catch (const MatcherError& e) {
    errors.push_back(e.error);
    return nullptr;
  }
}

Engine::Engine(const Config& cfg, std::function<int64_t()> wall_clock_ms, const std::vector<CustomMetric>& custom)
    : cfg_(cfg), wall_clock_ms_(std::move(wall_clock_ms)) {
  fields_ = std::make_unique<FieldSet>(cfg_);
  std::vector<CustomExtract> cx;
  std::vector<LexiconSpec> extra;
  for (auto& cm : custom) {
    std::string prom = "custom_" + cm.name + (cm.kind == MetricKind::kProportion ? "_ratio" : "");
    uint16_t id = metrics_.add({cm.name, cm.kind, prom, "", "Custom metric \"" + cm.name + "\" declared in " + cm.where.file + "."});
    CustomExtract c{id};
    if (!cm.pattern.empty()) {
      c.from_pattern = true;
      LexiconSpec spec;
      spec.metric = id;
      spec.patterns.push_back({cm.name, cm.pattern, id, cm.where});
      extra.push_back(std::move(spec));
    } else {
      c.field = fields_->add_pointer(cm.field);
      using O = CustomMetric::Op;
      using X = CustomExtract::Op;
      switch (cm.op) {
        case O::kNone: c.op = X::kValue; break;
        case O::kEq: c.op = X::kEq; break;
        case O::kNe: c.op = X::kNe; break;
        case O::kLt: c.op = X::kLt; break;
        case O::kLe: c.op = X::kLe; break;
        case O::kGt: c.op = X::kGt; break;
        case O::kGe: c.op = X::kGe; break;
        case O::kPresent: c.op = X::kPresent; break;
      }
      c.operand = cm.operand;
    }
    cx.push_back(std::move(c));
  }
  decoder_ = std::make_unique<Decoder>(*fields_, cfg_.max_record_bytes);
  std::vector<ConfigError> errs;
  matcher_ = build_matcher(cfg_, errs, std::move(extra));
  if (!matcher_) {
    std::string msg;
    for (auto& e : errs) msg += e.str() + "\n";
    throw std::runtime_error(msg);
  }
  custom_extracts_ = cx;
  extractor_ = std::make_unique<Extractor>(cfg_, metrics_, *matcher_, std::move(cx));
  std::vector<std::string> labels = {"model", "model_version", "endpoint", "variant"};
  for (auto& d : fields_->dimension_names()) labels.push_back(d);
  store_ = std::make_unique<Store>(cfg_, metrics_, labels);
  expire_after_ms_ = cfg_.expire_after_ms();
}

Engine::~Engine() {
  if (pipe_ && pipe_->has_helper) {
    {
      std::lock_guard g(pipe_->mu);
      pipe_->quit = true;
    }
    pipe_->work_cv.notify_all();
    pipe_->thread.join();
  }
}

uint64_t Engine::records_seen() const {
  uint64_t n = 0;
  for (auto& c : outcomes_) n += c.load(std::memory_order_relaxed);
  for (auto& c : warm_outcomes_) n += c.load(std::memory_order_relaxed);
  return n;
}

int64_t Engine::watermark_locked() const {
  if (partitions_.empty()) return std::numeric_limits<int64_t>::min() / 2;
  int64_t m = std::numeric_limits<int64_t>::max();
  for (auto& p : partitions_) m = std::min(m, p.max_ms);
  return m - cfg_.allowed_lateness_ms;
}


bool Engine::revoke_partitions(const std::vector<std::pair<std::string, int32_t>>& parts) {
  drain();
  auto g = lock();
  std::vector<uint32_t> gone;
  for (auto& [topic, partition] : parts)
    for (auto& p : partitions_)
      if (p.partition == partition && p.topic == topic) gone.push_back(p.id);
  std::erase_if(partitions_, [&](const PartitionClock& p) {
    for (auto& [topic, partition] : parts)
      if (p.partition == partition && p.topic == topic) return true;
    return false;
  });
  bool mixed = false;
  std::vector<Series*> drop;
  for (auto& s : store_->series()) {
    size_t n = 0;
    for (auto id : s->sources) n += std::find(gone.begin(), gone.end(), id) != gone.end();
    if (n && n == s->sources.size()) drop.push_back(s.get());
    else if (n) mixed = true;
  }
  if (mixed) {
    for (auto& s : store_->series()) store_->clear_series(*s);
    partitions_.clear();
    log::warn("revoked partitions shared series with kept ones (producers do not key records by series): "
              "all windows are rebuilt from the remaining partitions");
  } else {
    for (auto* s : drop) store_->clear_series(*s);
    if (!drop.empty()) log::info("revoked partitions: {} series emptied (another replica counts them now)", drop.size());
  }
  watermark_.store(watermark_locked(), std::memory_order_relaxed);
  return mixed;
}

template <class F>
Outcome Engine::reject(Outcome o, const SourcePos& pos, F&& detail) {
  (pos.warmup ? warm_outcomes_ : outcomes_)[size_t(o)].fetch_add(1, std::memory_order_relaxed);
  if (detail_sink_) *detail_sink_ = detail();
  // Counting is the whole cost of a rejected record; the log line is formatted only when the
  // per-reason rate limit lets it through.
  long suppressed = log::take(outcome_name(o), cfg_.log_samples_per_second);
  if (suppressed < 0) return o;
  std::string where = pos.topic.empty() ? (pos.line ? "line " + std::to_string(pos.line) : std::string("input"))
                                        : std::string(pos.topic) + "/" + std::to_string(pos.partition) + "@" + std::to_string(pos.offset);
  std::string msg = fmt::format("record skipped: outcome={} at={} detail={}", outcome_name(o), where, detail());
  if (suppressed > 0) msg += fmt::format(" ({} similar records skipped without a log line)", suppressed);
  log::write(log::Level::kWarn, msg);
  return o;
}

// Decode, event time, value checks and extraction: everything but the store, so it can run on
// any thread with its own decoder and extractor. Rejections are counted here.
int64_t Engine::max_ts_ms() const { return wall_clock_ms_ ? wall_clock_ms_() + cfg_.max_future_ms : kMaxTs; }

Outcome Engine::prepare(Decoder& decoder, Extractor& extractor, std::string_view bytes, const SourcePos& pos, Record& r,
                        Observation& o, int64_t max_ts_ms, size_t readable_after) {
  r.pos = pos;
  DecodeResult dr = decoder.decode(bytes, r, readable_after);
  if (dr.outcome != Outcome::kApplied) return reject(dr.outcome, pos, [&] { return dr.detail; });

  // Event time.
  const FieldValue& ts = r[kTs];
  if (!ts.present()) return reject(Outcome::kMissingTimestamp, pos, [&] { return "no timestamp at " + fields_->pointer(kTs); });
  int64_t ms;
  if (ts.type == FieldValue::kString) {
    if (!parse_rfc3339(ts.str, ms))
      return reject(Outcome::kBadTimestamp, pos, [&] { return "not an RFC 3339 timestamp: " + std::string(ts.str.substr(0, 64)); });
  } else {
    double v = ts.num;
    if (!std::isfinite(v)) return reject(Outcome::kBadTimestamp, pos, [&] { return std::string("timestamp is not finite"); });
    if (std::fabs(v) >= 1e14) v /= 1000.0;      // microseconds
    else if (std::fabs(v) < 1e11) v *= 1000.0;  // seconds
    ms = int64_t(std::llround(v));
  }
  if (ms < kMinTs || ms > kMaxTs) return reject(Outcome::kBadTimestamp, pos, [&] { return "timestamp out of range: " + std::to_string(ms); });
  if (ms > max_ts_ms)
    return reject(Outcome::kBadTimestamp, pos, [&] { return "timestamp too far in the future: " + format_rfc3339(ms); });
  r.ts_ms = ms;

  // Value sanity: negative or absurd measurements are rejected as a whole.
  auto bad_num = [&](size_t f, double lo, double hi) {
    const FieldValue& v = r[f];
    return v.type == FieldValue::kNumber && !(v.num >= lo && v.num <= hi);
  };
  if (bad_num(kLatencyMs, 0, 86'400'000) || bad_num(kTtftMs, 0, 86'400'000))
    return reject(Outcome::kInvalidValue, pos, [&] { return std::string("latency_ms/ttft_ms outside [0, 1 day]"); });
  if (bad_num(kPromptTokens, 0, 1e9) || bad_num(kCompletionTokens, 0, 1e9))
    return reject(Outcome::kInvalidValue, pos, [&] { return std::string("token count outside [0, 1e9]"); });
  if (bad_num(kCostUsd, 0, 1e6)) return reject(Outcome::kInvalidValue, pos, [&] { return std::string("cost_usd outside [0, 1e6]"); });
  if (bad_num(kJudgeScore, -1e9, 1e9) || bad_num(kUserFeedback, -1e9, 1e9))
    return reject(Outcome::kInvalidValue, pos, [&] { return std::string("judge_score/user_feedback not a finite number"); });

  extractor.extract(r, o);
  return Outcome::kApplied;
}

void Engine::series_key(const Record& r, std::string& key) const {
  static constexpr size_t kLabelFields[] = {kModel, kModelVersion, kEndpoint, kVariant};
  key.clear();
  for (size_t f : kLabelFields) Store::append_key(key, r[f].present() ? r[f].str : std::string_view());
  for (uint16_t f : fields_->dimension_ids()) Store::append_key(key, r[f].present() ? r[f].str : std::string_view());
}

// The ordered part: lateness, series, store.
Outcome Engine::apply(int64_t ms, const SourcePos& pos, const Observation& o, const Record* rec, std::string_view series_key,
                      std::unique_lock<std::mutex>& g) {
  {
    PartitionClock* pc = nullptr;
    for (auto& p : partitions_)
      if (p.partition == pos.partition && p.topic == pos.topic) pc = &p;
    if (!pc) {
      partitions_.push_back({std::string(pos.topic), pos.partition, ms, next_partition_id_++});
      pc = &partitions_.back();
      watermark_.store(watermark_locked(), std::memory_order_relaxed);
    }
    // Late: behind this partition's own progress by more than the allowed lateness.
    int64_t wm = pc->max_ms - cfg_.allowed_lateness_ms;
    if (ms < wm) {
      g.unlock();
      reject(Outcome::kLate, pos, [&] { return "event time " + format_rfc3339(ms) + " is before the watermark " + format_rfc3339(wm); });
      g.lock();
      return Outcome::kLate;
    }
    if (ms > pc->max_ms) {
      pc->max_ms = ms;
      watermark_.store(watermark_locked(), std::memory_order_relaxed);
    }
    if (ms > max_event_ms()) max_event_ms_.store(ms, std::memory_order_relaxed);
    Series& s = store_->series_for_key(series_key);
    s.note_source(pc->id);
    store_->add(s, ms, o, rec);
  }
  (pos.warmup ? warm_outcomes_ : outcomes_)[size_t(Outcome::kApplied)].fetch_add(1, std::memory_order_relaxed);
  if (on_applied_) {
    g.unlock();
    on_applied_();
    g.lock();
  }
  // After the callback: in event time it runs the evaluations due up to the watermark, and
  // those must see the series a pass at that watermark would drop (a jump across a gap in the
  // input can make a pass drop a series an evaluation just before the jump still reads).
  if (expire_after_ms_ && --expiry_countdown_ == 0) maybe_expire_locked();
  return Outcome::kApplied;
}

void Engine::expire_idle_series() {
  if (!expire_after_ms_ || !wall_clock_ms_) return;
  auto g = lock();
  maybe_expire_locked();
}

void Engine::maybe_expire_locked() {
  expiry_countdown_ = kExpiryCheckRecords;
  const int64_t now = wall_clock_ms_ ? wall_clock_ms_() : watermark_.load(std::memory_order_relaxed);
  if (now < next_expiry_ms_) return;
  next_expiry_ms_ = now + std::min(kExpiryIntervalMs, expire_after_ms_ / 4);
  if (size_t n = store_->expire(now - expire_after_ms_)) {
    series_expired_.fetch_add(n, std::memory_order_relaxed);
    log::info("{} series expired (no record for {}, series.expire_after); {} remain", n, format_duration(expire_after_ms_),
              store_->series().size());
  }
}

Outcome Engine::ingest(std::string_view bytes, const SourcePos& pos, Observation* obs_out, Record** rec_out,
                       std::string* detail_out) {
  drain();  // batches submitted before this record are applied before it
  if (detail_out) detail_out->clear();
  detail_sink_ = detail_out;
  struct Unset {
    std::string*& sink;
    ~Unset() { sink = nullptr; }
  } unset{detail_sink_};
  Record& r = rec_;
  if (rec_out) *rec_out = &r;
  Observation& o = obs_out ? *obs_out : obs_;
  Outcome out = prepare(*decoder_, *extractor_, bytes, pos, r, o, max_ts_ms());
  if (out != Outcome::kApplied) return out;
  series_key(r, series_key_);
  auto g = lock();
  return apply(r.ts_ms, pos, o, &r, series_key_, g);
}

namespace {
// An asm statement on x86-64: GCC 12 emitted no instruction for __builtin_prefetch in
// prepare_chunk (checked with objdump).
inline void prefetch_line(const char* p) {
#if defined(__x86_64__)
  asm volatile("prefetcht0 %0" : : "m"(*p));
#else
  __builtin_prefetch(p);
#endif
}
}  // namespace

std::exception_ptr Engine::prepare_chunk(Worker& w, Job& j, size_t chunk, size_t from, size_t& stopped_at) noexcept {
  size_t b = std::max(from, chunk * Job::kChunk), e = std::min(j.bytes.size(), chunk * Job::kChunk + Job::kChunk);
  Record& r = *w.rec;
  const int64_t max_ts = max_ts_ms();
  // Kafka payloads are cold: librdkafka's thread decompressed them into a prefetch queue of up
  // to 64 MiB, and the first read of each (the decoder's look at its last byte) waited on
  // memory, ~5% of a Kafka run's CPU (perf). All lines of the next record are requested while
  // this one is prepared, so they arrive in parallel and early.
  auto prefetch = [&](size_t k) {
    if (k >= j.bytes.size()) return;
    const char* d = j.bytes[k].data();
    const size_t n = j.bytes[k].size();
    for (size_t o = 0; o < n; o += 64) prefetch_line(d + o);
    if (n) prefetch_line(d + n - 1);
  };
  prefetch(b);
  size_t i = b;
  try {
    for (; i < e; ++i) {
      prefetch(i + 1);
      if (prepare_hook_) prepare_hook_(j.pos[i]);
      Prepared& p = j.slots[i];
      p.pos = j.pos[i];
      p.outcome = prepare(*w.decoder, *w.extractor, j.bytes[i], p.pos, r, p.obs, max_ts, j.readable_after);
      if (p.outcome != Outcome::kApplied) continue;
      p.ts_ms = r.ts_ms;
      series_key(r, p.series_key);
      const FieldValue& id = r[kRequestId];
      p.request_id.assign(id.present() ? id.str : std::string_view());
    }
  } catch (...) {
    stopped_at = i;
    return std::current_exception();
  }
  return nullptr;
}

void Engine::finish_chunk(Job& j, size_t chunk, std::exception_ptr error, size_t stopped_at) {
  if (!error) {
    j.done[chunk] = Job::kDone;
    return;
  }
  j.done[chunk] = Job::kFailed;
  j.failures.push_back({chunk, stopped_at, std::move(error)});
}

void Engine::apply_prepared(const Prepared& p, std::unique_lock<std::mutex>& g) {
  if (p.outcome != Outcome::kApplied) return;
  FieldValue& id = exemplar_rec_.fields[kRequestId];
  id.type = p.request_id.empty() ? FieldValue::kAbsent : FieldValue::kString;
  id.str = p.request_id;
  exemplar_rec_.pos = p.pos;
  apply(p.ts_ms, p.pos, p.obs, &exemplar_rec_, p.series_key, g);
}

void Engine::helper_run() {
  Pipeline& pl = *pipe_;
  std::unique_lock g(pl.mu);
  for (;;) {
    Job* j = nullptr;
    size_t c = 0;
    pl.work_cv.wait(g, [&] { return pl.quit || pl.claim(j, c); });
    if (pl.quit) return;
    g.unlock();
    size_t at = 0;
    std::exception_ptr err = prepare_chunk(pl.helper, *j, c, 0, at);
    g.lock();
    finish_chunk(*j, c, std::move(err), at);
    if (pl.main_waiting) pl.done_cv.notify_one();
  }
}

uint64_t Engine::submit(const std::vector<std::string_view>& bytes, const std::vector<SourcePos>& pos, size_t readable_after) {
  if (!pipe_) {
    pipe_ = std::make_unique<Pipeline>();
    Pipeline& pl = *pipe_;
    pl.main.decoder = decoder_.get();
    pl.main.extractor = extractor_.get();
    pl.main.rec = &rec_;
    if (exemplar_rec_.fields.size() < size_t(kRequestId) + 1) exemplar_rec_.fields.assign(size_t(kRequestId) + 1, FieldValue{});
    if (cfg_.input_threads >= 2) {
      Worker& w = pl.helper;
      w.own_matcher = matcher_->fork();
      w.own_decoder = std::make_unique<Decoder>(*fields_, cfg_.max_record_bytes);
      w.own_extractor = std::make_unique<Extractor>(cfg_, metrics_, *w.own_matcher, custom_extracts_);
      w.decoder = w.own_decoder.get();
      w.extractor = w.own_extractor.get();
      w.rec = &w.own_rec;
      pl.has_helper = true;
      pl.thread = std::thread([this] { helper_run(); });
    }
  }
  Pipeline& pl = *pipe_;
  std::unique_ptr<Job> job;
  {
    std::lock_guard g(pl.mu);
    if (!pl.pool.empty()) {
      job = std::move(pl.pool.back());
      pl.pool.pop_back();
    }
  }
  if (!job) job = std::make_unique<Job>();
  job->bytes.assign(bytes.begin(), bytes.end());
  job->pos.assign(pos.begin(), pos.end());
  job->readable_after = readable_after;
  if (job->slots.size() < bytes.size()) job->slots.resize(bytes.size());
  job->chunks = (bytes.size() + Job::kChunk - 1) / Job::kChunk;
  job->done.assign(job->chunks, Job::kPending);
  job->failures.clear();
  job->next = 0;
  job->applied = 0;
  uint64_t ticket;
  {
    std::lock_guard g(pl.mu);
    ticket = job->ticket = ++pl.submitted;
    pl.active.push_back(std::move(job));
  }
  if (pl.has_helper) pl.work_cv.notify_one();
  return ticket;
}

void Engine::apply_range(Job& j, size_t b, size_t e) {
  // One lock of the store for the range (apply releases it around on_applied callbacks).
  auto store_lock = lock();
  for (size_t i = std::max(b, j.applied); i < e; ++i) {
    j.applied = i + 1;  // before: a record whose apply throws is not applied again
    apply_prepared(j.slots[i], store_lock);
  }
}

void Engine::wait(uint64_t ticket) {
  if (!pipe_) return;
  Pipeline& pl = *pipe_;
  std::unique_lock g(pl.mu);
  while (!pl.active.empty() && pl.active.front()->ticket <= ticket) {
    Job& j = *pl.active.front();
    for (size_t c = j.applied / Job::kChunk; c < j.chunks; ++c) {
      // Chunk c is next to apply. Prepare it here if nobody has claimed it; if the helper is on
      // it, prepare a later chunk meanwhile; wait only when there is nothing left to claim.
      while (j.done[c] != Job::kDone) {
        if (j.done[c] == Job::kFailed || j.done[c] == Job::kRedo) {
          auto f = std::find_if(j.failures.begin(), j.failures.end(), [&](const Job::Failure& x) { return x.chunk == c; });
          if (j.done[c] == Job::kFailed) {
            // The records before the failed one are applied, then the caller hears of the error;
            // the next wait() prepares the chunk's rest again (a failed allocation may pass).
            j.done[c] = Job::kRedo;
            std::exception_ptr err = f->error;
            const size_t upto = f->from;  // read under the lock: the helper may add failures
            g.unlock();
            apply_range(j, c * Job::kChunk, upto);
            std::rethrow_exception(err);
          }
          size_t from = f->from, at = 0;
          j.failures.erase(f);
          g.unlock();
          std::exception_ptr err = prepare_chunk(pl.main, j, c, from, at);
          g.lock();
          finish_chunk(j, c, std::move(err), at);
          continue;
        }
        Job* other = nullptr;
        size_t oc = 0;
        if (!pl.claim(other, oc)) {
          pl.main_waiting = true;
          pl.done_cv.wait(g, [&] { return j.done[c] != Job::kPending; });
          pl.main_waiting = false;
          continue;
        }
        g.unlock();
        size_t at = 0;
        std::exception_ptr err = prepare_chunk(pl.main, *other, oc, 0, at);
        g.lock();
        finish_chunk(*other, oc, std::move(err), at);
      }
      g.unlock();
      apply_range(j, c * Job::kChunk, std::min(j.bytes.size(), c * Job::kChunk + Job::kChunk));
      g.lock();
    }
    pl.pool.push_back(std::move(pl.active.front()));
    pl.active.pop_front();
  }
}

void Engine::drain() {
  if (pipe_) wait(std::numeric_limits<uint64_t>::max());
}

}  // namespace gw
