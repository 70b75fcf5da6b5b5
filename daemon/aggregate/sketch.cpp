#include "guardwatch/sketch.hpp"

#include <cmath>

namespace gw {
namespace {
const double kGamma = (1 + Sketch::kAlpha) / (1 - Sketch::kAlpha);
const double kInvLogGamma = 1.0 / std::log(kGamma);
}  // namespace

int32_t Sketch::key(double v) { return int32_t(std::ceil(std::log(v) * kInvLogGamma)); }
double Sketch::value_of(int32_t k) { return 2.0 * std::pow(kGamma, k) / (kGamma + 1.0); }

Sketch::Sketch(const Sketch& o) : pos_(o.pos_), zero_(o.zero_), count_(o.count_) {
  if (o.neg_) neg_ = std::make_unique<Bins>(*o.neg_);
}
Sketch& Sketch::operator=(const Sketch& o) {
  if (this != &o) {
    pos_ = o.pos_;
    neg_ = o.neg_ ? std::make_unique<Bins>(*o.neg_) : nullptr;
    zero_ = o.zero_;
    count_ = o.count_;
  }
  return *this;
}

void Sketch::Bins::widen() {
  w32_.assign(w16_.begin(), w16_.end());
  std::vector<uint16_t>().swap(w16_);
  wide_ = true;
}

void Sketch::Bins::resize_front(size_t extra) {
  if (wide_) w32_.insert(w32_.begin(), extra, 0u);
  else w16_.insert(w16_.begin(), extra, uint16_t(0));
}

void Sketch::Bins::resize_back(size_t n) {
  if (wide_) w32_.resize(n, 0u);
  else w16_.resize(n, uint16_t(0));
}

void Sketch::Bins::bump(size_t i, uint32_t n) {
  if (!wide_) {
    if (uint32_t(w16_[i]) + n <= 0xFFFF) {
      w16_[i] = uint16_t(w16_[i] + n);
      return;
    }
    widen();
  }
  w32_[i] += n;
}

void Sketch::Bins::add_slow(int32_t k, uint32_t n) {
  if (empty()) {
    offset_ = k;
    resize_back(1);
    bump(0, n);
    return;
  }
  if (k < offset_) {
    int64_t span = int64_t(offset_) + int64_t(size()) - k;
    if (span > int64_t(kMaxBins)) {  // collapse: the lowest bin absorbs smaller values
      bump(0, n);
      return;
    }
    resize_front(size_t(offset_ - k));
    offset_ = k;
    bump(0, n);
    return;
  }
  size_t idx = size_t(k - offset_);
  if (idx >= size()) {
    if (idx + 1 > kMaxBins) {  // shift the range up, folding the lowest bins into the new first
      size_t shift = idx + 1 - kMaxBins;
      uint64_t folded = 0;
      size_t upto = std::min(shift + 1, size());
      for (size_t i = 0; i < upto; ++i) folded += at(i);
      if (!wide_) widen();
      if (shift >= w32_.size()) {
        w32_.assign(1, uint32_t(folded));
      } else {
        w32_.erase(w32_.begin(), w32_.begin() + long(shift));
        w32_[0] = uint32_t(folded);
      }
      offset_ += int32_t(shift);
      idx = size_t(k - offset_);
    }
    resize_back(idx + 1);
  }
  bump(idx, n);
}

void Sketch::Bins::merge(const Bins& o) {
  if (o.empty()) return;
  if (empty()) {
    *this = o;
    return;
  }
  int32_t lo = std::min(offset_, o.offset_);
  int32_t hi = std::max(offset_ + int32_t(size()), o.offset_ + int32_t(o.size()));
  if (hi - lo > int32_t(kMaxBins)) {
    for (size_t i = 0; i < o.size(); ++i)
      if (o.at(i)) add(o.offset_ + int32_t(i), o.at(i));
    return;
  }
  if (lo < offset_) {
    resize_front(size_t(offset_ - lo));
    offset_ = lo;
  }
  if (size_t(hi - offset_) > size()) resize_back(size_t(hi - offset_));
  size_t base = size_t(o.offset_ - offset_);
  if (!wide_ && o.wide_) widen();
  if (wide_) {
    uint32_t* dst = w32_.data() + base;
    if (o.wide_)
      for (size_t i = 0; i < o.w32_.size(); ++i) dst[i] += o.w32_[i];
    else
      for (size_t i = 0; i < o.w16_.size(); ++i) dst[i] += o.w16_[i];
    return;
  }
  for (size_t i = 0; i < o.w16_.size(); ++i) bump(base + i, o.w16_[i]);
}

void Sketch::Bins::clear() {
  // Keep the capacity: a recycled bucket refills to a similar size.
  w16_.clear();
  w32_.clear();
  if (wide_) {
    std::vector<uint32_t>().swap(w32_);
    wide_ = false;
  }
  offset_ = 0;
}

void Sketch::add_other(double v, int32_t k) {
  if (v < -kMinPositive) {
    if (!neg_) neg_ = std::make_unique<Bins>();
    neg_->add(k, 1);
  } else {
    ++zero_;
  }
}

void Sketch::merge(const Sketch& o) {
  pos_.merge(o.pos_);
  if (o.neg_) {
    if (!neg_) neg_ = std::make_unique<Bins>();
    neg_->merge(*o.neg_);
  }
  zero_ += o.zero_;
  count_ += o.count_;
}

void Sketch::clear() {
  pos_.clear();
  if (neg_) neg_->clear();
  zero_ = 0;
  count_ = 0;
}

double Sketch::quantile(double q) const {
  if (count_ == 0) return std::nan("");
  q = std::min(1.0, std::max(0.0, q));
  double rank = std::floor(q * double(count_ - 1));
  double cum = 0;
  if (neg_)
    for (size_t i = neg_->size(); i-- > 0;) {  // most negative first
      cum += neg_->at(i);
      if (cum > rank) return -value_of(neg_->offset() + int32_t(i));
    }
  cum += double(zero_);
  if (cum > rank) return 0.0;
  for (size_t i = 0; i < pos_.size(); ++i) {
    cum += pos_.at(i);
    if (cum > rank) return value_of(pos_.offset() + int32_t(i));
  }
  return pos_.empty() ? 0.0 : value_of(pos_.offset() + int32_t(pos_.size()) - 1);
}

namespace {
// Position of v on one line across the stores: negatives (by descending key), zero, positives.
struct Pos {
  int sign;     // -1, 0, +1
  int32_t key;  // key(|v|) when sign != 0
};
Pos pos_of(double v) {
  if (v > Sketch::kMinPositive) return {1, Sketch::key(v)};
  if (v < -Sketch::kMinPositive) return {-1, Sketch::key(-v)};
  return {0, 0};
}
}  // namespace

uint64_t Sketch::count_above(double v) const {
  Pos p = pos_of(v);
  uint64_t n = 0;
  for (size_t i = 0; i < pos_.size(); ++i) {
    int32_t k = pos_.offset() + int32_t(i);
    if (p.sign < 0 || p.sign == 0 || k > p.key) n += pos_.at(i);
  }
  if (p.sign < 0) {
    n += zero_;
    if (neg_)
      for (size_t i = 0; i < neg_->size(); ++i)
        if (neg_->offset() + int32_t(i) < p.key) n += neg_->at(i);
  }
  return n;
}

uint64_t Sketch::count_below(double v) const {
  Pos p = pos_of(v);
  uint64_t n = 0;
  if (neg_)
    for (size_t i = 0; i < neg_->size(); ++i) {
      int32_t k = neg_->offset() + int32_t(i);
      if (p.sign > 0 || p.sign == 0 || k > p.key) n += neg_->at(i);
    }
  if (p.sign > 0) {
    n += zero_;
    for (size_t i = 0; i < pos_.size(); ++i)
      if (pos_.offset() + int32_t(i) < p.key) n += pos_.at(i);
  }
  return n;
}

size_t Sketch::memory_bytes() const {
  return sizeof(*this) + pos_.memory_bytes() + (neg_ ? sizeof(Bins) + neg_->memory_bytes() : 0);
}

}  // namespace gw
