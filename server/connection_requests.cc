// Connection's request side: picking the protocol, parsing and answering
// one request at a time (text, meta, binary, the ascii auth handshake),
// retrievals answered in slices, and the look-ahead prefetch over pipelined
// requests. The state machine that reads, writes and closes is in
// connection.cc.

#include <algorithm>
#include <functional>

#include "absl/base/optimization.h"
#include "glog/logging.h"
#include "server/admin/request_latency.h"
#include "server/auth/ascii_auth.h"
#include "server/connection.h"
#include "server/connection_table.h"
#include "server/protocol/binary_parser.h"
#include "server/protocol/meta_parser.h"
#include "server/protocol/text_parser.h"

namespace memshard {
namespace {

// A multiget costs one request of the turn's budget per this many keys, so a
// turn answers at most kRequestBudget * kKeysPerRequest keys (1024, about a
// millisecond) however they are spread over requests.
constexpr size_t kKeysPerRequest = 16;

// Pipelined requests whose keys one look-ahead prefetches: about what one
// write of a pipelining client holds, and no more keys than
// CacheOrca::Prefetch takes.
constexpr size_t kLookAheadRequests = CacheOrca::kPrefetchKeys;

// in[consumed...], unchecked (substr's check costs on every request).
absl::string_view Rest(absl::string_view in, size_t consumed) {
  return absl::string_view(in.data() + consumed, in.size() - consumed);
}

bool IsRetrieval(Command command) {
  return command == Command::kGet || command == Command::kGets ||
         command == Command::kGat || command == Command::kGats;
}

// memcached lets these through before SASL authentication.
bool AllowedBeforeAuthentication(BinaryOpcode op) {
  return op == BinaryOpcode::kSaslListMechs || op == BinaryOpcode::kSaslAuth ||
         op == BinaryOpcode::kSaslStep || op == BinaryOpcode::kVersion;
}

LatencyFamily BinaryLatencyFamily(const BinaryRequest& request) {
  switch (request.op) {
    case BinaryOpcode::kGet:
    case BinaryOpcode::kGetK:
      return LatencyFamily::kGet;
    case BinaryOpcode::kSet:
    case BinaryOpcode::kAdd:
    case BinaryOpcode::kReplace:
    case BinaryOpcode::kAppend:
    case BinaryOpcode::kPrepend:
      return LatencyFamily::kSet;
    case BinaryOpcode::kDelete:
      return LatencyFamily::kDelete;
    case BinaryOpcode::kIncrement:
    case BinaryOpcode::kDecrement:
      return LatencyFamily::kIncrDecr;
    case BinaryOpcode::kTouch:
    case BinaryOpcode::kGat:
    case BinaryOpcode::kGatK:
      return LatencyFamily::kTouch;
    default:
      return LatencyFamily::kOther;
  }
}

}  // namespace

bool Connection::ProcessOne() {
  absl::string_view in = input().readable();
  if (in.empty()) return false;
  if (protocol_ == Protocol::kUnknown) {
    const ServerContext& context = table_->orca().context();
    if (static_cast<uint8_t>(in[0]) == kBinaryRequestMagic) {
      protocol_ = Protocol::kBinary;
      authenticated_ = context.sasl_auth == nullptr;
    } else {
      protocol_ = Protocol::kAscii;
      authenticated_ = context.ascii_auth == nullptr;
    }
  }
  if (protocol_ == Protocol::kBinary) return ProcessBinary(in);
  if (!authenticated_) return ProcessAsciiAuth(in);
  // A meta line's first token is two bytes starting with 'm': a line that
  // starts with neither 'm' nor a space cannot be one, so most requests
  // skip IsMetaLine's tokenizing of the whole line.
  if ((in[0] == 'm' || in[0] == ' ') && IsMetaLine(in)) return ProcessMeta(in);
  return ProcessText(in);
}

bool Connection::ProcessText(absl::string_view in) {
  Request& request = table_->scratch_request();
  size_t consumed = 0;
  ParseResult result =
      ParseText(in, table_->parser_options(), &consumed, &request);
  switch (result.status) {
    case ParseStatus::kOk: {
      CacheOrca::Outcome outcome = CacheOrca::Outcome::kContinue;
      if (ProxySession* session = this->session()) {
        const ProxySession::Outcome o =
            session->Execute(request, table_->unix_now());
        if (o == ProxySession::Outcome::kWaitIdle) {
          session_blocked_ = true;
          return false;
        }
        if (o == ProxySession::Outcome::kClose) {
          outcome = CacheOrca::Outcome::kClose;
        }
      } else {
        // One compare on the common path; many keys are the rare one.
        if (request.keys.size() > kKeysPerRequest &&
            IsRetrieval(request.command)) {
          return ProcessManyKeys(request, consumed);
        }
        // Depth 1 pays this compare alone.
        if (ABSL_PREDICT_FALSE(consumed < in.size())) {
          // "gat 10" alone is a retrieval of no keys (memcached: END).
          LookAhead(IsRetrieval(request.command) && !request.keys.empty()
                        ? request.keys[0]
                        : absl::string_view(),
                    Rest(in, consumed));
        }
        outcome =
            table_->orca().Execute(request, table_->unix_now(), &output());
      }
      RecordRequestLatency(table_->metrics(), request.command, table_->loop());
      input().Consume(consumed);
      if (outcome == CacheOrca::Outcome::kClose) {
        close_after_write_ = true;
        return false;
      }
      return true;
    }
    case ParseStatus::kIncomplete:
      // Grows as the bytes arrive, not for what was announced.
      input().Expect(result.need);
      return false;
    case ParseStatus::kError:
      if (WaitForSession()) return false;
      table_->metrics().Add(Counter::protocol_errors);
      if (!request.noreply) output().Append("ERROR\r\n");
      break;
    case ParseStatus::kClientError:
      if (WaitForSession()) return false;
      table_->metrics().Add(Counter::protocol_errors);
      AppendError("CLIENT_ERROR ", result.message, request.noreply);
      break;
    case ParseStatus::kServerError:
      if (WaitForSession()) return false;
      table_->metrics().Add(Counter::protocol_errors);
      // Bytes to swallow mean a value over --max_item_size, which memcached
      // counts as store_too_large.
      if (result.swallow > 0) {
        table_->metrics().Add(Counter::store_too_large);
        if (ProxySession* session = this->session()) {
          session->OnRefusedStore(request, table_->unix_now());
        } else {
          table_->orca().OnRefusedStore(request, table_->unix_now());
        }
      }
      AppendError("SERVER_ERROR ", result.message, request.noreply);
      swallow_ = result.swallow;
      break;
    case ParseStatus::kClose:
      if (WaitForSession()) return false;
      table_->metrics().Add(Counter::protocol_errors);
      if (!result.message.empty()) {
        output().Append(result.message);
        output().Append("\r\n");
      }
      close_after_write_ = true;
      return false;
  }
  input().Consume(consumed);
  return true;
}

bool Connection::ProcessMeta(absl::string_view in) {
  MetaRequest& request = table_->orca().meta_request();
  size_t consumed = 0;
  const ParseResult result =
      ParseMeta(in, table_->parser_options(), &consumed, &request);
  switch (result.status) {
    case ParseStatus::kOk: {
      if (ProxySession* session = this->session()) {
        if (session->Execute(request, in.substr(0, consumed),
                             table_->unix_now()) ==
            ProxySession::Outcome::kWaitIdle) {
          session_blocked_ = true;
          return false;
        }
      } else {
        if (ABSL_PREDICT_FALSE(consumed < in.size())) {
          LookAhead(request.command == MetaCommand::kGet ? request.key
                                                         : absl::string_view(),
                    Rest(in, consumed));
        }
        table_->orca().Execute(request, table_->unix_now(), &output());
      }
      RecordRequestLatency(table_->metrics(), LatencyFamily::kMeta,
                           table_->loop());
      input().Consume(consumed);
      return true;
    }
    case ParseStatus::kIncomplete:
      // Grows as the bytes arrive, not for what was announced.
      input().Expect(result.need);
      return false;
    case ParseStatus::kError:
      if (WaitForSession()) return false;
      table_->metrics().Add(Counter::protocol_errors);
      output().Append("ERROR\r\n");
      break;
    case ParseStatus::kClientError:
    case ParseStatus::kServerError:
      if (WaitForSession()) return false;
      // Meta errors are always answered (q hides only nominal replies); an
      // ms refused before its data block also discards the block.
      table_->metrics().Add(Counter::protocol_errors);
      AppendError(result.status == ParseStatus::kClientError ? "CLIENT_ERROR "
                                                             : "SERVER_ERROR ",
                  result.message, /*noreply=*/false);
      swallow_ = result.swallow;
      break;
    case ParseStatus::kClose:
      if (WaitForSession()) return false;
      table_->metrics().Add(Counter::protocol_errors);
      close_after_write_ = true;
      return false;
  }
  input().Consume(consumed);
  return true;
}

bool Connection::ProcessBinary(absl::string_view in) {
  BinaryRequest& request = table_->orca().binary_request();
  BinaryParserOptions options;
  options.max_value_size = table_->parser_options().max_value_size;
  size_t consumed = 0;
  const BinaryParseResult result =
      ParseBinary(in, options, &consumed, &request);
  switch (result.status) {
    case BinaryParseStatus::kOk: {
      if (!authenticated_ && !AllowedBeforeAuthentication(request.op)) {
        return RefuseUnauthenticated(request, consumed);
      }
      CacheOrca::Outcome outcome = CacheOrca::Outcome::kContinue;
      if (ProxySession* session = this->session()) {
        const ProxySession::Outcome o =
            session->Execute(request, &authenticated_, table_->unix_now());
        if (o == ProxySession::Outcome::kWaitIdle) {
          session_blocked_ = true;
          return false;
        }
        if (o == ProxySession::Outcome::kClose) {
          outcome = CacheOrca::Outcome::kClose;
        }
      } else {
        if (ABSL_PREDICT_FALSE(consumed < in.size())) {
          LookAhead(IsBinaryGet(request.op) ? request.key : absl::string_view(),
                    Rest(in, consumed));
        }
        outcome = table_->orca().Execute(request, &authenticated_,
                                         table_->unix_now(), &output());
      }
      RecordRequestLatency(table_->metrics(), BinaryLatencyFamily(request),
                           table_->loop());
      // Only now: consuming may return the buffer `request` points into.
      input().Consume(consumed);
      if (outcome == CacheOrca::Outcome::kClose) {
        close_after_write_ = true;
        return false;
      }
      return true;
    }
    case BinaryParseStatus::kIncomplete:
      // Refused as soon as the header, extras and key are in, like
      // memcached's dispatch_bin_command: an unauthenticated client never
      // makes us wait for, or hold, a value.
      if (!authenticated_ && result.prefix != 0 &&
          !AllowedBeforeAuthentication(request.op)) {
        if (in.size() < result.prefix) return false;  // <= 270 bytes away
        return RefuseUnauthenticated(request, in.size());
      }
      // Grows as the bytes arrive, not for what was announced.
      input().Expect(result.need);
      return false;
    case BinaryParseStatus::kError:
      if (WaitForSession()) return false;
      table_->metrics().Add(Counter::protocol_errors);
      CacheOrca::AppendBinaryError(request, result.error, &output());
      input().Consume(consumed);
      swallow_ = result.swallow;
      if (result.close) {
        close_after_write_ = true;
        return false;
      }
      return true;
    case BinaryParseStatus::kClose:
      if (WaitForSession()) return false;
      // Bad magic: framing is lost, nothing sensible to answer.
      table_->metrics().Add(Counter::protocol_errors);
      close_after_write_ = true;
      return false;
  }
  return false;
}

bool Connection::RefuseUnauthenticated(const BinaryRequest& request,
                                       size_t consumed) {
  if (WaitForSession()) return false;
  // memcached answers and closes.
  table_->metrics().Add(Counter::protocol_errors);
  CacheOrca::AppendBinaryError(request, BinaryStatus::kAuthError, &output());
  input().Consume(consumed);
  close_after_write_ = true;
  return false;
}

bool Connection::ProcessManyKeys(Request& request, size_t consumed) {
  const size_t keys = request.keys.size();
  // StepProcess charges one request after we return true.
  if (keys <= static_cast<size_t>(budget_) * kKeysPerRequest) {
    table_->orca().Execute(request, table_->unix_now(), &output());
    RecordRequestLatency(table_->metrics(), request.command, table_->loop());
    input().Consume(consumed);
    budget_ -= static_cast<int16_t>(keys / kKeysPerRequest - 1);
    return true;
  }
  // More than the turn has left: a slice now, the rest on later turns. The
  // replies composed so far in the worker's shared chain become ours first,
  // so they stay ahead of the slices. The input moves to io_ at the end of
  // StepProcess (TakeFrom keeps the bytes where the keys point).
  if (io_ == nullptr) own_io().output.TakeFrom(&table_->shared_output());
  io_->retrieval = std::make_unique<SlicedRetrieval>();
  SlicedRetrieval& retrieval = *io_->retrieval;
  // The worker's scratch request is parsed into again by the next request
  // (of any connection): this one's keys move here.
  std::swap(retrieval.request, request);
  retrieval.consumed = consumed;
  if (ContinueRetrieval()) return true;  // cannot happen: keys > budget
  more_requests_ = true;
  return false;
}

bool Connection::ContinueRetrieval() {
  SlicedRetrieval& retrieval = *io_->retrieval;
  const size_t keys = retrieval.request.keys.size();
  DCHECK_GT(budget_, 0);
  const size_t count = std::min(keys - retrieval.next,
                                static_cast<size_t>(budget_) * kKeysPerRequest);
  table_->orca().RetrieveSlice(retrieval.request, retrieval.next, count,
                               table_->unix_now(), &output());
  retrieval.next += count;
  budget_ -=
      static_cast<int16_t>((count + kKeysPerRequest - 1) / kKeysPerRequest);
  if (retrieval.next < keys) return false;
  RecordRequestLatency(table_->metrics(), retrieval.request.command,
                       table_->loop());
  const size_t consumed = retrieval.consumed;
  io_->retrieval.reset();
  input().Consume(consumed);
  return true;
}

void Connection::LookAhead(absl::string_view front_key,
                           absl::string_view next) {
  const char*& end = table_->lookahead_end();
  // Scanned already (the end is in this input, or null): prefetched when
  // the request before the scanned ones executed.
  if (std::less<const char*>()(next.data(), end)) return;
  // The request about to execute first: its misses overlap the others'
  // too.
  absl::string_view keys[CacheOrca::kPrefetchKeys];
  const size_t first = front_key.empty() ? 0 : 1;
  keys[0] = front_key;
  size_t count = 0;
  const size_t scanned =
      ScanKeys(next, kLookAheadRequests - first, keys + first, &count);
  // The request ending there scans again (nothing scanned: a storage
  // command or an incomplete request is next).
  end = next.data() + scanned;
  // The front key alone would only be prefetched just before its lookup.
  if (count == 0) return;
  table_->orca().Prefetch(absl::MakeConstSpan(keys, count + first));
}

void Connection::PrefetchKeys(absl::string_view input) {
  // Before authentication nothing is looked up; before the protocol is
  // picked, the bytes are not known to be requests of either.
  if (!authenticated_ || protocol_ == Protocol::kUnknown) return;
  absl::string_view keys[CacheOrca::kPrefetchKeys];
  size_t count = 0;
  ScanKeys(input, kLookAheadRequests, keys, &count);
  table_->PrefetchBuckets(keys, count);
}

size_t Connection::ScanKeys(absl::string_view input, size_t max_requests,
                            absl::string_view* keys, size_t* count) const {
  return protocol_ == Protocol::kBinary
             ? ScanBinaryRetrievalKeys(input, max_requests, keys, count)
             : ScanRetrievalKeys(input, max_requests, keys, max_requests,
                                 count);
}

bool Connection::ProcessAsciiAuth(absl::string_view in) {
  size_t consumed = 0;
  const AsciiAuthResult result =
      AsciiAuthStep(in, *table_->orca().context().ascii_auth, &consumed);
  switch (result.status) {
    case AsciiAuthStatus::kIncomplete:
      // Grows as the bytes arrive, not for what was announced.
      input().Expect(result.need);
      return false;
    case AsciiAuthStatus::kClose:
      close_after_write_ = true;
      return false;
    case AsciiAuthStatus::kReply:
      // Count answers to credentials, not refusals of other commands.
      if (result.authenticated) {
        table_->metrics().Add(Counter::auth_cmds);
      } else if (result.reply == "CLIENT_ERROR authentication failure") {
        table_->metrics().Add(Counter::auth_cmds);
        table_->metrics().Add(Counter::auth_errors);
      }
      output().Append(result.reply);
      output().Append("\r\n");
      input().Consume(consumed);
      if (result.authenticated) authenticated_ = true;
      return true;
  }
  return false;
}

// memcached stays silent even about errors when the line said noreply.
void Connection::AppendError(absl::string_view kind, absl::string_view message,
                             bool noreply) {
  if (noreply) return;
  output().Append(kind);
  output().Append(message);
  output().Append("\r\n");
}

void Connection::Swallow() {
  InputBuffer& in = input();
  size_t n = std::min<uint64_t>(swallow_, in.readable().size());
  in.Consume(n);
  swallow_ -= n;
}

// Returns false to wait for EPOLLOUT or for the next event.
}  // namespace memshard
