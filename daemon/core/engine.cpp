#include "guardwatch/engine.hpp"

#include <algorithm>
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

std::unique_ptr<Matcher> build_matcher(const Config& cfg, std::vector<ConfigError>& errors, std::vector<LexiconSpec> extra) {
  std::vector<LexiconSpec> lex(2);
  auto e1 = load_lexicon(resolve(cfg.refusal_lexicon, "rules/lexicon/refusal.yaml", cfg), kRefusal, lex[0]);
  auto e2 = load_lexicon(resolve(cfg.citation_patterns, "rules/lexicon/citation.yaml", cfg), kCitation, lex[1]);
  errors.insert(errors.end(), e1.begin(), e1.end());
  errors.insert(errors.end(), e2.begin(), e2.end());
  if (!e1.empty() || !e2.empty()) return nullptr;
  for (auto& x : extra) lex.push_back(std::move(x));
  try {
    return std::make_unique<Matcher>(std::move(lex));
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
  extractor_ = std::make_unique<Extractor>(cfg_, metrics_, *matcher_, std::move(cx));
  std::vector<std::string> labels = {"model", "model_version", "endpoint", "variant"};
  for (auto& d : fields_->dimension_names()) labels.push_back(d);
  store_ = std::make_unique<Store>(cfg_, metrics_, labels);
  labels_.resize(labels.size());
}

Engine::~Engine() = default;

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

Outcome Engine::ingest(std::string_view bytes, const SourcePos& pos, Observation* obs_out, Record** rec_out) {
  Record& r = rec_;
  r.pos = pos;
  if (rec_out) *rec_out = &r;
  // Counting is the whole cost of a rejected record; the log line is formatted only when the
  // per-reason rate limit lets it through.
  auto& counts = pos.warmup ? warm_outcomes_ : outcomes_;
  auto reject = [&](Outcome o, auto&& detail) {
    counts[size_t(o)].fetch_add(1, std::memory_order_relaxed);
    long suppressed = log::take(outcome_name(o), cfg_.log_samples_per_second);
    if (suppressed < 0) return o;
    std::string where = pos.topic.empty() ? (pos.line ? "line " + std::to_string(pos.line) : std::string("input"))
                                          : std::string(pos.topic) + "/" + std::to_string(pos.partition) + "@" + std::to_string(pos.offset);
    std::string msg = fmt::format("record skipped: outcome={} at={} detail={}", outcome_name(o), where, detail());
    if (suppressed > 0) msg += fmt::format(" ({} similar records skipped without a log line)", suppressed);
    log::write(log::Level::kWarn, msg);
    return o;
  };
  DecodeResult dr = decoder_->decode(bytes, r);
  if (dr.outcome != Outcome::kApplied) return reject(dr.outcome, [&] { return dr.detail; });

  // Event time.
  const FieldValue& ts = r[kTs];
  if (!ts.present()) return reject(Outcome::kMissingTimestamp, [&] { return "no timestamp at " + fields_->pointer(kTs); });
  int64_t ms;
  if (ts.type == FieldValue::kString) {
    if (!parse_rfc3339(ts.str, ms)) return reject(Outcome::kBadTimestamp, [&] { return "not an RFC 3339 timestamp: " + std::string(ts.str.substr(0, 64)); });
  } else {
    double v = ts.num;
    if (!std::isfinite(v)) return reject(Outcome::kBadTimestamp, [&] { return std::string("timestamp is not finite"); });
    if (std::fabs(v) >= 1e14) v /= 1000.0;      // microseconds
    else if (std::fabs(v) < 1e11) v *= 1000.0;  // seconds
    ms = int64_t(std::llround(v));
  }
  if (ms < kMinTs || ms > kMaxTs) return reject(Outcome::kBadTimestamp, [&] { return "timestamp out of range: " + std::to_string(ms); });
  if (wall_clock_ms_ && ms > wall_clock_ms_() + cfg_.max_future_ms)
    return reject(Outcome::kBadTimestamp, [&] { return "timestamp too far in the future: " + format_rfc3339(ms); });
  r.ts_ms = ms;

  // Value sanity: negative or absurd measurements are rejected as a whole.
  auto bad_num = [&](size_t f, double lo, double hi) {
    const FieldValue& v = r[f];
    return v.type == FieldValue::kNumber && !(v.num >= lo && v.num <= hi);
  };
  if (bad_num(kLatencyMs, 0, 86'400'000) || bad_num(kTtftMs, 0, 86'400'000))
    return reject(Outcome::kInvalidValue, [&] { return std::string("latency_ms/ttft_ms outside [0, 1 day]"); });
  if (bad_num(kPromptTokens, 0, 1e9) || bad_num(kCompletionTokens, 0, 1e9))
    return reject(Outcome::kInvalidValue, [&] { return std::string("token count outside [0, 1e9]"); });
  if (bad_num(kCostUsd, 0, 1e6)) return reject(Outcome::kInvalidValue, [&] { return std::string("cost_usd outside [0, 1e6]"); });
  if (bad_num(kJudgeScore, -1e9, 1e9) || bad_num(kUserFeedback, -1e9, 1e9))
    return reject(Outcome::kInvalidValue, [&] { return std::string("judge_score/user_feedback not a finite number"); });

  Observation& o = obs_out ? *obs_out : obs_;
  extractor_->extract(r, o);

  {
    auto g = lock();
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
      return reject(Outcome::kLate, [&] { return "event time " + format_rfc3339(ms) + " is before the watermark " + format_rfc3339(wm); });
    }
    if (ms > pc->max_ms) {
      pc->max_ms = ms;
      watermark_.store(watermark_locked(), std::memory_order_relaxed);
    }
    if (ms > max_event_ms()) max_event_ms_.store(ms, std::memory_order_relaxed);
    static constexpr size_t kLabelFields[] = {kModel, kModelVersion, kEndpoint, kVariant};
    for (size_t i = 0; i < 4; ++i) {
      const FieldValue& v = r[kLabelFields[i]];
      labels_[i] = v.present() ? v.str : std::string_view();
    }
    const auto& dims = fields_->dimension_ids();
    for (size_t i = 0; i < dims.size(); ++i) {
      const FieldValue& v = r[dims[i]];
      labels_[4 + i] = v.present() ? v.str : std::string_view();
    }
    Series& s = store_->series_for(labels_);
    s.note_source(pc->id);
    store_->add(s, ms, o, &r);
  }
  counts[size_t(Outcome::kApplied)].fetch_add(1, std::memory_order_relaxed);
  if (on_applied_) on_applied_();
  return Outcome::kApplied;
}

}  // namespace gw
