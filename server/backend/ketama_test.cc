#include "server/backend/ketama.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace memshard {
namespace backend {
namespace {

TEST(Md5Test, KnownDigest) {
  uint8_t d[16];
  Md5("", d);
  // d41d8cd98f00b204e9800998ecf8427e
  EXPECT_EQ(d[0], 0xd4);
  EXPECT_EQ(d[15], 0x7e);
  // The key hash is the first word, little-endian: 0xd98c1dd4.
  EXPECT_EQ(KetamaRing::Hash(""), 0xd98c1dd4u);
}

TEST(KetamaRingTest, EmptyRingHasNoOwner) {
  KetamaRing empty;
  EXPECT_EQ(empty.NodeFor("k"), -1);
  std::vector<KetamaNode> nodes = {{"a", 1, 1}, {"b", 1, 1}};
  KetamaRing none(nodes, {false, false});
  EXPECT_EQ(none.NodeFor("k"), -1);
  EXPECT_EQ(none.live_nodes(), 0);
}

TEST(KetamaRingTest, PointsFollowWeights) {
  std::vector<KetamaNode> nodes = {
      {"10.0.0.1", 11211, 1}, {"10.0.0.2", 11211, 1}, {"10.0.0.3", 11211, 2}};
  KetamaRing ring(nodes);
  // 160 points per server at equal weight: 40 * 3 * weight/total, * 4.
  EXPECT_EQ(ring.points(), 120u + 120u + 240u);
  std::map<int, int> counts;
  for (int i = 0; i < 40000; ++i) ++counts[ring.NodeFor(absl::StrCat(i))];
  // Roughly 1:1:2.
  EXPECT_NEAR(counts[2] / 40000.0, 0.5, 0.06);
  EXPECT_NEAR(counts[0] / 40000.0, 0.25, 0.06);
}

// Taking a server out gives the ring of the remaining servers (what
// libmemcached's auto-eject builds). At equal weights only the ejected
// server's keys move; with weights the others' point counts are rescaled,
// so a few more keys move between them.
TEST(KetamaRingTest, EjectingRebuildsTheRingOfTheRest) {
  for (bool equal : {true, false}) {
    std::vector<KetamaNode> nodes = {{"127.0.0.1", 22001, 1},
                                     {"127.0.0.1", 22002, equal ? 1u : 3u},
                                     {"127.0.0.1", 22003, equal ? 1u : 2u}};
    KetamaRing all(nodes);
    KetamaRing without_1(nodes, {true, false, true});
    std::vector<KetamaNode> remaining = {nodes[0], nodes[2]};
    KetamaRing remaining_ring(remaining);
    int moved_elsewhere = 0;
    const int kKeys = 5000;
    for (int i = 0; i < kKeys; ++i) {
      std::string key = absl::StrCat("key", i);
      int before = all.NodeFor(key);
      int after = without_1.NodeFor(key);
      ASSERT_NE(after, 1);
      if (before != 1 && after != before) ++moved_elsewhere;
      EXPECT_EQ(nodes[after].port, remaining[remaining_ring.NodeFor(key)].port);
    }
    if (equal) {
      EXPECT_EQ(moved_elsewhere, 0);
    } else {
      EXPECT_LT(moved_elsewhere, kKeys / 5);
    }
  }
}

}  // namespace
}  // namespace backend
}  // namespace memshard
