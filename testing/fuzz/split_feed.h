#pragma once

// The incremental consumer the parser fuzzers drive, after
// testing/byte_split.h but without gtest (a fuzz target reports by
// aborting): append each chunk to a buffer, parse while whole requests are
// there, drop what was consumed, skip swallowed bytes as they arrive. A
// parser must give the same transcript however its input was cut into
// chunks, so a fuzzer feeds every input whole and cut, and compares.
//
// Single-threaded, test-only. The bytes a step sees end exactly where their
// heap allocation does, so a read past the bytes buffered so far is a heap
// overflow that ASan reports.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "glog/logging.h"

namespace memshard::fuzz {

// What one parse of the bytes buffered so far gave.
struct FeedStep {
  // False: more bytes are needed; nothing is consumed or recorded.
  bool complete = false;
  // The parse's answer, serialized (it must own its bytes: the buffer it
  // came from changes between calls).
  std::string outcome;
  // Bytes to drop from the front of the buffer; more than is buffered means
  // the rest is skipped as later bytes arrive (a swallowed data block).
  uint64_t consumed = 0;
  // The consumer stops (the connection closes); later bytes are unread.
  bool stop = false;
};

struct FeedTranscript {
  std::vector<std::string> outcomes;
  size_t unconsumed = 0;      // buffered, unparsed, after the last chunk
  uint64_t pending_skip = 0;  // still to skip after the last chunk
  bool stopped = false;

  bool operator==(const FeedTranscript& o) const {
    return outcomes == o.outcomes && unconsumed == o.unconsumed &&
           pending_skip == o.pending_skip && stopped == o.stopped;
  }
  bool operator!=(const FeedTranscript& o) const { return !(*this == o); }

  std::string DebugString() const {
    std::string s;
    for (const std::string& o : outcomes) absl::StrAppend(&s, "  ", o, "\n");
    absl::StrAppend(&s, "  unconsumed=", unconsumed, " skip=", pending_skip,
                    stopped ? " stopped" : "");
    return s;
  }
};

// Feeds `input` cut at the ascending positions `cuts` (each in (0, size)).
// `step(absl::string_view buffered) -> FeedStep`.
template <typename StepFn>
FeedTranscript Feed(absl::string_view input, const std::vector<size_t>& cuts,
                    StepFn&& step) {
  FeedTranscript transcript;
  // The buffered bytes are [begin, size) of `block`, an allocation that ends
  // exactly where they do: consuming moves `begin`, a new chunk makes a new
  // block. So a parse reading past the buffered bytes overflows the heap
  // block (ASan), and no parse copies the buffer.
  std::unique_ptr<char[]> block;
  size_t begin = 0;
  size_t size = 0;
  uint64_t skip = 0;
  size_t from = 0;
  for (size_t i = 0; i <= cuts.size() && !transcript.stopped; ++i) {
    const size_t to = i < cuts.size() ? cuts[i] : input.size();
    absl::string_view chunk = input.substr(from, to - from);
    from = to;
    const size_t skipped = static_cast<size_t>(
        std::min<uint64_t>(skip, static_cast<uint64_t>(chunk.size())));
    skip -= skipped;
    chunk.remove_prefix(skipped);
    if (!chunk.empty()) {
      const size_t buffered = size - begin;
      std::unique_ptr<char[]> grown(new char[buffered + chunk.size()]);
      if (buffered > 0) std::memcpy(grown.get(), block.get() + begin, buffered);
      std::memcpy(grown.get() + buffered, chunk.data(), chunk.size());
      block = std::move(grown);
      begin = 0;
      size = buffered + chunk.size();
    }
    while (begin < size && skip == 0) {
      const absl::string_view buffered(block.get() + begin, size - begin);
      FeedStep result = step(buffered);
      if (!result.complete) break;
      transcript.outcomes.push_back(std::move(result.outcome));
      if (result.stop) {
        transcript.stopped = true;
        begin = size;
        break;
      }
      CHECK_GT(result.consumed, 0u)
          << "a complete parse consumed nothing: the connection would spin "
             "on \""
          << absl::CEscape(buffered.substr(0, 200)) << "\"";
      if (result.consumed >= buffered.size()) {
        skip = result.consumed - buffered.size();
        begin = size;
      } else {
        begin += static_cast<size_t>(result.consumed);
      }
    }
  }
  transcript.unconsumed = size - begin;
  transcript.pending_skip = skip;
  return transcript;
}

// splitmix64: a small, well-mixed PRNG for cut positions.
class CutRandom {
 public:
  explicit CutRandom(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return n == 0 ? 0 : Next() % n; }

 private:
  uint64_t state_;
};

// FNV-1a: the input picks its own cut points, so a finding reproduces from
// the input alone, and each mutation of it is also cut differently.
inline uint64_t HashBytes(absl::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Up to `max_cuts` distinct cut positions in (0, size), ascending.
inline std::vector<size_t> RandomCuts(CutRandom* random, size_t size,
                                      size_t max_cuts) {
  std::vector<size_t> cuts;
  if (size < 2) return cuts;
  const size_t n = 1 + random->Below(max_cuts);
  for (size_t i = 0; i < n; ++i) cuts.push_back(1 + random->Below(size - 1));
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  return cuts;
}

// Every position: one byte at a time.
inline std::vector<size_t> DripCuts(size_t size) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < size; ++i) cuts.push_back(i);
  return cuts;
}

// Feeds `input` whole through `whole_step`, then through `step` at a few
// input-derived random cuts (one cut, then several), then, for short
// inputs, one byte at a time; aborts unless every feeding gives the
// whole-input transcript. `whole_step` may check more than `step` (each
// request is parsed once whole, but many times cut).
template <typename WholeStepFn, typename StepFn>
void CheckSameAtSplits(absl::string_view input, WholeStepFn&& whole_step,
                       StepFn&& step, size_t drip_limit = 128) {
  const FeedTranscript whole = Feed(input, {}, whole_step);
  CutRandom random(HashBytes(input));
  std::vector<std::vector<size_t>> feedings;
  feedings.push_back(RandomCuts(&random, input.size(), 1));
  feedings.push_back(RandomCuts(&random, input.size(), 8));
  if (input.size() <= drip_limit) feedings.push_back(DripCuts(input.size()));
  for (const std::vector<size_t>& cuts : feedings) {
    const FeedTranscript split = Feed(input, cuts, step);
    if (split != whole) {
      std::string where;
      for (size_t c : cuts) absl::StrAppend(&where, c, " ");
      LOG(FATAL) << "the parse depends on how the input was cut into reads."
                 << "\ninput (" << input.size() << " bytes): \""
                 << absl::CEscape(input) << "\"\ncuts: " << where
                 << "\nwhole:\n"
                 << whole.DebugString() << "\ncut:\n"
                 << split.DebugString();
    }
  }
}

// Whether `part` lies inside `whole` (an empty view anywhere is fine: it
// is never dereferenced).
inline bool Within(absl::string_view part, absl::string_view whole) {
  if (part.empty()) return true;
  const auto p = reinterpret_cast<uintptr_t>(part.data());
  const auto w = reinterpret_cast<uintptr_t>(whole.data());
  return p >= w && p - w <= whole.size() &&
         part.size() <= whole.size() - (p - w);
}

}  // namespace memshard::fuzz
