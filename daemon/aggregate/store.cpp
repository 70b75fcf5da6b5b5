#include "guardwatch/store.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace gw {

void DistAgg::merge(const DistAgg& o) {
  if (!o.count) return;
  count += o.count;
  sum += o.sum;
  sumsq += o.sumsq;
  min = std::min(min, o.min);
  max = std::max(max, o.max);
  sketch.merge(o.sketch);
}

void DistAgg::clear() {
  count = 0;
  sum = sumsq = 0;
  min = std::numeric_limits<double>::infinity();
  max = -std::numeric_limits<double>::infinity();
  sketch.clear();
}

double DistAgg::variance() const {
  if (count < 2) return std::numeric_limits<double>::quiet_NaN();
  double n = double(count);
  return std::max(0.0, (sumsq - sum * sum / n) / (n - 1));
}

void WindowAgg::merge(const WindowAgg& o) {
  records += o.records;
  for (size_t i = 0; i < props.size() && i < o.props.size(); ++i) props[i].merge(o.props[i]);
  for (size_t i = 0; i < dists.size() && i < o.dists.size(); ++i) dists[i].merge(o.dists[i]);
}

Store::Store(const Config& cfg, const MetricRegistry& metrics, std::vector<std::string> label_names)
    : cfg_(cfg), metrics_(metrics), label_names_(std::move(label_names)) {
  for (auto& l : label_names_) {
    auto it = cfg_.label_caps.find(l);
    caps_.push_back(it != cfg_.label_caps.end() ? it->second : cfg_.max_values_per_label);
  }
  seen_values_.resize(label_names_.size());
  folded_.assign(label_names_.size(), 0);
  capped_.resize(label_names_.size());
  keys_.resize(metrics_.size());
  for (size_t m = 0; m < metrics_.size(); ++m) {
    is_prop_.push_back(metrics_[m].kind == MetricKind::kProportion);
    slot_.push_back(uint16_t(is_prop_.back() ? n_props_++ : n_dists_++));
  }
}

int64_t Store::retention_ms() const { return cfg_.tiers.empty() ? 0 : cfg_.tiers.back().retention_ms(); }

Series& Store::series_for(const std::vector<std::string_view>& labels) {
  key_.clear();
  for (auto& v : labels) append_key(key_, v);
  return series_for_key(key_);
}

Series& Store::series_for_key(std::string_view key) {
  if (auto it = index_.find(key); it != index_.end()) return *it->second;
  if (auto it = folded_keys_.find(key); it != folded_keys_.end()) {
    for (uint16_t i : it->second.labels) ++folded_[i];
    folded_global_ += it->second.global;
    return *it->second.series;
  }
  // A new key: its label values back out of it.
  split_.clear();
  for (size_t i = 0; i < key.size() && split_.size() < label_names_.size();) {
    size_t n = 0;
    for (int shift = 0; i < key.size() && shift < 64; shift += 7) {
      unsigned char c = static_cast<unsigned char>(key[i++]);
      n |= size_t(c & 0x7F) << shift;
      if (!(c & 0x80)) break;
    }
    n = std::min(n, key.size() - i);
    split_.push_back(key.substr(i, n));
    i += n;
  }
  split_.resize(label_names_.size());
  const std::vector<std::string_view>& labels = split_;

  // New label set: apply the per-label caps, then the global cap.
  folding_.clear();
  auto folded = [&](Series& series, bool global) -> Series& {
    // A key over the whole budget is not kept, and does not empty what is kept either.
    if (key.size() > kMaxFoldedKeyBytes) return series;
    if (folded_keys_.size() >= kMaxFoldedKeys || folded_key_bytes_ + key.size() > kMaxFoldedKeyBytes) {
      folded_keys_.clear();
      folded_key_bytes_ = 0;
    }
    folded_keys_.emplace(std::string(key), FoldedKey{&series, folding_, global});
    folded_key_bytes_ += key.size();
    return series;
  };
  for (size_t i = 0; i < labels.size(); ++i) {
    auto& seen = seen_values_[i];
    std::string v(labels[i]);
    if (seen.count(v)) {
      capped_[i] = labels[i];
    } else if (seen.size() < caps_[i]) {
      seen.insert(v);
      capped_[i] = labels[i];
    } else {
      capped_[i] = kOther;
      ++folded_[i];
      folding_.push_back(uint16_t(i));
    }
  }
  std::string capped_key;
  for (auto& v : capped_) append_key(capped_key, v);
  if (capped_key != key) {
    if (auto it = index_.find(capped_key); it != index_.end()) return folded(*it->second, false);
  }
  if (series_.size() >= cfg_.max_series) {
    ++folded_global_;
    if (!other_) {
      auto s = std::make_unique<Series>();
      s->labels.assign(labels.size(), kOther);
      init_series(*s);
      other_ = s.get();
      series_.push_back(std::move(s));
    }
    return folded(*other_, true);
  }
  auto s = std::make_unique<Series>();
  for (auto& v : capped_) s->labels.emplace_back(v);
  init_series(*s);
  Series* raw = s.get();
  series_.push_back(std::move(s));
  index_.emplace(capped_key, raw);
  return capped_key != key ? folded(*raw, false) : *raw;
}

