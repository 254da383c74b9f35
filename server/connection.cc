#include "server/connection.h"

#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>

#include "absl/base/optimization.h"
#include "glog/logging.h"
#include "server/admin/request_latency.h"
#include "server/auth/ascii_auth.h"
#include "server/connection_table.h"
#include "server/protocol/binary_parser.h"
#include "server/protocol/meta_parser.h"
#include "server/protocol/text_parser.h"

namespace memshard {
namespace {

// read(2) without glibc's cancellation-point wrapper (two atomic
// read-modify-writes per call); workers are never cancelled.
ssize_t ReadNoCancel(int fd, char* buffer, size_t size) {
  return syscall(SYS_read, fd, buffer, size);
}

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

bool IsBinaryGet(BinaryOpcode op) {
  return op == BinaryOpcode::kGet || op == BinaryOpcode::kGetQ ||
         op == BinaryOpcode::kGetK || op == BinaryOpcode::kGetKQ;
}

// ScanRetrievalKeys for the binary protocol: the keys of the gets (get,
// getq, getk, getkq) among the complete packets at the front of `input`,
// at most `max_requests` of them; returns the bytes scanned. Unchecked
// (ParseBinary judges each packet when it executes): a hint.
size_t ScanBinaryRetrievalKeys(absl::string_view input, size_t max_requests,
                               absl::string_view* keys, size_t* key_count) {
  *key_count = 0;
  size_t pos = 0;
  for (size_t n = 0; n < max_requests; ++n) {
    if (input.size() - pos < kBinaryHeaderSize) break;
    const auto* header = reinterpret_cast<const uint8_t*>(input.data() + pos);
    if (header[0] != kBinaryRequestMagic) break;
    const size_t key_length = size_t{header[2]} << 8 | header[3];
    const size_t extras_length = header[4];
    const size_t body_length = size_t{header[8]} << 24 |
                               size_t{header[9]} << 16 |
                               size_t{header[10]} << 8 | header[11];
    if (input.size() - pos - kBinaryHeaderSize < body_length) break;
    if (IsBinaryGet(static_cast<BinaryOpcode>(header[1])) && key_length > 0 &&
        extras_length + key_length <= body_length) {
      keys[(*key_count)++] =
          input.substr(pos + kBinaryHeaderSize + extras_length, key_length);
    }
    pos += kBinaryHeaderSize + body_length;
  }
  return pos;
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

struct Connection::ProxyLink final : ProxySession::Listener {
  explicit ProxyLink(Connection* connection) : owner(connection) {}
  void OnProxyReplies() override { owner->OnProxyReplies(); }
  Connection* const owner;
  std::unique_ptr<ProxySession> session;
};

Connection::Connection(int fd, ConnectionTable* table)
    : table_(table),
      fd_(fd),
      // Registering with epoll reports any bytes already there (and every
      // later arrival raises an edge): no read until EPOLLIN says so.
      readable_(false),
      peer_hup_(false),
      peer_closed_(false),
      close_after_write_(false),
      draining_(false),
      write_shut_(false),
      more_requests_(false),
      session_blocked_(false) {
  record.SetLastActive(table->loop().now());
  if (table->proxy() != nullptr) {
    // The session writes replies later, from the event loop: it needs an
    // output chain of this connection's own for good.
    io_ = std::make_unique<IoState>(&table->pool());
    proxy_ = std::make_unique<ProxyLink>(this);
    // The fd as affinity: this connection's requests to a backend share
    // one backend connection, so they stay in order.
    proxy_->session = std::make_unique<ProxySession>(
        table->proxy(), &io_->output, proxy_.get(), static_cast<uint32_t>(fd));
  }
}

Connection::~Connection() {
  DCHECK(state_ == State::kClosed) << "connection destroyed while open";
}

ProxySession* Connection::session() const {
  return proxy_ != nullptr ? proxy_->session.get() : nullptr;
}

bool Connection::has_input() const {
  return io_ != nullptr && !io_->input.empty();
}

bool Connection::has_output() const {
  return io_ != nullptr && !io_->output.empty();
}

InputBuffer& Connection::input() {
  // Proxy connections always read into their own buffer: their replies
  // arrive from backends between turns, and nothing of theirs may sit in
  // the shared one then.
  if (io_ != nullptr && (proxy_ != nullptr || !io_->input.empty())) {
    return io_->input;
  }
  return table_->shared_input();
}

OutputChain& Connection::output() {
  return io_ != nullptr ? io_->output : table_->shared_output();
}

Connection::IoState& Connection::own_io() {
  if (io_ == nullptr) io_ = std::make_unique<IoState>(&table_->pool());
  return *io_;
}

void Connection::MaybeDropIo() {
  if (io_ != nullptr && proxy_ == nullptr && io_->input.empty() &&
      io_->output.empty() && io_->retrieval == nullptr) {
    io_.reset();
  }
}

void Connection::OnEvents(uint32_t events) {
  if (state_ == State::kClosed) return;
  if (events & EPOLLERR) {
    state_ = State::kClosing;
  } else if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) {
    readable_ = true;
    // The FIN may have come with the data: a short read then does not mean
    // drained, so read on until read() returns 0.
    if (events & (EPOLLHUP | EPOLLRDHUP)) peer_hup_ = true;
  }
  budget_ = ConnectionTable::kRequestBudget;
  Drive();
  PublishState();
}

void Connection::Resume() {
  if (state_ == State::kClosed) return;
  budget_ = ConnectionTable::kRequestBudget;
  Drive();
  PublishState();
}

void Connection::PublishState() {
  ConnectionState s = ConnectionState::kWaiting;
  if (state_ == State::kClosing || state_ == State::kClosed) {
    s = ConnectionState::kClosing;
  } else if (has_output()) {
    s = ConnectionState::kWriting;
  } else if (has_input()) {
    s = ConnectionState::kReading;
  }
  record.SetState(s);
}

void Connection::Close() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosing;
  Drive();
}

void Connection::Drive() {
  for (;;) {
    switch (state_) {
      case State::kReading:
        if (!StepRead()) return;
        break;
      case State::kProcessing:
        StepProcess();
        break;
      case State::kWriting:
        if (!StepWrite()) return;
        break;
      case State::kClosing:
        StepClose();
        return;
      case State::kClosed:
        return;
    }
  }
}

// Reads one buffer's worth. Returns false to wait for the next event.
bool Connection::StepRead() {
  if (session_blocked_) return false;  // OnProxyReplies() resumes
  // Reading could move the input a sliced retrieval's keys point into;
  // more_requests_ keeps us processing until it is done.
  DCHECK(io_ == nullptr || io_->retrieval == nullptr);
  if (!readable_) {
    if (peer_closed_) state_ = State::kClosing;
    return peer_closed_;
  }
  // An incomplete request continues in the connection's own buffer; else
  // the worker's shared one, which is empty between turns.
  InputBuffer& in = input();
  absl::Span<char> space = in.WritableSpace();
  ssize_t n = ReadNoCancel(fd_, space.data(), space.size());
  if (n > 0) {
    in.Commit(static_cast<size_t>(n));
    // Less than asked: the socket is drained (the next arrival raises a
    // new edge).
    if (static_cast<size_t>(n) < space.size() && !peer_hup_) {
      readable_ = false;
    }
    table_->metrics().Add(Counter::bytes_read, n);
    record.SetLastActiveNanos(table_->loop().now_unix_ns());
    table_->Touch(this);
    state_ = State::kProcessing;
    return true;
  }
  if (n == 0) {
    // Peer closed (or half-closed): answer what is complete, then close.
    readable_ = false;
    peer_closed_ = true;
    state_ = State::kProcessing;
    return true;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    readable_ = false;
    return false;
  }
  if (errno == EINTR) return true;
  state_ = State::kClosing;
  return true;
}

void Connection::StepProcess() {
  // Set again below if we stop with complete requests still buffered.
  more_requests_ = false;
  // Nothing of this turn's input has been looked ahead at yet.
  table_->lookahead_end() = nullptr;
  // A sliced retrieval goes first; nothing behind it runs before its END.
  if (io_ != nullptr && io_->retrieval != nullptr &&
      (budget_ <= 0 ||
       output().pending_bytes() >= ConnectionTable::kOutputHighWatermark ||
       !ContinueRetrieval())) {
    more_requests_ = true;
    state_ = State::kWriting;
    return;
  }
  for (;;) {
    if (swallow_ > 0) {
      Swallow();
      if (swallow_ > 0) break;
    }
    if (budget_ <= 0 ||
        output().pending_bytes() >= ConnectionTable::kOutputHighWatermark) {
      more_requests_ = !input().empty();
      break;
    }
    if (session() != nullptr && !input().empty() && !session()->CanAccept()) {
      session_blocked_ = true;
      break;
    }
    if (!ProcessOne()) break;
    --budget_;
  }
  // Bytes left in the worker's shared buffer (an incomplete request, or
  // requests beyond this turn's budget) become the connection's own; the
  // replies composed so far go with them, ahead of any later ones.
  InputBuffer& shared = table_->shared_input();
  if (!shared.empty()) {
    const bool had_io = io_ != nullptr;
    IoState& io = own_io();
    io.input.TakeFrom(&shared);
    if (!had_io) io.output.TakeFrom(&table_->shared_output());
  }
  state_ = State::kWriting;
}

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
          LookAhead(IsRetrieval(request.command) ? request.keys[0]
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
        table_->orca().OnRefusedStore(request, table_->unix_now());
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
      protocol_ == Protocol::kBinary
          ? ScanBinaryRetrievalKeys(next, kLookAheadRequests - first,
                                    keys + first, &count)
          : ScanRetrievalKeys(next, kLookAheadRequests - first, keys + first,
                              CacheOrca::kPrefetchKeys - first, &count);
  // The request ending there scans again (nothing scanned: a storage
  // command or an incomplete request is next).
  end = next.data() + scanned;
  // The front key alone would only be prefetched just before its lookup.
  if (count == 0) return;
  table_->orca().Prefetch(absl::MakeConstSpan(keys, count + first));
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
bool Connection::StepWrite() {
  OutputChain& out = output();
  if (!out.empty()) {
    size_t written = 0;
    OutputChain::FlushResult result = out.Flush(fd_, &written);
    table_->metrics().Add(Counter::bytes_written, written);
    if (result == OutputChain::FlushResult::kError) {
      if (&out == &table_->shared_output()) out.Clear();
      state_ = State::kClosing;
      return true;
    }
    if (result == OutputChain::FlushResult::kBlocked) {
      // What the socket did not take becomes the connection's own.
      if (&out == &table_->shared_output()) own_io().output.TakeFrom(&out);
      // EPOLLOUT is armed (edge-triggered) from registration; reading stays
      // paused until the client takes its replies.
      return false;
    }
  }
  MaybeDropIo();
  // Replies still due from backends: no closing or lingering before they
  // are written, and no reading while the session cannot take more.
  // OnProxyReplies() drives us again.
  const bool replies_due = session() != nullptr && session()->pending() > 0;
  if (close_after_write_) {
    if (replies_due) return false;
    state_ = State::kClosing;
    return true;
  }
  if (session_blocked_) {
    state_ = State::kReading;
    return false;
  }
  if (draining_ && !more_requests_) {
    if (replies_due) return false;
    return StepLinger();
  }
  if (more_requests_ || readable_) {
    state_ = more_requests_ ? State::kProcessing : State::kReading;
    if (budget_ > 0) return true;
    table_->ScheduleResume(this);
    return false;
  }
  if (peer_closed_) {
    if (replies_due) return false;
    // Whatever is left is a request that can never complete.
    state_ = State::kClosing;
    return true;
  }
  state_ = State::kReading;
  return false;
}

bool Connection::WaitForSession() {
  if (session() == nullptr || session()->pending() == 0) return false;
  session_blocked_ = true;
  return true;
}

void Connection::OnProxyReplies() {
  if (state_ == State::kClosing || state_ == State::kClosed) return;
  // Whatever stopped processing may be over: StepProcess checks again.
  if (session_blocked_) {
    session_blocked_ = false;
    more_requests_ = has_input();
  }
  // At rest a connection is reading (idle) or writing (blocked on EPOLLOUT,
  // or waiting for replies before closing); either way, write now.
  state_ = State::kWriting;
  budget_ = ConnectionTable::kRequestBudget;
  Drive();
  PublishState();
}

void Connection::StepClose() {
  // Replies still due are dropped, while the backend pool still exists.
  proxy_.reset();
  table_->loop().RemoveBeforeClose(fd_);  // close() unregisters
  close(fd_);
  fd_ = -1;
  io_.reset();
  state_ = State::kClosed;
  table_->OnClosed(this);
}

void Connection::BeginDrain() {
  if (state_ == State::kClosed || draining_) return;
  draining_ = true;
  // Waiting to read: answer what is buffered now. Other states get there
  // through their pending EPOLLOUT or resume.
  if (state_ == State::kReading) {
    state_ = State::kProcessing;
    budget_ = ConnectionTable::kRequestBudget;
    Drive();
    PublishState();
  }
}

// Returns false to wait for the next event or drain poll.
bool Connection::StepLinger() {
  if (!write_shut_) {
    write_shut_ = true;
    shutdown(fd_, SHUT_WR);
    // A partial request can never complete now.
    if (io_ != nullptr) io_->input.Release();
  }
  // Discard what the client still sends until it closes (read returns 0).
  // Bounded per turn, like requests, so a flood cannot hold the worker.
  char discard[4096];
  for (int i = 0; i < 16; ++i) {
    ssize_t n = read(fd_, discard, sizeof(discard));
    if (n > 0 || (n < 0 && errno == EINTR)) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The peer holds every reply and our FIN once nothing is
      // unacknowledged; closing cannot hurt it then, even if it never
      // closes its end.
      int unacked = 0;
      if (ioctl(fd_, SIOCOUTQ, &unacked) != 0 || unacked > 0) return false;
    }
    state_ = State::kClosing;  // EOF, error, or all acknowledged
    return true;
  }
  return false;  // more to discard: the next event or drain poll goes on
}

}  // namespace memshard
