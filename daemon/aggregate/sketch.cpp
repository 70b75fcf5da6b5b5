#include "guardwatch/sketch.hpp"

#include <cmath>

namespace gw {
namespace {
const double kGamma = (1 + Sketch::kAlpha) / (1 - Sketch::kAlpha);
const double kInvLogGamma = 1.0 / std::log(kGamma);
}  // namespace

int32_t Sketch::key(double v) { return int32_t(std::ceil(std::log(v) * kInvLogGamma)); }
double Sketch::value_of(int32_t k) { return 2.0 * std::pow(kGamma, k) / (kGamma + 1.0); }

void Sketch::Store::add(int32_t k, uint32_t n) {
  total += n;
  if (bins.empty()) {
    offset = k;
    bins.assign(1, n);
    return;
  }
  if (k < offset) {
    int64_t span = int64_t(offset) + int64_t(bins.size()) - k;
    if (span > int64_t(kMaxBins)) {  // collapse: the lowest bin absorbs smaller values
      bins[0] += n;
      return;
    }
    bins.insert(bins.begin(), size_t(offset - k), 0u);
    offset = k;
    bins[0] += n;
    return;
  }
  size_t idx = size_t(k - offset);
  if (idx >= bins.size()) {
    if (idx + 1 > kMaxBins) {  // shift the range up, folding the lowest bins into the new first
      size_t shift = idx + 1 - kMaxBins;
      if (shift >= bins.size()) {
        uint32_t sum = 0;
        for (auto c : bins) sum += c;
        bins.assign(1, sum);
      } else {
        uint32_t folded = 0;
        for (size_t i = 0; i <= shift; ++i) folded += bins[i];
        bins.erase(bins.begin(), bins.begin() + long(shift));
        bins[0] = folded;
      }
      offset += int32_t(shift);
      idx = size_t(k - offset);
    }
    bins.resize(idx + 1, 0u);
  }
  bins[idx] += n;
}

void Sketch::Store::merge(const Store& o) {
  if (o.bins.empty()) return;
  if (bins.empty()) {
    *this = o;
    return;
  }
  // Grow to cover o's range once, then add bin by bin.
  int32_t lo = std::min(offset, o.offset);
  int32_t hi = std::max(offset + int32_t(bins.size()), o.offset + int32_t(o.bins.size()));
  if (hi - lo <= int32_t(kMaxBins)) {
    if (lo < offset) {
      bins.insert(bins.begin(), size_t(offset - lo), 0u);
      offset = lo;
    }
    if (size_t(hi - offset) > bins.size()) bins.resize(size_t(hi - offset), 0u);
    uint32_t* dst = bins.data() + (o.offset - offset);
    for (size_t i = 0; i < o.bins.size(); ++i) dst[i] += o.bins[i];
    total += o.total;
    return;
  }
  for (size_t i = 0; i < o.bins.size(); ++i)
    if (o.bins[i]) add(o.offset + int32_t(i), o.bins[i]);
}

void Sketch::add_key(double v, int32_t k) {
  ++count_;
  if (v > kMinPositive) pos_.add(k, 1);
  else if (v < -kMinPositive) neg_.add(k, 1);
  else ++zero_;
}

void Sketch::merge(const Sketch& o) {
  pos_.merge(o.pos_);
  neg_.merge(o.neg_);
  zero_ += o.zero_;
  count_ += o.count_;
}

void Sketch::clear() {
  pos_.clear();
  neg_.clear();
  zero_ = 0;
  count_ = 0;
}

double Sketch::quantile(double q) const {
  if (count_ == 0) return std::nan("");
  q = std::min(1.0, std::max(0.0, q));
  double rank = std::floor(q * double(count_ - 1));
  double cum = 0;
  for (size_t i = neg_.bins.size(); i-- > 0;) {  // most negative first
    cum += neg_.bins[i];
    if (cum > rank) return -value_of(neg_.offset + int32_t(i));
  }
  cum += double(zero_);
  if (cum > rank) return 0.0;
  for (size_t i = 0; i < pos_.bins.size(); ++i) {
    cum += pos_.bins[i];
    if (cum > rank) return value_of(pos_.offset + int32_t(i));
  }
  return pos_.bins.empty() ? 0.0 : value_of(pos_.offset + int32_t(pos_.bins.size()) - 1);
}

size_t Sketch::memory_bytes() const {
  return sizeof(*this) + (pos_.bins.capacity() + neg_.bins.capacity()) * sizeof(uint32_t);
}

}  // namespace gw