void Store::init_series(Series& s) const {
  s.tiers.resize(cfg_.tiers.size());
  for (size_t t = 0; t < cfg_.tiers.size(); ++t) s.tiers[t].resize(cfg_.tiers[t].slots);
  s.rings.resize(2 * n_props_ + 2 * n_dists_);
}

void Store::fill_slot(ExemplarSlot& e, int64_t ts, double v, const Record& r) {
  e.ts_ms = ts;
  e.value = v;
  std::string_view id = r[kRequestId].present() ? r[kRequestId].str : std::string_view();
  e.id_len = uint8_t(std::min(id.size(), sizeof(e.id)));
  if (e.id_len) std::memcpy(e.id, id.data(), e.id_len);
  e.partition = r.pos.partition;
  e.offset = r.pos.offset;
  e.line = r.pos.line;
  e.topic = 0;
  if (!r.pos.topic.empty()) {
    for (size_t i = 1; i < topics_.size(); ++i)
      if (topics_[i] == r.pos.topic) e.topic = uint16_t(i);
    if (!e.topic && topics_.size() < 0xFFFF) {
      topics_.emplace_back(r.pos.topic);
      e.topic = uint16_t(topics_.size() - 1);
    }
  }
}

void Store::exemplars(const Series& s, int metric, int64_t from, int64_t to, bool largest, std::vector<ExemplarOut>& out) const {
  out.clear();
  if (metric < 0 || size_t(metric) >= metrics_.size() || s.rings.empty()) return;
  bool prop = metrics_[size_t(metric)].kind == MetricKind::kProportion;
  // Proportions: `largest` asks for successes (e.g. refusals), otherwise for failures (e.g.
  // responses without a citation). Distributions: the largest or the smallest values.
  size_t ring = (prop ? 2 * slot_[size_t(metric)] : 2 * n_props_ + 2 * slot_[size_t(metric)]) + (largest ? 0 : 1);
  for (auto& e : s.rings[ring])
    if (e.ts_ms >= from && e.ts_ms < to) out.push_back({&e, e.value});
  std::sort(out.begin(), out.end(), [&](auto& a, auto& b) {
    if (prop) return a.slot->ts_ms > b.slot->ts_ms;
    return largest ? a.value > b.value : a.value < b.value;
  });
}

