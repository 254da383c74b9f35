#include "tools/loadgen/protocol.h"

#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace memshard {
namespace loadgen {
namespace {

// A reply line longer than this without "\r\n" means we lost framing
// (memcached's longest lines are VALUE lines: 250-byte key plus numbers).
constexpr size_t kMaxLineLength = 2048;

// Finds the "\r\n" ending the line that starts at `from`. npos if absent.
// memchr for the '\n' is several times cheaper than a generic substring
// search, and the generator must stay cheaper per reply than the server.
size_t FindLineEnd(absl::string_view input, size_t from) {
  const char* const data = input.data();
  size_t i = from;
  while (i < input.size()) {
    const void* nl = memchr(data + i, '\n', input.size() - i);
    if (nl == nullptr) return absl::string_view::npos;
    const size_t at = static_cast<size_t>(static_cast<const char*>(nl) - data);
    if (at > from && data[at - 1] == '\r') return at - 1;
    i = at + 1;
  }
  return absl::string_view::npos;
}

// Decimal digits only (no sign, no spaces), at least one, no overflow.
template <typename T>
bool ParseDigits(absl::string_view s, T* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const uint64_t next = v * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != v) return false;  // wrapped
    v = next;
  }
  if (v > std::numeric_limits<T>::max()) return false;
  *out = static_cast<T>(v);
  return true;
}

// The index of the first ' ' in `s`, or npos.
size_t FindSpace(absl::string_view s) {
  const void* sp = memchr(s.data(), ' ', s.size());
  return sp == nullptr
             ? absl::string_view::npos
             : static_cast<size_t>(static_cast<const char*>(sp) - s.data());
}

// Larger values than this are not something a cache returns; treat as lost
// framing rather than wait for gigabytes.
constexpr uint64_t kMaxValueBytes = uint64_t{1} << 30;

ReplyKind ClassifyLine(absl::string_view line) {
  if (line == "STORED") return ReplyKind::kStored;
  if (line == "NOT_STORED" || line == "EXISTS" || line == "NOT_FOUND") {
    return ReplyKind::kNotStored;
  }
  if (line == "ERROR") return ReplyKind::kError;
  if (absl::StartsWith(line, "CLIENT_ERROR")) return ReplyKind::kClientError;
  if (absl::StartsWith(line, "SERVER_ERROR")) return ReplyKind::kServerError;
  return ReplyKind::kOther;
}

// Splits "VALUE <key> <flags> <bytes> [<cas>]" (prefix already checked).
bool ParseValueLine(absl::string_view line, ReplyValue* value, size_t* bytes) {
  line.remove_prefix(6);  // "VALUE "
  size_t sp = FindSpace(line);
  if (sp == 0 || sp == absl::string_view::npos) return false;
  value->key = line.substr(0, sp);
  line.remove_prefix(sp + 1);
  sp = FindSpace(line);
  if (sp == absl::string_view::npos) return false;
  if (!ParseDigits(line.substr(0, sp), &value->flags)) return false;
  line.remove_prefix(sp + 1);
  sp = FindSpace(line);  // an optional cas follows for gets
  uint64_t n;
  if (!ParseDigits(line.substr(0, sp), &n) || n > kMaxValueBytes) {
    return false;
  }
  *bytes = static_cast<size_t>(n);
  return true;
}

}  // namespace

void TextProtocol::AppendGet(absl::Span<const absl::string_view> keys,
                             std::string* out) const {
  // One resize and plain copies: this runs for every request sent.
  size_t total = 3 + 2;
  for (absl::string_view key : keys) total += 1 + key.size();
  const size_t old_size = out->size();
  out->resize(old_size + total);
  char* p = &(*out)[old_size];
  memcpy(p, "get", 3);
  p += 3;
  for (absl::string_view key : keys) {
    *p++ = ' ';
    memcpy(p, key.data(), key.size());
    p += key.size();
  }
  p[0] = '\r';
  p[1] = '\n';
}

void TextProtocol::AppendSet(absl::string_view key, absl::string_view value,
                             std::string* out) const {
  out->append("set ");
  out->append(key.data(), key.size());
  out->append(" 0 0 ");
  absl::StrAppend(out, value.size());
  out->append("\r\n");
  out->append(value.data(), value.size());
  out->append("\r\n");
}

ParseStatus TextProtocol::ParseReply(absl::string_view input, size_t* consumed,
                                     Reply* reply) const {
  reply->Clear();
  *consumed = 0;
  size_t pos = 0;
  while (true) {
    size_t end = FindLineEnd(input, pos);
    if (end == absl::string_view::npos) {
      return input.size() - pos > kMaxLineLength ? ParseStatus::kInvalid
                                                 : ParseStatus::kIncomplete;
    }
    absl::string_view line = input.substr(pos, end - pos);
    size_t next = end + 2;
    if (absl::StartsWith(line, "VALUE ")) {
      ReplyValue value;
      size_t bytes;
      if (!ParseValueLine(line, &value, &bytes)) return ParseStatus::kInvalid;
      if (input.size() - next < bytes + 2) return ParseStatus::kIncomplete;
      if (input[next + bytes] != '\r' || input[next + bytes + 1] != '\n') {
        return ParseStatus::kInvalid;
      }
      value.data = input.substr(next, bytes);
      reply->values.push_back(value);
      pos = next + bytes + 2;
      continue;
    }
    if (line == "END") {
      reply->kind = ReplyKind::kValues;
      reply->line = line;
      *consumed = next;
      return ParseStatus::kOk;
    }
    // A status line; if it cuts a retrieval reply short (e.g. SERVER_ERROR
    // after some values) it ends that reply, keeping the stream framed.
    reply->kind = ClassifyLine(line);
    reply->line = line;
    *consumed = next;
    return ParseStatus::kOk;
  }
}

absl::StatusOr<std::unique_ptr<Protocol>> MakeProtocol(absl::string_view name) {
  if (name == "text") return std::make_unique<TextProtocol>();
  return absl::InvalidArgumentError(
      absl::StrCat("unknown protocol '", name, "' (supported: text)"));
}

}  // namespace loadgen
}  // namespace memshard
