// A mergeable quantile sketch with relative-error guarantees (DDSketch, Masson et al. 2019):
// every quantile it returns is within `alpha` (default 1%) of the true sample quantile.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace gw {

class Sketch {
 public:
  static constexpr double kAlpha = 0.01;
  static constexpr uint32_t kMaxBins = 2048;  // per sign; lowest bins collapse beyond this

  // The bin key of a value > 0; computed once and reused for every tier a value lands in.
  static int32_t key(double v);
  static double value_of(int32_t key);  // the bin's representative value

  void add(double v) { add_key(v, v > kMinPositive ? key(v) : v < -kMinPositive ? key(-v) : 0); }
  void add_key(double v, int32_t k);    // k = key(|v|), ignored for (near) zero values
  void merge(const Sketch& o);
  void clear();
  uint64_t count() const { return count_; }
  // q in [0,1]: the lower sample quantile (rank floor(q*(n-1))), within alpha relative error.
  double quantile(double q) const;
  size_t memory_bytes() const;

  static constexpr double kMinPositive = 1e-9;

 private:
  struct Store {
    int32_t offset = 0;             // key of bins[0]
    std::vector<uint32_t> bins;
    uint64_t total = 0;
    void add(int32_t k, uint32_t n);
    void merge(const Store& o);
    void clear() { bins.clear(); total = 0; offset = 0; }
  };
  Store pos_, neg_;
  uint64_t zero_ = 0;
  uint64_t count_ = 0;
};

}  // namespace gw