void Store::add(Series& s, int64_t ts, const Observation& obs, const Record* rec) {
  const size_t nm = metrics_.size();
  const double* vals = obs.values.data();
  const uint8_t* is_prop = is_prop_.data();
  const uint16_t* slot = slot_.data();
  if (rec) {
    // The record's 15 s slot [from, to): a slot holds this epoch's exemplar when its time falls
    // inside (two compares instead of a division per slot; empty slots hold INT64_MIN).
    constexpr int64_t kSpacing = Series::kExemplarSpacingMs, kSlots = int64_t(Series::kExemplarSlots);
    const int64_t epoch = ts >= 0 ? ts / kSpacing : (ts - kSpacing + 1) / kSpacing;
    const int64_t from = epoch * kSpacing, to = from + kSpacing;
    const size_t idx = size_t(((epoch % kSlots) + kSlots) % kSlots);
    auto current = [&](const ExemplarSlot& e) { return e.ts_ms >= from && e.ts_ms < to; };
    for (size_t m = 0; m < nm; ++m) {
      double v = vals[m];
      if (std::isnan(v)) continue;
      if (is_prop[m]) {
        ExemplarSlot& e = s.rings[2 * slot[m] + (v == 1 ? 0 : 1)][idx];
        if (!current(e)) fill_slot(e, ts, v, *rec);
      } else {
        ExemplarSlot& hi = s.rings[2 * n_props_ + 2 * slot[m]][idx];
        ExemplarSlot& lo = s.rings[2 * n_props_ + 2 * slot[m] + 1][idx];
        if (!current(hi) || v > hi.value) fill_slot(hi, ts, v, *rec);
        if (!current(lo) || v < lo.value) fill_slot(lo, ts, v, *rec);
      }
    }
  }
  for (size_t m = 0; m < nm; ++m) {
    double v = vals[m];
    if (!is_prop[m] && !std::isnan(v)) {
      double a = std::fabs(v);
      keys_[m] = a > Sketch::kMinPositive ? Sketch::key(a) : 0;
    }
  }
  s.last_ts_ms = std::max(s.last_ts_ms, ts);
  for (size_t t = 0; t < cfg_.tiers.size(); ++t) {
    const TierSpec& spec = cfg_.tiers[t];
    int64_t epoch = ts >= 0 ? ts / spec.resolution_ms : (ts - spec.resolution_ms + 1) / spec.resolution_ms;
    auto& b = s.tiers[t][size_t(((epoch % spec.slots) + spec.slots) % spec.slots)];
    if (b.epoch != epoch) {
      if (b.epoch > epoch) continue;  // older than this ring holds
      b.epoch = epoch;
      b.records = 0;
      if (b.props.size() != n_props_) {
        b.props.resize(n_props_);
        b.dists.resize(n_dists_);
      }
      for (auto& p : b.props) p = PropAgg{};
      for (auto& d : b.dists) d.clear();
    }
    ++b.records;
    PropAgg* props = b.props.data();
    DistAgg* dists = b.dists.data();
    for (size_t m = 0; m < nm; ++m) {
      double v = vals[m];
      if (std::isnan(v)) continue;
      if (is_prop[m]) {
        PropAgg& p = props[slot[m]];
        ++p.trials;
        p.successes += v != 0;
      } else {
        dists[slot[m]].add(v, keys_[m]);
      }
    }
  }
}

WindowAgg Store::query(const Series& s, int64_t end_ms, int64_t length_ms, const std::vector<int>* only) const {
  WindowAgg w(metrics_.size());
  if (cfg_.tiers.empty()) return w;
  int64_t start = end_ms - length_ms;
  size_t t = 0;
  // The finest tier that still retains the window's start and whose buckets fit in it.
  for (; t + 1 < cfg_.tiers.size(); ++t) {
    const TierSpec& sp = cfg_.tiers[t];
    int64_t newest = std::max(s.last_ts_ms, end_ms - 1);
    if (newest - start < sp.retention_ms() - sp.resolution_ms && length_ms >= sp.resolution_ms) break;
  }
  const TierSpec& sp = cfg_.tiers[t];
  int64_t e_end = (end_ms - 1) >= 0 ? (end_ms - 1) / sp.resolution_ms : (end_ms - sp.resolution_ms) / sp.resolution_ms;
  int64_t n = std::max<int64_t>(1, (length_ms + sp.resolution_ms - 1) / sp.resolution_ms);
  const auto& ring = s.tiers[t];
  // Slots not yet overwritten still hold epochs older than the ring's reach: skip those.
  int64_t newest = s.last_ts_ms >= 0 ? s.last_ts_ms / sp.resolution_ms : (s.last_ts_ms - sp.resolution_ms + 1) / sp.resolution_ms;
  int64_t oldest = newest - int64_t(sp.slots) + 1;
  for (int64_t e = std::max(e_end - n + 1, oldest); e <= e_end; ++e) {
    const auto& b = ring[size_t(((e % sp.slots) + sp.slots) % sp.slots)];
    if (b.epoch != e) continue;
    w.records += b.records;
    if (b.props.size() != n_props_) continue;
    auto merge_one = [&](size_t m) {
      if (metrics_[m].kind == MetricKind::kProportion) w.props[m].merge(b.props[slot_[m]]);
      else w.dists[m].merge(b.dists[slot_[m]]);
    };
    if (only) {
      for (int m : *only)
        if (m >= 0 && size_t(m) < metrics_.size()) merge_one(size_t(m));
    } else {
      for (size_t m = 0; m < metrics_.size(); ++m) merge_one(m);
    }
  }
  return w;
}

