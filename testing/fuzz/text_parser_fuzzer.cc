// libFuzzer target: the classic text protocol parser (ParseText).
//
// The input is a client's byte stream. Checked, for every parse:
//  - it never reads past the bytes it was given (each parse sees an exactly
//    sized heap copy; ASan reports an over-read);
//  - `consumed` fits the input and the status: nothing for kIncomplete and
//    kClose, at least the command line otherwise, and exactly line + data
//    block + "\r\n" for a storage command;
//  - every view of the request lies inside the consumed bytes, keys obey
//    memcached's limits (non-empty, no space, <= 250 bytes), a value obeys
//    max_value_size and is followed by "\r\n";
//  - buffering is bounded: kIncomplete only while a line has no newline yet
//    (and is no longer than a multiget may grow) or a storage command waits
//    for a data block whose size it reports in `need`; kClose only for a
//    line longer than memcached allows;
//  - the stream's transcript does not depend on how it was cut into reads;
//  - what the backend codec composes from a parsed request
//    (server/backend/backend_codec.h, text and meta) parses back to it;
//  - cache_memlimit's megabytes cannot wrap when turned into bytes.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "glog/logging.h"
#include "server/backend/backend_codec.h"
#include "server/protocol/meta_parser.h"
#include "server/protocol/request.h"
#include "server/protocol/text_parser.h"
#include "testing/fuzz/line_checks.h"
#include "testing/fuzz/split_feed.h"

