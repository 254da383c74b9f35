#pragma once

// PrometheusText: composes the Prometheus text exposition format 0.0.4.
//
// Thread-compatible: one writer per instance. Samples may be added in any
// order; Finish() emits each metric family once, in order of first use,
// with its HELP and TYPE lines and all its samples together (the format
// requires a family's samples to be contiguous).
//
// Names and labels are the caller's: family names must match
// [a-zA-Z_:][a-zA-Z0-9_:]*, and `labels` is either empty or a ready label
// list such as `command="get",status="hit"` (build values with
// LabelValue()).

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "metrics/latency_histogram.h"

namespace memshard {

class PrometheusText {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // The `le` bounds, in seconds, used for latency histograms: 1 us to 60 s
  // in 1-2.5-5 steps.
  static absl::Span<const double> LatencyBoundsSeconds();

  // `value` quoted and escaped for use in a label list: "a\"b" -> "\"a\\\"b\"".
  static std::string LabelValue(absl::string_view value);

  // One sample of family `name`. The first sample of a family fixes its
  // type and help.
  void Add(absl::string_view name, Type type, absl::string_view help,
           absl::string_view labels, uint64_t value);
  void Add(absl::string_view name, Type type, absl::string_view help,
           absl::string_view labels, int64_t value);
  void Add(absl::string_view name, Type type, absl::string_view help,
           absl::string_view labels, double value);

  // A histogram of nanosecond samples exported in seconds: cumulative
  // `_bucket{le=...}` lines for `bounds_seconds` and +Inf, `_sum` and
  // `_count`. A bucket counts the samples whose histogram bucket lies wholly
  // at or below the bound (LatencyHistogram::CountAtOrBelow), so it is
  // within one histogram bucket (< 1%) of the exact count.
  void AddHistogram(absl::string_view name, absl::string_view help,
                    absl::string_view labels, const LatencyHistogram& h,
                    absl::Span<const double> bounds_seconds);

  // The exposition; the writer is empty afterwards.
  std::string Finish();

 private:
  struct Family {
    std::string name;
    Type type;
    std::string help;
    std::string samples;
  };

  Family& FamilyFor(absl::string_view name, Type type, absl::string_view help);
  void AddLine(Family& family, absl::string_view suffix,
               absl::string_view labels, absl::string_view value);

  std::vector<Family> families_;
  absl::flat_hash_map<std::string, size_t> index_;
};

}  // namespace memshard
