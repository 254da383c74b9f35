// CacheOrca: the binary protocol. Replies follow memcached 1.6's proto_bin.c:
// the response echoes the request's opcode (quiet forms included) and
// opaque; quiet forms hide success (and, for gets, misses) but never errors;
// errors carry memcached's text as their body.

#include <charconv>
#include <string>

#include "absl/base/internal/endian.h"
#include "absl/strings/match.h"
#include "server/admin/stats.h"
#include "server/auth/authenticator.h"
#include "server/orca/cache_orca.h"

namespace memshard {
namespace {

// memcached's "no auto-create" expiration for incr/decr.
constexpr uint32_t kNoCreate = 0xffffffff;

void AppendHeader(const BinaryRequest& request, BinaryStatus status,
                  uint8_t extras_length, uint16_t key_length,
                  uint32_t body_length, uint64_t cas, OutputChain* out) {
  BinaryResponseHeader header;
  header.opcode = request.opcode;
  header.status = status;
  header.extras_length = extras_length;
  header.key_length = key_length;
  header.body_length = body_length;
  header.opaque = request.opaque;
  header.cas = cas;
  char bytes[kBinaryHeaderSize];
  EncodeBinaryResponseHeader(header, bytes);
  out->Append(absl::string_view(bytes, sizeof(bytes)));
}

// An empty success, hidden for quiet opcodes.
void AppendSuccess(const BinaryRequest& request, uint64_t cas,
                   OutputChain* out) {
  if (request.quiet) return;
  AppendHeader(request, BinaryStatus::kNoError, 0, 0, 0, cas, out);
}

void AppendBody(const BinaryRequest& request, absl::string_view body,
                OutputChain* out) {
  AppendHeader(request, BinaryStatus::kNoError, 0, 0,
               static_cast<uint32_t>(body.size()), 0, out);
  out->Append(body);
}

std::string Digits(uint64_t value) {
  char buffer[20];
  return std::string(buffer,
                     std::to_chars(buffer, buffer + sizeof(buffer), value).ptr);
}

}  // namespace

void CacheOrca::AppendBinaryError(const BinaryRequest& request,
                                  BinaryStatus status, OutputChain* out) {
  const absl::string_view text = BinaryStatusText(status);
  AppendHeader(request, status, 0, 0, static_cast<uint32_t>(text.size()), 0,
               out);
  out->Append(text);
}

CacheOrca::Outcome CacheOrca::Execute(const BinaryRequest& request,
                                      bool* authenticated, int64_t now,
                                      OutputChain* out) {
  switch (request.op) {
    case BinaryOpcode::kGet:
    case BinaryOpcode::kGetK:
    case BinaryOpcode::kTouch:
    case BinaryOpcode::kGat:
    case BinaryOpcode::kGatK:
      BinaryGet(request, now, out);
      break;
    case BinaryOpcode::kSet:
    case BinaryOpcode::kAdd:
    case BinaryOpcode::kReplace:
    case BinaryOpcode::kAppend:
    case BinaryOpcode::kPrepend:
      BinaryStore(request, now, out);
      break;
    case BinaryOpcode::kDelete:
      BinaryDelete(request, now, out);
      break;
    case BinaryOpcode::kIncrement:
    case BinaryOpcode::kDecrement:
      BinaryArithmetic(request, now, out);
      break;
    case BinaryOpcode::kQuit:
      AppendSuccess(request, 0, out);
      return Outcome::kClose;
    case BinaryOpcode::kFlush:
      handler_.FlushAll(request.has_expiration ? request.expiration : 0, now);
      AppendSuccess(request, 0, out);
      break;
    case BinaryOpcode::kNoop:
    case BinaryOpcode::kVerbosity:
      AppendSuccess(request, 0, out);
      break;
    case BinaryOpcode::kVersion:
      AppendBody(request, kVersion, out);
      break;
    case BinaryOpcode::kStat:
      BinaryStat(request, out);
      break;
    case BinaryOpcode::kSaslListMechs:
      if (context_->sasl_auth == nullptr) {
        AppendBinaryError(request, BinaryStatus::kUnknownCommand, out);
      } else {
        AppendBody(request, "PLAIN", out);
      }
      break;
    case BinaryOpcode::kSaslAuth:
    case BinaryOpcode::kSaslStep:
      BinarySaslAuth(request, authenticated, out);
      break;
    default:
      // Quiet forms are folded by the parser; nothing else gets here.
      AppendBinaryError(request, BinaryStatus::kUnknownCommand, out);
      break;
  }
  return Outcome::kContinue;
}

void CacheOrca::BinaryGet(const BinaryRequest& request, int64_t now,
                          OutputChain* out) {
  const bool touch = request.op == BinaryOpcode::kTouch ||
                     request.op == BinaryOpcode::kGat ||
                     request.op == BinaryOpcode::kGatK;
  const bool with_key =
      request.op == BinaryOpcode::kGetK || request.op == BinaryOpcode::kGatK;
  const bool with_value = request.op != BinaryOpcode::kTouch;
  cache::ItemRef item =
      touch ? handler_.GetAndTouch(request.key,
                                   AbsoluteExpiry(request.expiration, now), now)
            : handler_.Get(request.key, now);
  if (DetailOn()) {
    context_->prefix_stats.RecordGet(request.key, static_cast<bool>(item));
  }
  if (!item) {
    if (request.quiet) return;
    if (with_key) {
      // memcached answers GetK's miss with the key instead of a message.
      const uint16_t key_length = static_cast<uint16_t>(request.key.size());
      AppendHeader(request, BinaryStatus::kKeyNotFound, 0, key_length,
                   key_length, 0, out);
      out->Append(request.key);
    } else {
      AppendBinaryError(request, BinaryStatus::kKeyNotFound, out);
    }
    return;
  }
  const absl::string_view key = with_key ? item.key() : absl::string_view();
  const absl::string_view value =
      with_value ? item.value() : absl::string_view();
  AppendHeader(
      request, BinaryStatus::kNoError, 4, static_cast<uint16_t>(key.size()),
      static_cast<uint32_t>(4 + key.size() + value.size()), item.cas(), out);
  char flags[4];
  absl::big_endian::Store32(flags, item.flags());
  out->Append(absl::string_view(flags, sizeof(flags)));
  if (!key.empty()) out->Append(key);
  if (!value.empty()) out->AppendItem(std::move(item), value);
}

void CacheOrca::BinaryStore(const BinaryRequest& request, int64_t now,
                            OutputChain* out) {
  cache::StoreMode mode = cache::StoreMode::kSet;
  switch (request.op) {
    case BinaryOpcode::kAdd:
      mode = cache::StoreMode::kAdd;
      break;
    case BinaryOpcode::kReplace:
      mode = cache::StoreMode::kReplace;
      break;
    case BinaryOpcode::kAppend:
      mode = cache::StoreMode::kAppend;
      break;
    case BinaryOpcode::kPrepend:
      mode = cache::StoreMode::kPrepend;
      break;
    default:
      break;
  }
  // memcached: any set/add/replace carrying a CAS is a cas.
  const bool concat =
      mode == cache::StoreMode::kAppend || mode == cache::StoreMode::kPrepend;
  if (!concat && request.cas != 0) mode = cache::StoreMode::kCas;
  if (DetailOn()) context_->prefix_stats.RecordSet(request.key);
  const CacheHandler::StoreOutcome stored = handler_.Store(
      mode, request.key, request.flags, AbsoluteExpiry(request.expiration, now),
      request.value, request.cas, now);
  switch (stored.result) {
    case cache::StoreResult::kStored:
      AppendSuccess(request, stored.cas, out);
      break;
    case cache::StoreResult::kExists:
      AppendBinaryError(request, BinaryStatus::kKeyExists, out);
      break;
    case cache::StoreResult::kNotFound:
      AppendBinaryError(request, BinaryStatus::kKeyNotFound, out);
      break;
    case cache::StoreResult::kNotStored:
      // memcached's codes for a failed add / replace.
      AppendBinaryError(
          request,
          request.op == BinaryOpcode::kAdd       ? BinaryStatus::kKeyExists
          : request.op == BinaryOpcode::kReplace ? BinaryStatus::kKeyNotFound
                                                 : BinaryStatus::kNotStored,
          out);
      break;
    case cache::StoreResult::kTooLarge:
      AppendBinaryError(request, BinaryStatus::kValueTooLarge, out);
      break;
    case cache::StoreResult::kOutOfMemory:
      AppendBinaryError(request, BinaryStatus::kOutOfMemory, out);
      break;
  }
}

void CacheOrca::BinaryDelete(const BinaryRequest& request, int64_t now,
                             OutputChain* out) {
  if (DetailOn()) context_->prefix_stats.RecordDelete(request.key);
  switch (handler_.Delete(request.key, request.cas != 0, request.cas, now)) {
    case cache::DeleteResult::kDeleted:
      AppendSuccess(request, 0, out);
      break;
    case cache::DeleteResult::kNotFound:
      AppendBinaryError(request, BinaryStatus::kKeyNotFound, out);
      break;
    case cache::DeleteResult::kExists:
      AppendBinaryError(request, BinaryStatus::kKeyExists, out);
      break;
  }
}

void CacheOrca::BinaryArithmetic(const BinaryRequest& request, int64_t now,
                                 OutputChain* out) {
  const bool increment = request.op == BinaryOpcode::kIncrement;
  cache::DeltaOptions options;
  options.check_cas = request.cas != 0;
  options.cas_in = request.cas;
  cache::DeltaOutcome outcome;
  cache::DeltaResult result = cache::DeltaResult::kNotFound;
  bool created = false;
  bool not_stored = false;
  // A miss creates the item with the initial value unless the expiration
  // is 0xffffffff; a client that creates it first wins and we apply the
  // delta to its item instead.
  for (int attempt = 0; attempt < 4; ++attempt) {
    result = handler_.Delta(request.key, increment, request.delta, options, now,
                            &outcome);
    if (result != cache::DeltaResult::kNotFound ||
        request.expiration == kNoCreate) {
      break;
    }
    const CacheHandler::StoreOutcome stored =
        handler_.Store(cache::StoreMode::kAdd, request.key, 0,
                       AbsoluteExpiry(request.expiration, now),
                       Digits(request.initial), 0, now);
    if (stored.result == cache::StoreResult::kStored) {
      created = true;
      outcome.value = request.initial;
      outcome.cas = stored.cas;
      break;
    }
    if (stored.result != cache::StoreResult::kNotStored) {
      AppendBinaryError(request, BinaryStatus::kOutOfMemory, out);
      return;
    }
    not_stored = true;
  }
  if (created || result == cache::DeltaResult::kOk) {
    if (request.quiet) return;
    AppendHeader(request, BinaryStatus::kNoError, 0, 0, 8, outcome.cas, out);
    char value[8];
    absl::big_endian::Store64(value, outcome.value);
    out->Append(absl::string_view(value, sizeof(value)));
    return;
  }
  switch (result) {
    case cache::DeltaResult::kExists:
      AppendBinaryError(request, BinaryStatus::kKeyExists, out);
      break;
    case cache::DeltaResult::kNonNumeric:
      AppendBinaryError(request, BinaryStatus::kNonNumeric, out);
      break;
    case cache::DeltaResult::kOutOfMemory:
      AppendBinaryError(request, BinaryStatus::kOutOfMemory, out);
      break;
    default:
      AppendBinaryError(
          request,
          not_stored ? BinaryStatus::kNotStored : BinaryStatus::kKeyNotFound,
          out);
      break;
  }
}

void CacheOrca::BinaryStat(const BinaryRequest& request, OutputChain* out) {
  if (absl::StartsWith(request.key, "detail")) {
    BinaryStatDetail(request, out);
    return;
  }
  const StatsReply reply = CollectStats(*context_, request.key);
  if (reply.kind == StatsReply::Kind::kUnknown) {
    AppendBinaryError(request, BinaryStatus::kKeyNotFound, out);
    return;
  }
  // One packet per stat (key = name, value = value), then an empty one.
  for (const StatLine& line : reply.lines) {
    AppendHeader(request, BinaryStatus::kNoError, 0,
                 static_cast<uint16_t>(line.name.size()),
                 static_cast<uint32_t>(line.name.size() + line.value.size()), 0,
                 out);
    out->Append(line.name);
    out->Append(line.value);
  }
  AppendHeader(request, BinaryStatus::kNoError, 0, 0, 0, 0, out);
}

// memcached's binary "detail on", "detail off" and "detail dump" (matched
// by prefix, as it does): the dump is one stat, "detailed", whose value is
// the text protocol's dump; every form ends with the empty stat. Anything
// else after "detail" is Key not found.
void CacheOrca::BinaryStatDetail(const BinaryRequest& request,
                                 OutputChain* out) {
  const absl::string_view arg = request.key.substr(6);
  PrefixStats& stats = context_->prefix_stats;
  if (absl::StartsWith(arg, " dump")) {
    constexpr absl::string_view kName = "detailed";
    const std::string dump = stats.Dump();
    AppendHeader(request, BinaryStatus::kNoError, 0,
                 static_cast<uint16_t>(kName.size()),
                 static_cast<uint32_t>(kName.size() + dump.size()), 0, out);
    out->Append(kName);
    out->Append(dump);
  } else if (absl::StartsWith(arg, " on")) {
    stats.set_enabled(true);
  } else if (absl::StartsWith(arg, " off")) {
    stats.set_enabled(false);
  } else {
    AppendBinaryError(request, BinaryStatus::kKeyNotFound, out);
    return;
  }
  AppendHeader(request, BinaryStatus::kNoError, 0, 0, 0, 0, out);
}

void CacheOrca::BinarySaslAuth(const BinaryRequest& request,
                               bool* authenticated, OutputChain* out) {
  const Authenticator* sasl = context_->sasl_auth;
  if (sasl == nullptr) {
    AppendBinaryError(request, BinaryStatus::kUnknownCommand, out);
    return;
  }
  metrics_->Add(Counter::auth_cmds);
  // PLAIN is one step: a SASL Step, or any other mechanism, fails.
  absl::string_view user;
  absl::string_view password;
  if (request.op != BinaryOpcode::kSaslAuth || request.key != "PLAIN" ||
      !ParseSaslPlain(request.value, &user, &password) ||
      !sasl->Check(user, password)) {
    metrics_->Add(Counter::auth_errors);
    AppendBinaryError(request, BinaryStatus::kAuthError, out);
    return;
  }
  *authenticated = true;
  AppendBody(request, "Authenticated", out);
}

}  // namespace memshard
