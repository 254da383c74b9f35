#include "server/backend/backend.h"

#include <algorithm>

#include "glog/logging.h"
#include "server/backend/backend_pool.h"

namespace memshard {
namespace backend {
namespace {

// The probe's tag; the backend is the only sink it answers.
constexpr uint64_t kProbeTag = 0;

}  // namespace

Backend::Backend(BackendPool* pool, int index, const BackendAddress& address,
                 const ResolvedAddress& resolved, BackendStats* stats)
    : pool_(pool),
      index_(index),
      address_(address),
      resolved_(resolved),
      stats_(stats) {
  const int n = std::max(1, pool->options().connections);
  slots_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    slots_[i].connection = std::make_unique<BackendConnection>(this, i);
    slots_[i].backoff = pool->options().min_backoff;
  }
  PublishState();
}

Backend::~Backend() {
  for (Slot& slot : slots_) {
    if (slot.retry_timer != 0) loop().CancelTimer(slot.retry_timer);
  }
  // Connections close without answering (their destructors).
  slots_.clear();
}

EventLoop& Backend::loop() { return pool_->loop(); }
BufferPool& Backend::buffers() { return pool_->buffers(); }
const BackendOptions& Backend::options() const { return pool_->options(); }
void Backend::MarkDirty(BackendConnection* connection) {
  pool_->MarkDirty(connection);
}
size_t Backend::crowd_threshold() const { return pool_->crowd_threshold(); }
void Backend::NoteCrowded(int delta) { pool_->NoteCrowded(delta); }

void Backend::Start() {
  for (Slot& slot : slots_) {
    if (ejected_) return;  // a connect failed at once, often enough
    if (slot.connection->state() == BackendConnection::State::kDisconnected &&
        slot.retry_timer == 0) {
      slot.connection->Connect();
    }
  }
}

BackendState Backend::state() const {
  if (ejected_) return BackendState::kEjected;
  if (consecutive_failures_ > 0) return BackendState::kDown;
  return BackendState::kUp;
}

void Backend::PublishState() { stats_->SetState(state()); }

bool Backend::Submit(const BackendRequest& request, uint32_t affinity,
                     ReplySink* sink, uint64_t tag, BackendStatus* failure) {
  BackendConnection& connection = *slots_[affinity % slots_.size()].connection;
  return connection.Submit(request, sink, tag, failure);
}

void Backend::Cancel(const ReplySink* sink) {
  for (Slot& slot : slots_) slot.connection->Cancel(sink);
}

void Backend::OnConnected(BackendConnection* connection) {
  // After failures, or while ejected, the server must prove it answers.
  if (ejected_ || consecutive_failures_ > 0) Probe(connection);
}

void Backend::Probe(BackendConnection* connection) {
  BackendRequest version;
  version.op = BackendOp::kVersion;
  BackendStatus failure;
  // Tagged with the connection, so a bad answer closes the right one.
  connection->Submit(version, this,
                     kProbeTag + static_cast<uint64_t>(connection->index()),
                     &failure);
}

void Backend::OnBackendReply(uint64_t tag, const BackendReply& reply) {
  const int i = static_cast<int>(tag - kProbeTag);
  if (reply.status != BackendStatus::kVersion) {
    // A local failure: the connection's own failure path counts it. An
    // error from the server: close and try again later (the connection
    // notices it was closed under its feet).
    if (!IsLocalFailure(reply.status)) {
      BackendConnection* connection = slots_[i].connection.get();
      connection->Close(BackendStatus::kUnavailable);
      OnConnectionFailed(connection, BackendStatus::kUnavailable);
    }
    return;
  }
  consecutive_failures_ = 0;
  if (ejected_) {
    Restore();
  } else {
    PublishState();
  }
}

void Backend::OnReply(BackendConnection* connection,
                      absl::Duration round_trip) {
  stats_->RecordRoundTrip(round_trip);
  slots_[connection->index()].backoff = options().min_backoff;
  // While ejected only the probe's answer counts (OnBackendReply).
  if (consecutive_failures_ > 0 && !ejected_) {
    consecutive_failures_ = 0;
    PublishState();
  }
}

void Backend::OnConnectionFailed(BackendConnection* connection,
                                 BackendStatus reason) {
  const int i = connection->index();
  ++consecutive_failures_;
  const BackendOptions& o = options();
  if (ejected_) {
    // A failed probe: try again in a while.
    ScheduleReconnect(i, o.retry_interval);
    return;
  }
  if (o.failure == FailurePolicy::kEject &&
      consecutive_failures_ >= o.failure_limit) {
    Eject();
    return;
  }
  Slot& slot = slots_[i];
  ScheduleReconnect(i, slot.backoff);
  slot.backoff = std::min(slot.backoff * 2, o.retry_interval);
  PublishState();
}

void Backend::ScheduleReconnect(int i, absl::Duration delay) {
  Slot& slot = slots_[i];
  if (slot.retry_timer != 0) loop().CancelTimer(slot.retry_timer);
  slot.retry_timer = loop().AddTimer(delay, [this, i] {
    slots_[i].retry_timer = 0;
    BackendConnection& connection = *slots_[i].connection;
    if (connection.state() == BackendConnection::State::kDisconnected) {
      connection.Connect();
    }
  });
}

void Backend::Eject() {
  LOG(WARNING) << "backend " << address_.ToString() << " ejected after "
               << consecutive_failures_ << " consecutive failures";
  ejected_ = true;
  stats_->AddEjection();
  PublishState();
  // First out of the ring, so sinks answered below that send again go to
  // the backends that now own their keys.
  pool_->RebuildRing();
  for (Slot& slot : slots_) {
    if (slot.retry_timer != 0) {
      loop().CancelTimer(slot.retry_timer);
      slot.retry_timer = 0;
    }
    // Answers the requests in flight; reports nothing back here.
    slot.connection->Close(BackendStatus::kUnavailable);
  }
  // One connection probes; the rest wait for the restore.
  ScheduleReconnect(0, options().retry_interval);
}

void Backend::Restore() {
  LOG(INFO) << "backend " << address_.ToString() << " answers again";
  ejected_ = false;
  for (Slot& slot : slots_) slot.backoff = options().min_backoff;
  PublishState();
  pool_->RebuildRing();
  for (Slot& slot : slots_) {
    if (ejected_) return;  // connects failed at once, often enough
    if (slot.connection->state() == BackendConnection::State::kDisconnected &&
        slot.retry_timer == 0) {
      slot.connection->Connect();
    }
  }
}

}  // namespace backend
}  // namespace memshard
