#pragma once
// What the BackendPool tests against real memcached processes share
// (backend_pool_test.cc: operations, placement, pipelining;
// backend_pool_failure_test.cc: dead, silent and killed backends).

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "server/backend/backend_options.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {
namespace backend {

// A backend on 127.0.0.1.
inline BackendAddress Local(int port, uint32_t weight = 1) {
  BackendAddress a;
  a.host = "127.0.0.1";
  a.port = static_cast<uint16_t>(port);
  a.weight = weight;
  return a;
}

// Skips without memcached; starts memcacheds on free ports on request.
class BackendPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  }

  // Starts `n` memcacheds.
  void StartMemcacheds(int n) {
    for (int i = 0; i < n; ++i) {
      auto m = MemcachedProcess::Start();
      ASSERT_TRUE(m.ok()) << m.status();
      memcacheds_.push_back(std::move(*m));
    }
  }

  std::vector<std::unique_ptr<ServerProcess>> memcacheds_;
};

}  // namespace backend
}  // namespace memshard
