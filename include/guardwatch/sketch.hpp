// A mergeable quantile sketch with relative-error guarantees (DDSketch, Masson et al. 2019):
// every quantile it returns is within `alpha` (default 1%) of the true sample quantile.
// Bins are 16-bit until one overflows, then 32-bit: most window buckets hold few samples per
// bin, and memory per series is dominated by these bins.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace gw {

class Sketch {
 public:
  static constexpr double kAlpha = 0.01;
  static constexpr uint32_t kMaxBins = 2048;  // per sign; lowest bins collapse beyond this
  static constexpr double kMinPositive = 1e-9;

  // The bin key of a value > 0; computed once and reused for every tier a value lands in.
  static int32_t key(double v);
  static double value_of(int32_t key);  // the bin's representative value

  Sketch() = default;
  Sketch(const Sketch& o);
  Sketch& operator=(const Sketch& o);
  Sketch(Sketch&&) noexcept = default;
  Sketch& operator=(Sketch&&) noexcept = default;

  void add(double v) { add_key(v, v > kMinPositive ? key(v) : v < -kMinPositive ? key(-v) : 0); }
  void add_key(double v, int32_t k) {  // k = key(|v|), ignored for (near) zero values
    ++count_;
    if (v > kMinPositive) pos_.add(k, 1);
    else add_other(v, k);
  }
  void merge(const Sketch& o);
  void clear();
  uint64_t count() const { return count_; }
  // q in [0,1]: the lower sample quantile (rank floor(q*(n-1))), within alpha relative error.
  double quantile(double q) const;
  size_t memory_bytes() const;
  // Samples in bins strictly above / below the bin holding v (that bin itself is ambiguous
  // within the sketch's relative error, so it counts for neither).
  uint64_t count_above(double v) const;
  uint64_t count_below(double v) const;

 private:
  class Bins {
   public:
    // The common case inline (a bin already in range, 16-bit counters with room); else add_slow.
    void add(int32_t k, uint32_t n) {
      size_t idx = size_t(uint32_t(k - offset_));
      if (!wide_ && idx < w16_.size() && uint32_t(w16_[idx]) + n <= 0xFFFF) {
        w16_[idx] = uint16_t(w16_[idx] + n);
        return;
      }
      add_slow(k, n);
    }
    void add_slow(int32_t k, uint32_t n);
    void merge(const Bins& o);
    void clear();
    bool empty() const { return size() == 0; }
    size_t size() const { return wide_ ? w32_.size() : w16_.size(); }
    uint32_t at(size_t i) const { return wide_ ? w32_[i] : w16_[i]; }
    int32_t offset() const { return offset_; }
    size_t memory_bytes() const { return w16_.capacity() * 2 + w32_.capacity() * 4; }

   private:
    void widen();
    void resize_front(size_t extra);
    void resize_back(size_t n);
    void bump(size_t i, uint32_t n);
    int32_t offset_ = 0;
    bool wide_ = false;
    std::vector<uint16_t> w16_;
    std::vector<uint32_t> w32_;
  };
  void add_other(double v, int32_t k);  // negative or (near) zero
  Bins pos_;
  std::unique_ptr<Bins> neg_;  // negative values are rare: allocated on first use
  uint64_t zero_ = 0;
  uint64_t count_ = 0;
};

}  // namespace gw