namespace memshard::fuzz {
namespace {

bool IsStorage(Command c) {
  return c == Command::kSet || c == Command::kAdd || c == Command::kReplace ||
         c == Command::kAppend || c == Command::kPrepend || c == Command::kCas;
}

bool IsRetrieval(Command c) {
  return c == Command::kGet || c == Command::kGets || c == Command::kGat ||
         c == Command::kGats;
}

std::string Describe(const ParseResult& r, size_t consumed,
                     const Request& request) {
  std::string s = absl::StrCat(StatusName(r.status), " consumed=", consumed,
                               " swallow=", r.swallow, " msg=\"", r.message,
                               "\" cmd=", CommandName(request.command));
  for (absl::string_view key : request.keys) {
    absl::StrAppend(&s, " key=\"", absl::CEscape(key), "\"");
  }
  absl::StrAppend(&s, " value=\"", absl::CEscape(request.value),
                  "\" flags=", request.flags, " exptime=", request.exptime,
                  " cas=", request.cas_unique, " delta=", request.delta,
                  " delay=", request.delay, " verbosity=", request.verbosity,
                  " memlimit=", request.memlimit_mb, " group=\"",
                  absl::CEscape(request.stats_group), "\"",
                  request.noreply ? " noreply" : "");
  return s;
}

// What a long line must start with to be allowed (text_parser.h).
bool StartsLikeMultiget(absl::string_view line) {
  size_t spaces = 0;
  while (spaces < line.size() && line[spaces] == ' ') ++spaces;
  line.remove_prefix(spaces);
  for (absl::string_view prefix : {"get ", "gets ", "gat ", "gats "}) {
    if (line.substr(0, prefix.size()) == prefix) return spaces <= 100;
  }
  return false;
}

// Why `key` breaks memcached's key rules, or nullptr if it does not.
const char* BadKey(absl::string_view key, absl::string_view consumed_bytes) {
  if (key.empty()) return "empty key: ";
  if (key.size() > kMaxKeyLength) return "key too long: ";
  if (!Within(key, consumed_bytes)) return "key outside the input: ";
  if (key.find_first_of(absl::string_view(" \n\0", 3)) !=
      absl::string_view::npos) {
    return "key with a space, newline or NUL: ";
  }
  return nullptr;
}

template <typename Context>
void CheckKey(absl::string_view key, absl::string_view used,
              const Context& context) {
  if (const char* bad = BadKey(key, used)) LOG(FATAL) << bad << context();
}

void CheckParse(absl::string_view in, const ParseResult& r, size_t consumed,
                const Request& request) {
  // Built only when a check fails: describing every parse is most of the
  // cost of a fuzz iteration.
  auto context = [&] {
    return absl::StrCat(Describe(r, consumed, request), QuoteInput(in));
  };
  const size_t newline = CheckLineFraming(
      in, r, consumed, IsStorage(request.command),
      [in] { return StartsLikeMultiget(in); }, context);
  if (newline == absl::string_view::npos) return;
  const absl::string_view used = in.substr(0, consumed);
  if (r.status == ParseStatus::kServerError) {
    // The only server error is an oversized data block, swallowed.
    CHECK(IsStorage(request.command)) << context();
    CHECK_GT(r.swallow, kMaxValueSize + 2) << context();
  } else {
    CHECK_EQ(r.swallow, 0u) << context();
  }
  for (absl::string_view key : request.keys) {
    CHECK(Within(key, used)) << context();
  }
  CHECK(Within(request.stats_group, used)) << context();
  CHECK(Within(request.value, used)) << context();
  if (r.status != ParseStatus::kOk) return;

  CHECK(request.command != Command::kNone) << context();
  const Command c = request.command;
  if (IsStorage(c)) {
    CHECK_EQ(request.keys.size(), 1u) << context();
    CheckKey(request.keys[0], used, context);
    CheckDataBlock(in, consumed, newline, request.value, context);
  } else {
    CHECK(request.value.empty()) << context();
  }
  if (IsRetrieval(c)) {
    if (c == Command::kGet || c == Command::kGets) {
      CHECK(!request.keys.empty()) << context();
    }
    for (absl::string_view key : request.keys) CheckKey(key, used, context);
  } else if (c == Command::kDelete || c == Command::kIncr ||
             c == Command::kDecr || c == Command::kTouch) {
    CHECK_EQ(request.keys.size(), 1u) << context();
    CheckKey(request.keys[0], used, context);
  } else if (c != Command::kStats && !IsStorage(c)) {
    CHECK(request.keys.empty()) << context();
  }
  // The orchestrator sets a limit of memlimit_mb << 20 bytes: no wrap.
  CHECK_LE(request.memlimit_mb, UINT64_MAX >> 20) << context();
}

// --- Round trip through the backend codec ---

using backend::BackendOp;
using backend::BackendProtocol;
using backend::BackendRequest;

std::string Encode(BackendProtocol protocol, const BackendRequest& r) {
  std::string out;
  backend::EncodeRequest(protocol, r, [&out](absl::string_view s) {
    out.append(s.data(), s.size());
  });
  return out;
}

// Parses `wire` (copied to an exact heap buffer) with the connection's
// dispatch; fails unless it is one whole request.
template <typename Check>
void ParseBack(absl::string_view wire, absl::FunctionRef<std::string()> context,
               Check&& check) {
  std::unique_ptr<char[]> exact(new char[wire.size()]);
  std::memcpy(exact.get(), wire.data(), wire.size());
  const absl::string_view in(exact.get(), wire.size());
  size_t consumed = 0;
  if (IsMetaLine(in)) {
    MetaRequest meta;
    const ParseResult r = ParseMeta(in, Options(), &consumed, &meta);
    CHECK(r.status == ParseStatus::kOk && consumed == in.size())
        << "composed \"" << absl::CEscape(wire) << "\" parses as "
        << StatusName(r.status) << " (" << r.message << "), consumed "
        << consumed << "; from " << context();
    check(static_cast<const Request*>(nullptr), &meta);
  } else {
    Request text;
    const ParseResult r = ParseText(in, Options(), &consumed, &text);
    CHECK(r.status == ParseStatus::kOk && consumed == in.size())
        << "composed \"" << absl::CEscape(wire) << "\" parses as "
        << StatusName(r.status) << " (" << r.message << "), consumed "
        << consumed << "; from " << context();
    check(&text, static_cast<const MetaRequest*>(nullptr));
  }
}

BackendOp OpFor(Command c) {
  switch (c) {
    case Command::kGet:
      return BackendOp::kGet;
    case Command::kGets:
      return BackendOp::kGets;
    case Command::kGat:
      return BackendOp::kGat;
    case Command::kGats:
      return BackendOp::kGats;
    case Command::kSet:
      return BackendOp::kSet;
    case Command::kAdd:
      return BackendOp::kAdd;
    case Command::kReplace:
      return BackendOp::kReplace;
    case Command::kAppend:
      return BackendOp::kAppend;
    case Command::kPrepend:
      return BackendOp::kPrepend;
    case Command::kCas:
      return BackendOp::kCas;
    case Command::kDelete:
      return BackendOp::kDelete;
    case Command::kIncr:
      return BackendOp::kIncr;
    case Command::kDecr:
      return BackendOp::kDecr;
    case Command::kTouch:
      return BackendOp::kTouch;
    case Command::kVersion:
      return BackendOp::kVersion;
    case Command::kFlushAll:
      return BackendOp::kFlushAll;
    default:
      return BackendOp::kMetaRaw;  // none: not relayed
  }
}

MetaSetMode MetaModeFor(Command c) {
  switch (c) {
    case Command::kAdd:
      return MetaSetMode::kAdd;
    case Command::kReplace:
      return MetaSetMode::kReplace;
    case Command::kAppend:
      return MetaSetMode::kAppend;
    case Command::kPrepend:
      return MetaSetMode::kPrepend;
    default:
      return MetaSetMode::kSet;
  }
}

// The proxy relays a parsed request one key at a time; what it sends must
// mean what the client asked, in both backend protocols.
void CheckRoundTrip(const Request& request,
                    absl::FunctionRef<std::string()> context) {
  const Command c = request.command;
  const BackendOp op = OpFor(c);
  if (op == BackendOp::kMetaRaw) return;
  // A multiget's keys are relayed alike: a few of them say as much as all
  // of them, at a fraction of the cost per fuzz iteration.
  constexpr size_t kMaxKeysRelayed = 4;
  std::vector<absl::string_view> keys(
      request.keys.begin(),
      request.keys.begin() + std::min(request.keys.size(), kMaxKeysRelayed));
  if (!backend::HasKey(op)) keys = {absl::string_view()};
  for (absl::string_view key : keys) {
    BackendRequest r;
    r.op = op;
    r.key = key;
    r.value = request.value;
    r.flags = request.flags;
    r.exptime = request.exptime;
    r.cas = request.cas_unique;
    r.delta = request.delta;
    // As ProxySession sends flush_all: a delay only when positive.
    r.delay = request.delay > 0 ? request.delay : -1;
    auto what = [&] {
      return absl::StrCat(context(), " key \"", absl::CEscape(key), "\"");
    };

    ParseBack(Encode(BackendProtocol::kText, r), what,
              [&](const Request* back, const MetaRequest* meta) {
                CHECK(back != nullptr) << "text composed as meta: " << what();
                CHECK(back->command == c) << what();
                if (backend::HasKey(op)) {
                  CHECK_EQ(back->keys.size(), 1u) << what();
                  CHECK_EQ(back->keys[0], key) << what();
                }
                CHECK_EQ(back->value, request.value) << what();
                CHECK_EQ(back->flags, request.flags) << what();
                CHECK_EQ(back->exptime, request.exptime) << what();
                CHECK_EQ(back->cas_unique, request.cas_unique) << what();
                CHECK_EQ(back->delta, request.delta) << what();
                // flush_all now: no delay, 0 or a negative one.
                CHECK_EQ(back->delay, std::max<int64_t>(request.delay, 0))
                    << what();
                CHECK(!back->noreply) << what();
              });

    const std::string meta_wire = Encode(BackendProtocol::kMeta, r);
    ParseBack(
        meta_wire, what, [&](const Request* text, const MetaRequest* back) {
          if (!backend::HasKey(op)) {
            CHECK(text != nullptr && text->command == c) << what();
            return;
          }
          CHECK(back != nullptr) << "\"" << absl::CEscape(meta_wire)
                                 << "\" is not a meta line: " << what();
          CHECK_EQ(back->key, key) << what();
          CHECK(!back->base64_key && !back->quiet) << what();
          switch (c) {
            case Command::kGet:
            case Command::kGets:
            case Command::kGat:
            case Command::kGats:
            case Command::kTouch: {
              CHECK(back->command == MetaCommand::kGet) << what();
              const bool touch = c != Command::kGet && c != Command::kGets;
              CHECK_EQ(back->has_ttl, touch) << what();
              if (touch) CHECK_EQ(back->ttl, request.exptime) << what();
              CHECK_EQ(back->return_value, c != Command::kTouch) << what();
              CHECK_EQ(back->Has('c'),
                       c == Command::kGets || c == Command::kGats)
                  << what();
              break;
            }
            case Command::kDelete:
              CHECK(back->command == MetaCommand::kDelete) << what();
              break;
            case Command::kIncr:
            case Command::kDecr:
              CHECK(back->command == MetaCommand::kArithmetic) << what();
              CHECK_EQ(back->delta, request.delta) << what();
              CHECK_EQ(back->decrement, c == Command::kDecr) << what();
              break;
            default:
              CHECK(IsStorage(c)) << what();
              CHECK(back->command == MetaCommand::kSet) << what();
              CHECK_EQ(back->value, request.value) << what();
              CHECK_EQ(back->client_flags, request.flags) << what();
              CHECK(back->has_ttl && back->ttl == request.exptime) << what();
              CHECK(back->set_mode == MetaModeFor(c)) << what();
              CHECK_EQ(back->has_cas, c == Command::kCas) << what();
              if (c == Command::kCas) {
                CHECK_EQ(back->cas, request.cas_unique) << what();
              }
              break;
          }
        });
  }
}

// `round_trip`: also relay every parsed request through the codec (only
// in the whole-input feeding: a request's relay does not depend on how it
// was cut).
FeedStep TextStep(absl::string_view in, bool round_trip) {
  // Reused like the connection's scratch request: Clear() must reset it.
  static Request* const request = new Request();
  size_t consumed = 12345;  // ParseText must always set it
  const ParseResult r = ParseText(in, Options(), &consumed, request);
  CheckParse(in, r, consumed, *request);
  FeedStep step;
  switch (r.status) {
    case ParseStatus::kIncomplete:
      return step;
    case ParseStatus::kClose:
      step.complete = true;
      step.stop = true;
      step.outcome = "close";
      return step;
    case ParseStatus::kOk:
      if (round_trip) {
        CheckRoundTrip(*request,
                       [&] { return Describe(r, consumed, *request); });
      }
      break;
    default:
      break;
  }
  step.complete = true;
  step.consumed = consumed + r.swallow;
  step.outcome = Describe(r, consumed, *request);
  return step;
}

}  // namespace
}  // namespace memshard::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  using memshard::fuzz::TextStep;
  memshard::fuzz::CheckSameAtSplits(
      input, [](absl::string_view in) { return TextStep(in, true); },
      [](absl::string_view in) { return TextStep(in, false); });
  return 0;
}
