#pragma once

// Numbers in text and meta command lines, parsed the way memcached's
// safe_strto*() accept them. Pure functions; any thread.

#include <cstdint>
#include <limits>

#include "absl/strings/string_view.h"

namespace memshard::number_token {

// isspace() in the "C" locale. strtol() skips these before a number and
// memcached's safe_strto*() accept one right after it, so "1\r" (from a line
// ending "\r\r\n") is the number 1.
inline bool IsSpace(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

// The strto*() grammar memcached's safe_strto*() accept: leading spaces, an
// optional sign, decimal digits, then the end or a space-like byte. Fails on
// no digits, junk, or a magnitude above `limit` (strto*'s ERANGE).
inline bool ParseMagnitude(absl::string_view token, uint64_t limit,
                           bool* negative, uint64_t* magnitude) {
  const char* p = token.data();
  const char* const end = p + token.size();
  while (p < end && IsSpace(*p)) ++p;
  *negative = false;
  if (p < end && (*p == '+' || *p == '-')) {
    *negative = *p == '-';
    ++p;
  }
  const char* const digits = p;
  uint64_t value = 0;
  for (; p < end; ++p) {
    const unsigned digit = static_cast<unsigned char>(*p) - '0';
    if (digit > 9) break;
    if (value > (limit - digit) / 10) return false;
    value = value * 10 + digit;
  }
  if (p == digits) return false;
  if (p < end && !IsSpace(*p)) return false;
  *magnitude = value;
  return true;
}

// memcached rejects a negated unsigned number (strtoul("-1") wraps and its
// safe_strtoul() looks for the '-'); "-0" is still zero. Unlike memcached,
// a value above `max` fails instead of being truncated (flags 2^32 is an
// error here, 0 there).
inline bool ParseUnsigned(absl::string_view token, uint64_t max,
                          uint64_t* out) {
  bool negative;
  uint64_t value;
  if (!ParseMagnitude(token, max, &negative, &value)) return false;
  if (negative && value != 0) return false;
  *out = value;
  return true;
}

// Any int64 (memcached truncates exptimes to int32 later, where it matters).
inline bool ParseSigned(absl::string_view token, int64_t* out) {
  constexpr uint64_t kMaxPositive = std::numeric_limits<int64_t>::max();
  bool negative;
  uint64_t value;
  // Parse against the larger (negative) bound, then check the sign's.
  if (!ParseMagnitude(token, kMaxPositive + 1, &negative, &value)) {
    return false;
  }
  if (!negative) {
    if (value > kMaxPositive) return false;
    *out = static_cast<int64_t>(value);
  } else {
    // Two's complement negation; INT64_MIN's magnitude does not fit int64.
    *out = static_cast<int64_t>(0 - value);
  }
  return true;
}

}  // namespace memshard::number_token
