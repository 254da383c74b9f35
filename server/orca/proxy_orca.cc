// ProxyOrca and the session's call queue. The text protocol is in
// proxy_orca_text.cc, meta in proxy_orca_meta.cc, binary in
// proxy_orca_binary.cc.

#include "server/orca/proxy_orca.h"

#include <utility>

#include "glog/logging.h"

namespace memshard {
namespace {

using backend::BackendReply;
using backend::BackendRequest;
using backend::BackendStatus;

constexpr uint64_t kIndexMask =
    (uint64_t{1} << ProxySession::kTagIndexBits) - 1;

}  // namespace

absl::string_view BackendFailureMessage(BackendStatus status) {
  switch (status) {
    case BackendStatus::kTimeout:
      return "SERVER_ERROR backend timeout\r\n";
    case BackendStatus::kBusy:
      return "SERVER_ERROR backend busy\r\n";
    default:
      return "SERVER_ERROR backend unavailable\r\n";
  }
}

// --- ProxyOrca ---

ProxyOrca::ProxyOrca(ServerContext* context, Worker* worker,
                     WorkerMetrics* metrics, CacheOrca* local)
    : context_(context),
      metrics_(metrics),
      local_(local),
      l1l2_(context->options.mode == ServerOptions::Mode::kL1L2),
      fill_on_read_(context->options.l1_fill == ServerOptions::L1Fill::kRead) {
  CHECK(context->backend_stats != nullptr);
  pool_ = std::make_unique<backend::BackendPool>(
      &worker->loop(), &worker->pool(), context->options.backend,
      context->backend_addresses, context->backend_stats, worker->index());
  pool_->Start();
}

ProxyOrca::~ProxyOrca() = default;

backend::BackendProtocol ProxyOrca::backend_protocol() const {
  return context_->options.backend.protocol;
}

// --- ProxySession: the call queue ---

void ProxySession::Call::Reset() {
  protocol = Protocol::kText;
  command = Command::kNone;
  meta = MetaCommand::kNone;
  op = BinaryOpcode::kGet;
  opcode = 0;
  opaque = 0;
  quiet = false;
  silent = false;
  stage = 0;
  remaining = 0;
  done = false;
  window_begin = 0;
  window_end = 0;
  paused = false;
  bytes.clear();
  keys.clear();
  entries.clear();
  // A huge multiget's arrays are not kept for reuse.
  if (entries.capacity() > kRetrievalWindow) {
    std::vector<std::string>().swap(keys);
    std::vector<Entry>().swap(entries);
  }
  value.clear();
  flags = 0;
  exptime = 0;
  delta = 0;
  initial = 0;
  expiration = 0;
  now = 0;
}

void ProxySession::ReplyOut::Append(absl::string_view bytes) {
  if (chain_ != nullptr) {
    chain_->Append(bytes);
  } else {
    text_->append(bytes.data(), bytes.size());
  }
}

void ProxySession::ReplyOut::AppendItem(cache::ItemRef item,
                                        absl::string_view bytes) {
  if (chain_ != nullptr) {
    chain_->AppendItem(std::move(item), bytes);
  } else {
    text_->append(bytes.data(), bytes.size());
  }
}

ProxySession::ProxySession(ProxyOrca* orca, OutputChain* out,
                           Listener* listener, uint32_t affinity)
    : orca_(orca), out_(out), listener_(listener), affinity_(affinity) {}

ProxySession::~ProxySession() {
  if (!calls_.empty()) orca_->pool().Cancel(this);
}

bool ProxySession::CanAccept() const {
  if (calls_.empty()) return true;
  if (orca_->l1l2()) return false;
  return calls_.size() < kMaxPendingCalls &&
         keys_in_flight_ < kMaxKeysInFlight && !orca_->pool().crowded();
}

ProxySession::Call* ProxySession::NewCall(Protocol protocol) {
  std::unique_ptr<Call> call;
  if (free_calls_.empty()) {
    call = std::make_unique<Call>();
  } else {
    call = std::move(free_calls_.back());
    free_calls_.pop_back();
  }
  call->Reset();
  call->protocol = protocol;
  call->seq = next_seq_++;
  // Parked at the back until Submit() decides; Submit() takes it again.
  calls_.push_back(std::move(call));
  return calls_.back().get();
}

void ProxySession::Recycle(Call* call) {
  // Keep a few for reuse (their vectors keep their capacity).
  for (auto it = calls_.begin(); it != calls_.end(); ++it) {
    if (it->get() == call) {
      std::unique_ptr<Call> owned = std::move(*it);
      calls_.erase(it);
      if (free_calls_.size() < 16) free_calls_.push_back(std::move(owned));
      return;
    }
  }
}

ProxySession::Call* ProxySession::FindCall(uint64_t seq) {
  if (calls_.empty()) return nullptr;
  const uint64_t first = calls_.front()->seq;
  if (seq < first || seq - first >= calls_.size()) return nullptr;
  Call* call = calls_[seq - first].get();
  return call->seq == seq ? call : nullptr;
}

void ProxySession::Send(Call* call, uint32_t index,
                        const BackendRequest& request) {
  BackendStatus failure;
  const uint64_t tag = call->seq << kTagIndexBits | index;
  if (orca_->pool().Send(request, affinity_, this, tag, &failure)) {
    ++call->remaining;
    ++keys_in_flight_;
    return;
  }
  Entry& e = call->entries[index];
  e.status = failure;
  e.answered = true;
}

void ProxySession::Broadcast(Call* call, const BackendRequest& request) {
  backend::BackendPool& pool = orca_->pool();
  call->entries.resize(static_cast<size_t>(pool.size()));
  for (int i = 0; i < pool.size(); ++i) {
    Entry& e = call->entries[i];
    if (pool.backend(i).ejected()) {
      // Out of the ring: nothing of ours lives there.
      e.status = BackendStatus::kOk;
      e.answered = true;
      continue;
    }
    BackendStatus failure;
    const uint64_t tag = call->seq << kTagIndexBits | static_cast<uint64_t>(i);
    if (pool.SendTo(i, request, affinity_, this, tag, &failure)) {
      ++call->remaining;
      ++keys_in_flight_;
    } else {
      e.status = failure;
      e.answered = true;
    }
  }
}

void ProxySession::Record(Call* call, uint32_t index,
                          const BackendReply& reply) {
  Entry& e = call->entries[index];
  e.status = reply.status;
  e.value.assign(reply.value.data(), reply.value.size());
  e.flags = reply.flags;
  e.cas = reply.cas;
  e.ttl = reply.ttl;
  e.answered = true;
}

void ProxySession::Submit(Call* call) {
  DCHECK(calls_.back().get() == call);
  if (IsRetrieval(*call)) {
    if (call->remaining == 0) AdvanceRetrieval(call);
    return;
  }
  if (call->remaining == 0) {
    // Multi-step calls may send more here.
    if (call->protocol == Protocol::kText) {
      TextAfterL2(call);
    } else if (call->protocol == Protocol::kBinary) {
      BinaryAfterReply(call);
    }
  }
  if (call->remaining > 0) return;  // stays queued
  if (calls_.size() == 1) {
    // Nothing ahead of it: straight into the connection's output.
    Compose(call, ReplyOut(out_));
    Recycle(call);
    return;
  }
  Compose(call, ReplyOut(&call->bytes));
  call->done = true;
}

void ProxySession::OnBackendReply(uint64_t tag, const BackendReply& reply) {
  Call* call = FindCall(tag >> kTagIndexBits);
  if (call == nullptr || call->done) {
    DLOG(FATAL) << "reply for no call";
    return;
  }
  Record(call, static_cast<uint32_t>(tag & kIndexMask), reply);
  DCHECK_GT(call->remaining, 0u);
  DCHECK_GT(keys_in_flight_, 0u);
  --keys_in_flight_;
  if (--call->remaining > 0) return;
  if (IsRetrieval(*call)) {
    // Last: the connection may go on, close, and destroy this session.
    if (AdvanceRetrieval(call) && !executing_) listener_->OnProxyReplies();
    return;
  }
  if (call->protocol == Protocol::kText) {
    TextAfterL2(call);
  } else if (call->protocol == Protocol::kBinary) {
    BinaryAfterReply(call);
  }
  if (call->remaining > 0) return;
  Finish(call);
}

void ProxySession::Finish(Call* call) {
  if (calls_.front().get() != call) {
    Compose(call, ReplyOut(&call->bytes));
    call->done = true;
    return;
  }
  Compose(call, ReplyOut(out_));
  Recycle(call);
  WriteReady();
  // Last: the connection may go on, close, and destroy this session.
  if (!executing_) listener_->OnProxyReplies();
}

bool ProxySession::AdvanceRetrieval(Call* call) {
  bool composed = false;
  for (;;) {
    DCHECK_EQ(call->remaining, 0u);
    TextAfterL2(call);  // l1l2: this window's L1 fills
    const bool front = calls_.front().get() == call;
    const bool ended = front ? ComposeWindow(call, ReplyOut(out_))
                             : ComposeWindow(call, ReplyOut(&call->bytes));
    composed |= front;
    if (ended) {
      if (front) {
        Recycle(call);
        WriteReady();
      } else {
        call->done = true;
      }
      return composed;
    }
    // Behind other replies, one window waits in `bytes`; at the head, the
    // next waits while the client has not taken enough of the output.
    if (!front || out_->pending_bytes() >= kStreamHighWatermark) {
      call->paused = true;
      return composed;
    }
    SendWindow(call);
    if (call->remaining > 0) return composed;
  }
}

bool ProxySession::OnOutputDrained() {
  if (calls_.empty() || !calls_.front()->paused) return false;
  Call* call = calls_.front().get();
  bool composed = false;
  if (!call->bytes.empty()) {
    // Composed while it was not at the head.
    out_->Append(call->bytes);
    call->bytes.clear();
    composed = true;
  }
  if (out_->pending_bytes() >= kStreamHighWatermark) return composed;
  call->paused = false;
  SendWindow(call);
  if (call->remaining > 0) return composed;
  return AdvanceRetrieval(call) || composed;
}

bool ProxySession::WriteReady() {
  bool wrote = false;
  while (!calls_.empty() && calls_.front()->done) {
    Call* call = calls_.front().get();
    out_->Append(call->bytes);
    Recycle(call);
    wrote = true;
  }
  return wrote;
}

void ProxySession::Compose(Call* call, ReplyOut out) {
  switch (call->protocol) {
    case Protocol::kText:
      ComposeText(call, out);
      break;
    case Protocol::kMeta:
      ComposeMeta(call, out);
      break;
    case Protocol::kBinary:
      ComposeBinary(call, out);
      break;
  }
}

ProxySession::Outcome ProxySession::Execute(const Request& request,
                                            int64_t now) {
  executing_ = true;
  Outcome outcome = ExecuteText(request, now);
  executing_ = false;
  return outcome;
}

ProxySession::Outcome ProxySession::Execute(const MetaRequest& request,
                                            absl::string_view raw,
                                            int64_t now) {
  executing_ = true;
  Outcome outcome = ExecuteMeta(request, raw, now);
  executing_ = false;
  return outcome;
}

ProxySession::Outcome ProxySession::Execute(const BinaryRequest& request,
                                            bool* authenticated, int64_t now) {
  executing_ = true;
  Outcome outcome = ExecuteBinary(request, authenticated, now);
  executing_ = false;
  return outcome;
}

}  // namespace memshard
