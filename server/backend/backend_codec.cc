#include "server/backend/backend_codec.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace memshard {
namespace backend {
namespace {

// The longest header line we write: a 250-byte key and a few numbers.
constexpr size_t kMaxHeader = 512;

class LineWriter {
 public:
  LineWriter& Put(absl::string_view s) {
    memcpy(p_, s.data(), s.size());
    p_ += s.size();
    return *this;
  }
  LineWriter& Put(char c) {
    *p_++ = c;
    return *this;
  }
  LineWriter& Num(uint64_t n) {
    p_ = absl::numbers_internal::FastIntToBuffer(n, p_);
    return *this;
  }
  LineWriter& Num(int64_t n) {
    p_ = absl::numbers_internal::FastIntToBuffer(n, p_);
    return *this;
  }
  absl::string_view line() const { return absl::string_view(buf_, p_ - buf_); }

 private:
  char buf_[kMaxHeader];
  char* p_ = buf_;
};

const char* TextStorageVerb(BackendOp op) {
  switch (op) {
    case BackendOp::kAdd:
      return "add ";
    case BackendOp::kReplace:
      return "replace ";
    case BackendOp::kAppend:
      return "append ";
    case BackendOp::kPrepend:
      return "prepend ";
    case BackendOp::kCas:
      return "cas ";
    default:
      return "set ";
  }
}

// ms mode flag: E add, R replace, A append, P prepend, S set (and cas).
const char* MetaStorageMode(BackendOp op) {
  switch (op) {
    case BackendOp::kAdd:
      return " ME";
    case BackendOp::kReplace:
      return " MR";
    case BackendOp::kAppend:
      return " MA";
    case BackendOp::kPrepend:
      return " MP";
    default:
      return " MS";
  }
}

bool IsStorage(BackendOp op) {
  return op >= BackendOp::kSet && op <= BackendOp::kCas;
}

void EncodeText(const BackendRequest& r,
                absl::FunctionRef<void(absl::string_view)> append) {
  LineWriter w;
  switch (r.op) {
    case BackendOp::kGet:
      w.Put("get ").Put(r.key);
      break;
    case BackendOp::kGets:
      w.Put("gets ").Put(r.key);
      break;
    case BackendOp::kGat:
      w.Put("gat ").Num(r.exptime).Put(' ').Put(r.key);
      break;
    case BackendOp::kGats:
      w.Put("gats ").Num(r.exptime).Put(' ').Put(r.key);
      break;
    case BackendOp::kTouch:
      w.Put("touch ").Put(r.key).Put(' ').Num(r.exptime);
      break;
    case BackendOp::kSet:
    case BackendOp::kAdd:
    case BackendOp::kReplace:
    case BackendOp::kAppend:
    case BackendOp::kPrepend:
    case BackendOp::kCas:
      w.Put(TextStorageVerb(r.op))
          .Put(r.key)
          .Put(' ')
          .Num(uint64_t{r.flags})
          .Put(' ')
          .Num(r.exptime)
          .Put(' ')
          .Num(uint64_t{r.value.size()});
      if (r.op == BackendOp::kCas) w.Put(' ').Num(r.cas);
      break;
    case BackendOp::kDelete:
      w.Put("delete ").Put(r.key);
      break;
    case BackendOp::kIncr:
      w.Put("incr ").Put(r.key).Put(' ').Num(r.delta);
      break;
    case BackendOp::kDecr:
      w.Put("decr ").Put(r.key).Put(' ').Num(r.delta);
      break;
    case BackendOp::kVersion:
      w.Put("version");
      break;
    case BackendOp::kFlushAll:
      w.Put("flush_all");
      if (r.delay >= 0) w.Put(' ').Num(r.delay);
      break;
    case BackendOp::kMetaRaw:
      append(r.value);
      return;
  }
  w.Put("\r\n");
  append(w.line());
  if (IsStorage(r.op)) {
    append(r.value);
    append("\r\n");
  }
}

void EncodeMeta(const BackendRequest& r,
                absl::FunctionRef<void(absl::string_view)> append) {
  LineWriter w;
  switch (r.op) {
    case BackendOp::kGet:
      w.Put("mg ").Put(r.key).Put(" v f t");
      break;
    case BackendOp::kGets:
      w.Put("mg ").Put(r.key).Put(" v f t c");
      break;
    // memcached reads the flags in order: T before t, or t reports the
    // TTL from before the touch.
    case BackendOp::kGat:
      w.Put("mg ").Put(r.key).Put(" T").Num(r.exptime).Put(" v f t");
      break;
    case BackendOp::kGats:
      w.Put("mg ").Put(r.key).Put(" T").Num(r.exptime).Put(" v f t c");
      break;
    case BackendOp::kTouch:
      // No v: "HD" on a hit, "EN" on a miss.
      w.Put("mg ").Put(r.key).Put(" T").Num(r.exptime);
      break;
    case BackendOp::kSet:
    case BackendOp::kAdd:
    case BackendOp::kReplace:
    case BackendOp::kAppend:
    case BackendOp::kPrepend:
    case BackendOp::kCas:
      w.Put("ms ")
          .Put(r.key)
          .Put(' ')
          .Num(uint64_t{r.value.size()})
          .Put(" F")
          .Num(uint64_t{r.flags})
          .Put(" T")
          .Num(r.exptime)
          .Put(MetaStorageMode(r.op))
          .Put(" c");  // the new CAS, for binary clients' replies
      if (r.op == BackendOp::kCas) w.Put(" C").Num(r.cas);
      break;
    case BackendOp::kDelete:
      w.Put("md ").Put(r.key);
      break;
    // c: the new CAS, which a binary client's incr/decr reply carries.
    case BackendOp::kIncr:
      w.Put("ma ").Put(r.key).Put(" MI D").Num(r.delta).Put(" v c");
      break;
    case BackendOp::kDecr:
      w.Put("ma ").Put(r.key).Put(" MD D").Num(r.delta).Put(" v c");
      break;
    case BackendOp::kVersion:
    case BackendOp::kFlushAll:
    case BackendOp::kMetaRaw:
      // Same as text: meta has no verbs of its own for these.
      EncodeText(r, append);
      return;
  }
  w.Put("\r\n");
  append(w.line());
  if (IsStorage(r.op)) {
    append(r.value);
    append("\r\n");
  }
}

// --- Reply parsing ---

// The first line of `in` without its "\r\n"; false if incomplete.
bool FirstLine(absl::string_view in, absl::string_view* line,
               size_t* line_size) {
  size_t eol = in.find("\r\n");
  if (eol == absl::string_view::npos) return false;
  *line = in.substr(0, eol);
  *line_size = eol + 2;
  return true;
}

// Splits off the next space-separated token of `*rest`.
absl::string_view NextToken(absl::string_view* rest) {
  size_t start = rest->find_first_not_of(' ');
  if (start == absl::string_view::npos) {
    *rest = {};
    return {};
  }
  rest->remove_prefix(start);
  size_t end = rest->find(' ');
  absl::string_view token = rest->substr(0, end);
  rest->remove_prefix(end == absl::string_view::npos ? rest->size() : end);
  return token;
}

// The common error lines. True if `line` is one (and `*reply` is set).
bool ParseErrorLine(absl::string_view line, BackendReply* reply) {
  if (line == "ERROR") {
    reply->status = BackendStatus::kError;
    reply->value = {};
    return true;
  }
  if (absl::StartsWith(line, "CLIENT_ERROR")) {
    reply->status = BackendStatus::kClientError;
    reply->value = absl::StripLeadingAsciiWhitespace(line.substr(12));
    return true;
  }
  if (absl::StartsWith(line, "SERVER_ERROR")) {
    reply->status = BackendStatus::kServerError;
    reply->value = absl::StripLeadingAsciiWhitespace(line.substr(12));
    return true;
  }
  return false;
}

bool IsRetrieval(BackendOp op) {
  return op == BackendOp::kGet || op == BackendOp::kGets ||
         op == BackendOp::kGat || op == BackendOp::kGats;
}

bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Text retrieval: "VALUE <key> <flags> <bytes>[ <cas>]\r\n<data>\r\nEND\r\n"
// or "END\r\n".
ReplyParse ParseTextRetrieval(BackendOp op, absl::string_view in,
                              absl::string_view line, size_t line_size,
                              size_t* consumed, size_t* need,
                              BackendReply* reply) {
  if (line == "END") {
    reply->status = BackendStatus::kMiss;
    *consumed = line_size;
    return ReplyParse::kOk;
  }
  absl::string_view rest = line;
  if (NextToken(&rest) != "VALUE") return ReplyParse::kInvalid;
  NextToken(&rest);  // the key: ours, since one op carries one key
  uint32_t flags;
  uint64_t bytes;
  if (!absl::SimpleAtoi(NextToken(&rest), &flags) ||
      !absl::SimpleAtoi(NextToken(&rest), &bytes)) {
    return ReplyParse::kInvalid;
  }
  uint64_t cas = 0;
  absl::string_view cas_token = NextToken(&rest);
  if (!cas_token.empty() && !absl::SimpleAtoi(cas_token, &cas)) {
    return ReplyParse::kInvalid;
  }
  const size_t total = line_size + bytes + 2 + 5;  // data, "\r\n", "END\r\n"
  if (in.size() < total) {
    *need = total;
    return ReplyParse::kIncomplete;
  }
  if (in.substr(line_size + bytes, 7) != "\r\nEND\r\n") {
    return ReplyParse::kInvalid;
  }
  reply->status = BackendStatus::kHit;
  reply->value = in.substr(line_size, bytes);
  reply->flags = flags;
  reply->cas = cas;
  reply->ttl = kTtlUnknown;
  *consumed = total;
  return ReplyParse::kOk;
}

ReplyParse ParseTextReply(BackendOp op, absl::string_view in, size_t* consumed,
                          size_t* need, BackendReply* reply) {
  absl::string_view line;
  size_t line_size;
  if (!FirstLine(in, &line, &line_size)) {
    *need = in.size() + 1;
    return ReplyParse::kIncomplete;
  }
  *reply = BackendReply();
  if (ParseErrorLine(line, reply)) {
    *consumed = line_size;
    return ReplyParse::kOk;
  }
  if (IsRetrieval(op)) {
    return ParseTextRetrieval(op, in, line, line_size, consumed, need, reply);
  }
  BackendStatus status;
  switch (op) {
    case BackendOp::kSet:
    case BackendOp::kAdd:
    case BackendOp::kReplace:
    case BackendOp::kAppend:
    case BackendOp::kPrepend:
    case BackendOp::kCas:
      if (line == "STORED") {
        status = BackendStatus::kStored;
      } else if (line == "NOT_STORED") {
        status = BackendStatus::kNotStored;
      } else if (line == "EXISTS") {
        status = BackendStatus::kExists;
      } else if (line == "NOT_FOUND") {
        status = BackendStatus::kNotFound;
      } else {
        return ReplyParse::kInvalid;
      }
      break;
    case BackendOp::kDelete:
      if (line == "DELETED") {
        status = BackendStatus::kDeleted;
      } else if (line == "NOT_FOUND") {
        status = BackendStatus::kNotFound;
      } else {
        return ReplyParse::kInvalid;
      }
      break;
    case BackendOp::kTouch:
      if (line == "TOUCHED") {
        status = BackendStatus::kTouched;
      } else if (line == "NOT_FOUND") {
        status = BackendStatus::kNotFound;
      } else {
        return ReplyParse::kInvalid;
      }
      break;
    case BackendOp::kIncr:
    case BackendOp::kDecr:
      if (line == "NOT_FOUND") {
        status = BackendStatus::kNotFound;
      } else if (AllDigits(line)) {
        status = BackendStatus::kNumber;
        reply->value = line;
      } else {
        return ReplyParse::kInvalid;
      }
      break;
    case BackendOp::kVersion:
      if (!absl::StartsWith(line, "VERSION ")) return ReplyParse::kInvalid;
      status = BackendStatus::kVersion;
      reply->value = line.substr(8);
      break;
    case BackendOp::kFlushAll:
      if (line != "OK") return ReplyParse::kInvalid;
      status = BackendStatus::kOk;
      break;
    default:
      return ReplyParse::kInvalid;
  }
  reply->status = status;
  *consumed = line_size;
  return ReplyParse::kOk;
}

// The return flags of a meta reply ("f5 t100 c7 ..."); unknown ones are
// ignored.
bool ParseMetaFlags(absl::string_view rest, BackendReply* reply) {
  for (;;) {
    absl::string_view token = NextToken(&rest);
    if (token.empty()) return true;
    absl::string_view arg = token.substr(1);
    switch (token[0]) {
      case 'f':
        if (!absl::SimpleAtoi(arg, &reply->flags)) return false;
        break;
      case 't':
        if (!absl::SimpleAtoi(arg, &reply->ttl)) return false;
        if (reply->ttl < kTtlNever) return false;
        break;
      case 'c':
        if (!absl::SimpleAtoi(arg, &reply->cas)) return false;
        break;
      default:
        break;
    }
  }
}

// Any meta reply, kept whole: a line, and after "VA <n>" n bytes and "\r\n".
ReplyParse ParseRawMetaReply(absl::string_view in, size_t* consumed,
                             size_t* need, BackendReply* reply) {
  absl::string_view line;
  size_t line_size;
  if (!FirstLine(in, &line, &line_size)) {
    *need = in.size() + 1;
    return ReplyParse::kIncomplete;
  }
  size_t total = line_size;
  if (absl::StartsWith(line, "VA ")) {
    absl::string_view rest = line.substr(3);
    uint64_t bytes;
    if (!absl::SimpleAtoi(NextToken(&rest), &bytes)) {
      return ReplyParse::kInvalid;
    }
    total = line_size + bytes + 2;
    if (in.size() < total) {
      *need = total;
      return ReplyParse::kIncomplete;
    }
    if (in.substr(total - 2, 2) != "\r\n") return ReplyParse::kInvalid;
  } else if (line.size() < 2) {
    return ReplyParse::kInvalid;
  }
  *reply = BackendReply();
  reply->status = BackendStatus::kRaw;
  reply->value = in.substr(0, total);
  *consumed = total;
  return ReplyParse::kOk;
}

ReplyParse ParseMetaReply(BackendOp op, absl::string_view in, size_t* consumed,
                          size_t* need, BackendReply* reply) {
  if (op == BackendOp::kVersion || op == BackendOp::kFlushAll) {
    return ParseTextReply(op, in, consumed, need, reply);
  }
  if (op == BackendOp::kMetaRaw) {
    return ParseRawMetaReply(in, consumed, need, reply);
  }
  absl::string_view line;
  size_t line_size;
  if (!FirstLine(in, &line, &line_size)) {
    *need = in.size() + 1;
    return ReplyParse::kIncomplete;
  }
  *reply = BackendReply();
  if (ParseErrorLine(line, reply)) {
    *consumed = line_size;
    return ReplyParse::kOk;
  }
  absl::string_view rest = line;
  absl::string_view code = NextToken(&rest);
  *consumed = line_size;
  if (code == "VA") {
    uint64_t bytes;
    if (!absl::SimpleAtoi(NextToken(&rest), &bytes)) {
      return ReplyParse::kInvalid;
    }
    const size_t total = line_size + bytes + 2;
    if (in.size() < total) {
      *need = total;
      return ReplyParse::kIncomplete;
    }
    if (in.substr(line_size + bytes, 2) != "\r\n") return ReplyParse::kInvalid;
    if (!ParseMetaFlags(rest, reply)) return ReplyParse::kInvalid;
    absl::string_view data = in.substr(line_size, bytes);
    *consumed = total;
    if (IsRetrieval(op)) {
      reply->status = BackendStatus::kHit;
      reply->value = data;
      return ReplyParse::kOk;
    }
    if ((op == BackendOp::kIncr || op == BackendOp::kDecr) && AllDigits(data)) {
      reply->status = BackendStatus::kNumber;
      reply->value = data;
      return ReplyParse::kOk;
    }
    return ReplyParse::kInvalid;
  }
  if (!ParseMetaFlags(rest, reply)) return ReplyParse::kInvalid;
  const bool storage = IsStorage(op);
  if (code == "HD") {
    if (storage) {
      reply->status = BackendStatus::kStored;
    } else if (op == BackendOp::kDelete) {
      reply->status = BackendStatus::kDeleted;
    } else if (op == BackendOp::kTouch) {
      reply->status = BackendStatus::kTouched;
    } else {
      return ReplyParse::kInvalid;
    }
    return ReplyParse::kOk;
  }
  if (code == "EN") {
    if (IsRetrieval(op)) {
      reply->status = BackendStatus::kMiss;
    } else if (op == BackendOp::kTouch) {
      reply->status = BackendStatus::kNotFound;
    } else {
      return ReplyParse::kInvalid;
    }
    return ReplyParse::kOk;
  }
  if (code == "NF") {
    if (op == BackendOp::kCas || op == BackendOp::kDelete ||
        op == BackendOp::kIncr || op == BackendOp::kDecr ||
        op == BackendOp::kTouch) {
      reply->status = BackendStatus::kNotFound;
      return ReplyParse::kOk;
    }
    // ms in other modes does not say NF, but memcached's text protocol
    // would call it NOT_STORED; be lenient.
    if (storage) {
      reply->status = BackendStatus::kNotStored;
      return ReplyParse::kOk;
    }
    return ReplyParse::kInvalid;
  }
  if (code == "NS" && storage) {
    reply->status = BackendStatus::kNotStored;
    return ReplyParse::kOk;
  }
  if (code == "EX" && storage) {
    reply->status = BackendStatus::kExists;
    return ReplyParse::kOk;
  }
  return ReplyParse::kInvalid;
}

}  // namespace

absl::string_view BackendOpName(BackendOp op) {
  switch (op) {
    case BackendOp::kGet:
      return "get";
    case BackendOp::kGets:
      return "gets";
    case BackendOp::kGat:
      return "gat";
    case BackendOp::kGats:
      return "gats";
    case BackendOp::kTouch:
      return "touch";
    case BackendOp::kSet:
      return "set";
    case BackendOp::kAdd:
      return "add";
    case BackendOp::kReplace:
      return "replace";
    case BackendOp::kAppend:
      return "append";
    case BackendOp::kPrepend:
      return "prepend";
    case BackendOp::kCas:
      return "cas";
    case BackendOp::kDelete:
      return "delete";
    case BackendOp::kIncr:
      return "incr";
    case BackendOp::kDecr:
      return "decr";
    case BackendOp::kVersion:
      return "version";
    case BackendOp::kFlushAll:
      return "flush_all";
    case BackendOp::kMetaRaw:
      return "meta";
  }
  return "?";
}

absl::string_view BackendStatusName(BackendStatus status) {
  switch (status) {
    case BackendStatus::kHit:
      return "hit";
    case BackendStatus::kMiss:
      return "miss";
    case BackendStatus::kStored:
      return "stored";
    case BackendStatus::kNotStored:
      return "not_stored";
    case BackendStatus::kExists:
      return "exists";
    case BackendStatus::kNotFound:
      return "not_found";
    case BackendStatus::kDeleted:
      return "deleted";
    case BackendStatus::kTouched:
      return "touched";
    case BackendStatus::kNumber:
      return "number";
    case BackendStatus::kVersion:
      return "version";
    case BackendStatus::kOk:
      return "ok";
    case BackendStatus::kRaw:
      return "raw";
    case BackendStatus::kError:
      return "error";
    case BackendStatus::kClientError:
      return "client_error";
    case BackendStatus::kServerError:
      return "server_error";
    case BackendStatus::kUnavailable:
      return "unavailable";
    case BackendStatus::kTimeout:
      return "timeout";
    case BackendStatus::kBusy:
      return "busy";
  }
  return "?";
}

void EncodeRequest(BackendProtocol protocol, const BackendRequest& request,
                   absl::FunctionRef<void(absl::string_view)> append) {
  if (protocol == BackendProtocol::kMeta) {
    EncodeMeta(request, append);
  } else {
    EncodeText(request, append);
  }
}

ReplyParse ParseReply(BackendProtocol protocol, BackendOp op,
                      absl::string_view in, size_t* consumed, size_t* need,
                      BackendReply* reply) {
  return protocol == BackendProtocol::kMeta
             ? ParseMetaReply(op, in, consumed, need, reply)
             : ParseTextReply(op, in, consumed, need, reply);
}

}  // namespace backend
}  // namespace memshard
