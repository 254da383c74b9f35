#include "testing/peer.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "testing/memcached_process.h"

namespace memshard {

const char* PeerName(Peer peer) {
  return peer == Peer::kMemshard ? "memshard" : "memcached";
}

void PrintTo(Peer peer, std::ostream* os) { *os << PeerName(peer); }

std::string PeerTestName(const ::testing::TestParamInfo<Peer>& info) {
  return PeerName(info.param);
}

std::string ScriptTestName(absl::string_view file, absl::string_view variant) {
  std::string name(file.substr(0, file.rfind('.')));
  for (char& c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return absl::StrCat(name, "_", variant);
}

std::string ScriptPeerTestName(
    const ::testing::TestParamInfo<std::tuple<std::string, Peer>>& info) {
  return ScriptTestName(std::get<0>(info.param),
                        PeerName(std::get<1>(info.param)));
}

absl::StatusOr<std::unique_ptr<ServerProcess>> StartPeer(
    Peer peer, const std::vector<std::string>& memshard_args,
    const std::vector<std::string>& memcached_args) {
  if (peer == Peer::kMemcached) return MemcachedProcess::Start(memcached_args);
  return ServerProcess::StartMemshard(memshard_args);
}

void PeerTest::SetUp() {
  if (GetParam() == Peer::kMemcached && !MemcachedProcess::IsInstalled()) {
    GTEST_SKIP() << "no memcached";
  }
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      StartPeer(GetParam(), memshard_args_);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
}

void ConnectedPeerTest::SetUp() {
  PeerTest::SetUp();
  if (server_ == nullptr) return;
  absl::StatusOr<std::unique_ptr<BlockingClient>> client = server_->Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  client_ = *std::move(client);
}

}  // namespace memshard
