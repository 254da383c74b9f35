#pragma once

// Workload shape for the load generator: which key, which operation, how
// big a value. Everything here is deterministic given a seed, so two runs
// (memshard and memcached) see the same request stream.
//
// Thread-safety: Rng, ZipfSampler and KeyChooser are thread-compatible;
// each client thread owns its own. The free functions are pure.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace memshard {
namespace loadgen {

// "9:1" gets to sets. At least one side is non-zero.
struct Ratio {
  uint32_t gets = 9;
  uint32_t sets = 1;
};
absl::StatusOr<Ratio> ParseRatio(absl::string_view text);

// "100" (fixed) or "50-150" (uniform, inclusive).
struct SizeRange {
  uint32_t min = 100;
  uint32_t max = 100;
};
absl::StatusOr<SizeRange> ParseSizeRange(absl::string_view text);

// SplitMix64: tiny, fast, good enough for choosing keys and ops.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double NextDouble() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // Uniform in [0, n) (multiply-shift; the bias is below 2^-32 for n < 2^32).
  uint64_t Uniform(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >>
                                 64);
  }

 private:
  uint64_t state_;
};

// Zipf over ranks [0, n) with exponent `s` > 0 (rank 0 most popular), by
// rejection-inversion (Hörmann and Derflinger 1996): O(1) per sample and no
// table, so a million keys cost nothing to set up.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double s);
  uint64_t Sample(Rng& rng) const;

 private:
  double H(double x) const;
  double HIntegral(double x) const;
  double HIntegralInverse(double x) const;

  uint64_t n_;
  double exponent_;
  double h_integral_x1_;
  double h_integral_n_;
  double s_;
};

enum class KeyDistribution { kUniform, kZipf };
absl::StatusOr<KeyDistribution> ParseKeyDistribution(absl::string_view text);

class KeyChooser {
 public:
  KeyChooser(uint64_t keys, KeyDistribution distribution, double zipf_s);
  uint64_t Next(Rng& rng) const;

 private:
  uint64_t keys_;
  KeyDistribution distribution_;
  ZipfSampler zipf_;
};

// The name of key `index`: exactly `key_size` bytes, "k" then the decimal
// index zero-padded ("k0000000042"). Writes into `buffer` (at least
// `key_size` bytes) and returns a view of it. Requires key_size >=
// MinKeySize(index + 1).
absl::string_view FormatKey(uint64_t index, size_t key_size, char* buffer);
// Whether `key` == FormatKey(index, key_size), without formatting it.
bool KeyIs(absl::string_view key, uint64_t index, size_t key_size);
// Smallest key_size that names `keys` distinct keys.
size_t MinKeySize(uint64_t keys);
// memcached's limit on key length.
inline constexpr size_t kMaxKeySize = 250;

}  // namespace loadgen
}  // namespace memshard
