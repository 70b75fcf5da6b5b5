// decode: bytes -> Record. Locates every field by a JSON pointer (presets + overrides) and walks
// each document once: a strict pass of its own for plainly valid JSON, else simdjson On-Demand.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "guardwatch/config.hpp"
#include "guardwatch/record.hpp"

namespace gw {

// The fields a decoder extracts: built-in ones, configured dimensions, and any extra fields
// custom metrics read. Ids are stable for the decoder's lifetime.
class FieldSet {
 public:
  explicit FieldSet(const Config& cfg);  // preset + overrides + dimensions
  // Adds (or finds) a field by JSON pointer; returns its id.
  uint16_t add_pointer(const std::string& pointer);
  size_t size() const { return pointers_.size(); }
  const std::string& pointer(size_t id) const { return pointers_[id]; }
  const std::vector<uint16_t>& dimension_ids() const { return dim_ids_; }
  const std::vector<std::string>& dimension_names() const { return dim_names_; }
  static const char* builtin_name(size_t id);
  static std::vector<std::string> preset_names();

 private:
  std::vector<std::string> pointers_;
  std::vector<uint16_t> dim_ids_;
  std::vector<std::string> dim_names_;
};

struct DecodeResult {
  Outcome outcome = Outcome::kApplied;  // kApplied means "decoded"
  std::string detail;                   // for the rate-limited log sample
};

class Decoder {
 public:
  Decoder(const FieldSet& fields, uint64_t max_record_bytes);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  // Decodes one JSON document. `data` need not be padded: the fast path reads it in place
  // whatever follows it; simdjson needs kPadding readable bytes after it (any content), so a
  // document it must read is copied into a padded buffer unless `readable_after` says so.
  DecodeResult decode(std::string_view data, Record& out, size_t readable_after = 0);
  static constexpr size_t kPadding = 64;  // >= simdjson::SIMDJSON_PADDING (checked in decoder.cpp)
  // Plainly valid documents are read by a strict single pass of the decoder's own (on by
  // default); anything else, and everything when it is off, by simdjson. Both read the same
  // values: tests and the fuzz target compare them.
  void set_fast_path(bool on);
  uint64_t fast_path_reads() const;  // documents the fast path read, since construction
  static bool has_fast_path();       // built in (it needs AVX2 and BMI2: -march=haswell or later)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses an RFC 3339 timestamp into epoch milliseconds.
bool parse_rfc3339(std::string_view s, int64_t& ms);
std::string format_rfc3339(int64_t ms);

}  // namespace gw
