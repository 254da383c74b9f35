#include "server/backend/backend_test_harness.h"

#include <utility>

#include "glog/logging.h"
#include "gtest/gtest.h"
#include "testing/notification.h"

namespace memshard {
namespace backend {

CollectingSink::CollectingSink(size_t n) : results_(n) {}

void CollectingSink::OnBackendReply(uint64_t tag, const BackendReply& reply) {
  std::lock_guard<std::mutex> lock(mu_);
  if (results_[tag].has_value()) {
    ++duplicates_;
    return;
  }
  Result r;
  r.status = reply.status;
  r.value = std::string(reply.value);
  r.flags = reply.flags;
  r.cas = reply.cas;
  r.ttl = reply.ttl;
  r.elapsed = absl::Now() - start_;
  results_[tag] = std::move(r);
  if (++answered_ == results_.size()) all_answered_.notify_all();
}

void CollectingSink::Refused(uint64_t tag, BackendStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  Result r;
  r.status = status;
  r.refused = true;
  r.elapsed = absl::Now() - start_;
  results_[tag] = std::move(r);
  if (++answered_ == results_.size()) all_answered_.notify_all();
}

bool CollectingSink::Wait(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return all_answered_.wait_for(
      lock, absl::ToChronoNanoseconds(timeout),
      [this] { return answered_ == results_.size(); });
}

std::vector<Result> CollectingSink::results() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Result> out;
  for (auto& r : results_) out.push_back(r.value_or(Result()));
  return out;
}

size_t CollectingSink::answered() {
  std::lock_guard<std::mutex> lock(mu_);
  return answered_;
}

int CollectingSink::duplicates() {
  std::lock_guard<std::mutex> lock(mu_);
  return duplicates_;
}

PoolHarness::PoolHarness(BackendOptions options)
    : options_(std::move(options)),
      stats_(std::make_unique<BackendStatsRegistry>(
          1, static_cast<int>(options_.backends.size()))),
      worker_(0, -1) {
  absl::StatusOr<std::vector<ResolvedAddress>> resolved =
      ResolveBackends(options_.backends);
  CHECK(resolved.ok()) << resolved.status();
  Notification ready;
  worker_.Start([&] {
    pool_ = std::make_unique<BackendPool>(&worker_.loop(), &worker_.pool(),
                                          options_, *resolved, stats_.get(), 0);
    pool_->Start();
    ready.Notify();
  });
  ready.WaitForNotification();
}

PoolHarness::~PoolHarness() {
  worker_.Stop();
  worker_.Join();
  pool_.reset();
  for (auto& sink : sinks_) EXPECT_EQ(sink->duplicates(), 0);
}

void PoolHarness::OnWorker(absl::AnyInvocable<void(BackendPool&)> fn) {
  Notification done;
  worker_.Post([&] {
    fn(*pool_);
    done.Notify();
  });
  done.WaitForNotification();
}

std::vector<Result> PoolHarness::Call(
    const std::vector<BackendRequest>& requests, uint32_t affinity,
    absl::Duration timeout) {
  sinks_.push_back(std::make_unique<CollectingSink>(requests.size()));
  CollectingSink* sink = sinks_.back().get();
  OnWorker([&](BackendPool& pool) {
    for (size_t i = 0; i < requests.size(); ++i) {
      BackendStatus failure;
      bool sent =
          HasKey(requests[i].op)
              ? pool.Send(requests[i], affinity, sink, i, &failure)
              : pool.SendTo(0, requests[i], affinity, sink, i, &failure);
      if (!sent) sink->Refused(i, failure);
    }
  });
  EXPECT_TRUE(sink->Wait(timeout))
      << sink->answered() << " of " << requests.size() << " answered";
  return sink->results();
}

Result PoolHarness::Call(const BackendRequest& request, uint32_t affinity,
                         absl::Duration timeout) {
  return Call(std::vector<BackendRequest>{request}, affinity, timeout)[0];
}

BackendRequest Get(absl::string_view key) { return Op(BackendOp::kGet, key); }

BackendRequest Set(absl::string_view key, absl::string_view value,
                   uint32_t flags, int64_t exptime) {
  BackendRequest r = Op(BackendOp::kSet, key);
  r.value = value;
  r.flags = flags;
  r.exptime = exptime;
  return r;
}

BackendRequest Op(BackendOp op, absl::string_view key) {
  BackendRequest r;
  r.op = op;
  r.key = key;
  return r;
}

}  // namespace backend
}  // namespace memshard
