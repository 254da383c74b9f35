#pragma once

// One test, two servers: memshard and Debian's memcached, the reference
// peer. An expectation that holds on memcached is memcached's behaviour, so
// protocol tests run against both.
//
// Thread-compatible, like ServerProcess. A test against memcached skips,
// rather than fails, where memcached is not installed.
//
//   class FooTest : public PeerTest {
//    protected:
//     FooTest() : PeerTest({"--workers=2"}) {}
//   };
//   TEST_P(FooTest, Bar) { ... server_->port() ... }
//   INSTANTIATE_TEST_SUITE_P(Peers, FooTest, ::testing::ValuesIn(kPeers),
//                            PeerTestName);

#include <memory>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "testing/blocking_client.h"
#include "testing/server_process.h"

namespace memshard {

enum class Peer { kMemshard, kMemcached };

inline constexpr Peer kPeers[] = {Peer::kMemshard, Peer::kMemcached};

// "memshard" or "memcached".
const char* PeerName(Peer peer);
// How gtest prints a Peer parameter.
void PrintTo(Peer peer, std::ostream* os);
// Names the instances of a test over kPeers "memshard" and "memcached".
std::string PeerTestName(const ::testing::TestParamInfo<Peer>& info);
// "<file>_<variant>" as a test instance name: the file without its
// extension, anything not alphanumeric as '_'.
std::string ScriptTestName(absl::string_view file, absl::string_view variant);
// Names the instances of a test over (script file, Peer) "<file>_<peer>".
std::string ScriptPeerTestName(
    const ::testing::TestParamInfo<std::tuple<std::string, Peer>>& info);

// Starts memshard with ServerProcess::StartMemshard(memshard_args), or
// memcached with MemcachedProcess::Start(memcached_args) (NotFound where it
// is not installed).
absl::StatusOr<std::unique_ptr<ServerProcess>> StartPeer(
    Peer peer, const std::vector<std::string>& memshard_args,
    const std::vector<std::string>& memcached_args = {});

// A fixture over kPeers: SetUp starts the peer as `server_`, or skips (no
// memcached) or fails (the server did not start) leaving it null. A
// subclass that does more in SetUp calls PeerTest::SetUp() first and
// returns if `server_` is null.
class PeerTest : public ::testing::TestWithParam<Peer> {
 protected:
  explicit PeerTest(std::vector<std::string> memshard_args)
      : memshard_args_(std::move(memshard_args)) {}

  void SetUp() override;

  std::unique_ptr<ServerProcess> server_;

 private:
  const std::vector<std::string> memshard_args_;
};

// PeerTest with one client connected to the peer as `client_` (null when
// `server_` is).
class ConnectedPeerTest : public PeerTest {
 protected:
  using PeerTest::PeerTest;
  void SetUp() override;
  std::unique_ptr<BlockingClient> client_;
};

}  // namespace memshard
