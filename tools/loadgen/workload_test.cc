#include "tools/loadgen/workload.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace memshard {
namespace loadgen {
namespace {

TEST(WorkloadTest, ParsesRatios) {
  ASSERT_TRUE(ParseRatio("9:1").ok());
  EXPECT_EQ(ParseRatio("9:1")->gets, 9u);
  EXPECT_EQ(ParseRatio("9:1")->sets, 1u);
  EXPECT_EQ(ParseRatio("1:0")->sets, 0u);
  EXPECT_FALSE(ParseRatio("0:0").ok());
  EXPECT_FALSE(ParseRatio("9").ok());
  EXPECT_FALSE(ParseRatio("a:b").ok());
}

TEST(WorkloadTest, ParsesSizeRanges) {
  EXPECT_EQ(ParseSizeRange("100")->min, 100u);
  EXPECT_EQ(ParseSizeRange("100")->max, 100u);
  EXPECT_EQ(ParseSizeRange("50-150")->min, 50u);
  EXPECT_EQ(ParseSizeRange("50-150")->max, 150u);
  EXPECT_FALSE(ParseSizeRange("150-50").ok());
  EXPECT_FALSE(ParseSizeRange("-5").ok());
  EXPECT_FALSE(ParseSizeRange("5-").ok());
}

TEST(WorkloadTest, KeysHaveExactlyKeySizeBytes) {
  char buffer[kMaxKeySize];
  EXPECT_EQ(FormatKey(42, 8, buffer), "k0000042");
  EXPECT_EQ(FormatKey(0, 2, buffer), "k0");
  EXPECT_EQ(FormatKey(999999, 7, buffer), "k999999");
  EXPECT_EQ(FormatKey(123, 32, buffer).size(), 32u);
  EXPECT_EQ(FormatKey(1234567, 10, buffer), "k001234567");
  EXPECT_EQ(FormatKey(1234567, 5, buffer), "k4567");  // too short: low digits
  EXPECT_EQ(FormatKey(7, 1, buffer), "k");
  EXPECT_EQ(MinKeySize(1), 2u);
  EXPECT_EQ(MinKeySize(10), 2u);
  EXPECT_EQ(MinKeySize(11), 3u);
  EXPECT_EQ(MinKeySize(1000000), 7u);
}

TEST(WorkloadTest, RngUniformStaysInRange) {
  Rng rng(1);
  std::vector<int> seen(10, 0);
  for (int i = 0; i < 100000; ++i) ++seen[rng.Uniform(10)];
  for (int count : seen) EXPECT_NEAR(count, 10000, 600);
  for (int i = 0; i < 1000; ++i) {
    double d = rng.NextDouble();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
  }
}

TEST(WorkloadTest, SameSeedSameStream) {
  Rng a(99), b(99);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.Next(), b.Next());
}

// Rank frequencies follow 1/(k+1)^s: check the head against the exact
// normalised probabilities.
TEST(WorkloadTest, ZipfMatchesItsDistribution) {
  const uint64_t n = 1000;
  const double s = 0.99;
  ZipfSampler zipf(n, s);
  Rng rng(3);
  std::vector<int> counts(n, 0);
  const int samples = 400000;
  for (int i = 0; i < samples; ++i) {
    uint64_t k = zipf.Sample(rng);
    ASSERT_LT(k, n);
    ++counts[k];
  }
  double norm = 0;
  for (uint64_t k = 1; k <= n; ++k) norm += std::pow(k, -s);
  for (uint64_t k = 0; k < 5; ++k) {
    const double expected = samples * std::pow(k + 1, -s) / norm;
    EXPECT_NEAR(counts[k], expected, expected * 0.05) << "rank " << k;
  }
  EXPECT_GT(counts[n - 1], 0);
}

TEST(WorkloadTest, KeyChooserCoversTheKeySpace) {
  Rng rng(5);
  KeyChooser uniform(100, KeyDistribution::kUniform, 0.99);
  KeyChooser zipf(100, KeyDistribution::kZipf, 0.99);
  std::vector<bool> seen_uniform(100), seen_zipf(100);
  for (int i = 0; i < 100000; ++i) {
    uint64_t u = uniform.Next(rng), z = zipf.Next(rng);
    ASSERT_LT(u, 100u);
    ASSERT_LT(z, 100u);
    seen_uniform[u] = true;
    seen_zipf[z] = true;
  }
  for (int k = 0; k < 100; ++k) {
    EXPECT_TRUE(seen_uniform[k]);
    EXPECT_TRUE(seen_zipf[k]);
  }
  EXPECT_FALSE(ParseKeyDistribution("normal").ok());
}

TEST(WorkloadTest, KeyIsAgreesWithFormatKey) {
  char buffer[kMaxKeySize];
  for (size_t key_size : {1, 2, 3, 7, 32}) {
    for (uint64_t index : {0, 1, 9, 10, 99, 100, 12345, 999999, 1000000}) {
      const std::string key(FormatKey(index, key_size, buffer));
      EXPECT_TRUE(KeyIs(key, index, key_size)) << key;
      if (key_size > 2) {
        EXPECT_FALSE(KeyIs(key, index + 1, key_size)) << key;
      }
      EXPECT_FALSE(KeyIs(key + "0", index, key_size)) << key;
    }
  }
  EXPECT_FALSE(KeyIs("x0000042", 42, 8));
  EXPECT_FALSE(KeyIs("k0100042", 42, 8));
}

}  // namespace
}  // namespace loadgen
}  // namespace memshard
