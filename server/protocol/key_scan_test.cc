// ScanRetrievalKeys (text_parser.h): the look-ahead's scan for the keys of
// pipelined retrievals.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/protocol/text_parser.h"

namespace memshard {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct Scan {
  size_t scanned = 0;
  std::vector<std::string> keys;
};

Scan ScanKeys(absl::string_view input, size_t max_lines = 16,
              size_t max_keys = 16) {
  std::vector<absl::string_view> keys(max_keys);
  size_t count = 0;
  Scan scan;
  scan.scanned =
      ScanRetrievalKeys(input, max_lines, keys.data(), max_keys, &count);
  for (size_t i = 0; i < count; ++i) scan.keys.emplace_back(keys[i]);
  return scan;
}

TEST(ScanRetrievalKeysTest, CollectsKeysOfPipelinedRetrievals) {
  const std::string input =
      "get a\r\ngets b c\r\ngat 10 d\r\ngats 0 e f\nmg g v t\r\n"
      "delete x\r\nmn\r\nget  h   i \r\n";
  const Scan scan = ScanKeys(input);
  EXPECT_EQ(scan.scanned, input.size());
  EXPECT_THAT(scan.keys,
              ElementsAre("a", "b", "c", "d", "e", "f", "g", "h", "i"));
}

TEST(ScanRetrievalKeysTest, StopsBeforeStorageCommands) {
  // A data block is not a line: the scan stops where the set starts.
  const std::string front = "get a\r\nget b\r\n";
  for (const char* storage :
       {"set a 0 0 7\r\nget zzz\r\n", "add a 0 0 1\r\nx\r\n",
        "replace a 0 0 1\r\nx\r\n", "append a 0 0 1\r\nx\r\n",
        "prepend a 0 0 1\r\nx\r\n", "cas a 0 0 1 1\r\nx\r\n",
        "ms a 1\r\nx\r\n"}) {
    const Scan scan = ScanKeys(absl::StrCat(front, storage, "get c\r\n"));
    EXPECT_EQ(scan.scanned, front.size()) << storage;
    EXPECT_THAT(scan.keys, ElementsAre("a", "b")) << storage;
  }
}

TEST(ScanRetrievalKeysTest, StopsAtIncompleteLineAndLimits) {
  Scan scan = ScanKeys("get a\r\nget b");
  EXPECT_EQ(scan.scanned, 7u);
  EXPECT_THAT(scan.keys, ElementsAre("a"));

  scan = ScanKeys("get a\r\nget b\r\nget c\r\n", /*max_lines=*/2);
  EXPECT_EQ(scan.scanned, 14u);
  EXPECT_THAT(scan.keys, ElementsAre("a", "b"));

  // Keys beyond max_keys are dropped; the line still counts as scanned.
  scan = ScanKeys("get a b c\r\nget d\r\n", 16, /*max_keys=*/2);
  EXPECT_EQ(scan.scanned, 11u);
  EXPECT_THAT(scan.keys, ElementsAre("a", "b"));

  scan = ScanKeys("");
  EXPECT_EQ(scan.scanned, 0u);
  EXPECT_THAT(scan.keys, IsEmpty());
}

TEST(ScanRetrievalKeysTest, SkipsWhatItDoesNotKnow) {
  const std::string input =
      "getx a\r\nget\r\nmget b\r\n\r\n  get c\r\nversion\r\nget d\r\n";
  const Scan scan = ScanKeys(input);
  EXPECT_EQ(scan.scanned, input.size());
  EXPECT_THAT(scan.keys, ElementsAre("d"));
}

}  // namespace
}  // namespace memshard
