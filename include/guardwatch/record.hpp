// A decoded inference record: the value the decoder hands to the extractor.
// String views point into the decoder's buffers and stay valid until the next decode().
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gw {

// Fields every preset knows. Configured dimensions and fields that custom metrics read
// follow these ids (see FieldSet).
enum Field : uint16_t {
  kTs,
  kRequestId,
  kModel,
  kModelVersion,
  kEndpoint,
  kVariant,
  kLatencyMs,
  kTtftMs,
  kPromptTokens,
  kCompletionTokens,
  kFinishReason,
  kStatus,
  kResponse,
  kJudgeScore,
  kUserFeedback,
  kCostUsd,
  kBuiltinFieldCount
};

struct FieldValue {
  enum Type : uint8_t { kAbsent, kNull, kNumber, kString, kBool, kOther } type = kAbsent;
  double num = 0;
  std::string_view str;
  bool present() const { return type != kAbsent && type != kNull; }
};

// Where a record came from, for exemplars.
struct SourcePos {
  std::string_view topic;  // empty when not from Kafka
  int32_t partition = -1;
  int64_t offset = -1;
  int64_t line = 0;        // 1-based line in a JSONL input, 0 when not from a file
  bool warmup = false;     // re-read to rebuild windows after an assignment (counted apart)
};

struct Record {
  int64_t ts_ms = 0;
  std::vector<FieldValue> fields;  // indexed by Field, then by FieldSet ids
  SourcePos pos;
  const FieldValue& operator[](size_t id) const { return fields[id]; }
};

// Why a record was not applied. Exported as guardwatch_records_total{outcome}.
enum class Outcome : uint8_t {
  kApplied,
  kLate,
  kEmpty,
  kOversized,
  kInvalidJson,
  kInvalidUtf8,
  kMissingTimestamp,
  kBadTimestamp,
  kWrongType,
  kInvalidValue,
  kCount
};
const char* outcome_name(Outcome o);

}  // namespace gw
