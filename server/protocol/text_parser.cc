#include "server/protocol/text_parser.h"

#include <cstring>
#include <limits>

#include "server/protocol/number_token.h"

namespace memshard {
namespace {

// A long line must start with a retrieval command after at most this many
// spaces (memcached's try_read_command_ascii).
constexpr size_t kMaxLeadingSpaces = 100;

// memcached reads <bytes> as an int32 that must leave room for the trailing
// "\r\n" (process_update_command: vlen > INT_MAX - 2 is a format error).
constexpr int64_t kMaxDataLength = std::numeric_limits<int32_t>::max() - 2;

// Arguments kept for the fixed-arity commands; cas has the most (six). Extra
// ones are still counted, so the arity check rejects them.
constexpr size_t kMaxArgs = 6;

constexpr uint64_t kMaxUint32 = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kMaxUint64 = std::numeric_limits<uint64_t>::max();

// Error texts, byte for byte as memcached 1.6 sends them.
constexpr absl::string_view kBadFormat = "bad command line format";
constexpr absl::string_view kBadDeleteFormat =
    "bad command line format.  Usage: delete <key> [noreply]";
constexpr absl::string_view kBadExptime = "invalid exptime argument";
constexpr absl::string_view kBadDelta = "invalid numeric delta argument";
constexpr absl::string_view kBadDataChunk = "bad data chunk";
constexpr absl::string_view kTooLarge = "object too large for cache";

constexpr absl::string_view kNoreply = "noreply";

ParseResult Result(ParseStatus status, absl::string_view message = {}) {
  ParseResult result;
  result.status = status;
  result.message = message;
  return result;
}

ParseResult Ok() { return Result(ParseStatus::kOk); }
ParseResult Error() { return Result(ParseStatus::kError); }
ParseResult ClientError(absl::string_view message) {
  return Result(ParseStatus::kClientError, message);
}

using number_token::ParseSigned;
using number_token::ParseUnsigned;

// Splits a command line on spaces (only ' ', like memcached's tokenizer;
// runs of spaces are one separator).
class LineTokens {
 public:
  explicit LineTokens(absl::string_view line)
      : next_(line.data()), end_(line.data() + line.size()) {}

  // The next token, or an empty view at the end of the line.
  absl::string_view Next() {
    while (next_ < end_ && *next_ == ' ') ++next_;
    if (next_ == end_) return {};
    const char* const start = next_;
    const void* space = std::memchr(next_, ' ', end_ - next_);
    next_ = space != nullptr ? static_cast<const char*>(space) : end_;
    return absl::string_view(start, next_ - start);
  }

 private:
  const char* next_;
  const char* const end_;
};

// The arguments after the command of a fixed-arity command.
struct Args {
  absl::string_view v[kMaxArgs];
  size_t count = 0;  // may exceed kMaxArgs; only kMaxArgs are kept

  explicit Args(LineTokens* tokens) {
    for (absl::string_view t = tokens->Next(); !t.empty(); t = tokens->Next()) {
      if (count < kMaxArgs) v[count] = t;
      ++count;
    }
  }

