#include "server/auth/ascii_auth.h"

#include <cstdint>
#include <cstring>
#include <vector>

#include "absl/strings/str_split.h"

namespace memshard {
namespace {

// memcached closes a connection that sends this much without a newline.
constexpr size_t kMaxLine = 2048;

// safe_strtoul over a token that may end in "\r" (memcached leaves the
// line's "\r" in place and lets strtoul stop at it).
bool ParseSize(absl::string_view token, uint64_t* out) {
  size_t i = 0;
  uint64_t value = 0;
  for (; i < token.size() && token[i] >= '0' && token[i] <= '9'; ++i) {
    value = value * 10 + static_cast<uint64_t>(token[i] - '0');
    if (value > UINT32_MAX) return false;
  }
  if (i == 0) return false;
  if (i < token.size() && token[i] != '\r' && token[i] != '\t' &&
      token[i] != '\v' && token[i] != '\f') {
    return false;
  }
  *out = value;
  return true;
}

}  // namespace

AsciiAuthResult AsciiAuthStep(absl::string_view input,
                              const Authenticator& authenticator,
                              size_t* consumed) {
  *consumed = 0;
  AsciiAuthResult result;
  const void* newline =
      input.empty() ? nullptr : std::memchr(input.data(), '\n', input.size());
  if (newline == nullptr) {
    if (input.size() > kMaxLine) result.status = AsciiAuthStatus::kClose;
    return result;
  }
  const size_t line_size = static_cast<const char*>(newline) - input.data();
  if (line_size > kMaxLine) {
    result.status = AsciiAuthStatus::kClose;
    return result;
  }
  const std::vector<absl::string_view> tokens =
      absl::StrSplit(input.substr(0, line_size), ' ', absl::SkipEmpty());
  uint64_t size = 0;
  if (tokens.size() < 5 || tokens[0] != "set" || !ParseSize(tokens[4], &size)) {
    *consumed = line_size + 1;
    result.status = AsciiAuthStatus::kReply;
    result.reply = "CLIENT_ERROR unauthenticated";
    return result;
  }
  if (size + 2 > kMaxAsciiAuthPayload) {
    result.status = AsciiAuthStatus::kClose;
    return result;
  }
  const size_t need = line_size + 1 + static_cast<size_t>(size) + 2;
  if (input.size() < need) {
    result.need = need;
    return result;
  }
  *consumed = need;
  result.status = AsciiAuthStatus::kReply;
  const absl::string_view payload =
      input.substr(line_size + 1, static_cast<size_t>(size) + 2);
  if (payload.substr(payload.size() - 2) != "\r\n") {
    result.reply = "CLIENT_ERROR bad command line termination";
    return result;
  }
  const std::vector<absl::string_view> credentials = absl::StrSplit(
      payload.substr(0, payload.size() - 2), ' ', absl::SkipEmpty());
  if (credentials.size() < 2) {
    result.reply = "CLIENT_ERROR bad authentication token format";
    return result;
  }
  if (authenticator.Check(credentials[0], credentials[1])) {
    result.reply = "STORED";
    result.authenticated = true;
  } else {
    result.reply = "CLIENT_ERROR authentication failure";
  }
  return result;
}

}  // namespace memshard
