#include "metrics/prometheus.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace memshard {
namespace {

constexpr double kLatencyBounds[] = {1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5,
                                     1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
                                     1e-2, 2.5e-2, 5e-2, 0.1,  0.25,   0.5,
                                     1.0,  2.5,    5.0,  10.0, 30.0,   60.0};

absl::string_view TypeName(PrometheusText::Type type) {
  switch (type) {
    case PrometheusText::Type::kCounter:
      return "counter";
    case PrometheusText::Type::kGauge:
      return "gauge";
    case PrometheusText::Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// HELP text escapes backslash and newline only.
std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatDouble(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  return absl::StrFormat("%.10g", value);
}

}  // namespace

absl::Span<const double> PrometheusText::LatencyBoundsSeconds() {
  return kLatencyBounds;
}

std::string PrometheusText::LabelValue(absl::string_view value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

PrometheusText::Family& PrometheusText::FamilyFor(absl::string_view name,
                                                  Type type,
                                                  absl::string_view help) {
  auto [it, inserted] = index_.try_emplace(name, families_.size());
  if (inserted) {
    families_.push_back(
        Family{std::string(name), type, std::string(help), std::string()});
  }
  return families_[it->second];
}

void PrometheusText::AddLine(Family& family, absl::string_view suffix,
                             absl::string_view labels,
                             absl::string_view value) {
  absl::StrAppend(&family.samples, family.name, suffix);
  if (!labels.empty()) absl::StrAppend(&family.samples, "{", labels, "}");
  absl::StrAppend(&family.samples, " ", value, "\n");
}

void PrometheusText::Add(absl::string_view name, Type type,
                         absl::string_view help, absl::string_view labels,
                         uint64_t value) {
  AddLine(FamilyFor(name, type, help), "", labels, absl::StrCat(value));
}

void PrometheusText::Add(absl::string_view name, Type type,
                         absl::string_view help, absl::string_view labels,
                         int64_t value) {
  AddLine(FamilyFor(name, type, help), "", labels, absl::StrCat(value));
}

void PrometheusText::Add(absl::string_view name, Type type,
                         absl::string_view help, absl::string_view labels,
                         double value) {
  AddLine(FamilyFor(name, type, help), "", labels, FormatDouble(value));
}

void PrometheusText::AddHistogram(absl::string_view name,
                                  absl::string_view help,
                                  absl::string_view labels,
                                  const LatencyHistogram& h,
                                  absl::Span<const double> bounds_seconds) {
  Family& family = FamilyFor(name, Type::kHistogram, help);
  const std::string prefix =
      labels.empty() ? std::string() : absl::StrCat(labels, ",");
  // Count from the buckets themselves so that the +Inf bucket, _count and
  // every `le` bucket agree even while a worker is recording.
  uint64_t total = 0;
  for (size_t i = 0; i < LatencyHistogram::kNumBuckets; ++i) {
    total += h.bucket_count(i);
  }
  uint64_t previous = 0;
  for (double bound : bounds_seconds) {
    const int64_t nanos = static_cast<int64_t>(std::llround(bound * 1e9));
    // Cumulative counts must not decrease, whatever a racing writer did.
    uint64_t count = std::max(previous, h.CountAtOrBelow(nanos));
    count = std::min(count, total);
    previous = count;
    AddLine(family, "_bucket",
            absl::StrCat(prefix, "le=\"", FormatDouble(bound), "\""),
            absl::StrCat(count));
  }
  AddLine(family, "_bucket", absl::StrCat(prefix, "le=\"+Inf\""),
          absl::StrCat(total));
  AddLine(family, "_sum", labels,
          FormatDouble(static_cast<double>(h.sum()) / 1e9));
  AddLine(family, "_count", labels, absl::StrCat(total));
}

std::string PrometheusText::Finish() {
  std::string out;
  for (const Family& family : families_) {
    absl::StrAppend(&out, "# HELP ", family.name, " ", EscapeHelp(family.help),
                    "\n# TYPE ", family.name, " ", TypeName(family.type), "\n",
                    family.samples);
  }
  families_.clear();
  index_.clear();
  return out;
}

}  // namespace memshard