  // memcached's set_noreply_maybe(): the last token, whatever its position,
  // and checked before anything else is validated.
  bool LastIsNoreply() const {
    return count > 0 && count <= kMaxArgs && v[count - 1] == kNoreply;
  }
};

// Dispatch on length, then bytes: no hashing, no map. Wire names are
// case-sensitive. "bget", memcached's undocumented ancient alias of get, is
// served as get.
Command LookupCommand(absl::string_view name) {
  const char* const s = name.data();
  switch (name.size()) {
    case 3:
      switch (s[0]) {
        case 'g':
          if (std::memcmp(s, "get", 3) == 0) return Command::kGet;
          if (std::memcmp(s, "gat", 3) == 0) return Command::kGat;
          break;
        case 's':
          if (std::memcmp(s, "set", 3) == 0) return Command::kSet;
          break;
        case 'a':
          if (std::memcmp(s, "add", 3) == 0) return Command::kAdd;
          break;
        case 'c':
          if (std::memcmp(s, "cas", 3) == 0) return Command::kCas;
          break;
      }
      break;
    case 4:
      switch (s[0]) {
        case 'g':
          if (std::memcmp(s, "gets", 4) == 0) return Command::kGets;
          if (std::memcmp(s, "gats", 4) == 0) return Command::kGats;
          break;
        case 'i':
          if (std::memcmp(s, "incr", 4) == 0) return Command::kIncr;
          break;
        case 'd':
          if (std::memcmp(s, "decr", 4) == 0) return Command::kDecr;
          break;
        case 'q':
          if (std::memcmp(s, "quit", 4) == 0) return Command::kQuit;
          break;
        case 'b':
          if (std::memcmp(s, "bget", 4) == 0) return Command::kGet;
          break;
      }
      break;
    case 5:
      if (std::memcmp(s, "touch", 5) == 0) return Command::kTouch;
      if (std::memcmp(s, "stats", 5) == 0) return Command::kStats;
      break;
    case 6:
      if (std::memcmp(s, "delete", 6) == 0) return Command::kDelete;
      if (std::memcmp(s, "append", 6) == 0) return Command::kAppend;
      break;
    case 7:
      if (std::memcmp(s, "replace", 7) == 0) return Command::kReplace;
      if (std::memcmp(s, "prepend", 7) == 0) return Command::kPrepend;
      if (std::memcmp(s, "version", 7) == 0) return Command::kVersion;
      break;
    case 9:
      if (std::memcmp(s, "flush_all", 9) == 0) return Command::kFlushAll;
      if (std::memcmp(s, "verbosity", 9) == 0) return Command::kVerbosity;
      break;
    case 14:
      if (std::memcmp(s, "cache_memlimit", 14) == 0) {
        return Command::kCacheMemlimit;
      }
      break;
  }
  return Command::kNone;
}

// Whether a line longer than kMaxTextLineLength may keep growing: memcached
// lets only multigets do that (we also let gat/gats, which it closes on).
// `line` is the line so far, without its "\n" if it has one.
bool LongLineAllowed(absl::string_view line) {
  if (line.size() > kMaxRetrievalLineLength) return false;
  size_t spaces = 0;
  while (spaces < line.size() && line[spaces] == ' ') ++spaces;
  if (spaces > kMaxLeadingSpaces) return false;
  line.remove_prefix(spaces);
  auto starts_with = [&](absl::string_view prefix) {
    return line.size() >= prefix.size() &&
           std::memcmp(line.data(), prefix.data(), prefix.size()) == 0;
  };
  return starts_with("get ") || starts_with("gets ") || starts_with("gat ") ||
         starts_with("gats ");
}

bool KeyTooLong(absl::string_view key) { return key.size() > kMaxKeyLength; }

// get/gets <key>+ and gat/gats <exptime> <key>*.
ParseResult ParseRetrieval(LineTokens* tokens, bool touch, Request* request) {
  absl::string_view token = tokens->Next();
  if (token.empty()) return Error();
  if (touch) {
    if (!ParseSigned(token, &request->exptime)) return ClientError(kBadExptime);
    token = tokens->Next();
  }
  for (; !token.empty(); token = tokens->Next()) {
    if (KeyTooLong(token)) return ClientError(kBadFormat);
    request->keys.push_back(token);
  }
  return Ok();
}

// set/add/replace/append/prepend <key> <flags> <exptime> <bytes> [noreply]
// and cas <key> <flags> <exptime> <bytes> <cas unique> [noreply], each
// followed by the data block. `line_size` counts the line's "\n".
ParseResult ParseStorage(absl::string_view input, size_t line_size,
                         const Args& args, const TextParserOptions& options,
                         size_t* consumed, Request* request) {
  const bool cas = request->command == Command::kCas;
  const size_t arity = cas ? 5 : 4;
  if (args.count != arity && args.count != arity + 1) return Error();
  // A sixth (seventh for cas) argument other than "noreply" is ignored, as
  // memcached does.
  request->noreply = args.LastIsNoreply();
  if (KeyTooLong(args.v[0])) return ClientError(kBadFormat);
  uint64_t flags;
  int64_t bytes;
  if (!ParseUnsigned(args.v[1], kMaxUint32, &flags) ||
      !ParseSigned(args.v[2], &request->exptime) ||
      !ParseSigned(args.v[3], &bytes) ||
      (cas && !ParseUnsigned(args.v[4], kMaxUint64, &request->cas_unique)) ||
      bytes < 0 || bytes > kMaxDataLength) {
    return ClientError(kBadFormat);
  }
  request->flags = static_cast<uint32_t>(flags);
  request->keys.push_back(args.v[0]);

  const uint64_t block = static_cast<uint64_t>(bytes) + 2;  // data + "\r\n"
  if (static_cast<uint64_t>(bytes) > options.max_value_size) {
    // Only the line is consumed now; the block is discarded as it arrives.
    ParseResult result = Result(ParseStatus::kServerError, kTooLarge);
    result.swallow = block;
    return result;
  }
  const size_t need = line_size + block;
  if (input.size() < need) {
    *consumed = 0;
    ParseResult result = Result(ParseStatus::kIncomplete);
    result.need = need;
    return result;
  }
  // memcached reads exactly <bytes>+2 bytes whatever they hold, and only
  // then checks the terminator; a bad one costs the whole block.
  *consumed = need;
  const char* const data = input.data() + line_size;
  if (data[bytes] != '\r' || data[bytes + 1] != '\n') {
    return ClientError(kBadDataChunk);
  }
  request->value = absl::string_view(data, static_cast<size_t>(bytes));
  return Ok();
}

// Commands of fixed arity other than storage ones. The checks and their
// order follow memcached's process_*_command(), so the same bad line earns
// the same reply (and the same noreply silence).
ParseResult ParseSimple(const Args& args, Request* request) {
  switch (request->command) {
    case Command::kDelete: {
      if (args.count < 1 || args.count > 3) return Error();
      if (args.count > 1) {
        // A legacy hold time of "0" is still accepted.
        const bool hold_is_zero = args.v[1] == "0";
        request->noreply = args.LastIsNoreply();
        const bool valid =
            (args.count == 2 && (hold_is_zero || request->noreply)) ||
            (args.count == 3 && hold_is_zero && request->noreply);
        if (!valid) return ClientError(kBadDeleteFormat);
      }
      if (KeyTooLong(args.v[0])) return ClientError(kBadFormat);
      request->keys.push_back(args.v[0]);
      return Ok();
    }
    case Command::kIncr:
    case Command::kDecr:
      if (args.count != 2 && args.count != 3) return Error();
      request->noreply = args.LastIsNoreply();
      if (KeyTooLong(args.v[0])) return ClientError(kBadFormat);
      if (!ParseUnsigned(args.v[1], kMaxUint64, &request->delta)) {
        return ClientError(kBadDelta);
      }
      request->keys.push_back(args.v[0]);
      return Ok();
    case Command::kTouch:
      if (args.count != 2 && args.count != 3) return Error();
      request->noreply = args.LastIsNoreply();
      if (KeyTooLong(args.v[0])) return ClientError(kBadFormat);
      if (!ParseSigned(args.v[1], &request->exptime)) {
        return ClientError(kBadExptime);
      }
      request->keys.push_back(args.v[0]);
      return Ok();
    case Command::kFlushAll:
      if (args.count > 2) return Error();
      request->noreply = args.LastIsNoreply();
      // Like memcached: any first argument is the delay unless it is the
      // lone "noreply"; a second non-noreply argument is ignored.
      if (args.count != (request->noreply ? 1u : 0u) &&
          !ParseSigned(args.v[0], &request->delay)) {
        return ClientError(kBadExptime);
      }
      return Ok();
    case Command::kVerbosity: {
      if (args.count != 1 && args.count != 2) return Error();
      request->noreply = args.LastIsNoreply();
      uint64_t level;
      if (!ParseUnsigned(args.v[0], kMaxUint32, &level)) {
        return ClientError(kBadFormat);
      }
      request->verbosity = static_cast<uint32_t>(level);
      return Ok();
    }
    case Command::kCacheMemlimit:
      if (args.count != 1 && args.count != 2) return Error();
      request->noreply = args.LastIsNoreply();
      // memcached answers a bad number with a bare ERROR here. It reads the
      // megabytes into a uint32 (truncating bigger numbers); we refuse
      // them, which also keeps megabytes << 20 from wrapping to a tiny
      // limit (testing/fuzz checks both).
      if (!ParseUnsigned(args.v[0], kMaxUint32, &request->memlimit_mb)) {
        return Error();
      }
      return Ok();
    case Command::kVersion:
    case Command::kQuit:
      // memcached ignores any arguments.
      return Ok();
    default:
      return Error();
  }
}

}  // namespace

ParseResult ParseText(absl::string_view input, const TextParserOptions& options,
                      size_t* consumed, Request* request) {
  request->Clear();
  *consumed = 0;
  const void* newline =
      input.empty() ? nullptr : std::memchr(input.data(), '\n', input.size());
  if (newline == nullptr) {
    if (input.size() > kMaxTextLineLength && !LongLineAllowed(input)) {
      return Result(ParseStatus::kClose);
    }
    return Result(ParseStatus::kIncomplete);
  }
  const size_t line_length = static_cast<const char*>(newline) - input.data();
  // Judged on the whole line, not on how much of it the last read brought,
  // so the answer is the same however the line was split.
  if (line_length > kMaxTextLineLength &&
      !LongLineAllowed(input.substr(0, line_length))) {
    return Result(ParseStatus::kClose);
  }
  *consumed = line_length + 1;

  size_t content = line_length;
  // memcached strips a "\r" only when something precedes it; either way a
  // line of just "\r" is an error.
  if (content > 1 && input[content - 1] == '\r') --content;
  // memcached's tokenizer runs strlen(): a NUL ends the line's content.
  if (const void* nul = std::memchr(input.data(), '\0', content)) {
    content = static_cast<const char*>(nul) - input.data();
  }

  LineTokens tokens(input.substr(0, content));
  request->command = LookupCommand(tokens.Next());
  switch (request->command) {
    case Command::kNone:
      return Error();
    case Command::kGet:
    case Command::kGets:
      return ParseRetrieval(&tokens, /*touch=*/false, request);
    case Command::kGat:
    case Command::kGats:
      return ParseRetrieval(&tokens, /*touch=*/true, request);
    case Command::kStats:
      request->stats_group = tokens.Next();
      for (absl::string_view t = tokens.Next(); !t.empty(); t = tokens.Next()) {
        request->keys.push_back(t);
      }
      return Ok();
    case Command::kSet:
    case Command::kAdd:
    case Command::kReplace:
    case Command::kAppend:
    case Command::kPrepend:
    case Command::kCas:
      return ParseStorage(input, line_length + 1, Args(&tokens), options,
                          consumed, request);
    default:
      return ParseSimple(Args(&tokens), request);
  }
}

size_t ScanRetrievalKeys(absl::string_view input, size_t max_lines,
                         absl::string_view* keys, size_t max_keys,
                         size_t* key_count) {
  *key_count = 0;
  size_t pos = 0;
  for (size_t lines = 0; lines < max_lines && *key_count < max_keys; ++lines) {
    const char* const begin = input.data() + pos;
    const size_t left = input.size() - pos;
    if (left < 2) break;
    // Storage commands first, from their first bytes alone: a run of
    // pipelined sets pays no search for their line ends.
    switch (begin[0]) {
      case 's':
      case 'a':
      case 'r':
      case 'p':
      case 'c':
        return pos;
      case 'm':
        if (begin[1] == 's') return pos;
        break;
      default:
        break;
    }
    const char* const newline =
        static_cast<const char*>(std::memchr(begin, '\n', left));
    if (newline == nullptr) break;
    const char* end = newline;
    pos += end - begin + 1;
    if (end > begin && end[-1] == '\r') --end;
    // The command, and how many tokens precede the keys (gat's exptime).
    // Plain byte compares: this runs once per pipelined request.
    const size_t length = end - begin;
    size_t skip = 0;
    bool one_key = false;  // mg: the rest are flags
    const char* p = nullptr;
    if (length > 4 && begin[0] == 'g' && begin[2] == 't' &&
        (begin[1] == 'e' || begin[1] == 'a')) {
      skip = begin[1] == 'a' ? 1 : 0;
      if (begin[3] == ' ') {
        p = begin + 4;
      } else if (begin[3] == 's' && begin[4] == ' ') {
        p = begin + 5;
      }
    } else if (length > 3 && begin[0] == 'm' && begin[1] == 'g' &&
               begin[2] == ' ') {
      p = begin + 3;
      one_key = true;
    }
    if (p == nullptr) continue;
    while (p < end) {
      if (*p == ' ') {
        ++p;
        continue;
      }
      const char* space =
          static_cast<const char*>(std::memchr(p, ' ', end - p));
      if (space == nullptr) space = end;
      if (skip > 0) {
        --skip;
      } else {
        keys[(*key_count)++] = absl::string_view(p, space - p);
        if (one_key || *key_count == max_keys) break;
      }
      p = space;
    }
  }
  return pos;
}

}  // namespace memshard
