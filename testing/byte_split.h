#pragma once

// Byte-split feeders for parser tests, after Seastar's habit: a parser must
// answer the same however the network cut its input into reads. The helpers
// simulate a connection's incremental consumer (append the new read to a
// buffer, parse while whole requests are there, drop what was consumed) and
// compare what it produced for the whole input against every way of cutting
// the input in two and against a one-byte-at-a-time drip.
//
// Test-only and single-threaded. A step never sees the consumer's own
// buffer: it gets a fresh exactly-sized copy, so reading past the end of the
// buffered bytes is a heap overflow that --config=asan reports.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace memshard {

// What one call of an incremental parser made of the bytes buffered so far.
template <typename Outcome>
struct SplitStep {
  // False: more bytes are needed; nothing is consumed and `outcome` is not
  // recorded.
  bool complete = false;
  // What the step produced. It must own its data (the buffer it came from
  // changes between calls), compare with ==, and print with gtest.
  Outcome outcome{};
  // Bytes to drop from the front of the buffer. May exceed what is buffered:
  // the excess is skipped as later bytes arrive (a swallowed data block).
  uint64_t consumed = 0;
  // The consumer stops here (closes the connection); later bytes are unread.
  bool stop = false;
};

// Everything an incremental consumer produced from one feeding.
template <typename Outcome>
struct FeedTranscript {
  std::vector<Outcome> outcomes;
  // Bytes still buffered, unparsed, after the last chunk (0 once stopped).
  size_t unconsumed = 0;
  // Bytes still to be skipped after the last chunk.
  uint64_t pending_skip = 0;
  bool stopped = false;

  friend bool operator==(const FeedTranscript& a, const FeedTranscript& b) {
    return a.outcomes == b.outcomes && a.unconsumed == b.unconsumed &&
           a.pending_skip == b.pending_skip && a.stopped == b.stopped;
  }
  friend bool operator!=(const FeedTranscript& a, const FeedTranscript& b) {
    return !(a == b);
  }
  friend void PrintTo(const FeedTranscript& t, std::ostream* os) {
    *os << ::testing::PrintToString(t.outcomes)
        << " unconsumed=" << t.unconsumed << " skip=" << t.pending_skip
        << (t.stopped ? " stopped" : "");
  }
};

// The Outcome type a step callable produces.
template <typename StepFn>
using SplitOutcome = std::decay_t<
    decltype(std::declval<StepFn&>()(absl::string_view()).outcome)>;

// Feeds `chunks` in order to a simulated consumer that calls
// `step(absl::string_view buffered) -> SplitStep<Outcome>` after each chunk
// until the step is incomplete or stops.
template <typename StepFn>
FeedTranscript<SplitOutcome<StepFn>> FeedChunks(
    const std::vector<absl::string_view>& chunks, StepFn&& step) {
  FeedTranscript<SplitOutcome<StepFn>> transcript;
  std::string buffer;
  uint64_t skip = 0;
  for (absl::string_view chunk : chunks) {
    if (transcript.stopped) break;
    const size_t skipped = static_cast<size_t>(
        std::min<uint64_t>(skip, static_cast<uint64_t>(chunk.size())));
    skip -= skipped;
    chunk.remove_prefix(skipped);
    buffer.append(chunk.data(), chunk.size());
    while (!buffer.empty() && skip == 0) {
      // An exact-size heap copy, so over-reads are caught by ASan.
      std::unique_ptr<char[]> exact(new char[buffer.size()]);
      std::memcpy(exact.get(), buffer.data(), buffer.size());
      auto result = step(absl::string_view(exact.get(), buffer.size()));
      if (!result.complete) break;
      transcript.outcomes.push_back(std::move(result.outcome));
      if (result.stop) {
        transcript.stopped = true;
        buffer.clear();
        break;
      }
      if (result.consumed == 0) {
        ADD_FAILURE() << "a complete step consumed nothing; stopping the feed";
        transcript.stopped = true;
        buffer.clear();
        break;
      }
      if (result.consumed >= buffer.size()) {
        skip = result.consumed - buffer.size();
        buffer.clear();
      } else {
        buffer.erase(0, static_cast<size_t>(result.consumed));
      }
    }
  }
  transcript.unconsumed = buffer.size();
  transcript.pending_skip = skip;
  return transcript;
}

struct SplitOptions {
  // Cut points tried: 1, 1 + stride, ...; raise it for very long inputs.
  size_t stride = 1;
  // Also feed one byte at a time.
  bool drip = true;
};

// Feeds `input` whole, then cut in two at every byte boundary, then one byte
// at a time, and fails unless every feeding gives the whole-input transcript.
// Use as EXPECT_TRUE(SameAtEverySplit(input, step)).
template <typename StepFn>
::testing::AssertionResult SameAtEverySplit(absl::string_view input,
                                            StepFn&& step,
                                            SplitOptions options = {}) {
  const auto whole = FeedChunks({input}, step);
  const size_t stride = options.stride == 0 ? 1 : options.stride;
  for (size_t cut = 1; cut < input.size(); cut += stride) {
    const auto split =
        FeedChunks({input.substr(0, cut), input.substr(cut)}, step);
    if (split != whole) {
      return ::testing::AssertionFailure()
             << "cut at byte " << cut << " of " << input.size() << " (\""
             << absl::CEscape(input.substr(0, cut)) << "\" | \""
             << absl::CEscape(input.substr(cut)) << "\") gave "
             << ::testing::PrintToString(split) << "; whole input gave "
             << ::testing::PrintToString(whole);
    }
  }
  if (options.drip && input.size() > 1) {
    std::vector<absl::string_view> bytes;
    bytes.reserve(input.size());
    for (size_t i = 0; i < input.size(); ++i)
      bytes.push_back(input.substr(i, 1));
    const auto dripped = FeedChunks(bytes, step);
    if (dripped != whole) {
      return ::testing::AssertionFailure()
             << "one byte at a time (\"" << absl::CEscape(input) << "\") gave "
             << ::testing::PrintToString(dripped) << "; whole input gave "
             << ::testing::PrintToString(whole);
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace memshard
