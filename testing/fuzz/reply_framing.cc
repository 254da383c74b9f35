#include "testing/fuzz/reply_framing.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/internal/endian.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "server/protocol/binary_parser.h"

namespace memshard::fuzz {
namespace {

// Replies that are the keyword alone.
constexpr absl::string_view kBareReplies[] = {
    "END",     "STORED",  "NOT_STORED", "EXISTS", "NOT_FOUND",
    "DELETED", "TOUCHED", "OK",         "ERROR",  "RESET",
};

// Meta status codes; return flags may follow.
constexpr absl::string_view kMetaCodes[] = {"HD", "NS", "EX", "NF", "EN", "MN"};

// Replies whose keyword is followed by free text.
constexpr absl::string_view kTextReplies[] = {
    "CLIENT_ERROR", "SERVER_ERROR",       "VERSION",
    "STAT",         "MEMLIMIT_TOO_SMALL", "PREFIX",  // stats detail dump
};

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool ParseCount(absl::string_view s, uint64_t* out) {
  return AllDigits(s) && s.size() <= 20 && absl::SimpleAtoi(s, out);
}

// Meta return flags: " <letter><token>" each, nothing empty.
bool MetaFlagsOk(const std::vector<absl::string_view>& tokens, size_t first) {
  for (size_t i = first; i < tokens.size(); ++i) {
    if (tokens[i].empty() ||
        !absl::ascii_isalpha(static_cast<unsigned char>(tokens[i][0]))) {
      return false;
    }
  }
  return true;
}

absl::Status Bad(absl::string_view why, absl::string_view replies, size_t at) {
  return absl::DataLossError(
      absl::StrCat(why, " at byte ", at, " of ", replies.size(), ": \"",
                   absl::CEscape(replies.substr(at, 200)), "\" after \"",
                   absl::CEscape(replies.substr(at < 200 ? 0 : at - 200,
                                                at < 200 ? at : 200)),
                   "\""));
}

}  // namespace

absl::Status CheckAsciiReplies(absl::string_view replies) {
  size_t at = 0;
  while (at < replies.size()) {
    const size_t eol = replies.find("\r\n", at);
    if (eol == absl::string_view::npos) {
      return Bad("a reply line without \\r\\n", replies, at);
    }
    const absl::string_view line = replies.substr(at, eol - at);
    const std::vector<absl::string_view> tokens = absl::StrSplit(line, ' ');
    const absl::string_view keyword = tokens[0];
    size_t next = eol + 2;
    // Bytes of a data block that follow the line, and its "\r\n".
    uint64_t block = 0;
    bool has_block = false;
    bool known = false;

    for (absl::string_view bare : kBareReplies) {
      if (line == bare) known = true;
    }
    for (absl::string_view code : kMetaCodes) {
      if (keyword == code) {
        if (!MetaFlagsOk(tokens, 1)) {
          return Bad("bad meta return flags", replies, at);
        }
        known = true;
      }
    }
    for (absl::string_view text : kTextReplies) {
      if (keyword == text) {
        if (line.size() <= text.size() + 1) {
          return Bad("a reply without its text", replies, at);
        }
        known = true;
      }
    }
    if (keyword == "VALUE") {
      // VALUE <key> <flags> <bytes>[ <cas>]
      uint64_t flags, cas;
      if ((tokens.size() != 4 && tokens.size() != 5) || tokens[1].empty() ||
          tokens[1].size() > 250 || !ParseCount(tokens[2], &flags) ||
          flags > UINT32_MAX || !ParseCount(tokens[3], &block) ||
          (tokens.size() == 5 && !ParseCount(tokens[4], &cas))) {
        return Bad("a malformed VALUE line", replies, at);
      }
      has_block = known = true;
    } else if (keyword == "VA") {
      // VA <size> <flags>*
      if (tokens.size() < 2 || !ParseCount(tokens[1], &block) ||
          !MetaFlagsOk(tokens, 2)) {
        return Bad("a malformed VA line", replies, at);
      }
      has_block = known = true;
    } else if (keyword == "ME") {
      // ME <key> <key>=<value>*
      if (tokens.size() < 3 || tokens[1].empty()) {
        return Bad("a malformed ME line", replies, at);
      }
      known = true;
    } else if (AllDigits(line)) {
      uint64_t number;
      if (!ParseCount(line, &number)) {
        return Bad("an incr/decr result above 2^64", replies, at);
      }
      known = true;
    }
    if (!known) return Bad("an unknown reply", replies, at);
    if (has_block) {
      if (replies.size() - next < block + 2) {
        return Bad("a data block shorter than announced", replies, at);
      }
      if (replies.substr(next + block, 2) != "\r\n") {
        return Bad("a data block not ending in \\r\\n where announced", replies,
                   at);
      }
      next += block + 2;
    }
    at = next;
  }
  return absl::OkStatus();
}

absl::Status CheckBinaryReplies(absl::string_view replies) {
  size_t at = 0;
  while (at < replies.size()) {
    if (replies.size() - at < kBinaryHeaderSize) {
      return Bad("a partial response header", replies, at);
    }
    const char* h = replies.data() + at;
    if (static_cast<uint8_t>(h[0]) != kBinaryResponseMagic) {
      return Bad("a response without magic 0x81", replies, at);
    }
    if (h[5] != 0) return Bad("a data type other than raw", replies, at);
    const uint64_t key_length = absl::big_endian::Load16(h + 2);
    const uint64_t extras_length = static_cast<uint8_t>(h[4]);
    const uint16_t status = absl::big_endian::Load16(h + 6);
    const uint64_t body_length = absl::big_endian::Load32(h + 8);
    switch (static_cast<BinaryStatus>(status)) {
      case BinaryStatus::kNoError:
      case BinaryStatus::kKeyNotFound:
      case BinaryStatus::kKeyExists:
      case BinaryStatus::kValueTooLarge:
      case BinaryStatus::kInvalidArguments:
      case BinaryStatus::kNotStored:
      case BinaryStatus::kNonNumeric:
      case BinaryStatus::kAuthError:
      case BinaryStatus::kAuthContinue:
      case BinaryStatus::kUnknownCommand:
      case BinaryStatus::kOutOfMemory:
        break;
      default:
        return Bad("an unknown status", replies, at);
    }
    if (key_length + extras_length > body_length) {
      return Bad("key and extras longer than the body", replies, at);
    }
    if (replies.size() - at - kBinaryHeaderSize < body_length) {
      return Bad("a body shorter than its header says", replies, at);
    }
    at += kBinaryHeaderSize + body_length;
  }
  return absl::OkStatus();
}

}  // namespace memshard::fuzz
