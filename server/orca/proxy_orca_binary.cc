// ProxySession: the binary protocol, translated to backend requests. Replies
// follow CacheOrca's (memcached 1.6's proto_bin.c): the response echoes the
// opcode as sent and the opaque; quiet forms hide success (and get misses)
// but never errors. Stat and SASL are answered by the local orchestrator.

#include <charconv>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/strings/numbers.h"
#include "server/orca/proxy_orca.h"

namespace memshard {
namespace {

using backend::BackendOp;
using backend::BackendRequest;
using backend::BackendStatus;

// memcached's "no auto-create" expiration for incr/decr.
constexpr uint32_t kNoCreate = 0xffffffff;

std::string Digits(uint64_t value) {
  char buffer[20];
  return std::string(buffer,
                     std::to_chars(buffer, buffer + sizeof(buffer), value).ptr);
}

}  // namespace

ProxySession::Outcome ProxySession::ExecuteBinary(const BinaryRequest& request,
                                                  bool* authenticated,
                                                  int64_t now) {
  switch (request.op) {
    case BinaryOpcode::kStat:
    case BinaryOpcode::kSaslListMechs:
    case BinaryOpcode::kSaslAuth:
    case BinaryOpcode::kSaslStep:
      if (!calls_.empty()) return Outcome::kWaitIdle;
      return orca_->local().Execute(request, authenticated, now, out_) ==
                     CacheOrca::Outcome::kClose
                 ? Outcome::kClose
                 : Outcome::kContinue;
    default:
      break;
  }
  Call* call = NewCall(Protocol::kBinary);
  call->op = request.op;
  call->opcode = request.opcode;
  call->opaque = request.opaque;
  call->quiet = request.quiet;
  call->now = now;
  BackendRequest r;
  switch (request.op) {
    case BinaryOpcode::kGet:
    case BinaryOpcode::kGetK:
    case BinaryOpcode::kGat:
    case BinaryOpcode::kGatK:
    case BinaryOpcode::kTouch:
      r.op = request.op == BinaryOpcode::kTouch ? BackendOp::kTouch
             : (request.op == BinaryOpcode::kGat ||
                request.op == BinaryOpcode::kGatK)
                 ? BackendOp::kGats
                 : BackendOp::kGets;
      r.exptime = request.expiration;
      break;
    case BinaryOpcode::kSet:
    case BinaryOpcode::kAdd:
    case BinaryOpcode::kReplace:
      // memcached: any set/add/replace carrying a CAS is a cas.
      r.op = request.cas != 0                       ? BackendOp::kCas
             : request.op == BinaryOpcode::kAdd     ? BackendOp::kAdd
             : request.op == BinaryOpcode::kReplace ? BackendOp::kReplace
                                                    : BackendOp::kSet;
      r.value = request.value;
      r.flags = request.flags;
      r.exptime = request.expiration;
      r.cas = request.cas;
      break;
    case BinaryOpcode::kAppend:
    case BinaryOpcode::kPrepend:
      r.op = request.op == BinaryOpcode::kAppend ? BackendOp::kAppend
                                                 : BackendOp::kPrepend;
      r.value = request.value;
      break;
    case BinaryOpcode::kDelete:
      r.op = BackendOp::kDelete;
      break;
    case BinaryOpcode::kIncrement:
    case BinaryOpcode::kDecrement:
      r.op = request.op == BinaryOpcode::kIncrement ? BackendOp::kIncr
                                                    : BackendOp::kDecr;
      r.delta = request.delta;
      call->delta = request.delta;
      call->initial = request.initial;
      call->expiration = request.expiration;
      break;
    case BinaryOpcode::kFlush:
      r.op = BackendOp::kFlushAll;
      r.delay = request.has_expiration && request.expiration > 0
                    ? static_cast<int64_t>(request.expiration)
                    : -1;
      if (orca_->l1l2()) {
        orca_->l1().FlushAll(
            r.delay > 0 ? AbsoluteExpiry(r.delay, now) - 1 : now, now);
      }
      Broadcast(call, r);
      Submit(call);
      return Outcome::kContinue;
    case BinaryOpcode::kQuit:
      Submit(call);  // answered in order (unless quiet), then closed
      return Outcome::kClose;
    default:
      // noop, version, verbosity, unknown: composed here.
      Submit(call);
      return Outcome::kContinue;
  }
  call->keys.emplace_back(request.key);
  call->entries.resize(1);
  r.key = call->keys[0];
  const bool read = r.op == BackendOp::kGets || r.op == BackendOp::kGats;
  if (orca_->l1l2() && !read) orca_->l1().Delete(request.key, now);
  Send(call, 0, r);
  Submit(call);
  return Outcome::kContinue;
}

// incr/decr on a miss: create the item with the initial value (stage 1),
// and if another client created it first, apply the delta after all
// (stage 2).
void ProxySession::BinaryAfterReply(Call* call) {
  if (call->op != BinaryOpcode::kIncrement &&
      call->op != BinaryOpcode::kDecrement) {
    return;
  }
  Entry& e = call->entries[0];
  BackendRequest r;
  r.key = call->keys[0];
  if (call->stage == 0 && e.status == BackendStatus::kNotFound &&
      call->expiration != kNoCreate) {
    call->stage = 1;
    call->value = Digits(call->initial);
    r.op = BackendOp::kAdd;
    r.value = call->value;
    r.exptime = call->expiration;
    Send(call, 0, r);
    return;
  }
  if (call->stage == 1 && e.status == BackendStatus::kNotStored) {
    call->stage = 2;
    r.op = call->op == BinaryOpcode::kIncrement ? BackendOp::kIncr
                                                : BackendOp::kDecr;
    r.delta = call->delta;
    Send(call, 0, r);
  }
}

void ProxySession::ComposeBinary(Call* call, ReplyOut out) {
  auto header = [&](BinaryStatus status, uint8_t extras_length,
                    uint16_t key_length, uint32_t body_length, uint64_t cas) {
    BinaryResponseHeader h;
    h.opcode = call->opcode;
    h.status = status;
    h.extras_length = extras_length;
    h.key_length = key_length;
    h.body_length = body_length;
    h.opaque = call->opaque;
    h.cas = cas;
    char bytes[kBinaryHeaderSize];
    EncodeBinaryResponseHeader(h, bytes);
    out.Append(absl::string_view(bytes, sizeof(bytes)));
  };
  auto error = [&](BinaryStatus status) {
    const absl::string_view text = BinaryStatusText(status);
    header(status, 0, 0, static_cast<uint32_t>(text.size()), 0);
    out.Append(text);
  };
  auto success = [&](uint64_t cas) {
    if (!call->quiet) header(BinaryStatus::kNoError, 0, 0, 0, cas);
  };
  switch (call->op) {
    case BinaryOpcode::kNoop:
    case BinaryOpcode::kVerbosity:
    case BinaryOpcode::kQuit:
      success(0);
      return;
    case BinaryOpcode::kVersion:
      header(BinaryStatus::kNoError, 0, 0,
             static_cast<uint32_t>(sizeof(kVersion) - 1), 0);
      out.Append(kVersion);
      return;
    default:
      break;
  }
  if (call->entries.empty()) {
    error(BinaryStatus::kUnknownCommand);
    return;
  }
  // Any local failure or backend error: memcached's "out of memory" status
  // is the closest a binary client understands as "try again".
  for (const Entry& e : call->entries) {
    if (backend::IsLocalFailure(e.status) ||
        e.status == BackendStatus::kServerError ||
        e.status == BackendStatus::kError) {
      orca_->metrics().Add(Counter::protocol_errors);
      error(BinaryStatus::kOutOfMemory);
      return;
    }
  }
  Entry& e = call->entries[0];
  switch (call->op) {
    case BinaryOpcode::kFlush:
      success(0);
      return;
    case BinaryOpcode::kGet:
    case BinaryOpcode::kGetK:
    case BinaryOpcode::kGat:
    case BinaryOpcode::kGatK:
    case BinaryOpcode::kTouch: {
      const bool with_key =
          call->op == BinaryOpcode::kGetK || call->op == BinaryOpcode::kGatK;
      const bool hit = e.status == BackendStatus::kHit ||
                       e.status == BackendStatus::kTouched;
      if (!hit) {
        if (call->quiet) return;
        if (with_key) {
          const uint16_t n = static_cast<uint16_t>(call->keys[0].size());
          header(BinaryStatus::kKeyNotFound, 0, n, n, 0);
          out.Append(call->keys[0]);
        } else {
          error(BinaryStatus::kKeyNotFound);
        }
        return;
      }
      const absl::string_view key =
          with_key ? absl::string_view(call->keys[0]) : absl::string_view();
      const absl::string_view value = e.value;
      header(BinaryStatus::kNoError, 4, static_cast<uint16_t>(key.size()),
             static_cast<uint32_t>(4 + key.size() + value.size()), e.cas);
      char flags[4];
      absl::big_endian::Store32(flags, e.flags);
      out.Append(absl::string_view(flags, sizeof(flags)));
      out.Append(key);
      out.Append(value);
      return;
    }
    case BinaryOpcode::kSet:
    case BinaryOpcode::kAdd:
    case BinaryOpcode::kReplace:
    case BinaryOpcode::kAppend:
    case BinaryOpcode::kPrepend:
      switch (e.status) {
        case BackendStatus::kStored:
          success(e.cas);
          return;
        case BackendStatus::kExists:
          error(BinaryStatus::kKeyExists);
          return;
        case BackendStatus::kNotFound:
          error(BinaryStatus::kKeyNotFound);
          return;
        default:
          error(call->op == BinaryOpcode::kAdd ? BinaryStatus::kKeyExists
                : call->op == BinaryOpcode::kReplace
                    ? BinaryStatus::kKeyNotFound
                    : BinaryStatus::kNotStored);
          return;
      }
    case BinaryOpcode::kDelete:
      if (e.status == BackendStatus::kDeleted) {
        success(0);
      } else {
        error(BinaryStatus::kKeyNotFound);
      }
      return;
    case BinaryOpcode::kIncrement:
    case BinaryOpcode::kDecrement: {
      uint64_t value = 0;
      if (e.status == BackendStatus::kStored && call->stage == 1) {
        value = call->initial;  // created
      } else if (e.status == BackendStatus::kNumber &&
                 absl::SimpleAtoi(e.value, &value)) {
      } else if (e.status == BackendStatus::kClientError) {
        error(BinaryStatus::kNonNumeric);
        return;
      } else {
        error(e.status == BackendStatus::kNotStored
                  ? BinaryStatus::kNotStored
                  : BinaryStatus::kKeyNotFound);
        return;
      }
      if (call->quiet) return;
      // The item's new CAS, as memcached sends it (from a meta backend: the
      // text protocol's incr and add do not tell it, and it stays 0).
      header(BinaryStatus::kNoError, 0, 0, 8, e.cas);
      char bytes[8];
      absl::big_endian::Store64(bytes, value);
      out.Append(absl::string_view(bytes, sizeof(bytes)));
      return;
    }
    default:
      error(BinaryStatus::kUnknownCommand);
      return;
  }
}

}  // namespace memshard
