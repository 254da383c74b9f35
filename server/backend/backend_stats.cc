#include "server/backend/backend_stats.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace memshard {
namespace backend {

absl::string_view BackendStateName(BackendState state) {
  switch (state) {
    case BackendState::kUp:
      return "up";
    case BackendState::kDown:
      return "down";
    case BackendState::kEjected:
      return "ejected";
  }
  return "?";
}

size_t RoundTripHistogram::BucketIndex(uint64_t micros) {
  constexpr uint64_t kMax = (uint64_t{1} << (kMaxExponent + 1)) - 1;
  if (micros > kMax) micros = kMax;
  if (micros < static_cast<uint64_t>(kSub)) return static_cast<size_t>(micros);
  const int exponent = 63 - __builtin_clzll(micros);
  const int shift = exponent - kSubBits;
  return static_cast<size_t>(kSub + shift * kSub +
                             static_cast<int>((micros >> shift) - kSub));
}

uint64_t RoundTripHistogram::BucketLower(size_t index) {
  if (index < static_cast<size_t>(kSub)) return index;
  const size_t shift = (index - kSub) / kSub;
  const uint64_t sub = (index - kSub) % kSub;
  return (kSub + sub) << shift;
}

BackendStatsRegistry::BackendStatsRegistry(int workers, int backends)
    : workers_(workers), backends_(backends) {
  blocks_.reserve(static_cast<size_t>(workers * backends));
  for (int i = 0; i < workers * backends; ++i) {
    blocks_.push_back(std::make_unique<BackendStats>());
  }
}

BackendSummary BackendStatsRegistry::Summarize(int backend) const {
  BackendSummary s;
  std::vector<uint64_t> merged(RoundTripHistogram::kBuckets, 0);
  for (int w = 0; w < workers_; ++w) {
    const BackendStats& b = at(w, backend);
    s.state = std::max(s.state, b.state());
    s.requests += b.requests();
    s.errors += b.errors();
    s.timeouts += b.timeouts();
    s.ejections += b.ejections();
    s.in_flight += b.in_flight();
    for (size_t i = 0; i < merged.size(); ++i) merged[i] += b.rtt().bucket(i);
  }
  for (uint64_t c : merged) s.rtt_count += c;
  auto percentile = [&](double p) -> uint64_t {
    if (s.rtt_count == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(p * s.rtt_count);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < merged.size(); ++i) {
      seen += merged[i];
      if (seen >= rank) {
        // The middle of the bucket.
        uint64_t lo = RoundTripHistogram::BucketLower(i);
        uint64_t hi = i + 1 < merged.size()
                          ? RoundTripHistogram::BucketLower(i + 1)
                          : lo + 1;
        return lo + (hi - lo) / 2;
      }
    }
    return 0;
  };
  s.rtt_p50_us = percentile(0.50);
  s.rtt_p99_us = percentile(0.99);
  return s;
}

std::vector<std::pair<std::string, std::string>> BackendStatLines(
    const BackendStatsRegistry& registry,
    const std::vector<BackendAddress>& addresses) {
  std::vector<std::pair<std::string, std::string>> lines;
  for (int i = 0; i < registry.backends(); ++i) {
    BackendSummary s = registry.Summarize(i);
    const std::string prefix = absl::StrCat("backend:", i, ":");
    auto line = [&](absl::string_view name, const auto& value) {
      lines.emplace_back(absl::StrCat(prefix, name), absl::StrCat(value));
    };
    line("address", addresses[static_cast<size_t>(i)].ToString());
    line("weight", addresses[static_cast<size_t>(i)].weight);
    line("state", BackendStateName(s.state));
    line("requests", s.requests);
    line("errors", s.errors);
    line("timeouts", s.timeouts);
    line("ejections", s.ejections);
    line("in_flight", s.in_flight);
    line("rtt_p50_us", s.rtt_p50_us);
    line("rtt_p99_us", s.rtt_p99_us);
  }
  return lines;
}

std::string FormatBackendStats(const BackendStatsRegistry& registry,
                               const std::vector<BackendAddress>& addresses) {
  std::string out;
  for (const auto& [name, value] : BackendStatLines(registry, addresses)) {
    absl::StrAppend(&out, "STAT ", name, " ", value, "\r\n");
  }
  return out;
}

}  // namespace backend
}  // namespace memshard
