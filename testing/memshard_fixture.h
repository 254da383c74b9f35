#pragma once

// A fixture for tests that start memshard themselves, each with its own
// flags:
//
//   class FooTest : public MemshardFixture {};
//   TEST_F(FooTest, Bar) {
//     ASSERT_NO_FATAL_FAILURE(Start({"--workers=3"}));
//     ... server_->port() ...
//   }
//
// Thread-compatible, like ServerProcess: Start() from the test's thread.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "testing/server_process.h"

namespace memshard {

class MemshardFixture : public ::testing::Test {
 protected:
  // Starts memshard with `args` as `server_` (stopping any earlier one); a
  // fatal failure if it does not start.
  void Start(const std::vector<std::string>& args = {"--workers=2"}) {
    auto server = ServerProcess::StartMemshard(args);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::unique_ptr<ServerProcess> server_;
};

}  // namespace memshard
