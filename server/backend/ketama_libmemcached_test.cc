// Placement parity: our KetamaRing against libmemcached itself (linked from
// libmemcached-dev), asked where each key goes with weighted ketama.

#include <libmemcached/memcached.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/backend/ketama.h"

namespace memshard {
namespace backend {
namespace {

// Where libmemcached (MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED) puts each key, as
// "host:port" strings.
std::vector<std::string> LibmemcachedPlacement(
    const std::vector<KetamaNode>& nodes,
    const std::vector<std::string>& keys) {
  memcached_st* memc = memcached_create(nullptr);
  EXPECT_EQ(memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
            MEMCACHED_SUCCESS);
  for (const KetamaNode& node : nodes) {
    memcached_return_t rc =
        node.port == 0 ? memcached_server_add_unix_socket_with_weight(
                             memc, node.host.c_str(), node.weight)
                       : memcached_server_add_with_weight(
                             memc, node.host.c_str(), node.port, node.weight);
    EXPECT_EQ(rc, MEMCACHED_SUCCESS) << memcached_strerror(memc, rc);
  }
  EXPECT_EQ(memcached_behavior_get(memc, MEMCACHED_BEHAVIOR_DISTRIBUTION),
            MEMCACHED_DISTRIBUTION_CONSISTENT_WEIGHTED);
  std::vector<std::string> placement;
  placement.reserve(keys.size());
  for (const std::string& key : keys) {
    memcached_return_t rc;
    const memcached_instance_st* server =
        memcached_server_by_key(memc, key.data(), key.size(), &rc);
    if (server == nullptr) {
      ADD_FAILURE() << "no server for " << key;
      placement.push_back("");
      continue;
    }
    placement.push_back(absl::StrCat(memcached_server_name(server), ":",
                                     memcached_server_port(server)));
  }
  memcached_free(memc);
  return placement;
}

std::vector<std::string> OurPlacement(const std::vector<KetamaNode>& nodes,
                                      const std::vector<std::string>& keys) {
  KetamaRing ring(nodes);
  std::vector<std::string> placement;
  for (const std::string& key : keys) {
    int i = ring.NodeFor(key);
    placement.push_back(
        i < 0 ? "" : absl::StrCat(nodes[i].host, ":", nodes[i].port));
  }
  return placement;
}

// A mix of short, long, numeric and binary-looking keys.
std::vector<std::string> Keys(int n) {
  std::vector<std::string> keys;
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < n; ++i) {
    switch (i % 4) {
      case 0:
        keys.push_back(absl::StrCat("key:", i));
        break;
      case 1:
        keys.push_back(absl::StrCat(i));
        break;
      case 2:
        keys.push_back(absl::StrCat("user/", i * 7919, "/profile/session"));
        break;
      default: {
        std::string k;
        int len = 1 + i % 200;
        for (int j = 0; j < len; ++j) {
          x ^= x << 13;
          x ^= x >> 7;
          x ^= x << 17;
          k.push_back(static_cast<char>(33 + x % 94));  // printable, no space
        }
        keys.push_back(k);
      }
    }
  }
  return keys;
}

void ExpectParity(const std::vector<KetamaNode>& nodes, int n_keys = 10000) {
  std::vector<std::string> keys = Keys(n_keys);
  std::vector<std::string> theirs = LibmemcachedPlacement(nodes, keys);
  std::vector<std::string> ours = OurPlacement(nodes, keys);
  ASSERT_EQ(theirs.size(), ours.size());
  int mismatches = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (theirs[i] != ours[i] && ++mismatches <= 5) {
      ADD_FAILURE() << "key '" << keys[i] << "': libmemcached " << theirs[i]
                    << ", ours " << ours[i];
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(KetamaLibmemcachedTest, ThreeServersDifferentWeights) {
  ExpectParity({{"127.0.0.1", 22122, 1},
                {"127.0.0.1", 22123, 2},
                {"127.0.0.1", 22124, 5}});
}

TEST(KetamaLibmemcachedTest, DefaultPortIsLeftOutOfThePointNames) {
  ExpectParity(
      {{"10.0.0.1", 11211, 3}, {"10.0.0.2", 11211, 1}, {"10.0.0.3", 11212, 2}});
}

TEST(KetamaLibmemcachedTest, EqualWeights) {
  ExpectParity({{"127.0.0.1", 30001, 1},
                {"127.0.0.1", 30002, 1},
                {"127.0.0.1", 30003, 1}});
}

TEST(KetamaLibmemcachedTest, HostnamesAndManyServers) {
  std::vector<KetamaNode> nodes;
  for (int i = 0; i < 11; ++i) {
    nodes.push_back({absl::StrCat("cache-", i, ".example.internal"),
                     static_cast<uint16_t>(11211 + i % 3),
                     static_cast<uint32_t>(1 + (i * 7) % 13)});
  }
  ExpectParity(nodes);
}

TEST(KetamaLibmemcachedTest, UnixSockets) {
  ExpectParity({{"/tmp/memcached-a.sock", 0, 2},
                {"/tmp/memcached-b.sock", 0, 1},
                {"/tmp/memcached-c.sock", 0, 4}});
}

TEST(KetamaLibmemcachedTest, OneServer) {
  ExpectParity({{"127.0.0.1", 22122, 3}}, 100);
}

}  // namespace
}  // namespace backend
}  // namespace memshard