size_t Store::expire(int64_t cutoff_ms) {
  // An emptied series (clear_series) has last_ts_ms 0, before any cutoff a record can make
  // (event times start in 2000): it goes too.
  auto idle = [&](const Series& s) { return s.last_ts_ms < cutoff_ms; };
  size_t n = 0;
  for (auto& s : series_) n += idle(*s);
  if (!n) return 0;
  if (other_ && idle(*other_)) other_ = nullptr;
  std::erase_if(series_, [&](const std::unique_ptr<Series>& s) { return idle(*s); });
  // What pointed at the removed series, and the label values only they held, are rebuilt from the
  // series that stay: every series but the global cap's is indexed under its labels' key. A value
  // a cap admitted without a series being made for it is forgotten too.
  index_.clear();
  folded_keys_.clear();
  folded_key_bytes_ = 0;
  for (auto& seen : seen_values_) seen.clear();
  std::string key;
  for (auto& s : series_) {
    if (s.get() == other_) continue;
    key.clear();
    for (size_t i = 0; i < s->labels.size(); ++i) {
      append_key(key, s->labels[i]);
      if (i < seen_values_.size() && s->labels[i] != kOther) seen_values_[i].insert(s->labels[i]);
    }
    index_.emplace(key, s.get());
  }
  return n;
}

int64_t Store::first_data_ms(int64_t from) const {
  int64_t first = std::numeric_limits<int64_t>::max();
  for (auto& sp : series_)
    for (size_t t = 0; t < cfg_.tiers.size() && t < sp->tiers.size(); ++t) {
      int64_t res = cfg_.tiers[t].resolution_ms;
      for (auto& b : sp->tiers[t]) {
        if (!b.records || b.epoch == std::numeric_limits<int64_t>::min()) continue;
        int64_t start = b.epoch * res;
        if (start + res > from) first = std::min(first, start);
      }
    }
  return first;
}

void Store::clear_series(Series& s) const {
  for (auto& ring : s.tiers)
    for (auto& b : ring) {
      b.epoch = std::numeric_limits<int64_t>::min();
      b.records = 0;
      for (auto& p : b.props) p = PropAgg{};
      for (auto& d : b.dists) d.clear();
    }
  for (auto& ring : s.rings)
    for (auto& e : ring) e = ExemplarSlot{};
  s.last_ts_ms = 0;
  s.sources.clear();
}

size_t Store::memory_bytes() const {
  size_t total = 0;
  for (auto& s : series_) {
    total += sizeof(Series) + s->rings.capacity() * sizeof(s->rings[0]) + s->labels.size() * 32;
    for (auto& ring : s->tiers)
      for (auto& b : ring) {
        total += sizeof(b) + b.props.capacity() * sizeof(PropAgg);
        for (auto& d : b.dists) total += sizeof(DistAgg) - sizeof(Sketch) + d.sketch.memory_bytes();
        total += (b.dists.capacity() - b.dists.size()) * sizeof(DistAgg);
      }
  }
  for (auto& [key, f] : folded_keys_) total += 64 + key.capacity() + f.labels.capacity() * sizeof(uint16_t);
  return total + index_.size() * 64;
}

}  // namespace gw
