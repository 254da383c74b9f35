#include "server/backend/backend_pool.h"

#include <algorithm>
#include <utility>

#include "glog/logging.h"

namespace memshard {
namespace backend {

BackendPool::BackendPool(EventLoop* loop, BufferPool* buffers,
                         BackendOptions options,
                         const std::vector<ResolvedAddress>& resolved,
                         BackendStatsRegistry* stats, int worker)
    : loop_(loop),
      buffers_(buffers),
      options_(std::move(options)),
      crowd_threshold_(std::max<size_t>(
          1, options_.max_in_flight - options_.max_in_flight / 4)),
      self_(std::make_shared<BackendPool*>(this)) {
  CHECK_EQ(resolved.size(), options_.backends.size());
  CHECK_EQ(stats->backends(), static_cast<int>(options_.backends.size()));
  for (size_t i = 0; i < options_.backends.size(); ++i) {
    const BackendAddress& a = options_.backends[i];
    nodes_.push_back(KetamaNode{a.host, a.port, a.weight});
    backends_.push_back(
        std::make_unique<Backend>(this, static_cast<int>(i), a, resolved[i],
                                  &stats->at(worker, static_cast<int>(i))));
  }
  ring_ = KetamaRing(nodes_);
  std::weak_ptr<BackendPool*> weak = self_;
  loop_->AddEpochHook([weak] {
    std::shared_ptr<BackendPool*> self = weak.lock();
    if (self == nullptr) return;
    BackendPool* pool = *self;
    pool->flushed_epoch_ = pool->loop_->epoch();
    pool->FlushDirty();
  });
}

BackendPool::~BackendPool() {
  self_.reset();  // the epoch hook and RunSoon tasks become no-ops
  dirty_.clear();
  backends_.clear();
}

void BackendPool::Start() {
  for (auto& backend : backends_) backend->Start();
}

bool BackendPool::Send(const BackendRequest& request, uint32_t affinity,
                       ReplySink* sink, uint64_t tag, BackendStatus* failure) {
  int i = ring_.NodeFor(request.key);
  if (i < 0) {
    *failure = BackendStatus::kUnavailable;
    return false;
  }
  return backends_[i]->Submit(request, affinity, sink, tag, failure);
}

bool BackendPool::SendTo(int backend, const BackendRequest& request,
                         uint32_t affinity, ReplySink* sink, uint64_t tag,
                         BackendStatus* failure) {
  if (backend < 0 || backend >= size() || backends_[backend]->ejected()) {
    *failure = BackendStatus::kUnavailable;
    return false;
  }
  return backends_[backend]->Submit(request, affinity, sink, tag, failure);
}

void BackendPool::Cancel(const ReplySink* sink) {
  for (auto& backend : backends_) backend->Cancel(sink);
}

void BackendPool::MarkDirty(BackendConnection* connection) {
  if (connection->dirty) return;
  connection->dirty = true;
  dirty_.push_back(connection);
  // Marked after this iteration's flush already ran: flush early in the
  // next iteration (RunSoon also keeps the loop from blocking meanwhile).
  if (flushed_epoch_ == loop_->epoch() && !flush_soon_) {
    flush_soon_ = true;
    std::weak_ptr<BackendPool*> weak = self_;
    loop_->RunSoon([weak] {
      std::shared_ptr<BackendPool*> self = weak.lock();
      if (self == nullptr) return;
      (*self)->flush_soon_ = false;
      (*self)->FlushDirty();
    });
  }
}

void BackendPool::FlushDirty() {
  // Flush() may fail a connection, whose sinks may send more (marking
  // connections dirty again): take the list first.
  std::vector<BackendConnection*> dirty;
  dirty.swap(dirty_);
  for (BackendConnection* connection : dirty) {
    connection->dirty = false;
    connection->Flush();
  }
  if (dirty_.empty() && dirty.capacity() > dirty_.capacity()) {
    dirty_.swap(dirty);  // keep the capacity
    dirty_.clear();
  }
}

void BackendPool::RebuildRing() {
  std::vector<bool> live(backends_.size());
  for (size_t i = 0; i < backends_.size(); ++i) {
    live[i] = !backends_[i]->ejected();
  }
  ring_ = KetamaRing(nodes_, live);
}

bool RetrievalCollector::Set(size_t index, const BackendReply& reply) {
  Entry& e = entries_[index];
  DCHECK(!e.done) << "key " << index << " answered twice";
  e.done = true;
  e.status = reply.status;
  e.value.assign(reply.value.data(), reply.value.size());
  e.flags = reply.flags;
  e.cas = reply.cas;
  e.ttl = reply.ttl;
  return --remaining_ == 0;
}

bool RetrievalCollector::SetFailure(size_t index, BackendStatus status) {
  BackendReply reply;
  reply.status = status;
  return Set(index, reply);
}

}  // namespace backend
}  // namespace memshard
