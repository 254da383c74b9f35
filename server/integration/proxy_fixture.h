#pragma once

// ProxyTest: memshard --mode=proxy over fresh memcacheds (Debian's
// /usr/bin/memcached on free ports), and libmemcached's weighted ketama over
// the same servers, for the proxy's integration tests.

#include <libmemcached/memcached.h>
#include <netinet/in.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/memcached_process.h"
#include "testing/server_process.h"

namespace memshard {

class ProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!MemcachedProcess::IsInstalled()) GTEST_SKIP() << "no memcached";
  }

  // Starts `weights.size()` memcacheds and memshard --mode=proxy over them.
  void Start(const std::vector<int>& weights,
             const std::vector<std::string>& extra = {}) {
    std::vector<std::string> backends;
    for (size_t i = 0; i < weights.size(); ++i) {
      auto m = MemcachedProcess::Start();
      ASSERT_TRUE(m.ok()) << m.status();
      backends.push_back(
          absl::StrCat("127.0.0.1:", (*m)->port(), ":", weights[i]));
      weights_.push_back(weights[i]);
      memcacheds_.push_back(*std::move(m));
    }
    std::vector<std::string> args = {
        "--workers=2", "--mode=proxy",
        absl::StrCat("--backends=", absl::StrJoin(backends, ","))};
    args.insert(args.end(), extra.begin(), extra.end());
    auto memshard = ServerProcess::StartMemshard(args);
    ASSERT_TRUE(memshard.ok()) << memshard.status();
    memshard_ = *std::move(memshard);
  }

  std::unique_ptr<BlockingClient> Client() {
    auto c = memshard_->Connect();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }
  std::unique_ptr<BlockingClient> Direct(int backend) {
    auto c = memcacheds_[backend]->Connect();
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // libmemcached with weighted ketama over the same backends.
  memcached_st* Libmemcached() {
    memcached_st* memc = memcached_create(nullptr);
    EXPECT_EQ(
        memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
        MEMCACHED_SUCCESS);
    for (size_t i = 0; i < memcacheds_.size(); ++i) {
      EXPECT_EQ(memcached_server_add_with_weight(
                    memc, "127.0.0.1", memcacheds_[i]->port(), weights_[i]),
                MEMCACHED_SUCCESS);
    }
    return memc;
  }

  // The backend libmemcached would place `key` on.
  int Owner(memcached_st* memc, absl::string_view key) {
    memcached_return_t rc;
    const memcached_instance_st* server =
        memcached_server_by_key(memc, key.data(), key.size(), &rc);
    for (size_t i = 0; i < memcacheds_.size(); ++i) {
      if (memcached_server_port(server) ==
          static_cast<in_port_t>(memcacheds_[i]->port())) {
        return static_cast<int>(i);
      }
    }
    return -1;
  }

  std::vector<int> weights_;
  std::vector<std::unique_ptr<ServerProcess>> memcacheds_;
  std::unique_ptr<ServerProcess> memshard_;
};

}  // namespace memshard
