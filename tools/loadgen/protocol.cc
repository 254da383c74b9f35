#include "tools/loadgen/protocol.h"

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
size_t FindLineEnd(absl::string_view input, size_t from) {
  return input.find("\r\n", from);
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
  size_t sp = line.find(' ');
  if (sp == 0 || sp == absl::string_view::npos) return false;
  value->key = line.substr(0, sp);
  line.remove_prefix(sp + 1);
  sp = line.find(' ');
  if (sp == absl::string_view::npos) return false;
  if (!absl::SimpleAtoi(line.substr(0, sp), &value->flags)) return false;
  line.remove_prefix(sp + 1);
  sp = line.find(' ');  // an optional cas follows for gets
  uint64_t n;
  if (!absl::SimpleAtoi(line.substr(0, sp), &n) || n > kMaxValueBytes) {
    return false;
  }
  *bytes = static_cast<size_t>(n);
  return true;
}

}  // namespace

void TextProtocol::AppendGet(absl::Span<const absl::string_view> keys,
                             std::string* out) const {
  out->append("get");
  for (absl::string_view key : keys) {
    out->push_back(' ');
    out->append(key.data(), key.size());
  }
  out->append("\r\n");
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
      if (input.substr(next + bytes, 2) != "\r\n") return ParseStatus::kInvalid;
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
