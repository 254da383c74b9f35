#include "server/protocol/meta_parser.h"

#include <cstring>
#include <limits>

#include "server/protocol/number_token.h"

namespace memshard {
namespace {

// memcached counts the command, the key, the flags and its end marker.
constexpr size_t kMaxMetaTokens = 20;
// The line is tokenized only this far (the rest cannot be valid anyway).
constexpr size_t kMaxTokensKept = kMaxMetaTokens + 1;
// An ms data length must leave room for "\r\n" in an int32.
constexpr int64_t kMaxDataLength = std::numeric_limits<int32_t>::max() - 2;

constexpr absl::string_view kBadFormat = "bad command line format";
constexpr absl::string_view kBadToken = "bad token in command line format";
constexpr absl::string_view kOptionsTooLongGet = "options flags are too long";
constexpr absl::string_view kOptionsTooLong = "options flags too long";
constexpr absl::string_view kInvalidOrDuplicate = "invalid or duplicate flag";
constexpr absl::string_view kOpaqueTooLong = "opaque token too long";
constexpr absl::string_view kTooLarge = "object too large for cache";

ParseResult Result(ParseStatus status, absl::string_view message = {}) {
  ParseResult result;
  result.status = status;
  result.message = message;
  return result;
}

ParseResult ClientError(absl::string_view message, uint64_t swallow = 0) {
  ParseResult result = Result(ParseStatus::kClientError, message);
  result.swallow = swallow;
  return result;
}

using number_token::ParseSigned;
using number_token::ParseUnsigned;

// The line's content and its tokens (split on ' ' only, like memcached).
struct Line {
  size_t size_with_newline = 0;  // bytes up to and including "\n"
  absl::string_view tokens[kMaxTokensKept];
  size_t count = 0;  // tokens seen (may exceed kMaxTokensKept)
};

// Finds the first line; false if it is not complete yet.
bool SplitLine(absl::string_view input, Line* line) {
  const void* newline =
      input.empty() ? nullptr : std::memchr(input.data(), '\n', input.size());
  if (newline == nullptr) return false;
  const size_t length = static_cast<const char*>(newline) - input.data();
  line->size_with_newline = length + 1;
  size_t content = length;
  // As ParseText: "\r" is stripped only when something precedes it, and a
  // NUL ends the content (memcached's strlen()).
  if (content > 1 && input[content - 1] == '\r') --content;
  if (const void* nul = std::memchr(input.data(), '\0', content)) {
    content = static_cast<const char*>(nul) - input.data();
  }
  const char* p = input.data();
  const char* const end = p + content;
  line->count = 0;
  while (p < end) {
    while (p < end && *p == ' ') ++p;
    if (p == end) break;
    const char* const start = p;
    const void* space = std::memchr(p, ' ', end - p);
    p = space != nullptr ? static_cast<const char*>(space) : end;
    if (line->count < kMaxTokensKept) {
      line->tokens[line->count] = absl::string_view(start, p - start);
    }
    ++line->count;
  }
  return true;
}

// memcached's _meta_flag_preparse(): records every flag of tokens
// [first, count) and validates its argument. Like memcached, a duplicate or
// unknown flag stops at once, while a bad argument is remembered and the scan
// goes on, so the last bad argument names the error.
bool PreparseFlags(const Line& line, size_t first, MetaRequest* request,
                   absl::string_view* error) {
  bool seen[128] = {};
  bool has_error = false;
  for (size_t i = first; i < line.count; ++i) {
    const absl::string_view token = line.tokens[i];
    const unsigned char flag = static_cast<unsigned char>(token[0]);
    if (flag >= 127 || seen[flag]) {
      *error = "duplicate flag";
      return false;
    }
    seen[flag] = true;
    const absl::string_view arg = token.substr(1);
    uint64_t number = 0;
    switch (flag) {
      case 'b':
        if (!DecodeMetaBase64(request->key, &request->key_buffer)) {
          *error = "error decoding key";
          has_error = true;
          request->key = {};
        } else {
          request->key = request->key_buffer;
        }
        request->base64_key = true;
        break;
      case 'N':
        request->vivify = true;
        if (!ParseSigned(arg, &request->vivify_ttl)) {
          *error = kBadToken;
          has_error = true;
        }
        break;
      case 'T':
        if (!ParseSigned(arg, &request->ttl)) {
          *error = kBadToken;
          has_error = true;
        } else {
          request->has_ttl = true;
        }
        break;
      case 'R':
        if (!ParseSigned(arg, &request->recache_ttl)) {
          *error = kBadToken;
          has_error = true;
        } else {
          request->has_recache = true;
        }
        break;
      case 'O':
      case 'P':
      case 'L':
      case 'k':
      case 's':
      case 't':
      case 'c':
      case 'f':
      case 'l':
      case 'h':
        break;
      case 'v':
        request->return_value = true;
        break;
      case 'u':
        request->no_bump = true;
        break;
      case 'q':
        request->quiet = true;
        break;
      case 'F':
        // memcached keeps its message here; it truncates above 2^32-1, we
        // refuse (as ParseText does for flags).
        if (!ParseUnsigned(arg, std::numeric_limits<uint32_t>::max(),
                           &number)) {
          has_error = true;
        } else {
          request->client_flags = static_cast<uint32_t>(number);
        }
        break;
      case 'C':
        if (!ParseUnsigned(arg, std::numeric_limits<uint64_t>::max(),
                           &request->cas)) {
          *error = kBadToken;
          has_error = true;
        } else {
          request->has_cas = true;
        }
        break;
      case 'M':
        if (token.size() != 2) {
          *error = "incorrect length for M token";
          has_error = true;
        }
        break;
      case 'J':
        if (!ParseUnsigned(arg, std::numeric_limits<uint64_t>::max(),
                           &request->initial)) {
          *error = "invalid numeric initial value";
          has_error = true;
        }
        break;
      case 'D':
        if (!ParseUnsigned(arg, std::numeric_limits<uint64_t>::max(),
                           &request->delta)) {
          *error = "invalid numeric delta value";
          has_error = true;
        }
        break;
      case 'I':
        request->invalidate = true;
        break;
      default:
        *error = "invalid flag";
        return false;
    }
    MetaFlag& recorded = request->flags[request->flag_count++];
    recorded.flag = static_cast<char>(flag);
    recorded.token = arg;
  }
  return !has_error;
}

// The M token's mode letter, or 0 if there was none.
char ModeOf(const MetaRequest& request) {
  for (size_t i = 0; i < request.flag_count; ++i) {
    if (request.flags[i].flag == 'M') return request.flags[i].token[0];
  }
  return 0;
}

bool OpaqueTooLong(const MetaRequest& request) {
  for (size_t i = 0; i < request.flag_count; ++i) {
    const MetaFlag& f = request.flags[i];
    if (f.flag == 'O' && f.token.size() + 1 > kMaxMetaOpaqueLength) {
      return true;
    }
  }
  return false;
}

// mg, md and ma: <cm> <key> <flags>*
ParseResult ParseKeyed(const Line& line, MetaRequest* request) {
  if (line.count < 2) return Result(ParseStatus::kError);
  if (line.tokens[1].size() > kMaxKeyLength) return ClientError(kBadFormat);
  const bool get = request->command == MetaCommand::kGet;
  if (line.count + 1 > kMaxMetaTokens) {
    return ClientError(get ? kOptionsTooLongGet : kOptionsTooLong);
  }
  request->key = line.tokens[1];
  absl::string_view error = kBadFormat;
  if (!PreparseFlags(line, 2, request, &error)) {
    // md and ma do not pass on the preparser's message.
    return ClientError(get ? error : kInvalidOrDuplicate);
  }
  if (request->command == MetaCommand::kArithmetic) {
    switch (ModeOf(*request)) {
      case 0:
      case 'I':
      case '+':
        break;
      case 'D':
      case '-':
        request->decrement = true;
        break;
      default:
        return ClientError("invalid mode for ma M token");
    }
  }
  if (OpaqueTooLong(*request)) return ClientError(kOpaqueTooLong);
  return Result(ParseStatus::kOk);
}

// ms <key> <datalen> <flags>*, then the data block.
ParseResult ParseSet(absl::string_view input, const Line& line,
                     const TextParserOptions& options, size_t* consumed,
                     MetaRequest* request) {
  if (line.count < 2) return Result(ParseStatus::kError);
  if (line.tokens[1].size() > kMaxKeyLength) return ClientError(kBadFormat);
  if (line.count == 2) return ClientError(kBadFormat);
  if (line.count + 1 > kMaxMetaTokens) return ClientError(kOptionsTooLong);
  int64_t length;
  if (!ParseSigned(line.tokens[2], &length) || length < 0 ||
      length > kMaxDataLength) {
    return ClientError(kBadFormat);
  }
  // From here on an error also discards the data block, as memcached does.
  const uint64_t block = static_cast<uint64_t>(length) + 2;
  request->key = line.tokens[1];
  absl::string_view error = kBadFormat;
  if (!PreparseFlags(line, 3, request, &error)) {
    return ClientError(error, block);
  }
  if (OpaqueTooLong(*request)) return ClientError(kOpaqueTooLong, block);
  switch (ModeOf(*request)) {
    case 0:
    case 'S':
      request->set_mode = MetaSetMode::kSet;
      break;
    case 'E':
      request->set_mode = MetaSetMode::kAdd;
      break;
    case 'A':
      request->set_mode = MetaSetMode::kAppend;
      break;
    case 'P':
      request->set_mode = MetaSetMode::kPrepend;
      break;
    case 'R':
      request->set_mode = MetaSetMode::kReplace;
      break;
    default:
      return ClientError("invalid mode for ms M token", block);
  }
  if (static_cast<uint64_t>(length) > options.max_value_size) {
    ParseResult result = Result(ParseStatus::kServerError, kTooLarge);
    result.swallow = block;
    return result;
  }
  const size_t need = line.size_with_newline + block;
  if (input.size() < need) {
    *consumed = 0;
    ParseResult result = Result(ParseStatus::kIncomplete);
    result.need = need;
    return result;
  }
  *consumed = need;
  const char* const data = input.data() + line.size_with_newline;
  if (data[length] != '\r' || data[length + 1] != '\n') {
    return ClientError("bad data chunk");
  }
  request->value = absl::string_view(data, static_cast<size_t>(length));
  return Result(ParseStatus::kOk);
}

// me <key> [b]
ParseResult ParseDebug(const Line& line, MetaRequest* request) {
  if (line.count < 2 || line.tokens[1].size() > kMaxKeyLength) {
    return ClientError(kBadFormat);
  }
  request->key = line.tokens[1];
  if (line.count >= 3 && line.tokens[2] == "b") {
    if (!DecodeMetaBase64(request->key, &request->key_buffer)) {
      return ClientError(kBadFormat);
    }
    request->key = request->key_buffer;
    request->base64_key = true;
  }
  return Result(ParseStatus::kOk);
}

}  // namespace

void MetaRequest::Clear() {
  command = MetaCommand::kNone;
  key = {};
  base64_key = false;
  value = {};
  flag_count = 0;
  quiet = false;
  no_bump = false;
  return_value = false;
  invalidate = false;
  has_cas = false;
  cas = 0;
  has_ttl = false;
  ttl = 0;
  vivify = false;
  vivify_ttl = 0;
  has_recache = false;
  recache_ttl = 0;
  client_flags = 0;
  set_mode = MetaSetMode::kSet;
  decrement = false;
  delta = 1;
  initial = 0;
  key_buffer.clear();
}

bool IsMetaLine(absl::string_view input) {
  Line line;
  if (!SplitLine(input, &line) || line.count == 0) return false;
  const absl::string_view command = line.tokens[0];
  return command.size() == 2 && command[0] == 'm';
}

ParseResult ParseMeta(absl::string_view input, const TextParserOptions& options,
                      size_t* consumed, MetaRequest* request) {
  request->Clear();
  *consumed = 0;
  Line line;
  if (!SplitLine(input, &line)) {
    return Result(input.size() > kMaxTextLineLength ? ParseStatus::kClose
                                                    : ParseStatus::kIncomplete);
  }
  // Judged on the whole line, as ParseText does (no multiget exception).
  if (line.size_with_newline - 1 > kMaxTextLineLength) {
    return Result(ParseStatus::kClose);
  }
  *consumed = line.size_with_newline;
  if (line.count == 0 || line.tokens[0].size() != 2 ||
      line.tokens[0][0] != 'm') {
    return Result(ParseStatus::kError);
  }
  switch (line.tokens[0][1]) {
    case 'g':
      request->command = MetaCommand::kGet;
      return ParseKeyed(line, request);
    case 'd':
      request->command = MetaCommand::kDelete;
      return ParseKeyed(line, request);
    case 'a':
      request->command = MetaCommand::kArithmetic;
      return ParseKeyed(line, request);
    case 's':
      request->command = MetaCommand::kSet;
      return ParseSet(input, line, options, consumed, request);
    case 'n':
      request->command = MetaCommand::kNoop;
      return Result(ParseStatus::kOk);
    case 'e':
      request->command = MetaCommand::kDebug;
      return ParseDebug(line, request);
    default:
      return Result(ParseStatus::kError);
  }
}

bool DecodeMetaBase64(absl::string_view in, std::string* out) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  unsigned char table[256];
  std::memset(table, 0x80, sizeof(table));
  for (int i = 0; i < 64; ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] =
        static_cast<unsigned char>(i);
  }
  table[static_cast<unsigned char>('=')] = 0;
  size_t count = 0;
  for (char c : in) {
    if (table[static_cast<unsigned char>(c)] != 0x80) ++count;
  }
  out->clear();
  if (count == 0 || count % 4 != 0) return false;
  unsigned char block[4];
  size_t filled = 0;
  int pad = 0;
  for (char c : in) {
    const unsigned char value = table[static_cast<unsigned char>(c)];
    if (value == 0x80) continue;
    if (c == '=') ++pad;
    block[filled++] = value;
    if (filled < 4) continue;
    filled = 0;
    out->push_back(static_cast<char>((block[0] << 2) | (block[1] >> 4)));
    out->push_back(static_cast<char>((block[1] << 4) | (block[2] >> 2)));
    out->push_back(static_cast<char>((block[2] << 6) | block[3]));
    if (pad != 0) {
      if (pad > 2) {
        out->clear();
        return false;
      }
      out->resize(out->size() - pad);
      break;
    }
  }
  return !out->empty();
}

}  // namespace memshard
