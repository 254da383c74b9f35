#pragma once

// What the text and meta parser fuzzers check alike: both parsers answer a
// line-framed request (ParseText, ParseMeta) with a ParseResult, under the
// same limits. Each fuzzer adds the checks of its own request type.
//
// Single-threaded, test-only. A failed check aborts (CHECK), as a fuzz
// target reports. `context` is called only when a check fails: describing
// every parse would dominate a fuzz iteration.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "glog/logging.h"
#include "server/protocol/text_parser.h"

namespace memshard::fuzz {

// Small, so the fuzzers reach "too large" with short inputs.
inline constexpr uint64_t kMaxValueSize = 1000;

// The options both parsers run with.
inline const TextParserOptions& Options() {
  static const TextParserOptions options = [] {
    TextParserOptions o;
    o.max_value_size = kMaxValueSize;
    return o;
  }();
  return options;
}

inline absl::string_view StatusName(ParseStatus status) {
  switch (status) {
    case ParseStatus::kOk:
      return "ok";
    case ParseStatus::kIncomplete:
      return "incomplete";
    case ParseStatus::kError:
      return "error";
    case ParseStatus::kClientError:
      return "client_error";
    case ParseStatus::kServerError:
      return "server_error";
    case ParseStatus::kClose:
      return "close";
  }
  return "?";
}

// "\ninput: \"<the first 400 bytes, escaped>[...]\"", for a failure message.
inline std::string QuoteInput(absl::string_view in) {
  return absl::StrCat("\ninput: \"", absl::CEscape(in.substr(0, 400)),
                      in.size() > 400 ? "...\"" : "\"");
}

// Checks the framing of one parse of `in`: `consumed` fits the input and
// the status, buffering is bounded, kClose only for a line longer than
// memcached allows, an error message is one line. `storage`: the parsed
// command carries a data block. `long_line_ok()`: the line may grow to
// kMaxRetrievalLineLength (a multiget). Returns the offset of the line's
// '\n' when the parse answered the line (kOk or an error), npos after
// kIncomplete and kClose (nothing more to check).
template <typename LongLineOk, typename Context>
size_t CheckLineFraming(absl::string_view in, const ParseResult& r,
                        size_t consumed, bool storage,
                        const LongLineOk& long_line_ok,
                        const Context& context) {
  CHECK_LE(consumed, in.size()) << context();
  const size_t newline = in.find('\n');
  const size_t line_length =
      newline == absl::string_view::npos ? in.size() : newline;
  switch (r.status) {
    case ParseStatus::kIncomplete:
      CHECK_EQ(consumed, 0u) << context();
      if (newline == absl::string_view::npos) {
        CHECK_EQ(r.need, 0u) << context();
        CHECK(in.size() <= kMaxTextLineLength ||
              (in.size() <= kMaxRetrievalLineLength && long_line_ok()))
            << "an unterminated line grows past its limit: " << context();
      } else {
        // A whole line is buffered: only a storage command's data block
        // may be missing, and its size is known and bounded.
        CHECK(storage) << context();
        CHECK_GT(r.need, in.size()) << context();
        CHECK_LE(r.need, newline + 1 + kMaxValueSize + 2) << context();
      }
      return absl::string_view::npos;
    case ParseStatus::kClose:
      CHECK_EQ(consumed, 0u) << context();
      CHECK_GT(line_length, kMaxTextLineLength)
          << "closed on a line memcached accepts: " << context();
      return absl::string_view::npos;
    case ParseStatus::kOk:
    case ParseStatus::kError:
    case ParseStatus::kClientError:
    case ParseStatus::kServerError:
      break;
  }
  CHECK_NE(newline, absl::string_view::npos)
      << "answered a line that has no newline yet: " << context();
  CHECK_GE(consumed, newline + 1) << context();
  CHECK(line_length <= kMaxTextLineLength || long_line_ok())
      << "an over-long line was not closed: " << context();
  if (!storage ||
      (r.status != ParseStatus::kOk && r.message != "bad data chunk")) {
    CHECK_EQ(consumed, newline + 1)
        << "consumed more than the command line: " << context();
  }
  if (r.status == ParseStatus::kClientError ||
      r.status == ParseStatus::kServerError) {
    CHECK(!r.message.empty()) << context();
    CHECK(r.message.find_first_of("\r\n") == absl::string_view::npos)
        << context();
  }
  return newline;
}

// Checks a stored value parsed from `in` whose command line ends at
// `newline`: within the limit, in place right after the line, followed by
// "\r\n", and all of it consumed.
template <typename Context>
void CheckDataBlock(absl::string_view in, size_t consumed, size_t newline,
                    absl::string_view value, const Context& context) {
  CHECK_LE(value.size(), kMaxValueSize) << context();
  const size_t data = newline + 1;
  CHECK_EQ(consumed, data + value.size() + 2) << context();
  CHECK(value.empty() || value.data() == in.data() + data) << context();
  CHECK_EQ(in.substr(data + value.size(), 2), "\r\n") << context();
}

}  // namespace memshard::fuzz
